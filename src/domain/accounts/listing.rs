//! GET /accounts and GET /public-accounts with libeufin's paging (spec §1.6, §10).

use crate::domain::primitives::{ErrorCode, TalerError};
use crate::ports::accounts::AccountPage;

use super::api::{
    AccountMinimalData, ListBankAccountsResponse, PublicAccount, PublicAccountsResponse,
};
use super::auth::Caller;
use super::manage::account_status;
use super::service::{AccountService, error};

/// Default page: the 20 newest rows.
const DEFAULT_LIMIT: i64 = -20;

/// Paging and filter parameters from a query string, with the deprecated aliases.
pub fn page_from_query(
    query: &[(String, String)],
    public_only: bool,
) -> Result<AccountPage, TalerError> {
    let find = |names: [&str; 2]| {
        names.iter().find_map(|name| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        })
    };
    let integer = |name: &str, text: &str| {
        text.parse::<i64>().map_err(|_| {
            error(ErrorCode::GenericParameterMalformed, "not an integer")
                .with_detail(name.to_owned())
        })
    };
    let limit = match find(["limit", "delta"]) {
        Some(text) => integer("limit", text)?,
        None => DEFAULT_LIMIT,
    };
    let offset = match find(["offset", "start"]) {
        Some(text) => integer("offset", text)?,
        None if limit >= 0 => 0,
        None => i64::MAX,
    };
    if offset < 0 {
        return Err(
            error(ErrorCode::GenericParameterMalformed, "negative offset").with_detail("offset"),
        );
    }
    let name_contains = query
        .iter()
        .find(|(k, _)| k == "filter_name")
        .map(|(_, v)| v.clone());
    Ok(AccountPage {
        limit,
        offset,
        name_contains,
        public_only,
    })
}

impl AccountService {
    /// GET /accounts (admin only); `None` for an empty page (204).
    pub fn list_accounts(
        &self,
        caller: &Caller,
        page: &AccountPage,
    ) -> Result<Option<ListBankAccountsResponse>, TalerError> {
        self.require_admin(caller, false)?;
        let accounts = self.store.list_accounts(page)?;
        if accounts.is_empty() {
            return Ok(None);
        }
        let accounts = accounts
            .iter()
            .map(|a| AccountMinimalData {
                username: a.username.to_string(),
                name: a.name.clone(),
                payto_uri: a.address.bank_form(&a.name, &self.settings.payto),
                balance: (&a.balance).into(),
                debit_threshold: a.debit_threshold.clone(),
                is_public: a.is_public,
                is_taler_exchange: a.is_taler_exchange,
                row_id: a.row_id,
                status: account_status(a),
            })
            .collect();
        Ok(Some(ListBankAccountsResponse { accounts }))
    }

    /// GET /public-accounts (no authentication); `None` for an empty page (204).
    pub fn list_public_accounts(
        &self,
        page: &AccountPage,
    ) -> Result<Option<PublicAccountsResponse>, TalerError> {
        let page = AccountPage {
            public_only: true,
            ..page.clone()
        };
        let accounts = self.store.list_accounts(&page)?;
        if accounts.is_empty() {
            return Ok(None);
        }
        let public_accounts = accounts
            .iter()
            .map(|a| PublicAccount {
                username: a.username.to_string(),
                payto_uri: a.address.bank_form(&a.name, &self.settings.payto),
                balance: (&a.balance).into(),
                is_taler_exchange: a.is_taler_exchange,
                row_id: a.row_id,
            })
            .collect();
        Ok(Some(PublicAccountsResponse { public_accounts }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_the_twenty_newest() {
        let page = page_from_query(&[], false).unwrap();
        assert_eq!((page.limit, page.offset), (-20, i64::MAX));
        let forwards = page_from_query(&query(&[("limit", "5")]), false).unwrap();
        assert_eq!((forwards.limit, forwards.offset), (5, 0));
    }

    #[test]
    fn aliases_and_filters() {
        let page = page_from_query(
            &query(&[("delta", "3"), ("start", "7"), ("filter_name", "Jo")]),
            false,
        )
        .unwrap();
        assert_eq!(
            (page.limit, page.offset, page.name_contains.as_deref()),
            (3, 7, Some("Jo"))
        );
        let preferred = page_from_query(&query(&[("delta", "3"), ("limit", "4")]), false).unwrap();
        assert_eq!(preferred.limit, 4);
    }

    #[test]
    fn malformed_values_are_400_26() {
        for bad in [("limit", "x"), ("offset", "-1"), ("offset", "1.5")] {
            let err = page_from_query(&query(&[bad]), false).unwrap_err();
            assert_eq!(err.code, ErrorCode::GenericParameterMalformed, "{bad:?}");
        }
    }
}

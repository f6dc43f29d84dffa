//! Account and token rows as both databases store them, and their validated conversions to
//! and from talerbox values: shared by the SQLite and PostgreSQL account stores, so a corrupt
//! row is the same `StoreError::Internal` on either.

use crate::adapters::convert::{corrupt, expiry_from_sql, micros_from_sql};
use crate::domain::accounts::{
    Account, AccountAddress, Balance, ContactData, Scope, TanChannel, TokenRecord, Username,
};
use crate::domain::primitives::{Amount, Currency};
use crate::ports::StoreError;
use crate::ports::accounts::NewAccount;

/// An account row as stored, before validation.
pub struct AccountRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub name: String,
    pub is_public: bool,
    pub is_taler_exchange: bool,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub cashout_payto: Option<String>,
    pub address: String,
    pub currency: String,
    pub balance: (i64, i64),
    pub has_debt: bool,
    pub max_debt: (i64, i64),
    pub min_cashout: (Option<i64>, Option<i64>),
    pub tan_channels: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

impl AccountRow {
    pub fn into_account(self) -> Result<Account, StoreError> {
        let currency: Currency = self
            .currency
            .parse()
            .map_err(|_| corrupt("account currency", &self.currency))?;
        let min_cashout = match self.min_cashout {
            (Some(value), Some(fraction)) => Some(amount_from_sql(&currency, (value, fraction))?),
            (None, None) => None,
            _ => return Err(corrupt("min_cashout", "half set")),
        };
        Ok(Account {
            row_id: self.id,
            username: Username::parse(&self.username)
                .ok_or_else(|| corrupt("username", &self.username))?,
            password_hash: self.password_hash,
            name: self.name,
            is_public: self.is_public,
            is_taler_exchange: self.is_taler_exchange,
            contact: ContactData {
                email: self.email,
                phone: self.phone,
            },
            cashout_payto: self.cashout_payto,
            address: AccountAddress::from_canonical(&self.address)
                .ok_or_else(|| corrupt("address", &self.address))?,
            balance: Balance {
                amount: amount_from_sql(&currency, self.balance)?,
                has_debt: self.has_debt,
            },
            debit_threshold: amount_from_sql(&currency, self.max_debt)?,
            min_cashout,
            tan_channels: channels_from_sql(&self.tan_channels)?,
            created_at: micros_from_sql(self.created_at)?,
            deleted_at: self.deleted_at.map(micros_from_sql).transpose()?,
        })
    }
}

/// A token row joined with its account's username, before validation.
pub struct TokenRow {
    pub username: String,
    pub scope: String,
    pub refreshable: bool,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub description: Option<String>,
}

impl TokenRow {
    pub fn into_record(self, token_hash: [u8; 32]) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            token_hash,
            username: Username::parse(&self.username)
                .ok_or_else(|| corrupt("username", &self.username))?,
            scope: Scope::parse(&self.scope).ok_or_else(|| corrupt("token scope", &self.scope))?,
            refreshable: self.refreshable,
            created_at: micros_from_sql(self.created_at)?,
            expires_at: expiry_from_sql(self.expires_at)?,
            description: self.description,
        })
    }
}

/// The account `new` became, as the creation stored it.
pub fn created_account(
    new: &NewAccount,
    row_id: i64,
    address: AccountAddress,
    balance: Balance,
) -> Account {
    Account {
        row_id,
        username: new.username.clone(),
        password_hash: new.password_hash.clone(),
        name: new.name.clone(),
        is_public: new.is_public,
        is_taler_exchange: new.is_taler_exchange,
        contact: new.contact.clone(),
        cashout_payto: new.cashout_payto.clone(),
        address,
        balance,
        debit_threshold: new.debit_threshold.clone(),
        min_cashout: new.min_cashout.clone(),
        tan_channels: new.tan_channels.clone(),
        created_at: new.created_at,
        deleted_at: None,
    }
}

// ---- column conversions ----

/// A broken invariant of the store (not of a row).
pub fn internal(what: &str) -> StoreError {
    StoreError::Internal(what.to_owned())
}

/// (value, fraction); both fit an i64 (value ≤ 2^52, fraction < 10^8).
pub fn amount_to_sql(amount: &Amount) -> (i64, i64) {
    let value = i64::try_from(amount.value()).unwrap_or(i64::MAX);
    (value, i64::from(amount.fraction()))
}

pub fn amount_from_sql(
    currency: &Currency,
    (value, fraction): (i64, i64),
) -> Result<Amount, StoreError> {
    let text = || format!("{value}.{fraction}");
    let value = u64::try_from(value).map_err(|_| corrupt("amount", &text()))?;
    let fraction = u32::try_from(fraction).map_err(|_| corrupt("amount", &text()))?;
    Amount::new(currency.clone(), value, fraction).map_err(|_| corrupt("amount", &text()))
}

/// "sms,email" in the order given; "" for none.
pub fn channels_to_sql(channels: &[TanChannel]) -> String {
    let names: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
    names.join(",")
}

pub fn channels_from_sql(text: &str) -> Result<Vec<TanChannel>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|name| TanChannel::parse(name).ok_or_else(|| corrupt("TAN channels", text)))
        .collect()
}

//! Reading, reconfiguring and deleting accounts; tokens (spec §4.4–§4.5, §6–§9).

use crate::domain::primitives::{ErrorCode, TalerError, secret_hash};
use crate::domain::tan::{
    ChallengeId, ChallengeResponse, Factor, GateOutcome, Operation, RequestBinding, TanRequest,
    factor_set, factors_differ, new_factors,
};
use crate::ports::accounts::{AccountChanges, DeleteOutcome, GatedChange, GatedOp, TanUse};

/// What the 2FA gate lets a request do.
enum Gate {
    /// Run, consuming these challenges (none when the request is not gated).
    Run(Vec<ChallengeId>),
    /// Answer 202 with this body.
    Challenged(ChallengeResponse),
}
use crate::ports::random::random_bytes;

use super::api::{
    AccountData, AccountPasswordChange, AccountReconfiguration, ContactDataJson, TokenRequest,
    TokenSuccessResponse,
};
use super::auth::{Access, Caller, Scope, TokenRecord, TokenSecret};
use super::model::{ADMIN, Account, ContactData, RESERVED_USERNAMES, TanChannel};
use super::payto::BankPayto;
use super::service::{AccountService, check_password_length, error, internal, json_invalid};

impl AccountService {
    /// GET /accounts/$USERNAME for the holder of `header`: an owner reading their own account
    /// is answered from the read that authenticated them.
    pub fn read_account(
        &self,
        header: Option<&str>,
        username: &str,
    ) -> Result<AccountData, TalerError> {
        let (caller, own) = self
            .authenticate_with_account(header)?
            .ok_or_else(super::service::missing_authorization)?;
        self.authorize(&caller, username, false, true)?;
        if own.username.as_str() == username {
            return Ok(self.account_json(&own));
        }
        let account = self.account_or_404(username)?;
        Ok(self.account_json(&account))
    }

    /// GET /accounts/$USERNAME.
    pub fn account_data(&self, caller: &Caller, username: &str) -> Result<AccountData, TalerError> {
        self.authorize(caller, username, false, true)?;
        let account = self.account_or_404(username)?;
        Ok(self.account_json(&account))
    }

    pub(super) fn account_json(&self, account: &Account) -> AccountData {
        let contact = &account.contact;
        let contact_data =
            (contact.email.is_some() || contact.phone.is_some()).then(|| ContactDataJson {
                email: contact.email.clone(),
                phone: contact.phone.clone(),
            });
        AccountData {
            name: account.name.clone(),
            balance: (&account.balance).into(),
            payto_uri: account
                .address
                .bank_form(&account.name, &self.settings.payto),
            debit_threshold: account.debit_threshold.clone(),
            contact_data,
            cashout_payto_uri: account.cashout_payto.clone(),
            is_public: account.is_public,
            is_taler_exchange: account.is_taler_exchange,
            tan_channel: account.tan_channels.first().copied(),
            tan_channels: (!account.tan_channels.is_empty()).then(|| account.tan_channels.clone()),
            status: status(account),
        }
    }

    /// PATCH /accounts/$USERNAME (spec §7 check order) without a second factor: for
    /// callers and accounts the 2FA gate never concerns.
    pub fn reconfigure(
        &self,
        caller: &Caller,
        username: &str,
        patch: AccountReconfiguration,
    ) -> Result<(), TalerError> {
        match self.reconfigure_gated(caller, username, patch, None)? {
            None => Ok(()),
            Some(_) => Err(internal("a challenge without a TAN service")),
        }
    }

    /// PATCH /accounts/$USERNAME with the 2FA gate of corebank-tan.md §4 after the checks
    /// of spec §7: `Some` is the 202 body. Without `tan` nothing is gated.
    pub fn reconfigure_gated(
        &self,
        caller: &Caller,
        username: &str,
        patch: AccountReconfiguration,
        tan: Option<&TanRequest<'_>>,
    ) -> Result<Option<ChallengeResponse>, TalerError> {
        self.authorize(caller, username, true, true)?;
        let debit_threshold = patch
            .debit_threshold
            .as_deref()
            .map(|t| self.parse_amount(t, "debit_threshold"))
            .transpose()?;
        let min_cashout = match &patch.min_cashout {
            Some(Some(text)) => Some(Some(self.parse_amount(text, "min_cashout")?)),
            Some(None) => Some(None),
            None => None,
        };
        let contact_patch = patch.contact_data.clone().unwrap_or_default();
        let cashout_request = match &patch.cashout_payto_uri {
            None => None,
            Some(None) => Some(None),
            Some(Some(uri)) => Some(Some(
                BankPayto::parse(uri)
                    .filter(|payto| matches!(payto, BankPayto::Iban { .. }))
                    .ok_or_else(|| json_invalid("cashout_payto_uri: expected an IBAN payto URI"))?,
            )),
        };
        validate_contact_patch(&contact_patch)?;
        if username == ADMIN && patch.is_public == Some(true) {
            return Err(error(ErrorCode::End, "the admin account cannot be public"));
        }
        let channels = new_tan_channels(&patch);
        if let Some(channels) = &channels {
            self.check_tan_channels_supported(channels)?;
        }
        let account = self.account_or_404(username).and_then(|a| {
            if a.is_deleted() {
                Err(error(ErrorCode::BankUnknownAccount, "unknown account"))
            } else {
                Ok(a)
            }
        })?;
        let name = patch.name.clone().unwrap_or_else(|| account.name.clone());
        let cashout_payto = match cashout_request {
            None => None,
            Some(None) => Some(None),
            Some(Some(payto)) => Some(payto.iban_full_form(&name)),
        };
        let changes = AccountChanges {
            name: patch.name.clone(),
            is_public: patch.is_public,
            email: contact_patch.email.clone(),
            phone: contact_patch.phone.clone(),
            cashout_payto,
            debit_threshold,
            min_cashout,
            tan_channels: channels,
        };
        if !caller.is_admin() {
            self.check_owner_changes(&account, &changes)?;
        }
        if matches!(patch.conversion_rate_class_id, Some(Some(_))) {
            return Err(error(ErrorCode::End, "unknown conversion rate class"));
        }
        let mut after = account.clone();
        crate::ports::accounts::apply_changes(&mut after, &changes);
        if changes.tan_channels.is_some() || changes.email.is_some() || changes.phone.is_some() {
            let missing = after
                .tan_channels
                .iter()
                .find(|c| !c.has_address_in(&after.contact));
            if let Some(channel) = missing {
                return Err(error(
                    ErrorCode::BankMissingTanInfo,
                    "no address for the TAN channel",
                )
                .with_detail(channel.as_str()));
            }
        }
        let before = factor_set(&account.tan_channels, &account.contact);
        let resulting = factor_set(&after.tan_channels, &after.contact);
        let changed = factors_differ(&before, &resulting);
        let new = new_factors(&before, &resulting);
        let used = match self.gate(
            caller,
            &account,
            &before,
            &new,
            Operation::AccountReconfig,
            tan,
        )? {
            Gate::Challenged(body) => return Ok(Some(body)),
            Gate::Run(used) => used,
        };
        if tan.is_none() || (used.is_empty() && !changed) {
            if !self.store.update_account(&account.username, &changes)? {
                return Err(error(ErrorCode::BankUnknownAccount, "unknown account"));
            }
            return Ok(None);
        }
        self.apply_gated(&account, GatedOp::Update(changes), used, changed)?;
        Ok(None)
    }

    /// §3.2 and §4.2 of corebank-tan.md: whether the request runs (with the challenges it
    /// uses) or answers 202. Admin, other callers and accounts without factors pass.
    fn gate(
        &self,
        caller: &Caller,
        account: &Account,
        current: &[Factor],
        new: &[Factor],
        operation: Operation,
        tan: Option<&TanRequest<'_>>,
    ) -> Result<Gate, TalerError> {
        let Some(tan) = tan else {
            return Ok(Gate::Run(Vec::new()));
        };
        let gated = !caller.is_admin()
            && caller.username == account.username
            && (!current.is_empty() || !new.is_empty());
        if !gated {
            return Ok(Gate::Run(Vec::new()));
        }
        let binding = RequestBinding {
            account_id: account.row_id,
            operation,
            body: tan.body.clone(),
        };
        match tan.service.gate(current, new, &tan.presented, &binding) {
            Ok(GateOutcome::Challenged(body)) => Ok(Gate::Challenged(body)),
            Ok(GateOutcome::Proceed { used }) => Ok(Gate::Run(used)),
            Err(failure) => Err(failure.error),
        }
    }

    /// Runs `op` and consumes `used` in one transaction (§4.4); kills the account's other
    /// open challenges with `invalidate_others` (§8.3).
    fn apply_gated(
        &self,
        account: &Account,
        op: GatedOp,
        used: Vec<ChallengeId>,
        invalidate_others: bool,
    ) -> Result<(), TalerError> {
        let tan_use = TanUse {
            account_id: account.row_id,
            used,
            invalidate_others,
            now: self.clock.now(),
        };
        match self
            .store
            .apply_with_tan(&account.username, &op, &tan_use)?
        {
            GatedChange::Done => Ok(()),
            GatedChange::NoAccount => Err(error(ErrorCode::BankUnknownAccount, "unknown account")),
            GatedChange::BalanceNotZero => Err(error(
                ErrorCode::BankAccountBalanceNotZero,
                "balance is not zero",
            )),
            GatedChange::StaleChallenge => Err(error(
                ErrorCode::GenericDbSoftFailure,
                "a challenge was used concurrently; replay again",
            )),
        }
    }

    /// Changes an owner may not make without the matching `ALLOW_*` option (a field counts
    /// as changed only if it differs from the stored value).
    fn check_owner_changes(
        &self,
        account: &Account,
        changes: &AccountChanges,
    ) -> Result<(), TalerError> {
        let name_changed = changes.name.as_ref().is_some_and(|n| n != &account.name);
        if name_changed && !self.settings.allow_edit_name {
            return Err(error(
                ErrorCode::BankNonAdminPatchLegalName,
                "legal name is not editable",
            ));
        }
        let cashout_changed = changes
            .cashout_payto
            .as_ref()
            .is_some_and(|c| c != &account.cashout_payto);
        if cashout_changed && !self.settings.allow_edit_cashout {
            return Err(error(
                ErrorCode::BankNonAdminPatchCashout,
                "cashout account is not editable",
            ));
        }
        if changes
            .debit_threshold
            .as_ref()
            .is_some_and(|d| d != &account.debit_threshold)
        {
            return Err(error(
                ErrorCode::BankNonAdminPatchDebtLimit,
                "only admin may change debit_threshold",
            ));
        }
        if changes
            .min_cashout
            .as_ref()
            .is_some_and(|m| m != &account.min_cashout)
        {
            return Err(error(
                ErrorCode::BankNonAdminSetMinCashout,
                "only admin may change min_cashout",
            ));
        }
        Ok(())
    }

    /// PATCH /accounts/$USERNAME/auth (spec §8) without a second factor.
    pub fn change_password(
        &self,
        caller: &Caller,
        username: &str,
        change: AccountPasswordChange,
    ) -> Result<(), TalerError> {
        match self.change_password_gated(caller, username, change, None)? {
            None => Ok(()),
            Some(_) => Err(internal("a challenge without a TAN service")),
        }
    }

    /// PATCH /accounts/$USERNAME/auth with the 2FA gate before the old-password check
    /// (corebank-tan.md §4.5); `Some` is the 202 body.
    pub fn change_password_gated(
        &self,
        caller: &Caller,
        username: &str,
        change: AccountPasswordChange,
        tan: Option<&TanRequest<'_>>,
    ) -> Result<Option<ChallengeResponse>, TalerError> {
        self.authorize(caller, username, true, true)?;
        if !caller.is_admin() && change.old_password.is_none() {
            return Err(error(
                ErrorCode::BankNonAdminPatchMissingOldPassword,
                "old_password missing",
            ));
        }
        check_password_length(&change.new_password)?;
        let account = self.account_or_404(username)?;
        if account.is_deleted() {
            return Err(error(ErrorCode::BankUnknownAccount, "unknown account"));
        }
        let current = factor_set(&account.tan_channels, &account.contact);
        let used = match self.gate(
            caller,
            &account,
            &current,
            &[],
            Operation::AccountAuthReconfig,
            tan,
        )? {
            Gate::Challenged(body) => return Ok(Some(body)),
            Gate::Run(used) => used,
        };
        let old_is_wrong = change
            .old_password
            .as_deref()
            .is_some_and(|old| !self.hasher.verify(old, &account.password_hash));
        if old_is_wrong {
            return Err(error(
                ErrorCode::BankPatchBadOldPassword,
                "old_password is wrong",
            ));
        }
        let hash = self.hasher.hash(&change.new_password).map_err(internal)?;
        if !used.is_empty() {
            self.apply_gated(&account, GatedOp::Password(hash), used, false)?;
            return Ok(None);
        }
        if !self.store.set_password_hash(&account.username, &hash)? {
            return Err(error(ErrorCode::BankUnknownAccount, "unknown account"));
        }
        Ok(None)
    }

    /// Sets a password from the operator's command line (`bank passwd`).
    pub fn set_password(&self, username: &str, password: &str) -> Result<(), TalerError> {
        check_password_length(password)?;
        let account = self.account_or_404(username)?;
        let hash = self.hasher.hash(password).map_err(internal)?;
        if !self.store.set_password_hash(&account.username, &hash)? {
            return Err(error(ErrorCode::BankUnknownAccount, "unknown account"));
        }
        Ok(())
    }

    /// DELETE /accounts/$USERNAME (spec §9): a soft delete of an account with zero balance.
    pub fn delete(&self, caller: &Caller, username: &str) -> Result<(), TalerError> {
        match self.delete_gated(caller, username, None)? {
            None => Ok(()),
            Some(_) => Err(internal("a challenge without a TAN service")),
        }
    }

    /// DELETE /accounts/$USERNAME with the 2FA gate after the balance check
    /// (corebank-tan.md §4.5); `Some` is the 202 body.
    pub fn delete_gated(
        &self,
        caller: &Caller,
        username: &str,
        tan: Option<&TanRequest<'_>>,
    ) -> Result<Option<ChallengeResponse>, TalerError> {
        self.authorize(
            caller,
            username,
            true,
            self.settings.allow_deletion || caller.is_admin(),
        )?;
        if !self.settings.allow_deletion && !caller.is_admin() {
            return Err(error(
                ErrorCode::GenericForbidden,
                "account deletion is disabled",
            ));
        }
        if RESERVED_USERNAMES.contains(&username) {
            return Err(error(
                ErrorCode::BankReservedUsernameConflict,
                "reserved account",
            ));
        }
        let account = self.account_or_404(username)?;
        let current = factor_set(&account.tan_channels, &account.contact);
        if tan.is_some() && !current.is_empty() && !account.is_deleted() {
            if !account.balance.amount.is_zero() {
                return Err(error(
                    ErrorCode::BankAccountBalanceNotZero,
                    "balance is not zero",
                ));
            }
            match self.gate(
                caller,
                &account,
                &current,
                &[],
                Operation::AccountDelete,
                tan,
            )? {
                Gate::Challenged(body) => return Ok(Some(body)),
                Gate::Run(used) if !used.is_empty() => {
                    self.apply_gated(&account, GatedOp::Delete, used, false)?;
                    return Ok(None);
                }
                Gate::Run(_) => {}
            }
        }
        match self
            .store
            .delete_account(&account.username, self.clock.now())?
        {
            DeleteOutcome::Deleted => Ok(None),
            DeleteOutcome::NotFound => Err(error(ErrorCode::BankUnknownAccount, "unknown account")),
            DeleteOutcome::BalanceNotZero => Err(error(
                ErrorCode::BankAccountBalanceNotZero,
                "balance is not zero",
            )),
        }
    }

    /// POST /accounts/$USERNAME/token (spec §4.4): owner only, by password or refreshable
    /// token; a readonly token cannot mint a readwrite one.
    pub fn create_token(
        &self,
        caller: &Caller,
        username: &str,
        request: TokenRequest,
    ) -> Result<TokenSuccessResponse, TalerError> {
        match self.create_token_gated(caller, username, request, None)? {
            Ok(token) => Ok(token),
            Err(_) => Err(internal("a challenge without a TAN service")),
        }
    }

    /// Only the owner mints tokens of an account, the admin included (403/44).
    pub fn authorize_token_owner(&self, caller: &Caller, username: &str) -> Result<(), TalerError> {
        if caller.username.as_str() != username {
            return Err(error(
                ErrorCode::GenericForbidden,
                "tokens are minted by their owner",
            ));
        }
        Ok(())
    }

    /// Token creation with the 2FA gate for Basic callers (corebank-tan.md §3.3). `Err` is
    /// the 202 body.
    pub fn create_token_gated(
        &self,
        caller: &Caller,
        username: &str,
        request: TokenRequest,
        tan: Option<&TanRequest<'_>>,
    ) -> Result<Result<TokenSuccessResponse, ChallengeResponse>, TalerError> {
        self.authorize_token_owner(caller, username)?;
        if let Access::Token {
            scope, refreshable, ..
        } = caller.access
        {
            if !refreshable {
                return Err(error(
                    ErrorCode::GenericTokenPermissionInsufficient,
                    "token is not refreshable",
                ));
            }
            if request.scope == Scope::Readwrite && scope != Scope::Readwrite {
                return Err(error(
                    ErrorCode::GenericTokenPermissionInsufficient,
                    "cannot widen the scope",
                ));
            }
        }
        let mut used = Vec::new();
        let account = match (tan, &caller.access) {
            (Some(_), Access::Password) => self.store.account(&caller.username)?,
            _ => None,
        };
        if let Some(account) = &account {
            let current = factor_set(&account.tan_channels, &account.contact);
            match self.gate(caller, account, &current, &[], Operation::TokenCreate, tan)? {
                Gate::Challenged(body) => return Ok(Err(body)),
                Gate::Run(ids) => used = ids,
            }
        }
        let secret = TokenSecret(random_bytes(self.random.as_ref()));
        let now = self.clock.now();
        let duration = request
            .duration
            .unwrap_or_else(Self::default_token_duration);
        let record = TokenRecord {
            token_hash: secret_hash(&secret.0),
            username: caller.username.clone(),
            scope: request.scope,
            refreshable: request.refreshable,
            created_at: now,
            expires_at: now.saturating_add(duration),
            description: request.description,
        };
        let expiration = record.expires_at;
        match &account {
            Some(account) if !used.is_empty() => {
                self.apply_gated(account, GatedOp::Token(record), used, false)?;
            }
            _ => {
                if !self.store.insert_token(&record)? {
                    return Err(error(ErrorCode::GenericUnauthorized, "account is gone"));
                }
            }
        }
        Ok(Ok(TokenSuccessResponse {
            access_token: secret.to_wire(),
            expiration,
        }))
    }

    /// DELETE /accounts/$USERNAME/token: revokes the bearer token of this very request.
    pub fn delete_token(&self, caller: &Caller, username: &str) -> Result<(), TalerError> {
        let Access::Token { token_hash, .. } = caller.access else {
            return Err(json_invalid(
                "a token is deleted with the token itself (Bearer)",
            ));
        };
        if caller.username.as_str() != username {
            return Err(error(ErrorCode::GenericForbidden, "not your token"));
        }
        self.store.delete_token(&token_hash)?;
        Ok(())
    }
}

fn status(account: &Account) -> &'static str {
    if account.is_deleted() {
        "deleted"
    } else {
        "active"
    }
}

pub(super) fn account_status(account: &Account) -> &'static str {
    status(account)
}

/// `tan_channels` wins over `tan_channel`; `null` or `[]` disables 2FA.
fn new_tan_channels(patch: &AccountReconfiguration) -> Option<Vec<TanChannel>> {
    match (&patch.tan_channels, &patch.tan_channel) {
        (Some(channels), _) => Some(channels.clone().unwrap_or_default()),
        (None, Some(channel)) => Some(channel.iter().copied().collect()),
        (None, None) => None,
    }
}

fn validate_contact_patch(patch: &super::api::ContactDataPatch) -> Result<(), TalerError> {
    let contact = ContactData {
        email: patch.email.clone().flatten(),
        phone: patch.phone.clone().flatten(),
    };
    super::registration::validate_contact(super::api::ContactDataRequest {
        email: contact.email,
        phone: contact.phone,
    })
    .map(|_| ())
}

//! `AccountService`: the bank's account rules over the ports. Every operation validates in the
//! spec's check order, then makes one atomic store call.

use std::sync::Arc;

use crate::domain::primitives::{
    Amount, AmountError, Currency, ErrorCode, Iban, RelativeTime, TalerError, secret_hash,
};
use crate::ports::accounts::{AccountStore, AddressChoice, CreateOutcome, NewAccount};
use crate::ports::clock::Clock;
use crate::ports::password::PasswordHasher;
use crate::ports::random::{Random, random_bytes};

use super::auth::{Access, Caller, Credentials, TokenSecret, parse_authorization};
use super::model::{ADMIN, Account, ContactData, PaytoContext, TanChannel, Username};
use super::payto::generate_iban;

/// Password length limits, in Unicode scalar values.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 64;

/// Which payto scheme new accounts get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Iban,
    XTalerBank,
}

/// The bank's configuration as the rules need it.
#[derive(Debug, Clone)]
pub struct BankSettings {
    pub currency: Currency,
    pub wire_type: WireType,
    pub payto: PaytoContext,
    pub default_debt_limit: Amount,
    /// Paid to each new non-exchange account; `None` when zero.
    pub registration_bonus: Option<Amount>,
    pub allow_registration: bool,
    pub allow_deletion: bool,
    pub allow_edit_name: bool,
    pub allow_edit_cashout: bool,
    /// Channels with a configured delivery script.
    pub tan_channels: Vec<TanChannel>,
}

pub struct AccountService {
    pub(super) store: Arc<dyn AccountStore>,
    pub(super) hasher: Arc<dyn PasswordHasher>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) random: Arc<dyn Random>,
    pub(super) settings: BankSettings,
    /// Verified against when a login is unknown, so that unknown and known logins take the
    /// same time.
    decoy_hash: String,
}

/// A failure of the store or the hasher: a 500 whose cause goes to the log only.
pub(super) fn internal(error: impl std::fmt::Display) -> TalerError {
    TalerError::new(ErrorCode::GenericInternalInvariantFailure).with_detail(error.to_string())
}

pub(super) fn error(code: ErrorCode, hint: &'static str) -> TalerError {
    TalerError::new(code).with_hint(hint)
}

pub(super) fn json_invalid(detail: impl Into<String>) -> TalerError {
    TalerError::new(ErrorCode::GenericJsonInvalid).with_detail(detail)
}

pub(super) fn missing_authorization() -> TalerError {
    error(
        ErrorCode::GenericParameterMissing,
        "authorization header missing",
    )
    .with_detail("Authorization")
}

fn unauthorized() -> TalerError {
    error(ErrorCode::GenericUnauthorized, "bad credentials")
}

impl AccountService {
    pub fn new(
        store: Arc<dyn AccountStore>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        settings: BankSettings,
    ) -> Result<AccountService, TalerError> {
        let decoy: [u8; 16] = random_bytes(random.as_ref());
        let decoy_hash = hasher
            .hash(&data_encoding::HEXLOWER.encode(&decoy))
            .map_err(internal)?;
        Ok(AccountService {
            store,
            hasher,
            clock,
            random,
            settings,
            decoy_hash,
        })
    }

    pub fn settings(&self) -> &BankSettings {
        &self.settings
    }

    /// Creates the `admin` account with an unusable random password if it does not exist
    /// (an operator sets a real one with `bank passwd`).
    pub fn ensure_admin(&self) -> Result<(), TalerError> {
        let admin = Username::parse(ADMIN).ok_or_else(|| internal("admin username"))?;
        if self.store.account(&admin)?.is_some() {
            return Ok(());
        }
        let secret: [u8; 32] = random_bytes(self.random.as_ref());
        let password_hash = self
            .hasher
            .hash(&data_encoding::HEXLOWER.encode(&secret))
            .map_err(internal)?;
        let account = NewAccount {
            username: admin.clone(),
            password_hash,
            name: "Bank administrator".into(),
            is_public: false,
            is_taler_exchange: false,
            contact: ContactData::default(),
            cashout_payto: None,
            address: self.admin_address(&admin),
            debit_threshold: self.settings.default_debt_limit.clone(),
            min_cashout: None,
            tan_channels: Vec::new(),
            created_at: self.clock.now(),
            bonus: None,
        };
        match self.store.create_account(account)? {
            CreateOutcome::Created(_) | CreateOutcome::UsernameTaken(_) => Ok(()),
            other => Err(internal(format!("creating admin: {other:?}"))),
        }
    }

    fn admin_address(&self, admin: &Username) -> AddressChoice {
        match self.settings.wire_type {
            WireType::XTalerBank => {
                AddressChoice::Fixed(super::model::AccountAddress::XTalerBank(admin.clone()))
            }
            WireType::Iban => AddressChoice::IbanCandidates(self.iban_candidates()),
        }
    }

    /// Fresh IBANs: the first try and up to five retries on collision.
    pub(super) fn iban_candidates(&self) -> Vec<Iban> {
        (0..6)
            .filter_map(|_| {
                // Test account numbers: the slight modulo bias does not matter here.
                let digits: [u8; 11] = random_bytes(self.random.as_ref());
                generate_iban(digits.map(|d| d % 10))
            })
            .collect()
    }

    /// The row id of the live account `username`, `None` when it is unknown or deleted (the
    /// unauthenticated TAN endpoints address challenges by account name).
    pub fn live_account_id(&self, username: &str) -> Result<Option<i64>, TalerError> {
        let Some(username) = Username::parse(username) else {
            return Ok(None);
        };
        Ok(self
            .store
            .account(&username)?
            .filter(|a| !a.is_deleted())
            .map(|a| a.row_id))
    }

    /// Checks the `Authorization` header: `Ok(None)` when there is none.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Option<Caller>, TalerError> {
        Ok(self
            .authenticate_with_account(header)?
            .map(|(caller, _)| caller))
    }

    /// Like `authenticate`, also answering the caller's own account as just read.
    pub(super) fn authenticate_with_account(
        &self,
        header: Option<&str>,
    ) -> Result<Option<(Caller, Account)>, TalerError> {
        let Some(header) = header else {
            return Ok(None);
        };
        match parse_authorization(header)? {
            Credentials::Basic { login, password } => self.login(&login, &password).map(Some),
            Credentials::Bearer(secret) => self.token_caller(&secret).map(Some),
        }
    }

    /// Like `authenticate`, but a missing header is 401 with code 25.
    pub fn require_caller(&self, header: Option<&str>) -> Result<Caller, TalerError> {
        self.authenticate(header)?.ok_or_else(|| {
            error(
                ErrorCode::GenericParameterMissing,
                "authorization header missing",
            )
            .with_detail("Authorization")
        })
    }

    fn login(&self, login: &str, password: &str) -> Result<(Caller, Account), TalerError> {
        let account = match Username::parse(login) {
            Some(username) => self.store.account(&username)?,
            None => None,
        };
        let Some(account) = account.filter(|a| !a.is_deleted()) else {
            // Same work as for a known login, so timing does not reveal which logins exist.
            let _ = self.hasher.verify(password, &self.decoy_hash);
            return Err(unauthorized());
        };
        if !self.hasher.verify(password, &account.password_hash) {
            return Err(unauthorized());
        }
        let caller = Caller {
            username: account.username.clone(),
            access: Access::Password,
        };
        Ok((caller, account))
    }

    fn token_caller(&self, secret: &TokenSecret) -> Result<(Caller, Account), TalerError> {
        let token_hash = secret_hash(&secret.0);
        let (token, account) = self
            .store
            .token_and_account(&token_hash)?
            .ok_or_else(unauthorized)?;
        if token.expires_at <= self.clock.now() {
            return Err(error(ErrorCode::GenericUnauthorized, "token expired"));
        }
        let access = Access::Token {
            scope: token.scope,
            refreshable: token.refreshable,
            token_hash,
        };
        Ok((
            Caller {
                username: token.username,
                access,
            },
            account,
        ))
    }

    /// The caller may act on `username`'s account: readable (or writable) access first
    /// (403/16), then ownership or admin (403/44). The HTTP adapter asks this before it
    /// decodes a body, so a stranger learns nothing from how a body is refused.
    pub fn authorize(
        &self,
        caller: &Caller,
        username: &str,
        write: bool,
        admin_allowed: bool,
    ) -> Result<(), TalerError> {
        let scope_ok = if write {
            caller.can_write()
        } else {
            caller.can_read()
        };
        if !scope_ok {
            return Err(error(
                ErrorCode::GenericTokenPermissionInsufficient,
                "token scope too weak",
            ));
        }
        let is_owner = caller.username.as_str() == username;
        if !(is_owner || (admin_allowed && caller.is_admin())) {
            return Err(error(
                ErrorCode::GenericForbidden,
                "not allowed for this account",
            ));
        }
        Ok(())
    }

    pub(super) fn require_admin(&self, caller: &Caller, write: bool) -> Result<(), TalerError> {
        self.authorize(caller, ADMIN, write, true)
    }

    /// Parses an amount in the bank's currency with the bank's error codes.
    pub(super) fn parse_amount(&self, text: &str, field: &str) -> Result<Amount, TalerError> {
        let amount: Amount = text.parse().map_err(|e| {
            match e {
                AmountError::TooBig => error(ErrorCode::BankNumberTooBig, "amount too big"),
                _ => error(ErrorCode::BankBadFormatAmount, "malformed amount"),
            }
            .with_detail(field.to_owned())
        })?;
        if amount.currency() != &self.settings.currency {
            return Err(error(ErrorCode::GenericCurrencyMismatch, "wrong currency")
                .with_detail(format!("{field}: expected {}", self.settings.currency)));
        }
        Ok(amount)
    }

    pub(super) fn account_or_404(&self, username: &str) -> Result<Account, TalerError> {
        let account = match Username::parse(username) {
            Some(username) => self.store.account(&username)?,
            None => None,
        };
        account.ok_or_else(|| error(ErrorCode::BankUnknownAccount, "unknown account"))
    }

    /// Default token lifetime.
    pub(super) fn default_token_duration() -> RelativeTime {
        RelativeTime::from_seconds(24 * 60 * 60)
    }
}

/// Checks a new password's length (spec §4.6).
pub(super) fn check_password_length(password: &str) -> Result<(), TalerError> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(error(ErrorCode::BankPasswordTooShort, "password too short"));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(error(ErrorCode::BankPasswordTooLong, "password too long"));
    }
    Ok(())
}

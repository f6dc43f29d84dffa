//! The bank's account store. Each method is one atomic transaction with a typed outcome.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::domain::accounts::{
    Account, AccountAddress, Balance, ContactData, TanChannel, TokenRecord, Username,
};
use crate::domain::primitives::{Amount, Currency, Iban, Timestamp};

use super::StoreError;
use super::tan::InMemoryTanStore;

/// How the new account's address is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressChoice {
    /// A given or derived address; taken already → `AddressTaken`.
    Fixed(AccountAddress),
    /// Generated IBANs, tried in order; the first one never assigned before wins.
    IbanCandidates(Vec<Iban>),
}

/// Everything needed to create an account (the password is hashed already).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: Username,
    pub password_hash: String,
    pub name: String,
    pub is_public: bool,
    pub is_taler_exchange: bool,
    pub contact: ContactData,
    pub cashout_payto: Option<String>,
    pub address: AddressChoice,
    pub debit_threshold: Amount,
    pub min_cashout: Option<Amount>,
    pub tan_channels: Vec<TanChannel>,
    pub created_at: Timestamp,
    /// Paid by `admin` in the same transaction, if any.
    pub bonus: Option<Amount>,
}

impl NewAccount {
    /// The account's currency (its debt limit's). A bank has one currency and the domain
    /// checks it first, so any other amount in another currency is a bug: refused.
    pub fn currency(&self) -> Result<&Currency, StoreError> {
        let currency = self.debit_threshold.currency();
        self.min_cashout
            .iter()
            .chain(&self.bonus)
            .try_for_each(|amount| same_currency(currency, amount))?;
        Ok(currency)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created(Account),
    /// The username exists (possibly soft-deleted); here is that account.
    UsernameTaken(Account),
    /// The address belongs or belonged to another account, or no IBAN candidate was free.
    AddressTaken,
    /// `admin` cannot pay the bonus without exceeding its debt limit; nothing was created.
    BonusUnallowedDebit,
}

/// Field-wise changes of an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChanges {
    pub name: Option<String>,
    pub is_public: Option<bool>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub cashout_payto: Option<Option<String>>,
    pub debit_threshold: Option<Amount>,
    pub min_cashout: Option<Option<Amount>>,
    pub tan_channels: Option<Vec<TanChannel>>,
}

impl AccountChanges {
    /// Refuses amounts in another currency than the account's (see `NewAccount::currency`).
    pub fn check_currency(&self, currency: &Currency) -> Result<(), StoreError> {
        let min_cashout = self.min_cashout.iter().flatten();
        self.debit_threshold
            .iter()
            .chain(min_cashout)
            .try_for_each(|amount| same_currency(currency, amount))
    }
}

fn same_currency(currency: &Currency, amount: &Amount) -> Result<(), StoreError> {
    if amount.currency() == currency {
        Ok(())
    } else {
        Err(StoreError::Internal(format!(
            "amount {amount} for an account in {currency}"
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// Missing or already deleted.
    NotFound,
    BalanceNotZero,
}

/// A page of accounts (spec §1.6): `limit > 0` rows after `offset` ascending, `limit < 0`
/// rows before `offset` descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPage {
    pub limit: i64,
    pub offset: i64,
    /// Case-sensitive substring of the legal name.
    pub name_contains: Option<String>,
    /// Only public, not deleted accounts.
    pub public_only: bool,
}

/// The challenges a request that passed the 2FA gate consumes with its change, and whether
/// the change kills the account's other open challenges (corebank-tan.md §4.4, §8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TanUse {
    pub account_id: i64,
    pub used: Vec<crate::domain::tan::ChallengeId>,
    pub invalidate_others: bool,
    pub now: Timestamp,
}

/// A protected change (corebank-tan.md §3.3) made together with a `TanUse`.
#[derive(Debug, Clone)]
pub enum GatedOp {
    Update(AccountChanges),
    Password(String),
    Delete,
    Token(TokenRecord),
}

/// The outcome of a change made together with a `TanUse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatedChange {
    Done,
    /// The account is missing or deleted; nothing changed.
    NoAccount,
    /// A deletion of an account whose balance is not zero; nothing changed.
    BalanceNotZero,
    /// A challenge of `used` stopped counting meanwhile; nothing changed.
    StaleChallenge,
}

pub trait AccountStore: Send + Sync {
    /// Creates an account (and pays its bonus) atomically.
    fn create_account(&self, account: NewAccount) -> Result<CreateOutcome, StoreError>;
    /// The account with this username, deleted or not.
    fn account(&self, username: &Username) -> Result<Option<Account>, StoreError>;
    /// Applies `changes` to an active account; `false` if it is missing or deleted.
    fn update_account(
        &self,
        username: &Username,
        changes: &AccountChanges,
    ) -> Result<bool, StoreError>;
    /// The change `op` of the account and the `tan` consumption in one transaction. A store
    /// without TAN challenges cannot do this.
    fn apply_with_tan(
        &self,
        _username: &Username,
        _op: &GatedOp,
        _tan: &TanUse,
    ) -> Result<GatedChange, StoreError> {
        Err(StoreError::Internal(
            "this account store keeps no TAN challenges".into(),
        ))
    }
    /// Replaces the password hash of an active account; `false` if missing or deleted.
    fn set_password_hash(&self, username: &Username, hash: &str) -> Result<bool, StoreError>;
    /// Soft-deletes an active account whose balance is zero.
    fn delete_account(
        &self,
        username: &Username,
        now: Timestamp,
    ) -> Result<DeleteOutcome, StoreError>;
    fn list_accounts(&self, page: &AccountPage) -> Result<Vec<Account>, StoreError>;
    /// Stores a token of an active account; `false` if the account is missing or deleted.
    fn insert_token(&self, token: &TokenRecord) -> Result<bool, StoreError>;
    /// The token with this hash, if its account is active.
    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError>;
    /// The token with this hash and its (active) account, read together: the common path of
    /// an authenticated request.
    fn token_and_account(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<(TokenRecord, Account)>, StoreError> {
        let Some(token) = self.token(token_hash)? else {
            return Ok(None);
        };
        let account = self.account(&token.username)?.filter(|a| !a.is_deleted());
        Ok(account.map(|account| (token, account)))
    }
    /// Deletes the token; `false` if there was none.
    fn delete_token(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError>;
}

/// An in-memory `AccountStore` for unit tests and embedders. Built `with_challenges`, it
/// makes gated changes together with the TAN challenges of that store.
#[derive(Debug, Default)]
pub struct InMemoryAccountStore {
    state: Mutex<MemoryState>,
    challenges: Option<Arc<InMemoryTanStore>>,
}

#[derive(Debug, Default)]
struct MemoryState {
    accounts: BTreeMap<i64, Account>,
    next_row: i64,
    assigned_ibans: std::collections::HashSet<Iban>,
    tokens: BTreeMap<[u8; 32], TokenRecord>,
    ledger: Vec<(i64, i64, Amount, String)>,
}

impl MemoryState {
    fn by_name(&self, username: &Username) -> Option<&Account> {
        self.accounts.values().find(|a| &a.username == username)
    }

    fn by_name_mut(&mut self, username: &Username) -> Option<&mut Account> {
        self.accounts.values_mut().find(|a| &a.username == username)
    }

    fn address_in_use(&self, address: &AccountAddress) -> bool {
        let iban_used =
            matches!(address, AccountAddress::Iban(iban) if self.assigned_ibans.contains(iban));
        iban_used || self.accounts.values().any(|a| &a.address == address)
    }
}

impl InMemoryAccountStore {
    /// A store whose gated changes consume challenges of `challenges` atomically.
    pub fn with_challenges(challenges: Arc<InMemoryTanStore>) -> Self {
        InMemoryAccountStore {
            state: Mutex::default(),
            challenges: Some(challenges),
        }
    }

    /// Makes a protected change; `Done` only if it applied.
    fn apply_op(
        &self,
        username: &Username,
        op: &GatedOp,
        now: Timestamp,
    ) -> Result<GatedChange, StoreError> {
        let applied = match op {
            GatedOp::Update(changes) => self.update_account(username, changes)?,
            GatedOp::Password(hash) => self.set_password_hash(username, hash)?,
            GatedOp::Token(token) => self.insert_token(token)?,
            GatedOp::Delete => match self.delete_account(username, now)? {
                DeleteOutcome::Deleted => true,
                DeleteOutcome::NotFound => false,
                DeleteOutcome::BalanceNotZero => return Ok(GatedChange::BalanceNotZero),
            },
        };
        Ok(if applied {
            GatedChange::Done
        } else {
            GatedChange::NoAccount
        })
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Transfers recorded so far: (debtor row, creditor row, amount, subject).
    pub fn ledger(&self) -> Vec<(i64, i64, Amount, String)> {
        self.lock().ledger.clone()
    }
}

impl AccountStore for InMemoryAccountStore {
    fn apply_with_tan(
        &self,
        username: &Username,
        op: &GatedOp,
        tan: &TanUse,
    ) -> Result<GatedChange, StoreError> {
        let Some(challenges) = &self.challenges else {
            return Err(StoreError::Internal(
                "an in-memory account store built without challenges".into(),
            ));
        };
        let outcome = challenges.consume_with(
            tan.account_id,
            &tan.used,
            tan.invalidate_others,
            tan.now,
            || {
                let outcome = self.apply_op(username, op, tan.now)?;
                Ok((outcome, outcome == GatedChange::Done))
            },
        )?;
        Ok(outcome.unwrap_or(GatedChange::StaleChallenge))
    }

    fn create_account(&self, new: NewAccount) -> Result<CreateOutcome, StoreError> {
        let mut state = self.lock();
        if let Some(existing) = state.by_name(&new.username) {
            return Ok(CreateOutcome::UsernameTaken(existing.clone()));
        }
        let currency = new.currency()?.clone();
        let address = match &new.address {
            AddressChoice::Fixed(address) => {
                Some(address.clone()).filter(|a| !state.address_in_use(a))
            }
            AddressChoice::IbanCandidates(candidates) => candidates
                .iter()
                .map(|iban| AccountAddress::Iban(iban.clone()))
                .find(|a| !state.address_in_use(a)),
        };
        let Some(address) = address else {
            return Ok(CreateOutcome::AddressTaken);
        };
        let mut balance = Balance::zero(Amount::zero(currency));
        let row_id = state.next_row + 1;
        let mut admin_after = None;
        if let Some(bonus) = &new.bonus {
            let admin_name = Username::parse(crate::domain::accounts::ADMIN)
                .ok_or_else(|| StoreError::Internal("admin".into()))?;
            let admin = state
                .by_name(&admin_name)
                .ok_or_else(|| StoreError::Internal("no admin account".into()))?;
            let debited = admin
                .balance
                .debit(bonus, &admin.debit_threshold)
                .map_err(StoreError::amount)?;
            let Some(debited) = debited else {
                return Ok(CreateOutcome::BonusUnallowedDebit);
            };
            balance = balance.credit(bonus).map_err(StoreError::amount)?;
            admin_after = Some((admin.row_id, debited, bonus.clone()));
        }
        let account = Account {
            row_id,
            username: new.username,
            password_hash: new.password_hash,
            name: new.name,
            is_public: new.is_public,
            is_taler_exchange: new.is_taler_exchange,
            contact: new.contact,
            cashout_payto: new.cashout_payto,
            address: address.clone(),
            balance,
            debit_threshold: new.debit_threshold,
            min_cashout: new.min_cashout,
            tan_channels: new.tan_channels,
            created_at: new.created_at,
            deleted_at: None,
        };
        if let AccountAddress::Iban(iban) = address {
            state.assigned_ibans.insert(iban);
        }
        if let Some((admin_row, debited, bonus)) = admin_after {
            if let Some(admin) = state.accounts.get_mut(&admin_row) {
                admin.balance = debited;
            }
            state
                .ledger
                .push((admin_row, row_id, bonus, "bonus".into()));
        }
        state.next_row = row_id;
        state.accounts.insert(row_id, account.clone());
        Ok(CreateOutcome::Created(account))
    }

    fn account(&self, username: &Username) -> Result<Option<Account>, StoreError> {
        Ok(self.lock().by_name(username).cloned())
    }

    fn update_account(
        &self,
        username: &Username,
        changes: &AccountChanges,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(account) = state.by_name_mut(username).filter(|a| !a.is_deleted()) else {
            return Ok(false);
        };
        changes.check_currency(account.balance.amount.currency())?;
        apply_changes(account, changes);
        Ok(true)
    }

    fn set_password_hash(&self, username: &Username, hash: &str) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(account) = state.by_name_mut(username).filter(|a| !a.is_deleted()) else {
            return Ok(false);
        };
        account.password_hash = hash.to_owned();
        Ok(true)
    }

    fn delete_account(
        &self,
        username: &Username,
        now: Timestamp,
    ) -> Result<DeleteOutcome, StoreError> {
        let mut state = self.lock();
        let Some(account) = state.by_name_mut(username).filter(|a| !a.is_deleted()) else {
            return Ok(DeleteOutcome::NotFound);
        };
        if !account.balance.amount.is_zero() {
            return Ok(DeleteOutcome::BalanceNotZero);
        }
        account.deleted_at = Some(now);
        Ok(DeleteOutcome::Deleted)
    }

    fn list_accounts(&self, page: &AccountPage) -> Result<Vec<Account>, StoreError> {
        let state = self.lock();
        let wanted = |a: &&Account| {
            let visible = !page.public_only || (a.is_public && !a.is_deleted());
            let named = page
                .name_contains
                .as_ref()
                .is_none_or(|part| a.name.contains(part.as_str()));
            visible && named
        };
        let count = usize::try_from(page.limit.unsigned_abs()).unwrap_or(usize::MAX);
        let rows: Vec<Account> = if page.limit >= 0 {
            state
                .accounts
                .range(page.offset.saturating_add(1)..)
                .map(|(_, a)| a)
                .filter(wanted)
                .take(count)
                .cloned()
                .collect()
        } else {
            state
                .accounts
                .range(..page.offset)
                .rev()
                .map(|(_, a)| a)
                .filter(wanted)
                .take(count)
                .cloned()
                .collect()
        };
        Ok(rows)
    }

    fn insert_token(&self, token: &TokenRecord) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if state
            .by_name(&token.username)
            .is_none_or(Account::is_deleted)
        {
            return Ok(false);
        }
        state.tokens.insert(token.token_hash, token.clone());
        Ok(true)
    }

    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        let state = self.lock();
        let token = state
            .tokens
            .get(token_hash)
            .filter(|t| state.by_name(&t.username).is_some_and(|a| !a.is_deleted()));
        Ok(token.cloned())
    }

    fn delete_token(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.lock().tokens.remove(token_hash).is_some())
    }
}

/// Applies field-wise changes; shared by the store implementations.
pub fn apply_changes(account: &mut Account, changes: &AccountChanges) {
    if let Some(name) = &changes.name {
        account.name = name.clone();
    }
    if let Some(is_public) = changes.is_public {
        account.is_public = is_public;
    }
    if let Some(email) = &changes.email {
        account.contact.email = email.clone();
    }
    if let Some(phone) = &changes.phone {
        account.contact.phone = phone.clone();
    }
    if let Some(cashout) = &changes.cashout_payto {
        account.cashout_payto = cashout.clone();
    }
    if let Some(threshold) = &changes.debit_threshold {
        account.debit_threshold = threshold.clone();
    }
    if let Some(min_cashout) = &changes.min_cashout {
        account.min_cashout = min_cashout.clone();
    }
    if let Some(channels) = &changes.tan_channels {
        account.tan_channels = channels.clone();
    }
}

#[cfg(test)]
mod tests {
    crate::ports::account_conformance::account_store_conformance!(
        super::InMemoryAccountStore::default()
    );
}

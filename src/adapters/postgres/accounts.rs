//! `AccountStore` on PostgreSQL (schema: `migrations/0002_accounts.sql`).
//!
//! Every call is one READ COMMITTED transaction, and several run at once. Where the SQLite
//! store relies on its single writer, this one locks instead:
//! - a creation with a bonus locks the `admin` row before it reads it, so two bonuses never
//!   debit the same balance (rule L1);
//! - a clash with a concurrent creation shows as `ON CONFLICT DO NOTHING` inserting nothing,
//!   never as a failed statement (which would abort the transaction);
//! - a change locks the account row it read, a gated change also the challenges it consumes.

use std::sync::Arc;

use postgres::types::ToSql;
use postgres::{GenericClient, Row};

use super::{PgDatabase, PgError, Session};
use crate::adapters::account_rows::{
    AccountRow, TokenRow, amount_to_sql, channels_to_sql, created_account, internal,
};
use crate::adapters::convert::{corrupt, expiry_to_sql, micros_to_sql};
use crate::domain::accounts::{ADMIN, Account, AccountAddress, Balance, TokenRecord, Username};
use crate::domain::primitives::{Amount, Currency, Timestamp};
use crate::ports::StoreError;
use crate::ports::accounts::{
    AccountChanges, AccountPage, AccountStore, AddressChoice, CreateOutcome, DeleteOutcome,
    GatedChange, GatedOp, NewAccount, TanUse,
};

/// The bank accounts, tokens and bonus ledger in the shared database.
pub struct PgAccountStore {
    db: Arc<PgDatabase>,
}

impl PgAccountStore {
    pub fn new(db: Arc<PgDatabase>) -> PgAccountStore {
        PgAccountStore { db }
    }
}

/// The columns `account_row` expects, in its order.
macro_rules! account_columns {
    () => {
        "id, username, password_hash, name, is_public, is_taler_exchange, email, phone, \
         cashout_payto, address, currency, balance_value, balance_fraction, has_debt, \
         max_debt_value, max_debt_fraction, min_cashout_value, min_cashout_fraction, \
         tan_channels, created_at, deleted_at"
    };
}

const ACCOUNT_BY_NAME: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM bank_accounts WHERE username = $1"
);

/// The columns of `account_columns!`.
const ACCOUNT_COLUMNS: usize = 21;

/// An active account's columns (as `account_row` reads them), then the token's columns from
/// index `ACCOUNT_COLUMNS` on (as `token_row` reads them): a bearer read in one round trip.
const TOKEN_WITH_ACTIVE_ACCOUNT: &str = concat!(
    "SELECT a.*, a.username, t.scope, t.refreshable, t.created_at, t.expires_at, \
     t.description FROM bank_tokens t JOIN (SELECT ",
    account_columns!(),
    " FROM bank_accounts) a ON a.id = t.account_id \
     WHERE t.token_hash = $1 AND a.deleted_at IS NULL"
);

const TOKEN_OF_ACTIVE_ACCOUNT: &str = "SELECT a.username, t.scope, t.refreshable, t.created_at, \
     t.expires_at, t.description FROM bank_tokens t JOIN bank_accounts a ON a.id = t.account_id \
     WHERE t.token_hash = $1 AND a.deleted_at IS NULL";

impl AccountStore for PgAccountStore {
    fn create_account(&self, account: NewAccount) -> Result<CreateOutcome, StoreError> {
        self.db.write(|s| {
            // A refusal undoes what the attempt wrote (a claimed IBAN) and is still answered.
            s.savepoint(|s| match try_create(s, &account) {
                Ok(created) => Ok((CreateOutcome::Created(created), true)),
                Err(Refusal::Outcome(outcome)) => Ok((*outcome, false)),
                Err(Refusal::Failed(error)) => Err(error),
            })
        })
    }

    fn account(&self, username: &Username) -> Result<Option<Account>, StoreError> {
        self.db.read(|s| account_by_name(s, username))
    }

    fn update_account(
        &self,
        username: &Username,
        changes: &AccountChanges,
    ) -> Result<bool, StoreError> {
        self.db.write(|s| update(s, username, changes))
    }

    fn apply_with_tan(
        &self,
        username: &Username,
        op: &GatedOp,
        tan: &TanUse,
    ) -> Result<GatedChange, StoreError> {
        let now = micros_to_sql(tan.now)?;
        self.db.write(|s| {
            // First, as `TanStore::consume` does: locks the account row, then the challenges,
            // so gated changes of one account run one after the other without deadlocks.
            if !super::tan::usable_in(s, tan.account_id, &tan.used)? {
                return Ok(GatedChange::StaleChallenge);
            }
            let applied = match op {
                GatedOp::Update(changes) => update(s, username, changes)?,
                GatedOp::Password(hash) => set_hash(s, username, hash)?,
                GatedOp::Token(token) => insert_token(s, token)?,
                GatedOp::Delete => match soft_delete(s, username, now)? {
                    DeleteOutcome::Deleted => true,
                    DeleteOutcome::NotFound => false,
                    DeleteOutcome::BalanceNotZero => return Ok(GatedChange::BalanceNotZero),
                },
            };
            if !applied {
                return Ok(GatedChange::NoAccount);
            }
            super::tan::mark_in(s, tan.account_id, &tan.used, tan.invalidate_others, now)?;
            Ok(GatedChange::Done)
        })
    }

    fn set_password_hash(&self, username: &Username, hash: &str) -> Result<bool, StoreError> {
        self.db.write(|s| set_hash(s, username, hash))
    }

    fn delete_account(
        &self,
        username: &Username,
        now: Timestamp,
    ) -> Result<DeleteOutcome, StoreError> {
        let now = micros_to_sql(now)?;
        self.db.write(|s| soft_delete(s, username, now))
    }

    fn list_accounts(&self, page: &AccountPage) -> Result<Vec<Account>, StoreError> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        self.db.read(|s| list(s, page))
    }

    fn insert_token(&self, token: &TokenRecord) -> Result<bool, StoreError> {
        self.db.write(|s| insert_token(s, token))
    }

    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        self.db.read(|s| token_by_hash(s, token_hash))
    }

    /// One statement for both.
    fn token_and_account(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<(TokenRecord, Account)>, StoreError> {
        self.db.read(|s| {
            let Some(row) = s.query_opt(TOKEN_WITH_ACTIVE_ACCOUNT, &[&&token_hash[..]])? else {
                return Ok(None);
            };
            let token = token_row(&row, ACCOUNT_COLUMNS)?.into_record(*token_hash)?;
            Ok(Some((token, account_row(&row)?.into_account()?)))
        })
    }

    fn delete_token(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.db.write(|s| {
            let deleted = s.execute(
                "DELETE FROM bank_tokens WHERE token_hash = $1",
                &[&&token_hash[..]],
            )?;
            Ok(deleted == 1)
        })
    }
}

fn set_hash<C: GenericClient>(
    s: &mut Session<'_, C>,
    username: &Username,
    hash: &str,
) -> Result<bool, PgError> {
    let changed = s.execute(
        "UPDATE bank_accounts SET password_hash = $1 WHERE username = $2 AND deleted_at IS NULL",
        &[&hash, &username.as_str()],
    )?;
    Ok(changed == 1)
}

// ---- reading accounts ----

fn account_by_name<C: GenericClient>(
    s: &mut Session<'_, C>,
    username: &Username,
) -> Result<Option<Account>, PgError> {
    let row = s.query_opt(ACCOUNT_BY_NAME, &[&username.as_str()])?;
    row.map(|row| account_row(&row)?.into_account().map_err(PgError::from))
        .transpose()
}

/// Reads the columns of `account_columns!`.
fn account_row(row: &Row) -> Result<AccountRow, PgError> {
    Ok(AccountRow {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        password_hash: row.try_get(2)?,
        name: row.try_get(3)?,
        is_public: row.try_get(4)?,
        is_taler_exchange: row.try_get(5)?,
        email: row.try_get(6)?,
        phone: row.try_get(7)?,
        cashout_payto: row.try_get(8)?,
        address: row.try_get(9)?,
        currency: row.try_get(10)?,
        balance: (row.try_get(11)?, row.try_get(12)?),
        has_debt: row.try_get(13)?,
        max_debt: (row.try_get(14)?, row.try_get(15)?),
        min_cashout: (row.try_get(16)?, row.try_get(17)?),
        tan_channels: row.try_get(18)?,
        created_at: row.try_get(19)?,
        deleted_at: row.try_get(20)?,
    })
}

fn list<C: GenericClient>(
    s: &mut Session<'_, C>,
    page: &AccountPage,
) -> Result<Vec<Account>, PgError> {
    let count = page.limit.checked_abs().unwrap_or(i64::MAX);
    let rows = s.query(
        page_query(page),
        &[&page.offset, &count, &page.name_contains],
    )?;
    rows.iter()
        .map(|row| Ok(account_row(row)?.into_account()?))
        .collect()
}

/// The listing query: direction by the sign of the limit; the public filter is spelled out
/// (not bound) so that the planner can use the partial index `bank_accounts_public`.
/// `strpos` is a literal, case-sensitive substring test (LIKE is neither). Ids are handed out
/// at insert and concurrent creations may commit out of that order, so a page read meanwhile
/// can miss an account created at that moment: accepted for these admin and public listings.
fn page_query(page: &AccountPage) -> &'static str {
    macro_rules! listing {
        ($after:literal, $public:literal, $order:literal) => {
            concat!(
                "SELECT ",
                account_columns!(),
                " FROM bank_accounts WHERE ",
                $after,
                " AND ($3::text IS NULL OR strpos(name, $3) > 0)",
                $public,
                " ORDER BY id ",
                $order,
                " LIMIT $2"
            )
        };
    }
    match (page.limit > 0, page.public_only) {
        (true, false) => listing!("id > $1", "", "ASC"),
        (true, true) => listing!("id > $1", " AND is_public AND deleted_at IS NULL", "ASC"),
        (false, false) => listing!("id < $1", "", "DESC"),
        (false, true) => listing!("id < $1", " AND is_public AND deleted_at IS NULL", "DESC"),
    }
}

// ---- creating accounts ----

/// Why a creation attempt stopped before it was complete.
enum Refusal {
    /// A typed outcome: the attempt's changes must vanish, the outcome goes to the caller.
    /// (Boxed: an `Account` inside would make every `Result` of the creation path large.)
    Outcome(Box<CreateOutcome>),
    /// A failure: the whole transaction is rolled back and the error reported.
    Failed(PgError),
}

fn refuse(outcome: CreateOutcome) -> Refusal {
    Refusal::Outcome(Box::new(outcome))
}

impl From<PgError> for Refusal {
    fn from(e: PgError) -> Self {
        Refusal::Failed(e)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Failed(e.into())
    }
}

impl From<postgres::Error> for Refusal {
    fn from(e: postgres::Error) -> Self {
        Refusal::Failed(e.into())
    }
}

/// The checks come in the SQLite store's order, so the outcomes are the same; the inserts
/// then catch what a concurrent creation took in between.
fn try_create<C: GenericClient>(
    s: &mut Session<'_, C>,
    new: &NewAccount,
) -> Result<Account, Refusal> {
    if new.bonus.is_some() {
        // L1: registrations with a bonus take turns on the admin row (NO KEY: rows that
        // reference it, like a login's token, are not held up).
        s.query_opt(
            "SELECT id FROM bank_accounts WHERE username = $1 FOR NO KEY UPDATE",
            &[&ADMIN],
        )?;
    }
    if let Some(existing) = account_by_name(s, &new.username)? {
        return Err(refuse(CreateOutcome::UsernameTaken(existing)));
    }
    let currency = new.currency()?;
    let address =
        claim_address(s, &new.address)?.ok_or_else(|| refuse(CreateOutcome::AddressTaken))?;
    let bonus = plan_bonus(s, new)?;
    let balance = match &bonus {
        Some(plan) => plan.new_balance.clone(),
        None => Balance::zero(Amount::zero(currency.clone())),
    };
    let created_at = micros_to_sql(new.created_at)?;
    let Some(row_id) = insert_account(s, new, &address, &balance, created_at)? else {
        // A concurrent creation committed the username or the address first.
        return Err(match account_by_name(s, &new.username)? {
            Some(existing) => refuse(CreateOutcome::UsernameTaken(existing)),
            None => refuse(CreateOutcome::AddressTaken),
        });
    };
    if let Some(plan) = bonus {
        pay_bonus(s, &plan, row_id, new.created_at)?;
    }
    Ok(created_account(new, row_id, address, balance))
}

/// The address to assign: the fixed one or the first free IBAN candidate, if any is free.
/// An IBAN is claimed in `iban_history` at once; a candidate a concurrent creation claimed
/// (the insert waits for it, then inserts nothing) counts as taken.
fn claim_address<C: GenericClient>(
    s: &mut Session<'_, C>,
    choice: &AddressChoice,
) -> Result<Option<AccountAddress>, PgError> {
    let candidates = match choice {
        AddressChoice::Fixed(address) => vec![address.clone()],
        AddressChoice::IbanCandidates(ibans) => {
            ibans.iter().cloned().map(AccountAddress::Iban).collect()
        }
    };
    for candidate in candidates {
        if address_taken(s, &candidate)? {
            continue;
        }
        if let AccountAddress::Iban(iban) = &candidate {
            let claimed = s.execute(
                "INSERT INTO iban_history (iban) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&iban.as_str()],
            )?;
            if claimed == 0 {
                continue;
            }
        }
        return Ok(Some(candidate));
    }
    Ok(None)
}

/// Whether an account holds the address, or (for an IBAN) ever held it.
fn address_taken<C: GenericClient>(
    s: &mut Session<'_, C>,
    address: &AccountAddress,
) -> Result<bool, PgError> {
    let iban = match address {
        AccountAddress::Iban(iban) => Some(iban.as_str()),
        AccountAddress::XTalerBank(_) => None,
    };
    let taken = s
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM bank_accounts WHERE address = $1) \
             OR EXISTS (SELECT 1 FROM iban_history WHERE iban = $2::text)",
            &[&address.canonical(), &iban],
        )?
        .try_get(0)?;
    Ok(taken)
}

/// The balances after `admin` pays the registration bonus.
struct BonusPlan {
    admin_id: i64,
    admin_balance: Balance,
    new_balance: Balance,
    amount: Amount,
}

/// Reads the admin row, locked by the caller when there is a bonus.
fn plan_bonus<C: GenericClient>(
    s: &mut Session<'_, C>,
    new: &NewAccount,
) -> Result<Option<BonusPlan>, Refusal> {
    let Some(bonus) = &new.bonus else {
        return Ok(None);
    };
    let admin_name = Username::parse(ADMIN).ok_or_else(|| internal("admin username"))?;
    let admin = account_by_name(s, &admin_name)?
        .ok_or_else(|| internal("no admin account to pay the bonus"))?;
    let debited = admin
        .balance
        .debit(bonus, &admin.debit_threshold)
        .map_err(StoreError::amount)?;
    let Some(admin_balance) = debited else {
        return Err(refuse(CreateOutcome::BonusUnallowedDebit));
    };
    let zero = Balance::zero(Amount::zero(bonus.currency().clone()));
    Ok(Some(BonusPlan {
        admin_id: admin.row_id,
        admin_balance,
        new_balance: zero.credit(bonus).map_err(StoreError::amount)?,
        amount: bonus.clone(),
    }))
}

/// Inserts the account; `None` if the username or the address is taken.
fn insert_account<C: GenericClient>(
    s: &mut Session<'_, C>,
    new: &NewAccount,
    address: &AccountAddress,
    balance: &Balance,
    created_at: i64,
) -> Result<Option<i64>, PgError> {
    let (balance_value, balance_fraction) = amount_to_sql(&balance.amount);
    let (max_debt_value, max_debt_fraction) = amount_to_sql(&new.debit_threshold);
    let min_cashout = new.min_cashout.as_ref().map(amount_to_sql);
    let row = s.query_opt(
        "INSERT INTO bank_accounts (username, password_hash, name, is_public, \
         is_taler_exchange, email, phone, cashout_payto, address, currency, balance_value, \
         balance_fraction, has_debt, max_debt_value, max_debt_fraction, min_cashout_value, \
         min_cashout_fraction, tan_channels, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19) ON CONFLICT DO NOTHING RETURNING id",
        &[
            &new.username.as_str(),
            &new.password_hash,
            &new.name,
            &new.is_public,
            &new.is_taler_exchange,
            &new.contact.email,
            &new.contact.phone,
            &new.cashout_payto,
            &address.canonical(),
            &new.debit_threshold.currency().as_str(),
            &balance_value,
            &balance_fraction,
            &balance.has_debt,
            &max_debt_value,
            &max_debt_fraction,
            &min_cashout.map(|(value, _)| value),
            &min_cashout.map(|(_, fraction)| fraction),
            &channels_to_sql(&new.tan_channels),
            &created_at,
        ],
    )?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

fn pay_bonus<C: GenericClient>(
    s: &mut Session<'_, C>,
    plan: &BonusPlan,
    creditor_id: i64,
    now: Timestamp,
) -> Result<(), PgError> {
    let (admin_value, admin_fraction) = amount_to_sql(&plan.admin_balance.amount);
    s.execute(
        "UPDATE bank_accounts SET balance_value = $1, balance_fraction = $2, has_debt = $3 \
         WHERE id = $4",
        &[
            &admin_value,
            &admin_fraction,
            &plan.admin_balance.has_debt,
            &plan.admin_id,
        ],
    )?;
    let (value, fraction) = amount_to_sql(&plan.amount);
    s.execute(
        "INSERT INTO bank_transactions (debtor_id, creditor_id, currency, amount_value, \
         amount_fraction, subject, created_at) VALUES ($1, $2, $3, $4, $5, 'bonus', $6)",
        &[
            &plan.admin_id,
            &creditor_id,
            &plan.amount.currency().as_str(),
            &value,
            &fraction,
            &micros_to_sql(now)?,
        ],
    )?;
    Ok(())
}

// ---- changing accounts ----

/// Writes only the columns of the fields present in `changes`, on the locked active row.
fn update<C: GenericClient>(
    s: &mut Session<'_, C>,
    username: &Username,
    changes: &AccountChanges,
) -> Result<bool, PgError> {
    let active = s.query_opt(
        "SELECT id, currency FROM bank_accounts WHERE username = $1 AND deleted_at IS NULL \
         FOR NO KEY UPDATE",
        &[&username.as_str()],
    )?;
    let Some(active) = active else {
        return Ok(false);
    };
    let id: i64 = active.try_get(0)?;
    let currency: String = active.try_get(1)?;
    let currency: Currency = currency
        .parse()
        .map_err(|_| corrupt("account currency", &currency))?;
    changes.check_currency(&currency)?;
    let mut assignments = column_assignments(changes);
    if assignments.is_empty() {
        return Ok(true);
    }
    let set: Vec<String> = assignments
        .iter()
        .enumerate()
        .map(|(i, (column, _))| format!("{column} = ${}", i + 1))
        .collect();
    let sql = format!(
        "UPDATE bank_accounts SET {} WHERE id = ${}",
        set.join(", "),
        assignments.len() + 1
    );
    assignments.push(("id", Box::new(id)));
    let values: Vec<&(dyn ToSql + Sync)> = assignments.iter().map(|(_, v)| v.as_ref()).collect();
    s.execute(&sql, &values)?;
    Ok(true)
}

type Column = (&'static str, Box<dyn ToSql + Sync>);

/// The column values for the present fields of `changes`.
fn column_assignments(changes: &AccountChanges) -> Vec<Column> {
    let mut columns: Vec<Column> = Vec::new();
    if let Some(name) = &changes.name {
        columns.push(("name", Box::new(name.clone())));
    }
    if let Some(is_public) = changes.is_public {
        columns.push(("is_public", Box::new(is_public)));
    }
    if let Some(email) = &changes.email {
        columns.push(("email", Box::new(email.clone())));
    }
    if let Some(phone) = &changes.phone {
        columns.push(("phone", Box::new(phone.clone())));
    }
    if let Some(cashout) = &changes.cashout_payto {
        columns.push(("cashout_payto", Box::new(cashout.clone())));
    }
    if let Some(threshold) = &changes.debit_threshold {
        let (value, fraction) = amount_to_sql(threshold);
        columns.push(("max_debt_value", Box::new(value)));
        columns.push(("max_debt_fraction", Box::new(fraction)));
    }
    if let Some(min_cashout) = &changes.min_cashout {
        let parts = min_cashout.as_ref().map(amount_to_sql);
        columns.push(("min_cashout_value", Box::new(parts.map(|(v, _)| v))));
        columns.push(("min_cashout_fraction", Box::new(parts.map(|(_, f)| f))));
    }
    if let Some(channels) = &changes.tan_channels {
        columns.push(("tan_channels", Box::new(channels_to_sql(channels))));
    }
    columns
}

fn soft_delete<C: GenericClient>(
    s: &mut Session<'_, C>,
    username: &Username,
    now: i64,
) -> Result<DeleteOutcome, PgError> {
    let row = s.query_opt(
        "SELECT id, balance_value, balance_fraction FROM bank_accounts \
         WHERE username = $1 AND deleted_at IS NULL FOR NO KEY UPDATE",
        &[&username.as_str()],
    )?;
    let Some(row) = row else {
        return Ok(DeleteOutcome::NotFound);
    };
    let (id, value, fraction): (i64, i64, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    // Either sign counts: zero is the only balance stored as (0, 0).
    if (value, fraction) != (0, 0) {
        return Ok(DeleteOutcome::BalanceNotZero);
    }
    s.execute(
        "UPDATE bank_accounts SET deleted_at = $1 WHERE id = $2",
        &[&now, &id],
    )?;
    Ok(DeleteOutcome::Deleted)
}

// ---- tokens ----

/// Stores the token of an active account. A token with the same hash is replaced (the
/// in-memory store does the same; with 32 random bytes this only happens on a retry). The
/// account row is share-locked, so a concurrent deletion comes before or after, not between.
fn insert_token<C: GenericClient>(
    s: &mut Session<'_, C>,
    token: &TokenRecord,
) -> Result<bool, PgError> {
    let account = s.query_opt(
        "SELECT id FROM bank_accounts WHERE username = $1 AND deleted_at IS NULL FOR SHARE",
        &[&token.username.as_str()],
    )?;
    let Some(account) = account else {
        return Ok(false);
    };
    let account_id: i64 = account.try_get(0)?;
    s.execute(
        "INSERT INTO bank_tokens (token_hash, account_id, scope, refreshable, created_at, \
         expires_at, description) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (token_hash) DO UPDATE SET account_id = EXCLUDED.account_id, \
         scope = EXCLUDED.scope, refreshable = EXCLUDED.refreshable, \
         created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, \
         description = EXCLUDED.description",
        &[
            &&token.token_hash[..],
            &account_id,
            &token.scope.as_str(),
            &token.refreshable,
            &micros_to_sql(token.created_at)?,
            &expiry_to_sql(token.expires_at)?,
            &token.description,
        ],
    )?;
    Ok(true)
}

fn token_by_hash<C: GenericClient>(
    s: &mut Session<'_, C>,
    token_hash: &[u8; 32],
) -> Result<Option<TokenRecord>, PgError> {
    let Some(row) = s.query_opt(TOKEN_OF_ACTIVE_ACCOUNT, &[&&token_hash[..]])? else {
        return Ok(None);
    };
    Ok(Some(token_row(&row, 0)?.into_record(*token_hash)?))
}

/// The token's columns from index `first` on.
fn token_row(row: &Row, first: usize) -> Result<TokenRow, PgError> {
    Ok(TokenRow {
        username: row.try_get(first)?,
        scope: row.try_get(first + 1)?,
        refreshable: row.try_get(first + 2)?,
        created_at: row.try_get(first + 3)?,
        expires_at: row.try_get(first + 4)?,
        description: row.try_get(first + 5)?,
    })
}

#[cfg(test)]
mod conformance {
    use super::*;
    use crate::adapters::postgres::testing;
    use crate::ports::account_conformance::account_store_conformance;

    account_store_conformance!(optional: testing::database().map(|(schema, db)| (schema, PgAccountStore::new(db))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::postgres::testing::{self, TestSchema};
    use crate::domain::accounts::{ContactData, Scope};
    use crate::domain::tan::ChallengeId;

    fn store() -> Option<(TestSchema, PgAccountStore)> {
        testing::database().map(|(schema, db)| (schema, PgAccountStore::new(db)))
    }

    fn kudos(text: &str) -> Amount {
        format!("KUDOS:{text}").parse().unwrap()
    }

    fn user(text: &str) -> Username {
        Username::parse(text).unwrap()
    }

    fn new_account(username: &str, bonus: Option<&str>) -> NewAccount {
        NewAccount {
            username: user(username),
            password_hash: "hash".into(),
            name: username.to_uppercase(),
            is_public: false,
            is_taler_exchange: false,
            contact: ContactData::default(),
            cashout_payto: None,
            address: AddressChoice::Fixed(AccountAddress::XTalerBank(user(username))),
            debit_threshold: kudos("10"),
            min_cashout: None,
            tan_channels: Vec::new(),
            created_at: Timestamp::from_seconds(1_700_000_000).unwrap(),
            bonus: bonus.map(kudos),
        }
    }

    fn create(store: &PgAccountStore, new: NewAccount) -> Account {
        match store.create_account(new).unwrap() {
            CreateOutcome::Created(account) => account,
            other => panic!("{other:?}"),
        }
    }

    fn raw(store: &PgAccountStore, sql: &str) {
        store.db.write(|s| Ok(s.batch(sql)?)).unwrap();
    }

    fn count(store: &PgAccountStore, sql: &str) -> i64 {
        store
            .db
            .read(|s| Ok(s.query_one(sql, &[])?.try_get(0)?))
            .unwrap()
    }

    /// A challenge of `account_id`, solved or pending, with id bytes `n`.
    fn challenge(store: &PgAccountStore, n: u8, account_id: i64, solved: bool) -> ChallengeId {
        let id = [n; 16];
        let solved_at = solved.then_some(1_700_000_100_000_000_i64);
        store
            .db
            .write(|s| {
                s.execute(
                    "INSERT INTO tan_challenges (id, account_id, op, role, channel, address, \
                     body_salt, body_hash, attempts_left, created_at, solved_at) \
                     VALUES ($1, $2, 'account_delete', 'auth', 'sms', '+41', $3, $4, 3, \
                     1700000000000000, $5)",
                    &[
                        &&id[..],
                        &account_id,
                        &&[0u8; 16][..],
                        &&[1u8; 32][..],
                        &solved_at,
                    ],
                )?;
                Ok(())
            })
            .unwrap();
        ChallengeId::from_bytes(id)
    }

    /// (used, invalidated, body hash kept) of challenge `n`.
    fn challenge_state(store: &PgAccountStore, n: u8) -> (bool, bool, bool) {
        store
            .db
            .read(|s| {
                let row = s.query_one(
                    "SELECT used_at IS NOT NULL, invalidated_at IS NOT NULL, \
                     body_hash IS NOT NULL FROM tan_challenges WHERE id = $1",
                    &[&&[n; 16][..]],
                )?;
                Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
            })
            .unwrap()
    }

    fn tan(account_id: i64, used: Vec<ChallengeId>, invalidate_others: bool) -> TanUse {
        TanUse {
            account_id,
            used,
            invalidate_others,
            now: Timestamp::from_seconds(1_700_000_200).unwrap(),
        }
    }

    #[test]
    fn the_bonus_is_booked_in_the_ledger() {
        let Some((_schema, store)) = store() else {
            return;
        };
        let admin = create(&store, new_account("admin", None));
        let alice = create(&store, new_account("alice", Some("2.5")));
        let row = store
            .db
            .read(|s| {
                let r = s.query_one(
                    "SELECT debtor_id, creditor_id, currency, amount_value, amount_fraction, \
                     subject, created_at FROM bank_transactions",
                    &[],
                )?;
                Ok((
                    r.try_get::<_, i64>(0)?,
                    r.try_get::<_, i64>(1)?,
                    r.try_get::<_, String>(2)?,
                    r.try_get::<_, i64>(3)?,
                    r.try_get::<_, i64>(4)?,
                    r.try_get::<_, String>(5)?,
                    r.try_get::<_, i64>(6)?,
                ))
            })
            .unwrap();
        let expected = (
            admin.row_id,
            alice.row_id,
            "KUDOS".to_owned(),
            2,
            50_000_000,
            "bonus".to_owned(),
            1_700_000_000_000_000,
        );
        assert_eq!(row, expected);
    }

    #[test]
    fn a_refused_creation_releases_its_claimed_iban() {
        let Some((_schema, store)) = store() else {
            return;
        };
        create(&store, new_account("admin", None));
        let mut greedy = new_account("greedy", Some("11"));
        let iban = crate::domain::primitives::Iban::parse("DE89370400440532013000").unwrap();
        greedy.address = AddressChoice::IbanCandidates(vec![iban]);
        let outcome = store.create_account(greedy).unwrap();
        assert_eq!(outcome, CreateOutcome::BonusUnallowedDebit);
        assert_eq!(count(&store, "SELECT count(*) FROM bank_accounts"), 1);
        assert_eq!(count(&store, "SELECT count(*) FROM iban_history"), 0);
        assert_eq!(count(&store, "SELECT count(*) FROM bank_transactions"), 0);
    }

    #[test]
    fn concurrent_creations_share_out_the_iban_candidates() {
        let Some((_schema, store)) = store() else {
            return;
        };
        let candidates: Vec<_> = [
            "DE89370400440532013000",
            "DE02120300000000202051",
            "DE02500105170137075030",
            "DE02100500000054540402",
        ]
        .iter()
        .map(|text| crate::domain::primitives::Iban::parse(text).unwrap())
        .collect();
        let addresses: Vec<AccountAddress> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..candidates.len())
                .map(|i| {
                    let (store, candidates) = (&store, candidates.clone());
                    scope.spawn(move || {
                        let mut new = new_account(&format!("user{i}"), None);
                        new.address = AddressChoice::IbanCandidates(candidates);
                        create(store, new).address
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut assigned: Vec<String> = addresses.iter().map(|a| a.canonical()).collect();
        assigned.sort();
        assigned.dedup();
        assert_eq!(assigned.len(), candidates.len(), "{addresses:?}");
        assert_eq!(count(&store, "SELECT count(*) FROM iban_history"), 4);
    }

    #[test]
    fn a_gated_change_consumes_its_challenges_and_invalidates_the_others() {
        let Some((_schema, store)) = store() else {
            return;
        };
        let alice = create(&store, new_account("alice", None));
        let bob = create(&store, new_account("bob", None));
        let used = challenge(&store, 1, alice.row_id, true);
        challenge(&store, 2, alice.row_id, false);
        challenge(&store, 3, bob.row_id, false);
        let op = GatedOp::Password("new-hash".into());
        let outcome = store
            .apply_with_tan(&user("alice"), &op, &tan(alice.row_id, vec![used], true))
            .unwrap();
        assert_eq!(outcome, GatedChange::Done);
        let alice_now = store.account(&user("alice")).unwrap().unwrap();
        assert_eq!(alice_now.password_hash, "new-hash");
        assert_eq!(challenge_state(&store, 1), (true, false, false));
        assert_eq!(challenge_state(&store, 2), (false, true, false));
        assert_eq!(challenge_state(&store, 3), (false, false, true));
        // A used challenge counts no more: nothing changes.
        let again = GatedOp::Password("third-hash".into());
        let outcome = store
            .apply_with_tan(
                &user("alice"),
                &again,
                &tan(alice.row_id, vec![used], false),
            )
            .unwrap();
        assert_eq!(outcome, GatedChange::StaleChallenge);
        let alice_now = store.account(&user("alice")).unwrap().unwrap();
        assert_eq!(alice_now.password_hash, "new-hash");
    }

    #[test]
    fn a_gated_change_refuses_unsolved_foreign_and_unknown_challenges() {
        let Some((_schema, store)) = store() else {
            return;
        };
        let alice = create(&store, new_account("alice", None));
        let bob = create(&store, new_account("bob", None));
        let pending = challenge(&store, 1, alice.row_id, false);
        let foreign = challenge(&store, 2, bob.row_id, true);
        let unknown = ChallengeId::from_bytes([9; 16]);
        for used in [pending, foreign, unknown] {
            let outcome = store
                .apply_with_tan(
                    &user("alice"),
                    &GatedOp::Delete,
                    &tan(alice.row_id, vec![used], true),
                )
                .unwrap();
            assert_eq!(outcome, GatedChange::StaleChallenge);
        }
        assert!(!store.account(&user("alice")).unwrap().unwrap().is_deleted());
        assert_eq!(challenge_state(&store, 1), (false, false, true));
    }

    #[test]
    fn a_gated_change_that_does_not_apply_keeps_its_challenge() {
        let Some((_schema, store)) = store() else {
            return;
        };
        create(&store, new_account("admin", None));
        let rich = create(&store, new_account("rich", Some("1")));
        let used = challenge(&store, 1, rich.row_id, true);
        let outcome = store
            .apply_with_tan(
                &user("rich"),
                &GatedOp::Delete,
                &tan(rich.row_id, vec![used], true),
            )
            .unwrap();
        assert_eq!(outcome, GatedChange::BalanceNotZero);
        assert_eq!(challenge_state(&store, 1), (false, false, true));
        let token = TokenRecord {
            token_hash: [7; 32],
            username: user("ghost"),
            scope: Scope::Readwrite,
            refreshable: false,
            created_at: Timestamp::from_seconds(1).unwrap(),
            expires_at: Timestamp::never(),
            description: None,
        };
        let outcome = store
            .apply_with_tan(
                &user("ghost"),
                &GatedOp::Token(token),
                &tan(rich.row_id, vec![used], true),
            )
            .unwrap();
        assert_eq!(outcome, GatedChange::NoAccount);
        assert_eq!(challenge_state(&store, 1), (false, false, true));
    }

    #[test]
    fn concurrent_uses_of_one_challenge_apply_once() {
        let Some((_schema, store)) = store() else {
            return;
        };
        let alice = create(&store, new_account("alice", None));
        let used = challenge(&store, 1, alice.row_id, true);
        let outcomes: Vec<GatedChange> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let store = &store;
                    scope.spawn(move || {
                        let changes = AccountChanges {
                            name: Some(format!("name {i}")),
                            ..AccountChanges::default()
                        };
                        store
                            .apply_with_tan(
                                &user("alice"),
                                &GatedOp::Update(changes),
                                &tan(alice.row_id, vec![used], false),
                            )
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let done = outcomes.iter().filter(|o| **o == GatedChange::Done).count();
        assert_eq!(done, 1, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, GatedChange::Done | GatedChange::StaleChallenge))
        );
    }

    #[test]
    fn corrupt_rows_are_internal_errors() {
        for corruption in [
            "UPDATE bank_accounts SET username = 'not valid'",
            "UPDATE bank_accounts SET address = 'payto://iban/DE00'",
            "UPDATE bank_accounts SET currency = 'kudos'",
            "UPDATE bank_accounts SET tan_channels = 'sms,fax'",
            "UPDATE bank_accounts SET created_at = 1",
        ] {
            let Some((_schema, store)) = store() else {
                return;
            };
            create(&store, new_account("alice", None));
            raw(&store, corruption);
            let listed = store.list_accounts(&AccountPage {
                limit: 10,
                offset: 0,
                name_contains: None,
                public_only: false,
            });
            assert!(
                matches!(listed, Err(StoreError::Internal(_))),
                "{corruption}"
            );
            if !corruption.contains("username") {
                let read = store.account(&user("alice"));
                assert!(matches!(read, Err(StoreError::Internal(_))), "{corruption}");
            }
        }
    }

    #[test]
    fn never_is_stored_as_null_and_times_beyond_i64_are_refused() {
        let Some((_schema, store)) = store() else {
            return;
        };
        create(&store, new_account("alice", None));
        let mut token = TokenRecord {
            token_hash: [1; 32],
            username: user("alice"),
            scope: Scope::Readonly,
            refreshable: false,
            created_at: Timestamp::from_seconds(1).unwrap(),
            expires_at: Timestamp::never(),
            description: None,
        };
        assert!(store.insert_token(&token).unwrap());
        let nulls = "SELECT count(*) FROM bank_tokens WHERE expires_at IS NULL";
        assert_eq!(count(&store, nulls), 1);
        assert_eq!(store.token(&[1; 32]).unwrap(), Some(token.clone()));
        // The largest whole second below i64::MAX µs still fits; the next one does not.
        let last = u64::try_from(i64::MAX).unwrap() / 1_000_000;
        token.expires_at = Timestamp::from_seconds(last).unwrap();
        assert!(store.insert_token(&token).unwrap());
        assert_eq!(store.token(&[1; 32]).unwrap(), Some(token.clone()));
        token.expires_at = Timestamp::from_seconds(last + 1).unwrap();
        assert!(matches!(
            store.insert_token(&token),
            Err(StoreError::Internal(_))
        ));
        // A token of a missing account is refused, not stored.
        token.username = user("ghost");
        token.expires_at = Timestamp::never();
        assert!(!store.insert_token(&token).unwrap());
        assert_eq!(count(&store, "SELECT count(*) FROM bank_tokens"), 1);
    }
}

//! `AccountStore` on SQLite (schema: `migrations/0002_accounts.sql`).
//!
//! Reads use the pool; every mutation is one job of the single writer, so it is atomic.
//! Everything read back is validated: a corrupt row is `StoreError::Internal`, never a panic.

use std::sync::Arc;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, ffi, params, params_from_iter};

use super::Database;
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

/// The bank accounts, tokens and bonus ledger in the talerbox database.
pub struct SqliteAccountStore {
    db: Arc<Database>,
}

impl SqliteAccountStore {
    pub fn new(db: Arc<Database>) -> SqliteAccountStore {
        SqliteAccountStore { db }
    }
}

/// The columns `read_account` expects, in its order.
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
    " FROM bank_accounts WHERE username = ?1"
);

/// The columns of `account_columns!`.
const ACCOUNT_COLUMNS: usize = 21;

/// An active account's columns (as `read_account` expects them), then the token's columns
/// from index `ACCOUNT_COLUMNS` on (as `read_token_from` expects them).
const TOKEN_WITH_ACTIVE_ACCOUNT: &str = concat!(
    "SELECT a.*, a.username, t.scope, t.refreshable, t.created_at, t.expires_at, \
     t.description FROM bank_tokens t JOIN (SELECT ",
    account_columns!(),
    " FROM bank_accounts) a ON a.id = t.account_id \
     WHERE t.token_hash = ?1 AND a.deleted_at IS NULL"
);

const TOKEN_OF_ACTIVE_ACCOUNT: &str = "SELECT a.username, t.scope, t.refreshable, t.created_at, \
     t.expires_at, t.description FROM bank_tokens t JOIN bank_accounts a ON a.id = t.account_id \
     WHERE t.token_hash = ?1 AND a.deleted_at IS NULL";

impl AccountStore for SqliteAccountStore {
    fn create_account(&self, account: NewAccount) -> Result<CreateOutcome, StoreError> {
        self.db
            .write(move |conn| create_in_savepoint(conn, &account))
    }

    fn account(&self, username: &Username) -> Result<Option<Account>, StoreError> {
        self.db.read(|conn| account_by_name(conn, username))
    }

    fn update_account(
        &self,
        username: &Username,
        changes: &AccountChanges,
    ) -> Result<bool, StoreError> {
        let username = username.clone();
        let changes = changes.clone();
        self.db.write(move |conn| update(conn, &username, &changes))
    }

    fn apply_with_tan(
        &self,
        username: &Username,
        op: &GatedOp,
        tan: &TanUse,
    ) -> Result<GatedChange, StoreError> {
        let (username, op, tan) = (username.clone(), op.clone(), tan.clone());
        let now = micros_to_sql(tan.now)?;
        self.db.write(move |conn| {
            if !super::tan::usable_in(conn, tan.account_id, &tan.used)? {
                return Ok(GatedChange::StaleChallenge);
            }
            let applied = match &op {
                GatedOp::Update(changes) => update(conn, &username, changes)?,
                GatedOp::Password(hash) => set_hash(conn, &username, hash)?,
                GatedOp::Token(token) => insert_token(conn, token)?,
                GatedOp::Delete => match soft_delete(conn, &username, now)? {
                    DeleteOutcome::Deleted => true,
                    DeleteOutcome::NotFound => false,
                    DeleteOutcome::BalanceNotZero => return Ok(GatedChange::BalanceNotZero),
                },
            };
            if !applied {
                return Ok(GatedChange::NoAccount);
            }
            super::tan::mark_in(conn, tan.account_id, &tan.used, tan.invalidate_others, now)?;
            Ok(GatedChange::Done)
        })
    }

    fn set_password_hash(&self, username: &Username, hash: &str) -> Result<bool, StoreError> {
        let username = username.clone();
        let hash = hash.to_owned();
        self.db.write(move |conn| set_hash(conn, &username, &hash))
    }

    fn delete_account(
        &self,
        username: &Username,
        now: Timestamp,
    ) -> Result<DeleteOutcome, StoreError> {
        let username = username.clone();
        let now = micros_to_sql(now)?;
        self.db.write(move |conn| soft_delete(conn, &username, now))
    }

    fn list_accounts(&self, page: &AccountPage) -> Result<Vec<Account>, StoreError> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        self.db.read(|conn| list(conn, page))
    }

    fn insert_token(&self, token: &TokenRecord) -> Result<bool, StoreError> {
        let token = token.clone();
        self.db.write(move |conn| insert_token(conn, &token))
    }

    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        self.db.read(|conn| {
            let row = conn
                .prepare_cached(TOKEN_OF_ACTIVE_ACCOUNT)?
                .query_row([&token_hash[..]], read_token)
                .optional()?;
            row.map(|row| row.into_record(*token_hash)).transpose()
        })
    }

    /// One statement: one read transaction for both rows.
    fn token_and_account(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<(TokenRecord, Account)>, StoreError> {
        self.db.read(|conn| {
            let row = conn
                .prepare_cached(TOKEN_WITH_ACTIVE_ACCOUNT)?
                .query_row([&token_hash[..]], |row| {
                    Ok((read_token_from(row, ACCOUNT_COLUMNS)?, read_account(row)?))
                })
                .optional()?;
            let Some((token, account)) = row else {
                return Ok(None);
            };
            Ok(Some((
                token.into_record(*token_hash)?,
                account.into_account()?,
            )))
        })
    }

    fn delete_token(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
        let token_hash = *token_hash;
        self.db.write(move |conn| {
            let deleted = conn.execute(
                "DELETE FROM bank_tokens WHERE token_hash = ?1",
                [&token_hash[..]],
            )?;
            Ok(deleted == 1)
        })
    }
}

fn set_hash(conn: &Connection, username: &Username, hash: &str) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE bank_accounts SET password_hash = ?1 WHERE username = ?2 AND deleted_at IS NULL",
        params![hash, username.as_str()],
    )?;
    Ok(changed == 1)
}

// ---- reading accounts ----

fn account_by_name(conn: &Connection, username: &Username) -> Result<Option<Account>, StoreError> {
    let row = conn
        .prepare_cached(ACCOUNT_BY_NAME)?
        .query_row([username.as_str()], read_account)
        .optional()?;
    row.map(AccountRow::into_account).transpose()
}

/// Reads the columns of `account_columns!`.
fn read_account(row: &Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: row.get(0)?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
        name: row.get(3)?,
        is_public: row.get(4)?,
        is_taler_exchange: row.get(5)?,
        email: row.get(6)?,
        phone: row.get(7)?,
        cashout_payto: row.get(8)?,
        address: row.get(9)?,
        currency: row.get(10)?,
        balance: (row.get(11)?, row.get(12)?),
        has_debt: row.get(13)?,
        max_debt: (row.get(14)?, row.get(15)?),
        min_cashout: (row.get(16)?, row.get(17)?),
        tan_channels: row.get(18)?,
        created_at: row.get(19)?,
        deleted_at: row.get(20)?,
    })
}

fn list(conn: &Connection, page: &AccountPage) -> Result<Vec<Account>, StoreError> {
    let count = page.limit.checked_abs().unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(&page_query(page))?;
    let rows = statement.query_map(
        params![page.offset, count, page.name_contains],
        read_account,
    )?;
    rows.map(|row| row?.into_account()).collect()
}

/// The listing query: direction by the sign of the limit; the public filter is spelled out
/// (not bound) so that SQLite can use the partial index `bank_accounts_public`.
fn page_query(page: &AccountPage) -> String {
    let (after, order) = if page.limit > 0 {
        ("id > ?1", "ASC")
    } else {
        ("id < ?1", "DESC")
    };
    let public = if page.public_only {
        " AND is_public = 1 AND deleted_at IS NULL"
    } else {
        ""
    };
    // instr() is a literal, case-sensitive substring test (LIKE is neither).
    format!(
        concat!(
            "SELECT ",
            account_columns!(),
            " FROM bank_accounts WHERE {} AND (?3 IS NULL OR instr(name, ?3) > 0){} \
             ORDER BY id {} LIMIT ?2"
        ),
        after, public, order
    )
}

// ---- creating accounts ----

/// Why a creation attempt stopped before it was complete.
enum Refusal {
    /// A typed outcome: the attempt's changes must vanish, the outcome goes to the caller.
    /// (Boxed: an `Account` inside would make every `Result` of the creation path large.)
    Outcome(Box<CreateOutcome>),
    /// A failure: the whole write job is rolled back and the error reported.
    Failed(StoreError),
}

fn refuse(outcome: CreateOutcome) -> Refusal {
    Refusal::Outcome(Box::new(outcome))
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Failed(e)
    }
}

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Self {
        Refusal::Failed(e.into())
    }
}

/// Runs the creation inside a savepoint of its own, so that a refusal rolls back whatever the
/// attempt wrote and is still answered as `Ok(outcome)`. The outcome is then delivered only
/// after the group commit, like every other answer of the writer.
fn create_in_savepoint(conn: &Connection, new: &NewAccount) -> Result<CreateOutcome, StoreError> {
    conn.execute_batch("SAVEPOINT create_account")?;
    match try_create(conn, new) {
        Ok(account) => {
            conn.execute_batch("RELEASE create_account")?;
            Ok(CreateOutcome::Created(account))
        }
        Err(Refusal::Outcome(outcome)) => {
            conn.execute_batch("ROLLBACK TO create_account; RELEASE create_account")?;
            Ok(*outcome)
        }
        // The writer rolls back the job's savepoint, which contains ours.
        Err(Refusal::Failed(error)) => Err(error),
    }
}

fn try_create(conn: &Connection, new: &NewAccount) -> Result<Account, Refusal> {
    if let Some(existing) = account_by_name(conn, &new.username)? {
        return Err(refuse(CreateOutcome::UsernameTaken(existing)));
    }
    let currency = new.currency()?;
    let address =
        free_address(conn, &new.address)?.ok_or_else(|| refuse(CreateOutcome::AddressTaken))?;
    let bonus = plan_bonus(conn, new)?;
    let balance = match &bonus {
        Some(plan) => plan.new_balance.clone(),
        None => Balance::zero(Amount::zero(currency.clone())),
    };
    let created_at = micros_to_sql(new.created_at)?;
    let row_id = insert_account(conn, new, &address, &balance, created_at)
        .map_err(|e| account_conflict(conn, e, &new.username))?;
    if let AccountAddress::Iban(iban) = &address {
        conn.execute(
            "INSERT INTO iban_history (iban) VALUES (?1)",
            [iban.as_str()],
        )
        .map_err(iban_conflict)?;
    }
    if let Some(plan) = bonus {
        pay_bonus(conn, &plan, row_id, new.created_at)?;
    }
    Ok(created_account(new, row_id, address, balance))
}

/// The address to assign: the fixed one or the first free IBAN candidate, if any is free.
fn free_address(
    conn: &Connection,
    choice: &AddressChoice,
) -> Result<Option<AccountAddress>, StoreError> {
    let candidates = match choice {
        AddressChoice::Fixed(address) => vec![address.clone()],
        AddressChoice::IbanCandidates(ibans) => {
            ibans.iter().cloned().map(AccountAddress::Iban).collect()
        }
    };
    for candidate in candidates {
        if !address_taken(conn, &candidate)? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// Whether an account holds the address, or (for an IBAN) ever held it.
fn address_taken(conn: &Connection, address: &AccountAddress) -> Result<bool, StoreError> {
    let iban = match address {
        AccountAddress::Iban(iban) => Some(iban.as_str()),
        AccountAddress::XTalerBank(_) => None,
    };
    let taken = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM bank_accounts WHERE address = ?1) \
             OR EXISTS (SELECT 1 FROM iban_history WHERE iban = ?2)",
        )?
        .query_row(params![address.canonical(), iban], |row| row.get(0))?;
    Ok(taken)
}

/// The balances after `admin` pays the registration bonus.
struct BonusPlan {
    admin_id: i64,
    admin_balance: Balance,
    new_balance: Balance,
    amount: Amount,
}

fn plan_bonus(conn: &Connection, new: &NewAccount) -> Result<Option<BonusPlan>, Refusal> {
    let Some(bonus) = &new.bonus else {
        return Ok(None);
    };
    let admin_name = Username::parse(ADMIN).ok_or_else(|| internal("admin username"))?;
    let admin = account_by_name(conn, &admin_name)?
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

fn insert_account(
    conn: &Connection,
    new: &NewAccount,
    address: &AccountAddress,
    balance: &Balance,
    created_at: i64,
) -> rusqlite::Result<i64> {
    let (balance_value, balance_fraction) = amount_to_sql(&balance.amount);
    let (max_debt_value, max_debt_fraction) = amount_to_sql(&new.debit_threshold);
    let min_cashout = new.min_cashout.as_ref().map(amount_to_sql);
    conn.prepare_cached(
        "INSERT INTO bank_accounts (username, password_hash, name, is_public, \
         is_taler_exchange, email, phone, cashout_payto, address, currency, balance_value, \
         balance_fraction, has_debt, max_debt_value, max_debt_fraction, min_cashout_value, \
         min_cashout_fraction, tan_channels, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19)",
    )?
    .execute(params![
        new.username.as_str(),
        new.password_hash,
        new.name,
        new.is_public,
        new.is_taler_exchange,
        new.contact.email,
        new.contact.phone,
        new.cashout_payto,
        address.canonical(),
        new.debit_threshold.currency().as_str(),
        balance_value,
        balance_fraction,
        balance.has_debt,
        max_debt_value,
        max_debt_fraction,
        min_cashout.map(|(value, _)| value),
        min_cashout.map(|(_, fraction)| fraction),
        channels_to_sql(&new.tan_channels),
        created_at,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// A UNIQUE or PRIMARY KEY violation on insert means another account got there first. The
/// checks before the inserts make this a defence, not a path; it still gets a typed outcome.
fn is_unique_violation(error: &rusqlite::Error) -> bool {
    error.sqlite_error().is_some_and(|e| {
        [
            ffi::SQLITE_CONSTRAINT_UNIQUE,
            ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
        ]
        .contains(&e.extended_code)
    })
}

/// The account row clashed on its username or its address.
fn account_conflict(conn: &Connection, error: rusqlite::Error, username: &Username) -> Refusal {
    if !is_unique_violation(&error) {
        return Refusal::Failed(error.into());
    }
    match account_by_name(conn, username) {
        Ok(Some(existing)) => refuse(CreateOutcome::UsernameTaken(existing)),
        Ok(None) => refuse(CreateOutcome::AddressTaken),
        Err(e) => Refusal::Failed(e),
    }
}

/// The IBAN was assigned before (`iban_history` is its uniqueness key).
fn iban_conflict(error: rusqlite::Error) -> Refusal {
    if is_unique_violation(&error) {
        refuse(CreateOutcome::AddressTaken)
    } else {
        Refusal::Failed(error.into())
    }
}

fn pay_bonus(
    conn: &Connection,
    plan: &BonusPlan,
    creditor_id: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (admin_value, admin_fraction) = amount_to_sql(&plan.admin_balance.amount);
    conn.prepare_cached(
        "UPDATE bank_accounts SET balance_value = ?1, balance_fraction = ?2, has_debt = ?3 \
         WHERE id = ?4",
    )?
    .execute(params![
        admin_value,
        admin_fraction,
        plan.admin_balance.has_debt,
        plan.admin_id
    ])?;
    let (value, fraction) = amount_to_sql(&plan.amount);
    conn.prepare_cached(
        "INSERT INTO bank_transactions (debtor_id, creditor_id, currency, amount_value, \
         amount_fraction, subject, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'bonus', ?6)",
    )?
    .execute(params![
        plan.admin_id,
        creditor_id,
        plan.amount.currency().as_str(),
        value,
        fraction,
        micros_to_sql(now)?
    ])?;
    Ok(())
}

// ---- changing accounts ----

/// Writes only the columns of the fields present in `changes`.
fn update(
    conn: &Connection,
    username: &Username,
    changes: &AccountChanges,
) -> Result<bool, StoreError> {
    let active = conn
        .prepare_cached(
            "SELECT id, currency FROM bank_accounts WHERE username = ?1 AND deleted_at IS NULL",
        )?
        .query_row([username.as_str()], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .optional()?;
    let Some((id, currency)) = active else {
        return Ok(false);
    };
    let currency: Currency = currency
        .parse()
        .map_err(|_| corrupt("account currency", &currency))?;
    changes.check_currency(&currency)?;
    let assignments = column_assignments(changes);
    if assignments.is_empty() {
        return Ok(true);
    }
    let set: Vec<String> = assignments
        .iter()
        .map(|(column, _)| format!("{column} = ?"))
        .collect();
    let sql = format!("UPDATE bank_accounts SET {} WHERE id = ?", set.join(", "));
    let values = assignments.into_iter().map(|(_, value)| value);
    conn.execute(&sql, params_from_iter(values.chain([Value::Integer(id)])))?;
    Ok(true)
}

/// The column values for the present fields of `changes`.
fn column_assignments(changes: &AccountChanges) -> Vec<(&'static str, Value)> {
    let text = |text: &Option<String>| text.clone().map_or(Value::Null, Value::Text);
    let mut columns = Vec::new();
    if let Some(name) = &changes.name {
        columns.push(("name", Value::Text(name.clone())));
    }
    if let Some(is_public) = changes.is_public {
        columns.push(("is_public", Value::Integer(i64::from(is_public))));
    }
    if let Some(email) = &changes.email {
        columns.push(("email", text(email)));
    }
    if let Some(phone) = &changes.phone {
        columns.push(("phone", text(phone)));
    }
    if let Some(cashout) = &changes.cashout_payto {
        columns.push(("cashout_payto", text(cashout)));
    }
    if let Some(threshold) = &changes.debit_threshold {
        let (value, fraction) = amount_to_sql(threshold);
        columns.push(("max_debt_value", Value::Integer(value)));
        columns.push(("max_debt_fraction", Value::Integer(fraction)));
    }
    if let Some(min_cashout) = &changes.min_cashout {
        let parts = min_cashout.as_ref().map(amount_to_sql);
        let column = |part: Option<i64>| part.map_or(Value::Null, Value::Integer);
        columns.push(("min_cashout_value", column(parts.map(|(v, _)| v))));
        columns.push(("min_cashout_fraction", column(parts.map(|(_, f)| f))));
    }
    if let Some(channels) = &changes.tan_channels {
        columns.push(("tan_channels", Value::Text(channels_to_sql(channels))));
    }
    columns
}

fn soft_delete(
    conn: &Connection,
    username: &Username,
    now: i64,
) -> Result<DeleteOutcome, StoreError> {
    let balance = conn
        .prepare_cached(
            "SELECT id, balance_value, balance_fraction FROM bank_accounts \
             WHERE username = ?1 AND deleted_at IS NULL",
        )?
        .query_row([username.as_str()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .optional()?;
    let Some((id, value, fraction)) = balance else {
        return Ok(DeleteOutcome::NotFound);
    };
    // Either sign counts: zero is the only balance stored as (0, 0).
    if (value, fraction) != (0, 0) {
        return Ok(DeleteOutcome::BalanceNotZero);
    }
    conn.execute(
        "UPDATE bank_accounts SET deleted_at = ?1 WHERE id = ?2",
        params![now, id],
    )?;
    Ok(DeleteOutcome::Deleted)
}

// ---- tokens ----

/// Stores the token of an active account. A token with the same hash is replaced (the
/// in-memory store does the same; with 32 random bytes this only happens on a retry).
fn insert_token(conn: &Connection, token: &TokenRecord) -> Result<bool, StoreError> {
    let account_id = conn
        .prepare_cached("SELECT id FROM bank_accounts WHERE username = ?1 AND deleted_at IS NULL")?
        .query_row([token.username.as_str()], |row| row.get::<_, i64>(0))
        .optional()?;
    let Some(account_id) = account_id else {
        return Ok(false);
    };
    conn.prepare_cached(
        "INSERT INTO bank_tokens (token_hash, account_id, scope, refreshable, created_at, \
         expires_at, description) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (token_hash) DO UPDATE SET account_id = excluded.account_id, \
         scope = excluded.scope, refreshable = excluded.refreshable, \
         created_at = excluded.created_at, expires_at = excluded.expires_at, \
         description = excluded.description",
    )?
    .execute(params![
        &token.token_hash[..],
        account_id,
        token.scope.as_str(),
        token.refreshable,
        micros_to_sql(token.created_at)?,
        expiry_to_sql(token.expires_at)?,
        token.description,
    ])?;
    Ok(true)
}

fn read_token(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    read_token_from(row, 0)
}

/// The token's columns from index `first` on.
fn read_token_from(row: &Row<'_>, first: usize) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        username: row.get(first)?,
        scope: row.get(first + 1)?,
        refreshable: row.get(first + 2)?,
        created_at: row.get(first + 3)?,
        expires_at: row.get(first + 4)?,
        description: row.get(first + 5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::DbOptions;
    use crate::domain::accounts::{ContactData, Scope};
    use crate::ports::account_conformance::account_store_conformance;

    /// A store on a fresh database file, with the directory that holds it.
    fn temp_store() -> (tempfile::TempDir, SqliteAccountStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.sqlite3"), &DbOptions::default()).unwrap();
        (dir, SqliteAccountStore::new(Arc::new(db)))
    }

    mod conformance {
        use super::*;
        account_store_conformance!(guarded: temp_store());
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

    fn create(store: &SqliteAccountStore, new: NewAccount) -> Account {
        match store.create_account(new).unwrap() {
            CreateOutcome::Created(account) => account,
            other => panic!("{other:?}"),
        }
    }

    fn count(store: &SqliteAccountStore, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        store
            .db
            .read(|c| {
                c.query_row(&sql, [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap()
    }

    /// Runs raw SQL through the writer, bypassing the store's checks.
    fn raw(store: &SqliteAccountStore, sql: &str) {
        let sql = sql.to_owned();
        store
            .db
            .write(move |c| c.execute_batch(&sql).map_err(StoreError::from))
            .unwrap();
    }

    #[test]
    fn the_bonus_is_booked_in_the_ledger() {
        let (_dir, store) = temp_store();
        let admin = create(&store, new_account("admin", None));
        let alice = create(&store, new_account("alice", Some("2.5")));
        let row = store
            .db
            .read(|c| {
                c.query_row(
                    "SELECT debtor_id, creditor_id, currency, amount_value, amount_fraction, \
                     subject, created_at FROM bank_transactions",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    },
                )
                .map_err(StoreError::from)
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
    fn a_refused_creation_leaves_no_trace_not_even_a_row_id() {
        let (_dir, store) = temp_store();
        let admin = create(&store, new_account("admin", None));
        let mut greedy = new_account("greedy", Some("11"));
        greedy.address = AddressChoice::IbanCandidates(vec![
            crate::domain::primitives::Iban::parse("DE89370400440532013000").unwrap(),
        ]);
        let outcome = store.create_account(greedy).unwrap();
        assert_eq!(outcome, CreateOutcome::BonusUnallowedDebit);
        for table in ["bank_accounts", "iban_history", "bank_transactions"] {
            let expected = i64::from(table == "bank_accounts");
            assert_eq!(count(&store, table), expected, "{table}");
        }
        let next = create(&store, new_account("next", None));
        assert_eq!(next.row_id, admin.row_id + 1);
    }

    #[test]
    fn unique_violations_become_typed_outcomes() {
        let (_dir, store) = temp_store();
        let alice = create(&store, new_account("alice", None));
        let outcomes = store
            .db
            .write(move |conn| {
                let zero = Balance::zero(kudos("0"));
                let mut clash = new_account("alice", None);
                let by_name = insert_account(conn, &clash, &clash_address("x"), &zero, 0)
                    .map_err(|e| account_conflict(conn, e, &clash.username));
                clash.username = user("bob");
                let by_address = insert_account(conn, &clash, &clash_address("alice"), &zero, 0)
                    .map_err(|e| account_conflict(conn, e, &clash.username));
                Ok::<_, StoreError>([by_name.err(), by_address.err()].map(
                    |refusal| match refusal {
                        Some(Refusal::Outcome(outcome)) => Some(*outcome),
                        _ => None,
                    },
                ))
            })
            .unwrap();
        assert_eq!(
            outcomes,
            [
                Some(CreateOutcome::UsernameTaken(alice)),
                Some(CreateOutcome::AddressTaken)
            ]
        );
    }

    #[test]
    fn a_conflict_after_the_first_insert_rolls_the_attempt_back() {
        let (_dir, store) = temp_store();
        // Simulates a rival that takes the IBAN between our check and our history insert.
        raw(
            &store,
            "CREATE TRIGGER rival AFTER INSERT ON bank_accounts BEGIN \
             INSERT INTO iban_history (iban) VALUES ('DE89370400440532013000'); END;",
        );
        let mut victim = new_account("victim", None);
        let iban = crate::domain::primitives::Iban::parse("DE89370400440532013000").unwrap();
        victim.address = AddressChoice::IbanCandidates(vec![iban]);
        assert_eq!(
            store.create_account(victim).unwrap(),
            CreateOutcome::AddressTaken
        );
        assert_eq!(count(&store, "bank_accounts"), 0);
        assert_eq!(count(&store, "iban_history"), 0);
    }

    fn clash_address(username: &str) -> AccountAddress {
        AccountAddress::XTalerBank(user(username))
    }

    #[test]
    fn never_is_stored_as_null_and_times_beyond_i64_are_refused() {
        let (_dir, store) = temp_store();
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
        assert_eq!(count(&store, "bank_tokens WHERE expires_at IS NULL"), 1);
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
    }

    #[test]
    fn corrupt_rows_are_internal_errors() {
        let (_dir, store) = temp_store();
        create(&store, new_account("alice", None));
        assert!(
            store
                .insert_token(&TokenRecord {
                    token_hash: [1; 32],
                    username: user("alice"),
                    scope: Scope::Readonly,
                    refreshable: false,
                    created_at: Timestamp::from_seconds(1).unwrap(),
                    expires_at: Timestamp::never(),
                    description: None,
                })
                .unwrap()
        );
        for corruption in [
            "UPDATE bank_accounts SET username = 'not valid'",
            "UPDATE bank_accounts SET address = 'payto://iban/DE00'",
            "UPDATE bank_accounts SET currency = 'kudos'",
            "UPDATE bank_accounts SET tan_channels = 'sms,fax'",
            "UPDATE bank_accounts SET created_at = 1",
            "UPDATE bank_accounts SET address = 'mailto:alice@example.com'",
        ] {
            let (_dir, store) = temp_store();
            create(&store, new_account("alice", None));
            raw(&store, corruption);
            let alice = user(if corruption.contains("username") {
                "not"
            } else {
                "alice"
            });
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
            if alice.as_str() == "alice" {
                let read = store.account(&alice);
                assert!(matches!(read, Err(StoreError::Internal(_))), "{corruption}");
            }
        }
        raw(&store, "UPDATE bank_tokens SET scope = 'admin'");
        assert!(matches!(
            store.token(&[1; 32]),
            Err(StoreError::Internal(_))
        ));
    }

    #[test]
    fn busy_and_pool_timeouts_are_unavailable() {
        use crate::adapters::sqlite::DbError;
        let busy = StoreError::from(DbError::Busy("locked".into()));
        assert!(matches!(busy, StoreError::Unavailable(_)));
        assert!(matches!(
            StoreError::from(DbError::PoolTimeout),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            StoreError::from(DbError::WriterStopped),
            StoreError::Internal(_)
        ));
    }
}

//! `AccountStore` on PostgreSQL (schema: `migrations/0002_accounts.sql`).
//!
//! Every mutation is one transaction. What the single writer of SQLite serialises for free
//! is locked here: the admin row while a bonus is planned and paid (rule L1), an account's
//! row while it is changed or deleted. Username and address clashes with a concurrent
//! registration surface through `ON CONFLICT DO NOTHING`, never as a failed statement.

use std::sync::Arc;

use postgres::types::ToSql;
use postgres::{GenericClient, Row};

use super::{PgDatabase, PgError, Session};
use crate::adapters::account_rows::{
    AccountRow, TokenRow, account_columns, amount_to_sql, channels_to_sql, created_account,
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

const ACCOUNT_BY_NAME: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM bank_accounts WHERE username = $1"
);

/// The admin account, locked until the transaction ends (L1: bonuses are debited one at a
/// time, each from the balance the previous one left). `NO KEY UPDATE` is enough for that
/// and lets rows referring to the admin (tokens, challenges) be inserted meanwhile.
const ADMIN_FOR_UPDATE: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM bank_accounts WHERE username = $1 FOR NO KEY UPDATE"
);

const TOKEN_OF_ACTIVE_ACCOUNT: &str = "SELECT a.username, t.scope, t.refreshable, t.created_at, \
     t.expires_at, t.description FROM bank_tokens t JOIN bank_accounts a ON a.id = t.account_id \
     WHERE t.token_hash = $1 AND a.deleted_at IS NULL";

type Pg<'a, 'b> = Session<'a, postgres::Transaction<'b>>;

impl AccountStore for PgAccountStore {
    fn create_account(&self, account: NewAccount) -> Result<CreateOutcome, StoreError> {
        self.db.write(|s| {
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
            // First: locks the account row and the challenges until the change commits.
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

    /// One pooled connection for both reads.
    fn token_and_account(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<(TokenRecord, Account)>, StoreError> {
        self.db.read(|s| {
            let Some(token) = token_by_hash(s, token_hash)? else {
                return Ok(None);
            };
            let account = account_by_name(s, &token.username)?.filter(|a| !a.is_deleted());
            Ok(account.map(|account| (token, account)))
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

fn set_hash(s: &mut Pg<'_, '_>, username: &Username, hash: &str) -> Result<bool, PgError> {
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
    row.as_ref().map(read_account).transpose()
}

fn read_account(row: &Row) -> Result<Account, PgError> {
    let stored = AccountRow {
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
    };
    Ok(stored.into_account()?)
}

fn list<C: GenericClient>(
    s: &mut Session<'_, C>,
    page: &AccountPage,
) -> Result<Vec<Account>, PgError> {
    let count = page.limit.checked_abs().unwrap_or(i64::MAX);
    let rows = s.query(
        &page_query(page),
        &[&page.offset, &count, &page.name_contains],
    )?;
    rows.iter().map(read_account).collect()
}

/// The listing query: direction by the sign of the limit; the public filter is spelled out
/// (not bound) so that the planner can use the partial index `bank_accounts_public`.
fn page_query(page: &AccountPage) -> String {
    let (after, order) = if page.limit > 0 {
        ("id > $1", "ASC")
    } else {
        ("id < $1", "DESC")
    };
    let public = if page.public_only {
        " AND is_public AND deleted_at IS NULL"
    } else {
        ""
    };
    // strpos() is a literal, case-sensitive substring test (LIKE is neither).
    format!(
        concat!(
            "SELECT ",
            account_columns!(),
            " FROM bank_accounts WHERE {} AND ($3::text IS NULL OR strpos(name, $3) > 0){} \
             ORDER BY id {} LIMIT $2"
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
    /// A failure: the whole transaction is rolled back and the error reported.
    Failed(PgError),
}

fn refuse(outcome: CreateOutcome) -> Refusal {
    Refusal::Outcome(Box::new(outcome))
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Failed(e.into())
    }
}

impl From<PgError> for Refusal {
    fn from(e: PgError) -> Self {
        Refusal::Failed(e)
    }
}

impl From<postgres::Error> for Refusal {
    fn from(e: postgres::Error) -> Self {
        Refusal::Failed(e.into())
    }
}

/// Runs inside a savepoint: a refusal rolls back whatever the attempt wrote.
fn try_create(s: &mut Pg<'_, '_>, new: &NewAccount) -> Result<Account, Refusal> {
    if let Some(existing) = account_by_name(s, &new.username)? {
        return Err(refuse(CreateOutcome::UsernameTaken(existing)));
    }
    let currency = new.currency()?;
    let address =
        free_address(s, &new.address)?.ok_or_else(|| refuse(CreateOutcome::AddressTaken))?;
    let bonus = plan_bonus(s, new)?;
    let balance = match &bonus {
        Some(plan) => plan.new_balance.clone(),
        None => Balance::zero(Amount::zero(currency.clone())),
    };
    let created_at = micros_to_sql(new.created_at)?;
    let Some(row_id) = insert_account(s, new, &address, &balance, created_at)? else {
        // A concurrent registration committed the username or the address first.
        return Err(match account_by_name(s, &new.username)? {
            Some(existing) => refuse(CreateOutcome::UsernameTaken(existing)),
            None => refuse(CreateOutcome::AddressTaken),
        });
    };
    if let AccountAddress::Iban(iban) = &address {
        let recorded = s.execute(
            "INSERT INTO iban_history (iban) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&iban.as_str()],
        )?;
        if recorded == 0 {
            return Err(refuse(CreateOutcome::AddressTaken));
        }
    }
    if let Some(plan) = bonus {
        pay_bonus(s, &plan, row_id, new.created_at)?;
    }
    Ok(created_account(new, row_id, address, balance))
}

/// The address to assign: the fixed one or the first free IBAN candidate, if any is free.
fn free_address(
    s: &mut Pg<'_, '_>,
    choice: &AddressChoice,
) -> Result<Option<AccountAddress>, PgError> {
    let candidates = match choice {
        AddressChoice::Fixed(address) => vec![address.clone()],
        AddressChoice::IbanCandidates(ibans) => {
            ibans.iter().cloned().map(AccountAddress::Iban).collect()
        }
    };
    for candidate in candidates {
        if !address_taken(s, &candidate)? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// Whether an account holds the address, or (for an IBAN) ever held it.
fn address_taken(s: &mut Pg<'_, '_>, address: &AccountAddress) -> Result<bool, PgError> {
    let iban = match address {
        AccountAddress::Iban(iban) => Some(iban.as_str()),
        AccountAddress::XTalerBank(_) => None,
    };
    let row = s.query_one(
        "SELECT EXISTS (SELECT 1 FROM bank_accounts WHERE address = $1) \
         OR EXISTS (SELECT 1 FROM iban_history WHERE iban = $2::text)",
        &[&address.canonical(), &iban],
    )?;
    Ok(row.try_get(0)?)
}

/// The balances after `admin` pays the registration bonus.
struct BonusPlan {
    admin_id: i64,
    admin_balance: Balance,
    new_balance: Balance,
    amount: Amount,
}

/// Plans the bonus on the admin row locked `FOR UPDATE` (L1): a concurrent registration
/// waits here until this one commits, then plans on the balance it left.
fn plan_bonus(s: &mut Pg<'_, '_>, new: &NewAccount) -> Result<Option<BonusPlan>, Refusal> {
    let Some(bonus) = &new.bonus else {
        return Ok(None);
    };
    let row = s
        .query_opt(ADMIN_FOR_UPDATE, &[&ADMIN])?
        .ok_or_else(|| internal("no admin account to pay the bonus"))?;
    let admin = read_account(&row)?;
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

/// Inserts the account; `None` when its username or address is taken (by a registration
/// that committed after our checks, or is about to: the insert waits for it).
fn insert_account(
    s: &mut Pg<'_, '_>,
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

fn pay_bonus(
    s: &mut Pg<'_, '_>,
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

/// The active account's id and currency, its row locked until the transaction ends (a
/// concurrent deletion waits, and so does a bonus debiting it).
fn lock_active(
    s: &mut Pg<'_, '_>,
    username: &Username,
    columns: &str,
) -> Result<Option<Row>, PgError> {
    Ok(s.query_opt(
        &format!(
            "SELECT {columns} FROM bank_accounts WHERE username = $1 AND deleted_at IS NULL \
             FOR NO KEY UPDATE"
        ),
        &[&username.as_str()],
    )?)
}

/// Writes only the columns of the fields present in `changes`.
fn update(
    s: &mut Pg<'_, '_>,
    username: &Username,
    changes: &AccountChanges,
) -> Result<bool, PgError> {
    let Some(row) = lock_active(s, username, "id, currency")? else {
        return Ok(false);
    };
    let id: i64 = row.try_get(0)?;
    let currency: String = row.try_get(1)?;
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
        .enumerate()
        .map(|(i, (column, _))| format!("{column} = ${}", i + 1))
        .collect();
    let sql = format!(
        "UPDATE bank_accounts SET {} WHERE id = ${}",
        set.join(", "),
        assignments.len() + 1
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = assignments
        .iter()
        .map(|(_, value)| value.as_ref())
        .collect();
    params.push(&id);
    s.execute(&sql, &params)?;
    Ok(true)
}

type Value = Box<dyn ToSql + Sync>;

/// The column values for the present fields of `changes`.
fn column_assignments(changes: &AccountChanges) -> Vec<(&'static str, Value)> {
    let mut columns: Vec<(&'static str, Value)> = Vec::new();
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

fn soft_delete(
    s: &mut Pg<'_, '_>,
    username: &Username,
    now: i64,
) -> Result<DeleteOutcome, PgError> {
    let Some(row) = lock_active(s, username, "id, balance_value, balance_fraction")? else {
        return Ok(DeleteOutcome::NotFound);
    };
    let id: i64 = row.try_get(0)?;
    let balance: (i64, i64) = (row.try_get(1)?, row.try_get(2)?);
    // Either sign counts: zero is the only balance stored as (0, 0).
    if balance != (0, 0) {
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
/// in-memory store does the same; with 32 random bytes this only happens on a retry).
fn insert_token(s: &mut Pg<'_, '_>, token: &TokenRecord) -> Result<bool, PgError> {
    let stored = s.execute(
        "INSERT INTO bank_tokens (token_hash, account_id, scope, refreshable, created_at, \
         expires_at, description) \
         SELECT $1::bytea, id, $3::text, $4::boolean, $5::bigint, $6::bigint, $7::text \
         FROM bank_accounts \
         WHERE username = $2 AND deleted_at IS NULL \
         ON CONFLICT (token_hash) DO UPDATE SET account_id = excluded.account_id, \
         scope = excluded.scope, refreshable = excluded.refreshable, \
         created_at = excluded.created_at, expires_at = excluded.expires_at, \
         description = excluded.description",
        &[
            &&token.token_hash[..],
            &token.username.as_str(),
            &token.scope.as_str(),
            &token.refreshable,
            &micros_to_sql(token.created_at)?,
            &expiry_to_sql(token.expires_at)?,
            &token.description,
        ],
    )?;
    Ok(stored == 1)
}

fn token_by_hash<C: GenericClient>(
    s: &mut Session<'_, C>,
    token_hash: &[u8; 32],
) -> Result<Option<TokenRecord>, PgError> {
    let Some(row) = s.query_opt(TOKEN_OF_ACTIVE_ACCOUNT, &[&&token_hash[..]])? else {
        return Ok(None);
    };
    let stored = TokenRow {
        username: row.try_get(0)?,
        scope: row.try_get(1)?,
        refreshable: row.try_get(2)?,
        created_at: row.try_get(3)?,
        expires_at: row.try_get(4)?,
        description: row.try_get(5)?,
    };
    Ok(Some(stored.into_record(*token_hash)?))
}

fn internal(what: &str) -> StoreError {
    StoreError::Internal(what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::postgres::testing::{self, TestSchema};

    fn store() -> Option<(TestSchema, PgAccountStore)> {
        let (schema, db) = testing::database()?;
        Some((schema, PgAccountStore::new(db)))
    }

    mod conformance {
        use super::*;
        use crate::ports::account_conformance::account_store_conformance;
        account_store_conformance!(optional: store());
    }

    use crate::adapters::postgres::PgTanStore;
    use crate::domain::accounts::{ContactData, Scope, TanChannel};
    use crate::domain::tan::{Challenge, ChallengeId, Operation, Role};
    use crate::ports::random::SeededRandom;
    use crate::ports::tan::TanStore;

    fn kudos(text: &str) -> Amount {
        format!("KUDOS:{text}").parse().unwrap()
    }

    fn user(text: &str) -> Username {
        Username::parse(text).unwrap()
    }

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_seconds(seconds).unwrap()
    }

    fn create(store: &PgAccountStore, username: &str, bonus: Option<&str>) -> Account {
        let new = NewAccount {
            username: user(username),
            password_hash: "hash".into(),
            name: username.to_uppercase(),
            is_public: false,
            is_taler_exchange: false,
            contact: ContactData::default(),
            cashout_payto: None,
            address: AddressChoice::Fixed(AccountAddress::XTalerBank(user(username))),
            debit_threshold: kudos("100"),
            min_cashout: None,
            tan_channels: Vec::new(),
            created_at: at(1_700_000_000),
            bonus: bonus.map(kudos),
        };
        match store.create_account(new).unwrap() {
            CreateOutcome::Created(account) => account,
            other => panic!("{other:?}"),
        }
    }

    /// Solved challenges of `account` (stored), ready to be consumed by a gated change.
    fn solved(tan: &PgTanStore, account: &Account, seed: u64, count: usize) -> Vec<ChallengeId> {
        let random = SeededRandom::new(seed);
        let challenges: Vec<Challenge> = (0..count)
            .map(|_| Challenge {
                id: ChallengeId::generate(&random),
                account_id: account.row_id,
                operation: Operation::AccountDelete,
                role: Role::Auth,
                channel: TanChannel::Sms,
                address: "+1".into(),
                body_salt: [0; 16],
                body_hash: Some([1; 32]),
                code: None,
                code_expires_at: None,
                attempts_left: 3,
                next_send_at: None,
                created_at: at(1_700_000_000),
                solved_at: Some(at(1_700_000_010)),
                used_at: None,
                invalidated_at: None,
            })
            .collect();
        tan.create(&challenges).unwrap();
        challenges.into_iter().map(|c| c.id).collect()
    }

    fn tan_use(account: &Account, used: &[ChallengeId], invalidate_others: bool) -> TanUse {
        TanUse {
            account_id: account.row_id,
            used: used.to_vec(),
            invalidate_others,
            now: at(1_700_000_100),
        }
    }

    fn fixture() -> Option<(TestSchema, PgAccountStore, PgTanStore)> {
        let (schema, db) = testing::database()?;
        let tan = PgTanStore::new(Arc::clone(&db));
        Some((schema, PgAccountStore::new(db), tan))
    }

    #[test]
    fn a_gated_change_spends_its_challenge_and_kills_the_others() {
        let Some((_schema, store, tan)) = fixture() else {
            return;
        };
        let alice = create(&store, "alice", None);
        let ids = solved(&tan, &alice, 1, 2);
        let op = GatedOp::Password("new hash".into());
        let spend = tan_use(&alice, &ids[..1], true);
        assert_eq!(
            store.apply_with_tan(&alice.username, &op, &spend).unwrap(),
            GatedChange::Done
        );
        assert_eq!(
            store
                .account(&alice.username)
                .unwrap()
                .unwrap()
                .password_hash,
            "new hash"
        );
        let used = tan.challenge(alice.row_id, &ids[0]).unwrap().unwrap();
        assert_eq!(used.used_at, Some(at(1_700_000_100)));
        let other = tan.challenge(alice.row_id, &ids[1]).unwrap().unwrap();
        assert_eq!(other.invalidated_at, Some(at(1_700_000_100)));
        // Spent once: the same challenge (or the invalidated one) no longer counts.
        for id in &ids {
            let again = tan_use(&alice, std::slice::from_ref(id), false);
            assert_eq!(
                store
                    .apply_with_tan(&alice.username, &GatedOp::Delete, &again)
                    .unwrap(),
                GatedChange::StaleChallenge
            );
        }
        assert!(
            !store
                .account(&alice.username)
                .unwrap()
                .unwrap()
                .is_deleted()
        );
    }

    #[test]
    fn a_refused_gated_change_leaves_its_challenge_unspent() {
        let Some((_schema, store, tan)) = fixture() else {
            return;
        };
        create(&store, "admin", None);
        let alice = create(&store, "alice", Some("1"));
        let ids = solved(&tan, &alice, 2, 1);
        let spend = tan_use(&alice, &ids, true);
        assert_eq!(
            store
                .apply_with_tan(&alice.username, &GatedOp::Delete, &spend)
                .unwrap(),
            GatedChange::BalanceNotZero
        );
        assert_eq!(
            store
                .apply_with_tan(&user("ghost"), &GatedOp::Delete, &spend)
                .unwrap(),
            GatedChange::NoAccount
        );
        let challenge = tan.challenge(alice.row_id, &ids[0]).unwrap().unwrap();
        assert_eq!((challenge.used_at, challenge.invalidated_at), (None, None));
        assert!(
            !store
                .account(&alice.username)
                .unwrap()
                .unwrap()
                .is_deleted()
        );
    }

    #[test]
    fn concurrent_gated_changes_spend_one_challenge_once() {
        let Some((_schema, store, tan)) = fixture() else {
            return;
        };
        let alice = create(&store, "alice", None);
        let ids = solved(&tan, &alice, 3, 1);
        let outcomes: Vec<GatedChange> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    let (store, alice, ids) = (&store, &alice, &ids);
                    scope.spawn(move || {
                        let token = TokenRecord {
                            token_hash: [i; 32],
                            username: alice.username.clone(),
                            scope: Scope::Readwrite,
                            refreshable: false,
                            created_at: at(1_700_000_000),
                            expires_at: Timestamp::never(),
                            description: None,
                        };
                        let spend = tan_use(alice, ids, false);
                        store
                            .apply_with_tan(&alice.username, &GatedOp::Token(token), &spend)
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
        let tokens = (0..8u8)
            .filter(|i| store.token(&[*i; 32]).unwrap().is_some())
            .count();
        assert_eq!(tokens, 1);
    }

    #[test]
    fn the_bonus_is_booked_in_the_ledger() {
        let Some((_schema, store, _tan)) = fixture() else {
            return;
        };
        let admin = create(&store, "admin", None);
        let alice = create(&store, "alice", Some("2.5"));
        let row = store
            .db
            .read(|s| {
                let row = s.query_one(
                    "SELECT debtor_id, creditor_id, currency, amount_value, amount_fraction, \
                     subject, created_at FROM bank_transactions",
                    &[],
                )?;
                Ok((
                    row.try_get::<_, i64>(0)?,
                    row.try_get::<_, i64>(1)?,
                    row.try_get::<_, String>(2)?,
                    row.try_get::<_, i64>(3)?,
                    row.try_get::<_, i64>(4)?,
                    row.try_get::<_, String>(5)?,
                    row.try_get::<_, i64>(6)?,
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

    /// Runs raw SQL in a transaction of its own, bypassing the store's checks.
    fn raw(store: &PgAccountStore, sql: &str) {
        store.db.write(|s| Ok(s.batch(sql)?)).unwrap();
    }

    #[test]
    fn never_is_stored_as_null_and_times_beyond_i64_are_refused() {
        let Some((_schema, store, _tan)) = fixture() else {
            return;
        };
        create(&store, "alice", None);
        let mut token = TokenRecord {
            token_hash: [1; 32],
            username: user("alice"),
            scope: Scope::Readonly,
            refreshable: false,
            created_at: at(1),
            expires_at: Timestamp::never(),
            description: None,
        };
        assert!(store.insert_token(&token).unwrap());
        let nulls: i64 = store
            .db
            .read(|s| {
                let row = s.query_one(
                    "SELECT count(*) FROM bank_tokens WHERE expires_at IS NULL",
                    &[],
                )?;
                Ok(row.try_get(0)?)
            })
            .unwrap();
        assert_eq!(nulls, 1);
        assert_eq!(store.token(&[1; 32]).unwrap(), Some(token.clone()));
        let last = u64::try_from(i64::MAX).unwrap() / 1_000_000;
        token.expires_at = at(last);
        assert!(store.insert_token(&token).unwrap());
        assert_eq!(store.token(&[1; 32]).unwrap(), Some(token.clone()));
        token.expires_at = at(last + 1);
        assert!(matches!(
            store.insert_token(&token),
            Err(StoreError::Internal(_))
        ));
        // A token of a missing account is refused, not stored.
        token.username = user("ghost");
        token.expires_at = Timestamp::never();
        assert!(!store.insert_token(&token).unwrap());
    }

    #[test]
    fn corrupt_rows_are_internal_errors() {
        for corruption in [
            "UPDATE bank_accounts SET username = 'not valid'",
            "UPDATE bank_accounts SET address = 'payto://iban/DE00'",
            "UPDATE bank_accounts SET currency = 'kudos'",
            "UPDATE bank_accounts SET tan_channels = 'sms,fax'",
            "UPDATE bank_accounts SET created_at = 1",
            "UPDATE bank_tokens SET scope = 'admin'",
        ] {
            let Some((_schema, store, _tan)) = fixture() else {
                return;
            };
            create(&store, "alice", None);
            let token = TokenRecord {
                token_hash: [1; 32],
                username: user("alice"),
                scope: Scope::Readonly,
                refreshable: false,
                created_at: at(1),
                expires_at: Timestamp::never(),
                description: None,
            };
            assert!(store.insert_token(&token).unwrap());
            raw(&store, corruption);
            if corruption.contains("bank_tokens") {
                let read = store.token(&[1; 32]);
                assert!(matches!(read, Err(StoreError::Internal(_))), "{corruption}");
                continue;
            }
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
}

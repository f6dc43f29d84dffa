//! PostgreSQL storage, for several talerbox instances sharing one database.
//!
//! No writer thread: every port call is one READ COMMITTED transaction on a pooled
//! connection, answered after its `COMMIT` (with `synchronous_commit = on`, durable). Where
//! the SQLite stores rely on their single writer (read, decide, then write), these stores
//! take explicit locks (see `locks`). The client is blocking: call the stores only from
//! blocking threads (`spawn_blocking`, the quick lane, the CLI), never on an async worker.

pub mod accounts;
pub mod aml;
pub mod challenges;
pub mod connection;
pub mod import;
pub mod journal;
pub mod kyc;
mod kyc_decisions;
#[cfg(test)]
mod kyc_journal_parity;
pub mod listener;
pub mod locks;
pub mod meta;
pub mod migrations;
#[cfg(test)]
mod parity_tests;
pub mod retention;
pub mod tan;
#[cfg(test)]
pub mod testing;

use std::time::Duration;

use rand_core::RngCore as _;

use postgres::GenericClient;

use crate::ports::StoreError;
pub use accounts::PgAccountStore;
pub use aml::PgAmlStore;
pub use challenges::PgChallengeStore;
pub use connection::{PgConnection, PgManager, Session, parse_uri, redact, with_search_path};
pub use import::{ImportError, ImportReport, import_sqlite};
pub use kyc::PgKycStore;
pub use listener::ChangeListener;
pub use migrations::latest_version;
pub use tan::PgTanStore;

/// How long a call waits for a free pooled connection before it is refused (503).
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts of a transaction that hit a serialization failure or a deadlock.
const WRITE_ATTEMPTS: u32 = 3;

/// Default pooled connections of one instance (PostgreSQL's group commit needs one
/// connection per concurrent writer).
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// A failure inside a port call: a statement's error (classified when the call ends) or the
/// store's own verdict (e.g. a corrupt row).
#[derive(Debug)]
pub enum PgError {
    Db(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for PgError {
    fn from(e: postgres::Error) -> Self {
        PgError::Db(e)
    }
}

impl From<StoreError> for PgError {
    fn from(e: StoreError) -> Self {
        PgError::Store(e)
    }
}

impl PgError {
    /// A serialization failure or deadlock: the transaction may be run again.
    fn is_retryable(&self) -> bool {
        matches!(self, PgError::Db(e) if matches!(
            e.code().map(|c| c.code()),
            Some("40001" | "40P01")
        ))
    }
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Store(e) => e,
            PgError::Db(e) => classify(&e),
        }
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        classify(&e)
    }
}

/// Busy, gone or full is worth a retry (503); anything else is a bug or corruption (500).
/// The text names the SQLSTATE, message and constraint, never a parameter.
fn classify(e: &postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(db) => format!(
            "postgres {}: {}{}",
            db.code().code(),
            db.message(),
            db.constraint()
                .map(|c| format!(" (constraint {c})"))
                .unwrap_or_default()
        ),
        None => format!("postgres: {e}"),
    };
    let transient = match e.code().map(|c| c.code()) {
        Some(code) => {
            code.starts_with("08")
                || matches!(
                    code,
                    "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "53300"
                )
        }
        // No SQLSTATE: a broken or unreachable connection is transient; a value that does
        // not convert (a corrupt row) is not.
        None => {
            e.is_closed()
                || std::error::Error::source(e).is_some_and(|cause| cause.is::<std::io::Error>())
        }
    };
    if transient {
        StoreError::Unavailable(text)
    } else {
        StoreError::Internal(text)
    }
}

/// Runs `work` as one transaction on `conn`, again after a serialization failure or deadlock.
fn transact<T>(
    conn: &mut PgConnection,
    mut work: impl FnMut(&mut Session<'_, postgres::Transaction<'_>>) -> Result<T, PgError>,
) -> Result<T, StoreError> {
    let mut attempt = 1;
    loop {
        match conn.transaction(&mut work) {
            Err(e) if e.is_retryable() && attempt < WRITE_ATTEMPTS => {
                attempt += 1;
                let jitter = rand_core::OsRng.next_u32() % 20;
                std::thread::sleep(Duration::from_millis(5 + u64::from(jitter)));
            }
            outcome => return outcome.map_err(StoreError::from),
        }
    }
}

/// The shared database: a pool of sessions, each with its statement cache.
pub struct PgDatabase {
    /// `None` only while being dropped (see `Drop`).
    pool: Option<r2d2::Pool<PgManager>>,
    uri: String,
}

impl PgDatabase {
    /// Migrates the schema (under the startup lock), then opens the pool.
    pub fn open(uri: &str, pool_size: u32) -> Result<PgDatabase, StoreError> {
        let config = parse_uri(uri).map_err(StoreError::Internal)?;
        {
            let mut conn = PgConnection::connect(&config)?;
            migrations::migrate(&mut conn)?;
            journal::ensure_started(&mut conn, latest_version())?;
            let limit: String = conn
                .session()
                .query_one("SHOW max_connections", &[])?
                .try_get(0)?;
            // Every instance holds its pool, the change listener and (while starting) the
            // startup lock: the operator must keep instances × that below the server's limit.
            tracing::info!(
                connections = pool_size + 2,
                max_connections = %limit,
                "PostgreSQL: this instance uses up to `connections`; all instances together \
                 must stay below max_connections"
            );
        }
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .test_on_check_out(false)
            .connection_timeout(POOL_TIMEOUT)
            .build(PgManager::new(config))
            .map_err(|e| StoreError::Unavailable(format!("opening connections: {e}")))?;
        Ok(PgDatabase {
            pool: Some(pool),
            uri: redact(uri),
        })
    }

    /// The URI without its password.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn connection(&self) -> Result<r2d2::PooledConnection<PgManager>, StoreError> {
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| StoreError::Internal("the database is closed".into()))?;
        pool.get().map_err(|_| {
            StoreError::Unavailable("no database connection became free in time".into())
        })
    }

    /// Runs `work` in autocommit on a pooled connection.
    pub fn read<T>(
        &self,
        work: impl FnOnce(&mut Session<'_, postgres::Client>) -> Result<T, PgError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.connection()?;
        Ok(work(&mut conn.session())?)
    }

    /// Runs `work` as one transaction, answered after its commit. A serialization failure
    /// or deadlock runs it again (at most `WRITE_ATTEMPTS` times), so `work` must not have
    /// effects outside the database.
    pub fn write<T>(
        &self,
        work: impl FnMut(&mut Session<'_, postgres::Transaction<'_>>) -> Result<T, PgError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.connection()?;
        transact(&mut conn, work)
    }

    /// Runs `work` like [`PgDatabase::write`]; when it answers `true` beside its value,
    /// `after_commit` (statements without parameters) then runs in one round trip on the
    /// same connection. The change is committed by then, so a failure there is only logged.
    pub fn write_then<T>(
        &self,
        after_commit: &str,
        work: impl FnMut(&mut Session<'_, postgres::Transaction<'_>>) -> Result<(T, bool), PgError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.connection()?;
        let (value, follow) = transact(&mut conn, work)?;
        if follow && let Err(e) = conn.session().batch(after_commit) {
            tracing::warn!(error = %classify(&e), "statements after a commit failed");
            // Leave no half-run transaction on a connection that goes back to the pool.
            let _ = conn.session().batch("ROLLBACK");
        }
        Ok(value)
    }

    /// A cheap query proving that the database answers (used by `/healthz` and `/readyz`).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.read(|s| {
            s.query_one("SELECT count(*) FROM talerbox_meta", &[])?;
            Ok(())
        })
    }
}

/// Closing a connection blocks on the client's own runtime, which must not run inside another
/// one: the pool is closed on a thread of its own, wherever its last holder lets go of it.
impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let closing = std::thread::Builder::new().name("pg-close".into());
            if let Err(e) = closing.spawn(move || drop(pool)) {
                tracing::warn!(error = %e, "could not close the database connections");
            }
        }
    }
}

impl crate::ports::health::HealthProbe for PgDatabase {
    fn check(&self) -> Result<(), String> {
        self.ping().map_err(|e| e.to_string())
    }
}

/// `db check` on PostgreSQL: the database answers, its schema is this binary's, and the row
/// count of every table is readable (the problems found; empty = sound). Never migrates.
pub fn check(uri: &str) -> Result<Vec<String>, StoreError> {
    let config = parse_uri(uri).map_err(StoreError::Internal)?;
    let mut conn = PgConnection::connect(&config)?;
    let version = migrations::current_version(&mut conn)?;
    let mut problems = Vec::new();
    if version != latest_version() {
        problems.push(format!(
            "schema version {version}, this binary writes {}",
            latest_version()
        ));
        return Ok(problems);
    }
    let mut session = conn.session();
    for table in tables(&mut session)? {
        if let Err(e) = row_count(&mut session, &table) {
            problems.push(format!("{table}: {}", StoreError::from(e)));
        }
    }
    Ok(problems)
}

/// The talerbox tables of the schema in the session's search path, by name (without the
/// migration runner's `talerbox_schema`).
pub(crate) fn tables<C: GenericClient>(
    session: &mut Session<'_, C>,
) -> Result<Vec<String>, postgres::Error> {
    session
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
               AND table_name <> 'talerbox_schema'
             ORDER BY table_name",
            &[],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect()
}

/// A table or column name quoted as an identifier (names come from the schemas themselves;
/// quoted all the same).
pub(crate) fn quoted(table: &str) -> String {
    format!("\"{}\"", table.replace('"', "\"\""))
}

/// The rows `table` holds.
pub(crate) fn row_count<C: GenericClient>(
    session: &mut Session<'_, C>,
    table: &str,
) -> Result<i64, postgres::Error> {
    let sql = format!("SELECT count(*) FROM {}", quoted(table));
    session.query_one(&sql, &[])?.try_get(0)
}

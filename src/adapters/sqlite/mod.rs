//! SQLite storage: WAL, `synchronous=FULL`, an r2d2 pool of read-only connections and one
//! writer connection with group commit (see `writer`).

pub mod accounts;
pub mod aml;
pub mod challenges;
pub mod journal;
pub mod kyc;
mod kyc_decisions;
pub mod meta;
mod migrations;
pub mod retention;
pub mod tan;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;

use crate::adapters::private_files;
use rusqlite::{Connection, OpenFlags};

pub use accounts::SqliteAccountStore;
pub use aml::SqliteAmlStore;
pub use challenges::SqliteChallengeStore;
pub use journal::SqliteJournal;
pub use kyc::SqliteKycStore;
pub use migrations::latest_version;
pub use tan::SqliteTanStore;
pub use writer::{Writer, WriterStats};

/// How long a statement waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reader waits for a free pooled connection before the request is refused.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// Storage failures. They never carry request data, so they are safe to log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(String),
    #[error("database busy: {0}")]
    Busy(String),
    #[error("no database connection became free in time")]
    PoolTimeout,
    #[error("the database writer has stopped")]
    WriterStopped,
    #[error("a write job panicked; its changes were rolled back")]
    JobPanicked,
    #[error("a write job could not be run")]
    JobNotRun,
    #[error("database written by a newer talerbox (schema {database}, this binary knows {binary})")]
    TooNew { database: usize, binary: usize },
    #[error("schema migration to version {version} failed: {message}")]
    Migration { version: usize, message: String },
    #[error("database corrupt: {0}")]
    Corrupt(String),
    #[error("i/o: {0}")]
    Io(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                DbError::Busy(e.to_string())
            }
            _ => DbError::Sqlite(e.to_string()),
        }
    }
}

/// What a store port reports: busy or out of connections is worth a retry, the rest is not.
impl From<DbError> for crate::ports::StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Busy(_) | DbError::PoolTimeout => Self::Unavailable(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for crate::ports::StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::from(DbError::from(e))
    }
}

/// Tuning of a database handle.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Pooled read connections.
    pub readers: u32,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions { readers: 4 }
    }
}

/// The talerbox database: reads through a pool, writes through the single writer.
pub struct Database {
    path: PathBuf,
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Writer,
}

impl Database {
    /// Opens (creating if needed) and migrates the database file at `path`.
    pub fn open(path: &Path, options: &DbOptions) -> Result<Database, DbError> {
        private_files::ensure_file(path)
            .map_err(|e| DbError::Io(format!("creating {}: {e}", path.display())))?;
        let mut conn = Connection::open(path)?;
        configure_writer(&conn)?;
        migrations::migrate(&mut conn)?;
        journal::ensure_started(&conn, latest_version())
            .map_err(|e| DbError::Sqlite(format!("starting the compliance journal: {e}")))?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(configure_reader);
        let readers = r2d2::Pool::builder()
            .max_size(options.readers.max(1))
            .min_idle(Some(1))
            // A local file connection does not go stale; testing it on every checkout
            // would cost a query per read.
            .test_on_check_out(false)
            .connection_timeout(POOL_TIMEOUT)
            .build(manager)
            .map_err(|e| DbError::Sqlite(format!("opening read connections: {e}")))?;
        let writer = Writer::start(conn)?;
        Ok(Database {
            path: path.to_owned(),
            readers,
            writer,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer's queue, batches and progress, for metrics and the readiness probe.
    pub fn writer_stats(&self) -> &WriterStats {
        self.writer.stats()
    }

    /// Bytes of the database file and its write-ahead log.
    pub fn size_on_disk(&self) -> u64 {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        [self.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Runs `work` on a pooled read-only connection.
    pub fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        E: From<DbError>,
        F: FnOnce(&Connection) -> Result<T, E>,
    {
        let conn = self.readers.get().map_err(|_| DbError::PoolTimeout)?;
        work(&conn)
    }

    /// Runs `work` atomically through the writer (see `Writer::write`).
    pub fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.writer.write(work)
    }

    /// A cheap query proving that the file is readable (used by `/healthz`).
    pub fn ping(&self) -> Result<(), DbError> {
        self.read(|conn| {
            conn.query_row("SELECT count(*) FROM talerbox_meta", [], |_| Ok(()))
                .map_err(DbError::from)
        })
    }
}

fn configure_writer(conn: &Connection) -> Result<(), DbError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::Sqlite(format!(
            "could not enable WAL (journal_mode={mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn configure_reader(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "query_only", "ON")
}

/// Opens an existing database read-only without migrating it (for `db check` and `db backup`).
fn open_read_only(path: &Path) -> Result<Connection, DbError> {
    if !path.exists() {
        return Err(DbError::Io(format!("no database at {}", path.display())));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Runs SQLite's integrity and foreign-key checks; returns the problems found (empty = sound).
pub fn check(path: &Path) -> Result<Vec<String>, DbError> {
    let conn = open_read_only(path)?;
    let mut problems = Vec::new();
    let mut integrity = conn.prepare("PRAGMA integrity_check")?;
    for line in integrity.query_map([], |r| r.get::<_, String>(0))? {
        let line = line?;
        if line != "ok" {
            problems.push(line);
        }
    }
    let mut foreign = conn.prepare("PRAGMA foreign_key_check")?;
    for row in foreign.query_map([], |r| {
        Ok(format!(
            "foreign key violation in {}",
            r.get::<_, String>(0)?
        ))
    })? {
        problems.push(row?);
    }
    let version = migrations::current_version(&conn)?;
    if version > latest_version() {
        problems.push(format!(
            "schema version {version} is newer than this binary ({})",
            latest_version()
        ));
    }
    Ok(problems)
}

/// Writes a consistent copy of the live database to `target` (which must not exist), readable
/// by the owner only, from a read-only connection: safe while the server runs, never migrates.
pub fn backup(path: &Path, target: &Path) -> Result<(), DbError> {
    let conn = open_read_only(path)?;
    let target_text = target
        .to_str()
        .ok_or_else(|| DbError::Io("backup path is not valid UTF-8".into()))?;
    // VACUUM INTO fills an empty file and keeps its mode.
    private_files::create_new_file(target).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            DbError::Io(format!("{} already exists", target.display()))
        }
        _ => DbError::Io(format!("creating {}: {e}", target.display())),
    })?;
    if let Err(e) = conn.execute("VACUUM INTO ?1", [target_text]) {
        let _ = std::fs::remove_file(target);
        return Err(e.into());
    }
    Ok(())
}

impl crate::ports::health::HealthProbe for Database {
    fn check(&self) -> Result<(), String> {
        self.ping().map_err(|e| e.to_string())
    }
}

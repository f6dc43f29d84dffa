//! Advisory locks: where the SQLite stores rely on their single writer, the PostgreSQL stores
//! serialise the few read-then-write steps that need it. Keys are (class, key) pairs of i32.

use postgres::GenericClient;

use super::Session;
use crate::domain::primitives::NormalizedPaytoHash;

/// Held for the whole of an instance's start (session lock, on its own connection).
pub const STARTUP: (i32, i32) = (1, 0);
/// Held while the schema is migrated.
pub const MIGRATION: (i32, i32) = (1, 1);
/// Tried by the periodic purge: one instance purges at a time.
pub const PURGE: (i32, i32) = (2, 0);
/// Class of the per-account lock of KYC and AML writes (key: the first 4 bytes of h_payto).
const ACCOUNT_CLASS: i32 = 3;
/// Decisions: serial order equals commit order, so an officer paging by serial misses none.
pub const DECISIONS: (i32, i32) = (4, 0);
/// The compliance journal's hash chain: one appender at a time.
pub const JOURNAL: (i32, i32) = (5, 0);
/// The KYC accounts' paging serial (the largest plus one).
pub const KYC_ACCOUNT_SERIAL: (i32, i32) = (6, 0);

/// Takes `lock` until the end of the transaction.
pub fn transaction_lock<C: GenericClient>(
    session: &mut Session<'_, C>,
    lock: (i32, i32),
) -> Result<(), postgres::Error> {
    session.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&lock.0, &lock.1])?;
    Ok(())
}

/// Tries `lock` until the end of the transaction; false when another session holds it.
pub fn try_transaction_lock<C: GenericClient>(
    session: &mut Session<'_, C>,
    lock: (i32, i32),
) -> Result<bool, postgres::Error> {
    session
        .query_one(
            "SELECT pg_try_advisory_xact_lock($1, $2)",
            &[&lock.0, &lock.1],
        )?
        .try_get(0)
}

/// The per-account lock of `h_payto` (accounts sharing 4 bytes only wait for each other).
pub fn account_lock(h_payto: &NormalizedPaytoHash) -> (i32, i32) {
    let [a, b, c, d, ..] = h_payto.0;
    (ACCOUNT_CLASS, i32::from_be_bytes([a, b, c, d]))
}

/// The startup lock, held on a connection of its own until dropped (a crash releases it with
/// the connection).
pub struct StartupLock {
    _connection: super::PgConnection,
}

impl StartupLock {
    pub fn acquire(uri: &str) -> Result<StartupLock, crate::ports::StoreError> {
        let config = super::parse_uri(uri).map_err(crate::ports::StoreError::Internal)?;
        let mut connection = super::PgConnection::connect(&config)?;
        connection
            .session()
            .execute("SELECT pg_advisory_lock($1, $2)", &[&STARTUP.0, &STARTUP.1])?;
        Ok(StartupLock {
            _connection: connection,
        })
    }
}

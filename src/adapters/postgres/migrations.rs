//! Schema migrations for PostgreSQL, numbered as the SQLite ones: version N here describes
//! the same tables and columns as SQLite's version N (a parity test compares them). Each step
//! runs in one transaction with its version bump, under the migration lock, so instances
//! starting together migrate one after the other.

use super::locks::MIGRATION;
use super::{PgConnection, PgError};
use crate::ports::StoreError;

/// Every schema version in order; a shipped entry is never edited, only appended to.
const STEPS: &[&str] = &[
    include_str!("migrations/0001_meta.sql"),
    include_str!("migrations/0002_accounts.sql"),
    include_str!("migrations/0003_challenger.sql"),
    include_str!("migrations/0004_aml.sql"),
    include_str!("migrations/0005_kyc.sql"),
    include_str!("migrations/0006_aml_decisions.sql"),
    include_str!("migrations/0007_bank_tan.sql"),
    include_str!("migrations/0008_compliance_evidence.sql"),
];

/// The schema version this binary writes.
pub fn latest_version() -> usize {
    STEPS.len()
}

/// The version of the schema in the connection's search path (0 before the first step).
pub fn current_version(conn: &mut PgConnection) -> Result<usize, StoreError> {
    let mut session = conn.session();
    let exists = session
        .query_one("SELECT to_regclass('talerbox_schema') IS NOT NULL", &[])?
        .try_get::<_, bool>(0)?;
    if !exists {
        return Ok(0);
    }
    let version: i64 = session
        .query_one("SELECT version FROM talerbox_schema", &[])?
        .try_get(0)?;
    usize::try_from(version)
        .map_err(|_| StoreError::Internal(format!("corrupt schema version {version}")))
}

/// Brings the schema to the latest version; refuses a schema written by a newer binary.
pub fn migrate(conn: &mut PgConnection) -> Result<(), StoreError> {
    conn.session().execute(
        "SELECT pg_advisory_lock($1, $2)",
        &[&MIGRATION.0, &MIGRATION.1],
    )?;
    let outcome = migrate_locked(conn);
    let unlocked = conn.session().execute(
        "SELECT pg_advisory_unlock($1, $2)",
        &[&MIGRATION.0, &MIGRATION.1],
    );
    outcome?;
    unlocked?;
    Ok(())
}

fn migrate_locked(conn: &mut PgConnection) -> Result<(), StoreError> {
    conn.session().batch(
        "CREATE TABLE IF NOT EXISTS talerbox_schema (version BIGINT NOT NULL);
         INSERT INTO talerbox_schema (version)
             SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM talerbox_schema)",
    )?;
    let current = current_version(conn)?;
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::Internal(format!(
            "database written by a newer talerbox (schema {current}, this binary knows {latest})"
        )));
    }
    for (index, step) in STEPS.iter().enumerate().skip(current) {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        conn.transaction(|s| -> Result<(), PgError> {
            s.batch(step)?;
            s.execute("UPDATE talerbox_schema SET version = $1", &[&version])?;
            Ok(())
        })
        .map_err(|e| match StoreError::from(e) {
            StoreError::Internal(m) | StoreError::Unavailable(m) => {
                StoreError::Internal(format!("schema migration to version {version} failed: {m}"))
            }
        })?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::postgres::testing;

    #[test]
    fn migrating_twice_changes_nothing_and_a_newer_schema_is_refused() {
        let Some((schema, _db)) = testing::database() else {
            return;
        };
        let mut conn = schema.connect();
        assert_eq!(current_version(&mut conn).unwrap(), latest_version());
        migrate(&mut conn).unwrap();
        assert_eq!(current_version(&mut conn).unwrap(), latest_version());
        conn.session()
            .execute("UPDATE talerbox_schema SET version = version + 1", &[])
            .unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(error.to_string().contains("newer talerbox"), "{error}");
    }
}

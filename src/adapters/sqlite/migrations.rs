//! Schema migrations embedded in the binary, applied at startup one transaction per version.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use super::DbError;

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

fn migrations() -> Migrations<'static> {
    Migrations::new(STEPS.iter().map(|sql| M::up(sql)).collect())
}

/// The version stored in the database file (`PRAGMA user_version`).
pub fn current_version(conn: &Connection) -> Result<usize, DbError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    usize::try_from(version).map_err(|_| DbError::Corrupt(format!("user_version {version}")))
}

/// Brings the schema to the latest version; refuses a database written by a newer binary.
pub fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let current = current_version(conn)?;
    let latest = latest_version();
    if current > latest {
        return Err(DbError::TooNew {
            database: current,
            binary: latest,
        });
    }
    let migrations = migrations();
    for version in current + 1..=latest {
        migrations
            .to_version(conn, version)
            .map_err(|e| DbError::Migration {
                version,
                message: e.to_string(),
            })?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_definitions_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let schema = |c: &Connection| -> Vec<String> {
            let mut stmt = c
                .prepare("SELECT sql FROM sqlite_master ORDER BY name")
                .unwrap();
            stmt.query_map([], |r| r.get::<_, Option<String>>(0))
                .unwrap()
                .map(|r| r.unwrap().unwrap_or_default())
                .collect()
        };
        let before = schema(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(schema(&conn), before);
        assert_eq!(current_version(&conn).unwrap(), latest_version());
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest_version() as i64 + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(matches!(err, DbError::TooNew { .. }), "{err}");
    }

    #[test]
    fn an_upgraded_database_starts_its_journal_with_the_rows_it_held() {
        use crate::adapters::sqlite::{Database, DbOptions, SqliteJournal};
        use crate::ports::journal::{Journal, JournalQuery};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite3");
        {
            // A database of the release before the journal, with one officer.
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 7).unwrap();
            conn.execute(
                "INSERT INTO aml_officers (officer_pub, name, is_active, read_only, last_change)
                 VALUES (zeroblob(32), 'Ann', 1, 0, 0)",
                [],
            )
            .unwrap();
        }
        let db = std::sync::Arc::new(Database::open(&path, &DbOptions::default()).unwrap());
        let entries = SqliteJournal::new(db)
            .entries(&JournalQuery {
                limit: 10,
                ..JournalQuery::default()
            })
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].serial, entries[0].kind.as_str()),
            (1, "journal.started")
        );
        let details: serde_json::Value = serde_json::from_str(&entries[0].details).unwrap();
        assert_eq!(details["schema_version"], latest_version());
        assert_eq!(details["existing_rows"]["aml_officers"], 1);
        assert_eq!(details["existing_rows"]["kyc_attributes"], 0);
    }
}

//! Retention purges and legal holds (compliance-evidence.md §4), each change journaled in the
//! same write job.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use super::Database;
use super::journal;
use crate::adapters::convert::micros_to_sql;
use crate::domain::evidence::retention::purge_cutoff;
use crate::domain::evidence::{Actor, events};
use crate::domain::primitives::{NormalizedPaytoHash, RelativeTime, Timestamp};
use crate::ports::StoreError;
use crate::ports::retention::RetentionStore;

pub use crate::ports::retention::{Hold, Purged};

const DUE: &str = "SELECT a.serial, a.h_payto FROM kyc_attributes a
     WHERE a.purged_at IS NULL AND a.collection_time < ?1
       AND a.expiration_time IS NOT NULL AND a.expiration_time < ?2
       AND NOT EXISTS (SELECT 1 FROM retention_holds h WHERE h.h_payto = a.h_payto)
     ORDER BY a.serial";

type DueRows = BTreeMap<[u8; 32], Vec<u64>>;

fn due_rows(
    conn: &rusqlite::Connection,
    now: Timestamp,
    retention: RelativeTime,
) -> Result<DueRows, StoreError> {
    let Some(cutoff) = purge_cutoff(now, retention) else {
        return Ok(BTreeMap::new());
    };
    let mut statement = conn.prepare_cached(DUE)?;
    let rows = statement.query_map(params![micros_to_sql(cutoff)?, micros_to_sql(now)?], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut due: DueRows = BTreeMap::new();
    for row in rows {
        let (serial, h_payto) = row?;
        let h_payto = <[u8; 32]>::try_from(h_payto.as_slice())
            .map_err(|_| StoreError::Internal("malformed h_payto".into()))?;
        let serial =
            u64::try_from(serial).map_err(|_| StoreError::Internal("malformed serial".into()))?;
        due.entry(h_payto).or_default().push(serial);
    }
    Ok(due)
}

fn count(due: &DueRows) -> Purged {
    Purged {
        rows: due.values().map(|rows| rows.len() as u64).sum(),
        accounts: due.len() as u64,
    }
}

impl RetentionStore for Database {
    /// Erases the blobs of every due row, with one `retention.purged` entry per account;
    /// with `dry_run`, only counts them.
    fn purge_attributes(
        &self,
        now: Timestamp,
        retention: RelativeTime,
        actor: Actor,
        dry_run: bool,
    ) -> Result<Purged, StoreError> {
        if dry_run {
            return self.read(|conn| due_rows(conn, now, retention).map(|due| count(&due)));
        }
        self.write(move |conn| {
            let due = due_rows(conn, now, retention)?;
            let mut erase = conn.prepare_cached(
                "UPDATE kyc_attributes SET encrypted_attributes = X'', purged_at = ?2
                 WHERE serial = ?1",
            )?;
            for (h_payto, rows) in &due {
                for row in rows {
                    let serial = i64::try_from(*row)
                        .map_err(|_| StoreError::Internal("serial beyond i64".into()))?;
                    erase.execute(params![serial, micros_to_sql(now)?])?;
                }
                let entry = events::purged(NormalizedPaytoHash(*h_payto), actor.clone(), rows);
                journal::append(conn, &entry)?;
            }
            Ok(count(&due))
        })
    }

    /// Sets (or, with `reason` = `None`, releases) the account's legal hold; answers whether
    /// anything changed.
    fn set_hold(
        &self,
        h_payto: NormalizedPaytoHash,
        reason: Option<String>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let existing: Option<String> = conn
                .prepare_cached("SELECT reason FROM retention_holds WHERE h_payto = ?1")?
                .query_row([&h_payto.0[..]], |r| r.get(0))
                .optional()?;
            let changed = match (&reason, &existing) {
                (Some(reason), _) => {
                    conn.execute(
                        "INSERT INTO retention_holds (h_payto, reason, since) VALUES (?1, ?2, ?3)
                         ON CONFLICT (h_payto) DO UPDATE SET reason = excluded.reason",
                        params![&h_payto.0[..], reason, micros_to_sql(now)?],
                    )?;
                    existing.as_ref() != Some(reason)
                }
                (None, Some(_)) => {
                    conn.execute(
                        "DELETE FROM retention_holds WHERE h_payto = ?1",
                        [&h_payto.0[..]],
                    )?;
                    true
                }
                (None, None) => false,
            };
            if changed {
                let text = reason.as_deref().or(existing.as_deref()).unwrap_or("");
                journal::append(conn, &events::hold(h_payto, reason.is_some(), text))?;
            }
            Ok(changed)
        })
    }

    /// Every legal hold, oldest first.
    fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT h_payto, reason, since FROM retention_holds ORDER BY since, h_payto",
            )?;
            let rows = statement.query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            rows.map(|row| {
                let (h_payto, reason, since) = row?;
                Ok(Hold {
                    h_payto: NormalizedPaytoHash(
                        h_payto
                            .try_into()
                            .map_err(|_| StoreError::Internal("malformed h_payto".into()))?,
                    ),
                    reason,
                    since: Timestamp::from_micros(u64::try_from(since).unwrap_or(0)),
                })
            })
            .collect()
        })
    }
}

#[cfg(test)]
mod conformance {
    use std::sync::Arc;

    use super::Database;
    use crate::adapters::sqlite::DbOptions;
    use crate::adapters::sqlite::aml::SqliteAmlStore;
    use crate::adapters::sqlite::journal::SqliteJournal;
    use crate::ports::retention_conformance::retention_store_conformance;

    fn fixture() -> (
        tempfile::TempDir,
        Arc<Database>,
        SqliteAmlStore,
        SqliteJournal,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.sqlite3"), &DbOptions::default()).unwrap();
        let db = Arc::new(db);
        let aml = SqliteAmlStore::new(Arc::clone(&db));
        let journal = SqliteJournal::new(Arc::clone(&db));
        (dir, db, aml, journal)
    }

    retention_store_conformance!(fixture());
}

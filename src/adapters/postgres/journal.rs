//! The compliance journal on PostgreSQL. `append` runs inside the caller's transaction, so an
//! entry commits or rolls back with the change it records; the journal lock keeps the hash
//! chain one line when several instances append at once.

use std::sync::Arc;

use postgres::{GenericClient, Row};

use super::locks::{self, JOURNAL};
use super::{PgConnection, PgDatabase, PgError, Session};
use crate::adapters::system::SystemClock;
use crate::domain::evidence::{Actor, JournalEntry, JournalKind, NewJournalEntry};
use crate::domain::primitives::{EddsaPrivateKey, Timestamp};
use crate::ports::StoreError;
use crate::ports::clock::Clock;
use crate::ports::journal::{Journal, JournalQuery, checkpoint_after};

const COLUMNS: &str = "serial, at_us, kind, actor, h_payto, details, prev, hash";

/// Appends `entry` after the newest entry; to be called inside a write transaction.
pub fn append<C: GenericClient>(
    session: &mut Session<'_, C>,
    entry: &NewJournalEntry,
) -> Result<u64, PgError> {
    locks::transaction_lock(session, JOURNAL)?;
    append_locked(session, SystemClock.now(), entry)
}

fn append_locked<C: GenericClient>(
    session: &mut Session<'_, C>,
    at: Timestamp,
    entry: &NewJournalEntry,
) -> Result<u64, PgError> {
    let (serial, prev) = match newest(session)? {
        Some((serial, _, hash)) => (serial + 1, hash),
        None => (1, [0u8; 64]),
    };
    let stored = JournalEntry::chained(prev, serial, at, entry);
    session.execute(
        "INSERT INTO compliance_journal (serial, at_us, kind, actor, h_payto, details, prev, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &to_sql(stored.serial)?,
            &to_sql(stored.at_us)?,
            &stored.kind,
            &stored.actor,
            &stored.h_payto.as_ref().map(|h| &h[..]),
            &stored.details,
            &&stored.prev[..],
            &&stored.hash[..],
        ],
    )?;
    Ok(serial)
}

fn to_sql(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Internal("journal value beyond i64".into()))
}

fn corrupt() -> StoreError {
    StoreError::Internal("malformed compliance journal row".into())
}

/// The newest entry's serial, kind and hash.
fn newest<C: GenericClient>(
    session: &mut Session<'_, C>,
) -> Result<Option<(u64, String, [u8; 64])>, PgError> {
    let Some(row) = session.query_opt(
        "SELECT serial, kind, hash FROM compliance_journal ORDER BY serial DESC LIMIT 1",
        &[],
    )?
    else {
        return Ok(None);
    };
    let serial = u64::try_from(row.try_get::<_, i64>(0)?).map_err(|_| corrupt())?;
    let hash = <[u8; 64]>::try_from(row.try_get::<_, &[u8]>(2)?).map_err(|_| corrupt())?;
    Ok(Some((serial, row.try_get(1)?, hash)))
}

/// Reads a row as stored; a tampered row still loads (for `verify` to report) as long as its
/// columns have their types.
fn entry_row(row: &Row) -> Result<JournalEntry, postgres::Error> {
    fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        let n = bytes.len().min(N);
        out[..n].copy_from_slice(&bytes[..n]);
        out
    }
    let h_payto: Option<&[u8]> = row.try_get(4)?;
    Ok(JournalEntry {
        serial: u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
        at_us: u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0),
        kind: row.try_get(2)?,
        actor: row.try_get(3)?,
        h_payto: h_payto.map(fixed::<32>),
        details: row.try_get(5)?,
        prev: fixed::<64>(row.try_get(6)?),
        hash: fixed::<64>(row.try_get(7)?),
    })
}

/// On a database without journal entries, appends `journal.started` with the schema version
/// and the number of rows each table held.
pub fn ensure_started(conn: &mut PgConnection, schema_version: usize) -> Result<(), StoreError> {
    conn.transaction(|s| -> Result<(), PgError> {
        locks::transaction_lock(s, JOURNAL)?;
        if newest(s)?.is_some() {
            return Ok(());
        }
        let mut counts = serde_json::Map::new();
        for table in super::tables(s)? {
            if table != "compliance_journal" {
                let count = super::row_count(s, &table)?;
                counts.insert(table, count.into());
            }
        }
        let entry = NewJournalEntry::new(
            JournalKind::JournalStarted,
            Actor::system(),
            None,
            &serde_json::json!({"schema_version": schema_version, "existing_rows": counts}),
        );
        append_locked(s, SystemClock.now(), &entry)?;
        Ok(())
    })
    .map_err(StoreError::from)
}

/// The journal of a PostgreSQL database.
pub struct PgJournal {
    db: Arc<PgDatabase>,
}

impl PgJournal {
    pub fn new(db: Arc<PgDatabase>) -> PgJournal {
        PgJournal { db }
    }
}

impl Journal for PgJournal {
    fn append(&self, entry: &NewJournalEntry) -> Result<u64, StoreError> {
        self.db.write(|s| append(s, entry))
    }

    fn entries(&self, query: &JournalQuery) -> Result<Vec<JournalEntry>, StoreError> {
        let h_payto = query.h_payto.map(|h| h.0.to_vec());
        let since = query.since.map(|t| to_sql(t.as_micros())).transpose()?;
        let before = query.before_serial.map(to_sql).transpose()?;
        let limit = to_sql(query.limit.min(i64::MAX as u64))?;
        self.db.read(|s| {
            let sql = format!(
                "SELECT {COLUMNS} FROM compliance_journal
                 WHERE ($1::bytea IS NULL OR h_payto = $1)
                   AND ($2::text IS NULL OR actor = $2)
                   AND ($3::text IS NULL OR kind = $3)
                   AND ($4::bigint IS NULL OR at_us >= $4)
                   AND ($5::bigint IS NULL OR serial < $5)
                 ORDER BY serial DESC LIMIT $6"
            );
            let rows = s.query(
                &sql,
                &[&h_payto, &query.actor, &query.kind, &since, &before, &limit],
            )?;
            Ok(rows.iter().map(entry_row).collect::<Result<_, _>>()?)
        })
    }

    fn scan(
        &self,
        from: u64,
        visit: &mut dyn FnMut(JournalEntry) -> bool,
    ) -> Result<(), StoreError> {
        /// Rows fetched per round trip; the journal may hold millions.
        const PAGE: i64 = 10_000;
        let mut next = to_sql(from)?;
        loop {
            let rows = self.db.read(|s| {
                let sql = format!(
                    "SELECT {COLUMNS} FROM compliance_journal WHERE serial >= $1
                     ORDER BY serial LIMIT $2"
                );
                Ok(s.query(&sql, &[&next, &PAGE])?)
            })?;
            for row in &rows {
                let entry = entry_row(row)?;
                next = to_sql(entry.serial)? + 1;
                if !visit(entry) {
                    return Ok(());
                }
            }
            if (rows.len() as i64) < PAGE {
                return Ok(());
            }
        }
    }

    fn checkpoint(&self, key: &EddsaPrivateKey) -> Result<Option<u64>, StoreError> {
        self.db.write(|s| {
            locks::transaction_lock(s, JOURNAL)?;
            let last = newest(s)?;
            let at = SystemClock.now();
            let Some(entry) = checkpoint_after(
                last.as_ref()
                    .map(|(serial, kind, hash)| (*serial, kind.as_str(), *hash)),
                key,
                at,
            ) else {
                return Ok(None);
            };
            append_locked(s, at, &entry).map(Some)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::postgres::testing;
    use crate::domain::evidence::ChainVerifier;

    #[test]
    fn a_new_database_starts_its_journal_once_and_appends_chain() {
        let Some((_schema, db)) = testing::database() else {
            return;
        };
        let journal = PgJournal::new(db);
        let all = journal
            .entries(&JournalQuery {
                limit: 10,
                ..JournalQuery::default()
            })
            .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].kind, "journal.started");
        let key = EddsaPrivateKey::from_seed([3; 32]);
        journal
            .append(&NewJournalEntry::new(
                JournalKind::RetentionHold,
                Actor::operator(),
                None,
                &serde_json::json!({"hold": true}),
            ))
            .unwrap();
        assert_eq!(journal.checkpoint(&key).unwrap(), Some(3));
        assert_eq!(journal.checkpoint(&key).unwrap(), None);
        let public = key.public_key();
        let mut verifier = ChainVerifier::from_start(&public);
        let mut failure = None;
        journal
            .scan(1, &mut |e| {
                failure = verifier.push(&e).err();
                failure.is_none()
            })
            .unwrap();
        assert_eq!(failure, None);
        assert_eq!(verifier.finish().entries, 3);
    }

    #[test]
    fn concurrent_appends_keep_one_chain() {
        let Some((_schema, db)) = testing::database() else {
            return;
        };
        let journal = Arc::new(PgJournal::new(db));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let journal = Arc::clone(&journal);
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        journal
                            .append(&NewJournalEntry::new(
                                JournalKind::RetentionHold,
                                Actor::operator(),
                                None,
                                &serde_json::json!({}),
                            ))
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let key = EddsaPrivateKey::from_seed([4; 32]);
        let public = key.public_key();
        let mut verifier = ChainVerifier::from_start(&public);
        let mut failure = None;
        journal
            .scan(1, &mut |e| {
                failure = verifier.push(&e).err();
                failure.is_none()
            })
            .unwrap();
        assert_eq!(failure, None);
        assert_eq!(verifier.finish().entries, 81);
    }

    #[test]
    fn the_table_refuses_updates_and_deletes() {
        let Some((_schema, db)) = testing::database() else {
            return;
        };
        let update = db.write(|s| Ok(s.execute("UPDATE compliance_journal SET actor = 'x'", &[])?));
        assert!(update.unwrap_err().to_string().contains("append-only"));
        let delete = db.write(|s| Ok(s.execute("DELETE FROM compliance_journal", &[])?));
        assert!(delete.unwrap_err().to_string().contains("append-only"));
    }
}

//! The compliance journal table. `append` runs inside the caller's write job, so an entry
//! commits or rolls back together with the change it records.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Database;
use crate::adapters::system::SystemClock;
use crate::domain::evidence::{Actor, JournalEntry, JournalKind, NewJournalEntry};
use crate::domain::primitives::{EddsaPrivateKey, Timestamp};
use crate::ports::StoreError;
use crate::ports::clock::Clock;
use crate::ports::journal::{Journal, JournalQuery, checkpoint_after};

const COLUMNS: &str = "serial, at_us, kind, actor, h_payto, details, prev, hash";

/// Appends `entry` as the next serial after the newest entry; to be called inside a write job.
pub(crate) fn append(conn: &Connection, entry: &NewJournalEntry) -> Result<u64, StoreError> {
    let at = SystemClock.now();
    append_at(conn, at, entry)
}

fn append_at(conn: &Connection, at: Timestamp, entry: &NewJournalEntry) -> Result<u64, StoreError> {
    let (serial, prev) = match newest(conn)? {
        Some((serial, _, hash)) => (serial + 1, hash),
        None => (1, [0u8; 64]),
    };
    let stored = JournalEntry::chained(prev, serial, at, entry);
    conn.prepare_cached(
        "INSERT INTO compliance_journal (serial, at_us, kind, actor, h_payto, details, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        to_sql(stored.serial)?,
        to_sql(stored.at_us)?,
        stored.kind,
        stored.actor,
        stored.h_payto.as_ref().map(|h| &h[..]),
        stored.details,
        &stored.prev[..],
        &stored.hash[..],
    ])?;
    Ok(serial)
}

fn to_sql(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Internal("journal value beyond i64".into()))
}

/// The newest entry's serial, kind and hash.
fn newest(conn: &Connection) -> Result<Option<(u64, String, [u8; 64])>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT serial, kind, hash FROM compliance_journal ORDER BY serial DESC LIMIT 1",
        )?
        .query_row([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()?;
    row.map(|(serial, kind, hash)| {
        let serial = u64::try_from(serial).map_err(|_| corrupt())?;
        let hash = <[u8; 64]>::try_from(hash.as_slice()).map_err(|_| corrupt())?;
        Ok((serial, kind, hash))
    })
    .transpose()
}

fn corrupt() -> StoreError {
    StoreError::Internal("malformed compliance journal row".into())
}

/// Reads a row as stored; a tampered row still loads (for `verify` to report) as long as
/// its columns have their types.
fn entry_row(row: &Row<'_>) -> rusqlite::Result<JournalEntry> {
    fn fixed<const N: usize>(bytes: Vec<u8>) -> [u8; N] {
        let mut out = [0u8; N];
        let n = bytes.len().min(N);
        out[..n].copy_from_slice(&bytes[..n]);
        out
    }
    let h_payto: Option<Vec<u8>> = row.get(4)?;
    Ok(JournalEntry {
        serial: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
        at_us: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
        kind: row.get(2)?,
        actor: row.get(3)?,
        h_payto: h_payto.map(fixed::<32>),
        details: row.get(5)?,
        prev: fixed::<64>(row.get(6)?),
        hash: fixed::<64>(row.get(7)?),
    })
}

/// On a database without journal entries (new, or just upgraded), appends `journal.started`
/// with the schema version and the number of rows each table held.
pub(crate) fn ensure_started(conn: &Connection, schema_version: usize) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let outcome = start_if_empty(conn, schema_version);
    let end = if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    conn.execute_batch(end)?;
    outcome
}

fn start_if_empty(conn: &Connection, schema_version: usize) -> Result<(), StoreError> {
    if newest(conn)?.is_some() {
        return Ok(());
    }
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT LIKE 'sqlite_%' AND name <> 'compliance_journal' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut counts = serde_json::Map::new();
    for table in tables {
        // Table names come from the schema itself, quoted as identifiers.
        let sql = format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\""));
        let count: i64 = conn.query_row(&sql, [], |r| r.get(0))?;
        counts.insert(table, count.into());
    }
    append(
        conn,
        &NewJournalEntry::new(
            JournalKind::JournalStarted,
            Actor::system(),
            None,
            &serde_json::json!({"schema_version": schema_version, "existing_rows": counts}),
        ),
    )?;
    Ok(())
}

/// The journal of the talerbox database.
pub struct SqliteJournal {
    db: Arc<Database>,
}

impl SqliteJournal {
    pub fn new(db: Arc<Database>) -> SqliteJournal {
        SqliteJournal { db }
    }
}

impl Journal for SqliteJournal {
    fn append(&self, entry: &NewJournalEntry) -> Result<u64, StoreError> {
        let entry = entry.clone();
        self.db.write(move |conn| append(conn, &entry))
    }

    fn entries(&self, query: &JournalQuery) -> Result<Vec<JournalEntry>, StoreError> {
        let query = query.clone();
        self.db.read(move |conn| {
            let mut sql = format!("SELECT {COLUMNS} FROM compliance_journal WHERE 1 = 1");
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
            if let Some(h) = query.h_payto {
                sql.push_str(" AND h_payto = ?");
                args.push(Box::new(h.0.to_vec()));
            }
            if let Some(actor) = &query.actor {
                sql.push_str(" AND actor = ?");
                args.push(Box::new(actor.clone()));
            }
            if let Some(kind) = &query.kind {
                sql.push_str(" AND kind = ?");
                args.push(Box::new(kind.clone()));
            }
            if let Some(since) = query.since {
                sql.push_str(" AND at_us >= ?");
                args.push(Box::new(to_sql(since.as_micros())?));
            }
            if let Some(before) = query.before_serial {
                sql.push_str(" AND serial < ?");
                args.push(Box::new(to_sql(before)?));
            }
            sql.push_str(" ORDER BY serial DESC LIMIT ?");
            args.push(Box::new(to_sql(query.limit.min(i64::MAX as u64))?));
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(
                rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())),
                entry_row,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn scan(
        &self,
        from: u64,
        visit: &mut dyn FnMut(JournalEntry) -> bool,
    ) -> Result<(), StoreError> {
        self.db.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM compliance_journal WHERE serial >= ?1 ORDER BY serial"
            ))?;
            let mut rows = stmt.query([to_sql(from)?])?;
            while let Some(row) = rows.next()? {
                if !visit(entry_row(row)?) {
                    break;
                }
            }
            Ok(())
        })
    }

    fn checkpoint(&self, key: &EddsaPrivateKey) -> Result<Option<u64>, StoreError> {
        let key = key.clone();
        self.db.write(move |conn| {
            let last = newest(conn)?;
            let at = SystemClock.now();
            let Some(entry) = checkpoint_after(
                last.as_ref().map(|(s, k, h)| (*s, k.as_str(), *h)),
                &key,
                at,
            ) else {
                return Ok(None);
            };
            append_at(conn, at, &entry).map(Some)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::DbOptions;
    use crate::domain::evidence::ChainVerifier;

    fn open() -> (tempfile::TempDir, Arc<Database>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("j.sqlite3"), &DbOptions::default()).unwrap();
        (dir, Arc::new(db))
    }

    #[test]
    fn a_new_database_starts_its_journal_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite3");
        drop(Database::open(&path, &DbOptions::default()).unwrap());
        let db = Arc::new(Database::open(&path, &DbOptions::default()).unwrap());
        let all = SqliteJournal::new(db)
            .entries(&JournalQuery {
                limit: 10,
                ..JournalQuery::default()
            })
            .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].kind, "journal.started");
        assert!(all[0].details.contains("\"schema_version\":8"));
    }

    #[test]
    fn appends_chain_and_checkpoints_verify() {
        let (_dir, db) = open();
        let journal = SqliteJournal::new(db);
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
        let summary = verifier.finish();
        assert_eq!((summary.entries, summary.last_checkpoint), (3, Some(3)));
    }

    #[test]
    fn a_change_whose_journal_entry_fails_leaves_no_change() {
        use crate::adapters::sqlite::SqliteAmlStore;
        use crate::domain::aml::OperatorAction;
        use crate::ports::aml::OfficerStore;
        let (dir, db) = open();
        let store = SqliteAmlStore::new(Arc::clone(&db));
        let officer = EddsaPrivateKey::from_seed([5; 32]).public_key();
        let add = OperatorAction::Enable {
            name: "Ann".into(),
            read_only: false,
        };
        // The fault: every journal insert fails, as a full disk or a broken table would.
        let side = Connection::open(dir.path().join("j.sqlite3")).unwrap();
        side.execute_batch(
            "CREATE TRIGGER fail_journal BEFORE INSERT ON compliance_journal
             BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .unwrap();
        let now = Timestamp::from_seconds(1_000).unwrap();
        assert!(store.operator_update(&officer, &add, now).is_err());
        assert!(store.list_officers().unwrap().is_empty());
        side.execute_batch("DROP TRIGGER fail_journal").unwrap();
        store.operator_update(&officer, &add, now).unwrap().unwrap();
        assert_eq!(store.list_officers().unwrap().len(), 1);
        let newest = SqliteJournal::new(db)
            .entries(&JournalQuery {
                limit: 1,
                ..JournalQuery::default()
            })
            .unwrap();
        assert_eq!(newest[0].kind, "aml.officer_changed");
        assert_eq!(newest[0].actor, "operator");
    }

    #[test]
    fn the_table_refuses_updates_deletes_and_unknown_kinds() {
        let (dir, _db) = open();
        let conn = Connection::open(dir.path().join("j.sqlite3")).unwrap();
        let update = conn.execute("UPDATE compliance_journal SET actor = 'x'", []);
        assert!(update.unwrap_err().to_string().contains("append-only"));
        let delete = conn.execute("DELETE FROM compliance_journal", []);
        assert!(delete.unwrap_err().to_string().contains("append-only"));
        let unknown = conn.execute(
            "INSERT INTO compliance_journal (at_us, kind, actor, details, prev, hash)
             VALUES (0, 'made.up', 'system', '{}', zeroblob(64), zeroblob(64))",
            [],
        );
        assert!(unknown.is_err());
    }
}

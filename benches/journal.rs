//! The compliance journal on this machine: how long `talerbox audit verify` takes for a
//! journal of 1,000,000 entries (target < 10 s), with a signed checkpoint every 10,000.
//!
//! The journal is written straight into a fresh database (appending through the server
//! would only measure the writer); the verification is the command's own: a scan of the
//! table through the journal port, each entry pushed through the chain verifier.
//!
//! Run: `cargo bench --bench journal` (`-- N` for another number of entries).

use std::sync::Arc;
use std::time::Instant;

use talerbox::adapters::sqlite::{Database, DbOptions, SqliteJournal};
use talerbox::domain::evidence::{
    Actor, ChainVerifier, JournalEntry, JournalKind, NewJournalEntry, checkpoint_details,
    sign_checkpoint,
};
use talerbox::domain::primitives::{EddsaPrivateKey, NormalizedPaytoHash, Timestamp};
use talerbox::ports::journal::{Journal, JournalQuery};

const RUNS: usize = 3;
const CHECKPOINT_EVERY: u64 = 10_000;

mod support;

use support::{Error, median};

fn main() -> Result<(), Error> {
    let entries: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal.sqlite3");
    let key = EddsaPrivateKey::from_seed([42; 32]);
    let started = Instant::now();
    fill(&path, &key, entries)?;
    println!(
        "journal benchmark: {entries} entries written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let db = Arc::new(Database::open(&path, &DbOptions::default())?);
    let journal = SqliteJournal::new(db);
    let public = key.public_key();
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut verifier = ChainVerifier::from_start(&public);
        let mut failure = None;
        journal.scan(1, &mut |entry| {
            failure = verifier.push(&entry).err();
            failure.is_none()
        })?;
        if let Some(failure) = failure {
            return Err(format!("the generated journal does not verify: {failure}").into());
        }
        let summary = verifier.finish();
        if summary.entries != entries {
            return Err(format!("verified {} entries", summary.entries).into());
        }
        times.push(started.elapsed().as_secs_f64());
    }
    let runs: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
    let runs = runs.join(", ");
    let (time, _) = median(times);
    println!("audit verify, {entries} entries: {time:.2} s (runs: {runs})");
    Ok(())
}

/// Writes a valid journal of `entries` entries after the `journal.started` one the database
/// appends itself: attribute reads of 1,000 accounts, a checkpoint every 10,000 entries.
fn fill(path: &std::path::Path, key: &EddsaPrivateKey, entries: u64) -> Result<(), Error> {
    let first = {
        let db = Arc::new(Database::open(path, &DbOptions::default())?);
        SqliteJournal::new(db).entries(&JournalQuery {
            limit: 1,
            ..JournalQuery::default()
        })?
    };
    let first = first.first().ok_or("no journal.started entry")?;
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO compliance_journal (serial, at_us, kind, actor, h_payto, details, prev, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let officer = EddsaPrivateKey::from_seed([1; 32]).public_key();
        let mut prev = first.hash;
        for serial in 2..=entries {
            let at = Timestamp::from_micros(first.at_us + serial * 1_000_000);
            let new = if serial % CHECKPOINT_EVERY == 0 {
                let signature = sign_checkpoint(key, serial - 1, at, &prev);
                NewJournalEntry::new(
                    JournalKind::JournalCheckpoint,
                    Actor::system(),
                    None,
                    &checkpoint_details(serial - 1, &signature),
                )
            } else {
                let mut h = [0u8; 32];
                h[..8].copy_from_slice(&(serial % 1000).to_be_bytes());
                NewJournalEntry::new(
                    JournalKind::AmlAttributesRead,
                    Actor::officer(&officer),
                    Some(NormalizedPaytoHash(h)),
                    &serde_json::json!({"format": "json", "rows": [serial, serial + 19],
                        "count": 20, "body_sha512": "0".repeat(103)}),
                )
            };
            let entry = JournalEntry::chained(prev, serial, at, &new);
            insert.execute(rusqlite::params![
                entry.serial as i64,
                entry.at_us as i64,
                entry.kind,
                entry.actor,
                entry.h_payto.as_ref().map(|h| &h[..]),
                entry.details,
                &entry.prev[..],
                &entry.hash[..],
            ])?;
            prev = entry.hash;
        }
    }
    tx.commit()?;
    Ok(())
}

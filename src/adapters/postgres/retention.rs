//! Retention purges and legal holds on PostgreSQL (compliance-evidence.md §4), each change
//! journaled in its transaction, as on SQLite.
//!
//! Several instances may purge at once: the erasing `UPDATE` only takes rows not yet purged
//! (re-checked after waiting for a concurrent purge's row locks), so each row is erased and
//! journaled once. A purge holds `retention_holds` in SHARE mode, so a hold committed before
//! the purge's rows are chosen protects them and one set meanwhile waits for the purge.

use std::collections::BTreeMap;

use postgres::GenericClient;

use super::locks;
use super::{PgDatabase, PgError, Session, journal};
use crate::adapters::convert::{bytes, micros_to_sql};
use crate::domain::evidence::retention::purge_cutoff;
use crate::domain::evidence::{Actor, events};
use crate::domain::primitives::{NormalizedPaytoHash, RelativeTime, Timestamp};
use crate::ports::StoreError;
use crate::ports::retention::{Hold, Purged, RetentionStore};

/// Rows due at `$2` (now) with collection times before `$1` (the cutoff).
const DUE: &str = "a.purged_at IS NULL AND a.collection_time < $1
       AND a.expiration_time IS NOT NULL AND a.expiration_time < $2
       AND NOT EXISTS (SELECT 1 FROM retention_holds h WHERE h.h_payto = a.h_payto)";

/// Due row serials by account, each account's in ascending order.
type DueRows = BTreeMap<[u8; 32], Vec<u64>>;

fn collect(rows: &[postgres::Row]) -> Result<DueRows, PgError> {
    let mut due: DueRows = BTreeMap::new();
    for row in rows {
        let serial = u64::try_from(row.try_get::<_, i64>(0)?)
            .map_err(|_| StoreError::Internal("malformed serial".into()))?;
        let h_payto = bytes::<32>(row.try_get(1)?, "h_payto")?;
        due.entry(h_payto).or_default().push(serial);
    }
    for serials in due.values_mut() {
        serials.sort_unstable();
    }
    Ok(due)
}

fn count(due: &DueRows) -> Purged {
    Purged {
        rows: due.values().map(|rows| rows.len() as u64).sum(),
        accounts: due.len() as u64,
    }
}

fn due_rows<C: GenericClient>(
    s: &mut Session<'_, C>,
    cutoff: i64,
    now: i64,
) -> Result<DueRows, PgError> {
    let rows = s.query(
        &format!("SELECT a.serial, a.h_payto FROM kyc_attributes a WHERE {DUE}"),
        &[&cutoff, &now],
    )?;
    collect(&rows)
}

fn erase_due<C: GenericClient>(
    s: &mut Session<'_, C>,
    cutoff: i64,
    now: i64,
) -> Result<DueRows, PgError> {
    s.batch("LOCK TABLE retention_holds IN SHARE MODE")?;
    let rows = s.query(
        &format!(
            "UPDATE kyc_attributes a SET encrypted_attributes = ''::bytea, purged_at = $2
             WHERE {DUE} RETURNING a.serial, a.h_payto"
        ),
        &[&cutoff, &now],
    )?;
    collect(&rows)
}

impl RetentionStore for PgDatabase {
    fn purge_attributes(
        &self,
        now: Timestamp,
        retention: RelativeTime,
        actor: Actor,
        dry_run: bool,
    ) -> Result<Purged, StoreError> {
        let Some(cutoff) = purge_cutoff(now, retention) else {
            return Ok(Purged::default());
        };
        let (cutoff, now) = (micros_to_sql(cutoff)?, micros_to_sql(now)?);
        if dry_run {
            return self.read(|s| Ok(count(&due_rows(s, cutoff, now)?)));
        }
        self.write(|s| {
            let due = erase_due(s, cutoff, now)?;
            for (h_payto, rows) in &due {
                let entry = events::purged(NormalizedPaytoHash(*h_payto), actor.clone(), rows);
                journal::append(s, &entry)?;
            }
            Ok(count(&due))
        })
    }

    fn set_hold(
        &self,
        h_payto: NormalizedPaytoHash,
        reason: Option<String>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let since = micros_to_sql(now)?;
        self.write(|s| {
            // Two changes of one account's hold see each other's outcome (L2).
            locks::transaction_lock(s, locks::account_lock(&h_payto))?;
            let existing: Option<String> = s
                .query_opt(
                    "SELECT reason FROM retention_holds WHERE h_payto = $1",
                    &[&&h_payto.0[..]],
                )?
                .map(|row| row.try_get(0))
                .transpose()?;
            let changed = match (&reason, &existing) {
                (Some(reason), _) => {
                    s.execute(
                        "INSERT INTO retention_holds (h_payto, reason, since) VALUES ($1, $2, $3)
                         ON CONFLICT (h_payto) DO UPDATE SET reason = EXCLUDED.reason",
                        &[&&h_payto.0[..], reason, &since],
                    )?;
                    existing.as_ref() != Some(reason)
                }
                (None, Some(_)) => {
                    s.execute(
                        "DELETE FROM retention_holds WHERE h_payto = $1",
                        &[&&h_payto.0[..]],
                    )?;
                    true
                }
                (None, None) => false,
            };
            if changed {
                let text = reason.as_deref().or(existing.as_deref()).unwrap_or("");
                journal::append(s, &events::hold(h_payto, reason.is_some(), text))?;
            }
            Ok(changed)
        })
    }

    fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        self.read(|s| {
            let rows = s.query(
                "SELECT h_payto, reason, since FROM retention_holds ORDER BY since, h_payto",
                &[],
            )?;
            rows.iter()
                .map(|row| {
                    Ok(Hold {
                        h_payto: NormalizedPaytoHash(bytes(row.try_get(0)?, "h_payto")?),
                        reason: row.try_get(1)?,
                        since: Timestamp::from_micros(
                            u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0),
                        ),
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod conformance {
    use std::sync::Arc;

    use crate::adapters::postgres::aml::PgAmlStore;
    use crate::adapters::postgres::journal::PgJournal;
    use crate::adapters::postgres::testing;
    use crate::ports::retention_conformance::retention_store_conformance;

    retention_store_conformance!(optional: testing::database().map(|(schema, db)| {
        let aml = PgAmlStore::new(Arc::clone(&db));
        let journal = PgJournal::new(Arc::clone(&db));
        (schema, db, aml, journal)
    }));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::adapters::postgres::aml::PgAmlStore;
    use crate::adapters::postgres::testing;
    use crate::domain::aml::{AttributeSource, NewAttributeRecord, Page};
    use crate::ports::aml::AttributeStore;

    /// A hold being set when a purge starts: the purge waits for it and spares the account.
    #[test]
    fn a_purge_waits_for_a_hold_in_flight_and_spares_its_account() {
        let Some((schema, db)) = testing::database() else {
            return;
        };
        let aml = PgAmlStore::new(Arc::clone(&db));
        let h_payto = NormalizedPaytoHash([1; 32]);
        aml.append_attributes(&NewAttributeRecord {
            h_payto,
            collection_time: Timestamp::from_seconds(1_000).unwrap(),
            expiration_time: Timestamp::from_seconds(2_000).unwrap(),
            source: AttributeSource::Customer { provider: None },
            form_id: None,
            process_serial: None,
            encrypted: vec![1, 2, 3],
        })
        .unwrap();
        let mut holder = schema.connect();
        holder
            .session()
            .batch(
                "BEGIN; INSERT INTO retention_holds (h_payto, reason, since) \
                 VALUES (decode(repeat('01', 32), 'hex'), 'court order', 0)",
            )
            .unwrap();
        let purge = std::thread::spawn({
            let db = Arc::clone(&db);
            move || {
                db.purge_attributes(
                    Timestamp::from_seconds(10_000).unwrap(),
                    RelativeTime::from_seconds(1_000),
                    Actor::system(),
                    false,
                )
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(!purge.is_finished(), "the purge did not wait for the hold");
        holder.session().batch("COMMIT").unwrap();
        assert_eq!(purge.join().unwrap().unwrap(), Purged::default());
        let rows = aml.attributes(&h_payto, &Page::new(10, 0)).unwrap();
        assert_eq!(rows[0].encrypted, [1, 2, 3]);
    }
}

//! The AML stores on PostgreSQL (schema: `migrations/0004_aml.sql`): the same outcomes and
//! journal entries as the SQLite stores, with locks where those rely on their single writer.
//!
//! - Officers (L3): a master-signed change is one `INSERT … ON CONFLICT … WHERE older`, so two
//!   changes racing for one key end with the newest; an operator action reads the row
//!   `FOR UPDATE` before it computes its date.
//! - Attribute rows and decisions take the account's lock (L2); decisions also take the
//!   decisions lock (L4) so that serial order is commit order for officers paging by serial.
//!
//! Lock order, shared with the KYC store: account, then decisions, then the journal.

use std::sync::Arc;

use postgres::{GenericClient, Row};

use super::journal;
use super::locks::{self, DECISIONS};
use super::{PgDatabase, PgError, Session};
use crate::adapters::convert::{
    bytes, corrupt, expiry_from_sql, expiry_to_sql, id_from_sql, id_to_sql, micros_from_sql,
    micros_to_sql,
};
use crate::domain::aml::{
    AttributeMap, AttributeRecord, AttributeSource, DecisionFilter, DecisionRecord,
    NewAttributeRecord, NewOutcome, Officer, OfficerChange, OperatorAction, Page,
};
use crate::domain::evidence::{Actor, events};
use crate::domain::primitives::{EddsaPublicKey, EddsaSignature, NormalizedPaytoHash, Timestamp};
use crate::ports::StoreError;
use crate::ports::aml::{
    AttributeStore, DecisionStore, OfficerStore, OfficerUpsert, apply_operator_action,
};

/// Officers, attribute rows and decisions in the shared database.
pub struct PgAmlStore {
    db: Arc<PgDatabase>,
}

impl PgAmlStore {
    pub fn new(db: Arc<PgDatabase>) -> PgAmlStore {
        PgAmlStore { db }
    }
}

const OFFICER_COLUMNS: &str = "officer_pub, name, is_active, read_only, last_change, master_sig";

/// Inserts an officer, or overwrites the stored one only if it is older; answers a row when
/// it wrote. A skipped conflict still locks the row until the end of the transaction.
const UPSERT_IF_NEWER: &str = "INSERT INTO aml_officers (officer_pub, name, is_active, \
     read_only, last_change, master_sig) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (officer_pub) DO UPDATE SET name = EXCLUDED.name, \
     is_active = EXCLUDED.is_active, read_only = EXCLUDED.read_only, \
     last_change = EXCLUDED.last_change, master_sig = EXCLUDED.master_sig \
     WHERE aml_officers.last_change < EXCLUDED.last_change RETURNING last_change";

impl OfficerStore for PgAmlStore {
    fn officer(&self, officer_pub: &EddsaPublicKey) -> Result<Option<Officer>, StoreError> {
        self.db.read(|s| officer_by_key(s, officer_pub, ""))
    }

    fn upsert_officer(&self, change: &OfficerChange) -> Result<OfficerUpsert, StoreError> {
        let officer = Officer {
            officer_pub: change.officer_pub,
            name: change.name.clone(),
            is_active: change.is_active,
            read_only: change.read_only,
            last_change: change.change_date,
            master_sig: change.master_sig,
        };
        self.db.write(|s| {
            if write_officer(s, &officer, UPSERT_IF_NEWER)? {
                let actor = if officer.master_sig.is_some() {
                    Actor::master()
                } else {
                    Actor::operator()
                };
                journal::append(
                    s,
                    &events::officer_changed(
                        actor,
                        &officer.officer_pub,
                        officer.is_active,
                        officer.read_only,
                    ),
                )?;
                return Ok(OfficerUpsert::Stored);
            }
            // Not written: a row with this or a later date is stored (and now locked).
            let stored = officer_by_key(s, &officer.officer_pub, "")?
                .ok_or_else(|| corrupt("aml_officers", "conflicting row vanished"))?;
            Ok(if stored.last_change == officer.last_change {
                OfficerUpsert::Replayed
            } else {
                OfficerUpsert::MoreRecentPresent
            })
        })
    }

    fn operator_update(
        &self,
        officer_pub: &EddsaPublicKey,
        action: &OperatorAction,
        now: Timestamp,
    ) -> Result<Option<Officer>, StoreError> {
        self.db.write(|s| {
            // A first insert that lost a race finds the row, locked, on the second read.
            let mut written = None;
            for _ in 0..2 {
                let existing = officer_by_key(s, officer_pub, " FOR UPDATE")?;
                let Some(updated) =
                    apply_operator_action(existing.as_ref(), officer_pub, action, now)
                else {
                    return Ok(None);
                };
                let sql = if existing.is_some() {
                    OVERWRITE
                } else {
                    INSERT_IF_ABSENT
                };
                if write_officer(s, &updated, sql)? {
                    written = Some(updated);
                    break;
                }
            }
            let updated =
                written.ok_or_else(|| corrupt("aml_officers", "officer row came and went"))?;
            journal::append(
                s,
                &events::officer_changed(
                    Actor::operator(),
                    &updated.officer_pub,
                    updated.is_active,
                    updated.read_only,
                ),
            )?;
            Ok(Some(updated))
        })
    }

    fn list_officers(&self) -> Result<Vec<Officer>, StoreError> {
        self.db.read(|s| {
            let rows = s.query(
                &format!("SELECT {OFFICER_COLUMNS} FROM aml_officers ORDER BY officer_pub"),
                &[],
            )?;
            rows.iter().map(officer_from_row).collect()
        })
    }
}

const OVERWRITE: &str = "UPDATE aml_officers SET name = $2, is_active = $3, read_only = $4, \
     last_change = $5, master_sig = $6 WHERE officer_pub = $1 RETURNING last_change";

const INSERT_IF_ABSENT: &str = "INSERT INTO aml_officers (officer_pub, name, is_active, \
     read_only, last_change, master_sig) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (officer_pub) DO NOTHING RETURNING last_change";

/// The officer row, read with `lock` (`""` or `" FOR UPDATE"`).
fn officer_by_key<C: GenericClient>(
    s: &mut Session<'_, C>,
    officer_pub: &EddsaPublicKey,
    lock: &str,
) -> Result<Option<Officer>, PgError> {
    let sql = format!("SELECT {OFFICER_COLUMNS} FROM aml_officers WHERE officer_pub = $1{lock}");
    let row = s.query_opt(&sql, &[&&officer_pub.0[..]])?;
    row.as_ref().map(officer_from_row).transpose()
}

/// Runs one of the officer writes (`$1`…`$6` in column order); true when it wrote a row.
fn write_officer<C: GenericClient>(
    s: &mut Session<'_, C>,
    officer: &Officer,
    sql: &str,
) -> Result<bool, PgError> {
    let written = s.query_opt(
        sql,
        &[
            &&officer.officer_pub.0[..],
            &officer.name,
            &officer.is_active,
            &officer.read_only,
            &micros_to_sql(officer.last_change)?,
            &officer.master_sig.as_ref().map(|sig| &sig.0[..]),
        ],
    )?;
    Ok(written.is_some())
}

fn officer_from_row(row: &Row) -> Result<Officer, PgError> {
    Ok(Officer {
        officer_pub: EddsaPublicKey(bytes(row.try_get(0)?, "officer_pub")?),
        name: row.try_get(1)?,
        is_active: row.try_get(2)?,
        read_only: row.try_get(3)?,
        last_change: micros_from_sql(row.try_get(4)?)?,
        master_sig: row
            .try_get::<_, Option<&[u8]>>(5)?
            .map(|sig| bytes(sig, "master_sig").map(EddsaSignature))
            .transpose()?,
    })
}

// ---- attributes ----

impl AttributeStore for PgAmlStore {
    fn append_attributes(&self, record: &NewAttributeRecord) -> Result<u64, StoreError> {
        let (by_officer, officer_pub, provider) = match &record.source {
            AttributeSource::Officer(key) => (true, Some(&key.0[..]), None),
            AttributeSource::Customer { provider } => (false, None, provider.as_deref()),
        };
        let process_serial = record
            .process_serial
            .map(|serial| id_to_sql(serial, "process serial"))
            .transpose()?;
        let collection_time = micros_to_sql(record.collection_time)?;
        let expiration_time = expiry_to_sql(record.expiration_time)?;
        let actor = match &record.source {
            AttributeSource::Officer(key) => Actor::officer(key),
            AttributeSource::Customer { provider } => match provider.as_deref() {
                Some("FORM") | None => Actor::form(record.form_id.as_deref().unwrap_or("")),
                Some(name) => Actor::provider(name),
            },
        };
        self.db.write(|s| {
            // Rows of one account are paged by serial: serial order is commit order (L2).
            locks::transaction_lock(s, locks::account_lock(&record.h_payto))?;
            let inserted = s.query_one(
                "INSERT INTO kyc_attributes (h_payto, process_serial, form_id, collection_time, \
                 expiration_time, encrypted_attributes, by_aml_officer, officer_pub, \
                 provider_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING serial",
                &[
                    &&record.h_payto.0[..],
                    &process_serial,
                    &record.form_id,
                    &collection_time,
                    &expiration_time,
                    &record.encrypted,
                    &by_officer,
                    &officer_pub,
                    &provider,
                ],
            )?;
            let row = id_from_sql(inserted.try_get(0)?)?;
            journal::append(
                s,
                &events::attributes_stored(
                    record.h_payto,
                    actor.clone(),
                    row,
                    record.expiration_time,
                ),
            )?;
            Ok(row)
        })
    }

    fn attributes(
        &self,
        h_payto: &NormalizedPaytoHash,
        page: &Page,
    ) -> Result<Vec<AttributeRecord>, StoreError> {
        if page.limit() == 0 {
            return Ok(Vec::new());
        }
        let (comparison, order) = direction(page);
        let sql = format!(
            "SELECT serial, collection_time, expiration_time, encrypted_attributes, \
             by_aml_officer, officer_pub, provider_name, form_id FROM kyc_attributes \
             WHERE h_payto = $1 AND serial {comparison} $2 ORDER BY serial {order} LIMIT $3"
        );
        let offset = id_to_sql(page.offset(), "offset")?;
        let count = page.limit().saturating_abs();
        self.db.read(|s| {
            let rows = s.query(&sql, &[&&h_payto.0[..], &offset, &count])?;
            rows.iter()
                .map(|row| attribute_from_row(row, *h_payto))
                .collect()
        })
    }
}

/// `> offset ASC` forwards, `< offset DESC` backwards (both strict).
fn direction(page: &Page) -> (&'static str, &'static str) {
    if page.is_forward() {
        (">", "ASC")
    } else {
        ("<", "DESC")
    }
}

fn attribute_from_row(row: &Row, h_payto: NormalizedPaytoHash) -> Result<AttributeRecord, PgError> {
    let serial: i64 = row.try_get(0)?;
    let source = match (
        row.try_get::<_, bool>(4)?,
        row.try_get::<_, Option<&[u8]>>(5)?,
    ) {
        (true, Some(key)) => AttributeSource::Officer(EddsaPublicKey(bytes(key, "officer_pub")?)),
        (false, None) => AttributeSource::Customer {
            provider: row.try_get(6)?,
        },
        _ => return Err(corrupt("attribute source", &serial.to_string()).into()),
    };
    Ok(AttributeRecord {
        rowid: id_from_sql(serial)?,
        h_payto,
        collection_time: micros_from_sql(row.try_get(1)?)?,
        expiration_time: expiry_from_sql(row.try_get(2)?)?,
        source,
        form_id: row.try_get(7)?,
        encrypted: row.try_get(3)?,
    })
}

// ---- decisions ----

impl DecisionStore for PgAmlStore {
    fn insert_outcome(&self, outcome: &NewOutcome) -> Result<u64, StoreError> {
        let row = OutcomeParams::new(outcome)?;
        self.db.write(|s| insert_outcome(s, outcome, &row))
    }

    fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<DecisionRecord>, StoreError> {
        if filter.page.limit() == 0 {
            return Ok(Vec::new());
        }
        let (comparison, order) = direction(&filter.page);
        let sql = format!(
            "SELECT o.serial, o.h_payto, o.decision_time, o.expiration_time, o.jproperties, \
             o.new_measure_name, o.to_investigate, o.is_active, o.jnew_rules, h.justification, \
             h.decider_pub, a.full_payto \
             FROM legitimization_outcomes o \
             LEFT JOIN aml_history h ON h.outcome_serial = o.serial \
             LEFT JOIN kyc_accounts a ON a.h_payto = o.h_payto \
             WHERE o.serial {comparison} $1 AND ($2::bytea IS NULL OR o.h_payto = $2) \
             AND ($3::boolean IS NULL OR o.is_active = $3) \
             AND ($4::boolean IS NULL OR o.to_investigate = $4) \
             ORDER BY o.serial {order} LIMIT $5"
        );
        let offset = id_to_sql(filter.page.offset(), "offset")?;
        let h_payto = filter.h_payto.map(|h| h.0.to_vec());
        let count = filter.page.limit().saturating_abs();
        self.db.read(|s| {
            let rows = s.query(
                &sql,
                &[
                    &offset,
                    &h_payto,
                    &filter.active,
                    &filter.investigation,
                    &count,
                ],
            )?;
            rows.iter().map(decision_from_row).collect()
        })
    }
}

/// An outcome's columns converted once, outside the (possibly retried) transaction.
struct OutcomeParams {
    decision_time: i64,
    expiration_time: Option<i64>,
    properties: Option<String>,
    rules: Option<String>,
}

impl OutcomeParams {
    fn new(outcome: &NewOutcome) -> Result<OutcomeParams, StoreError> {
        Ok(OutcomeParams {
            decision_time: micros_to_sql(outcome.decision_time)?,
            expiration_time: expiry_to_sql(outcome.expiration_time)?,
            properties: outcome
                .properties
                .as_ref()
                .map(|p| serde_json::Value::Object(p.clone()).to_string()),
            rules: outcome.new_rules.as_ref().map(|r| r.to_string()),
        })
    }
}

fn insert_outcome<C: GenericClient>(
    s: &mut Session<'_, C>,
    outcome: &NewOutcome,
    row: &OutcomeParams,
) -> Result<u64, PgError> {
    let h_payto = &outcome.h_payto.0[..];
    // L2: one active decision per account; L4: serials commit in order.
    locks::transaction_lock(s, locks::account_lock(&outcome.h_payto))?;
    locks::transaction_lock(s, DECISIONS)?;
    s.execute(
        "UPDATE legitimization_outcomes SET is_active = FALSE WHERE h_payto = $1 AND is_active",
        &[&h_payto],
    )?;
    let serial: i64 = s
        .query_one(
            "INSERT INTO legitimization_outcomes (h_payto, decision_time, expiration_time, \
             jproperties, new_measure_name, to_investigate, is_active, jnew_rules) \
             VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7) RETURNING serial",
            &[
                &h_payto,
                &row.decision_time,
                &row.expiration_time,
                &row.properties,
                &outcome.new_measure_name,
                &outcome.to_investigate,
                &row.rules,
            ],
        )?
        .try_get(0)?;
    if let Some(decider) = &outcome.decider {
        s.execute(
            "INSERT INTO aml_history (outcome_serial, justification, decider_pub, decider_sig) \
             VALUES ($1, $2, $3, $4)",
            &[
                &serial,
                &decider.justification,
                &&decider.officer_pub.0[..],
                &&decider.officer_sig.0[..],
            ],
        )?;
    }
    Ok(id_from_sql(serial)?)
}

fn decision_from_row(row: &Row) -> Result<DecisionRecord, PgError> {
    let properties = row
        .try_get::<_, Option<&str>>(4)?
        .map(|text| {
            serde_json::from_str::<AttributeMap>(text).map_err(|_| corrupt("jproperties", text))
        })
        .transpose()?;
    let new_rules = row
        .try_get::<_, Option<&str>>(8)?
        .map(|text| serde_json::from_str(text).map_err(|_| corrupt("jnew_rules", text)))
        .transpose()?;
    Ok(DecisionRecord {
        rowid: id_from_sql(row.try_get(0)?)?,
        h_payto: NormalizedPaytoHash(bytes(row.try_get(1)?, "h_payto")?),
        decision_time: micros_from_sql(row.try_get(2)?)?,
        expiration_time: expiry_from_sql(row.try_get(3)?)?,
        properties,
        new_measure_name: row.try_get(5)?,
        to_investigate: row.try_get(6)?,
        is_active: row.try_get(7)?,
        new_rules,
        justification: row.try_get(9)?,
        decider_pub: row
            .try_get::<_, Option<&[u8]>>(10)?
            .map(|key| bytes(key, "decider_pub").map(EddsaPublicKey))
            .transpose()?,
        full_payto: row.try_get(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::postgres::testing;
    use crate::domain::aml::Decider;
    use crate::ports::journal::{Journal, JournalQuery};

    mod conformance {
        use super::*;
        use crate::ports::aml_conformance::aml_store_conformance;
        aml_store_conformance!(optional: testing::database()
            .map(|(schema, db)| (schema, PgAmlStore::new(db))));
    }

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_seconds(seconds).unwrap()
    }

    /// The journal's entries, oldest first, as (kind, actor).
    fn journaled(db: &Arc<PgDatabase>) -> Vec<(String, String)> {
        let journal = super::journal::PgJournal::new(Arc::clone(db));
        let mut entries = journal
            .entries(&JournalQuery {
                limit: 100,
                ..JournalQuery::default()
            })
            .unwrap();
        entries.reverse();
        entries.into_iter().map(|e| (e.kind, e.actor)).collect()
    }

    #[test]
    fn every_change_is_journaled_and_no_replay_is() {
        let Some((_schema, db)) = testing::database() else {
            return;
        };
        let store = PgAmlStore::new(Arc::clone(&db));
        let key = EddsaPublicKey([7; 32]);
        let change = OfficerChange {
            officer_pub: key,
            name: "Olivia".into(),
            is_active: true,
            read_only: false,
            change_date: at(100),
            master_sig: Some(EddsaSignature([7; 64])),
        };
        assert_eq!(
            store.upsert_officer(&change).unwrap(),
            OfficerUpsert::Stored
        );
        assert_eq!(
            store.upsert_officer(&change).unwrap(),
            OfficerUpsert::Replayed
        );
        store
            .operator_update(&key, &OperatorAction::Disable, at(50))
            .unwrap()
            .unwrap();
        let h_payto = NormalizedPaytoHash([2; 32]);
        let row = store
            .append_attributes(&NewAttributeRecord {
                h_payto,
                collection_time: at(1),
                expiration_time: Timestamp::never(),
                source: AttributeSource::Officer(key),
                form_id: None,
                process_serial: None,
                encrypted: vec![1],
            })
            .unwrap();
        store
            .insert_outcome(&NewOutcome {
                h_payto,
                decision_time: at(2),
                expiration_time: Timestamp::never(),
                properties: None,
                new_measure_name: None,
                to_investigate: false,
                new_rules: None,
                decider: Some(Decider {
                    officer_pub: key,
                    justification: "j".into(),
                    officer_sig: EddsaSignature([1; 64]),
                }),
            })
            .unwrap();
        let officer = format!("officer:{key}");
        let expected = [
            ("journal.started", "system"),
            ("aml.officer_changed", "master"),
            ("aml.officer_changed", "operator"),
            ("kyc.attributes_stored", officer.as_str()),
        ]
        .map(|(kind, actor)| (kind.to_owned(), actor.to_owned()));
        // As on SQLite, `insert_outcome` writes no entry (officers' decisions go through the
        // KYC store's decision write, which journals them).
        assert_eq!(journaled(&db), expected);
        let entries = super::journal::PgJournal::new(db)
            .entries(&JournalQuery {
                limit: 1,
                ..JournalQuery::default()
            })
            .unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&entries[0].details).unwrap()["row"],
            row
        );
    }

    #[test]
    fn corrupt_rows_are_internal_errors() {
        let Some((_schema, db)) = testing::database() else {
            return;
        };
        let store = PgAmlStore::new(Arc::clone(&db));
        db.write(|s| {
            s.execute(
                "INSERT INTO aml_officers VALUES ($1, 'x', TRUE, FALSE, 1234567, NULL)",
                &[&&[5u8; 32][..]],
            )?;
            s.execute(
                "INSERT INTO legitimization_outcomes (h_payto, decision_time, jproperties, \
                 to_investigate, is_active) VALUES ($1, 0, '[1]', FALSE, TRUE)",
                &[&&[5u8; 32][..]],
            )?;
            Ok(())
        })
        .unwrap();
        // Not whole seconds: written by someone else.
        assert!(matches!(
            store.officer(&EddsaPublicKey([5; 32])),
            Err(StoreError::Internal(_))
        ));
        let filter = DecisionFilter {
            page: Page::new(10, 0),
            h_payto: None,
            active: None,
            investigation: None,
        };
        assert!(matches!(
            store.decisions(&filter),
            Err(StoreError::Internal(_))
        ));
    }
}

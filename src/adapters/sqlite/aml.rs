//! The AML stores on SQLite (schema: `migrations/0004_aml.sql`).
//!
//! Reads use the pool; every mutation is one job of the single writer, so it is atomic.
//! Everything read back is validated: a corrupt row is `StoreError::Internal`, never a panic.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Database;
use super::journal;
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

/// Officers, attribute rows and decisions in the talerbox database.
pub struct SqliteAmlStore {
    db: Arc<Database>,
}

impl SqliteAmlStore {
    pub fn new(db: Arc<Database>) -> SqliteAmlStore {
        SqliteAmlStore { db }
    }
}

const OFFICER_COLUMNS: &str = "officer_pub, name, is_active, read_only, last_change, master_sig";

impl OfficerStore for SqliteAmlStore {
    fn officer(&self, officer_pub: &EddsaPublicKey) -> Result<Option<Officer>, StoreError> {
        self.db.read(|conn| officer_by_key(conn, officer_pub))
    }

    fn upsert_officer(&self, change: &OfficerChange) -> Result<OfficerUpsert, StoreError> {
        let change = change.clone();
        self.db.write(move |conn| {
            if let Some(stored) = officer_by_key(conn, &change.officer_pub)? {
                if stored.last_change > change.change_date {
                    return Ok(OfficerUpsert::MoreRecentPresent);
                }
                if stored.last_change == change.change_date {
                    return Ok(OfficerUpsert::Replayed);
                }
            }
            write_officer(
                conn,
                &Officer {
                    officer_pub: change.officer_pub,
                    name: change.name,
                    is_active: change.is_active,
                    read_only: change.read_only,
                    last_change: change.change_date,
                    master_sig: change.master_sig,
                },
            )?;
            let actor = if change.master_sig.is_some() {
                Actor::master()
            } else {
                Actor::operator()
            };
            journal::append(
                conn,
                &events::officer_changed(
                    actor,
                    &change.officer_pub,
                    change.is_active,
                    change.read_only,
                ),
            )?;
            Ok(OfficerUpsert::Stored)
        })
    }

    fn operator_update(
        &self,
        officer_pub: &EddsaPublicKey,
        action: &OperatorAction,
        now: Timestamp,
    ) -> Result<Option<Officer>, StoreError> {
        let (officer_pub, action) = (*officer_pub, action.clone());
        self.db.write(move |conn| {
            let existing = officer_by_key(conn, &officer_pub)?;
            let updated = apply_operator_action(existing.as_ref(), &officer_pub, &action, now);
            if let Some(officer) = &updated {
                write_officer(conn, officer)?;
                journal::append(
                    conn,
                    &events::officer_changed(
                        Actor::operator(),
                        &officer.officer_pub,
                        officer.is_active,
                        officer.read_only,
                    ),
                )?;
            }
            Ok(updated)
        })
    }

    fn list_officers(&self) -> Result<Vec<Officer>, StoreError> {
        self.db.read(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {OFFICER_COLUMNS} FROM aml_officers ORDER BY officer_pub"
            ))?;
            let rows = statement.query_map([], OfficerRow::read)?;
            rows.map(|row| row?.into_officer()).collect()
        })
    }
}

fn officer_by_key(
    conn: &Connection,
    officer_pub: &EddsaPublicKey,
) -> Result<Option<Officer>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {OFFICER_COLUMNS} FROM aml_officers WHERE officer_pub = ?1"
        ))?
        .query_row([&officer_pub.0[..]], OfficerRow::read)
        .optional()?;
    row.map(OfficerRow::into_officer).transpose()
}

fn write_officer(conn: &Connection, officer: &Officer) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO aml_officers (officer_pub, name, is_active, read_only, last_change, \
         master_sig) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (officer_pub) DO UPDATE SET name = excluded.name, \
         is_active = excluded.is_active, read_only = excluded.read_only, \
         last_change = excluded.last_change, master_sig = excluded.master_sig",
    )?
    .execute(params![
        &officer.officer_pub.0[..],
        officer.name,
        officer.is_active,
        officer.read_only,
        micros_to_sql(officer.last_change)?,
        officer.master_sig.as_ref().map(|sig| &sig.0[..]),
    ])?;
    Ok(())
}

struct OfficerRow {
    officer_pub: Vec<u8>,
    name: String,
    is_active: bool,
    read_only: bool,
    last_change: i64,
    master_sig: Option<Vec<u8>>,
}

impl OfficerRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<OfficerRow> {
        Ok(OfficerRow {
            officer_pub: row.get(0)?,
            name: row.get(1)?,
            is_active: row.get(2)?,
            read_only: row.get(3)?,
            last_change: row.get(4)?,
            master_sig: row.get(5)?,
        })
    }

    fn into_officer(self) -> Result<Officer, StoreError> {
        Ok(Officer {
            officer_pub: EddsaPublicKey(bytes(&self.officer_pub, "officer_pub")?),
            name: self.name,
            is_active: self.is_active,
            read_only: self.read_only,
            last_change: micros_from_sql(self.last_change)?,
            master_sig: self
                .master_sig
                .map(|sig| bytes(&sig, "master_sig").map(EddsaSignature))
                .transpose()?,
        })
    }
}

// ---- attributes ----

impl AttributeStore for SqliteAmlStore {
    fn append_attributes(&self, record: &NewAttributeRecord) -> Result<u64, StoreError> {
        let record = record.clone();
        self.db.write(move |conn| {
            let (by_officer, officer_pub, provider) = match &record.source {
                AttributeSource::Officer(key) => (true, Some(key.0.to_vec()), None),
                AttributeSource::Customer { provider } => (false, None, provider.clone()),
            };
            let process_serial = record
                .process_serial
                .map(|serial| id_to_sql(serial, "process serial"))
                .transpose()?;
            conn.prepare_cached(
                "INSERT INTO kyc_attributes (h_payto, process_serial, form_id, collection_time, \
                 expiration_time, encrypted_attributes, by_aml_officer, officer_pub, \
                 provider_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                &record.h_payto.0[..],
                process_serial,
                record.form_id,
                micros_to_sql(record.collection_time)?,
                expiry_to_sql(record.expiration_time)?,
                record.encrypted,
                by_officer,
                officer_pub,
                provider,
            ])?;
            let row = id_from_sql(conn.last_insert_rowid())?;
            let actor = match &record.source {
                AttributeSource::Officer(key) => Actor::officer(key),
                AttributeSource::Customer { provider } => match provider.as_deref() {
                    Some("FORM") | None => Actor::form(record.form_id.as_deref().unwrap_or("")),
                    Some(name) => Actor::provider(name),
                },
            };
            journal::append(
                conn,
                &events::attributes_stored(record.h_payto, actor, row, record.expiration_time),
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
             WHERE h_payto = ?1 AND serial {comparison} ?2 ORDER BY serial {order} LIMIT ?3"
        );
        let offset = id_to_sql(page.offset(), "offset")?;
        let count = page.limit().saturating_abs();
        self.db.read(|conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(params![&h_payto.0[..], offset, count], |row| {
                AttributeRow::read(row)
            })?;
            rows.map(|row| row?.into_record(*h_payto)).collect()
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

struct AttributeRow {
    serial: i64,
    collection_time: i64,
    expiration_time: Option<i64>,
    encrypted: Vec<u8>,
    by_aml_officer: bool,
    officer_pub: Option<Vec<u8>>,
    provider_name: Option<String>,
    form_id: Option<String>,
}

impl AttributeRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<AttributeRow> {
        Ok(AttributeRow {
            serial: row.get(0)?,
            collection_time: row.get(1)?,
            expiration_time: row.get(2)?,
            encrypted: row.get(3)?,
            by_aml_officer: row.get(4)?,
            officer_pub: row.get(5)?,
            provider_name: row.get(6)?,
            form_id: row.get(7)?,
        })
    }

    fn into_record(self, h_payto: NormalizedPaytoHash) -> Result<AttributeRecord, StoreError> {
        let source = match (self.by_aml_officer, self.officer_pub) {
            (true, Some(key)) => {
                AttributeSource::Officer(EddsaPublicKey(bytes(&key, "officer_pub")?))
            }
            (false, None) => AttributeSource::Customer {
                provider: self.provider_name,
            },
            _ => return Err(corrupt("attribute source", &self.serial.to_string())),
        };
        Ok(AttributeRecord {
            rowid: id_from_sql(self.serial)?,
            h_payto,
            collection_time: micros_from_sql(self.collection_time)?,
            expiration_time: expiry_from_sql(self.expiration_time)?,
            source,
            form_id: self.form_id,
            encrypted: self.encrypted,
        })
    }
}

// ---- decisions ----

impl DecisionStore for SqliteAmlStore {
    fn insert_outcome(&self, outcome: &NewOutcome) -> Result<u64, StoreError> {
        let outcome = outcome.clone();
        self.db.write(move |conn| insert_outcome(conn, &outcome))
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
             WHERE o.serial {comparison} ?1 AND (?2 IS NULL OR o.h_payto = ?2) \
             AND (?3 IS NULL OR o.is_active = ?3) AND (?4 IS NULL OR o.to_investigate = ?4) \
             ORDER BY o.serial {order} LIMIT ?5"
        );
        let offset = id_to_sql(filter.page.offset(), "offset")?;
        let h_payto = filter.h_payto.map(|h| h.0.to_vec());
        let count = filter.page.limit().saturating_abs();
        self.db.read(|conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(
                params![offset, h_payto, filter.active, filter.investigation, count],
                DecisionRow::read,
            )?;
            rows.map(|row| row?.into_record()).collect()
        })
    }
}

fn insert_outcome(conn: &Connection, outcome: &NewOutcome) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "UPDATE legitimization_outcomes SET is_active = 0 WHERE h_payto = ?1 AND is_active = 1",
    )?
    .execute([&outcome.h_payto.0[..]])?;
    let properties = outcome
        .properties
        .as_ref()
        .map(|p| serde_json::Value::Object(p.clone()).to_string());
    let rules = outcome.new_rules.as_ref().map(|r| r.to_string());
    conn.prepare_cached(
        "INSERT INTO legitimization_outcomes (h_payto, decision_time, expiration_time, \
         jproperties, new_measure_name, to_investigate, is_active, jnew_rules) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)",
    )?
    .execute(params![
        &outcome.h_payto.0[..],
        micros_to_sql(outcome.decision_time)?,
        expiry_to_sql(outcome.expiration_time)?,
        properties,
        outcome.new_measure_name,
        outcome.to_investigate,
        rules,
    ])?;
    let serial = conn.last_insert_rowid();
    if let Some(decider) = &outcome.decider {
        conn.prepare_cached(
            "INSERT INTO aml_history (outcome_serial, justification, decider_pub, decider_sig) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            serial,
            decider.justification,
            &decider.officer_pub.0[..],
            &decider.officer_sig.0[..],
        ])?;
    }
    id_from_sql(serial)
}

struct DecisionRow {
    serial: i64,
    h_payto: Vec<u8>,
    decision_time: i64,
    expiration_time: Option<i64>,
    properties: Option<String>,
    new_measure_name: Option<String>,
    to_investigate: bool,
    is_active: bool,
    rules: Option<String>,
    justification: Option<String>,
    decider_pub: Option<Vec<u8>>,
    full_payto: Option<String>,
}

impl DecisionRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<DecisionRow> {
        Ok(DecisionRow {
            serial: row.get(0)?,
            h_payto: row.get(1)?,
            decision_time: row.get(2)?,
            expiration_time: row.get(3)?,
            properties: row.get(4)?,
            new_measure_name: row.get(5)?,
            to_investigate: row.get(6)?,
            is_active: row.get(7)?,
            rules: row.get(8)?,
            justification: row.get(9)?,
            decider_pub: row.get(10)?,
            full_payto: row.get(11)?,
        })
    }

    fn into_record(self) -> Result<DecisionRecord, StoreError> {
        let properties = self
            .properties
            .map(|text| {
                serde_json::from_str::<AttributeMap>(&text)
                    .map_err(|_| corrupt("jproperties", &text))
            })
            .transpose()?;
        let new_rules = self
            .rules
            .map(|text| serde_json::from_str(&text).map_err(|_| corrupt("jnew_rules", &text)))
            .transpose()?;
        Ok(DecisionRecord {
            rowid: id_from_sql(self.serial)?,
            h_payto: NormalizedPaytoHash(bytes(&self.h_payto, "h_payto")?),
            decision_time: micros_from_sql(self.decision_time)?,
            expiration_time: expiry_from_sql(self.expiration_time)?,
            properties,
            new_measure_name: self.new_measure_name,
            to_investigate: self.to_investigate,
            is_active: self.is_active,
            new_rules,
            justification: self.justification,
            decider_pub: self
                .decider_pub
                .map(|key| bytes(&key, "decider_pub").map(EddsaPublicKey))
                .transpose()?,
            full_payto: self.full_payto,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::DbOptions;
    use crate::ports::aml_conformance::aml_store_conformance;

    /// A store on a fresh database file, with the directory that holds it.
    fn temp_store() -> (tempfile::TempDir, SqliteAmlStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.sqlite3"), &DbOptions::default()).unwrap();
        (dir, SqliteAmlStore::new(Arc::new(db)))
    }

    mod conformance {
        use super::*;
        aml_store_conformance!(guarded: temp_store());
    }

    #[test]
    fn corrupt_rows_are_internal_errors() {
        let (dir, store) = temp_store();
        let conn = Connection::open(dir.path().join("t.sqlite3")).unwrap();
        conn.execute(
            "INSERT INTO aml_officers VALUES (?1, 'x', 1, 0, 1234567, NULL)",
            [&[5u8; 32][..]],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO legitimization_outcomes (h_payto, decision_time, jproperties, \
             to_investigate, is_active) VALUES (?1, 0, '[1]', 0, 1)",
            [&[5u8; 32][..]],
        )
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

    #[test]
    fn the_schema_refuses_inconsistent_rows() {
        let (dir, _store) = temp_store();
        let conn = Connection::open(dir.path().join("t.sqlite3")).unwrap();
        // An officer row without its officer key, and two active decisions of one account.
        assert!(
            conn.execute(
                "INSERT INTO kyc_attributes (h_payto, collection_time, encrypted_attributes, \
                 by_aml_officer) VALUES (?1, 0, x'00', 1)",
                [&[1u8; 32][..]],
            )
            .is_err()
        );
        let active = "INSERT INTO legitimization_outcomes (h_payto, decision_time, \
                      to_investigate, is_active) VALUES (?1, 0, 0, 1)";
        conn.execute(active, [&[1u8; 32][..]]).unwrap();
        assert!(conn.execute(active, [&[1u8; 32][..]]).is_err());
    }
}

//! The officer side of the SQLite KYC store: decisions with their effects in one writer job
//! (exchange-aml-decisions.md §3.6), the histories AML programs read, and the listings of
//! the officer endpoints (§4).

use rusqlite::{Connection, OptionalExtension, params};

use super::journal;
use super::kyc::{
    MEASURE_COLUMNS, active_outcome, bump_changes, corrupt, finish_measure, hash_from_sql,
    insert_account, insert_events, insert_measure, into_measure, into_outcome, measure_by_serial,
    measure_row, open_measure_serial, outcome_columns,
};
use crate::adapters::convert::{
    expiry_from_sql, expiry_to_sql, id_from_sql, id_to_sql, micros_from_sql, micros_to_sql,
};
use crate::domain::aml::Page;
use crate::domain::evidence::{Actor, RequirementTrigger, events};
use crate::domain::kyc::AccessToken;
use crate::domain::primitives::{EddsaPublicKey, NormalizedPaytoHash, Timestamp};
use crate::ports::StoreError;
use crate::ports::kyc::{
    AccountFilter, AccountSummary, AmlHistoryEntry, DecisionOutcome, DecisionWrite,
    KycHistoryEntry, MeasureListing, MeasureRow,
};

/// Steps 14–16 of §3.5, then every effect of §3.6.
pub(super) fn apply(conn: &Connection, d: &DecisionWrite) -> Result<DecisionOutcome, StoreError> {
    let replayed = conn
        .prepare_cached("SELECT 1 FROM aml_history WHERE h_payto = ?1 AND decider_sig = ?2")?
        .query_row(params![&d.h_payto.0[..], &d.officer_sig.0[..]], |_| Ok(()))
        .optional()?
        .is_some();
    if replayed {
        return Ok(DecisionOutcome::Replayed);
    }
    if active_outcome(conn, &d.h_payto)?.is_some_and(|o| o.decision_time > d.decision_time) {
        return Ok(DecisionOutcome::MoreRecentPresent);
    }
    let token: Option<Vec<u8>> = conn
        .prepare_cached("SELECT access_token FROM kyc_accounts WHERE h_payto = ?1")?
        .query_row([&d.h_payto.0[..]], |r| r.get(0))
        .optional()?;
    let token = match (token, &d.account) {
        (Some(token), new) => {
            if let Some(new) = new {
                conn.execute(
                    "UPDATE kyc_accounts SET full_payto = ?2 WHERE h_payto = ?1 AND full_payto IS NULL",
                    params![&d.h_payto.0[..], new.full_payto],
                )?;
            }
            AccessToken(token.try_into().map_err(|_| corrupt("access_token"))?)
        }
        (None, None) => return Ok(DecisionOutcome::AccountUnknown),
        (None, Some(new)) => {
            insert_account(
                conn,
                &d.h_payto,
                &new.normalized_payto,
                Some(&new.full_payto),
                &new.new_token,
                None,
                d.decision_time,
            )?;
            new.new_token.clone()
        }
    };
    conn.execute(
        "UPDATE legitimization_outcomes SET is_active = 0 WHERE h_payto = ?1 AND is_active = 1",
        [&d.h_payto.0[..]],
    )?;
    conn.prepare_cached(
        "INSERT INTO legitimization_outcomes (h_payto, decision_time, expiration_time, \
         jproperties, new_measure_name, to_investigate, is_active, jnew_rules) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)",
    )?
    .execute(params![
        &d.h_payto.0[..],
        micros_to_sql(d.decision_time)?,
        expiry_to_sql(d.expiration_time)?,
        d.properties,
        d.new_measures,
        d.to_investigate,
        d.new_rules,
    ])?;
    let outcome_serial = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO aml_history (outcome_serial, justification, decider_pub, decider_sig, h_payto, new_measures) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        outcome_serial,
        d.justification,
        &d.officer_pub.0[..],
        &d.officer_sig.0[..],
        &d.h_payto.0[..],
        d.new_measures,
    ])?;
    let open = open_measure_serial(conn, &d.h_payto)?;
    let measure_serial = match &d.open_measures {
        Some(measures) => {
            let identical = match open {
                Some(serial) => measure_by_serial(conn, id_from_sql(serial)?)?
                    .filter(|m| &m.measures == measures)
                    .map(|m| m.serial),
                None => None,
            };
            Some(match identical {
                Some(serial) => serial,
                None => {
                    let serial = insert_measure(conn, &d.h_payto, measures, 1, d.decision_time)?;
                    journal::append(
                        conn,
                        &events::requirement_opened(
                            d.h_payto,
                            measures,
                            RequirementTrigger::Decision,
                        ),
                    )?;
                    id_from_sql(serial)?
                }
            })
        }
        None => {
            if let Some(open) = open {
                finish_measure(conn, open)?;
            }
            None
        }
    };
    if let Some(attributes) = &d.attributes {
        conn.execute(
            "INSERT INTO kyc_attributes (h_payto, process_serial, form_id, collection_time, expiration_time, \
             encrypted_attributes, by_aml_officer, officer_pub, provider_name) \
             VALUES (?1, NULL, ?2, ?3, ?4, ?5, 1, ?6, NULL)",
            params![
                &d.h_payto.0[..],
                attributes.form_id,
                micros_to_sql(attributes.collection_time)?,
                expiry_to_sql(attributes.expiration_time)?,
                attributes.encrypted,
                &d.officer_pub.0[..],
            ],
        )?;
        journal::append(
            conn,
            &events::attributes_stored(
                d.h_payto,
                Actor::officer(&d.officer_pub),
                id_from_sql(conn.last_insert_rowid())?,
                attributes.expiration_time,
            ),
        )?;
    }
    insert_events(conn, &d.events, d.decision_time, outcome_serial)?;
    journal::append(
        conn,
        &events::aml_decision(
            d.h_payto,
            &d.officer_pub,
            id_from_sql(outcome_serial)?,
            &d.officer_sig,
            d.to_investigate,
        ),
    )?;
    bump_changes(conn)?;
    Ok(DecisionOutcome::Applied {
        outcome_serial: id_from_sql(outcome_serial)?,
        measure_serial,
        access_token: token,
    })
}

pub(super) fn aml_history(
    conn: &Connection,
    h_payto: &NormalizedPaytoHash,
) -> Result<Vec<AmlHistoryEntry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT o.decision_time, h.justification, h.decider_pub, o.jproperties, o.jnew_rules, \
         o.to_investigate, o.is_active FROM aml_history h \
         JOIN legitimization_outcomes o ON o.serial = h.outcome_serial \
         WHERE o.h_payto = ?1 ORDER BY o.serial DESC",
    )?;
    let rows = statement.query_map([&h_payto.0[..]], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, bool>(5)?,
            r.get::<_, bool>(6)?,
        ))
    })?;
    rows.map(|row| {
        let (time, justification, decider, properties, rules, to_investigate, is_active) = row?;
        let json = |text: Option<String>, what| {
            text.map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(|_| corrupt(what))
        };
        Ok(AmlHistoryEntry {
            decision_time: micros_from_sql(time)?,
            justification,
            decider_pub: EddsaPublicKey(decider.try_into().map_err(|_| corrupt("decider_pub"))?),
            properties: json(properties, "jproperties")?,
            new_rules: json(rules, "jnew_rules")?.unwrap_or(serde_json::Value::Null),
            to_investigate,
            is_active,
        })
    })
    .collect()
}

pub(super) fn kyc_history(
    conn: &Connection,
    h_payto: &NormalizedPaytoHash,
) -> Result<Vec<KycHistoryEntry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT p.provider, p.finished, p.error_code, p.error_message, p.provider_user_id, \
         p.provider_legitimization_id, a.collection_time, a.expiration_time, a.encrypted_attributes \
         FROM kyc_attributes a JOIN legitimization_processes p ON p.serial = a.process_serial \
         WHERE a.h_payto = ?1 ORDER BY a.serial DESC",
    )?;
    let rows = statement.query_map([&h_payto.0[..]], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, bool>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, Vec<u8>>(8)?,
        ))
    })?;
    rows.map(|row| {
        let (provider, finished, code, message, user, legitimization, collected, expires, blob) =
            row?;
        Ok(KycHistoryEntry {
            provider_name: provider,
            finished,
            error_code: u32::try_from(code).map_err(|_| corrupt("error_code"))?,
            error_message: message,
            provider_user_id: user,
            provider_legitimization_id: legitimization,
            collection_time: micros_from_sql(collected)?,
            expiration_time: expiry_from_sql(expires)?,
            encrypted: blob,
        })
    })
    .collect()
}

pub(super) fn count_events(
    conn: &Connection,
    name: &str,
    start: Timestamp,
    end: Timestamp,
) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM kyc_events WHERE event_type = ?1 \
             AND event_timestamp >= ?2 AND event_timestamp < ?3",
        )?
        .query_row(params![name, clamp_micros(start), clamp_micros(end)], |r| {
            r.get(0)
        })?;
    u64::try_from(count).map_err(|_| corrupt("count"))
}

/// A time bound as SQLite's signed integer ("never" is past every stored time).
fn clamp_micros(time: Timestamp) -> i64 {
    i64::try_from(time.as_micros()).unwrap_or(i64::MAX)
}

fn direction(page: &Page) -> (&'static str, &'static str) {
    if page.is_forward() {
        (">", "ASC")
    } else {
        ("<", "DESC")
    }
}

pub(super) fn list_measures(
    conn: &Connection,
    listing: &MeasureListing,
    page: &Page,
) -> Result<Vec<MeasureRow>, StoreError> {
    if page.limit() == 0 {
        return Ok(Vec::new());
    }
    let (comparison, order) = direction(page);
    let sql = format!(
        "SELECT {MEASURE_COLUMNS} FROM legitimization_measures \
         WHERE serial {comparison} ?1 AND (?2 IS NULL OR h_payto = ?2) \
         AND (?3 IS NULL OR is_finished = ?3) ORDER BY serial {order} LIMIT ?4"
    );
    let finished = listing.open.map(|open| !open);
    let h_payto = listing.filter_h_payto.map(|h| h.0.to_vec());
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(
        params![
            id_to_sql(page.offset(), "offset")?,
            h_payto,
            finished,
            page.limit().saturating_abs()
        ],
        measure_row,
    )?;
    rows.map(|row| into_measure(row?)).collect()
}

pub(super) fn list_accounts(
    conn: &Connection,
    filter: &AccountFilter,
    page: &Page,
) -> Result<Vec<AccountSummary>, StoreError> {
    if page.limit() == 0 {
        return Ok(Vec::new());
    }
    let (comparison, order) = direction(page);
    let sql = format!(
        "SELECT a.serial, a.h_payto, a.full_payto, o.serial, o.h_payto, o.decision_time, \
         o.expiration_time, o.jproperties, o.to_investigate, o.is_active, o.jnew_rules \
         FROM kyc_accounts a LEFT JOIN legitimization_outcomes o \
         ON o.h_payto = a.h_payto AND o.is_active = 1 \
         WHERE a.serial {comparison} ?1 \
         AND (?3 IS NULL OR COALESCE(o.to_investigate, 0) = ?3) \
         AND (?4 IS NULL OR (o.serial IS NOT NULL) = ?4) \
         AND (?5 IS NULL OR (COALESCE(json_extract(o.jproperties, '$.high_risk') IS 1 \
              AND json_type(o.jproperties, '$.high_risk') = 'true', 0)) = ?5) \
         ORDER BY a.serial {order} LIMIT ?2"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params![
        id_to_sql(page.offset(), "offset")?,
        page.limit().saturating_abs(),
        filter.investigation,
        filter.open,
        filter.high_risk,
    ])?;
    let mut accounts = Vec::new();
    while let Some(row) = rows.next()? {
        let serial: Option<i64> = row.get(0)?;
        let h_payto: Vec<u8> = row.get(1)?;
        let full_payto: Option<String> = row.get(2)?;
        let has_outcome: Option<i64> = row.get(3)?;
        let active = match has_outcome {
            // The outcome columns start at column 3.
            Some(_) => Some(into_outcome(outcome_columns(row, 3)?)?),
            None => None,
        };
        accounts.push(AccountSummary {
            serial: id_from_sql(serial.ok_or_else(|| corrupt("serial"))?)?,
            h_payto: hash_from_sql(h_payto)?,
            full_payto,
            active,
        });
    }
    Ok(accounts)
}

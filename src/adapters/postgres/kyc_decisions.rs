//! The officer side of the PostgreSQL KYC store: decisions with their effects in one
//! transaction (exchange-aml-decisions.md §3.6), the histories AML programs read, and the
//! listings of the officer endpoints (§4).

use postgres::{Client, Row};

use super::journal;
use super::kyc::{
    MEASURE_COLUMNS, Tx, active_outcome, corrupt, finish_measure, hash_from_sql, insert_account,
    insert_events, insert_measure, into_measure, into_outcome, lock_account, measure_by_serial,
    open_measure_serial,
};
use super::locks::{self, DECISIONS};
use super::{PgError, Session};
use crate::adapters::convert::{
    expiry_from_sql, expiry_to_sql, id_from_sql, id_to_sql, micros_from_sql, micros_to_sql,
};
use crate::domain::aml::Page;
use crate::domain::evidence::{Actor, RequirementTrigger, events};
use crate::domain::kyc::AccessToken;
use crate::domain::primitives::{EddsaPublicKey, NormalizedPaytoHash, Timestamp};
use crate::ports::kyc::{
    AccountFilter, AccountSummary, AmlHistoryEntry, DecisionOutcome, DecisionWrite,
    KycHistoryEntry, MeasureListing, MeasureRow,
};

/// Steps 14–16 of §3.5, then every effect of §3.6, under the account's lock and (before the
/// outcome is inserted) the decisions lock, so that outcome serials commit in order.
pub(super) fn apply(s: &mut Tx<'_, '_>, d: &DecisionWrite) -> Result<DecisionOutcome, PgError> {
    lock_account(s, &d.h_payto)?;
    let replayed = s
        .query_opt(
            "SELECT 1 FROM aml_history WHERE h_payto = $1 AND decider_sig = $2",
            &[&&d.h_payto.0[..], &&d.officer_sig.0[..]],
        )?
        .is_some();
    if replayed {
        return Ok(DecisionOutcome::Replayed);
    }
    if active_outcome(s, &d.h_payto)?.is_some_and(|o| o.decision_time > d.decision_time) {
        return Ok(DecisionOutcome::MoreRecentPresent);
    }
    let token: Option<Vec<u8>> = s
        .query_opt(
            "SELECT access_token FROM kyc_accounts WHERE h_payto = $1",
            &[&&d.h_payto.0[..]],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    if token.is_none() && d.account.is_none() {
        return Ok(DecisionOutcome::AccountUnknown);
    }
    locks::transaction_lock(s, DECISIONS)?;
    let token = match (token, &d.account) {
        (Some(token), new) => {
            if let Some(new) = new {
                s.execute(
                    "UPDATE kyc_accounts SET full_payto = $2 WHERE h_payto = $1 AND full_payto IS NULL",
                    &[&&d.h_payto.0[..], &new.full_payto],
                )?;
            }
            AccessToken(token.try_into().map_err(|_| corrupt("access_token"))?)
        }
        (None, None) => return Ok(DecisionOutcome::AccountUnknown),
        (None, Some(new)) => {
            insert_account(
                s,
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
    s.execute(
        "UPDATE legitimization_outcomes SET is_active = FALSE WHERE h_payto = $1 AND is_active",
        &[&&d.h_payto.0[..]],
    )?;
    let outcome_serial: i64 = s
        .query_one(
            "INSERT INTO legitimization_outcomes (h_payto, decision_time, expiration_time, \
             jproperties, new_measure_name, to_investigate, is_active, jnew_rules) \
             VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7) RETURNING serial",
            &[
                &&d.h_payto.0[..],
                &micros_to_sql(d.decision_time)?,
                &expiry_to_sql(d.expiration_time)?,
                &d.properties,
                &d.new_measures,
                &d.to_investigate,
                &d.new_rules,
            ],
        )?
        .try_get(0)?;
    s.execute(
        "INSERT INTO aml_history (outcome_serial, justification, decider_pub, decider_sig, h_payto, new_measures) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &outcome_serial,
            &d.justification,
            &&d.officer_pub.0[..],
            &&d.officer_sig.0[..],
            &&d.h_payto.0[..],
            &d.new_measures,
        ],
    )?;
    let open = open_measure_serial(s, &d.h_payto)?;
    let measure_serial = match &d.open_measures {
        Some(measures) => {
            let identical = match open {
                Some(serial) => measure_by_serial(s, id_from_sql(serial)?)?
                    .filter(|m| &m.measures == measures)
                    .map(|m| m.serial),
                None => None,
            };
            Some(match identical {
                Some(serial) => serial,
                None => {
                    let serial = insert_measure(s, &d.h_payto, measures, 1, d.decision_time)?;
                    journal::append(
                        s,
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
                finish_measure(s, open)?;
            }
            None
        }
    };
    if let Some(attributes) = &d.attributes {
        let serial: i64 = s
            .query_one(
                "INSERT INTO kyc_attributes (h_payto, process_serial, form_id, collection_time, expiration_time, \
                 encrypted_attributes, by_aml_officer, officer_pub, provider_name) \
                 VALUES ($1, NULL, $2, $3, $4, $5, TRUE, $6, NULL) RETURNING serial",
                &[
                    &&d.h_payto.0[..],
                    &attributes.form_id,
                    &micros_to_sql(attributes.collection_time)?,
                    &expiry_to_sql(attributes.expiration_time)?,
                    &attributes.encrypted,
                    &&d.officer_pub.0[..],
                ],
            )?
            .try_get(0)?;
        journal::append(
            s,
            &events::attributes_stored(
                d.h_payto,
                Actor::officer(&d.officer_pub),
                id_from_sql(serial)?,
                attributes.expiration_time,
            ),
        )?;
    }
    insert_events(s, &d.events, d.decision_time, outcome_serial)?;
    journal::append(
        s,
        &events::aml_decision(
            d.h_payto,
            &d.officer_pub,
            id_from_sql(outcome_serial)?,
            &d.officer_sig,
            d.to_investigate,
        ),
    )?;
    Ok(DecisionOutcome::Applied {
        outcome_serial: id_from_sql(outcome_serial)?,
        measure_serial,
        access_token: token,
    })
}

/// Optional JSON text of a history row.
fn json(text: Option<&str>, what: &str) -> Result<Option<serde_json::Value>, PgError> {
    Ok(text
        .map(serde_json::from_str)
        .transpose()
        .map_err(|_| corrupt(what))?)
}

pub(super) fn aml_history(
    s: &mut Session<'_, Client>,
    h_payto: &NormalizedPaytoHash,
) -> Result<Vec<AmlHistoryEntry>, PgError> {
    let rows = s.query(
        "SELECT o.decision_time, h.justification, h.decider_pub, o.jproperties, o.jnew_rules, \
         o.to_investigate, o.is_active FROM aml_history h \
         JOIN legitimization_outcomes o ON o.serial = h.outcome_serial \
         WHERE o.h_payto = $1 ORDER BY o.serial DESC",
        &[&&h_payto.0[..]],
    )?;
    rows.iter()
        .map(|r| {
            let decider: Vec<u8> = r.try_get(2)?;
            Ok(AmlHistoryEntry {
                decision_time: micros_from_sql(r.try_get(0)?)?,
                justification: r.try_get(1)?,
                decider_pub: EddsaPublicKey(
                    decider.try_into().map_err(|_| corrupt("decider_pub"))?,
                ),
                properties: json(r.try_get(3)?, "jproperties")?,
                new_rules: json(r.try_get(4)?, "jnew_rules")?.unwrap_or(serde_json::Value::Null),
                to_investigate: r.try_get(5)?,
                is_active: r.try_get(6)?,
            })
        })
        .collect()
}

pub(super) fn kyc_history(
    s: &mut Session<'_, Client>,
    h_payto: &NormalizedPaytoHash,
) -> Result<Vec<KycHistoryEntry>, PgError> {
    let rows = s.query(
        "SELECT p.provider, p.finished, p.error_code, p.error_message, p.provider_user_id, \
         p.provider_legitimization_id, a.collection_time, a.expiration_time, a.encrypted_attributes \
         FROM kyc_attributes a JOIN legitimization_processes p ON p.serial = a.process_serial \
         WHERE a.h_payto = $1 ORDER BY a.serial DESC",
        &[&&h_payto.0[..]],
    )?;
    rows.iter()
        .map(|r| {
            let code: i64 = r.try_get(2)?;
            Ok(KycHistoryEntry {
                provider_name: r.try_get(0)?,
                finished: r.try_get(1)?,
                error_code: u32::try_from(code).map_err(|_| corrupt("error_code"))?,
                error_message: r.try_get(3)?,
                provider_user_id: r.try_get(4)?,
                provider_legitimization_id: r.try_get(5)?,
                collection_time: micros_from_sql(r.try_get(6)?)?,
                expiration_time: expiry_from_sql(r.try_get(7)?)?,
                encrypted: r.try_get(8)?,
            })
        })
        .collect()
}

pub(super) fn count_events(
    s: &mut Session<'_, Client>,
    name: &str,
    start: Timestamp,
    end: Timestamp,
) -> Result<u64, PgError> {
    let count: i64 = s
        .query_one(
            "SELECT COUNT(*) FROM kyc_events WHERE event_type = $1 \
             AND event_timestamp >= $2 AND event_timestamp < $3",
            &[&name, &clamp_micros(start), &clamp_micros(end)],
        )?
        .try_get(0)?;
    Ok(u64::try_from(count).map_err(|_| corrupt("count"))?)
}

/// A time bound as a signed integer ("never" is past every stored time).
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
    s: &mut Session<'_, Client>,
    listing: &MeasureListing,
    page: &Page,
) -> Result<Vec<MeasureRow>, PgError> {
    if page.limit() == 0 {
        return Ok(Vec::new());
    }
    let (comparison, order) = direction(page);
    let sql = format!(
        "SELECT {MEASURE_COLUMNS} FROM legitimization_measures \
         WHERE serial {comparison} $1 AND ($2::bytea IS NULL OR h_payto = $2) \
         AND ($3::boolean IS NULL OR is_finished = $3) ORDER BY serial {order} LIMIT $4"
    );
    let finished = listing.open.map(|open| !open);
    let h_payto = listing.filter_h_payto.map(|h| h.0.to_vec());
    let rows = s.query(
        &sql,
        &[
            &id_to_sql(page.offset(), "offset")?,
            &h_payto,
            &finished,
            &page.limit().saturating_abs(),
        ],
    )?;
    rows.iter().map(into_measure).collect()
}

pub(super) fn list_accounts(
    s: &mut Session<'_, Client>,
    filter: &AccountFilter,
    page: &Page,
) -> Result<Vec<AccountSummary>, PgError> {
    if page.limit() == 0 {
        return Ok(Vec::new());
    }
    let (comparison, order) = direction(page);
    let sql = format!(
        "SELECT a.serial, a.h_payto, a.full_payto, o.serial, o.h_payto, o.decision_time, \
         o.expiration_time, o.jproperties, o.to_investigate, o.is_active, o.jnew_rules \
         FROM kyc_accounts a LEFT JOIN legitimization_outcomes o \
         ON o.h_payto = a.h_payto AND o.is_active \
         WHERE a.serial {comparison} $1 \
         AND ($3::boolean IS NULL OR COALESCE(o.to_investigate, FALSE) = $3) \
         AND ($4::boolean IS NULL OR (o.serial IS NOT NULL) = $4) \
         AND ($5::boolean IS NULL OR COALESCE(o.jproperties::jsonb -> 'high_risk' = 'true'::jsonb, \
              FALSE) = $5) \
         ORDER BY a.serial {order} LIMIT $2"
    );
    let rows = s.query(
        &sql,
        &[
            &id_to_sql(page.offset(), "offset")?,
            &page.limit().saturating_abs(),
            &filter.investigation,
            &filter.open,
            &filter.high_risk,
        ],
    )?;
    rows.iter().map(account_summary).collect()
}

fn account_summary(row: &Row) -> Result<AccountSummary, PgError> {
    let serial: Option<i64> = row.try_get(0)?;
    let has_outcome: Option<i64> = row.try_get(3)?;
    let active = match has_outcome {
        // The outcome columns start at column 3.
        Some(_) => Some(into_outcome(row, 3)?),
        None => None,
    };
    Ok(AccountSummary {
        serial: id_from_sql(serial.ok_or_else(|| corrupt("serial"))?)?,
        h_payto: hash_from_sql(row.try_get(1)?)?,
        full_payto: row.try_get(2)?,
        active,
    })
}

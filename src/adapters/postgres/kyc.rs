//! `KycStore` on PostgreSQL: the same rows, outcomes and journal entries as the SQLite store.
//!
//! Every write for one account takes that account's lock first (calls keyed by a serial look
//! up its immutable `h_payto`), and every write that inserts an outcome takes the decisions
//! lock next, before any journal entry, so locks are always taken in one order: account,
//! decisions, account serial, journal. A write that moves the change counter bumps the
//! `kyc_changes` sequence and notifies `talerbox_kyc` after its commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use postgres::{GenericClient, Row};

use super::kyc_decisions;
use super::locks::{self, DECISIONS, KYC_ACCOUNT_SERIAL, account_lock};
use super::{PgDatabase, PgError, Session, journal};
use crate::adapters::convert::{
    self, bytes, expiry_from_sql, expiry_to_sql, id_from_sql, micros_from_sql, micros_to_sql,
};
use crate::domain::evidence::{Actor, RequirementTrigger, events};
use crate::domain::kyc::{AccessToken, LegitimizationMeasures, LegitimizationRuleSet};
use crate::domain::primitives::canonical_json::canonical_text_of;
use crate::domain::primitives::{EddsaPublicKey, NormalizedPaytoHash, Timestamp};
use crate::ports::StoreError;
use crate::ports::kyc::{
    AccountFilter, AccountSummary, ActivateMeasures, Activated, AmlHistoryEntry, BeginProcess,
    CompleteOutcome, CompletedProcess, Completion, DecisionOutcome, DecisionWrite, FinishedProcess,
    KeyRecorded, KycAccount, KycHistoryEntry, KycStore, MeasureListing, MeasureRow, NewOutcome,
    OutcomeRow, ProcessRow, RecordAccountKey,
};

/// The notification channel of KYC changes (see `listener`).
pub const CHANNEL: &str = "talerbox_kyc";

/// Sent after the commit of a change: moves the counter and wakes the listeners of every
/// instance. Not durable, so it does not wait for the disk.
const ANNOUNCE_CHANGE: &str = "BEGIN; SET LOCAL synchronous_commit = off; \
     SELECT nextval('kyc_changes'); NOTIFY talerbox_kyc; COMMIT";

/// A session inside a write transaction.
pub(super) type Tx<'s, 't> = Session<'s, postgres::Transaction<'t>>;

pub struct PgKycStore {
    db: Arc<PgDatabase>,
    /// Active outcomes by serial, parsed: an outcome row never changes while it is active,
    /// and kyc-info reads it on every request.
    parsed_outcomes: Mutex<HashMap<i64, OutcomeRow>>,
}

/// Parsed outcomes kept at most; the cache starts over beyond.
const PARSED_OUTCOMES: usize = 4096;

impl PgKycStore {
    pub fn new(db: Arc<PgDatabase>) -> PgKycStore {
        PgKycStore {
            db,
            parsed_outcomes: Default::default(),
        }
    }

    /// A write that announces a change after its commit when it answers `true`.
    fn change<T>(
        &self,
        work: impl FnMut(&mut Tx<'_, '_>) -> Result<(T, bool), PgError>,
    ) -> Result<T, StoreError> {
        self.db.write_then(ANNOUNCE_CHANGE, work)
    }
}

pub(super) fn hash_from_sql(value: &[u8]) -> Result<NormalizedPaytoHash, StoreError> {
    bytes::<32>(value, "h_payto").map(NormalizedPaytoHash)
}

pub(super) fn corrupt(what: &str) -> StoreError {
    convert::corrupt("KYC row", what)
}

pub(super) fn serial_to_sql(serial: u64) -> Option<i64> {
    i64::try_from(serial).ok()
}

/// A serial that must fit (it came from the database).
pub(super) fn known_serial(serial: u64) -> Result<i64, StoreError> {
    serial_to_sql(serial).ok_or_else(|| corrupt("serial"))
}

/// Takes the per-account lock of `h_payto` for the rest of the transaction.
pub(super) fn lock_account(
    s: &mut Tx<'_, '_>,
    h_payto: &NormalizedPaytoHash,
) -> Result<(), PgError> {
    locks::transaction_lock(s, account_lock(h_payto))?;
    Ok(())
}

const ACCOUNT_COLUMNS: &str =
    "h_payto, normalized_payto, full_payto, access_token, account_pub, created";

fn into_account(row: &Row) -> Result<KycAccount, PgError> {
    let token: Vec<u8> = row.try_get(3)?;
    let account_pub: Option<Vec<u8>> = row.try_get(4)?;
    let account_pub = match account_pub {
        None => None,
        Some(key) => Some(EddsaPublicKey(
            key.try_into().map_err(|_| corrupt("account_pub"))?,
        )),
    };
    Ok(KycAccount {
        h_payto: hash_from_sql(row.try_get(0)?)?,
        normalized_payto: row.try_get(1)?,
        full_payto: row.try_get(2)?,
        access_token: AccessToken(token.try_into().map_err(|_| corrupt("access_token"))?),
        account_pub,
        created: micros_from_sql(row.try_get(5)?)?,
    })
}

fn account_row<C: GenericClient>(
    s: &mut Session<'_, C>,
    h_payto: &NormalizedPaytoHash,
) -> Result<Option<KycAccount>, PgError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM kyc_accounts WHERE h_payto = $1");
    let row = s.query_opt(&sql, &[&&h_payto.0[..]])?;
    row.as_ref().map(into_account).transpose()
}

pub(super) const MEASURE_COLUMNS: &str =
    "serial, h_payto, start_time, jmeasures, display_priority, is_finished";

pub(super) fn into_measure(row: &Row) -> Result<MeasureRow, PgError> {
    let jmeasures: &str = row.try_get(3)?;
    let measures: LegitimizationMeasures =
        serde_json::from_str(jmeasures).map_err(|_| corrupt("jmeasures"))?;
    let priority: i64 = row.try_get(4)?;
    Ok(MeasureRow {
        serial: id_from_sql(row.try_get(0)?)?,
        h_payto: hash_from_sql(row.try_get(1)?)?,
        start_time: micros_from_sql(row.try_get(2)?)?,
        measures,
        display_priority: u32::try_from(priority).map_err(|_| corrupt("display_priority"))?,
        is_finished: row.try_get(5)?,
    })
}

const PROCESS_COLUMNS: &str = "serial, h_payto, measure_serial, measure_index, provider, provider_user_id, \
     provider_legitimization_id, redirect_url, start_time, finished, error_code, error_message";

fn into_process(row: &Row) -> Result<ProcessRow, PgError> {
    let index: i64 = row.try_get(3)?;
    let code: i64 = row.try_get(10)?;
    Ok(ProcessRow {
        serial: id_from_sql(row.try_get(0)?)?,
        h_payto: hash_from_sql(row.try_get(1)?)?,
        measure_serial: id_from_sql(row.try_get(2)?)?,
        measure_index: u32::try_from(index).map_err(|_| corrupt("measure_index"))?,
        provider: row.try_get(4)?,
        provider_user_id: row.try_get(5)?,
        provider_legitimization_id: row.try_get(6)?,
        redirect_url: row.try_get(7)?,
        start_time: micros_from_sql(row.try_get(8)?)?,
        finished: row.try_get(9)?,
        error_code: u32::try_from(code).map_err(|_| corrupt("error_code"))?,
        error_message: row.try_get(11)?,
    })
}

pub(super) fn measure_by_serial<C: GenericClient>(
    s: &mut Session<'_, C>,
    serial: u64,
) -> Result<Option<MeasureRow>, PgError> {
    let Some(serial) = serial_to_sql(serial) else {
        return Ok(None);
    };
    let sql = format!("SELECT {MEASURE_COLUMNS} FROM legitimization_measures WHERE serial = $1");
    let row = s.query_opt(&sql, &[&serial])?;
    row.as_ref().map(into_measure).transpose()
}

pub(super) fn open_measure_serial(
    s: &mut Tx<'_, '_>,
    h_payto: &NormalizedPaytoHash,
) -> Result<Option<i64>, PgError> {
    let row = s.query_opt(
        "SELECT serial FROM legitimization_measures WHERE h_payto = $1 AND NOT is_finished",
        &[&&h_payto.0[..]],
    )?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Finishes a measure set and its unfinished processes.
pub(super) fn finish_measure(s: &mut Tx<'_, '_>, serial: i64) -> Result<(), PgError> {
    s.execute(
        "UPDATE legitimization_measures SET is_finished = TRUE WHERE serial = $1",
        &[&serial],
    )?;
    s.execute(
        "UPDATE legitimization_processes SET finished = TRUE WHERE measure_serial = $1 AND NOT finished",
        &[&serial],
    )?;
    Ok(())
}

/// Opens a measure set, finishing the account's open one.
pub(super) fn insert_measure(
    s: &mut Tx<'_, '_>,
    h_payto: &NormalizedPaytoHash,
    measures: &LegitimizationMeasures,
    display_priority: u32,
    now: Timestamp,
) -> Result<i64, PgError> {
    if let Some(open) = open_measure_serial(s, h_payto)? {
        finish_measure(s, open)?;
    }
    let jmeasures =
        serde_json::to_string(measures).map_err(|e| StoreError::Internal(e.to_string()))?;
    let row = s.query_one(
        "INSERT INTO legitimization_measures (h_payto, start_time, jmeasures, display_priority) \
         VALUES ($1, $2, $3, $4) RETURNING serial",
        &[
            &&h_payto.0[..],
            &micros_to_sql(now)?,
            &jmeasures,
            &i64::from(display_priority),
        ],
    )?;
    Ok(row.try_get(0)?)
}

/// Inserts a program's outcome as the account's active one; `to_investigate` stays set if
/// the replaced outcome had it. The caller holds the account and decisions locks.
fn insert_outcome(
    s: &mut Tx<'_, '_>,
    h_payto: &NormalizedPaytoHash,
    outcome: &NewOutcome,
    now: Timestamp,
) -> Result<i64, PgError> {
    let sticky = s
        .query_opt(
            "UPDATE legitimization_outcomes SET is_active = FALSE WHERE h_payto = $1 AND is_active \
             RETURNING to_investigate",
            &[&&h_payto.0[..]],
        )?
        .map(|r| r.try_get::<_, bool>(0))
        .transpose()?
        .unwrap_or(false);
    let rules = serde_json::to_value(&outcome.new_rules)
        .map(|value| canonical_text_of(&value))
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    let properties = outcome.properties.as_ref().map(canonical_text_of);
    let row = s.query_one(
        "INSERT INTO legitimization_outcomes \
         (h_payto, decision_time, expiration_time, jproperties, to_investigate, is_active, jnew_rules) \
         VALUES ($1, $2, $3, $4, $5, TRUE, $6) RETURNING serial",
        &[
            &&h_payto.0[..],
            &micros_to_sql(now)?,
            &expiry_to_sql(outcome.expiration_time)?,
            &properties,
            &(outcome.to_investigate || sticky),
            &rules,
        ],
    )?;
    let serial: i64 = row.try_get(0)?;
    insert_events(s, &outcome.events, now, serial)?;
    Ok(serial)
}

/// Stores a program's outcome with its `kyc.program_outcome` entry.
fn insert_journaled_outcome(
    s: &mut Tx<'_, '_>,
    h_payto: &NormalizedPaytoHash,
    outcome: &NewOutcome,
    now: Timestamp,
) -> Result<(), PgError> {
    let decision = id_from_sql(insert_outcome(s, h_payto, outcome, now)?)?;
    journal::append(
        s,
        &events::program_outcome(
            *h_payto,
            &outcome.program,
            decision,
            outcome.to_investigate,
            &outcome.events,
        ),
    )?;
    Ok(())
}

pub(super) fn insert_events(
    s: &mut Tx<'_, '_>,
    events: &[String],
    at: Timestamp,
    outcome_serial: i64,
) -> Result<(), PgError> {
    let at = micros_to_sql(at)?;
    for event in events {
        s.execute(
            "INSERT INTO kyc_events (event_type, event_timestamp, outcome_serial) VALUES ($1, $2, $3)",
            &[event, &at, &outcome_serial],
        )?;
    }
    Ok(())
}

/// Inserts an account unless it exists, with the next account serial. The caller holds the
/// account's lock, so only a new account takes the (global) serial lock.
pub(super) fn insert_account(
    s: &mut Tx<'_, '_>,
    h_payto: &NormalizedPaytoHash,
    normalized_payto: &str,
    full_payto: Option<&str>,
    token: &AccessToken,
    account_pub: Option<EddsaPublicKey>,
    now: Timestamp,
) -> Result<(), PgError> {
    if s.query_opt(
        "SELECT 1 FROM kyc_accounts WHERE h_payto = $1",
        &[&&h_payto.0[..]],
    )?
    .is_some()
    {
        return Ok(());
    }
    locks::transaction_lock(s, KYC_ACCOUNT_SERIAL)?;
    s.execute(
        "INSERT INTO kyc_accounts (h_payto, normalized_payto, full_payto, access_token, account_pub, created, serial) \
         VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(MAX(serial), 0) + 1 FROM kyc_accounts)) \
         ON CONFLICT (h_payto) DO NOTHING",
        &[
            &&h_payto.0[..],
            &normalized_payto,
            &full_payto,
            &&token.0[..],
            &account_pub.map(|k| k.0.to_vec()),
            &micros_to_sql(now)?,
        ],
    )?;
    Ok(())
}

pub(super) const OUTCOME_COLUMNS: &str = "serial, h_payto, decision_time, expiration_time, jproperties, to_investigate, is_active, jnew_rules";

/// The [`OUTCOME_COLUMNS`] of a row, starting at column `first`.
pub(super) fn into_outcome(row: &Row, first: usize) -> Result<OutcomeRow, PgError> {
    let properties: Option<&str> = row.try_get(first + 4)?;
    let properties = properties
        .map(serde_json::from_str)
        .transpose()
        .map_err(|_| corrupt("jproperties"))?;
    let rules: Option<&str> = row.try_get(first + 7)?;
    let new_rules: Option<LegitimizationRuleSet> = rules
        .map(serde_json::from_str)
        .transpose()
        .map_err(|_| corrupt("jnew_rules"))?;
    Ok(OutcomeRow {
        serial: id_from_sql(row.try_get(first)?)?,
        h_payto: hash_from_sql(row.try_get(first + 1)?)?,
        decision_time: micros_from_sql(row.try_get(first + 2)?)?,
        expiration_time: expiry_from_sql(row.try_get(first + 3)?)?,
        properties,
        to_investigate: row.try_get(first + 5)?,
        is_active: row.try_get(first + 6)?,
        new_rules,
    })
}

/// The account's active outcome row as stored, before parsing.
fn active_outcome_row<C: GenericClient>(
    s: &mut Session<'_, C>,
    h_payto: &NormalizedPaytoHash,
) -> Result<Option<Row>, PgError> {
    let sql = format!(
        "SELECT {OUTCOME_COLUMNS} FROM legitimization_outcomes WHERE h_payto = $1 AND is_active"
    );
    Ok(s.query_opt(&sql, &[&&h_payto.0[..]])?)
}

pub(super) fn active_outcome<C: GenericClient>(
    s: &mut Session<'_, C>,
    h_payto: &NormalizedPaytoHash,
) -> Result<Option<OutcomeRow>, PgError> {
    active_outcome_row(s, h_payto)?
        .map(|row| into_outcome(&row, 0))
        .transpose()
}

/// The account's newest process with `provider` (only unfinished ones if `only_open`).
fn newest_process(
    s: &mut Session<'_, postgres::Client>,
    h_payto: &NormalizedPaytoHash,
    provider: &str,
    only_open: bool,
) -> Result<Option<ProcessRow>, PgError> {
    let sql = format!(
        "SELECT {PROCESS_COLUMNS} FROM legitimization_processes \
         WHERE h_payto = $1 AND provider = $2 AND (NOT $3 OR NOT finished) \
         ORDER BY serial DESC LIMIT 1"
    );
    let row = s.query_opt(&sql, &[&&h_payto.0[..], &provider, &only_open])?;
    row.as_ref().map(into_process).transpose()
}

fn measure_is_open(s: &mut Tx<'_, '_>, serial: u64) -> Result<bool, PgError> {
    Ok(measure_by_serial(s, serial)?.is_some_and(|m| !m.is_finished))
}

/// The account a measure set or process belongs to (immutable, so read before its lock).
fn owner(
    s: &mut Tx<'_, '_>,
    table: Owner,
    serial: u64,
) -> Result<Option<NormalizedPaytoHash>, PgError> {
    let Some(serial) = serial_to_sql(serial) else {
        return Ok(None);
    };
    let sql = match table {
        Owner::Measure => "SELECT h_payto FROM legitimization_measures WHERE serial = $1",
        Owner::Process => "SELECT h_payto FROM legitimization_processes WHERE serial = $1",
    };
    s.query_opt(sql, &[&serial])?
        .map(|row| Ok(hash_from_sql(row.try_get(0)?)?))
        .transpose()
}

#[derive(Clone, Copy)]
enum Owner {
    Measure,
    Process,
}

/// Locks the account owning `serial`; false when there is no such row.
fn lock_owner(s: &mut Tx<'_, '_>, table: Owner, serial: u64) -> Result<bool, PgError> {
    match owner(s, table, serial)? {
        Some(h_payto) => {
            lock_account(s, &h_payto)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

impl KycStore for PgKycStore {
    fn activate_measures(&self, request: ActivateMeasures) -> Result<Activated, StoreError> {
        self.change(|s| {
            lock_account(s, &request.h_payto)?;
            insert_account(
                s,
                &request.h_payto,
                &request.normalized_payto,
                request.full_payto.as_deref(),
                &request.new_token,
                request.account_pub,
                request.now,
            )?;
            let token: Vec<u8> = s
                .query_one(
                    "SELECT access_token FROM kyc_accounts WHERE h_payto = $1",
                    &[&&request.h_payto.0[..]],
                )?
                .try_get(0)?;
            let token: [u8; 32] = token.try_into().map_err(|_| corrupt("access_token"))?;
            let open = match open_measure_serial(s, &request.h_payto)? {
                Some(serial) => measure_by_serial(s, id_from_sql(serial)?)?,
                None => None,
            };
            let serial = match open.filter(|m| m.measures == request.measures) {
                Some(identical) => identical.serial,
                None => {
                    let serial = insert_measure(
                        s,
                        &request.h_payto,
                        &request.measures,
                        request.display_priority,
                        request.now,
                    )?;
                    journal::append(
                        s,
                        &events::requirement_opened(
                            request.h_payto,
                            &request.measures,
                            request.trigger,
                        ),
                    )?;
                    id_from_sql(serial)?
                }
            };
            let activated = Activated {
                access_token: AccessToken(token),
                measure_serial: serial,
            };
            Ok((activated, true))
        })
    }

    fn record_account_key(&self, request: RecordAccountKey) -> Result<KeyRecorded, StoreError> {
        self.change(|s| {
            lock_account(s, &request.h_payto)?;
            let before = account_row(s, &request.h_payto)?;
            insert_account(
                s,
                &request.h_payto,
                &request.normalized_payto,
                request.full_payto.as_deref(),
                &request.new_token,
                Some(request.account_pub),
                request.now,
            )?;
            s.execute(
                "UPDATE kyc_accounts SET account_pub = $2 WHERE h_payto = $1",
                &[&&request.h_payto.0[..], &&request.account_pub.0[..]],
            )?;
            let account = account_row(s, &request.h_payto)?
                .ok_or_else(|| StoreError::Internal("KYC account vanished".into()))?;
            let recorded = KeyRecorded {
                account,
                previous: before.and_then(|a| a.account_pub),
            };
            Ok((recorded, true))
        })
    }

    fn account_by_token(&self, token: &AccessToken) -> Result<Option<KycAccount>, StoreError> {
        self.db.read(|s| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM kyc_accounts WHERE access_token = $1");
            let row = s.query_opt(&sql, &[&&token.0[..]])?;
            row.as_ref().map(into_account).transpose()
        })
    }

    fn account(&self, h_payto: &NormalizedPaytoHash) -> Result<Option<KycAccount>, StoreError> {
        self.db.read(|s| account_row(s, h_payto))
    }

    fn open_measure(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<MeasureRow>, StoreError> {
        self.db.read(|s| {
            let sql = format!(
                "SELECT {MEASURE_COLUMNS} FROM legitimization_measures WHERE h_payto = $1 AND NOT is_finished"
            );
            let row = s.query_opt(&sql, &[&&h_payto.0[..]])?;
            row.as_ref().map(into_measure).transpose()
        })
    }

    fn measure(&self, serial: u64) -> Result<Option<MeasureRow>, StoreError> {
        self.db.read(|s| measure_by_serial(s, serial))
    }

    fn active_outcome(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<OutcomeRow>, StoreError> {
        let Some(row) = self.db.read(|s| active_outcome_row(s, h_payto))? else {
            return Ok(None);
        };
        let serial: i64 = row.try_get(0).map_err(StoreError::from)?;
        let mut cache = self
            .parsed_outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(parsed) = cache.get(&serial) {
            return Ok(Some(parsed.clone()));
        }
        let parsed = into_outcome(&row, 0)?;
        if cache.len() >= PARSED_OUTCOMES {
            cache.clear();
        }
        cache.insert(serial, parsed.clone());
        Ok(Some(parsed))
    }

    fn begin_process(
        &self,
        measure_serial: u64,
        index: u32,
        provider: &str,
        now: Timestamp,
    ) -> Result<BeginProcess, StoreError> {
        self.db.write(|s| {
            if !lock_owner(s, Owner::Measure, measure_serial)? {
                return Ok(BeginProcess::MeasureFinished);
            }
            let Some(measure) = measure_by_serial(s, measure_serial)? else {
                return Ok(BeginProcess::MeasureFinished);
            };
            if measure.is_finished {
                return Ok(BeginProcess::MeasureFinished);
            }
            let serial = known_serial(measure_serial)?;
            let index = i64::from(index);
            let existing = s.query_opt(
                "SELECT serial, finished, redirect_url FROM legitimization_processes \
                 WHERE measure_serial = $1 AND measure_index = $2",
                &[&serial, &index],
            )?;
            let existing: Option<(i64, bool, Option<String>)> = existing
                .map(|r| -> Result<_, postgres::Error> {
                    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
                })
                .transpose()?;
            let start = micros_to_sql(now)?;
            let process_serial = match existing {
                Some((_, false, Some(redirect_url))) => {
                    return Ok(BeginProcess::Existing { redirect_url });
                }
                Some((process, _, _)) => {
                    s.execute(
                        "UPDATE legitimization_processes SET provider = $2, start_time = $3, provider_user_id = NULL, \
                         provider_legitimization_id = NULL, redirect_url = NULL, finished = FALSE, error_code = 0, \
                         error_message = NULL WHERE serial = $1",
                        &[&process, &provider, &start],
                    )?;
                    process
                }
                None => s
                    .query_one(
                        "INSERT INTO legitimization_processes (h_payto, measure_serial, measure_index, provider, start_time) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING serial",
                        &[&&measure.h_payto.0[..], &serial, &index, &provider, &start],
                    )?
                    .try_get(0)?,
            };
            let process_serial = id_from_sql(process_serial)?;
            journal::append(
                s,
                &events::process_started(measure.h_payto, measure_serial, provider, process_serial),
            )?;
            Ok(BeginProcess::Started { process_serial })
        })
    }

    fn record_redirect(
        &self,
        process_serial: u64,
        redirect_url: &str,
    ) -> Result<String, StoreError> {
        self.db.write(|s| {
            if !lock_owner(s, Owner::Process, process_serial)? {
                return Ok(redirect_url.to_owned());
            }
            let serial = known_serial(process_serial)?;
            // The first start to get its URL wins; a concurrent one answers the same.
            let stored = s.query_opt(
                "UPDATE legitimization_processes SET redirect_url = COALESCE(redirect_url, $2), \
                 provider_legitimization_id = COALESCE(provider_legitimization_id, $3) \
                 WHERE serial = $1 RETURNING redirect_url",
                &[&serial, &redirect_url, &process_serial.to_string()],
            )?;
            let stored: Option<String> = stored.map(|r| r.try_get(0)).transpose()?.flatten();
            Ok(stored.unwrap_or_else(|| redirect_url.to_owned()))
        })
    }

    fn fail_process(
        &self,
        process_serial: u64,
        code: u32,
        message: &str,
    ) -> Result<(), StoreError> {
        self.change(|s| {
            lock_owner(s, Owner::Process, process_serial)?;
            let serial = known_serial(process_serial)?;
            s.execute(
                "UPDATE legitimization_processes SET finished = TRUE, error_code = $2, error_message = $3 \
                 WHERE serial = $1",
                &[&serial, &i64::from(code), &message],
            )?;
            Ok(((), true))
        })
    }

    fn open_process(
        &self,
        h_payto: &NormalizedPaytoHash,
        provider: &str,
    ) -> Result<Option<ProcessRow>, StoreError> {
        self.db.read(|s| newest_process(s, h_payto, provider, true))
    }

    fn latest_process(
        &self,
        h_payto: &NormalizedPaytoHash,
        provider: &str,
    ) -> Result<Option<ProcessRow>, StoreError> {
        self.db
            .read(|s| newest_process(s, h_payto, provider, false))
    }

    fn finished_process(
        &self,
        measure_serial: u64,
        index: u32,
    ) -> Result<Option<FinishedProcess>, StoreError> {
        self.db.read(|s| {
            let Some(serial) = serial_to_sql(measure_serial) else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT {PROCESS_COLUMNS} FROM legitimization_processes \
                 WHERE measure_serial = $1 AND measure_index = $2 AND finished AND error_code = 0"
            );
            let row = s.query_opt(&sql, &[&serial, &i64::from(index)])?;
            let Some(process) = row.as_ref().map(into_process).transpose()? else {
                return Ok(None);
            };
            let attributes = s
                .query_opt(
                    "SELECT encrypted_attributes FROM kyc_attributes WHERE process_serial = $1 \
                     ORDER BY serial DESC LIMIT 1",
                    &[&known_serial(process.serial)?],
                )?
                .map(|r| r.try_get(0))
                .transpose()?;
            Ok(Some(FinishedProcess {
                process,
                attributes,
            }))
        })
    }

    fn complete(&self, completion: Completion) -> Result<CompleteOutcome, StoreError> {
        self.change(|s| complete(s, &completion))
    }

    fn settle(
        &self,
        h_payto: &NormalizedPaytoHash,
        measure_serial: u64,
        outcome: NewOutcome,
        now: Timestamp,
    ) -> Result<CompleteOutcome, StoreError> {
        self.change(|s| {
            lock_account(s, h_payto)?;
            locks::transaction_lock(s, DECISIONS)?;
            if !measure_is_open(s, measure_serial)? {
                return Ok((CompleteOutcome::AlreadyFinished, false));
            }
            insert_journaled_outcome(s, h_payto, &outcome, now)?;
            finish_measure(s, known_serial(measure_serial)?)?;
            Ok((CompleteOutcome::Completed, true))
        })
    }

    fn apply_decision(&self, decision: DecisionWrite) -> Result<DecisionOutcome, StoreError> {
        self.change(|s| {
            let outcome = kyc_decisions::apply(s, &decision)?;
            let changed = matches!(outcome, DecisionOutcome::Applied { .. });
            Ok((outcome, changed))
        })
    }

    fn store_program_outcome(
        &self,
        h_payto: &NormalizedPaytoHash,
        replaces: Option<u64>,
        outcome: NewOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.change(|s| {
            lock_account(s, h_payto)?;
            locks::transaction_lock(s, DECISIONS)?;
            let active = active_outcome(s, h_payto)?.map(|o| o.serial);
            if active != replaces {
                return Ok((false, false));
            }
            insert_journaled_outcome(s, h_payto, &outcome, now)?;
            Ok((true, true))
        })
    }

    fn newest_attributes(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.read(|s| {
            Ok(s.query_opt(
                "SELECT encrypted_attributes FROM kyc_attributes WHERE h_payto = $1 \
                 ORDER BY serial DESC LIMIT 1",
                &[&&h_payto.0[..]],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
        })
    }

    fn aml_history(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Vec<AmlHistoryEntry>, StoreError> {
        self.db.read(|s| kyc_decisions::aml_history(s, h_payto))
    }

    fn kyc_history(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Vec<KycHistoryEntry>, StoreError> {
        self.db.read(|s| kyc_decisions::kyc_history(s, h_payto))
    }

    fn count_events(
        &self,
        name: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u64, StoreError> {
        self.db
            .read(|s| kyc_decisions::count_events(s, name, start, end))
    }

    fn list_measures(
        &self,
        listing: &MeasureListing,
        page: &crate::domain::aml::Page,
    ) -> Result<Vec<MeasureRow>, StoreError> {
        self.db
            .read(|s| kyc_decisions::list_measures(s, listing, page))
    }

    fn list_accounts(
        &self,
        filter: &AccountFilter,
        page: &crate::domain::aml::Page,
    ) -> Result<Vec<AccountSummary>, StoreError> {
        self.db
            .read(|s| kyc_decisions::list_accounts(s, filter, page))
    }

    fn change_counter(&self) -> Result<u64, StoreError> {
        self.db.read(|s| {
            let row = s.query_one("SELECT last_value, is_called FROM kyc_changes", &[])?;
            let (value, called): (i64, bool) = (row.try_get(0)?, row.try_get(1)?);
            // Before the first nextval, last_value is the start value, not a handed-out one.
            let value = if called { value } else { 0 };
            Ok(u64::try_from(value).map_err(|_| corrupt("kyc_changes"))?)
        })
    }
}

/// A completed check: process, attributes, outcome and finished set at once. Answers
/// whether the counter moves.
fn complete(
    s: &mut Tx<'_, '_>,
    completion: &Completion,
) -> Result<(CompleteOutcome, bool), PgError> {
    lock_account(s, &completion.h_payto)?;
    if completion.outcome.is_some() {
        locks::transaction_lock(s, DECISIONS)?;
    }
    if !measure_is_open(s, completion.measure_serial)? {
        return Ok((CompleteOutcome::AlreadyFinished, false));
    }
    let measure_serial = known_serial(completion.measure_serial)?;
    let (process_serial, provider) = match &completion.process {
        CompletedProcess::Provider {
            process_serial,
            provider_user_id,
        } => {
            let serial = known_serial(*process_serial)?;
            let changed = s.execute(
                "UPDATE legitimization_processes SET finished = TRUE, provider_user_id = $2 \
                 WHERE serial = $1 AND NOT finished",
                &[&serial, provider_user_id],
            )?;
            if changed == 0 {
                return Ok((CompleteOutcome::AlreadyFinished, false));
            }
            (serial, completion.attributes.provider_name.clone())
        }
        CompletedProcess::Form { measure_index } => {
            let serial: i64 = s
                .query_one(
                    "INSERT INTO legitimization_processes (h_payto, measure_serial, measure_index, provider, start_time, finished) \
                     VALUES ($1, $2, $3, 'FORM', $4, TRUE) \
                     ON CONFLICT (measure_serial, measure_index) DO UPDATE SET provider = 'FORM', finished = TRUE, \
                     error_code = 0, error_message = NULL RETURNING serial",
                    &[
                        &&completion.h_payto.0[..],
                        &measure_serial,
                        &i64::from(*measure_index),
                        &micros_to_sql(completion.now)?,
                    ],
                )?
                .try_get(0)?;
            (serial, Some("FORM".to_owned()))
        }
    };
    let attributes = &completion.attributes;
    let attribute_serial: i64 = s
        .query_one(
            "INSERT INTO kyc_attributes (h_payto, process_serial, form_id, collection_time, expiration_time, \
             encrypted_attributes, by_aml_officer, officer_pub, provider_name) \
             VALUES ($1, $2, $3, $4, $5, $6, FALSE, NULL, $7) RETURNING serial",
            &[
                &&completion.h_payto.0[..],
                &process_serial,
                &attributes.form_id,
                &micros_to_sql(attributes.collection_time)?,
                &expiry_to_sql(attributes.expiration_time)?,
                &attributes.encrypted,
                &provider,
            ],
        )?
        .try_get(0)?;
    let actor = match &completion.process {
        CompletedProcess::Form { .. } => Actor::form(attributes.form_id.as_deref().unwrap_or("")),
        CompletedProcess::Provider { .. } => Actor::provider(provider.as_deref().unwrap_or("")),
    };
    journal::append(
        s,
        &events::attributes_stored(
            completion.h_payto,
            actor,
            id_from_sql(attribute_serial)?,
            attributes.expiration_time,
        ),
    )?;
    if let Some((code, message)) = &completion.process_error {
        s.execute(
            "UPDATE legitimization_processes SET error_code = $2, error_message = $3 WHERE serial = $1",
            &[&process_serial, &i64::from(*code), message],
        )?;
    }
    if let Some(outcome) = &completion.outcome {
        insert_journaled_outcome(s, &completion.h_payto, outcome, completion.now)?;
    }
    finish_measure(s, measure_serial)?;
    if let Some(next) = &completion.next_measures {
        insert_measure(s, &completion.h_payto, next, 0, completion.now)?;
        journal::append(
            s,
            &events::requirement_opened(completion.h_payto, next, RequirementTrigger::Rule),
        )?;
    }
    Ok((CompleteOutcome::Completed, true))
}

#[cfg(test)]
mod conformance {
    use super::PgKycStore;
    use crate::adapters::postgres::testing;
    use crate::ports::kyc_conformance::kyc_store_conformance;

    kyc_store_conformance!(optional: testing::database().map(|(schema, db)| (schema, PgKycStore::new(db))));
}

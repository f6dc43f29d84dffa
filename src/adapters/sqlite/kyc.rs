//! `KycStore` on SQLite (schema: `migrations/0005_kyc.sql` for accounts, measure sets and
//! processes; `0004_aml.sql` for the attribute rows and outcomes it shares with AML).
//!
//! Every mutation is one writer job, so a completed check (process, attributes, outcome,
//! finished set) is stored atomically. Each job also moves the `kyc_changes` counter.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Database;
use super::journal;
use super::kyc_decisions;
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

pub struct SqliteKycStore {
    db: Arc<Database>,
    /// Active outcomes by serial, parsed: an outcome row never changes while it is active,
    /// and kyc-info reads it on every request.
    parsed_outcomes: std::sync::Mutex<std::collections::HashMap<i64, OutcomeRow>>,
}

/// Parsed outcomes kept at most; the cache starts over beyond.
const PARSED_OUTCOMES: usize = 4096;

impl SqliteKycStore {
    pub fn new(db: Arc<Database>) -> SqliteKycStore {
        SqliteKycStore {
            db,
            parsed_outcomes: Default::default(),
        }
    }
}

/// A row whose hash column is not 32 bytes.
pub(super) fn hash_from_sql(value: Vec<u8>) -> Result<NormalizedPaytoHash, StoreError> {
    bytes::<32>(&value, "h_payto").map(NormalizedPaytoHash)
}

pub(super) fn corrupt(what: &str) -> StoreError {
    convert::corrupt("KYC row", what)
}

pub(super) fn serial_to_sql(serial: u64) -> Option<i64> {
    i64::try_from(serial).ok()
}

pub(super) fn bump_changes(conn: &Connection) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE talerbox_meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'kyc_changes'",
        [],
    )?;
    Ok(())
}

const ACCOUNT_COLUMNS: &str =
    "h_payto, normalized_payto, full_payto, access_token, account_pub, created";

/// A `kyc_accounts` row as stored, before validation.
type AccountTuple = (
    Vec<u8>,
    String,
    Option<String>,
    Vec<u8>,
    Option<Vec<u8>>,
    i64,
);

fn account_row(row: &Row<'_>) -> rusqlite::Result<AccountTuple> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn into_account(
    (h_payto, normalized_payto, full_payto, token, account_pub, created): AccountTuple,
) -> Result<KycAccount, StoreError> {
    let token: [u8; 32] = token.try_into().map_err(|_| corrupt("access_token"))?;
    let account_pub = match account_pub {
        None => None,
        Some(bytes) => Some(EddsaPublicKey(
            bytes.try_into().map_err(|_| corrupt("account_pub"))?,
        )),
    };
    Ok(KycAccount {
        h_payto: hash_from_sql(h_payto)?,
        normalized_payto,
        full_payto,
        access_token: AccessToken(token),
        account_pub,
        created: micros_from_sql(created)?,
    })
}

pub(super) const MEASURE_COLUMNS: &str =
    "serial, h_payto, start_time, jmeasures, display_priority, is_finished";

pub(super) fn measure_row(
    row: &Row<'_>,
) -> rusqlite::Result<(i64, Vec<u8>, i64, String, i64, bool)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

pub(super) fn into_measure(
    (serial, h_payto, start, jmeasures, priority, finished): (i64, Vec<u8>, i64, String, i64, bool),
) -> Result<MeasureRow, StoreError> {
    let measures: LegitimizationMeasures =
        serde_json::from_str(&jmeasures).map_err(|_| corrupt("jmeasures"))?;
    Ok(MeasureRow {
        serial: id_from_sql(serial)?,
        h_payto: hash_from_sql(h_payto)?,
        start_time: micros_from_sql(start)?,
        measures,
        display_priority: u32::try_from(priority).map_err(|_| corrupt("display_priority"))?,
        is_finished: finished,
    })
}

const PROCESS_COLUMNS: &str = "serial, h_payto, measure_serial, measure_index, provider, provider_user_id, \
     provider_legitimization_id, redirect_url, start_time, finished, error_code, error_message";

type ProcessTuple = (
    i64,
    Vec<u8>,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    bool,
    i64,
    Option<String>,
);

fn process_row(row: &Row<'_>) -> rusqlite::Result<ProcessTuple> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
    ))
}

fn into_process(t: ProcessTuple) -> Result<ProcessRow, StoreError> {
    Ok(ProcessRow {
        serial: id_from_sql(t.0)?,
        h_payto: hash_from_sql(t.1)?,
        measure_serial: id_from_sql(t.2)?,
        measure_index: u32::try_from(t.3).map_err(|_| corrupt("measure_index"))?,
        provider: t.4,
        provider_user_id: t.5,
        provider_legitimization_id: t.6,
        redirect_url: t.7,
        start_time: micros_from_sql(t.8)?,
        finished: t.9,
        error_code: u32::try_from(t.10).map_err(|_| corrupt("error_code"))?,
        error_message: t.11,
    })
}

pub(super) fn measure_by_serial(
    conn: &Connection,
    serial: u64,
) -> Result<Option<MeasureRow>, StoreError> {
    let Some(serial) = serial_to_sql(serial) else {
        return Ok(None);
    };
    let sql = format!("SELECT {MEASURE_COLUMNS} FROM legitimization_measures WHERE serial = ?1");
    let row = conn
        .prepare_cached(&sql)?
        .query_row([serial], measure_row)
        .optional()?;
    row.map(into_measure).transpose()
}

pub(super) fn open_measure_serial(
    conn: &Connection,
    h_payto: &NormalizedPaytoHash,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT serial FROM legitimization_measures WHERE h_payto = ?1 AND is_finished = 0",
        )?
        .query_row([&h_payto.0[..]], |r| r.get(0))
        .optional()?)
}

/// Finishes a measure set and its unfinished processes.
pub(super) fn finish_measure(conn: &Connection, serial: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE legitimization_measures SET is_finished = 1 WHERE serial = ?1",
        [serial],
    )?;
    conn.execute("UPDATE legitimization_processes SET finished = 1 WHERE measure_serial = ?1 AND finished = 0", [serial])?;
    Ok(())
}

pub(super) fn insert_measure(
    conn: &Connection,
    h_payto: &NormalizedPaytoHash,
    measures: &LegitimizationMeasures,
    display_priority: u32,
    now: Timestamp,
) -> Result<i64, StoreError> {
    if let Some(open) = open_measure_serial(conn, h_payto)? {
        finish_measure(conn, open)?;
    }
    let jmeasures =
        serde_json::to_string(measures).map_err(|e| StoreError::Internal(e.to_string()))?;
    conn.execute(
        "INSERT INTO legitimization_measures (h_payto, start_time, jmeasures, display_priority) VALUES (?1, ?2, ?3, ?4)",
        params![&h_payto.0[..], micros_to_sql(now)?, jmeasures, display_priority],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Inserts the account's new active outcome, deactivating the previous one.
/// Inserts a program's outcome as the account's active one; `to_investigate` stays set if
/// the replaced outcome had it.
pub(super) fn insert_outcome(
    conn: &Connection,
    h_payto: &NormalizedPaytoHash,
    outcome: &NewOutcome,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let sticky: bool = conn
        .prepare_cached(
            "SELECT to_investigate FROM legitimization_outcomes WHERE h_payto = ?1 AND is_active = 1",
        )?
        .query_row([&h_payto.0[..]], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    conn.execute(
        "UPDATE legitimization_outcomes SET is_active = 0 WHERE h_payto = ?1 AND is_active = 1",
        [&h_payto.0[..]],
    )?;
    let rules = serde_json::to_value(&outcome.new_rules)
        .map(|value| canonical_text_of(&value))
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    let properties = outcome.properties.as_ref().map(canonical_text_of);
    conn.execute(
        "INSERT INTO legitimization_outcomes \
         (h_payto, decision_time, expiration_time, jproperties, to_investigate, is_active, jnew_rules) \
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
        params![
            &h_payto.0[..],
            micros_to_sql(now)?,
            expiry_to_sql(outcome.expiration_time)?,
            properties,
            outcome.to_investigate || sticky,
            rules
        ],
    )?;
    let serial = conn.last_insert_rowid();
    insert_events(conn, &outcome.events, now, serial)?;
    Ok(serial)
}

/// Stores a program's outcome with its `kyc.program_outcome` entry.
fn insert_journaled_outcome(
    conn: &Connection,
    h_payto: &NormalizedPaytoHash,
    outcome: &NewOutcome,
    now: Timestamp,
) -> Result<(), StoreError> {
    let decision = id_from_sql(insert_outcome(conn, h_payto, outcome, now)?)?;
    journal::append(
        conn,
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
    conn: &Connection,
    events: &[String],
    at: Timestamp,
    outcome_serial: i64,
) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO kyc_events (event_type, event_timestamp, outcome_serial) VALUES (?1, ?2, ?3)",
    )?;
    for event in events {
        statement.execute(params![event, micros_to_sql(at)?, outcome_serial])?;
    }
    Ok(())
}

/// Inserts an account unless it exists, with the next account serial.
pub(super) fn insert_account(
    conn: &Connection,
    h_payto: &NormalizedPaytoHash,
    normalized_payto: &str,
    full_payto: Option<&str>,
    token: &AccessToken,
    account_pub: Option<EddsaPublicKey>,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO kyc_accounts (h_payto, normalized_payto, full_payto, access_token, account_pub, created, serial) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT COALESCE(MAX(serial), 0) + 1 FROM kyc_accounts)) \
         ON CONFLICT (h_payto) DO NOTHING",
    )?
    .execute(params![
        &h_payto.0[..],
        normalized_payto,
        full_payto,
        &token.0[..],
        account_pub.map(|k| k.0.to_vec()),
        micros_to_sql(now)?
    ])?;
    Ok(())
}

const OUTCOME_COLUMNS: &str = "serial, h_payto, decision_time, expiration_time, jproperties, to_investigate, is_active, jnew_rules";

type OutcomeTuple = (
    i64,
    Vec<u8>,
    i64,
    Option<i64>,
    Option<String>,
    bool,
    bool,
    Option<String>,
);

/// The [`OUTCOME_COLUMNS`] of a row, starting at column `first`.
pub(super) fn outcome_columns(row: &Row<'_>, first: usize) -> rusqlite::Result<OutcomeTuple> {
    Ok((
        row.get(first)?,
        row.get(first + 1)?,
        row.get(first + 2)?,
        row.get(first + 3)?,
        row.get(first + 4)?,
        row.get(first + 5)?,
        row.get(first + 6)?,
        row.get(first + 7)?,
    ))
}

pub(super) fn into_outcome(
    (serial, h_payto, decided, expires, properties, to_investigate, is_active, rules): OutcomeTuple,
) -> Result<OutcomeRow, StoreError> {
    let properties = properties
        .map(|p| serde_json::from_str(&p))
        .transpose()
        .map_err(|_| corrupt("jproperties"))?;
    let new_rules: Option<LegitimizationRuleSet> = rules
        .map(|r| serde_json::from_str(&r))
        .transpose()
        .map_err(|_| corrupt("jnew_rules"))?;
    Ok(OutcomeRow {
        serial: id_from_sql(serial)?,
        h_payto: hash_from_sql(h_payto)?,
        decision_time: micros_from_sql(decided)?,
        expiration_time: expiry_from_sql(expires)?,
        properties,
        to_investigate,
        is_active,
        new_rules,
    })
}

/// The account's active outcome row as stored, before parsing.
fn active_outcome_row(
    conn: &Connection,
    h_payto: &NormalizedPaytoHash,
) -> Result<Option<OutcomeTuple>, StoreError> {
    let sql = format!(
        "SELECT {OUTCOME_COLUMNS} FROM legitimization_outcomes WHERE h_payto = ?1 AND is_active = 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([&h_payto.0[..]], |row| outcome_columns(row, 0))
        .optional()?)
}

pub(super) fn active_outcome(
    conn: &Connection,
    h_payto: &NormalizedPaytoHash,
) -> Result<Option<OutcomeRow>, StoreError> {
    active_outcome_row(conn, h_payto)?
        .map(into_outcome)
        .transpose()
}

/// The account's newest process with `provider` (only unfinished ones if `only_open`).
fn newest_process(
    conn: &Connection,
    h_payto: &NormalizedPaytoHash,
    provider: &str,
    only_open: bool,
) -> Result<Option<ProcessRow>, StoreError> {
    let sql = format!(
        "SELECT {PROCESS_COLUMNS} FROM legitimization_processes \
         WHERE h_payto = ?1 AND provider = ?2 AND (?3 = 0 OR finished = 0) \
         ORDER BY serial DESC LIMIT 1"
    );
    let row = conn
        .prepare_cached(&sql)?
        .query_row(params![&h_payto.0[..], provider, only_open], process_row)
        .optional()?;
    row.map(into_process).transpose()
}

fn measure_is_open(conn: &Connection, serial: u64) -> Result<bool, StoreError> {
    Ok(measure_by_serial(conn, serial)?.is_some_and(|m| !m.is_finished))
}

impl KycStore for SqliteKycStore {
    fn activate_measures(&self, request: ActivateMeasures) -> Result<Activated, StoreError> {
        self.db.write(move |conn| {
            insert_account(
                conn,
                &request.h_payto,
                &request.normalized_payto,
                request.full_payto.as_deref(),
                &request.new_token,
                request.account_pub,
                request.now,
            )?;
            let token: Vec<u8> = conn.query_row(
                "SELECT access_token FROM kyc_accounts WHERE h_payto = ?1",
                [&request.h_payto.0[..]],
                |r| r.get(0),
            )?;
            let token: [u8; 32] = token.try_into().map_err(|_| corrupt("access_token"))?;
            let open = match open_measure_serial(conn, &request.h_payto)? {
                Some(serial) => measure_by_serial(conn, id_from_sql(serial)?)?,
                None => None,
            };
            let serial = match open.filter(|m| m.measures == request.measures) {
                Some(identical) => identical.serial,
                None => {
                    let serial = insert_measure(
                        conn,
                        &request.h_payto,
                        &request.measures,
                        request.display_priority,
                        request.now,
                    )?;
                    journal::append(
                        conn,
                        &events::requirement_opened(
                            request.h_payto,
                            &request.measures,
                            request.trigger,
                        ),
                    )?;
                    id_from_sql(serial)?
                }
            };
            bump_changes(conn)?;
            Ok(Activated {
                access_token: AccessToken(token),
                measure_serial: serial,
            })
        })
    }

    fn record_account_key(&self, request: RecordAccountKey) -> Result<KeyRecorded, StoreError> {
        self.db.write(move |conn| {
            let select = format!("SELECT {ACCOUNT_COLUMNS} FROM kyc_accounts WHERE h_payto = ?1");
            let before = conn
                .prepare_cached(&select)?
                .query_row([&request.h_payto.0[..]], account_row)
                .optional()?
                .map(into_account)
                .transpose()?;
            insert_account(
                conn,
                &request.h_payto,
                &request.normalized_payto,
                request.full_payto.as_deref(),
                &request.new_token,
                Some(request.account_pub),
                request.now,
            )?;
            conn.prepare_cached("UPDATE kyc_accounts SET account_pub = ?2 WHERE h_payto = ?1")?
                .execute(params![&request.h_payto.0[..], &request.account_pub.0[..]])?;
            let account = conn
                .prepare_cached(&select)?
                .query_row([&request.h_payto.0[..]], account_row)?;
            bump_changes(conn)?;
            Ok(KeyRecorded {
                account: into_account(account)?,
                previous: before.and_then(|a| a.account_pub),
            })
        })
    }

    fn account_by_token(&self, token: &AccessToken) -> Result<Option<KycAccount>, StoreError> {
        self.db.read(|conn| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM kyc_accounts WHERE access_token = ?1");
            let row = conn
                .prepare_cached(&sql)?
                .query_row([&token.0[..]], account_row)
                .optional()?;
            row.map(into_account).transpose()
        })
    }

    fn account(&self, h_payto: &NormalizedPaytoHash) -> Result<Option<KycAccount>, StoreError> {
        self.db.read(|conn| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM kyc_accounts WHERE h_payto = ?1");
            let row = conn
                .prepare_cached(&sql)?
                .query_row([&h_payto.0[..]], account_row)
                .optional()?;
            row.map(into_account).transpose()
        })
    }

    fn open_measure(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<MeasureRow>, StoreError> {
        self.db.read(|conn| {
            let sql = format!("SELECT {MEASURE_COLUMNS} FROM legitimization_measures WHERE h_payto = ?1 AND is_finished = 0");
            let row = conn.prepare_cached(&sql)?.query_row([&h_payto.0[..]], measure_row).optional()?;
            row.map(into_measure).transpose()
        })
    }

    fn measure(&self, serial: u64) -> Result<Option<MeasureRow>, StoreError> {
        self.db.read(|conn| measure_by_serial(conn, serial))
    }

    fn active_outcome(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<OutcomeRow>, StoreError> {
        let Some(row) = self.db.read(|conn| active_outcome_row(conn, h_payto))? else {
            return Ok(None);
        };
        let serial = row.0;
        let mut cache = self
            .parsed_outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(parsed) = cache.get(&serial) {
            return Ok(Some(parsed.clone()));
        }
        let parsed = into_outcome(row)?;
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
        let provider = provider.to_owned();
        self.db.write(move |conn| {
            let Some(measure) = measure_by_serial(conn, measure_serial)? else { return Ok(BeginProcess::MeasureFinished) };
            if measure.is_finished {
                return Ok(BeginProcess::MeasureFinished);
            }
            let serial = serial_to_sql(measure_serial).ok_or_else(|| corrupt("serial"))?;
            let existing: Option<(i64, bool, Option<String>)> = conn
                .prepare_cached("SELECT serial, finished, redirect_url FROM legitimization_processes WHERE measure_serial = ?1 AND measure_index = ?2")?
                .query_row(params![serial, index], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let process_serial = match existing {
                Some((_, false, Some(redirect_url))) => return Ok(BeginProcess::Existing { redirect_url }),
                Some((process, _, _)) => {
                    conn.execute(
                        "UPDATE legitimization_processes SET provider = ?2, start_time = ?3, provider_user_id = NULL, \
                         provider_legitimization_id = NULL, redirect_url = NULL, finished = 0, error_code = 0, \
                         error_message = NULL WHERE serial = ?1",
                        params![process, provider, micros_to_sql(now)?],
                    )?;
                    process
                }
                None => {
                    conn.execute(
                        "INSERT INTO legitimization_processes (h_payto, measure_serial, measure_index, provider, start_time) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![&measure.h_payto.0[..], serial, index, provider, micros_to_sql(now)?],
                    )?;
                    conn.last_insert_rowid()
                }
            };
            let process_serial = id_from_sql(process_serial)?;
            journal::append(
                conn,
                &events::process_started(measure.h_payto, measure_serial, &provider, process_serial),
            )?;
            Ok(BeginProcess::Started { process_serial })
        })
    }

    fn record_redirect(
        &self,
        process_serial: u64,
        redirect_url: &str,
    ) -> Result<String, StoreError> {
        let redirect_url = redirect_url.to_owned();
        self.db.write(move |conn| {
            let serial = serial_to_sql(process_serial).ok_or_else(|| corrupt("serial"))?;
            // The first start to get its URL wins; a concurrent one answers the same.
            conn.execute(
                "UPDATE legitimization_processes SET redirect_url = COALESCE(redirect_url, ?2), \
                 provider_legitimization_id = COALESCE(provider_legitimization_id, ?3) WHERE serial = ?1",
                params![serial, redirect_url, process_serial.to_string()],
            )?;
            let stored: Option<Option<String>> = conn
                .prepare_cached("SELECT redirect_url FROM legitimization_processes WHERE serial = ?1")?
                .query_row(params![serial], |r| r.get(0))
                .optional()?;
            Ok(stored.flatten().unwrap_or(redirect_url))
        })
    }

    fn fail_process(
        &self,
        process_serial: u64,
        code: u32,
        message: &str,
    ) -> Result<(), StoreError> {
        let message = message.to_owned();
        self.db.write(move |conn| {
            let serial = serial_to_sql(process_serial).ok_or_else(|| corrupt("serial"))?;
            conn.execute(
                "UPDATE legitimization_processes SET finished = 1, error_code = ?2, error_message = ?3 WHERE serial = ?1",
                params![serial, code, message],
            )?;
            bump_changes(conn)
        })
    }

    fn open_process(
        &self,
        h_payto: &NormalizedPaytoHash,
        provider: &str,
    ) -> Result<Option<ProcessRow>, StoreError> {
        self.db
            .read(|conn| newest_process(conn, h_payto, provider, true))
    }

    fn latest_process(
        &self,
        h_payto: &NormalizedPaytoHash,
        provider: &str,
    ) -> Result<Option<ProcessRow>, StoreError> {
        self.db
            .read(|conn| newest_process(conn, h_payto, provider, false))
    }

    fn finished_process(
        &self,
        measure_serial: u64,
        index: u32,
    ) -> Result<Option<FinishedProcess>, StoreError> {
        self.db.read(|conn| {
            let Some(serial) = serial_to_sql(measure_serial) else { return Ok(None) };
            let sql = format!(
                "SELECT {PROCESS_COLUMNS} FROM legitimization_processes \
                 WHERE measure_serial = ?1 AND measure_index = ?2 AND finished = 1 AND error_code = 0"
            );
            let row = conn.prepare_cached(&sql)?.query_row(params![serial, index], process_row).optional()?;
            let Some(process) = row.map(into_process).transpose()? else { return Ok(None) };
            let attributes: Option<Vec<u8>> = conn
                .prepare_cached("SELECT encrypted_attributes FROM kyc_attributes WHERE process_serial = ?1 ORDER BY serial DESC LIMIT 1")?
                .query_row([serial_to_sql(process.serial)], |r| r.get(0))
                .optional()?;
            Ok(Some(FinishedProcess { process, attributes }))
        })
    }

    fn complete(&self, completion: Completion) -> Result<CompleteOutcome, StoreError> {
        self.db.write(move |conn| {
            if !measure_is_open(conn, completion.measure_serial)? {
                return Ok(CompleteOutcome::AlreadyFinished);
            }
            let measure_serial = serial_to_sql(completion.measure_serial).ok_or_else(|| corrupt("serial"))?;
            let (process_serial, provider) = match &completion.process {
                CompletedProcess::Provider { process_serial, provider_user_id } => {
                    let serial = serial_to_sql(*process_serial).ok_or_else(|| corrupt("serial"))?;
                    let changed = conn.execute(
                        "UPDATE legitimization_processes SET finished = 1, provider_user_id = ?2 WHERE serial = ?1 AND finished = 0",
                        params![serial, provider_user_id],
                    )?;
                    if changed == 0 {
                        return Ok(CompleteOutcome::AlreadyFinished);
                    }
                    (serial, completion.attributes.provider_name.clone())
                }
                CompletedProcess::Form { measure_index } => {
                    conn.execute(
                        "INSERT INTO legitimization_processes (h_payto, measure_serial, measure_index, provider, start_time, finished) \
                         VALUES (?1, ?2, ?3, 'FORM', ?4, 1) \
                         ON CONFLICT (measure_serial, measure_index) DO UPDATE SET provider = 'FORM', finished = 1, error_code = 0, error_message = NULL",
                        params![&completion.h_payto.0[..], measure_serial, measure_index, micros_to_sql(completion.now)?],
                    )?;
                    let serial: i64 = conn.query_row(
                        "SELECT serial FROM legitimization_processes WHERE measure_serial = ?1 AND measure_index = ?2",
                        params![measure_serial, measure_index],
                        |r| r.get(0),
                    )?;
                    (serial, Some("FORM".to_owned()))
                }
            };
            let attributes = &completion.attributes;
            conn.execute(
                "INSERT INTO kyc_attributes (h_payto, process_serial, form_id, collection_time, expiration_time, \
                 encrypted_attributes, by_aml_officer, officer_pub, provider_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, NULL, ?7)",
                params![
                    &completion.h_payto.0[..],
                    process_serial,
                    attributes.form_id,
                    micros_to_sql(attributes.collection_time)?,
                    expiry_to_sql(attributes.expiration_time)?,
                    attributes.encrypted,
                    provider
                ],
            )?;
            let actor = match &completion.process {
                CompletedProcess::Form { .. } => Actor::form(attributes.form_id.as_deref().unwrap_or("")),
                CompletedProcess::Provider { .. } => Actor::provider(provider.as_deref().unwrap_or("")),
            };
            journal::append(
                conn,
                &events::attributes_stored(
                    completion.h_payto,
                    actor,
                    id_from_sql(conn.last_insert_rowid())?,
                    attributes.expiration_time,
                ),
            )?;
            if let Some((code, message)) = &completion.process_error {
                conn.execute(
                    "UPDATE legitimization_processes SET error_code = ?2, error_message = ?3 WHERE serial = ?1",
                    params![process_serial, code, message],
                )?;
            }
            if let Some(outcome) = &completion.outcome {
                insert_journaled_outcome(conn, &completion.h_payto, outcome, completion.now)?;
            }
            finish_measure(conn, measure_serial)?;
            if let Some(next) = &completion.next_measures {
                insert_measure(conn, &completion.h_payto, next, 0, completion.now)?;
                journal::append(
                    conn,
                    &events::requirement_opened(completion.h_payto, next, RequirementTrigger::Rule),
                )?;
            }
            bump_changes(conn)?;
            Ok(CompleteOutcome::Completed)
        })
    }

    fn settle(
        &self,
        h_payto: &NormalizedPaytoHash,
        measure_serial: u64,
        outcome: NewOutcome,
        now: Timestamp,
    ) -> Result<CompleteOutcome, StoreError> {
        let h_payto = *h_payto;
        self.db.write(move |conn| {
            if !measure_is_open(conn, measure_serial)? {
                return Ok(CompleteOutcome::AlreadyFinished);
            }
            insert_journaled_outcome(conn, &h_payto, &outcome, now)?;
            finish_measure(
                conn,
                serial_to_sql(measure_serial).ok_or_else(|| corrupt("serial"))?,
            )?;
            bump_changes(conn)?;
            Ok(CompleteOutcome::Completed)
        })
    }

    fn apply_decision(&self, decision: DecisionWrite) -> Result<DecisionOutcome, StoreError> {
        self.db
            .write(move |conn| kyc_decisions::apply(conn, &decision))
    }

    fn store_program_outcome(
        &self,
        h_payto: &NormalizedPaytoHash,
        replaces: Option<u64>,
        outcome: NewOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let h_payto = *h_payto;
        self.db.write(move |conn| {
            let active = active_outcome(conn, &h_payto)?.map(|o| o.serial);
            if active != replaces {
                return Ok(false);
            }
            insert_journaled_outcome(conn, &h_payto, &outcome, now)?;
            bump_changes(conn)?;
            Ok(true)
        })
    }

    fn newest_attributes(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT encrypted_attributes FROM kyc_attributes WHERE h_payto = ?1 ORDER BY serial DESC LIMIT 1",
                )?
                .query_row([&h_payto.0[..]], |r| r.get(0))
                .optional()?)
        })
    }

    fn aml_history(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Vec<AmlHistoryEntry>, StoreError> {
        self.db
            .read(|conn| kyc_decisions::aml_history(conn, h_payto))
    }

    fn kyc_history(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Vec<KycHistoryEntry>, StoreError> {
        self.db
            .read(|conn| kyc_decisions::kyc_history(conn, h_payto))
    }

    fn count_events(
        &self,
        name: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u64, StoreError> {
        self.db
            .read(|conn| kyc_decisions::count_events(conn, name, start, end))
    }

    fn list_measures(
        &self,
        listing: &MeasureListing,
        page: &crate::domain::aml::Page,
    ) -> Result<Vec<MeasureRow>, StoreError> {
        self.db
            .read(|conn| kyc_decisions::list_measures(conn, listing, page))
    }

    fn list_accounts(
        &self,
        filter: &AccountFilter,
        page: &crate::domain::aml::Page,
    ) -> Result<Vec<AccountSummary>, StoreError> {
        self.db
            .read(|conn| kyc_decisions::list_accounts(conn, filter, page))
    }

    fn change_counter(&self) -> Result<u64, StoreError> {
        self.db.read(|conn| {
            let value: String = conn
                .prepare_cached("SELECT value FROM talerbox_meta WHERE name = 'kyc_changes'")?
                .query_row([], |r| r.get(0))?;
            value.parse().map_err(|_| corrupt("kyc_changes"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::DbOptions;
    use crate::ports::kyc_conformance::kyc_store_conformance;

    fn temp_store() -> (tempfile::TempDir, SqliteKycStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("kyc.sqlite3"), &DbOptions::default()).unwrap();
        (dir, SqliteKycStore::new(Arc::new(db)))
    }

    kyc_store_conformance!(guarded: temp_store());
}

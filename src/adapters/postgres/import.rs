//! Moving an installation from its SQLite file into a fresh PostgreSQL database
//! (`talerbox db migrate-from-sqlite FILE`).
//!
//! The file is opened read-only and never migrated; it must be at this binary's schema
//! version. Every table is copied in one PostgreSQL transaction, parents before children,
//! with its ids as they are; the identity sequences continue where SQLite's AUTOINCREMENT
//! counters stood, so an id that was ever handed out (a deleted challenger client's, say) is
//! never handed out again. The compliance journal keeps its chain: it is copied row by row,
//! serials and hashes unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use postgres::GenericClient;
use postgres::types::ToSql;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::locks::{self, JOURNAL};
use super::{PgDatabase, PgError, Session, quoted};
use crate::ports::StoreError;

/// Every table this binary knows how to copy. A migration that adds a table must add it here
/// (and say whether it needs special treatment), or the import refuses to run.
const KNOWN_TABLES: &[&str] = &[
    "talerbox_meta",
    "bank_accounts",
    "iban_history",
    "bank_transactions",
    "bank_tokens",
    "tan_challenges",
    "challenger_clients",
    "challenger_validations",
    "challenger_grants",
    "aml_officers",
    "kyc_attributes",
    "legitimization_outcomes",
    "aml_history",
    "kyc_events",
    "kyc_accounts",
    "legitimization_measures",
    "legitimization_processes",
    "compliance_journal",
    "retention_holds",
];

/// The SQLite meta row that PostgreSQL keeps as the sequence of the same name.
const KYC_CHANGES: &str = "kyc_changes";

/// The journal's first entry, which opening an empty PostgreSQL database appends.
const JOURNAL_STARTED: &str = "journal.started";

/// Rows sent per statement (as one array per column).
const BATCH_ROWS: usize = 2_000;

/// What was copied: the rows of each table, in copy order, and the moved counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub schema_version: usize,
    pub tables: Vec<(String, u64)>,
    /// The KYC change counter as it stood in the file.
    pub kyc_changes: i64,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (table, rows) in &self.tables {
            writeln!(f, "{table}: {rows} rows")?;
        }
        write!(f, "kyc_changes: {}", self.kyc_changes)
    }
}

/// Why an import did not happen; nothing was written to the target in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {file}: {message}")]
    Source { file: String, message: String },
    #[error(
        "the SQLite database has schema version {found}, this binary writes version \
         {expected}: run this version of talerbox on it once first"
    )]
    SourceVersion { found: i64, expected: usize },
    #[error("the target database has schema version {found}, this binary writes {expected}")]
    TargetVersion { found: i64, expected: usize },
    #[error(
        "the target database is not empty (table {table} holds {rows} rows); the import only \
         fills a fresh database"
    )]
    TargetNotEmpty { table: String, rows: i64 },
    #[error("table {0} is not known to this version's importer")]
    UnknownTable(String),
    #[error("the two schemas differ: {0}")]
    Schema(String),
    #[error("table {table}: {source_rows} rows in SQLite but {copied} in PostgreSQL")]
    CountMismatch {
        table: String,
        source_rows: i64,
        copied: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies the installation in `file` into `target`, which must be empty (apart from the
/// journal's opening entry, which it replaces with the file's journal).
pub fn import_sqlite(file: &Path, target: &PgDatabase) -> Result<ImportReport, ImportError> {
    let source = Source::open(file)?;
    // One read transaction: every table is read at the same instant.
    let snapshot = source
        .conn
        .unchecked_transaction()
        .map_err(|e| source.error(e))?;
    let plan = source.plan()?;
    let mut refusal = None;
    let outcome = target.write(|s| match copy(s, &source, &plan) {
        Ok(report) => Ok(report),
        Err(Step::Db(e)) => Err(e),
        Err(Step::Refused(e)) => {
            refusal = Some(e);
            // Rolls back whatever this attempt wrote.
            Err(PgError::Store(StoreError::Internal(
                "import refused".into(),
            )))
        }
    });
    drop(snapshot);
    match (outcome, refusal) {
        (Ok(report), _) => Ok(report),
        (Err(_), Some(refusal)) => Err(refusal),
        (Err(e), None) => Err(ImportError::Store(e)),
    }
}

/// The SQLite file, read-only.
struct Source {
    conn: Connection,
    file: String,
}

/// What the file holds, in copy order.
struct Plan {
    schema_version: usize,
    /// Tables in an order where every table comes after those it references.
    tables: Vec<String>,
    /// AUTOINCREMENT counters by table.
    sequences: BTreeMap<String, i64>,
    kyc_changes: i64,
}

impl Source {
    fn open(file: &Path) -> Result<Source, ImportError> {
        let name = file.display().to_string();
        let conn = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| ImportError::Source {
            file: name.clone(),
            message: e.to_string(),
        })?;
        let source = Source { conn, file: name };
        source
            .conn
            .pragma_update(None, "query_only", true)
            .map_err(|e| source.error(e))?;
        Ok(source)
    }

    fn error(&self, e: rusqlite::Error) -> ImportError {
        ImportError::Source {
            file: self.file.clone(),
            message: e.to_string(),
        }
    }

    fn plan(&self) -> Result<Plan, ImportError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.error(e))?;
        let expected = crate::adapters::sqlite::latest_version();
        if usize::try_from(version) != Ok(expected) {
            return Err(ImportError::SourceVersion {
                found: version,
                expected,
            });
        }
        let names = self.strings(
            "SELECT name FROM sqlite_master WHERE type = ?1 AND name NOT LIKE 'sqlite_%'",
            "table",
        )?;
        if let Some(unknown) = names.iter().find(|n| !KNOWN_TABLES.contains(&n.as_str())) {
            return Err(ImportError::UnknownTable(unknown.clone()));
        }
        let mut references = BTreeMap::new();
        for name in &names {
            let parents = self.strings(
                "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)",
                name,
            )?;
            references.insert(name.clone(), parents);
        }
        let tables = parents_first(&references).map_err(ImportError::Schema)?;
        let mut sequences = BTreeMap::new();
        let mut statement = self
            .conn
            .prepare("SELECT name, seq FROM sqlite_sequence")
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.error(e))?;
        for row in rows {
            let (name, seq) = row.map_err(|e| self.error(e))?;
            sequences.insert(name, seq);
        }
        let kyc_changes: String = self
            .conn
            .query_row(
                "SELECT value FROM talerbox_meta WHERE name = ?1",
                [KYC_CHANGES],
                |r| r.get(0),
            )
            .map_err(|e| self.error(e))?;
        let kyc_changes = kyc_changes.parse().map_err(|_| ImportError::Source {
            file: self.file.clone(),
            message: format!("corrupt kyc_changes counter {kyc_changes:?}"),
        })?;
        Ok(Plan {
            schema_version: expected,
            tables,
            sequences,
            kyc_changes,
        })
    }

    /// The first column of `sql`'s rows, `sql` taking `param` as `?1`.
    fn strings(&self, sql: &str, param: &str) -> Result<Vec<String>, ImportError> {
        let mut statement = self.conn.prepare(sql).map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([param], |r| r.get(0))
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(|e| self.error(e))
    }

    /// Rows of `table` that are copied (the KYC change counter moves to its sequence).
    fn filter(table: &str) -> &'static str {
        if table == "talerbox_meta" {
            " WHERE name <> 'kyc_changes'"
        } else {
            ""
        }
    }
}

/// Orders tables so that each follows the tables it references (ties by name).
fn parents_first(references: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, String> {
    let mut placed: Vec<String> = Vec::new();
    let mut left: BTreeSet<&String> = references.keys().collect();
    while !left.is_empty() {
        let ready: Vec<&String> = left
            .iter()
            .copied()
            .filter(|table| {
                references[*table]
                    .iter()
                    .all(|parent| parent == *table || placed.contains(parent))
            })
            .collect();
        if ready.is_empty() {
            return Err(format!(
                "foreign keys form a cycle or name a missing table among {left:?}"
            ));
        }
        for table in ready {
            left.remove(table);
            placed.push(table.clone());
        }
    }
    Ok(placed)
}

/// A failure inside the transaction: the database's (maybe worth a retry) or a refusal.
enum Step {
    Db(PgError),
    Refused(ImportError),
}

impl From<postgres::Error> for Step {
    fn from(e: postgres::Error) -> Self {
        Step::Db(PgError::Db(e))
    }
}

impl From<ImportError> for Step {
    fn from(e: ImportError) -> Self {
        Step::Refused(e)
    }
}

/// A PostgreSQL column as the copy sees it.
struct TargetColumn {
    name: String,
    kind: Kind,
    /// The sequence behind an identity column.
    sequence: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Boolean,
    Text,
    Bytes,
}

impl Kind {
    fn of(data_type: &str) -> Option<Kind> {
        match data_type {
            "bigint" => Some(Kind::Integer),
            "boolean" => Some(Kind::Boolean),
            "text" => Some(Kind::Text),
            "bytea" => Some(Kind::Bytes),
            _ => None,
        }
    }

    fn array_type(self) -> &'static str {
        match self {
            Kind::Integer => "bigint[]",
            Kind::Boolean => "boolean[]",
            Kind::Text => "text[]",
            Kind::Bytes => "bytea[]",
        }
    }
}

/// One column of a batch, sent as one array parameter.
enum Values {
    Integer(Vec<Option<i64>>),
    Boolean(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Values {
    fn new(kind: Kind) -> Values {
        match kind {
            Kind::Integer => Values::Integer(Vec::new()),
            Kind::Boolean => Values::Boolean(Vec::new()),
            Kind::Text => Values::Text(Vec::new()),
            Kind::Bytes => Values::Bytes(Vec::new()),
        }
    }

    /// Appends a SQLite value, converting 0/1 to a boolean; `None` on a value of another type.
    fn push(&mut self, value: ValueRef<'_>) -> Option<()> {
        match (self, value) {
            (Values::Integer(v), ValueRef::Null) => v.push(None),
            (Values::Boolean(v), ValueRef::Null) => v.push(None),
            (Values::Text(v), ValueRef::Null) => v.push(None),
            (Values::Bytes(v), ValueRef::Null) => v.push(None),
            (Values::Integer(v), ValueRef::Integer(i)) => v.push(Some(i)),
            (Values::Boolean(v), ValueRef::Integer(0)) => v.push(Some(false)),
            (Values::Boolean(v), ValueRef::Integer(1)) => v.push(Some(true)),
            (Values::Text(v), ValueRef::Text(t)) => {
                v.push(Some(String::from_utf8(t.to_vec()).ok()?))
            }
            (Values::Bytes(v), ValueRef::Blob(b)) => v.push(Some(b.to_vec())),
            _ => return None,
        }
        Some(())
    }

    fn clear(&mut self) {
        match self {
            Values::Integer(v) => v.clear(),
            Values::Boolean(v) => v.clear(),
            Values::Text(v) => v.clear(),
            Values::Bytes(v) => v.clear(),
        }
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Values::Integer(v) => v,
            Values::Boolean(v) => v,
            Values::Text(v) => v,
            Values::Bytes(v) => v,
        }
    }
}

fn copy<C: GenericClient>(
    s: &mut Session<'_, C>,
    source: &Source,
    plan: &Plan,
) -> Result<ImportReport, Step> {
    // An import copies every table at once and may take longer than a port call may.
    s.batch("SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0")?;
    let found: i64 = s
        .query_one("SELECT version FROM talerbox_schema", &[])?
        .try_get(0)?;
    let expected = super::latest_version();
    if usize::try_from(found) != Ok(expected) {
        return Err(ImportError::TargetVersion { found, expected }.into());
    }
    let target_tables: BTreeSet<String> = super::tables(s)?.into_iter().collect();
    let source_tables: BTreeSet<String> = plan.tables.iter().cloned().collect();
    if target_tables != source_tables {
        return Err(ImportError::Schema(format!(
            "tables only in SQLite: {:?}, only in PostgreSQL: {:?}",
            source_tables.difference(&target_tables).collect::<Vec<_>>(),
            target_tables.difference(&source_tables).collect::<Vec<_>>()
        ))
        .into());
    }
    // No instance may write while the tables are checked and filled (the journal lock
    // first, as appenders take it before the table).
    locks::transaction_lock(s, JOURNAL)?;
    let all = plan
        .tables
        .iter()
        .map(|t| quoted(t))
        .collect::<Vec<_>>()
        .join(", ");
    s.batch(&format!("LOCK TABLE {all} IN EXCLUSIVE MODE"))?;
    ensure_empty(s, plan)?;

    let mut report = ImportReport {
        schema_version: plan.schema_version,
        tables: Vec::new(),
        kyc_changes: plan.kyc_changes,
    };
    for table in &plan.tables {
        let columns = target_columns(s, table)?;
        let rows = copy_table(s, source, table, &columns)?;
        let sql = format!("SELECT count(*) FROM {}", quoted(table));
        let source_rows: i64 = source
            .conn
            .query_row(&format!("{sql}{}", Source::filter(table)), [], |r| r.get(0))
            .map_err(|e| source.error(e))?;
        let copied = super::row_count(s, table)?;
        if copied != source_rows || i64::try_from(rows) != Ok(copied) {
            return Err(ImportError::CountMismatch {
                table: table.clone(),
                source_rows,
                copied,
            }
            .into());
        }
        for column in &columns {
            if let Some(sequence) = &column.sequence {
                continue_sequence(s, table, column, sequence, plan)?;
            }
        }
        report.tables.push((table.clone(), rows));
    }
    set_sequence(s, KYC_CHANGES, plan.kyc_changes)?;
    Ok(report)
}

/// Refuses a target holding any row, except the journal's opening entry of a freshly
/// opened database, which it removes: the copied journal brings its own first entry, and its
/// chain must start at serial 1.
fn ensure_empty<C: GenericClient>(s: &mut Session<'_, C>, plan: &Plan) -> Result<(), Step> {
    for table in &plan.tables {
        let rows = super::row_count(s, table)?;
        let bootstrap = table == "compliance_journal"
            && rows == 1
            && s.query_opt(
                "SELECT 1 FROM compliance_journal WHERE serial = 1 AND kind = $1",
                &[&JOURNAL_STARTED],
            )?
            .is_some();
        if rows > 0 && !bootstrap {
            return Err(ImportError::TargetNotEmpty {
                table: table.clone(),
                rows,
            }
            .into());
        }
    }
    // The journal's append-only trigger is switched off for this one deletion and on again
    // before the commit. ALTER TABLE is transactional and holds the table's lock until the
    // commit, so no other session ever sees the trigger off; the role that migrated the
    // schema owns the table and may do it (session_replication_role would need a superuser).
    s.batch(
        "ALTER TABLE compliance_journal DISABLE TRIGGER compliance_journal_no_update;
         DELETE FROM compliance_journal;
         ALTER TABLE compliance_journal ENABLE TRIGGER compliance_journal_no_update",
    )?;
    Ok(())
}

fn target_columns<C: GenericClient>(
    s: &mut Session<'_, C>,
    table: &str,
) -> Result<Vec<TargetColumn>, Step> {
    let rows = s.query(
        "SELECT column_name::text, data_type::text,
                CASE WHEN is_identity = 'YES'
                     THEN pg_get_serial_sequence(quote_ident(table_name), column_name) END
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1
         ORDER BY ordinal_position",
        &[&table],
    )?;
    let mut columns = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get(0)?;
        let data_type: &str = row.try_get(1)?;
        let kind = Kind::of(data_type).ok_or_else(|| {
            ImportError::Schema(format!(
                "{table}.{name} has the unexpected type {data_type}"
            ))
        })?;
        columns.push(TargetColumn {
            name,
            kind,
            sequence: row.try_get(2)?,
        });
    }
    Ok(columns)
}

/// Streams the rows of `table` into PostgreSQL in batches; the number of rows copied.
fn copy_table<C: GenericClient>(
    s: &mut Session<'_, C>,
    source: &Source,
    table: &str,
    columns: &[TargetColumn],
) -> Result<u64, Step> {
    let names = columns
        .iter()
        .map(|c| quoted(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let arrays = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 1, c.kind.array_type()))
        .collect::<Vec<_>>()
        .join(", ");
    // Explicit values for identity columns: the ids are the ones SQLite handed out.
    let overriding = if columns.iter().any(|c| c.sequence.is_some()) {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    let insert = format!(
        "INSERT INTO {} ({names}){overriding} SELECT * FROM unnest({arrays})",
        quoted(table)
    );
    // A column missing in SQLite fails here, naming it.
    let select = format!(
        "SELECT {names} FROM {}{}",
        quoted(table),
        Source::filter(table)
    );
    let mut statement = source.conn.prepare(&select).map_err(|e| source.error(e))?;
    let mut rows = statement.query([]).map_err(|e| source.error(e))?;
    let mut batch: Vec<Values> = columns.iter().map(|c| Values::new(c.kind)).collect();
    let mut pending = 0;
    let mut copied = 0u64;
    while let Some(row) = rows.next().map_err(|e| source.error(e))? {
        for (index, (values, column)) in batch.iter_mut().zip(columns).enumerate() {
            let value = row.get_ref(index).map_err(|e| source.error(e))?;
            values.push(value).ok_or_else(|| {
                ImportError::Schema(format!(
                    "{table}.{} holds a {:?} value that PostgreSQL cannot store as {}",
                    column.name,
                    value.data_type(),
                    column.kind.array_type().trim_end_matches("[]")
                ))
            })?;
        }
        pending += 1;
        if pending == BATCH_ROWS {
            copied += flush(s, &insert, &mut batch)?;
            pending = 0;
        }
    }
    if pending > 0 {
        copied += flush(s, &insert, &mut batch)?;
    }
    Ok(copied)
}

fn flush<C: GenericClient>(
    s: &mut Session<'_, C>,
    insert: &str,
    batch: &mut [Values],
) -> Result<u64, Step> {
    let params: Vec<&(dyn ToSql + Sync)> = batch.iter().map(Values::param).collect();
    let inserted = s.execute(insert, &params)?;
    batch.iter_mut().for_each(Values::clear);
    Ok(inserted)
}

/// Continues an identity column after the largest id SQLite ever handed out: its
/// AUTOINCREMENT counter, which deleted rows do not lower (or the largest copied id, should
/// the counter be behind it).
fn continue_sequence<C: GenericClient>(
    s: &mut Session<'_, C>,
    table: &str,
    column: &TargetColumn,
    sequence: &str,
    plan: &Plan,
) -> Result<(), Step> {
    let largest: Option<i64> = s
        .query_one(
            &format!(
                "SELECT max({}) FROM {}",
                quoted(&column.name),
                quoted(table)
            ),
            &[],
        )?
        .try_get(0)?;
    let counter = plan.sequences.get(table).copied().unwrap_or(0);
    set_sequence(s, sequence, counter.max(largest.unwrap_or(0)))
}

/// Makes `sequence` hand out `last + 1` next (1 when nothing was handed out).
fn set_sequence<C: GenericClient>(
    s: &mut Session<'_, C>,
    sequence: &str,
    last: i64,
) -> Result<(), Step> {
    s.execute(
        "SELECT setval($1::text::regclass, $2, $3)",
        &[&sequence, &last.max(1), &(last >= 1)],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;

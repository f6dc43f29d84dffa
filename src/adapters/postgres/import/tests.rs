use std::path::Path;
use std::sync::Arc;

use rusqlite::types::ValueRef;

use super::*;
use crate::adapters::postgres::journal::PgJournal;
use crate::adapters::postgres::testing;
use crate::adapters::sqlite::{
    Database, DbOptions, SqliteAccountStore, SqliteAmlStore, SqliteChallengeStore, SqliteJournal,
    SqliteKycStore, SqliteTanStore,
};
use crate::domain::accounts::{AccountAddress, ContactData, Scope, TokenRecord, Username};
use crate::domain::aml::OfficerChange;
use crate::domain::challenges::{IssuedCode, NewGrant, OAuthBinding, Validation};
use crate::domain::evidence::{Actor, ChainVerifier, JournalKind, NewJournalEntry};
use crate::domain::kyc::LegitimizationRuleSet;
use crate::domain::kyc::{AccessToken, LegitimizationMeasures, MeasureInformation};
use crate::domain::primitives::{
    Amount, EddsaPrivateKey, EddsaPublicKey, EddsaSignature, NormalizedPaytoHash, Timestamp,
};
use crate::domain::tan::{
    BodyKey, CanonicalBody, Challenge, Factor, Operation, RequestBinding, Role, TanSettings,
};
use crate::ports::accounts::{AccountStore, AddressChoice, CreateOutcome, NewAccount};
use crate::ports::aml::OfficerStore;
use crate::ports::challenges::{ChallengeStore, UpdateOutcome};
use crate::ports::journal::Journal;
use crate::ports::kyc::{
    ActivateMeasures, BeginProcess, CompletedProcess, Completion, DecisionOutcome, DecisionWrite,
    KycStore, NewAttributes, NewOutcome,
};
use crate::ports::random::SeededRandom;
use crate::ports::retention::RetentionStore;
use crate::ports::tan::TanStore;

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_seconds(seconds).unwrap()
}

fn kudos(text: &str) -> Amount {
    format!("KUDOS:{text}").parse().unwrap()
}

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

const JOURNAL_KEY: [u8; 32] = [7; 32];

fn new_account(name: &str) -> NewAccount {
    NewAccount {
        username: user(name),
        password_hash: format!("hash-of-{name}"),
        name: format!("Name of {name}"),
        is_public: name == "alice",
        is_taler_exchange: false,
        contact: ContactData {
            email: Some(format!("{name}@example.com")),
            phone: None,
        },
        cashout_payto: None,
        address: AddressChoice::Fixed(AccountAddress::XTalerBank(user(name))),
        debit_threshold: kudos("1000"),
        min_cashout: None,
        tan_channels: Vec::new(),
        created_at: at(1_700_000_000),
        bonus: None,
    }
}

fn measures(check: &str) -> LegitimizationMeasures {
    LegitimizationMeasures {
        measures: vec![MeasureInformation {
            check_name: check.to_owned(),
            prog_name: "accept".into(),
            context: Some(serde_json::json!({"why": "test"})),
            rule_name: None,
            operation_type: None,
        }],
        is_and_combinator: false,
        verboten: false,
    }
}

/// An installation with a row in every table, written through the SQLite stores; answers
/// the id of the deleted challenger client.
fn populate(db: &Arc<Database>) -> i64 {
    // Bank: an admin paying a bonus (a transaction), an IBAN account, a token, a TAN challenge.
    let accounts = SqliteAccountStore::new(Arc::clone(db));
    let created = |new: NewAccount| match accounts.create_account(new).unwrap() {
        CreateOutcome::Created(account) => account,
        other => panic!("{other:?}"),
    };
    created(new_account("admin"));
    let alice = created(NewAccount {
        bonus: Some(kudos("10.5")),
        ..new_account("alice")
    });
    created(NewAccount {
        address: AddressChoice::IbanCandidates(vec!["DE89370400440532013000".parse().unwrap()]),
        ..new_account("bob")
    });
    assert!(
        accounts
            .insert_token(&TokenRecord {
                token_hash: [1; 32],
                username: user("alice"),
                scope: Scope::Readwrite,
                refreshable: true,
                created_at: at(1_700_000_001),
                expires_at: Timestamp::never(),
                description: Some("laptop".into()),
            })
            .unwrap()
    );
    let binding = RequestBinding {
        account_id: alice.row_id,
        operation: Operation::AccountReconfig,
        body: CanonicalBody::of_json(&serde_json::json!({"name": "A"})),
    };
    let challenge = Challenge::new(
        &SeededRandom::new(1),
        &BodyKey::new([3; 32]),
        &binding,
        Role::Auth,
        &Factor {
            channel: crate::domain::accounts::TanChannel::Sms,
            address: "+41791234567".into(),
        },
        &TanSettings::default(),
        at(1_700_000_002),
    );
    SqliteTanStore::new(Arc::clone(db))
        .create(&[challenge])
        .unwrap();

    // Challenger: a client with a solved validation and its grant, and a deleted client.
    let challenger = SqliteChallengeStore::new(Arc::clone(db), "challenger");
    let client = challenger
        .add_client("https://exchange.example/cb", [2; 32])
        .unwrap();
    let deleted = challenger
        .add_client("https://gone.example/", [3; 32])
        .unwrap();
    let fresh = Validation {
        nonce: [4; 32],
        client_id: client.id,
        version: 0,
        created_at: at(1_700_000_000),
        expires_at: at(1_700_086_400),
        fix_address: true,
        address: None,
        changes_left: 3,
        pin: None,
        pin_transmissions_left: 3,
        auth_attempts_left: 3,
        last_tx_time: None,
        retransmission_time: Timestamp::EPOCH,
        oauth: OAuthBinding::default(),
        solved_at: None,
        code: None,
    };
    assert!(challenger.create_validation(&fresh).unwrap());
    let address = std::collections::BTreeMap::from([(
        "CONTACT_EMAIL".to_owned(),
        "a@example.com".to_owned(),
    )]);
    let solved = Validation {
        version: 1,
        address: Some(address.clone()),
        solved_at: Some(at(1_700_000_100)),
        code: Some(IssuedCode {
            hash: [5; 32],
            expires_at: at(1_700_000_700),
            used: true,
        }),
        ..fresh.clone()
    };
    let grant = NewGrant {
        token_hash: [6; 32],
        code_hash: [5; 32],
        address,
        address_type: "email".into(),
        address_expires: Timestamp::never(),
        token_expires: at(1_700_100_000),
    };
    assert!(matches!(
        challenger
            .update_validation(0, &solved, Some(&grant))
            .unwrap(),
        UpdateOutcome::Updated { grant_id: Some(_) }
    ));
    assert!(challenger.delete_client(deleted.id).unwrap());

    // KYC: an account whose form was completed, a decision by an officer, an open measure.
    let h_payto = NormalizedPaytoHash([8; 32]);
    let kyc = SqliteKycStore::new(Arc::clone(db));
    let activate = |check: &str, now: u64| {
        kyc.activate_measures(ActivateMeasures {
            h_payto,
            normalized_payto: "payto://iban/DE89370400440532013000".into(),
            full_payto: Some("payto://iban/DE89370400440532013000?receiver-name=Bob".into()),
            new_token: AccessToken([9; 32]),
            account_pub: Some(EddsaPublicKey([10; 32])),
            measures: measures(check),
            display_priority: 1,
            trigger: crate::domain::evidence::RequirementTrigger::Rule,
            now: at(now),
        })
        .unwrap()
        .measure_serial
    };
    let measure = activate("form", 1_700_001_000);
    let BeginProcess::Started { process_serial } = kyc
        .begin_process(measure, 0, "challenger", at(1_700_001_001))
        .unwrap()
    else {
        panic!("not started")
    };
    kyc.record_redirect(process_serial, "https://challenger.example/authorize")
        .unwrap();
    let rules = LegitimizationRuleSet {
        expiration_time: at(1_800_000_000),
        successor_measure: None,
        rules: Vec::new(),
        custom_measures: Default::default(),
    };
    kyc.complete(Completion {
        h_payto,
        measure_serial: measure,
        process: CompletedProcess::Provider {
            process_serial,
            provider_user_id: "42".into(),
        },
        attributes: NewAttributes {
            form_id: Some("form".into()),
            collection_time: at(1_700_001_002),
            expiration_time: Timestamp::never(),
            encrypted: b"sealed attributes".to_vec(),
            provider_name: Some("challenger".into()),
        },
        outcome: Some(NewOutcome {
            program: "accept".into(),
            expiration_time: at(1_800_000_000),
            properties: Some(serde_json::json!({"checked": true})),
            to_investigate: true,
            new_rules: rules,
            events: vec!["checked".into()],
        }),
        next_measures: None,
        process_error: None,
        now: at(1_700_001_002),
    })
    .unwrap();
    let officer = OfficerChange {
        officer_pub: EddsaPublicKey([11; 32]),
        name: "Olivia".into(),
        is_active: true,
        read_only: false,
        change_date: at(1_700_000_000),
        master_sig: Some(EddsaSignature([12; 64])),
    };
    SqliteAmlStore::new(Arc::clone(db))
        .upsert_officer(&officer)
        .unwrap();
    let decided = kyc
        .apply_decision(DecisionWrite {
            h_payto,
            account: None,
            decision_time: at(1_700_002_000),
            expiration_time: at(1_800_000_000),
            new_rules: r#"{"expiration_time":{"t_s":1800000000},"rules":[]}"#.into(),
            properties: Some(r#"{"pep":false}"#.into()),
            new_measures: None,
            to_investigate: false,
            justification: "documents checked".into(),
            officer_pub: officer.officer_pub,
            officer_sig: EddsaSignature([13; 64]),
            open_measures: None,
            attributes: None,
            events: vec!["cleared".into()],
        })
        .unwrap();
    assert!(
        matches!(decided, DecisionOutcome::Applied { .. }),
        "{decided:?}"
    );
    activate("email", 1_700_003_000);

    // Evidence: a legal hold and a signed checkpoint.
    assert!(
        db.set_hold(h_payto, Some("court order".into()), at(1_700_004_000))
            .unwrap()
    );
    let journal = SqliteJournal::new(Arc::clone(db));
    journal
        .append(&NewJournalEntry::new(
            JournalKind::AmlAttributesRead,
            Actor::operator(),
            Some(h_payto),
            &serde_json::json!({"rows": 1}),
        ))
        .unwrap();
    journal
        .checkpoint(&EddsaPrivateKey::from_seed(JOURNAL_KEY))
        .unwrap()
        .unwrap();
    db.set_meta("attribute_key_fingerprint", "abc").unwrap();
    deleted.id
}

/// A populated installation in a closed file.
fn installation(dir: &Path) -> (std::path::PathBuf, i64) {
    let path = dir.join("talerbox.sqlite3");
    let db = Arc::new(Database::open(&path, &DbOptions::default()).unwrap());
    let deleted = populate(&db);
    drop(db);
    (path, deleted)
}

/// A column value, alike in both databases (booleans as 0/1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Cell {
    Null,
    Integer(i64),
    Text(String),
    Bytes(Vec<u8>),
}

fn sqlite_rows(conn: &Connection, table: &str, columns: &[TargetColumn]) -> Vec<Vec<Cell>> {
    let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    let sql = format!("SELECT {} FROM {}", names.join(", "), quoted(table));
    let mut statement = conn.prepare(&sql).unwrap();
    let mut rows = statement.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        out.push(
            (0..columns.len())
                .map(|i| match row.get_ref(i).unwrap() {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Integer(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8(t.to_vec()).unwrap()),
                    ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
                    ValueRef::Real(r) => panic!("REAL {r} in {table}"),
                })
                .collect(),
        );
    }
    out.sort();
    out
}

fn postgres_rows(
    s: &mut Session<'_, postgres::Client>,
    table: &str,
    columns: &[TargetColumn],
) -> Vec<Vec<Cell>> {
    let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    let sql = format!("SELECT {} FROM {}", names.join(", "), quoted(table));
    let mut out: Vec<Vec<Cell>> = s
        .query(&sql, &[])
        .unwrap()
        .iter()
        .map(|row| {
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let cell = match c.kind {
                        Kind::Integer => row.get::<_, Option<i64>>(i).map(Cell::Integer),
                        Kind::Boolean => row
                            .get::<_, Option<bool>>(i)
                            .map(|b| Cell::Integer(i64::from(b))),
                        Kind::Text => row.get::<_, Option<String>>(i).map(Cell::Text),
                        Kind::Bytes => row.get::<_, Option<Vec<u8>>>(i).map(Cell::Bytes),
                    };
                    cell.unwrap_or(Cell::Null)
                })
                .collect()
        })
        .collect();
    out.sort();
    out
}

fn read_only(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn user_version(path: &Path) -> i64 {
    read_only(path)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn a_populated_installation_moves_row_for_row() {
    let Some((schema, target)) = testing::database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (path, deleted_client) = installation(dir.path());
    let report = import_sqlite(&path, &target).unwrap();

    let source = read_only(&path);
    let mut conn = schema.connect();
    let mut s = conn.session();
    let mut tables: Vec<&str> = report.tables.iter().map(|(t, _)| t.as_str()).collect();
    tables.sort_unstable();
    let mut known = KNOWN_TABLES.to_vec();
    known.sort_unstable();
    assert_eq!(tables, known, "every table is copied");
    for (table, rows) in &report.tables {
        let columns = target_columns(&mut s, table).map_err(|_| table).unwrap();
        let mut expected = sqlite_rows(&source, table, &columns);
        if table == "talerbox_meta" {
            expected.retain(|row| row[0] != Cell::Text(KYC_CHANGES.into()));
        }
        assert!(!expected.is_empty(), "the installation fills {table}");
        assert_eq!(expected.len() as u64, *rows, "{table}");
        assert_eq!(postgres_rows(&mut s, table, &columns), expected, "{table}");
    }

    // Ids continue after every id SQLite handed out, the deleted client's too.
    let next: i64 = s
        .query_one(
            "INSERT INTO challenger_clients (instance, redirect_uri, secret_hash)
             VALUES ('challenger', 'https://new.example/', $1) RETURNING id",
            &[&vec![0u8; 32]],
        )
        .unwrap()
        .get(0);
    assert_eq!(next, deleted_client + 1);
    let counter: String = source
        .query_row(
            "SELECT value FROM talerbox_meta WHERE name = 'kyc_changes'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let moved: i64 = s
        .query_one("SELECT last_value FROM kyc_changes", &[])
        .unwrap()
        .get(0);
    assert!(report.kyc_changes > 0);
    assert_eq!(moved.to_string(), counter);
    assert_eq!(report.kyc_changes, moved);

    // The copied journal verifies on PostgreSQL, checkpoint included.
    let key = EddsaPrivateKey::from_seed(JOURNAL_KEY);
    let public = key.public_key();
    let mut verifier = ChainVerifier::from_start(&public);
    let mut failure = None;
    let journal = PgJournal::new(Arc::clone(&target));
    journal
        .scan(1, &mut |entry| {
            failure = verifier.push(&entry).err();
            failure.is_none()
        })
        .unwrap();
    assert_eq!(failure, None);
    let copied = report
        .tables
        .iter()
        .find(|(t, _)| t == "compliance_journal")
        .unwrap()
        .1;
    assert_eq!(verifier.finish().entries, copied);
    // ...and goes on from where it stood.
    let appended = journal
        .append(&NewJournalEntry::new(
            JournalKind::RetentionHold,
            Actor::operator(),
            None,
            &serde_json::json!({}),
        ))
        .unwrap();
    assert_eq!(appended, copied + 1);

    // The file was only read.
    assert_eq!(
        user_version(&path),
        crate::adapters::sqlite::latest_version() as i64
    );
    // A second import finds the target filled.
    assert!(matches!(
        import_sqlite(&path, &target),
        Err(ImportError::TargetNotEmpty { .. })
    ));
}

#[test]
fn a_non_empty_target_is_refused_and_left_as_it_was() {
    let Some((schema, target)) = testing::database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = installation(dir.path());
    target
        .set_meta_journaled("registered", "yes", None)
        .unwrap();
    let error = import_sqlite(&path, &target).unwrap_err();
    assert!(
        matches!(&error, ImportError::TargetNotEmpty { table, rows: 1 } if table == "talerbox_meta"),
        "{error}"
    );
    let mut conn = schema.connect();
    let mut s = conn.session();
    let kinds: Vec<String> = s
        .query("SELECT kind FROM compliance_journal", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, [JOURNAL_STARTED]);
    let accounts: i64 = s
        .query_one("SELECT count(*) FROM bank_accounts", &[])
        .unwrap()
        .get(0);
    assert_eq!(accounts, 0);

    // A journal that went on past its opening entry counts as data too.
    let Some((_schema, target)) = testing::database() else {
        return;
    };
    PgJournal::new(Arc::clone(&target))
        .append(&NewJournalEntry::new(
            JournalKind::RetentionHold,
            Actor::operator(),
            None,
            &serde_json::json!({}),
        ))
        .unwrap();
    let error = import_sqlite(&path, &target).unwrap_err();
    assert!(
        matches!(&error, ImportError::TargetNotEmpty { table, rows: 2 } if table == "compliance_journal"),
        "{error}"
    );
}

#[test]
fn a_file_at_another_schema_version_is_refused_and_not_migrated() {
    let Some((_schema, target)) = testing::database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = installation(dir.path());
    let older = crate::adapters::sqlite::latest_version() as i64 - 1;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", older)
        .unwrap();
    let error = import_sqlite(&path, &target).unwrap_err();
    assert!(
        matches!(error, ImportError::SourceVersion { found, .. } if found == older),
        "{error}"
    );
    assert!(error.to_string().contains("run this version of talerbox"));
    assert_eq!(user_version(&path), older);
    let rows: i64 = target
        .read(|s| {
            Ok(s.query_one("SELECT count(*) FROM talerbox_meta", &[])?
                .try_get(0)?)
        })
        .unwrap();
    assert_eq!(rows, 0);

    let missing = import_sqlite(&dir.path().join("missing.sqlite3"), &target).unwrap_err();
    assert!(matches!(missing, ImportError::Source { .. }), "{missing}");
    assert!(!dir.path().join("missing.sqlite3").exists());
}

#[test]
fn a_table_unknown_to_the_importer_stops_it() {
    let Some((_schema, target)) = testing::database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = installation(dir.path());
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE future_table (x INTEGER)")
        .unwrap();
    let error = import_sqlite(&path, &target).unwrap_err();
    assert!(
        matches!(&error, ImportError::UnknownTable(t) if t == "future_table"),
        "{error}"
    );
}

#[test]
fn tables_come_after_the_tables_they_reference() {
    let references: BTreeMap<String, Vec<String>> = [
        ("grants", vec!["validations"]),
        ("validations", vec!["clients"]),
        ("clients", vec![]),
        ("tree", vec!["tree"]),
    ]
    .into_iter()
    .map(|(t, parents)| {
        (
            t.to_owned(),
            parents.into_iter().map(String::from).collect(),
        )
    })
    .collect();
    assert_eq!(
        parents_first(&references).unwrap(),
        ["clients", "tree", "validations", "grants"]
    );
    let cycle: BTreeMap<String, Vec<String>> = [
        ("a".to_owned(), vec!["b".to_owned()]),
        ("b".to_owned(), vec!["a".to_owned()]),
    ]
    .into_iter()
    .collect();
    assert!(parents_first(&cycle).is_err());
}

#[test]
fn values_convert_flags_and_refuse_other_types() {
    let mut flags = Values::new(Kind::Boolean);
    for value in [ValueRef::Integer(0), ValueRef::Integer(1), ValueRef::Null] {
        assert_eq!(flags.push(value), Some(()));
    }
    assert!(matches!(&flags, Values::Boolean(v) if v == &[Some(false), Some(true), None]));
    assert_eq!(flags.push(ValueRef::Integer(2)), None);
    assert_eq!(flags.push(ValueRef::Text(b"1")), None);
    let mut integers = Values::new(Kind::Integer);
    assert_eq!(integers.push(ValueRef::Integer(i64::MIN)), Some(()));
    assert_eq!(integers.push(ValueRef::Real(1.5)), None);
    assert_eq!(integers.push(ValueRef::Blob(b"1")), None);
    let mut texts = Values::new(Kind::Text);
    assert_eq!(texts.push(ValueRef::Text("Zoë".as_bytes())), Some(()));
    assert_eq!(texts.push(ValueRef::Text(&[0xff])), None);
    let mut bytes = Values::new(Kind::Bytes);
    assert_eq!(bytes.push(ValueRef::Blob(&[0, 1])), Some(()));
    assert_eq!(bytes.push(ValueRef::Text(b"ab")), None);
    bytes.clear();
    assert!(matches!(&bytes, Values::Bytes(v) if v.is_empty()));
}

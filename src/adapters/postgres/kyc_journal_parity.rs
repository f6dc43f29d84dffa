//! The same KYC writes leave the same journal entries on SQLite and on PostgreSQL.

use std::sync::Arc;

use super::PgKycStore;
use crate::adapters::postgres::{journal::PgJournal, testing};
use crate::adapters::sqlite::{Database, DbOptions, SqliteKycStore, journal::SqliteJournal};
use crate::domain::evidence::RequirementTrigger;
use crate::domain::kyc::{AccessToken, LegitimizationMeasures, LegitimizationRuleSet};
use crate::domain::primitives::canonical_json::canonical_text_of;
use crate::domain::primitives::{EddsaPublicKey, EddsaSignature, NormalizedPaytoHash, Timestamp};
use crate::ports::journal::{Journal, JournalQuery};
use crate::ports::kyc::{
    ActivateMeasures, BeginProcess, CompletedProcess, Completion, DecisionWrite, KycStore,
    NewAttributes, NewKycAccount, NewOutcome,
};

const ACCOUNT: NormalizedPaytoHash = NormalizedPaytoHash([5; 32]);

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_seconds(seconds).unwrap()
}

fn measures(check: &str) -> LegitimizationMeasures {
    serde_json::from_value(serde_json::json!({
        "measures": [{"check_name": check, "prog_name": "accept", "context": {}}],
        "is_and_combinator": false,
        "verboten": false,
    }))
    .unwrap()
}

fn rules() -> LegitimizationRuleSet {
    LegitimizationRuleSet {
        expiration_time: at(9_000),
        successor_measure: None,
        rules: Vec::new(),
        custom_measures: Default::default(),
    }
}

fn attributes() -> NewAttributes {
    NewAttributes {
        form_id: Some("form".into()),
        collection_time: at(2_000),
        expiration_time: Timestamp::never(),
        encrypted: b"sealed".to_vec(),
        provider_name: Some("challenger".into()),
    }
}

/// Every journaled KYC write once: activation, process start, completion with an
/// outcome and a next set, an officer decision with attributes and measures.
fn scenario(store: &dyn KycStore) {
    let activated = store
        .activate_measures(ActivateMeasures {
            h_payto: ACCOUNT,
            normalized_payto: "payto://x-taler-bank/localhost/five".into(),
            full_payto: None,
            new_token: AccessToken([1; 32]),
            account_pub: None,
            measures: measures("email"),
            display_priority: 0,
            trigger: RequirementTrigger::Rule,
            now: at(1_000),
        })
        .unwrap();
    let BeginProcess::Started { process_serial } = store
        .begin_process(activated.measure_serial, 0, "challenger", at(1_100))
        .unwrap()
    else {
        panic!("not started");
    };
    store
        .complete(Completion {
            h_payto: ACCOUNT,
            measure_serial: activated.measure_serial,
            process: CompletedProcess::Provider {
                process_serial,
                provider_user_id: "42".into(),
            },
            attributes: attributes(),
            outcome: Some(NewOutcome {
                program: "accept".into(),
                expiration_time: at(9_000),
                properties: Some(serde_json::json!({"checked": true})),
                to_investigate: false,
                new_rules: rules(),
                events: vec!["checked".into()],
            }),
            next_measures: Some(measures("address")),
            process_error: None,
            now: at(2_000),
        })
        .unwrap();
    store
        .apply_decision(DecisionWrite {
            h_payto: ACCOUNT,
            account: Some(NewKycAccount {
                normalized_payto: "payto://x-taler-bank/localhost/five".into(),
                full_payto: "payto://x-taler-bank/localhost/five?receiver-name=F".into(),
                new_token: AccessToken([2; 32]),
            }),
            decision_time: at(3_000),
            expiration_time: at(9_000),
            new_rules: canonical_text_of(&serde_json::to_value(rules()).unwrap()),
            properties: None,
            new_measures: None,
            to_investigate: true,
            justification: "checked by hand".into(),
            officer_pub: EddsaPublicKey([3; 32]),
            officer_sig: EddsaSignature([4; 64]),
            open_measures: Some(measures("interview")),
            attributes: Some(attributes()),
            events: vec!["decided".into()],
        })
        .unwrap();
}

/// The account's entries, oldest first, without their times and hashes.
fn entries(journal: &dyn Journal) -> Vec<(String, String, String)> {
    let query = JournalQuery {
        h_payto: Some(ACCOUNT),
        limit: 100,
        ..Default::default()
    };
    let mut entries: Vec<_> = journal
        .entries(&query)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.actor, e.details))
        .collect();
    entries.reverse();
    entries
}

#[test]
fn both_stores_journal_the_same_entries() {
    let Some((_schema, pg)) = testing::database() else {
        return;
    };
    scenario(&PgKycStore::new(Arc::clone(&pg)));
    let on_postgres = entries(&PgJournal::new(pg));

    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        Arc::new(Database::open(&dir.path().join("kyc.sqlite3"), &DbOptions::default()).unwrap());
    scenario(&SqliteKycStore::new(Arc::clone(&sqlite)));
    let on_sqlite = entries(&SqliteJournal::new(sqlite));

    let kinds: Vec<&str> = on_sqlite.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "kyc.requirement_opened",
            "kyc.process_started",
            "kyc.attributes_stored",
            "kyc.program_outcome",
            "kyc.requirement_opened",
            "kyc.requirement_opened",
            "kyc.attributes_stored",
            "aml.decision"
        ]
    );
    assert_eq!(on_postgres, on_sqlite);
}

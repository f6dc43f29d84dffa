//! The `KycStore` conformance suite, written once and run against every implementation
//! (`kyc_store_conformance!`). Each function takes a fresh, empty store.

use crate::domain::kyc::{
    AccessToken, LegitimizationMeasures, LegitimizationRuleSet, MeasureInformation,
};
use crate::domain::primitives::{NormalizedPaytoHash, Timestamp};

use super::kyc::{
    ActivateMeasures, BeginProcess, CompleteOutcome, CompletedProcess, Completion, KycStore,
    NewAttributes, NewOutcome, RecordAccountKey,
};

/// Expands to one `#[test]` per conformance function; `guarded:` keeps a fixture guard alive.
macro_rules! kyc_store_conformance {
    (guarded: $fixture:expr) => {
        $crate::ports::kyc_conformance::kyc_store_conformance!(@tests $fixture;
            activation_creates_the_account_once,
            identical_sets_are_reused_and_others_supersede,
            processes_start_idempotently_and_restart_after_failure,
            completion_stores_everything_at_once,
            completion_of_a_finished_set_changes_nothing,
            forms_complete_with_a_process_of_their_own,
            settling_replaces_the_active_outcome,
            open_process_is_the_newest_unfinished_one,
            the_change_counter_moves_with_every_change,
            account_keys_create_the_account_and_replace_the_key,
            concurrent_decisions_leave_one_active,
            concurrent_activations_open_one_set,
            decisions_are_checked_stored_and_listed,
            program_outcomes_replace_only_the_expected_one,
        );
    };
    (@tests $fixture:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (_guard, store) = $fixture;
                $crate::ports::kyc_conformance::$name(&store);
            }
        )*
    };
    // `optional:` takes `Option<(guard, store)>`; on `None` (no database configured, the
    // fixture said so on the terminal) each test returns at once.
    (optional: $fixture:expr) => {
        $crate::ports::kyc_conformance::kyc_store_conformance!(guarded: match $fixture {
            Some(fixture) => fixture,
            None => return,
        });
    };
    ($make:expr) => {
        $crate::ports::kyc_conformance::kyc_store_conformance!(guarded: ((), $make));
    };
}
pub(crate) use kyc_store_conformance;

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_seconds(seconds).unwrap()
}

fn account(n: u8) -> NormalizedPaytoHash {
    NormalizedPaytoHash([n; 32])
}

fn set(checks: &[&str]) -> LegitimizationMeasures {
    LegitimizationMeasures {
        measures: checks
            .iter()
            .map(|check| MeasureInformation {
                check_name: (*check).to_owned(),
                prog_name: "accept".into(),
                context: Some(serde_json::json!({})),
                rule_name: None,
                operation_type: None,
            })
            .collect(),
        is_and_combinator: false,
        verboten: false,
    }
}

fn activate(store: &dyn KycStore, n: u8, checks: &[&str]) -> (AccessToken, u64) {
    let activated = store
        .activate_measures(ActivateMeasures {
            h_payto: account(n),
            normalized_payto: format!("payto://x-taler-bank/localhost/u{n}"),
            full_payto: Some(format!(
                "payto://x-taler-bank/localhost/u{n}?receiver-name=U"
            )),
            new_token: AccessToken([n.wrapping_add(100); 32]),
            account_pub: None,
            measures: set(checks),
            display_priority: 0,
            trigger: crate::domain::evidence::RequirementTrigger::Rule,
            now: at(1_000),
        })
        .unwrap();
    (activated.access_token, activated.measure_serial)
}

fn rules(expiration: u64) -> LegitimizationRuleSet {
    LegitimizationRuleSet {
        expiration_time: at(expiration),
        successor_measure: None,
        rules: Vec::new(),
        custom_measures: Default::default(),
    }
}

fn outcome(expiration: u64) -> NewOutcome {
    NewOutcome {
        program: "test".into(),
        expiration_time: at(expiration),
        properties: Some(serde_json::json!({"checked": true})),
        to_investigate: false,
        new_rules: rules(expiration),
        events: vec!["checked".into()],
    }
}

fn attributes(blob: &[u8]) -> NewAttributes {
    NewAttributes {
        form_id: Some("form".into()),
        collection_time: at(2_000),
        expiration_time: Timestamp::never(),
        encrypted: blob.to_vec(),
        provider_name: Some("challenger".into()),
    }
}

pub fn activation_creates_the_account_once(store: &dyn KycStore) {
    let (token, _) = activate(store, 1, &["email"]);
    assert_eq!(token, AccessToken([101; 32]));
    let stored = store.account(&account(1)).unwrap().unwrap();
    assert_eq!(stored.access_token, token);
    assert_eq!(stored.normalized_payto, "payto://x-taler-bank/localhost/u1");
    assert_eq!(store.account_by_token(&token).unwrap(), Some(stored));
    // A later activation keeps the first token.
    let again = store
        .activate_measures(ActivateMeasures {
            h_payto: account(1),
            normalized_payto: "payto://x-taler-bank/localhost/u1".into(),
            full_payto: None,
            new_token: AccessToken([7; 32]),
            account_pub: None,
            measures: set(&["personal"]),
            display_priority: 0,
            trigger: crate::domain::evidence::RequirementTrigger::Rule,
            now: at(1_001),
        })
        .unwrap();
    assert_eq!(again.access_token, token);
    assert!(
        store
            .account_by_token(&AccessToken([7; 32]))
            .unwrap()
            .is_none()
    );
    assert!(store.account(&account(2)).unwrap().is_none());
}

pub fn identical_sets_are_reused_and_others_supersede(store: &dyn KycStore) {
    let (_, first) = activate(store, 1, &["email"]);
    let (_, same) = activate(store, 1, &["email"]);
    assert_eq!(same, first);
    let started = store
        .begin_process(first, 0, "challenger", at(1_500))
        .unwrap();
    let BeginProcess::Started { .. } = started else {
        panic!("{started:?}")
    };
    let (_, second) = activate(store, 1, &["personal"]);
    assert_ne!(second, first);
    assert!(store.measure(first).unwrap().unwrap().is_finished);
    let open = store.open_measure(&account(1)).unwrap().unwrap();
    assert_eq!(
        (open.serial, open.measures.clone()),
        (second, set(&["personal"]))
    );
    // The superseded set's process was finished with it.
    assert!(
        store
            .open_process(&account(1), "challenger")
            .unwrap()
            .is_none()
    );
    assert!(store.measure(9_999).unwrap().is_none());
}

pub fn processes_start_idempotently_and_restart_after_failure(store: &dyn KycStore) {
    let (_, serial) = activate(store, 1, &["email"]);
    let BeginProcess::Started { process_serial } = store
        .begin_process(serial, 0, "challenger", at(1_100))
        .unwrap()
    else {
        panic!("not started");
    };
    // Before the redirect is known, a second start restarts the same row.
    assert_eq!(
        store
            .begin_process(serial, 0, "challenger", at(1_101))
            .unwrap(),
        BeginProcess::Started { process_serial }
    );
    assert_eq!(
        store
            .record_redirect(process_serial, "https://provider/go")
            .unwrap(),
        "https://provider/go"
    );
    // A concurrent start that initiated too answers the URL recorded first.
    assert_eq!(
        store
            .record_redirect(process_serial, "https://provider/other")
            .unwrap(),
        "https://provider/go"
    );
    let open = store
        .open_process(&account(1), "challenger")
        .unwrap()
        .unwrap();
    assert_eq!(
        open.provider_legitimization_id,
        Some(process_serial.to_string())
    );
    assert_eq!(
        store
            .begin_process(serial, 0, "challenger", at(1_102))
            .unwrap(),
        BeginProcess::Existing {
            redirect_url: "https://provider/go".into()
        }
    );
    store
        .fail_process(process_serial, 1926, "setup failed")
        .unwrap();
    assert!(
        store
            .open_process(&account(1), "challenger")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .begin_process(serial, 0, "challenger", at(1_103))
            .unwrap(),
        BeginProcess::Started { process_serial }
    );
    assert_eq!(
        store
            .begin_process(9_999, 0, "challenger", at(1_104))
            .unwrap(),
        BeginProcess::MeasureFinished
    );
}

pub fn completion_stores_everything_at_once(store: &dyn KycStore) {
    let (_, serial) = activate(store, 1, &["email"]);
    let BeginProcess::Started { process_serial } = store
        .begin_process(serial, 0, "challenger", at(1_100))
        .unwrap()
    else {
        panic!("not started");
    };
    store
        .record_redirect(process_serial, "https://provider/go")
        .unwrap();
    let completion = Completion {
        h_payto: account(1),
        measure_serial: serial,
        process: CompletedProcess::Provider {
            process_serial,
            provider_user_id: "42".into(),
        },
        attributes: attributes(b"sealed"),
        outcome: Some(outcome(5_000)),
        next_measures: None,
        process_error: None,
        now: at(2_000),
    };
    assert_eq!(
        store.complete(completion).unwrap(),
        CompleteOutcome::Completed
    );
    assert!(store.measure(serial).unwrap().unwrap().is_finished);
    assert!(store.open_measure(&account(1)).unwrap().is_none());
    let finished = store.finished_process(serial, 0).unwrap().unwrap();
    assert_eq!(finished.process.provider_user_id.as_deref(), Some("42"));
    assert_eq!(finished.attributes.as_deref(), Some(&b"sealed"[..]));
    let active = store.active_outcome(&account(1)).unwrap().unwrap();
    assert_eq!(active.new_rules, Some(rules(5_000)));
    assert_eq!(active.expiration_time, at(5_000));
    assert_eq!(
        active.properties,
        Some(serde_json::json!({"checked": true}))
    );
    assert!(active.is_active && !active.to_investigate);
}

pub fn completion_of_a_finished_set_changes_nothing(store: &dyn KycStore) {
    let (_, serial) = activate(store, 1, &["email"]);
    let (_, _) = activate(store, 1, &["personal"]);
    let completion = Completion {
        h_payto: account(1),
        measure_serial: serial,
        process: CompletedProcess::Form { measure_index: 0 },
        attributes: attributes(b"late"),
        outcome: Some(outcome(5_000)),
        next_measures: None,
        process_error: None,
        now: at(2_000),
    };
    assert_eq!(
        store.complete(completion).unwrap(),
        CompleteOutcome::AlreadyFinished
    );
    assert!(store.active_outcome(&account(1)).unwrap().is_none());
    assert!(store.finished_process(serial, 0).unwrap().is_none());
}

pub fn forms_complete_with_a_process_of_their_own(store: &dyn KycStore) {
    let (_, serial) = activate(store, 1, &["personal", "email"]);
    let completion = Completion {
        h_payto: account(1),
        measure_serial: serial,
        process: CompletedProcess::Form { measure_index: 1 },
        attributes: attributes(b"form"),
        outcome: None,
        next_measures: Some(set(&["email"])),
        process_error: None,
        now: at(2_000),
    };
    assert_eq!(
        store.complete(completion).unwrap(),
        CompleteOutcome::Completed
    );
    let finished = store.finished_process(serial, 1).unwrap().unwrap();
    assert_eq!(finished.process.provider, "FORM");
    assert_eq!(finished.attributes.as_deref(), Some(&b"form"[..]));
    let next = store.open_measure(&account(1)).unwrap().unwrap();
    assert_ne!(next.serial, serial);
    assert_eq!(next.measures, set(&["email"]));
}

pub fn settling_replaces_the_active_outcome(store: &dyn KycStore) {
    let (_, first) = activate(store, 1, &["skip"]);
    assert_eq!(
        store
            .settle(&account(1), first, outcome(5_000), at(2_000))
            .unwrap(),
        CompleteOutcome::Completed
    );
    let before = store.active_outcome(&account(1)).unwrap().unwrap();
    assert_eq!(
        store
            .settle(&account(1), first, outcome(6_000), at(2_001))
            .unwrap(),
        CompleteOutcome::AlreadyFinished
    );
    let (_, second) = activate(store, 1, &["skip"]);
    assert_eq!(
        store
            .settle(&account(1), second, outcome(7_000), at(2_002))
            .unwrap(),
        CompleteOutcome::Completed
    );
    let after = store.active_outcome(&account(1)).unwrap().unwrap();
    assert!(after.serial > before.serial);
    assert_eq!(after.expiration_time, at(7_000));
    assert!(store.active_outcome(&account(2)).unwrap().is_none());
}

pub fn open_process_is_the_newest_unfinished_one(store: &dyn KycStore) {
    let (_, serial) = activate(store, 1, &["email", "email2"]);
    let BeginProcess::Started {
        process_serial: first,
    } = store
        .begin_process(serial, 0, "challenger", at(1_100))
        .unwrap()
    else {
        panic!("not started");
    };
    let BeginProcess::Started {
        process_serial: second,
    } = store
        .begin_process(serial, 1, "challenger", at(1_101))
        .unwrap()
    else {
        panic!("not started");
    };
    assert!(second > first);
    assert_eq!(
        store
            .open_process(&account(1), "challenger")
            .unwrap()
            .unwrap()
            .serial,
        second
    );
    assert!(store.open_process(&account(1), "other").unwrap().is_none());
    assert!(
        store
            .open_process(&account(2), "challenger")
            .unwrap()
            .is_none()
    );
}

pub fn the_change_counter_moves_with_every_change(store: &dyn KycStore) {
    let start = store.change_counter().unwrap();
    let (_, serial) = activate(store, 1, &["skip"]);
    let after_activation = store.change_counter().unwrap();
    assert!(after_activation > start);
    store
        .settle(&account(1), serial, outcome(5_000), at(2_000))
        .unwrap();
    assert!(store.change_counter().unwrap() > after_activation);
}

pub fn account_keys_create_the_account_and_replace_the_key(store: &dyn KycStore) {
    use crate::domain::primitives::EddsaPublicKey;
    let record = |key: u8, token: u8| RecordAccountKey {
        h_payto: account(7),
        normalized_payto: "payto://x-taler-bank/localhost/seven".into(),
        full_payto: None,
        new_token: AccessToken([token; 32]),
        account_pub: EddsaPublicKey([key; 32]),
        now: at(10),
    };
    let before = store.change_counter().unwrap();
    let first = store.record_account_key(record(1, 0xaa)).unwrap();
    assert_eq!(first.previous, None);
    assert_eq!(first.account.access_token, AccessToken([0xaa; 32]));
    assert_eq!(first.account.account_pub, Some(EddsaPublicKey([1; 32])));
    assert_ne!(store.change_counter().unwrap(), before);
    // A second key replaces the first; the account and its token stay.
    let second = store.record_account_key(record(2, 0xbb)).unwrap();
    assert_eq!(second.previous, Some(EddsaPublicKey([1; 32])));
    assert_eq!(second.account.access_token, AccessToken([0xaa; 32]));
    let stored = store.account(&account(7)).unwrap().unwrap();
    assert_eq!(stored.account_pub, Some(EddsaPublicKey([2; 32])));
    assert_eq!(stored.created, at(10));
}

/// Writers racing on one account.
const RACERS: u8 = 8;

/// Runs `write(i)` for every racer at once; each must succeed.
fn race<T: Send>(write: impl Fn(u8) -> T + Sync) -> Vec<T> {
    let start = std::sync::Barrier::new(usize::from(RACERS));
    std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (start, write) = (&start, &write);
                scope.spawn(move || {
                    start.wait();
                    write(i)
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    })
}

pub fn concurrent_decisions_leave_one_active(store: &dyn KycStore) {
    use super::kyc::DecisionOutcome;
    // Every decision also creates the account if it is new, so the racers contend for that too.
    let decide = |i: u8| decision(9, i, 3_000, Some(set(&[&format!("check-{i}")])));
    let outcomes = race(|i| store.apply_decision(decide(i)).unwrap());
    let mut tokens = Vec::new();
    let mut serials = Vec::new();
    for outcome in outcomes {
        let DecisionOutcome::Applied {
            outcome_serial,
            access_token,
            ..
        } = outcome
        else {
            panic!("a decision of the same time was refused: {outcome:?}");
        };
        tokens.push(access_token);
        serials.push(outcome_serial);
    }
    // One account (one token for all), one active outcome: the newest.
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "{tokens:?}");
    let history = store.aml_history(&account(9)).unwrap();
    assert_eq!(history.len(), usize::from(RACERS));
    assert_eq!(history.iter().filter(|h| h.is_active).count(), 1);
    let active = store.active_outcome(&account(9)).unwrap().unwrap();
    assert_eq!(Some(active.serial), serials.iter().max().copied());
    let open = store
        .list_measures(
            &super::kyc::MeasureListing {
                filter_h_payto: Some(account(9)),
                open: Some(true),
            },
            &crate::domain::aml::Page::new(20, 0),
        )
        .unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
}

pub fn concurrent_activations_open_one_set(store: &dyn KycStore) {
    let activated = race(|i| {
        store
            .activate_measures(ActivateMeasures {
                h_payto: account(8),
                normalized_payto: "payto://x-taler-bank/localhost/eight".into(),
                full_payto: None,
                new_token: AccessToken([i; 32]),
                account_pub: None,
                measures: set(&[&format!("check-{i}")]),
                display_priority: 0,
                trigger: crate::domain::evidence::RequirementTrigger::Rule,
                now: at(1_000),
            })
            .unwrap()
    });
    let token = &activated[0].access_token;
    assert!(activated.iter().all(|a| &a.access_token == token));
    let stored = store.account(&account(8)).unwrap().unwrap();
    assert_eq!(&stored.access_token, token);
    // Each activation opened a set of its own, superseding the one before: one stays open.
    let mut serials: Vec<u64> = activated.iter().map(|a| a.measure_serial).collect();
    serials.sort_unstable();
    serials.dedup();
    assert_eq!(serials.len(), usize::from(RACERS));
    let open = store.open_measure(&account(8)).unwrap().unwrap();
    assert_eq!(Some(open.serial), serials.last().copied());
    for serial in &serials[..serials.len() - 1] {
        assert!(store.measure(*serial).unwrap().unwrap().is_finished);
    }
}

/// An officer decision on account `n` with signature `sig`, creating the account if new.
fn decision(
    n: u8,
    sig: u8,
    seconds: u64,
    open_measures: Option<LegitimizationMeasures>,
) -> super::kyc::DecisionWrite {
    use crate::domain::primitives::{EddsaPublicKey, EddsaSignature};
    super::kyc::DecisionWrite {
        h_payto: account(n),
        account: Some(super::kyc::NewKycAccount {
            normalized_payto: format!("payto://x-taler-bank/localhost/u{n}"),
            full_payto: format!("payto://x-taler-bank/localhost/u{n}?receiver-name=U"),
            new_token: AccessToken([sig; 32]),
        }),
        decision_time: at(seconds),
        expiration_time: at(9_000),
        new_rules: crate::domain::primitives::canonical_json::canonical_text_of(
            &serde_json::to_value(rules(9_000)).unwrap(),
        ),
        properties: None,
        new_measures: None,
        to_investigate: sig == 0,
        justification: format!("decision {sig}"),
        officer_pub: EddsaPublicKey([1; 32]),
        officer_sig: EddsaSignature([sig; 64]),
        open_measures,
        attributes: None,
        events: Vec::new(),
    }
}

pub fn decisions_are_checked_stored_and_listed(store: &dyn KycStore) {
    use super::kyc::{AccountFilter, DecisionOutcome, MeasureListing};
    use crate::domain::aml::Page;
    // Unknown account without payto: refused, nothing stored.
    let mut unknown = decision(1, 1, 3_000, None);
    unknown.account = None;
    assert_eq!(
        store.apply_decision(unknown).unwrap(),
        DecisionOutcome::AccountUnknown
    );
    assert!(store.account(&account(1)).unwrap().is_none());
    // A first decision creates the account, opens its measures and counts its events.
    let before = store.change_counter().unwrap();
    let mut first = decision(1, 1, 3_000, Some(set(&["form"])));
    first.properties = Some(r#"{"high_risk":true}"#.into());
    first.events = vec!["flagged".into(), "flagged".into()];
    let DecisionOutcome::Applied {
        outcome_serial,
        measure_serial: Some(measure),
        access_token,
    } = store.apply_decision(first.clone()).unwrap()
    else {
        panic!("the first decision was not applied");
    };
    assert!(store.change_counter().unwrap() > before);
    assert_eq!(access_token, AccessToken([1; 32]));
    assert_eq!(
        store.open_measure(&account(1)).unwrap().unwrap().serial,
        measure
    );
    assert_eq!(
        store.count_events("flagged", at(2_999), at(3_001)).unwrap(),
        2
    );
    assert_eq!(
        store
            .count_events("flagged", at(3_001), Timestamp::never())
            .unwrap(),
        0
    );
    // The same signature again is a replay; an older decision is refused.
    assert_eq!(
        store.apply_decision(first).unwrap(),
        DecisionOutcome::Replayed
    );
    assert_eq!(
        store.apply_decision(decision(1, 2, 2_000, None)).unwrap(),
        DecisionOutcome::MoreRecentPresent
    );
    // A newer one without measures finishes the open set and replaces the outcome.
    let DecisionOutcome::Applied {
        outcome_serial: second,
        measure_serial: None,
        access_token,
    } = store.apply_decision(decision(1, 3, 4_000, None)).unwrap()
    else {
        panic!("the newer decision was not applied");
    };
    assert!(second > outcome_serial);
    assert_eq!(access_token, AccessToken([1; 32]));
    assert!(store.open_measure(&account(1)).unwrap().is_none());
    assert!(store.measure(measure).unwrap().unwrap().is_finished);
    let history = store.aml_history(&account(1)).unwrap();
    let justifications: Vec<_> = history.iter().map(|h| h.justification.as_str()).collect();
    assert_eq!(justifications, ["decision 3", "decision 1"]);
    assert_eq!(
        history.iter().map(|h| h.is_active).collect::<Vec<_>>(),
        [true, false]
    );
    assert_eq!(
        history[1].properties,
        Some(serde_json::json!({"high_risk": true}))
    );
    // Account 2: investigated and high-risk; account 3: no outcome of its own.
    let mut flagged = decision(2, 0, 3_000, None);
    flagged.properties = Some(r#"{"high_risk":true}"#.into());
    store.apply_decision(flagged).unwrap();
    activate(store, 3, &["skip"]);
    let listed = |filter: AccountFilter, page: Page| -> Vec<u8> {
        store
            .list_accounts(&filter, &page)
            .unwrap()
            .iter()
            .map(|a| a.h_payto.0[0])
            .collect()
    };
    let all = AccountFilter::default();
    assert_eq!(listed(all, Page::new(20, 0)), [1, 2, 3]);
    assert_eq!(listed(all, Page::new(-20, u64::MAX)), [3, 2, 1]);
    let serials: Vec<u64> = store
        .list_accounts(&all, &Page::new(20, 0))
        .unwrap()
        .iter()
        .map(|a| a.serial)
        .collect();
    assert_eq!(listed(all, Page::new(1, serials[0])), [2]);
    let only = |investigation, open, high_risk| AccountFilter {
        investigation,
        open,
        high_risk,
    };
    assert_eq!(listed(only(Some(true), None, None), Page::new(20, 0)), [2]);
    assert_eq!(
        listed(only(Some(false), None, None), Page::new(20, 0)),
        [1, 3]
    );
    assert_eq!(listed(only(None, Some(false), None), Page::new(20, 0)), [3]);
    assert_eq!(listed(only(None, None, Some(true)), Page::new(20, 0)), [2]);
    assert_eq!(
        listed(only(None, None, Some(false)), Page::new(20, 0)),
        [1, 3]
    );
    let summary = &store.list_accounts(&all, &Page::new(1, 0)).unwrap()[0];
    assert_eq!(
        summary.full_payto.as_deref(),
        Some("payto://x-taler-bank/localhost/u1?receiver-name=U")
    );
    assert_eq!(summary.active.as_ref().map(|o| o.serial), Some(second));
    // Measure listings: by account and state, both directions.
    let measures = |filter_h_payto, open, page: Page| -> Vec<u64> {
        store
            .list_measures(
                &MeasureListing {
                    filter_h_payto,
                    open,
                },
                &page,
            )
            .unwrap()
            .iter()
            .map(|m| m.serial)
            .collect()
    };
    let open_of_three = store.open_measure(&account(3)).unwrap().unwrap().serial;
    assert_eq!(
        measures(None, None, Page::new(20, 0)),
        [measure, open_of_three]
    );
    assert_eq!(
        measures(None, None, Page::new(-20, u64::MAX)),
        [open_of_three, measure]
    );
    assert_eq!(
        measures(None, Some(true), Page::new(20, 0)),
        [open_of_three]
    );
    assert_eq!(
        measures(Some(account(1)), None, Page::new(20, 0)),
        [measure]
    );
    assert_eq!(
        measures(Some(account(1)), Some(true), Page::new(20, 0)),
        Vec::<u64>::new()
    );
    assert!(measures(None, None, Page::new(0, 0)).is_empty());
}

pub fn program_outcomes_replace_only_the_expected_one(store: &dyn KycStore) {
    let (_, serial) = activate(store, 1, &["email"]);
    let BeginProcess::Started { process_serial } = store
        .begin_process(serial, 0, "challenger", at(1_100))
        .unwrap()
    else {
        panic!("not started");
    };
    let mut failing = outcome(5_000);
    failing.to_investigate = true;
    let completion = Completion {
        h_payto: account(1),
        measure_serial: serial,
        process: CompletedProcess::Provider {
            process_serial,
            provider_user_id: "42".into(),
        },
        attributes: attributes(b"sealed"),
        outcome: Some(failing),
        next_measures: Some(set(&["again"])),
        process_error: Some((1234, "program failed".into())),
        now: at(2_000),
    };
    assert_eq!(
        store.complete(completion).unwrap(),
        CompleteOutcome::Completed
    );
    // The failure is on the process, the next set is open, the attributes read back.
    let latest = store
        .latest_process(&account(1), "challenger")
        .unwrap()
        .unwrap();
    assert_eq!((latest.error_code, latest.finished), (1234, true));
    assert!(
        store
            .open_process(&account(1), "challenger")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.open_measure(&account(1)).unwrap().unwrap().measures,
        set(&["again"])
    );
    assert_eq!(
        store.newest_attributes(&account(1)).unwrap().as_deref(),
        Some(&b"sealed"[..])
    );
    let history = store.kyc_history(&account(1)).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].provider_name, "challenger");
    assert_eq!(history[0].error_code, 1234);
    assert_eq!(history[0].provider_user_id.as_deref(), Some("42"));
    assert_eq!(history[0].encrypted, b"sealed");
    assert_eq!(history[0].collection_time, at(2_000));
    assert!(store.count_events("checked", at(2_000), at(2_001)).unwrap() == 1);
    // A program's outcome replaces the one it read, not a newer one; investigation sticks.
    let active = store.active_outcome(&account(1)).unwrap().unwrap();
    assert!(active.to_investigate);
    let before = store.change_counter().unwrap();
    assert!(
        !store
            .store_program_outcome(&account(1), None, outcome(6_000), at(3_000))
            .unwrap()
    );
    assert_eq!(store.change_counter().unwrap(), before);
    assert!(
        store
            .store_program_outcome(&account(1), Some(active.serial), outcome(6_000), at(3_000))
            .unwrap()
    );
    assert!(store.change_counter().unwrap() > before);
    let replaced = store.active_outcome(&account(1)).unwrap().unwrap();
    assert!(replaced.serial > active.serial);
    assert_eq!(replaced.expiration_time, at(6_000));
    assert!(replaced.to_investigate, "only an officer clears the flag");
    assert!(
        !store
            .store_program_outcome(&account(1), Some(active.serial), outcome(7_000), at(3_000))
            .unwrap()
    );
}

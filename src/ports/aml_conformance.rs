//! The conformance suite of the AML stores (`OfficerStore`, `AttributeStore`,
//! `DecisionStore`), written once and run against every implementation
//! (`aml_store_conformance!`), so that the in-memory store cannot drift from SQLite.
//!
//! Each function takes a fresh, empty store.

use crate::domain::aml::{
    AttributeSource, Decider, DecisionFilter, NewAttributeRecord, NewOutcome, OfficerChange,
    OperatorAction, Page,
};
use crate::domain::primitives::{EddsaPublicKey, EddsaSignature, NormalizedPaytoHash, Timestamp};

use super::aml::{AttributeStore, DecisionStore, OfficerStore, OfficerUpsert};

/// Everything the suite exercises.
pub trait AmlStores: OfficerStore + AttributeStore + DecisionStore {}
impl<T: OfficerStore + AttributeStore + DecisionStore> AmlStores for T {}

/// Expands to one `#[test]` per conformance function; see `account_store_conformance!` for
/// the `guarded:` form.
macro_rules! aml_store_conformance {
    (guarded: $fixture:expr) => {
        $crate::ports::aml_conformance::aml_store_conformance!(@tests $fixture;
            officer_insert_and_read_back,
            officer_upsert_is_monotonic,
            operator_actions_always_win_and_keep_what_they_must,
            officers_are_listed_by_key,
            attribute_rows_round_trip,
            attribute_pages_follow_the_spec_example,
            attribute_pages_at_the_edges,
            concurrent_appends_get_distinct_increasing_ids,
            decisions_replace_the_active_one_per_account,
            decisions_filter_and_page,
            concurrent_first_officer_upserts,
            concurrent_operator_actions_each_move_the_date,
            concurrent_decisions_leave_one_active,
            decision_serials_commit_in_order,
        );
    };
    (@tests $fixture:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (_guard, store) = $fixture;
                $crate::ports::aml_conformance::$name(&store);
            }
        )*
    };
    // `optional:` takes `Option<(guard, store)>`; on `None` (no database configured, the
    // fixture said so on the terminal) each test returns at once.
    (optional: $fixture:expr) => {
        $crate::ports::aml_conformance::aml_store_conformance!(guarded: match $fixture {
            Some(fixture) => fixture,
            None => return,
        });
    };
    ($make:expr) => {
        $crate::ports::aml_conformance::aml_store_conformance!(guarded: ((), $make));
    };
}
pub(crate) use aml_store_conformance;

// ---- helpers ----

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_seconds(seconds).unwrap()
}

fn key(byte: u8) -> EddsaPublicKey {
    EddsaPublicKey([byte; 32])
}

fn account(byte: u8) -> NormalizedPaytoHash {
    NormalizedPaytoHash([byte; 32])
}

fn change(byte: u8, name: &str, t_s: u64, active: bool, read_only: bool) -> OfficerChange {
    OfficerChange {
        officer_pub: key(byte),
        name: name.to_owned(),
        is_active: active,
        read_only,
        change_date: at(t_s),
        master_sig: Some(EddsaSignature([byte; 64])),
    }
}

fn row(h_payto: NormalizedPaytoHash, blob: &[u8]) -> NewAttributeRecord {
    NewAttributeRecord {
        h_payto,
        collection_time: at(1_700_000_000),
        expiration_time: Timestamp::never(),
        source: AttributeSource::Customer { provider: None },
        form_id: None,
        process_serial: None,
        encrypted: blob.to_vec(),
    }
}

fn ids<T>(rows: &[T], id: impl Fn(&T) -> u64) -> Vec<u64> {
    rows.iter().map(id).collect()
}

// ---- officers ----

pub fn officer_insert_and_read_back(store: &dyn AmlStores) {
    assert_eq!(store.officer(&key(1)).unwrap(), None);
    let alice = change(1, "Olivia Officer", 1_700_000_000, true, true);
    assert_eq!(store.upsert_officer(&alice).unwrap(), OfficerUpsert::Stored);
    let read = store.officer(&key(1)).unwrap().unwrap();
    assert_eq!(read.officer_pub, key(1));
    assert_eq!(read.name, "Olivia Officer");
    assert!(read.is_active && read.read_only);
    assert_eq!(read.last_change, at(1_700_000_000));
    assert_eq!(read.master_sig, Some(EddsaSignature([1; 64])));
    assert_eq!(store.officer(&key(2)).unwrap(), None);
}

pub fn officer_upsert_is_monotonic(store: &dyn AmlStores) {
    let first = change(1, "First", 1_700_000_100, true, false);
    assert_eq!(store.upsert_officer(&first).unwrap(), OfficerUpsert::Stored);
    let same_date = change(1, "Other name", 1_700_000_100, false, true);
    assert_eq!(
        store.upsert_officer(&same_date).unwrap(),
        OfficerUpsert::Replayed
    );
    let older = change(1, "Older", 1_700_000_099, false, false);
    assert_eq!(
        store.upsert_officer(&older).unwrap(),
        OfficerUpsert::MoreRecentPresent
    );
    let stored = store.officer(&key(1)).unwrap().unwrap();
    assert_eq!((stored.name.as_str(), stored.is_active), ("First", true));
    let newer = change(1, "Renamed", 1_700_000_101, false, true);
    assert_eq!(store.upsert_officer(&newer).unwrap(), OfficerUpsert::Stored);
    let stored = store.officer(&key(1)).unwrap().unwrap();
    assert_eq!(stored.name, "Renamed");
    assert!(!stored.is_active && stored.read_only);
    assert_eq!(stored.last_change, at(1_700_000_101));
}

pub fn operator_actions_always_win_and_keep_what_they_must(store: &dyn AmlStores) {
    let disable = OperatorAction::Disable;
    assert_eq!(
        store.operator_update(&key(1), &disable, at(100)).unwrap(),
        None
    );
    assert_eq!(store.officer(&key(1)).unwrap(), None);

    let enable = OperatorAction::Enable {
        name: "Olivia".into(),
        read_only: true,
    };
    let enabled = store
        .operator_update(&key(1), &enable, at(100))
        .unwrap()
        .unwrap();
    assert_eq!(enabled.last_change, at(100));
    assert!(enabled.is_active && enabled.read_only);
    assert_eq!(enabled.master_sig, None);
    assert_eq!(store.officer(&key(1)).unwrap(), Some(enabled));

    // A master-signed status dated in the future: the operator's change still wins.
    let future = change(1, "Future", 5_000, true, false);
    assert_eq!(
        store.upsert_officer(&future).unwrap(),
        OfficerUpsert::Stored
    );
    let disabled = store
        .operator_update(&key(1), &disable, at(200))
        .unwrap()
        .unwrap();
    assert_eq!(disabled.last_change, at(5_001));
    assert_eq!(disabled.name, "Future");
    assert!(!disabled.is_active && !disabled.read_only);
    assert_eq!(disabled.master_sig, None);
    assert_eq!(store.officer(&key(1)).unwrap(), Some(disabled));
    // ...and a master-signed status at that same date is a replay.
    let replay = change(1, "Replay", 5_001, true, false);
    assert_eq!(
        store.upsert_officer(&replay).unwrap(),
        OfficerUpsert::Replayed
    );
}

pub fn officers_are_listed_by_key(store: &dyn AmlStores) {
    assert!(store.list_officers().unwrap().is_empty());
    for byte in [9, 2, 5] {
        store
            .upsert_officer(&change(byte, &format!("o{byte}"), 1, true, false))
            .unwrap();
    }
    let listed: Vec<EddsaPublicKey> = store
        .list_officers()
        .unwrap()
        .into_iter()
        .map(|o| o.officer_pub)
        .collect();
    assert_eq!(listed, [key(2), key(5), key(9)]);
}

// ---- attributes ----

pub fn attribute_rows_round_trip(store: &dyn AmlStores) {
    let customer = NewAttributeRecord {
        h_payto: account(1),
        collection_time: at(1_700_000_123),
        expiration_time: at(1_800_000_000),
        source: AttributeSource::Customer {
            provider: Some("challenger".into()),
        },
        form_id: Some("personal".into()),
        process_serial: Some(42),
        encrypted: vec![1, 2, 3, 0, 255],
    };
    let officer = NewAttributeRecord {
        source: AttributeSource::Officer(key(7)),
        form_id: None,
        process_serial: None,
        expiration_time: Timestamp::never(),
        ..customer.clone()
    };
    let first = store.append_attributes(&customer).unwrap();
    let second = store.append_attributes(&officer).unwrap();
    assert!(first >= 1 && second > first);
    let rows = store.attributes(&account(1), &Page::new(10, 0)).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].rowid, first);
    assert_eq!(rows[0].h_payto, account(1));
    assert_eq!(rows[0].collection_time, at(1_700_000_123));
    assert_eq!(rows[0].expiration_time, at(1_800_000_000));
    assert_eq!(rows[0].source, customer.source);
    assert_eq!(rows[0].form_id.as_deref(), Some("personal"));
    assert_eq!(rows[0].encrypted, [1, 2, 3, 0, 255]);
    assert_eq!(rows[1].rowid, second);
    assert_eq!(rows[1].source, AttributeSource::Officer(key(7)));
    assert_eq!(rows[1].expiration_time, Timestamp::never());
    assert!(rows[1].source.by_aml_officer() && !rows[0].source.by_aml_officer());
    assert!(
        store
            .attributes(&account(2), &Page::new(10, 0))
            .unwrap()
            .is_empty()
    );
}

/// The account owns row ids 3, 7, 8, 12 and 20 (exchange-aml.md §4.2).
fn spec_example(store: &dyn AmlStores) {
    for rowid in 1..=20u64 {
        let owner = if [3, 7, 8, 12, 20].contains(&rowid) {
            account(1)
        } else {
            account(2)
        };
        assert_eq!(store.append_attributes(&row(owner, b"x")).unwrap(), rowid);
    }
}

pub fn attribute_pages_follow_the_spec_example(store: &dyn AmlStores) {
    spec_example(store);
    let page = |limit, offset| {
        ids(
            &store
                .attributes(&account(1), &Page::new(limit, offset))
                .unwrap(),
            |r| r.rowid,
        )
    };
    let max = i64::MAX as u64;
    assert_eq!(page(-20, max), [20, 12, 8, 7, 3]);
    assert_eq!(page(-2, max), [20, 12]);
    assert_eq!(page(-2, 12), [8, 7]);
    assert_eq!(page(2, 0), [3, 7]);
    assert_eq!(page(2, 7), [8, 12]);
    assert!(page(5, 20).is_empty());
    assert!(page(0, 0).is_empty());
}

pub fn attribute_pages_at_the_edges(store: &dyn AmlStores) {
    spec_example(store);
    let page = |limit, offset| {
        ids(
            &store
                .attributes(&account(1), &Page::new(limit, offset))
                .unwrap(),
            |r| r.rowid,
        )
    };
    assert_eq!(page(1, 0), [3]);
    assert_eq!(page(-1, 3), Vec::<u64>::new());
    assert_eq!(page(-1, 4), [3]);
    assert_eq!(page(1, 19), [20]);
    assert_eq!(page(1024, 0), [3, 7, 8, 12, 20]);
    assert_eq!(page(-1024, i64::MAX as u64), [20, 12, 8, 7, 3]);
    assert_eq!(page(1024, i64::MAX as u64), Vec::<u64>::new());
    assert_eq!(page(-1024, 0), Vec::<u64>::new());
}

pub fn concurrent_appends_get_distinct_increasing_ids(store: &dyn AmlStores) {
    const THREADS: usize = 4;
    const EACH: usize = 10;
    let per_thread: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    (0..EACH)
                        .map(|_| {
                            store
                                .append_attributes(&row(account(t as u8), b"x"))
                                .unwrap()
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = per_thread.iter().flatten().copied().collect();
    for ids in &per_thread {
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), THREADS * EACH);
}

// ---- decisions ----

fn outcome(h_payto: NormalizedPaytoHash, t_s: u64, investigate: bool) -> NewOutcome {
    NewOutcome {
        h_payto,
        decision_time: at(t_s),
        expiration_time: Timestamp::never(),
        properties: None,
        new_measure_name: None,
        to_investigate: investigate,
        new_rules: None,
        decider: None,
    }
}

pub fn decisions_replace_the_active_one_per_account(store: &dyn AmlStores) {
    let properties: crate::domain::aml::AttributeMap =
        serde_json::from_str(r#"{"pep":true,"note":"x"}"#).unwrap();
    let rules =
        serde_json::json!({"expiration_time": {"t_s": 5}, "rules": [], "custom_measures": {}});
    let first = store
        .insert_outcome(&outcome(account(1), 100, true))
        .unwrap();
    let other = store
        .insert_outcome(&outcome(account(2), 101, false))
        .unwrap();
    let decided = NewOutcome {
        properties: Some(properties.clone()),
        new_rules: Some(rules.clone()),
        new_measure_name: Some("freeze".into()),
        expiration_time: at(9_000),
        decider: Some(Decider {
            officer_pub: key(3),
            justification: "looked at it".into(),
            officer_sig: EddsaSignature([3; 64]),
        }),
        ..outcome(account(1), 102, false)
    };
    let second = store.insert_outcome(&decided).unwrap();
    assert!(first < other && other < second);
    let all = store
        .decisions(&DecisionFilter {
            page: Page::new(10, 0),
            h_payto: None,
            active: None,
            investigation: None,
        })
        .unwrap();
    assert_eq!(ids(&all, |d| d.rowid), [first, other, second]);
    assert_eq!(
        all.iter().map(|d| d.is_active).collect::<Vec<_>>(),
        [false, true, true]
    );
    assert_eq!(all[0].justification, None);
    assert_eq!(all[0].new_rules, None);
    assert!(all[0].to_investigate);
    let latest = &all[2];
    assert_eq!(latest.h_payto, account(1));
    assert_eq!(latest.decision_time, at(102));
    assert_eq!(latest.expiration_time, at(9_000));
    assert_eq!(latest.properties, Some(properties));
    assert_eq!(latest.new_rules, Some(rules));
    assert_eq!(latest.new_measure_name.as_deref(), Some("freeze"));
    assert_eq!(latest.justification.as_deref(), Some("looked at it"));
    assert!(!latest.to_investigate);
}

pub fn decisions_filter_and_page(store: &dyn AmlStores) {
    // Rows 1..=6: accounts 1,2,1,2,1,2; to_investigate on odd rows.
    for n in 1..=6u8 {
        let owner = account(if n % 2 == 1 { 1 } else { 2 });
        store
            .insert_outcome(&outcome(owner, u64::from(n), n % 2 == 1))
            .unwrap();
    }
    let list = |page: Page, h_payto, active, investigation| {
        ids(
            &store
                .decisions(&DecisionFilter {
                    page,
                    h_payto,
                    active,
                    investigation,
                })
                .unwrap(),
            |d| d.rowid,
        )
    };
    let max = i64::MAX as u64;
    assert_eq!(
        list(Page::new(-20, max), None, None, None),
        [6, 5, 4, 3, 2, 1]
    );
    assert_eq!(list(Page::new(-2, 5), None, None, None), [4, 3]);
    assert_eq!(list(Page::new(2, 1), None, None, None), [2, 3]);
    assert_eq!(
        list(Page::new(10, 0), Some(account(2)), None, None),
        [2, 4, 6]
    );
    assert_eq!(list(Page::new(10, 0), None, Some(true), None), [5, 6]);
    assert_eq!(
        list(Page::new(10, 0), None, Some(false), None),
        [1, 2, 3, 4]
    );
    assert_eq!(list(Page::new(10, 0), None, None, Some(true)), [1, 3, 5]);
    assert_eq!(
        list(
            Page::new(-10, max),
            Some(account(1)),
            Some(false),
            Some(true)
        ),
        [3, 1]
    );
    assert!(list(Page::new(0, 0), None, None, None).is_empty());
}

// ---- concurrency ----

/// Runs `work(i)` on `threads` threads released together; the answers in thread order.
fn together<T: Send>(threads: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let start = std::sync::Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (start, work) = (&start, &work);
                scope.spawn(move || {
                    start.wait();
                    work(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Changes of one new officer with different dates, at once: none fails, the newest wins.
pub fn concurrent_first_officer_upserts(store: &dyn AmlStores) {
    const THREADS: usize = 8;
    for round in 1..=4u8 {
        let answers = together(THREADS, |i| {
            let date = 1_000 + i as u64;
            store.upsert_officer(&change(round, &format!("o{i}"), date, i % 2 == 0, false))
        });
        let answers: Vec<OfficerUpsert> = answers.into_iter().map(|a| a.unwrap()).collect();
        assert_eq!(answers[THREADS - 1], OfficerUpsert::Stored, "{answers:?}");
        assert!(!answers.contains(&OfficerUpsert::Replayed), "{answers:?}");
        let stored = store.officer(&key(round)).unwrap().unwrap();
        assert_eq!(stored.last_change, at(1_000 + THREADS as u64 - 1));
        assert_eq!(stored.name, format!("o{}", THREADS - 1));
        assert_eq!(stored.master_sig, Some(EddsaSignature([round; 64])));
    }
}

/// Operator actions at the same instant, at once, on a new officer and on a stored one: each
/// reads the one before it, so each moves the date by a second and none is lost.
pub fn concurrent_operator_actions_each_move_the_date(store: &dyn AmlStores) {
    const THREADS: usize = 6;
    let enable = |i: usize| OperatorAction::Enable {
        name: format!("o{i}"),
        read_only: false,
    };
    for round in 1..=6u8 {
        let stored = round % 2 == 0;
        if stored {
            store
                .upsert_officer(&change(round, "signed", 500, true, true))
                .unwrap();
        }
        let answers = together(THREADS, |i| {
            store.operator_update(&key(round), &enable(i), at(500))
        });
        let mut dates: Vec<u64> = answers
            .into_iter()
            .map(|a| a.unwrap().unwrap().last_change.as_seconds().unwrap())
            .collect();
        dates.sort_unstable();
        let first = if stored { 501 } else { 500 };
        let expected: Vec<u64> = (first..first + THREADS as u64).collect();
        assert_eq!(dates, expected);
        let officer = store.officer(&key(round)).unwrap().unwrap();
        assert_eq!(officer.last_change, at(first + THREADS as u64 - 1));
        assert_eq!(officer.master_sig, None);
    }
}

/// Decisions about one account, at once: none fails, exactly the last one is active.
pub fn concurrent_decisions_leave_one_active(store: &dyn AmlStores) {
    const THREADS: usize = 8;
    for owner in 1..=3u8 {
        let serials: Vec<u64> = together(THREADS, |i| {
            store
                .insert_outcome(&outcome(account(owner), 100 + i as u64, false))
                .unwrap()
        });
        let all = store
            .decisions(&DecisionFilter {
                page: Page::new(100, 0),
                h_payto: Some(account(owner)),
                active: None,
                investigation: None,
            })
            .unwrap();
        assert_eq!(all.len(), THREADS);
        let active: Vec<u64> = all
            .iter()
            .filter(|d| d.is_active)
            .map(|d| d.rowid)
            .collect();
        assert_eq!(active, [*serials.iter().max().unwrap()]);
    }
}

/// Decisions about many accounts while an officer pages forward by serial: a row never
/// commits below a page already read, so the reader ends having seen every row once.
pub fn decision_serials_commit_in_order(store: &dyn AmlStores) {
    const WRITERS: usize = 6;
    const EACH: usize = 15;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let page = |after: u64| {
        store
            .decisions(&DecisionFilter {
                page: Page::new(7, after),
                h_payto: None,
                active: None,
                investigation: None,
            })
            .unwrap()
    };
    let seen: Vec<u64> = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut seen = Vec::new();
            loop {
                // Read `done` first: rows committed before the last writer finished are
                // visible to the pass that follows.
                let finished = done.load(std::sync::atomic::Ordering::SeqCst) == WRITERS;
                let rows = page(seen.last().copied().unwrap_or(0));
                if rows.is_empty() && finished {
                    return seen;
                }
                seen.extend(rows.iter().map(|d| d.rowid));
            }
        });
        for writer in 0..WRITERS {
            let done = &done;
            scope.spawn(move || {
                for n in 0..EACH {
                    let owner = account((writer * EACH + n) as u8);
                    store
                        .insert_outcome(&outcome(owner, n as u64, false))
                        .unwrap();
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        reader.join().unwrap()
    });
    let all = store
        .decisions(&DecisionFilter {
            page: Page::new(1000, 0),
            h_payto: None,
            active: None,
            investigation: None,
        })
        .unwrap();
    assert_eq!(all.len(), WRITERS * EACH);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen, ids(&all, |d| d.rowid), "the reader skipped a row");
}

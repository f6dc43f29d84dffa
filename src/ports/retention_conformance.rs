//! The conformance suite of `RetentionStore`, run against every database: what a purge
//! erases, what it spares, what it journals, and how holds are kept and journaled.
//!
//! Each function takes a fresh, empty database through three ports over it: the retention
//! store, the attribute store (to add rows and read them back) and the journal.

use crate::domain::aml::{AttributeSource, NewAttributeRecord, Page};
use crate::domain::evidence::Actor;
use crate::domain::primitives::{NormalizedPaytoHash, RelativeTime, Timestamp};

use super::aml::AttributeStore;
use super::journal::{Journal, JournalQuery};
use super::retention::{Hold, Purged, RetentionStore};

/// Expands to one `#[test]` per conformance function. The fixture is
/// `(guard, Arc of the retention store, attribute store, journal)`; `optional:` takes an `Option` of it
/// (`None`: no database configured, each test returns at once).
macro_rules! retention_store_conformance {
    (optional: $fixture:expr) => {
        $crate::ports::retention_conformance::retention_store_conformance!(@tests
            match $fixture {
                Some(fixture) => fixture,
                None => return,
            };
            due_rows_are_erased_once_and_journaled_per_account,
            forever_keeps_everything,
            holds_are_listed_oldest_first_and_changes_journaled,
            concurrent_purges_erase_and_journal_each_row_once,
        );
    };
    (@tests $fixture:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (_guard, retention, attributes, journal) = $fixture;
                $crate::ports::retention_conformance::$name(&*retention, &attributes, &journal);
            }
        )*
    };
    ($fixture:expr) => {
        $crate::ports::retention_conformance::retention_store_conformance!(
            optional: Some($fixture)
        );
    };
}
pub(crate) use retention_store_conformance;

// ---- helpers ----

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_seconds(seconds).unwrap()
}

fn account(byte: u8) -> NormalizedPaytoHash {
    NormalizedPaytoHash([byte; 32])
}

/// Appends a row of `owner` collected at `collected` (s), expiring at `expires` (s, or never).
fn add(store: &dyn AttributeStore, owner: u8, collected: u64, expires: Option<u64>) -> u64 {
    store
        .append_attributes(&NewAttributeRecord {
            h_payto: account(owner),
            collection_time: at(collected),
            expiration_time: expires.map_or(Timestamp::never(), at),
            source: AttributeSource::Customer { provider: None },
            form_id: Some("f".into()),
            process_serial: None,
            encrypted: vec![owner, 1, 2, 3],
        })
        .unwrap()
}

/// The row ids of `owner` whose blob is erased, and of those still holding one.
fn erased_and_kept(store: &dyn AttributeStore, owner: u8) -> (Vec<u64>, Vec<u64>) {
    let rows = store
        .attributes(&account(owner), &Page::new(100, 0))
        .unwrap();
    let (erased, kept): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.encrypted.is_empty());
    (
        erased.iter().map(|r| r.rowid).collect(),
        kept.iter().map(|r| r.rowid).collect(),
    )
}

/// The journal's entries of `kind`, oldest first, as (account's first byte, actor, details).
fn journaled(journal: &dyn Journal, kind: &str) -> Vec<(u8, String, serde_json::Value)> {
    let mut entries = journal
        .entries(&JournalQuery {
            kind: Some(kind.to_owned()),
            limit: 1000,
            ..JournalQuery::default()
        })
        .unwrap();
    entries.reverse();
    entries
        .into_iter()
        .map(|e| {
            (
                e.h_payto.map_or(0, |h| h[0]),
                e.actor,
                serde_json::from_str(&e.details).unwrap(),
            )
        })
        .collect()
}

const NOW: u64 = 10_000;
const RETENTION: RelativeTime = RelativeTime::from_micros(1_000_000_000);

/// Rows of accounts 1, 2 and 3; due at `NOW` with `RETENTION`: 1's first and third, 2's, 3's.
fn populate(attributes: &dyn AttributeStore) -> [u64; 6] {
    [
        add(attributes, 1, 1_000, Some(2_000)),
        add(attributes, 1, 1_000, None),
        add(attributes, 1, 8_999, Some(9_999)),
        add(attributes, 2, 1_000, Some(2_000)),
        add(attributes, 3, 1_000, Some(2_000)),
        // Collected after the cutoff (9000 s): kept though expired.
        add(attributes, 1, 9_000, Some(2_000)),
    ]
}

// ---- the suite ----

pub fn due_rows_are_erased_once_and_journaled_per_account(
    retention: &dyn RetentionStore,
    attributes: &dyn AttributeStore,
    journal: &dyn Journal,
) {
    let [a1, a2, a3, b, c, a4] = populate(attributes);
    assert!(
        retention
            .set_hold(account(3), Some("court order".into()), at(5))
            .unwrap()
    );

    let would = retention
        .purge_attributes(at(NOW), RETENTION, Actor::operator(), true)
        .unwrap();
    assert_eq!(
        would,
        Purged {
            rows: 3,
            accounts: 2
        }
    );
    assert_eq!(erased_and_kept(attributes, 1).0, Vec::<u64>::new());
    assert!(journaled(journal, "retention.purged").is_empty());

    let purged = retention
        .purge_attributes(at(NOW), RETENTION, Actor::system(), false)
        .unwrap();
    assert_eq!(purged, would);
    assert_eq!(erased_and_kept(attributes, 1), (vec![a1, a3], vec![a2, a4]));
    assert_eq!(erased_and_kept(attributes, 2), (vec![b], vec![]));
    assert_eq!(erased_and_kept(attributes, 3), (vec![], vec![c]));
    let entries = journaled(journal, "retention.purged");
    assert_eq!(
        entries,
        [
            (1, "system".into(), serde_json::json!({"rows": [a1, a3]})),
            (2, "system".into(), serde_json::json!({"rows": [b]})),
        ]
    );

    // Nothing is purged twice; released, the held row goes at the next purge.
    let again = retention
        .purge_attributes(at(NOW), RETENTION, Actor::system(), false)
        .unwrap();
    assert_eq!(again, Purged::default());
    assert!(retention.set_hold(account(3), None, at(6)).unwrap());
    let released = retention
        .purge_attributes(at(NOW), RETENTION, Actor::operator(), false)
        .unwrap();
    assert_eq!(
        released,
        Purged {
            rows: 1,
            accounts: 1
        }
    );
    assert_eq!(erased_and_kept(attributes, 3), (vec![c], vec![]));
    let entries = journaled(journal, "retention.purged");
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[2],
        (3, "operator".into(), serde_json::json!({"rows": [c]}))
    );
}

pub fn forever_keeps_everything(
    retention: &dyn RetentionStore,
    attributes: &dyn AttributeStore,
    journal: &dyn Journal,
) {
    populate(attributes);
    for dry_run in [true, false] {
        let purged = retention
            .purge_attributes(at(NOW), RelativeTime::forever(), Actor::system(), dry_run)
            .unwrap();
        assert_eq!(purged, Purged::default());
    }
    assert_eq!(erased_and_kept(attributes, 2).0, Vec::<u64>::new());
    assert!(journaled(journal, "retention.purged").is_empty());
}

pub fn holds_are_listed_oldest_first_and_changes_journaled(
    retention: &dyn RetentionStore,
    _attributes: &dyn AttributeStore,
    journal: &dyn Journal,
) {
    assert!(retention.holds().unwrap().is_empty());
    assert!(!retention.set_hold(account(1), None, at(1)).unwrap());
    assert!(
        retention
            .set_hold(account(2), Some("x".into()), at(20))
            .unwrap()
    );
    assert!(
        retention
            .set_hold(account(1), Some("y".into()), at(10))
            .unwrap()
    );
    // The same reason again changes nothing; a new reason keeps the hold's start.
    assert!(
        !retention
            .set_hold(account(2), Some("x".into()), at(25))
            .unwrap()
    );
    assert!(
        retention
            .set_hold(account(2), Some("z".into()), at(30))
            .unwrap()
    );
    assert_eq!(
        retention.holds().unwrap(),
        [
            Hold {
                h_payto: account(1),
                reason: "y".into(),
                since: at(10)
            },
            Hold {
                h_payto: account(2),
                reason: "z".into(),
                since: at(20)
            },
        ]
    );
    assert!(retention.set_hold(account(1), None, at(40)).unwrap());
    assert!(!retention.set_hold(account(1), None, at(41)).unwrap());
    assert_eq!(retention.holds().unwrap().len(), 1);

    let sha = |text: &str| crate::domain::primitives::crypto::sha512(text.as_bytes()).to_string();
    let hold = |owner: u8, on: bool, reason: &str| {
        (
            owner,
            "operator".to_owned(),
            serde_json::json!({"hold": on, "reason_sha512": sha(reason)}),
        )
    };
    assert_eq!(
        journaled(journal, "retention.hold"),
        [
            hold(2, true, "x"),
            hold(1, true, "y"),
            hold(2, true, "z"),
            hold(1, false, "y"),
        ]
    );
}

pub fn concurrent_purges_erase_and_journal_each_row_once(
    retention: &dyn RetentionStore,
    attributes: &dyn AttributeStore,
    journal: &dyn Journal,
) {
    let mut due = Vec::new();
    for owner in 1..=8u8 {
        due.push(add(attributes, owner, 1_000, Some(2_000)));
        due.push(add(attributes, owner, 1_000, Some(2_000)));
    }
    let purged: Vec<Purged> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    retention
                        .purge_attributes(at(NOW), RETENTION, Actor::system(), false)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(purged.iter().map(|p| p.rows).sum::<u64>(), 16);
    assert_eq!(purged.iter().map(|p| p.accounts).sum::<u64>(), 8);
    let mut journaled_rows: Vec<u64> = journaled(journal, "retention.purged")
        .iter()
        .flat_map(|(_, _, details)| {
            details["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    journaled_rows.sort_unstable();
    assert_eq!(journaled_rows, due);
}

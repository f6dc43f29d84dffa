//! The `ChallengeStore` conformance suite, written once and run against every implementation
//! (`challenge_store_conformance!`), so that the in-memory store cannot drift from SQLite.
//! Each function takes a fresh, empty store.

use std::collections::BTreeMap;

use crate::domain::challenges::{
    Client, CodeChallenge, IssuedCode, NewGrant, OAuthBinding, PkceMethod, Validation,
};
use crate::domain::primitives::Timestamp;

use super::challenges::{ChallengeStore, Purged, UpdateOutcome};

/// Expands to one `#[test]` per conformance function; `guarded:` keeps a fixture guard alive.
macro_rules! challenge_store_conformance {
    (guarded: $fixture:expr) => {
        $crate::ports::challenge_conformance::challenge_store_conformance!(@tests $fixture;
            clients_are_added_listed_and_deleted,
            creating_counts_for_the_client_and_needs_one,
            every_field_round_trips,
            updates_apply_only_to_the_expected_version,
            a_grant_is_stored_with_its_update_or_not_at_all,
            codes_find_their_validation,
            revoking_deletes_the_grants_of_one_code,
            deleting_a_client_deletes_its_validations_and_grants,
            purging_keeps_what_is_alive,
            concurrent_updates_of_one_version_succeed_once,
            concurrent_creations_count_every_validation,
        );
    };
    (@tests $fixture:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (_guard, store) = $fixture;
                $crate::ports::challenge_conformance::$name(&store);
            }
        )*
    };
    // `optional:` takes `Option<(guard, store)>`; on `None` (no database configured, the
    // fixture said so on the terminal) each test returns at once.
    (optional: $fixture:expr) => {
        $crate::ports::challenge_conformance::challenge_store_conformance!(guarded: match $fixture {
            Some(fixture) => fixture,
            None => return,
        });
    };
    ($make:expr) => {
        $crate::ports::challenge_conformance::challenge_store_conformance!(guarded: ((), $make));
    };
}
pub(crate) use challenge_store_conformance;

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_seconds(seconds).unwrap()
}

fn client(store: &dyn ChallengeStore) -> Client {
    store
        .add_client("https://client.example/cb", [7; 32])
        .unwrap()
}

/// A fresh validation as `/setup` creates it.
fn fresh(client_id: i64, nonce: u8) -> Validation {
    Validation {
        nonce: [nonce; 32],
        client_id,
        version: 0,
        created_at: at(1_700_000_000),
        expires_at: at(1_700_086_400),
        fix_address: false,
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
    }
}

fn address(email: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("CONTACT_EMAIL".to_owned(), email.to_owned())])
}

fn solved(mut v: Validation, code: u8) -> Validation {
    v.version += 1;
    v.address = Some(address("a@example.com"));
    v.solved_at = Some(at(1_700_000_100));
    v.code = Some(IssuedCode {
        hash: [code; 32],
        expires_at: at(1_700_000_700),
        used: false,
    });
    v
}

fn grant(token: u8, code: u8, token_expires: Timestamp) -> NewGrant {
    NewGrant {
        token_hash: [token; 32],
        code_hash: [code; 32],
        address: address("a@example.com"),
        address_type: "email".into(),
        address_expires: Timestamp::never(),
        token_expires,
    }
}

fn updated(outcome: UpdateOutcome) -> Option<i64> {
    match outcome {
        UpdateOutcome::Updated { grant_id } => grant_id,
        UpdateOutcome::Conflict => panic!("unexpected conflict"),
    }
}

pub fn clients_are_added_listed_and_deleted(store: &dyn ChallengeStore) {
    let first = client(store);
    let second = store.add_client("http://other.example/", [9; 32]).unwrap();
    assert!(second.id > first.id);
    assert_eq!(first.validation_counter, 0);
    assert_eq!(store.client(first.id).unwrap(), Some(first.clone()));
    assert_eq!(
        store.clients().unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert!(
        store
            .set_redirect_uri(second.id, "https://moved.example/")
            .unwrap()
    );
    assert_eq!(
        store.client(second.id).unwrap().unwrap().redirect_uri,
        "https://moved.example/"
    );
    assert!(
        !store
            .set_redirect_uri(999_999, "https://x.example/")
            .unwrap()
    );
    assert!(store.delete_client(first.id).unwrap());
    assert!(!store.delete_client(first.id).unwrap());
    assert_eq!(store.client(first.id).unwrap(), None);
    let third = client(store);
    assert!(third.id > second.id, "ids are never reused");
}

pub fn creating_counts_for_the_client_and_needs_one(store: &dyn ChallengeStore) {
    let c = client(store);
    assert!(store.create_validation(&fresh(c.id, 1)).unwrap());
    assert!(store.create_validation(&fresh(c.id, 2)).unwrap());
    assert_eq!(store.client(c.id).unwrap().unwrap().validation_counter, 2);
    assert!(!store.create_validation(&fresh(c.id + 100, 3)).unwrap());
    assert_eq!(store.validation(&[3; 32]).unwrap(), None);
    assert_eq!(store.validation(&[1; 32]).unwrap(), Some(fresh(c.id, 1)));
}

pub fn every_field_round_trips(store: &dyn ChallengeStore) {
    let c = client(store);
    let mut v = fresh(c.id, 1);
    v.fix_address = true;
    v.address = Some(BTreeMap::from([
        ("CONTACT_NAME".to_owned(), "Zoë \"Z\" Müller".to_owned()),
        (
            "ADDRESS_LINES".to_owned(),
            "Main St 1\n8000 Zürich".to_owned(),
        ),
    ]));
    v.expires_at = Timestamp::never();
    assert!(store.create_validation(&v).unwrap());
    assert_eq!(store.validation(&v.nonce).unwrap(), Some(v.clone()));
    let mut next = solved(v.clone(), 5);
    next.changes_left = 0;
    next.pin = Some("00123456".into());
    next.pin_transmissions_left = 1;
    next.auth_attempts_left = 2;
    next.last_tx_time = Some(at(1_700_000_050));
    next.retransmission_time = at(1_700_000_350);
    next.oauth = OAuthBinding {
        state: Some("st&te=1".into()),
        scope: Some("".into()),
        redirect_uri: Some("https://client.example/cb?x=1".into()),
        code_challenge: Some(CodeChallenge {
            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            method: PkceMethod::S256,
        }),
    };
    if let Some(code) = next.code.as_mut() {
        code.used = true;
    }
    updated(store.update_validation(0, &next, None).unwrap());
    assert_eq!(store.validation(&v.nonce).unwrap(), Some(next.clone()));
    next.version += 1;
    next.oauth.code_challenge = Some(CodeChallenge {
        challenge: "x".repeat(43),
        method: PkceMethod::Plain,
    });
    next.code = None;
    next.pin = None;
    updated(store.update_validation(1, &next, None).unwrap());
    assert_eq!(store.validation(&v.nonce).unwrap(), Some(next));
}

pub fn updates_apply_only_to_the_expected_version(store: &dyn ChallengeStore) {
    let c = client(store);
    let v = fresh(c.id, 1);
    store.create_validation(&v).unwrap();
    let mut next = v.clone();
    next.version = 1;
    next.auth_attempts_left = 2;
    assert_eq!(
        store.update_validation(1, &next, None).unwrap(),
        UpdateOutcome::Conflict
    );
    assert_eq!(store.validation(&v.nonce).unwrap(), Some(v.clone()));
    updated(store.update_validation(0, &next, None).unwrap());
    assert_eq!(
        store.update_validation(0, &next, None).unwrap(),
        UpdateOutcome::Conflict
    );
    let mut missing = fresh(c.id, 9);
    missing.version = 1;
    assert_eq!(
        store.update_validation(0, &missing, None).unwrap(),
        UpdateOutcome::Conflict
    );
    assert_eq!(store.validation(&[9; 32]).unwrap(), None);
}

pub fn a_grant_is_stored_with_its_update_or_not_at_all(store: &dyn ChallengeStore) {
    let c = client(store);
    let v = fresh(c.id, 1);
    store.create_validation(&v).unwrap();
    let next = solved(v.clone(), 5);
    let g = grant(8, 5, at(1_700_003_600));
    assert_eq!(
        store.update_validation(3, &next, Some(&g)).unwrap(),
        UpdateOutcome::Conflict
    );
    assert_eq!(store.grant(&[8; 32]).unwrap(), None);
    let id = updated(store.update_validation(0, &next, Some(&g)).unwrap()).unwrap();
    let stored = store.grant(&[8; 32]).unwrap().unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(stored.nonce, v.nonce);
    assert_eq!(stored.address, g.address);
    assert_eq!(stored.address_type, "email");
    assert_eq!(stored.address_expires, Timestamp::never());
    assert_eq!(stored.token_expires, at(1_700_003_600));
    assert_eq!(stored.code_hash, [5; 32]);
    let mut again = next.clone();
    again.version += 1;
    let second = updated(
        store
            .update_validation(1, &again, Some(&grant(9, 5, at(1_700_003_600))))
            .unwrap(),
    )
    .unwrap();
    assert!(second > id);
}

pub fn codes_find_their_validation(store: &dyn ChallengeStore) {
    let c = client(store);
    let v = fresh(c.id, 1);
    store.create_validation(&v).unwrap();
    store.create_validation(&fresh(c.id, 2)).unwrap();
    assert_eq!(store.validation_by_code(&[5; 32]).unwrap(), None);
    let next = solved(v, 5);
    updated(store.update_validation(0, &next, None).unwrap());
    assert_eq!(store.validation_by_code(&[5; 32]).unwrap(), Some(next));
    assert_eq!(store.validation_by_code(&[6; 32]).unwrap(), None);
}

pub fn revoking_deletes_the_grants_of_one_code(store: &dyn ChallengeStore) {
    let c = client(store);
    let v = fresh(c.id, 1);
    store.create_validation(&v).unwrap();
    let next = solved(v, 5);
    let expires = at(1_700_003_600);
    updated(
        store
            .update_validation(0, &next, Some(&grant(8, 5, expires)))
            .unwrap(),
    );
    let mut other = next.clone();
    other.version += 1;
    updated(
        store
            .update_validation(1, &other, Some(&grant(9, 6, expires)))
            .unwrap(),
    );
    assert_eq!(store.revoke_grants(&[5; 32]).unwrap(), 1);
    assert_eq!(store.revoke_grants(&[5; 32]).unwrap(), 0);
    assert_eq!(store.grant(&[8; 32]).unwrap(), None);
    assert!(store.grant(&[9; 32]).unwrap().is_some());
}

pub fn deleting_a_client_deletes_its_validations_and_grants(store: &dyn ChallengeStore) {
    let c = client(store);
    let keep = client(store);
    let v = fresh(c.id, 1);
    store.create_validation(&v).unwrap();
    store.create_validation(&fresh(keep.id, 2)).unwrap();
    updated(
        store
            .update_validation(0, &solved(v, 5), Some(&grant(8, 5, Timestamp::never())))
            .unwrap(),
    );
    assert!(store.delete_client(c.id).unwrap());
    assert_eq!(store.validation(&[1; 32]).unwrap(), None);
    assert_eq!(store.grant(&[8; 32]).unwrap(), None);
    assert!(store.validation(&[2; 32]).unwrap().is_some());
}

pub fn purging_keeps_what_is_alive(store: &dyn ChallengeStore) {
    let c = client(store);
    // 1: expired, no grant → purged. 2: alive. 3: expired, live grant → kept.
    // 4: expired, its grant expired → both purged.
    for nonce in 1..=4 {
        let mut v = fresh(c.id, nonce);
        v.expires_at = if nonce == 2 { at(2_000) } else { at(1_000) };
        store.create_validation(&v).unwrap();
        if nonce >= 3 {
            let token_expires = if nonce == 3 { at(3_000) } else { at(1_500) };
            let g = grant(nonce, nonce, token_expires);
            updated(
                store
                    .update_validation(0, &solved(v, nonce), Some(&g))
                    .unwrap(),
            );
        }
    }
    assert_eq!(store.purge_expired(at(999)).unwrap(), Purged::default());
    let purged = store.purge_expired(at(1_500)).unwrap();
    assert_eq!(
        purged,
        Purged {
            validations: 2,
            grants: 1
        }
    );
    for (nonce, alive) in [(1, false), (2, true), (3, true), (4, false)] {
        assert_eq!(
            store.validation(&[nonce; 32]).unwrap().is_some(),
            alive,
            "{nonce}"
        );
    }
    assert!(store.grant(&[3; 32]).unwrap().is_some());
    let purged = store.purge_expired(at(3_000)).unwrap();
    assert_eq!(
        purged,
        Purged {
            validations: 2,
            grants: 1
        }
    );
}

pub fn concurrent_updates_of_one_version_succeed_once(store: &dyn ChallengeStore) {
    let c = client(store);
    let v = fresh(c.id, 1);
    store.create_validation(&v).unwrap();
    let outcomes: Vec<UpdateOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u32)
            .map(|i| {
                let mut next = v.clone();
                next.version = 1;
                next.auth_attempts_left = i;
                scope.spawn(move || store.update_validation(0, &next, None).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, UpdateOutcome::Updated { .. }))
        .count();
    assert_eq!(wins, 1, "{outcomes:?}");
    assert_eq!(store.validation(&v.nonce).unwrap().unwrap().version, 1);
}

pub fn concurrent_creations_count_every_validation(store: &dyn ChallengeStore) {
    let c = client(store);
    std::thread::scope(|scope| {
        for nonce in 1..=8u8 {
            scope.spawn(move || assert!(store.create_validation(&fresh(c.id, nonce)).unwrap()));
        }
    });
    assert_eq!(store.client(c.id).unwrap().unwrap().validation_counter, 8);
    for nonce in 1..=8u8 {
        assert!(store.validation(&[nonce; 32]).unwrap().is_some());
    }
}

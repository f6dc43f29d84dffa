//! The `TanStore` conformance suite, run against every implementation
//! (`tan_store_conformance!`). Each function takes a fresh store in which the accounts
//! `ACCOUNT` and `OTHER` exist.

use serde_json::json;

use crate::domain::accounts::TanChannel;
use crate::domain::primitives::Timestamp;
use crate::domain::tan::{
    BodyKey, CanonicalBody, Challenge, ChallengeId, ChallengeState, Factor, Operation,
    RequestBinding, Role, TanSettings, confirm, reserve_send,
};
use crate::ports::random::SeededRandom;

use super::tan::TanStore;

pub const ACCOUNT: i64 = 1;
pub const OTHER: i64 = 2;

/// Expands to one `#[test]` per conformance function; `guarded:` keeps a fixture guard alive.
macro_rules! tan_store_conformance {
    (guarded: $fixture:expr) => {
        $crate::ports::tan_conformance::tan_store_conformance!(@tests $fixture;
            every_field_round_trips,
            challenges_are_found_only_under_their_account,
            replace_is_a_compare_and_swap,
            consume_marks_used_and_invalidates_the_rest,
            consume_refuses_what_no_longer_counts,
            purge_deletes_only_old_challenges,
            concurrent_replaces_of_one_state_succeed_once,
            concurrent_consumes_of_one_challenge_succeed_once,
            concurrent_consumes_with_invalidation_leave_one_winner,
        );
    };
    (@tests $fixture:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (_guard, store) = $fixture;
                $crate::ports::tan_conformance::$name(&store);
            }
        )*
    };
    // `optional:` takes `Option<(guard, store)>`; on `None` (no database configured, the
    // fixture said so on the terminal) each test returns at once.
    (optional: $fixture:expr) => {
        $crate::ports::tan_conformance::tan_store_conformance!(guarded: match $fixture {
            Some(fixture) => fixture,
            None => return,
        });
    };
    ($make:expr) => {
        $crate::ports::tan_conformance::tan_store_conformance!(guarded: ((), $make));
    };
}
pub(crate) use tan_store_conformance;

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_seconds(seconds).unwrap()
}

fn fresh(random: &SeededRandom, account_id: i64, created: u64) -> Challenge {
    let binding = RequestBinding {
        account_id,
        operation: Operation::AccountReconfig,
        body: CanonicalBody::of_json(&json!({"name": "A"})),
    };
    let factor = Factor {
        channel: TanChannel::Sms,
        address: "+41791234567".into(),
    };
    Challenge::new(
        random,
        &BodyKey::new([3; 32]),
        &binding,
        Role::Auth,
        &factor,
        &TanSettings::default(),
        at(created),
    )
}

fn solved(random: &SeededRandom, account_id: i64, now: u64) -> Challenge {
    let mut challenge = fresh(random, account_id, now);
    let ticket = reserve_send(
        &mut challenge,
        true,
        random,
        &TanSettings::default(),
        at(now),
    )
    .unwrap();
    confirm(&mut challenge, &ticket.code, at(now));
    challenge
}

pub fn every_field_round_trips(store: &dyn TanStore) {
    let random = SeededRandom::new(1);
    let plain = fresh(&random, ACCOUNT, 100);
    let mut full = fresh(&random, ACCOUNT, 100);
    full.operation = Operation::TokenCreate;
    full.role = Role::Address;
    full.channel = TanChannel::Email;
    full.address = "a@b.example".into();
    full.code = Some("01234567".into());
    full.code_expires_at = Some(at(200));
    full.attempts_left = 2;
    full.next_send_at = Some(at(160));
    full.solved_at = Some(at(150));
    full.used_at = Some(at(151));
    full.invalidated_at = Some(at(152));
    full.body_hash = None;
    store.create(&[plain.clone(), full.clone()]).unwrap();
    assert_eq!(store.challenge(ACCOUNT, &plain.id).unwrap(), Some(plain));
    assert_eq!(store.challenge(ACCOUNT, &full.id).unwrap(), Some(full));
}

pub fn challenges_are_found_only_under_their_account(store: &dyn TanStore) {
    let random = SeededRandom::new(2);
    let challenge = fresh(&random, ACCOUNT, 100);
    store.create(std::slice::from_ref(&challenge)).unwrap();
    assert_eq!(store.challenge(OTHER, &challenge.id).unwrap(), None);
    let unknown = ChallengeId::generate(&random);
    assert_eq!(store.challenge(ACCOUNT, &unknown).unwrap(), None);
    // A duplicate id stores nothing.
    let other = fresh(&random, ACCOUNT, 100);
    assert!(store.create(&[other.clone(), challenge]).is_err());
    assert_eq!(store.challenge(ACCOUNT, &other.id).unwrap(), None);
}

pub fn replace_is_a_compare_and_swap(store: &dyn TanStore) {
    let random = SeededRandom::new(3);
    let stored = fresh(&random, ACCOUNT, 100);
    store.create(std::slice::from_ref(&stored)).unwrap();
    let mut first = stored.clone();
    first.attempts_left = 2;
    let mut second = stored.clone();
    second.attempts_left = 1;
    assert!(store.replace(&stored, &first).unwrap());
    assert!(!store.replace(&stored, &second).unwrap());
    assert_eq!(store.challenge(ACCOUNT, &stored.id).unwrap(), Some(first));
}

pub fn consume_marks_used_and_invalidates_the_rest(store: &dyn TanStore) {
    let random = SeededRandom::new(4);
    let used = solved(&random, ACCOUNT, 100);
    let pending = fresh(&random, ACCOUNT, 100);
    let other_solved = solved(&random, ACCOUNT, 100);
    let foreign = fresh(&random, OTHER, 100);
    store
        .create(&[
            used.clone(),
            pending.clone(),
            other_solved.clone(),
            foreign.clone(),
        ])
        .unwrap();
    assert!(store.consume(ACCOUNT, &[used.id], true, at(120)).unwrap());
    let read = |id: &ChallengeId, account| store.challenge(account, id).unwrap().unwrap();
    let now_used = read(&used.id, ACCOUNT);
    assert_eq!(now_used.state(), ChallengeState::Used);
    assert_eq!(now_used.used_at, Some(at(120)));
    assert_eq!(now_used.body_hash, None);
    for id in [pending.id, other_solved.id] {
        let dead = read(&id, ACCOUNT);
        assert_eq!(dead.state(), ChallengeState::Dead);
        assert_eq!(dead.invalidated_at, Some(at(120)));
        assert_eq!(dead.body_hash, None);
    }
    assert_eq!(read(&foreign.id, OTHER), foreign);
    // Without invalidation the others stay as they are.
    let a = solved(&random, OTHER, 130);
    let b = solved(&random, OTHER, 130);
    store.create(&[a.clone(), b.clone()]).unwrap();
    assert!(store.consume(OTHER, &[a.id], false, at(140)).unwrap());
    assert_eq!(read(&b.id, OTHER), b);
}

pub fn consume_refuses_what_no_longer_counts(store: &dyn TanStore) {
    let random = SeededRandom::new(5);
    let once = solved(&random, ACCOUNT, 100);
    let pending = fresh(&random, ACCOUNT, 100);
    let foreign = solved(&random, OTHER, 100);
    store
        .create(&[once.clone(), pending.clone(), foreign.clone()])
        .unwrap();
    assert!(store.consume(ACCOUNT, &[once.id], false, at(110)).unwrap());
    // Used already, unsolved, another account's, unknown: nothing changes.
    let unknown = ChallengeId::generate(&random);
    for ids in [
        vec![once.id],
        vec![pending.id],
        vec![foreign.id],
        vec![unknown],
    ] {
        assert!(!store.consume(ACCOUNT, &ids, true, at(120)).unwrap());
    }
    assert_eq!(
        store.challenge(ACCOUNT, &pending.id).unwrap(),
        Some(pending)
    );
    assert_eq!(store.challenge(OTHER, &foreign.id).unwrap(), Some(foreign));
}

pub fn purge_deletes_only_old_challenges(store: &dyn TanStore) {
    let random = SeededRandom::new(6);
    let old = fresh(&random, ACCOUNT, 100);
    // Created early but sent late: its last event is the send.
    let mut sent = fresh(&random, ACCOUNT, 100);
    reserve_send(&mut sent, true, &random, &TanSettings::default(), at(500)).unwrap();
    let young = fresh(&random, OTHER, 400);
    store
        .create(&[old.clone(), sent.clone(), young.clone()])
        .unwrap();
    assert_eq!(store.purge_before(at(300)).unwrap(), 1);
    assert_eq!(store.challenge(ACCOUNT, &old.id).unwrap(), None);
    assert!(store.challenge(ACCOUNT, &sent.id).unwrap().is_some());
    assert!(store.challenge(OTHER, &young.id).unwrap().is_some());
}

/// Runs `call` on 8 threads at once; the number of calls that answered true.
fn wins(call: impl Fn(usize) -> bool + Sync) -> usize {
    let call = &call;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8).map(|i| scope.spawn(move || call(i))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|won| *won)
            .count()
    })
}

pub fn concurrent_replaces_of_one_state_succeed_once(store: &dyn TanStore) {
    let random = SeededRandom::new(7);
    let stored = fresh(&random, ACCOUNT, 100);
    store.create(std::slice::from_ref(&stored)).unwrap();
    let won = wins(|i| {
        // Every next state differs from the stored one, so that no replace is a no-op that
        // leaves the expected state in place for another.
        let mut next = stored.clone();
        next.attempts_left = stored.attempts_left + 1 + u32::try_from(i).unwrap();
        store.replace(&stored, &next).unwrap()
    });
    assert_eq!(won, 1);
    assert_ne!(store.challenge(ACCOUNT, &stored.id).unwrap(), Some(stored));
}

pub fn concurrent_consumes_of_one_challenge_succeed_once(store: &dyn TanStore) {
    let random = SeededRandom::new(8);
    let challenge = solved(&random, ACCOUNT, 100);
    store.create(std::slice::from_ref(&challenge)).unwrap();
    let won = wins(|_| {
        store
            .consume(ACCOUNT, &[challenge.id], false, at(110))
            .unwrap()
    });
    assert_eq!(won, 1);
    let stored = store.challenge(ACCOUNT, &challenge.id).unwrap().unwrap();
    assert_eq!(stored.state(), ChallengeState::Used);
}

/// Each caller consumes a solved challenge of its own and kills the account's others: the
/// first to commit wins, and every other finds its challenge dead.
pub fn concurrent_consumes_with_invalidation_leave_one_winner(store: &dyn TanStore) {
    let random = SeededRandom::new(9);
    let challenges: Vec<Challenge> = (0..8).map(|_| solved(&random, ACCOUNT, 100)).collect();
    store.create(&challenges).unwrap();
    let won = wins(|i| {
        store
            .consume(ACCOUNT, &[challenges[i].id], true, at(110))
            .unwrap()
    });
    assert_eq!(won, 1);
    let states: Vec<ChallengeState> = challenges
        .iter()
        .map(|c| store.challenge(ACCOUNT, &c.id).unwrap().unwrap().state())
        .collect();
    let used = states
        .iter()
        .filter(|s| **s == ChallengeState::Used)
        .count();
    let dead = states
        .iter()
        .filter(|s| **s == ChallengeState::Dead)
        .count();
    assert_eq!((used, dead), (1, 7), "{states:?}");
}

//! The TAN service over in-memory ports with a fake clock: 202 bodies, send and confirm
//! answers, delivery failures, retransmission and single use.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::domain::accounts::TanChannel;
use crate::domain::primitives::{RelativeTime, Timestamp};
use crate::ports::clock::FakeClock;
use crate::ports::random::SeededRandom;
use crate::ports::sender::RecordingSender;
use crate::ports::tan::{InMemoryTanStore, TanStore};

const ACCOUNT: i64 = 3;

struct Fixture {
    service: TanService,
    clock: Arc<FakeClock>,
    sms: Arc<RecordingSender>,
    store: Arc<InMemoryTanStore>,
}

fn fixture(with_email: bool) -> Fixture {
    let clock = Arc::new(FakeClock::at(
        Timestamp::from_seconds(1_700_000_000).unwrap(),
    ));
    let sms = Arc::new(RecordingSender::default());
    let store = Arc::new(InMemoryTanStore::default());
    let senders = TanSenders {
        sms: Some(sms.clone()),
        email: with_email.then(|| Arc::new(RecordingSender::default()) as _),
    };
    let service = TanService::new(
        store.clone(),
        senders,
        clock.clone(),
        Arc::new(SeededRandom::new(5)),
        BodyKey::new([4; 32]),
        TanSettings::default(),
        "Taler Bank".into(),
    );
    Fixture {
        service,
        clock,
        sms,
        store,
    }
}

fn binding() -> RequestBinding {
    RequestBinding {
        account_id: ACCOUNT,
        operation: Operation::AccountAuthReconfig,
        body: CanonicalBody::of_json(&json!({"new_password": "correct horse"})),
    }
}

fn phone() -> Factor {
    Factor {
        channel: TanChannel::Sms,
        address: "+41791234567".into(),
    }
}

/// The code of the last message sent, as the user reads it.
fn last_code(sms: &RecordingSender) -> String {
    let (_, message) = sms.last().unwrap();
    message
        .strip_prefix("T-")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

fn challenge_id(outcome: &GateOutcome) -> String {
    match outcome {
        GateOutcome::Challenged(body) => body.challenges[0].challenge_id.clone(),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn a_full_round_answers_202_then_proceeds_once() {
    let f = fixture(false);
    let first = f.service.gate(&[phone()], &[], &[], &binding()).unwrap();
    let GateOutcome::Challenged(body) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(
        serde_json::to_value(body).unwrap(),
        json!({"challenges": [{"challenge_id": body.challenges[0].challenge_id,
            "tan_channel": "sms", "tan_info": "+41791234567"}], "combi_and": false})
    );
    let id = challenge_id(&first);
    assert_eq!(id.len(), 26);
    assert!(
        f.sms.messages().is_empty(),
        "nothing is sent before the send call"
    );
    let answer = f.service.send(Some(ACCOUNT), &id).unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        json!({"solve_expiration": {"t_s": 1_700_003_600u64},
            "earliest_retransmission": {"t_s": 1_700_000_060u64}})
    );
    let (address, message) = f.sms.last().unwrap();
    assert_eq!(address, "+41791234567");
    assert!(message.ends_with(" is your Taler Bank verification code"));
    let code = last_code(&f.sms);
    f.service.confirm(Some(ACCOUNT), &id, &code).unwrap();
    let parsed = ChallengeId::parse(&id).unwrap();
    let replay = f
        .service
        .gate(&[phone()], &[], &[parsed], &binding())
        .unwrap();
    assert_eq!(replay, GateOutcome::Proceed { used: vec![parsed] });
    assert!(f.service.consume(ACCOUNT, &[parsed], false).unwrap());
    // Used: a second replay gets a fresh 202.
    let again = f
        .service
        .gate(&[phone()], &[], &[parsed], &binding())
        .unwrap();
    assert_ne!(challenge_id(&again), id);
}

#[test]
fn send_and_confirm_errors_carry_the_spec_statuses() {
    let f = fixture(false);
    let status = |r: Result<(), TanFailure>| r.map_err(|e| (e.status, e.error.code.number()));
    let id = challenge_id(&f.service.gate(&[phone()], &[], &[], &binding()).unwrap());
    // Unknown account, other account, malformed and unknown ids: 404/5107.
    for (account, text) in [
        (None, id.as_str()),
        (Some(ACCOUNT + 1), id.as_str()),
        (Some(ACCOUNT), "nope"),
        (Some(ACCOUNT), "00000000000000000000000000"),
    ] {
        assert_eq!(
            status(f.service.send(account, text).map(|_| ())),
            Err((404, 5107))
        );
        assert_eq!(
            status(f.service.confirm(account, text, "1")),
            Err((404, 5107))
        );
    }
    // Before any send: 409/5144.
    assert_eq!(
        status(f.service.confirm(Some(ACCOUNT), &id, "1")),
        Err((409, 5144))
    );
    f.service.send(Some(ACCOUNT), &id).unwrap();
    // Within the retransmission period: 429/5131, nothing sent.
    assert_eq!(
        status(f.service.send(Some(ACCOUNT), &id).map(|_| ())),
        Err((429, 5131))
    );
    assert_eq!(f.sms.messages().len(), 1);
    assert_eq!(
        status(f.service.confirm(Some(ACCOUNT), &id, "x")),
        Err((409, 5134))
    );
    assert_eq!(
        status(f.service.confirm(Some(ACCOUNT), &id, "y")),
        Err((409, 5134))
    );
    assert_eq!(
        status(f.service.confirm(Some(ACCOUNT), &id, "z")),
        Err((429, 5131))
    );
    let code = last_code(&f.sms);
    assert_eq!(
        status(f.service.confirm(Some(ACCOUNT), &id, &code)),
        Err((429, 5131))
    );
    // A new send after the period issues a new code.
    f.clock.advance(RelativeTime::from_seconds(60));
    f.service.send(Some(ACCOUNT), &id).unwrap();
    let fresh = last_code(&f.sms);
    assert_eq!(
        status(f.service.confirm(Some(ACCOUNT), &id, &fresh)),
        Ok(())
    );
    // Solved: confirm is 204 whatever the code, send is 410/9999.
    assert_eq!(
        status(f.service.confirm(Some(ACCOUNT), &id, "wrong")),
        Ok(())
    );
    assert_eq!(
        status(f.service.send(Some(ACCOUNT), &id).map(|_| ())),
        Err((410, 9999))
    );
}

#[test]
fn a_failed_delivery_is_502_and_does_not_start_the_period() {
    let f = fixture(false);
    let id = challenge_id(&f.service.gate(&[phone()], &[], &[], &binding()).unwrap());
    f.sms.set_failing(true);
    let failure = f.service.send(Some(ACCOUNT), &id).unwrap_err();
    assert_eq!((failure.status, failure.error.code.number()), (502, 5133));
    f.sms.set_failing(false);
    f.service.send(Some(ACCOUNT), &id).unwrap();
    assert_eq!(f.sms.messages().len(), 1);
}

#[test]
fn a_channel_without_delivery_is_409_5132() {
    let f = fixture(false);
    let mail = Factor {
        channel: TanChannel::Email,
        address: "a@b.example".into(),
    };
    let id = challenge_id(&f.service.gate(&[mail], &[], &[], &binding()).unwrap());
    let failure = f.service.send(Some(ACCOUNT), &id).unwrap_err();
    assert_eq!((failure.status, failure.error.code.number()), (409, 5132));
}

#[test]
fn dead_challenges_are_404_5144_and_the_replay_gets_a_fresh_202() {
    let f = fixture(true);
    let id = challenge_id(&f.service.gate(&[phone()], &[], &[], &binding()).unwrap());
    f.service.send(Some(ACCOUNT), &id).unwrap();
    let code = last_code(&f.sms);
    f.service.confirm(Some(ACCOUNT), &id, &code).unwrap();
    // Another request changes the factor set: every open challenge dies.
    assert!(f.service.consume(ACCOUNT, &[], true).unwrap());
    let failure = f.service.confirm(Some(ACCOUNT), &id, &code).unwrap_err();
    assert_eq!((failure.status, failure.error.code.number()), (404, 5144));
    f.clock.advance(RelativeTime::from_seconds(60));
    let failure = f.service.send(Some(ACCOUNT), &id).unwrap_err();
    assert_eq!((failure.status, failure.error.code.number()), (404, 5144));
    let parsed = ChallengeId::parse(&id).unwrap();
    let replay = f
        .service
        .gate(&[phone()], &[], &[parsed], &binding())
        .unwrap();
    assert!(matches!(replay, GateOutcome::Challenged(_)));
    assert_eq!(
        f.store
            .challenge(ACCOUNT, &parsed)
            .unwrap()
            .unwrap()
            .body_hash,
        None
    );
}

#[test]
fn garbage_collection_deletes_challenges_quiet_for_gc_clean_after() {
    let f = fixture(false);
    let id = challenge_id(&f.service.gate(&[phone()], &[], &[], &binding()).unwrap());
    f.service.send(Some(ACCOUNT), &id).unwrap();
    let parsed = ChallengeId::parse(&id).unwrap();
    // The last event is the code's expiry, an hour after the send.
    f.clock.advance(RelativeTime::from_seconds(14 * 24 * 3600));
    assert_eq!(f.service.purge_stale().unwrap(), 0);
    assert!(f.store.challenge(ACCOUNT, &parsed).unwrap().is_some());
    f.clock.advance(RelativeTime::from_seconds(3601));
    assert_eq!(f.service.purge_stale().unwrap(), 1);
    assert!(f.store.challenge(ACCOUNT, &parsed).unwrap().is_none());
    // The confirm endpoint then knows it no more.
    assert_eq!(
        f.service
            .confirm(Some(ACCOUNT), &id, "00000000")
            .unwrap_err()
            .status,
        404
    );
}

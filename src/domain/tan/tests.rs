//! The gate's decision table, replay matching and the send/confirm transitions, with a
//! fake clock and seeded randomness (corebank-tan.md §3–§6, §8).

use serde_json::json;

use super::*;
use crate::domain::accounts::{ContactData, TanChannel};
use crate::domain::primitives::{ErrorCode, RelativeTime, Timestamp};
use crate::ports::clock::{Clock, FakeClock};
use crate::ports::random::SeededRandom;

const ACCOUNT: i64 = 7;

struct World {
    clock: FakeClock,
    random: SeededRandom,
    key: BodyKey,
    settings: TanSettings,
}

fn world() -> World {
    World {
        clock: FakeClock::at(Timestamp::from_seconds(1_700_000_000).unwrap()),
        random: SeededRandom::new(14),
        key: BodyKey::new([9; 32]),
        settings: TanSettings::default(),
    }
}

fn patch(body: serde_json::Value) -> RequestBinding {
    RequestBinding {
        account_id: ACCOUNT,
        operation: Operation::AccountReconfig,
        body: CanonicalBody::of_json(&body),
    }
}

fn sms(address: &str) -> Factor {
    Factor {
        channel: TanChannel::Sms,
        address: address.to_owned(),
    }
}

fn email(address: &str) -> Factor {
    Factor {
        channel: TanChannel::Email,
        address: address.to_owned(),
    }
}

impl World {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn challenge(&self, binding: &RequestBinding, role: Role, factor: &Factor) -> Challenge {
        Challenge::new(
            &self.random,
            &self.key,
            binding,
            role,
            factor,
            &self.settings,
            self.now(),
        )
    }

    /// A challenge sent and confirmed with its code.
    fn solved(&self, binding: &RequestBinding, role: Role, factor: &Factor) -> Challenge {
        let mut challenge = self.challenge(binding, role, factor);
        let ticket = reserve_send(
            &mut challenge,
            true,
            &self.random,
            &self.settings,
            self.now(),
        )
        .unwrap();
        assert_eq!(
            confirm(&mut challenge, &ticket.code, self.now()),
            ConfirmOutcome::Solved
        );
        challenge
    }

    fn decide(
        &self,
        current: &[Factor],
        new: &[Factor],
        presented: &[Challenge],
        binding: &RequestBinding,
    ) -> Decision {
        decide(
            current,
            new,
            presented,
            &self.key,
            binding,
            &self.settings,
            self.now(),
        )
    }
}

fn auth_round(factors: Vec<Factor>) -> Decision {
    Decision::Challenge {
        role: Role::Auth,
        factors,
        combi_and: false,
    }
}

fn address_round(factors: Vec<Factor>) -> Decision {
    Decision::Challenge {
        role: Role::Address,
        factors,
        combi_and: true,
    }
}

#[test]
fn canonical_body_sorts_keys_and_drops_whitespace() {
    let body: serde_json::Value =
        serde_json::from_str(r#"{ "z": 1, "a": {"y": [1, 2], "b": "x"}, "m": null }"#).unwrap();
    assert_eq!(
        CanonicalBody::of_json(&body).as_str(),
        r#"{"a":{"b":"x","y":[1,2]},"m":null,"z":1}"#
    );
    assert_eq!(CanonicalBody::empty().as_str(), "");
}

#[test]
fn body_hash_is_keyed_and_salted() {
    let body = CanonicalBody::of_json(&json!({"password": "secret-password"}));
    let key = BodyKey::new([1; 32]);
    let hash = key.hash(&[0; 16], &body);
    assert_eq!(hash, key.hash(&[0; 16], &body));
    assert_ne!(hash, key.hash(&[1; 16], &body));
    assert_ne!(hash, BodyKey::new([2; 32]).hash(&[0; 16], &body));
    assert_ne!(
        hash,
        key.hash(
            &[0; 16],
            &CanonicalBody::of_json(&json!({"password": "other"}))
        )
    );
}

#[test]
fn factor_sets_pair_channels_with_addresses_in_canonical_order() {
    let contact = ContactData {
        email: Some("e@x.ch".into()),
        phone: Some("+99".into()),
    };
    assert_eq!(
        factor_set(
            &[TanChannel::Email, TanChannel::Sms, TanChannel::Email],
            &contact
        ),
        vec![sms("+99"), email("e@x.ch")]
    );
    assert!(factor_set(&[], &contact).is_empty());
    let no_phone = ContactData {
        phone: None,
        ..contact
    };
    assert_eq!(
        factor_set(&[TanChannel::Sms, TanChannel::Email], &no_phone),
        vec![email("e@x.ch")]
    );
    assert_eq!(
        new_factors(&[sms("+99")], &[sms("+98"), email("e@x.ch")]),
        vec![sms("+98"), email("e@x.ch")]
    );
    assert!(!factors_differ(
        &[sms("+1"), email("a@b")],
        &[sms("+1"), email("a@b")]
    ));
    assert!(factors_differ(&[sms("+1")], &[]));
    assert!(factors_differ(&[], &[sms("+1")]));
}

#[test]
fn presented_ids_are_split_trimmed_and_deduplicated() {
    let w = world();
    let a = ChallengeId::generate(&w.random);
    let b = ChallengeId::generate(&w.random);
    assert_eq!(a.encode().len(), 26);
    let first = format!(" {},\t{} ,,", a.encode(), b.encode());
    let second = format!("{},not-an-id,", a.encode());
    assert_eq!(presented_ids([first.as_str(), second.as_str()]), vec![a, b]);
    assert!(presented_ids(["", " , "]).is_empty());
}

#[test]
fn codes_are_eight_digits_and_messages_carry_them() {
    let w = world();
    let codes: Vec<String> = (0..200).map(|_| generate_code(&w.random)).collect();
    assert!(
        codes
            .iter()
            .all(|code| code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit()))
    );
    assert!(codes.windows(2).any(|pair| pair[0] != pair[1]));
    assert_eq!(
        code_message("01234567", "Taler Bank"),
        "T-01234567 is your Taler Bank verification code"
    );
    assert_eq!(normalise_tan(" T-01234567\n"), "01234567");
    assert_eq!(normalise_tan("t-01234567"), "t-01234567");
    assert_eq!(normalise_tan("T-T-1"), "T-1");
}

// §4.2 decision table over (F, N, presented).

#[test]
fn an_account_without_2fa_and_no_new_pairs_runs() {
    let w = world();
    let binding = patch(json!({"name": "A"}));
    assert_eq!(
        w.decide(&[], &[], &[], &binding),
        Decision::Proceed { used: vec![] }
    );
}

#[test]
fn the_current_factor_is_challenged_first_and_any_one_suffices() {
    let w = world();
    let binding = patch(json!({}));
    let current = [sms("+99"), email("e@x.ch")];
    assert_eq!(
        w.decide(&current, &[], &[], &binding),
        auth_round(current.to_vec())
    );
    let solved = w.solved(&binding, Role::Auth, &email("e@x.ch"));
    assert_eq!(
        w.decide(&current, &[], std::slice::from_ref(&solved), &binding),
        Decision::Proceed {
            used: vec![solved.id]
        }
    );
}

#[test]
fn turning_2fa_on_skips_round_one_and_needs_every_new_address() {
    let w = world();
    let binding = patch(json!({"tan_channels": ["sms", "email"]}));
    let new = [sms("+99"), email("e@x.ch")];
    assert_eq!(
        w.decide(&[], &new, &[], &binding),
        address_round(new.to_vec())
    );
    let first = w.solved(&binding, Role::Address, &sms("+99"));
    assert_eq!(
        w.decide(&[], &new, std::slice::from_ref(&first), &binding),
        address_round(vec![email("e@x.ch")])
    );
    let second = w.solved(&binding, Role::Address, &email("e@x.ch"));
    assert_eq!(
        w.decide(&[], &new, &[first.clone(), second.clone()], &binding),
        Decision::Proceed {
            used: vec![first.id, second.id]
        }
    );
}

#[test]
fn a_changed_address_takes_two_rounds_and_round_two_ids_alone_pass() {
    let w = world();
    let binding = patch(json!({"contact_data": {"phone": "+98"}}));
    let current = [sms("+99")];
    let new = [sms("+98")];
    assert_eq!(
        w.decide(&current, &new, &[], &binding),
        auth_round(vec![sms("+99")])
    );
    let round1 = w.solved(&binding, Role::Auth, &sms("+99"));
    assert_eq!(
        w.decide(&current, &new, std::slice::from_ref(&round1), &binding),
        address_round(vec![sms("+98")])
    );
    let round2 = w.solved(&binding, Role::Address, &sms("+98"));
    assert_eq!(
        w.decide(&current, &new, std::slice::from_ref(&round2), &binding),
        Decision::Proceed {
            used: vec![round2.id]
        }
    );
    assert_eq!(
        w.decide(&current, &new, &[round1.clone(), round2.clone()], &binding),
        Decision::Proceed {
            used: vec![round1.id, round2.id]
        }
    );
}

#[test]
fn an_auth_challenge_does_not_prove_a_new_address() {
    let w = world();
    let binding = patch(json!({"tan_channel": "email"}));
    // An `auth` challenge that happens to name the new pair is not an `address` proof.
    let auth_to_new = w.solved(&binding, Role::Auth, &email("e@x.ch"));
    assert_eq!(
        w.decide(&[sms("+98")], &[email("e@x.ch")], &[auth_to_new], &binding),
        address_round(vec![email("e@x.ch")])
    );
    // An `address` challenge for another address does not count for this one.
    let other = w.solved(&binding, Role::Address, &email("other@x.ch"));
    assert_eq!(
        w.decide(&[], &[email("e@x.ch")], &[other], &binding),
        address_round(vec![email("e@x.ch")])
    );
}

#[test]
fn replays_must_match_account_operation_and_body() {
    let w = world();
    let current = [sms("+99")];
    let binding = patch(json!({"name": "A", "is_public": true}));
    let solved = w.solved(&binding, Role::Auth, &sms("+99"));
    // Key order and whitespace do not matter.
    let reordered = patch(serde_json::from_str(r#"{ "is_public": true, "name": "A" }"#).unwrap());
    assert_eq!(
        w.decide(&current, &[], std::slice::from_ref(&solved), &reordered),
        Decision::Proceed {
            used: vec![solved.id]
        }
    );
    let other_body = patch(json!({"name": "B", "is_public": true}));
    let extra_field = patch(json!({"name": "A", "is_public": true, "x": 1}));
    let other_account = RequestBinding {
        account_id: ACCOUNT + 1,
        ..binding.clone()
    };
    let other_operation = RequestBinding {
        operation: Operation::AccountAuthReconfig,
        ..binding.clone()
    };
    for other in [other_body, extra_field, other_account, other_operation] {
        assert_eq!(
            w.decide(&current, &[], std::slice::from_ref(&solved), &other),
            auth_round(current.to_vec()),
            "{other:?}"
        );
    }
}

#[test]
fn unsolved_used_dead_and_stale_challenges_are_ignored() {
    let w = world();
    let current = [sms("+99")];
    let binding = patch(json!({}));
    let pending = w.challenge(&binding, Role::Auth, &sms("+99"));
    let mut used = w.solved(&binding, Role::Auth, &sms("+99"));
    mark_used(&mut used, w.now());
    assert_eq!(used.body_hash, None);
    let mut dead = w.solved(&binding, Role::Auth, &sms("+99"));
    assert!(invalidate(&mut dead, w.now()));
    assert_eq!(dead.state(), ChallengeState::Dead);
    for ignored in [pending, used, dead] {
        assert_eq!(
            w.decide(&current, &[], &[ignored], &binding),
            auth_round(current.to_vec())
        );
    }
    // The replay window is TAN_VALIDITY_PERIOD after solving.
    let solved = w.solved(&binding, Role::Auth, &sms("+99"));
    w.clock.advance(RelativeTime::from_seconds(3599));
    assert!(matches!(
        w.decide(&current, &[], std::slice::from_ref(&solved), &binding),
        Decision::Proceed { .. }
    ));
    w.clock.advance(RelativeTime::from_seconds(1));
    assert_eq!(
        w.decide(&current, &[], &[solved], &binding),
        auth_round(current.to_vec())
    );
}

/// Channels and contact before, channels and contact after, round 1, round 2.
type WorkedCase = (
    Vec<TanChannel>,
    ContactData,
    Vec<TanChannel>,
    ContactData,
    Vec<Factor>,
    Vec<Factor>,
);

#[test]
fn the_worked_cases_of_the_spec_choose_the_same_rounds() {
    let w = world();
    let contact = |phone: Option<&str>, mail: Option<&str>| ContactData {
        phone: phone.map(str::to_owned),
        email: mail.map(str::to_owned),
    };
    use TanChannel::{Email, Sms};
    // The rows of §8.2.
    let rows: Vec<WorkedCase> = vec![
        (
            vec![],
            contact(None, None),
            vec![Sms],
            contact(Some("+99"), Some("e@x.ch")),
            vec![],
            vec![sms("+99")],
        ),
        (
            vec![Sms],
            contact(Some("+99"), None),
            vec![Sms],
            contact(Some("+98"), None),
            vec![sms("+99")],
            vec![sms("+98")],
        ),
        (
            vec![Sms],
            contact(Some("+98"), Some("e@x.ch")),
            vec![Email],
            contact(Some("+98"), Some("e@x.ch")),
            vec![sms("+98")],
            vec![email("e@x.ch")],
        ),
        (
            vec![Email],
            contact(None, Some("e@x.ch")),
            vec![Sms],
            contact(Some("+97"), Some("e@x.ch")),
            vec![email("e@x.ch")],
            vec![sms("+97")],
        ),
        (
            vec![Sms],
            contact(Some("+97"), None),
            vec![],
            contact(Some("+97"), None),
            vec![sms("+97")],
            vec![],
        ),
        (
            vec![Sms],
            contact(Some("+88"), None),
            vec![Sms],
            contact(Some("+88"), None),
            vec![sms("+88")],
            vec![],
        ),
        (
            vec![Sms],
            contact(Some("+88"), None),
            vec![Sms],
            contact(Some("+88"), Some("new@x.ch")),
            vec![sms("+88")],
            vec![],
        ),
    ];
    for (i, (before, contact_before, after, contact_after, round1, round2)) in
        rows.into_iter().enumerate()
    {
        let binding = patch(json!({ "row": i }));
        let current = factor_set(&before, &contact_before);
        let new = new_factors(&current, &factor_set(&after, &contact_after));
        let mut presented = Vec::new();
        if !round1.is_empty() {
            assert_eq!(
                w.decide(&current, &new, &[], &binding),
                auth_round(round1.clone()),
                "row {i}"
            );
            presented.push(w.solved(&binding, Role::Auth, &round1[0]));
        }
        if !round2.is_empty() {
            assert_eq!(
                w.decide(&current, &new, &presented, &binding),
                address_round(round2.clone()),
                "row {i}"
            );
            for factor in &round2 {
                presented.push(w.solved(&binding, Role::Address, factor));
            }
        }
        assert_eq!(
            w.decide(&current, &new, &presented, &binding),
            Decision::Proceed {
                used: presented.iter().map(|c| c.id).collect()
            },
            "row {i}"
        );
    }
}

// §5 send and §6 confirm.

#[test]
fn the_first_send_issues_a_code_and_retransmission_waits_and_repeats_it() {
    let w = world();
    let binding = patch(json!({}));
    let mut challenge = w.challenge(&binding, Role::Auth, &sms("+99"));
    assert_eq!(challenge.code, None);
    assert_eq!(challenge.attempts_left, 3);
    let first = reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()).unwrap();
    assert_eq!(
        first.solve_expiration,
        w.now().saturating_add(RelativeTime::from_seconds(3600))
    );
    assert_eq!(
        first.earliest_retransmission,
        w.now().saturating_add(RelativeTime::from_seconds(60))
    );
    assert_eq!(first.previous_next_send_at, None);
    w.clock.advance(RelativeTime::from_seconds(59));
    assert_eq!(
        reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()),
        Err(SendRefusal::TooEarly)
    );
    w.clock.advance(RelativeTime::from_seconds(1));
    let again = reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()).unwrap();
    assert_eq!(again.code, first.code);
    assert_eq!(again.solve_expiration, first.solve_expiration);
    assert_eq!(
        again.previous_next_send_at,
        Some(first.earliest_retransmission)
    );
}

#[test]
fn a_failed_send_restores_the_period_and_keeps_the_code() {
    let w = world();
    let mut challenge = w.challenge(&patch(json!({})), Role::Auth, &sms("+99"));
    let ticket = reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()).unwrap();
    undo_failed_send(&mut challenge, &ticket);
    assert_eq!(challenge.next_send_at, None);
    let retry = reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()).unwrap();
    assert_eq!(retry.code, ticket.code);
}

#[test]
fn an_expired_or_exhausted_code_is_replaced_on_send() {
    let w = world();
    let mut challenge = w.challenge(&patch(json!({})), Role::Auth, &sms("+99"));
    let first = reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()).unwrap();
    w.clock.advance(RelativeTime::from_seconds(3600));
    assert_eq!(
        confirm(&mut challenge, &first.code, w.now()),
        ConfirmOutcome::CodeExpired
    );
    let second = reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()).unwrap();
    assert_ne!(second.code, first.code);
    for expected in [
        ConfirmOutcome::Wrong,
        ConfirmOutcome::Wrong,
        ConfirmOutcome::Exhausted,
    ] {
        assert_eq!(confirm(&mut challenge, "nope", w.now()), expected);
    }
    // Even the right code is refused until a new one is sent.
    assert_eq!(
        confirm(&mut challenge, &second.code, w.now()),
        ConfirmOutcome::Exhausted
    );
    assert_eq!(challenge.attempts_left, 0);
    w.clock.advance(RelativeTime::from_seconds(60));
    let third = reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()).unwrap();
    assert_ne!(third.code, second.code);
    assert_eq!(challenge.attempts_left, 3);
    assert_eq!(
        confirm(&mut challenge, &format!("T-{}", third.code), w.now()),
        ConfirmOutcome::Solved
    );
}

#[test]
fn the_right_code_on_the_last_attempt_solves() {
    let w = world();
    let mut challenge = w.challenge(&patch(json!({})), Role::Auth, &sms("+99"));
    let ticket = reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()).unwrap();
    assert_eq!(confirm(&mut challenge, "1", w.now()), ConfirmOutcome::Wrong);
    assert_eq!(confirm(&mut challenge, "2", w.now()), ConfirmOutcome::Wrong);
    assert_eq!(
        confirm(&mut challenge, &ticket.code, w.now()),
        ConfirmOutcome::Solved
    );
    assert_eq!(challenge.solved_at, Some(w.now()));
    // Solved: confirm answers 204 whatever the code, send answers 410.
    assert_eq!(
        confirm(&mut challenge, "wrong", w.now()),
        ConfirmOutcome::AlreadySolved
    );
    assert_eq!(
        reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()),
        Err(SendRefusal::Solved)
    );
}

#[test]
fn confirm_before_any_send_is_an_expired_tan() {
    let w = world();
    let mut challenge = w.challenge(&patch(json!({})), Role::Auth, &sms("+99"));
    assert_eq!(
        confirm(&mut challenge, "00000000", w.now()),
        ConfirmOutcome::CodeExpired
    );
    assert_eq!(challenge.attempts_left, 3);
}

#[test]
fn dead_challenges_refuse_send_and_confirm() {
    let w = world();
    let mut challenge = w.challenge(&patch(json!({})), Role::Auth, &sms("+99"));
    let ticket = reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()).unwrap();
    assert!(invalidate(&mut challenge, w.now()));
    assert!(!invalidate(&mut challenge, w.now()));
    assert_eq!(
        confirm(&mut challenge, &ticket.code, w.now()),
        ConfirmOutcome::Dead
    );
    w.clock.advance(RelativeTime::from_seconds(60));
    assert_eq!(
        reserve_send(&mut challenge, true, &w.random, &w.settings, w.now()),
        Err(SendRefusal::Dead)
    );
    // A used challenge is not killed by a later change.
    let mut used = w.solved(&patch(json!({})), Role::Auth, &sms("+99"));
    mark_used(&mut used, w.now());
    assert!(!invalidate(&mut used, w.now()));
    assert_eq!(used.state(), ChallengeState::Used);
}

#[test]
fn an_unconfigured_channel_refuses_the_send_without_reserving() {
    let w = world();
    let mut challenge = w.challenge(&patch(json!({})), Role::Auth, &email("e@x.ch"));
    assert_eq!(
        reserve_send(&mut challenge, false, &w.random, &w.settings, w.now()),
        Err(SendRefusal::ChannelUnsupported)
    );
    assert_eq!(challenge.next_send_at, None);
    assert_eq!(challenge.code, None);
}

#[test]
fn refusals_map_to_the_spec_statuses_and_codes() {
    let cases = [
        (
            SendRefusal::Dead,
            404,
            ErrorCode::BankTanChallengeExpired,
            5144,
        ),
        (SendRefusal::Solved, 410, ErrorCode::End, 9999),
        (
            SendRefusal::TooEarly,
            429,
            ErrorCode::BankTanRateLimited,
            5131,
        ),
        (
            SendRefusal::ChannelUnsupported,
            409,
            ErrorCode::BankTanChannelNotSupported,
            5132,
        ),
    ];
    for (refusal, status, code, number) in cases {
        assert_eq!(refusal.status(), status);
        assert_eq!(refusal.error().code, code);
        assert_eq!(code.number(), number);
    }
    let outcomes = [
        (ConfirmOutcome::Solved, 204, None),
        (ConfirmOutcome::AlreadySolved, 204, None),
        (ConfirmOutcome::Dead, 404, Some(5144)),
        (ConfirmOutcome::Exhausted, 429, Some(5131)),
        (ConfirmOutcome::CodeExpired, 409, Some(5144)),
        (ConfirmOutcome::Wrong, 409, Some(5134)),
    ];
    for (outcome, status, number) in outcomes {
        assert_eq!(outcome.status(), status);
        assert_eq!(outcome.error().map(|e| e.code.number()), number);
    }
}

//! The validation state machine over in-memory ports with a fake clock (spec §4–§9).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::*;
use crate::domain::primitives::{ErrorCode, RelativeTime, TalerError, Timestamp};
use crate::ports::challenges::{ChallengeStore, InMemoryChallengeStore};
use crate::ports::clock::{Clock, FakeClock};
use crate::ports::random::SeededRandom;
use crate::ports::sender::{RecordingSender, Sender};

const SECRET: &str = "secret-token:client";
const REDIRECT: &str = "https://exchange.example/kyc-proof/challenger";
const START: u64 = 1_700_000_000;

struct Fixture {
    service: ChallengeService,
    store: Arc<InMemoryChallengeStore>,
    sender: Arc<RecordingSender>,
    clock: Arc<FakeClock>,
    client: Client,
}

fn fixture_with(adjust: impl FnOnce(&mut ChallengerSettings)) -> Fixture {
    let mut settings = ChallengerSettings::defaults(AddressType::Email);
    settings.restrictions = vec![Restriction {
        field: "CONTACT_EMAIL".into(),
        regex: regex::Regex::new("^[^@ ]+@[^@ ]+$").unwrap(),
        hint: Some("e-mail address".into()),
    }];
    adjust(&mut settings);
    let store = Arc::new(InMemoryChallengeStore::default());
    let sender = Arc::new(RecordingSender::default());
    let clock = Arc::new(FakeClock::at(Timestamp::from_seconds(START).unwrap()));
    let service = ChallengeService::new(
        Arc::clone(&store) as Arc<dyn ChallengeStore>,
        Arc::clone(&sender) as Arc<dyn Sender>,
        Arc::clone(&clock) as Arc<dyn Clock>,
        Arc::new(SeededRandom::new(7)),
        settings,
    );
    let client = service.add_client(SECRET, REDIRECT).unwrap();
    Fixture {
        service,
        store,
        sender,
        clock,
        client,
    }
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

fn code(result: Result<impl std::fmt::Debug, TalerError>) -> u32 {
    result.unwrap_err().code.number()
}

fn params(pairs: &[(&str, &str)]) -> Params {
    Params(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn email(address: &str) -> Result<Map<String, Value>, TalerError> {
    Ok(json!({ "CONTACT_EMAIL": address })
        .as_object()
        .unwrap()
        .clone())
}

fn minutes(n: u64) -> RelativeTime {
    RelativeTime::from_seconds(n * 60)
}

/// The only run of 8 or more digits in a message.
fn pin_in(message: &str) -> String {
    let runs: Vec<&str> = message
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 8)
        .collect();
    assert_eq!(runs.len(), 1, "{message}");
    runs[0].to_owned()
}

impl Fixture {
    fn bearer(&self) -> String {
        format!("Bearer {SECRET}")
    }

    fn setup(&self, body: Option<Value>) -> String {
        let id = self.client.id.to_string();
        self.service
            .setup(&id, Some(&self.bearer()), Ok(body))
            .unwrap()
            .nonce
    }

    fn authorize(
        &self,
        nonce: &str,
        extra: &[(&str, &str)],
    ) -> Result<ChallengeStatus, TalerError> {
        let id = self.client.id.to_string();
        // The first occurrence of a parameter counts: `extra` overrides the defaults.
        let mut pairs = extra.to_vec();
        pairs.extend_from_slice(&[
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "the-state"),
        ]);
        self.service.authorize(nonce, &params(&pairs))
    }

    fn challenge(&self, nonce: &str, address: &str) -> Result<ChallengeResponse, TalerError> {
        self.service.challenge(nonce, email(address))
    }

    fn last_pin(&self) -> String {
        pin_in(&self.sender.last().unwrap().1)
    }

    fn solve(&self, nonce: &str, pin: &str) -> SolveOutcome {
        self.service.solve(nonce, Some(pin)).unwrap()
    }

    /// Runs setup → authorize → challenge → solve; answers the nonce and the code.
    fn solved(&self, extra: &[(&str, &str)]) -> (String, String) {
        let nonce = self.setup(None);
        self.authorize(&nonce, extra).unwrap();
        self.challenge(&nonce, "alice@example.com").unwrap();
        let SolveOutcome::Solved { redirect_url } = self.solve(&nonce, &self.last_pin()) else {
            panic!("not solved");
        };
        (nonce, code_of(&redirect_url))
    }

    fn token(&self, code: &str, extra: &[(&str, &str)]) -> Result<TokenResponse, TokenFailure> {
        let id = self.client.id.to_string();
        let mut pairs = extra.to_vec();
        pairs.extend_from_slice(&[
            ("grant_type", "authorization_code"),
            ("client_id", id.as_str()),
            ("client_secret", SECRET),
            ("redirect_uri", REDIRECT),
            ("code", code),
            ("state", "ignored"),
        ]);
        self.service.token(&params(&pairs))
    }

    fn validation(&self, nonce: &str) -> Validation {
        let nonce = Secret32::parse(nonce).unwrap();
        self.store.validation(&nonce.0).unwrap().unwrap()
    }
}

fn code_of(redirect_url: &str) -> String {
    let query = redirect_url.split_once('?').unwrap().1;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    pairs.into_iter().find(|(k, _)| k == "code").unwrap().1
}

fn created(response: ChallengeResponse) -> (u32, u32, u32, u32) {
    match response {
        ChallengeResponse::Created {
            attempts_left,
            transmitted,
            pin_transmissions_left,
            changes_left,
            ..
        } => (
            attempts_left,
            u32::from(transmitted),
            pin_transmissions_left,
            changes_left,
        ),
        other => panic!("{other:?}"),
    }
}

fn refused(outcome: SolveOutcome) -> InvalidPinResponse {
    match outcome {
        SolveOutcome::Refused(response) => response,
        other => panic!("{other:?}"),
    }
}

// ---- the whole flow ----

#[test]
fn full_flow_with_a_single_use_code() {
    let f = fixture();
    let nonce = f.setup(None);
    assert_eq!(nonce.len(), 52);
    let status = f.authorize(&nonce, &[]).unwrap();
    assert_eq!(
        (
            status.changes_left,
            status.auth_attempts_left,
            status.solved
        ),
        (3, 3, false)
    );
    assert_eq!(status.retransmission_time, Timestamp::EPOCH);
    let response = f.challenge(&nonce, "alice@example.com").unwrap();
    assert_eq!(created(response), (3, 1, 2, 2));
    let (address, message) = f.sender.last().unwrap();
    assert_eq!(address, "alice@example.com");
    assert!(message.contains(&nonce[..6]), "{message}");
    let pin = pin_in(&message);
    assert_eq!(pin.len(), PIN_DIGITS);
    // Typed with spaces between groups of digits, as people do.
    let typed = format!(" {} {}\n", &pin[..4], &pin[4..]);
    let SolveOutcome::Solved { redirect_url } = f.solve(&nonce, &typed) else {
        panic!("not solved");
    };
    assert!(redirect_url.starts_with(&format!("{REDIRECT}?code=")));
    assert!(redirect_url.ends_with("&state=the-state"));
    let auth_code = code_of(&redirect_url);
    let token = f.token(&auth_code, &[]).unwrap();
    assert_eq!((token.token_type, token.expires_in), ("Bearer", 3600));
    let header = format!("Bearer {}", token.access_token);
    let info = f.service.info(Some(&header)).unwrap();
    assert_eq!(info.address["CONTACT_EMAIL"], "alice@example.com");
    assert_eq!(info.address_type, "email");
    let year = Timestamp::from_seconds(START + 365 * 24 * 3600).unwrap();
    assert_eq!((info.expires, info.address_expiration), (year, year));
    // A replayed code is refused and revokes the token issued from it.
    assert_eq!(
        f.token(&auth_code, &[]).unwrap_err(),
        TokenFailure::InvalidGrant(ErrorCode::ChallengerGrantUnknown)
    );
    assert_eq!(code(f.service.info(Some(&header))), 9753);
}

#[test]
fn pins_are_eight_random_digits_and_the_only_long_digit_run() {
    let f = fixture_with(|s| s.max_address_changes = 100);
    let nonce = f.setup(None);
    let mut pins = std::collections::HashSet::new();
    for i in 0..50 {
        f.challenge(&nonce, &format!("user{i}@example.com"))
            .unwrap();
        pins.insert(f.last_pin());
    }
    assert!(pins.len() > 45);
    assert!(pins.iter().all(|p| p.len() == 8));
}

// ---- /setup ----

#[test]
fn setup_authenticates_the_client_before_reading_the_body() {
    let f = fixture();
    let id = f.client.id.to_string();
    let bearer = f.bearer();
    let setup = |id: &str, auth: Option<&str>, body: Result<Option<Value>, TalerError>| {
        f.service.setup(id, auth, body)
    };
    assert_eq!(code(setup("x1", Some(&bearer), Ok(None))), 26);
    assert_eq!(code(setup("-1", Some(&bearer), Ok(None))), 26);
    assert_eq!(code(setup(&id, None, Ok(None))), 25);
    assert_eq!(code(setup(&id, Some(SECRET), Ok(None))), 26);
    assert_eq!(code(setup(&id, Some("Basic abc"), Ok(None))), 26);
    assert_eq!(code(setup("999", Some(&bearer), Ok(None))), 9750);
    let wrong = "Bearer secret-token:wrong";
    let bad_body = Err(TalerError::new(ErrorCode::GenericJsonInvalid));
    assert_eq!(code(setup(&id, Some(wrong), bad_body.clone())), 9750);
    assert_eq!(code(setup(&id, Some(&bearer), bad_body)), 22);
    let body = |v: Value| setup(&id, Some(&bearer), Ok(Some(v)));
    assert_eq!(code(body(json!({"read_only": "yes"}))), 26);
    assert_eq!(code(body(json!([1]))), 26);
    assert_eq!(code(body(json!({"CONTACT_EMAIL": 3}))), 26);
    assert_eq!(
        f.store
            .client(f.client.id)
            .unwrap()
            .unwrap()
            .validation_counter,
        0
    );
    // The scheme is case-insensitive.
    let lower = format!("bearer {SECRET}");
    setup(&id, Some(&lower), Ok(Some(json!({})))).unwrap();
    assert_eq!(
        f.store
            .client(f.client.id)
            .unwrap()
            .unwrap()
            .validation_counter,
        1
    );
}

#[test]
fn read_only_needs_an_address_and_fixes_it() {
    let f = fixture();
    let ignored = f.setup(Some(json!({"read_only": true})));
    assert!(!f.validation(&ignored).fix_address);
    let nonce = f.setup(Some(
        json!({"read_only": true, "CONTACT_EMAIL": "bob@example.com"}),
    ));
    let status = f.authorize(&nonce, &[]).unwrap();
    assert!(status.fix_address);
    assert_eq!(
        status.last_address.unwrap()["CONTACT_EMAIL"],
        "bob@example.com"
    );
    assert_eq!(code(f.challenge(&nonce, "eve@example.com")), 9760);
    assert!(f.sender.messages().is_empty());
    f.challenge(&nonce, "bob@example.com").unwrap();
    assert_eq!(f.sender.last().unwrap().0, "bob@example.com");
}

// ---- /authorize ----

#[test]
fn authorize_checks_in_spec_order() {
    let f = fixture();
    let nonce = f.setup(None);
    let id = f.client.id.to_string();
    let call = |nonce: &str, pairs: &[(&str, &str)]| f.service.authorize(nonce, &params(pairs));
    assert_eq!(code(call("short", &[])), 9755);
    assert_eq!(code(call(&"A".repeat(52), &[])), 9755);
    assert_eq!(code(call(&nonce, &[])), 25);
    assert_eq!(code(call(&nonce, &[("response_type", "token")])), 26);
    assert_eq!(code(call(&nonce, &[("response_type", "code")])), 25);
    let base = [("response_type", "code"), ("client_id", "x")];
    assert_eq!(code(call(&nonce, &base)), 26);
    let base = [("response_type", "code"), ("client_id", id.as_str())];
    let with = |extra: &[(&str, &str)]| {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        call(&nonce, &pairs)
    };
    assert_eq!(code(with(&[("code_challenge", "short")])), 26);
    assert_eq!(code(with(&[("code_challenge_method", "S256")])), 26);
    let challenge = "a".repeat(43);
    let bad_method = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "MD5"),
    ];
    assert_eq!(code(with(&bad_method)), 26);
    assert_eq!(
        code(with(&[("redirect_uri", "https://evil.example/")])),
        9751
    );
    let other = f
        .service
        .add_client("other", "https://other.example/")
        .unwrap();
    let other_id = other.id.to_string();
    let foreign = [("response_type", "code"), ("client_id", other_id.as_str())];
    assert_eq!(code(call(&nonce, &foreign)), 9755);
    let unknown = [("response_type", "code"), ("client_id", "12345")];
    assert_eq!(code(call(&nonce, &unknown)), 9750);
    // Defaults: no redirect_uri, no state, plain PKCE without a method.
    with(&[("code_challenge", challenge.as_str())]).unwrap();
    let oauth = f.validation(&nonce).oauth;
    assert_eq!(oauth.redirect_uri, None);
    assert_eq!(oauth.code_challenge.unwrap().method, PkceMethod::Plain);
}

#[test]
fn authorize_rebinds_until_solved() {
    let f = fixture();
    let nonce = f.setup(None);
    f.authorize(&nonce, &[("scope", "first")]).unwrap();
    let version = f.validation(&nonce).version;
    f.authorize(&nonce, &[("scope", "first")]).unwrap();
    assert_eq!(
        f.validation(&nonce).version,
        version,
        "an identical call writes nothing"
    );
    f.authorize(&nonce, &[("state", "second")]).unwrap();
    assert_eq!(f.validation(&nonce).oauth.state.as_deref(), Some("second"));
    f.challenge(&nonce, "a@example.com").unwrap();
    f.solve(&nonce, &f.last_pin());
    let status = f.authorize(&nonce, &[("state", "third")]).unwrap();
    assert!(status.solved);
    assert_eq!(f.validation(&nonce).oauth.state.as_deref(), Some("second"));
}

// ---- /challenge limits ----

#[test]
fn address_changes_are_limited() {
    let f = fixture();
    let nonce = f.setup(None);
    for (i, address) in ["a@x.example", "b@x.example", "c@x.example"]
        .iter()
        .enumerate()
    {
        let (_, transmitted, _, changes_left) = created(f.challenge(&nonce, address).unwrap());
        assert_eq!((transmitted, changes_left), (1, 2 - i as u32));
    }
    assert_eq!(code(f.challenge(&nonce, "d@x.example")), 9757);
    assert_eq!(f.sender.messages().len(), 3);
    assert_eq!(code(f.challenge(&nonce, "not an address")), 26);
    assert_eq!(code(f.service.challenge(&nonce, Ok(Map::new()))), 25);
}

#[test]
fn a_setup_address_still_costs_a_change_on_first_send() {
    let f = fixture();
    let nonce = f.setup(Some(json!({"CONTACT_EMAIL": "a@x.example"})));
    let (_, transmitted, _, changes_left) = created(f.challenge(&nonce, "a@x.example").unwrap());
    assert_eq!((transmitted, changes_left), (1, 2));
}

#[test]
fn resends_wait_for_the_retransmission_time_and_are_limited() {
    let f = fixture();
    let nonce = f.setup(None);
    f.challenge(&nonce, "a@x.example").unwrap();
    let first_pin = f.last_pin();
    let status = f.service.status(&nonce).unwrap();
    let expected = Timestamp::from_seconds(START + 300).unwrap();
    assert_eq!(status.retransmission_time, expected);
    // Too early: nothing sent, nothing counted.
    f.clock.advance(minutes(4));
    let (_, transmitted, left, _) = created(f.challenge(&nonce, "a@x.example").unwrap());
    assert_eq!((transmitted, left), (0, 2));
    assert_eq!(f.sender.messages().len(), 1);
    f.clock.advance(minutes(1));
    let (_, transmitted, left, _) = created(f.challenge(&nonce, "a@x.example").unwrap());
    assert_eq!((transmitted, left), (1, 1));
    assert_eq!(f.last_pin(), first_pin, "a re-send repeats the PIN");
    f.clock.advance(minutes(5));
    created(f.challenge(&nonce, "a@x.example").unwrap());
    f.clock.advance(minutes(5));
    assert_eq!(code(f.challenge(&nonce, "a@x.example")), 9757);
    assert_eq!(f.sender.messages().len(), 3);
}

#[test]
fn a_new_address_gets_a_new_pin_and_fresh_limits() {
    let f = fixture();
    let nonce = f.setup(None);
    f.challenge(&nonce, "a@x.example").unwrap();
    let first = f.last_pin();
    refused(f.solve(&nonce, "1"));
    let (attempts, transmitted, left, changes) =
        created(f.challenge(&nonce, "b@x.example").unwrap());
    assert_eq!((attempts, transmitted, left, changes), (3, 1, 2, 1));
    assert_eq!(f.sender.last().unwrap().0, "b@x.example");
    // The old PIN is bound to the old address.
    let second = f.last_pin();
    if first != second {
        assert_eq!(refused(f.solve(&nonce, &first)).auth_attempts_left, 2);
    }
}

// ---- /solve ----

#[test]
fn wrong_pins_use_up_the_attempts() {
    let f = fixture();
    let nonce = f.setup(None);
    let response = refused(f.solve(&nonce, "12345678"));
    assert!(response.no_challenge && !response.exhausted);
    assert_eq!(response.code, ErrorCode::ChallengerInvalidPin);
    f.challenge(&nonce, "a@x.example").unwrap();
    let pin = f.last_pin();
    let wrong = if pin == "00000000" {
        "00000001"
    } else {
        "00000000"
    };
    for left in [2, 1, 0] {
        let response = refused(f.solve(&nonce, wrong));
        assert_eq!(response.auth_attempts_left, left);
        assert!(!response.exhausted && !response.no_challenge);
        assert_eq!(
            (response.addresses_left, response.pin_transmissions_left),
            (2, 2)
        );
    }
    // Exhausted: even the right PIN is not evaluated.
    let response = refused(f.solve(&nonce, &pin));
    assert!(response.exhausted);
    assert_eq!(response.code, ErrorCode::ChallengerTooManyAttempts);
    assert_eq!(code(f.service.solve(&nonce, Some("12a"))), 26);
    assert_eq!(code(f.service.solve(&nonce, None)), 25);
    assert_eq!(code(f.service.solve("nope", Some("1"))), 9755);
}

#[test]
fn concurrent_wrong_pins_spend_each_attempt_once() {
    let f = fixture_with(|s| s.max_auth_attempts = 5);
    let nonce = f.setup(None);
    f.challenge(&nonce, "a@x.example").unwrap();
    let wrong = if f.last_pin() == "00000000" { "1" } else { "0" };
    let outcomes: Vec<InvalidPinResponse> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| scope.spawn(|| refused(f.solve(&nonce, wrong))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|o| !o.exhausted).count(), 5);
    assert_eq!(outcomes.iter().filter(|o| o.exhausted).count(), 7);
}

#[test]
fn solving_again_issues_a_fresh_code_and_challenge_redirects() {
    let f = fixture();
    let (nonce, first) = f.solved(&[]);
    // A wrong PIN gets no code, solved or not.
    let SolveOutcome::Refused(refusal) = f.solve(&nonce, "99") else {
        panic!("a wrong PIN on a solved validation yields a code");
    };
    assert_eq!(refusal.code, ErrorCode::ChallengerInvalidPin);
    let SolveOutcome::Solved { redirect_url } = f.solve(&nonce, &f.last_pin()) else {
        panic!("the right PIN again answers with a redirect");
    };
    let second = code_of(&redirect_url);
    assert_ne!(first, second);
    assert_eq!(
        f.token(&first, &[]).unwrap_err(),
        TokenFailure::InvalidGrant(ErrorCode::ChallengerGenericValidationUnknown)
    );
    let ChallengeResponse::Completed { redirect_url } =
        f.challenge(&nonce, "other@x.example").unwrap()
    else {
        panic!("a solved validation redirects");
    };
    f.token(&code_of(&redirect_url), &[]).unwrap();
}

// ---- delivery failures ----

#[test]
fn a_failed_delivery_counts_for_nothing() {
    let f = fixture();
    let nonce = f.setup(None);
    let before = f.validation(&nonce);
    f.sender.set_failing(true);
    let err = f.challenge(&nonce, "a@x.example").unwrap_err();
    assert_eq!(err.code, ErrorCode::ChallengerHelperExecFailed);
    let after = f.validation(&nonce);
    assert_eq!(
        Validation {
            version: before.version,
            ..after
        },
        before
    );
    f.sender.set_failing(false);
    let (_, transmitted, left, changes) = created(f.challenge(&nonce, "a@x.example").unwrap());
    assert_eq!((transmitted, left, changes), (1, 2, 2));
    // A failed re-send neither counts nor moves the retransmission time.
    f.clock.advance(minutes(5));
    let before = f.validation(&nonce);
    f.sender.set_failing(true);
    assert_eq!(code(f.challenge(&nonce, "a@x.example")), 9752);
    let after = f.validation(&nonce);
    assert_eq!(after.pin_transmissions_left, 2);
    assert_eq!(after.retransmission_time, before.retransmission_time);
    assert_eq!(after.pin, before.pin);
}

// ---- expiry ----

#[test]
fn nonces_expire_after_the_validation_duration() {
    let f = fixture();
    let nonce = f.setup(None);
    f.clock.advance(RelativeTime::from_seconds(24 * 3600 - 1));
    f.authorize(&nonce, &[]).unwrap();
    f.clock.advance(RelativeTime::from_seconds(1));
    assert_eq!(code(f.authorize(&nonce, &[])), 9755);
    assert_eq!(code(f.challenge(&nonce, "a@x.example")), 9755);
    assert_eq!(code(f.service.solve(&nonce, Some("1"))), 9755);
    let purged = f.service.purge_expired().unwrap();
    assert_eq!(purged.validations, 1);
}

#[test]
fn codes_and_tokens_expire() {
    let f = fixture();
    let (_, code_text) = f.solved(&[]);
    f.clock.advance(minutes(10));
    assert_eq!(
        f.token(&code_text, &[]).unwrap_err(),
        TokenFailure::InvalidGrant(ErrorCode::ChallengerGrantUnknown)
    );
    let (_, code_text) = f.solved(&[]);
    let token = f.token(&code_text, &[]).unwrap();
    let header = format!("bearer {}", token.access_token);
    f.clock.advance(minutes(59));
    f.service.info(Some(&header)).unwrap();
    f.clock.advance(minutes(1));
    assert_eq!(code(f.service.info(Some(&header))), 9753);
}

// ---- /token ----

#[test]
fn token_checks_in_spec_order() {
    let f = fixture();
    let (_, good) = f.solved(&[]);
    let id = f.client.id.to_string();
    let call = |pairs: &[(&str, &str)]| f.service.token(&params(pairs));
    let request = |skip: &str, replace: (&str, &str)| {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("client_id", id.as_str()),
            ("client_secret", SECRET),
            ("code", good.as_str()),
        ];
        pairs.retain(|(k, _)| *k != skip);
        if let Some(entry) = pairs.iter_mut().find(|(k, _)| *k == replace.0) {
            entry.1 = replace.1;
        }
        call(&pairs)
    };
    for field in ["grant_type", "client_id", "client_secret", "code"] {
        match request(field, ("", "")).unwrap_err() {
            TokenFailure::InvalidRequest(e) => assert_eq!(e.code.number(), 25, "{field}"),
            other => panic!("{other:?}"),
        }
    }
    match request("", ("client_id", "abc")).unwrap_err() {
        TokenFailure::InvalidRequest(e) => assert_eq!(e.code.number(), 26),
        other => panic!("{other:?}"),
    }
    let fail = |replace| request("", replace).unwrap_err();
    assert_eq!(
        fail(("grant_type", "password")),
        TokenFailure::UnsupportedGrantType
    );
    assert_eq!(fail(("client_id", "777")), TokenFailure::UnknownClient);
    assert_eq!(
        fail(("client_secret", "nope")),
        TokenFailure::BadClientSecret
    );
    let bad = |code| TokenFailure::InvalidGrant(code);
    assert_eq!(
        fail(("code", "short")),
        bad(ErrorCode::ChallengerClientForbiddenBadCode)
    );
    let unknown = Secret32([1; 32]).encode();
    assert_eq!(
        fail(("code", unknown.as_str())),
        bad(ErrorCode::ChallengerGenericValidationUnknown)
    );
    // Bound to another client.
    let other = f.service.add_client("other", REDIRECT).unwrap();
    let other_id = other.id.to_string();
    let foreign = [
        ("grant_type", "authorization_code"),
        ("client_id", other_id.as_str()),
        ("client_secret", "other"),
        ("code", good.as_str()),
    ];
    assert_eq!(
        call(&foreign).unwrap_err(),
        bad(ErrorCode::ChallengerClientForbiddenBadCode)
    );
    // redirect_uri: bound at /authorize, so it is required and must match.
    let mismatch = ErrorCode::ChallengerGenericClientForbiddenBadRedirectUri;
    assert_eq!(request("", ("", "")).unwrap_err(), bad(mismatch));
    let wrong_uri = [("redirect_uri", "https://evil.example/")];
    assert_eq!(f.token(&good, &wrong_uri).unwrap_err(), bad(mismatch));
    // None of the failures consumed the code.
    f.token(&good, &[]).unwrap();
}

#[test]
fn pkce_binds_the_code_to_the_verifier() {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gXFG2CJ0k";
    let challenge = "qUyZDhNkq5Dh2c61N0TJUbT2uepXnj3V5UFKRo1XhCI";
    let f = fixture();
    let s256 = [
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let (_, code_text) = f.solved(&s256);
    let bad_code = TokenFailure::InvalidGrant(ErrorCode::ChallengerClientForbiddenBadCode);
    assert_eq!(f.token(&code_text, &[]).unwrap_err(), bad_code);
    let wrong = [("code_verifier", challenge)];
    assert_eq!(f.token(&code_text, &wrong).unwrap_err(), bad_code);
    f.token(&code_text, &[("code_verifier", verifier)]).unwrap();
    let (_, plain_code) = f.solved(&[("code_challenge", verifier)]);
    assert_eq!(
        f.token(&plain_code, &[("code_verifier", challenge)])
            .unwrap_err(),
        bad_code
    );
    f.token(&plain_code, &[("code_verifier", verifier)])
        .unwrap();
    // A verifier without a stored challenge is ignored.
    let (_, code_text) = f.solved(&[]);
    f.token(&code_text, &[("code_verifier", verifier)]).unwrap();
}

#[test]
fn info_needs_a_bearer_token() {
    let f = fixture();
    assert_eq!(code(f.service.info(None)), 25);
    assert_eq!(code(f.service.info(Some("Basic abc"))), 26);
    assert_eq!(code(f.service.info(Some("Bearer short"))), 26);
    let unknown = format!("Bearer {}", Secret32([3; 32]).encode());
    assert_eq!(code(f.service.info(Some(&unknown))), 9753);
}

#[test]
fn each_redemption_makes_its_own_grant() {
    let f = fixture();
    let (nonce, first) = f.solved(&[]);
    let a = f.token(&first, &[]).unwrap();
    let SolveOutcome::Solved { redirect_url } = f.solve(&nonce, &f.last_pin()) else {
        panic!();
    };
    let b = f.token(&code_of(&redirect_url), &[]).unwrap();
    let info = |t: &TokenResponse| {
        f.service
            .info(Some(&format!("Bearer {}", t.access_token)))
            .unwrap()
            .id
    };
    assert_ne!(info(&a), info(&b));
}

#[test]
fn clients_need_a_secret_and_an_http_redirect_uri() {
    let f = fixture();
    assert_eq!(code(f.service.add_client("", REDIRECT)), 26);
    assert_eq!(code(f.service.add_client("s", "ftp://x/")), 26);
    assert_eq!(code(f.service.add_client("s", "https://x/ y")), 26);
    assert_eq!(f.service.clients().unwrap().len(), 1);
    assert!(f.service.delete_client(f.client.id).unwrap());
    assert!(!f.service.delete_client(f.client.id).unwrap());
}

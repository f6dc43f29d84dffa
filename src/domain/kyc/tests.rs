//! The KYC lifecycle over in-memory ports and a scripted provider (exchange-kyc spec §4–§8).

use crate::domain::evidence::RequirementTrigger;
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::config::{Config, Overrides};
use crate::domain::primitives::{ErrorCode, TalerError, Timestamp};
use crate::ports::attribute_cipher::AttributeCipher;
use crate::ports::clock::FakeClock;
use crate::ports::kyc::{InMemoryKycStore, KycStore};
use crate::ports::provider_http::{ScriptedProviderHttp, SeenRequest};
use crate::ports::random::SeededRandom;

const PAYTO: &str = "payto://x-taler-bank/localhost/alice?receiver-name=Alice";
const BASE: &str = "http://ex.test/exchange/";

/// Stores attributes as plain JSON (the real format is tested with the attribute crypto).
pub(super) struct PlainCipher;

impl AttributeCipher for PlainCipher {
    fn seal(
        &self,
        attributes: &serde_json::Map<String, Value>,
        _nonce: [u8; crate::ports::attribute_cipher::NONCE_LEN],
    ) -> Result<Vec<u8>, crate::domain::primitives::attributes::AttributeCryptoError> {
        Ok(serde_json::to_vec(attributes).unwrap())
    }

    fn open(&self, blob: &[u8]) -> Option<serde_json::Map<String, Value>> {
        serde_json::from_slice(blob).ok()
    }
}

struct Kyc {
    service: KycService,
    store: Arc<InMemoryKycStore>,
    http: Arc<ScriptedProviderHttp>,
}

fn rules(extra: &str) -> KycRules {
    // The embedded defaults with `extra` on top, parsed from memory.
    let mut ini = Config::load(None, &Overrides::default()).unwrap().ini;
    ini.parse_str(extra, "<test>", None).unwrap();
    let mut rules = Config::from_ini(ini).unwrap().kyc.rules;
    rules.providers.insert(
        "challenger".into(),
        OAuth2Provider {
            name: "challenger".into(),
            authorize_url: "http://ch.test/challenger/authorize#setup".into(),
            token_url: "http://ch.test/challenger/token".into(),
            info_url: "http://ch.test/challenger/info".into(),
            client_id: "1".into(),
            client_secret: "secret-token:client".into(),
            post_url: format!("{BASE}kyc-done"),
            converter: "challenger".into(),
            validity: crate::domain::primitives::RelativeTime::forever(),
        },
    );
    rules
}

fn kyc_with(extra: &str) -> Kyc {
    let store = Arc::new(InMemoryKycStore::default());
    let http = Arc::new(ScriptedProviderHttp::default());
    let service = KycService::new(
        Arc::clone(&store) as Arc<dyn KycStore>,
        Arc::clone(&http) as Arc<dyn crate::ports::provider_http::ProviderHttp>,
        Arc::new(PlainCipher),
        Arc::new(FakeClock::at(
            Timestamp::from_seconds(1_700_000_000).unwrap(),
        )),
        Arc::new(SeededRandom::new(3)),
        rules(extra),
        BASE.into(),
    );
    Kyc {
        service,
        store,
        http,
    }
}

fn kyc() -> Kyc {
    kyc_with("")
}

fn code<T: std::fmt::Debug>(result: Result<T, TalerError>) -> u32 {
    result.unwrap_err().code.number()
}

fn first_id(kyc: &Kyc, token: &str) -> String {
    let info = kyc.service.kyc_info(token).unwrap();
    info.information.unwrap().requirements[0]
        .id
        .clone()
        .unwrap()
}

#[test]
fn a_trigger_opens_a_requirement_listed_by_kyc_info() {
    let kyc = kyc();
    let triggered = kyc
        .service
        .trigger(PAYTO, &MeasureSpec::parse("email"), RequirementTrigger::Cli)
        .unwrap();
    assert_eq!(triggered.access_token.len(), 52);
    assert_eq!(
        triggered.h_normalized_payto.to_string(),
        "4KBYV44XYHA6CAF2CMNHQ990RPT9H6YXVM3DT4BPKH46B8EJQ4D0"
    );
    let info = kyc.service.kyc_info(&triggered.access_token).unwrap();
    assert_eq!(info.etag(), format!("\"{}-0\"", triggered.requirement_row));
    let information = info.information.unwrap();
    assert_eq!(information.requirements.len(), 1);
    let requirement = &information.requirements[0];
    assert_eq!(requirement.form, "LINK");
    assert_eq!(requirement.description, "Confirm your e-mail address");
    let id = RequirementId::parse(requirement.id.as_deref().unwrap()).unwrap();
    assert_eq!((id.index, id.serial), (0, triggered.requirement_row));
    // The same trigger again reuses the open set and the token.
    let again = kyc
        .service
        .trigger(PAYTO, &MeasureSpec::parse("email"), RequirementTrigger::Cli)
        .unwrap();
    assert_eq!(again, triggered);
}

#[test]
fn kyc_info_errors() {
    let kyc = kyc();
    assert_eq!(code(kyc.service.kyc_info("short")), 26);
    assert_eq!(code(kyc.service.kyc_info(&"0".repeat(52))), 1919);
    assert_eq!(
        code(kyc.service.trigger(
            "payto://nope/x",
            &MeasureSpec::parse("email"),
            RequirementTrigger::Cli
        )),
        26
    );
    assert_eq!(
        code(kyc.service.trigger(
            PAYTO,
            &MeasureSpec::parse("nothing"),
            RequirementTrigger::Cli
        )),
        26
    );
}

#[test]
fn info_checks_have_no_id_and_forms_carry_their_context() {
    let kyc = kyc_with(
        "[kyc-measure-frozen]\nCHECK_NAME = info-frozen\nPROGRAM = freeze\n[kyc-measure-personal]\nCONTEXT = {\"hint\": 1}\n",
    );
    let token = kyc
        .service
        .trigger(
            PAYTO,
            &MeasureSpec::parse("+ frozen personal"),
            RequirementTrigger::Cli,
        )
        .unwrap()
        .access_token;
    let information = kyc.service.kyc_info(&token).unwrap().information.unwrap();
    assert!(information.is_and_combinator);
    assert_eq!(information.requirements[0].form, "INFO");
    assert_eq!(information.requirements[0].id, None);
    assert_eq!(information.requirements[1].form, "full_name_and_birthdate");
    assert_eq!(
        information.requirements[1].context,
        Some(json!({"hint": 1}))
    );
}

#[test]
fn kyc_start_sets_up_the_challenger_once() {
    let kyc = kyc_with(
        "[kyc-measure-email]\nCONTEXT = {\"initial_address\": {\"CONTACT_EMAIL\": \"a@b.cd\"}}\n",
    );
    let token = kyc
        .service
        .trigger(PAYTO, &MeasureSpec::parse("email"), RequirementTrigger::Cli)
        .unwrap()
        .access_token;
    let id = first_id(&kyc, &token);
    kyc.http.answer(200, json!({"nonce": "N0NCE"}));
    let url = kyc.service.start(&id).unwrap();
    assert!(url.starts_with("http://ch.test/challenger/authorize/N0NCE?response_type=code&client_id=1&redirect_uri=http%3A%2F%2Fex.test%2Fexchange%2Fkyc-proof%2Fchallenger&state="), "{url}");
    assert_eq!(
        kyc.http.seen(),
        vec![SeenRequest::PostJson {
            url: "http://ch.test/challenger/setup/1".into(),
            bearer: Some("secret-token:client".into()),
            body: Some(json!({"CONTACT_EMAIL": "a@b.cd"})),
        }]
    );
    // Idempotent: the same URL, without asking the provider again.
    assert_eq!(kyc.service.start(&id).unwrap(), url);
    assert_eq!(kyc.http.seen().len(), 1);
}

#[test]
fn kyc_start_errors_in_order() {
    let kyc = kyc_with("[kyc-measure-frozen]\nCHECK_NAME = info-frozen\nPROGRAM = freeze\n");
    let token = kyc
        .service
        .trigger(
            PAYTO,
            &MeasureSpec::parse("email frozen personal"),
            RequirementTrigger::Cli,
        )
        .unwrap()
        .access_token;
    let id = first_id(&kyc, &token);
    let (hash, rest) = id.split_once('-').unwrap();
    assert_eq!(code(kyc.service.start("nodash")), 21);
    assert_eq!(code(kyc.service.start(&format!("XYZ-{rest}"))), 26);
    assert_eq!(code(kyc.service.start(&format!("{hash}-0"))), 26);
    assert_eq!(code(kyc.service.start(&format!("{hash}-0-999"))), 21);
    assert_eq!(
        code(kyc.service.start(&format!("{}-{rest}", "0".repeat(52)))),
        21
    );
    let serial = rest.split_once('-').unwrap().1.parse::<u64>().unwrap();
    let with_index = |index: u32| {
        RequirementId::new(&AccessToken::parse(&token).unwrap(), serial, index).to_string()
    };
    assert_eq!(code(kyc.service.start(&with_index(7))), 1943);
    assert_eq!(code(kyc.service.start(&with_index(1))), 1944);
    assert_eq!(code(kyc.service.start(&with_index(2))), 1944);
}

#[test]
fn a_failed_setup_is_502_and_can_be_retried() {
    let kyc = kyc();
    let token = kyc
        .service
        .trigger(PAYTO, &MeasureSpec::parse("email"), RequirementTrigger::Cli)
        .unwrap()
        .access_token;
    let id = first_id(&kyc, &token);
    kyc.http.answer(404, json!({"code": 9750}));
    assert_eq!(code(kyc.service.start(&id)), 1926);
    kyc.http.fail("connection refused");
    assert_eq!(code(kyc.service.start(&id)), 1926);
    kyc.http.answer(200, json!({"nonce": "SECOND"}));
    assert!(kyc.service.start(&id).unwrap().contains("/SECOND?"));
}

fn started(kyc: &Kyc) -> (String, String) {
    let triggered = kyc
        .service
        .trigger(PAYTO, &MeasureSpec::parse("email"), RequirementTrigger::Cli)
        .unwrap();
    let id = first_id(kyc, &triggered.access_token);
    kyc.http.answer(200, json!({"nonce": "N"}));
    kyc.service.start(&id).unwrap();
    (
        triggered.access_token,
        triggered.h_normalized_payto.to_string(),
    )
}

fn params(state: &str, code: &str) -> ProofParams {
    ProofParams {
        state: Some(state.into()),
        code: Some(code.into()),
        ..ProofParams::default()
    }
}

fn provider_answers_success(kyc: &Kyc) {
    kyc.http.answer(
        200,
        json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600}),
    );
    kyc.http.answer(200, json!({"id": 5, "address": {"CONTACT_EMAIL": "alice@example.com"}, "address_type": "email", "expires": {"t_s": 1_800_000_000}}));
}

fn failure_code(result: Result<String, ProofFailure>) -> (u16, u32, bool) {
    match result.unwrap_err() {
        ProofFailure::Page { status, error } => (status, error.code.number(), true),
        ProofFailure::Json { status, error } => (status, error.code.number(), false),
    }
}

#[test]
fn a_proof_stores_the_attributes_and_settles_the_requirement() {
    let kyc = kyc();
    let (token, state) = started(&kyc);
    provider_answers_success(&kyc);
    let next = kyc
        .service
        .proof("challenger", params(&state, "CODE"))
        .unwrap();
    assert_eq!(next, format!("{BASE}kyc-done"));
    let seen = kyc.http.seen();
    match &seen[1] {
        SeenRequest::PostForm { url, form } => {
            assert_eq!(url, "http://ch.test/challenger/token");
            let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(
                names,
                [
                    "client_id",
                    "redirect_uri",
                    "state",
                    "client_secret",
                    "code",
                    "grant_type"
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        seen[2],
        SeenRequest::Get {
            url: "http://ch.test/challenger/info".into(),
            bearer: "tok".into()
        }
    );
    let stored = kyc.store.attributes();
    assert_eq!(stored.len(), 1);
    let attributes: Value = serde_json::from_slice(&stored[0].2.encrypted).unwrap();
    assert_eq!(attributes["CONTACT_EMAIL"], "alice@example.com");
    assert_eq!(
        stored[0].2.expiration_time.as_seconds(),
        Some(1_800_000_000)
    );
    let info = kyc.service.kyc_info(&token).unwrap();
    assert!(info.information.is_none());
    assert!(info.outcome_serial > 0);
    // Reloading the callback ends on the same success page, without a second exchange.
    let again = kyc.service.proof("challenger", params(&state, "CODE"));
    assert_eq!(again.unwrap(), format!("{BASE}kyc-done"));
    assert_eq!(kyc.http.seen().len(), seen.len());
}

#[test]
fn proof_parameter_and_provider_errors() {
    let kyc = kyc();
    let (_, state) = started(&kyc);
    assert_eq!(
        failure_code(kyc.service.proof("nobody", params(&state, "C"))),
        (404, 1931, true)
    );
    assert_eq!(
        failure_code(kyc.service.proof("Challenger", params(&state, "C"))),
        (400, 26, true)
    );
    assert_eq!(
        failure_code(kyc.service.proof("challenger", ProofParams::default())),
        (400, 25, false)
    );
    assert_eq!(
        failure_code(kyc.service.proof("challenger", params("bad", "C"))),
        (400, 26, false)
    );
    let other = "0".repeat(52);
    assert_eq!(
        failure_code(kyc.service.proof("challenger", params(&other, "C"))),
        (404, 1929, true)
    );
    let no_code = ProofParams {
        state: Some(state.clone()),
        ..ProofParams::default()
    };
    assert_eq!(
        failure_code(kyc.service.proof("challenger", no_code)),
        (400, 26, true)
    );
    // A provider failure leaves the process open; a malformed token answer too.
    kyc.http.answer(500, json!({}));
    assert_eq!(
        failure_code(kyc.service.proof("challenger", params(&state, "C"))),
        (502, 1936, true)
    );
    kyc.http.answer(
        200,
        json!({"access_token": "has space", "token_type": "bearer"}),
    );
    assert_eq!(
        failure_code(kyc.service.proof("challenger", params(&state, "C"))),
        (502, 1936, true)
    );
    // A proper refusal fails it.
    kyc.http.answer(
        400,
        json!({"error": "invalid_grant", "error_description": "code used"}),
    );
    assert_eq!(
        failure_code(kyc.service.proof("challenger", params(&state, "C"))),
        (403, 1038, true)
    );
    assert_eq!(
        failure_code(kyc.service.proof("challenger", params(&state, "C"))),
        (404, 1929, true)
    );
}

#[test]
fn an_oauth_error_fails_the_process_unless_temporary() {
    let kyc = kyc();
    let (_, state) = started(&kyc);
    let error = |e: &str| ProofParams {
        state: Some(state.clone()),
        error: Some(e.into()),
        ..ProofParams::default()
    };
    assert_eq!(
        failure_code(
            kyc.service
                .proof("challenger", error("temporarily_unavailable"))
        ),
        (403, 1038, true)
    );
    assert_eq!(
        failure_code(kyc.service.proof("challenger", error("access_denied"))),
        (403, 1038, true)
    );
    assert_eq!(
        failure_code(kyc.service.proof("challenger", error("access_denied"))),
        (404, 1929, true)
    );
}

fn personal(kyc: &Kyc) -> (String, String) {
    let token = kyc
        .service
        .trigger(
            PAYTO,
            &MeasureSpec::parse("personal"),
            RequirementTrigger::Cli,
        )
        .unwrap()
        .access_token;
    let id = first_id(kyc, &token);
    (token, id)
}

fn form(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn uploads_are_checked_stored_and_replayable() {
    let kyc = kyc();
    let (token, id) = personal(&kyc);
    let complete = json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice", "DATE_OF_BIRTH": "2000-01-01", "EXTRA": "kept"});
    let no_form_id = json!({"FULL_NAME": "Alice", "DATE_OF_BIRTH": "2000-01-01"});
    assert_eq!(code(kyc.service.upload(&id, form(no_form_id))), 26);
    let err = kyc
        .service
        .upload(
            &id,
            form(json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice"})),
        )
        .unwrap_err();
    assert_eq!(
        (err.code.number(), err.detail.as_deref()),
        (1921, Some("DATE_OF_BIRTH"))
    );
    assert!(
        kyc.store.attributes().is_empty(),
        "nothing stored on a refused upload"
    );
    assert_eq!(
        kyc.service.upload(&id, form(complete.clone())).unwrap(),
        UploadOutcome::Stored
    );
    let stored: Value = serde_json::from_slice(&kyc.store.attributes()[0].2.encrypted).unwrap();
    assert_eq!(stored["EXTRA"], "kept");
    assert!(kyc.service.kyc_info(&token).unwrap().information.is_none());
    assert_eq!(
        kyc.service.upload(&id, form(complete)).unwrap(),
        UploadOutcome::Replay
    );
    let different = json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Eve", "DATE_OF_BIRTH": "2000-01-01"});
    assert_eq!(code(kyc.service.upload(&id, form(different))), 1941);
    assert_eq!(code(kyc.service.start(&id)), 1941);
}

#[test]
fn upload_errors() {
    let kyc = kyc();
    let token = kyc
        .service
        .trigger(PAYTO, &MeasureSpec::parse("email"), RequirementTrigger::Cli)
        .unwrap()
        .access_token;
    let link_id = first_id(&kyc, &token);
    assert_eq!(
        code(kyc.service.upload(&link_id, form(json!({"FORM_ID": "x"})))),
        1923
    );
    let (hash, rest) = link_id.split_once('-').unwrap();
    assert_eq!(
        code(
            kyc.service
                .upload(&format!("{}-{rest}", "0".repeat(52)), form(json!({})))
        ),
        1939
    );
    assert_eq!(
        code(kyc.service.upload(&format!("{hash}-0-99"), form(json!({})))),
        1939
    );
    assert_eq!(code(kyc.service.upload("nodash", form(json!({})))), 21);
}

#[test]
fn a_failing_program_runs_its_fallback() {
    let kyc = kyc_with("[aml-program-accept]\nCOMMAND = /usr/bin/external-helper\n");
    let (token, id) = personal(&kyc);
    let complete = json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice", "DATE_OF_BIRTH": "2000-01-01"});
    // The program cannot run here: the upload is stored, the fallback decides, and the
    // customer learns that the program failed.
    assert_eq!(code(kyc.service.upload(&id, form(complete))), 1945);
    let h_payto = kyc.service.kyc_info(&token).unwrap().h_payto;
    let outcome = kyc.store.active_outcome(&h_payto).unwrap().unwrap();
    assert!(
        outcome.to_investigate,
        "the freeze fallback flags the account"
    );
    assert!(
        outcome
            .new_rules
            .unwrap()
            .rules
            .iter()
            .all(|r| r.threshold.is_zero())
    );
}

#[test]
fn skip_measures_settle_at_once() {
    let kyc = kyc();
    let triggered = kyc
        .service
        .trigger(
            PAYTO,
            &MeasureSpec::parse("freeze"),
            RequirementTrigger::Cli,
        )
        .unwrap();
    let info = kyc.service.kyc_info(&triggered.access_token).unwrap();
    assert!(info.information.is_none());
    let outcome = kyc
        .store
        .active_outcome(&triggered.h_normalized_payto)
        .unwrap()
        .unwrap();
    assert!(outcome.to_investigate);
}

#[test]
fn zero_thresholds_open_measures_by_themselves() {
    let kyc = kyc_with("[kyc-rule-withdraw-high]\nTHRESHOLD = KUDOS:0\n");
    let token = kyc
        .service
        .trigger(
            PAYTO,
            &MeasureSpec::parse("personal"),
            RequirementTrigger::Cli,
        )
        .unwrap()
        .access_token;
    let (_, id) = (token.clone(), first_id(&kyc, &token));
    let complete = json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice", "DATE_OF_BIRTH": "2000-01-01"});
    // The accept program lifts the zero threshold, so nothing is due afterwards.
    kyc.service.upload(&id, form(complete)).unwrap();
    assert!(kyc.service.kyc_info(&token).unwrap().information.is_none());
    assert!(ErrorCode::from_number(1941).is_some());
}

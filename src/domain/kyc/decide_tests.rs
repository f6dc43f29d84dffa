//! Officer decisions over in-memory ports (exchange-aml-decisions.md §3, §8): the spec's
//! vectors, the checks in order, and what decisions do to kyc-info and the rules.

use std::sync::Arc;

use serde_json::{Value, json};

use super::tests::PlainCipher;
use super::*;
use crate::config::{Config, Overrides};
use crate::domain::aml::decision_request::{DecisionRequest, sign_decision};
use crate::domain::aml::{OfficerChange, parse_officer_pub};
use crate::domain::primitives::{
    EddsaPrivateKey, EddsaSignature, RelativeTime, TalerError, Timestamp, base32,
};
use crate::ports::aml::{InMemoryAmlStore, OfficerStore};
use crate::ports::clock::{Clock, FakeClock};
use crate::ports::kyc::{InMemoryKycStore, KycStore};
use crate::ports::programs::{FnProgramRunner, ProgramRunError};
use crate::ports::provider_http::ScriptedProviderHttp;
use crate::ports::random::SeededRandom;

const D1_SIG: &str = "R9YQ3302WER8QDZNWQW88C5240Z923FR52QVNHJ1DA210DPHBE5BECQGYBJ1EEHW54JY0JZX86XQ077PTT5BK7YP20Y2W17Q5F2N40G";
const D2_SIG: &str = "33RW98T7A5TXD8YVK29ZHHM1Z06R8P9E2ZQ6AN8PG6A38HMYYHAP6R2DY0757A5MFM3MPYMA6WBX1FNC8NXBY3QRKW32319YGK24W0G";
const IBAN_HASH: &str = "A2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G";
const ALICE_HASH: &str = "F8YT6T7NJN3M1TEM3NC0DWKPRZB3MEYW5NK9S9SBEP7JR7C4ERS0";

fn officer_a() -> EddsaPrivateKey {
    EddsaPrivateKey::from_seed(std::array::from_fn(|i| i as u8))
}

struct Desk {
    service: KycService,
    store: Arc<InMemoryKycStore>,
    officers: Arc<InMemoryAmlStore>,
    clock: Arc<FakeClock>,
}

fn desk_with(extra: &str, programs: Arc<dyn crate::ports::programs::ProgramRunner>) -> Desk {
    let mut ini = Config::load(None, &Overrides::default()).unwrap().ini;
    ini.parse_str(extra, "<test>", None).unwrap();
    let rules = Config::from_ini(ini).unwrap().kyc.rules;
    let store = Arc::new(InMemoryKycStore::default());
    let officers = Arc::new(InMemoryAmlStore::default());
    let clock = Arc::new(FakeClock::at(
        Timestamp::from_seconds(1_700_000_500).unwrap(),
    ));
    let service = KycService::new(
        Arc::clone(&store) as Arc<dyn KycStore>,
        Arc::new(ScriptedProviderHttp::default()),
        Arc::new(PlainCipher),
        Arc::clone(&clock) as Arc<dyn crate::ports::clock::Clock>,
        Arc::new(SeededRandom::new(9)),
        rules,
        "http://ex.test/exchange/".into(),
    )
    .with_officers(Arc::clone(&officers) as Arc<dyn OfficerStore>)
    .with_programs(programs, None);
    let desk = Desk {
        service,
        store,
        officers,
        clock,
    };
    desk.enable(&officer_a(), false);
    desk
}

fn desk() -> Desk {
    desk_with("", Arc::new(crate::ports::programs::NoPrograms))
}

impl Desk {
    fn enable(&self, key: &EddsaPrivateKey, read_only: bool) {
        self.officers
            .upsert_officer(&OfficerChange {
                officer_pub: key.public_key(),
                name: "Officer".into(),
                is_active: true,
                read_only,
                change_date: self.clock.now(),
                master_sig: None,
            })
            .unwrap();
    }

    fn decide(&self, body: &Value) -> Result<Decided, TalerError> {
        self.service
            .decide(&officer_a().public_key(), body.to_string().as_bytes())
    }
}

fn d1() -> Value {
    json!({"h_payto": IBAN_HASH, "decision_time": {"t_s": 1700000000},
        "payto_uri": "payto://iban/DE89370400440532013000?receiver-name=Alice",
        "justification": "Structuring suspected; account frozen pending review.",
        "properties": {"high_risk": true, "pep": false, "business_domain": "retail"},
        "new_rules": {"expiration_time": {"t_s": "never"}, "custom_measures": {}, "rules": [
            {"operation_type": "WITHDRAW", "threshold": "KUDOS:0", "timeframe": {"d_us": 3600000000u64},
             "measures": ["verboten"], "display_priority": 1, "exposed": false, "is_and_combinator": false},
            {"operation_type": "DEPOSIT", "threshold": "KUDOS:0", "timeframe": {"d_us": 3600000000u64},
             "measures": ["verboten"], "display_priority": 1, "exposed": false, "is_and_combinator": false}]},
        "keep_investigating": true,
        "officer_sig": D1_SIG})
}

fn d2() -> Value {
    json!({"h_payto": ALICE_HASH, "decision_time": {"t_s": 1700000100},
        "payto_uri": "payto://x-taler-bank/localhost:8080/alice?receiver-name=Alice",
        "justification": "Pr\u{fc}fung \"Limit\" erh\u{f6}ht\nZeile 2",
        "new_measures": "officer-form",
        "keep_investigating": false,
        "new_rules": {"custom_measures": {"officer-form": {"check_name": "personal",
            "context": {"limit": 1000, "note": "Tab\there"}, "prog_name": "accept"}},
            "expiration_time": {"t_s": 4102444800u64},
            "rules": [{"display_priority": 2, "exposed": true, "is_and_combinator": false,
                "measures": ["officer-form"], "operation_type": "WITHDRAW", "threshold": "KUDOS:1000",
                "timeframe": {"d_us": 2592000000000u64}}],
            "successor_measure": "freeze"},
        "officer_sig": D2_SIG})
}

/// Re-signs `body` with officer A after a change.
fn signed(mut body: Value) -> Value {
    body["officer_sig"] = json!(D1_SIG);
    let request = DecisionRequest::parse(body.to_string().as_bytes()).unwrap();
    let signature = sign_decision(&officer_a(), &request.signed_body());
    body["officer_sig"] = json!(base32::encode(&signature.0));
    body
}

fn code<T: std::fmt::Debug>(result: Result<T, TalerError>) -> (u32, Option<String>) {
    let error = result.unwrap_err();
    (error.code.number(), error.detail)
}

fn token_of(desk: &Desk, h_payto: &str) -> String {
    let account = desk
        .store
        .account(&h_payto.parse().unwrap())
        .unwrap()
        .unwrap();
    account.access_token.to_base32()
}

#[test]
fn the_vectors_verify() {
    let officer =
        parse_officer_pub("0EGGFFZKSR8BW7BGVMCEEJY0K5KY9NHGKEJGTQRXVJ3684JN66W0").unwrap();
    assert_eq!(officer, officer_a().public_key());
    let d1 = DecisionRequest::parse(d1().to_string().as_bytes()).unwrap();
    let block = d1.signed_body();
    assert_eq!(block.len(), 304);
    let hex: String = block[..8].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "00060a24181e4000");
    assert_eq!(block[296..], [0, 0, 0, 0, 0, 0, 0, 1]);
    d1.verify(&officer).unwrap();
    let d2 = DecisionRequest::parse(d2().to_string().as_bytes()).unwrap();
    d2.verify(&officer).unwrap();
    assert_eq!(
        base32::encode(&d2.signed_body()[232..296]),
        "E3G7HZ0FR5JVZ2QHYH3D38516XT11M4C8QKTHD5F4Y3EAYQJZ0XHRK1KEKYA5QFRA3ZQRG5DSY4XF8VV1FYT2YZXA59VCTGNY847CBR"
    );
    // Our signer reproduces the vector signature (Ed25519 is deterministic).
    assert_eq!(
        sign_decision(&officer_a(), &block),
        EddsaSignature(base32::decode_array(D1_SIG).unwrap())
    );
}

#[test]
fn wrong_signatures_are_1825_and_checked_before_the_officer() {
    let desk = self::desk();
    let mut changed = d1();
    changed["justification"] = json!("Structuring suspected; account frozen pending review!");
    assert_eq!(code(desk.decide(&changed)).0, 1825);
    for negative in [
        "V63T1Z20AD5SRN5831B81Y7YXGFN74WSR5DANC6R13F7KMVNRDKVH65DEGWNB7SR4A24V36J5TXFKSEBCJSCPS5DHK4FPHGBWE7182R",
        "917HGSN5HF0HW1TRTGJ5C8ZF1T5HCQFTAFEW13DRX6MVF7HEJWHK6EG17PQGHTRBA6VXSWEZQDCZMQADVDTPW1ZF60HHTMPJ0G3SE2R",
    ] {
        let mut body = d1();
        body["officer_sig"] = json!(negative);
        assert_eq!(code(desk.decide(&body)).0, 1825);
    }
    // A valid signature by a key that is not an officer.
    let stranger = desk_with("", Arc::new(crate::ports::programs::NoPrograms));
    stranger
        .officers
        .operator_update(
            &officer_a().public_key(),
            &crate::domain::aml::OperatorAction::Disable,
            Timestamp::from_seconds(1_800_000_000).unwrap(),
        )
        .unwrap();
    assert_eq!(code(stranger.decide(&d1())).0, 1826);
    let read_only = self::desk();
    read_only.enable(&officer_a(), true);
    read_only.clock.advance(RelativeTime::from_seconds(1));
    read_only.enable(&officer_a(), true);
    assert_eq!(code(read_only.decide(&d1())).0, 1826);
}

#[test]
fn malformed_members_and_semantic_errors() {
    let desk = desk();
    let cases: Vec<(Value, u32, &str)> = vec![
        (
            {
                let mut b = d1();
                b.as_object_mut().unwrap().remove("justification");
                b
            },
            22,
            "justification",
        ),
        (
            {
                let mut b = d1();
                b["keep_investigating"] = json!("yes");
                b
            },
            22,
            "keep_investigating",
        ),
        (
            {
                let mut b = d1();
                b["h_payto"] = json!("short");
                b
            },
            22,
            "h_payto",
        ),
        (
            {
                let mut b = d1();
                b["payto_uri"] = json!("mailto:x");
                b
            },
            22,
            "payto_uri",
        ),
        (
            {
                let mut b = d1();
                b["payto_uri"] = json!("payto://x-taler-bank/localhost:8080/alice?receiver-name=A");
                b
            },
            26,
            "payto_uri",
        ),
        (
            {
                let mut b = d1();
                b["decision_time"] = json!({"t_s": "never"});
                b
            },
            26,
            "decision_time",
        ),
        (
            {
                let mut b = d1();
                b["properties"]["score"] = json!(0.5);
                b
            },
            26,
            "properties",
        ),
    ];
    for (body, expected, detail) in cases {
        let (got, got_detail) = code(desk.decide(&body));
        assert_eq!(
            (got, got_detail.as_deref()),
            (expected, Some(detail)),
            "{body}"
        );
    }
    assert_eq!(
        code(
            desk.service
                .decide(&officer_a().public_key(), b"{\"a\":1,\"a\":2}")
        )
        .0,
        22
    );
    assert_eq!(
        code(desk.service.decide(&officer_a().public_key(), b"[]")).0,
        22
    );
    let semantic: Vec<(Value, &str)> = vec![
        (
            {
                let mut b = d1();
                b["new_rules"]["rules"][0]["threshold"] = json!("EUR:1");
                signed(b)
            },
            "new_rules",
        ),
        (
            {
                let mut b = d1();
                b["new_rules"]["rules"][0]["measures"] = json!(["nope"]);
                signed(b)
            },
            "new_rules",
        ),
        (
            {
                let mut b = d1();
                b["new_rules"]["rules"][0]["operation_type"] = json!("SHOPPING");
                signed(b)
            },
            "new_rules",
        ),
        (
            {
                let mut b = d1();
                b["new_measures"] = json!("nope");
                signed(b)
            },
            "new_measures",
        ),
        (
            {
                let mut b = d1();
                b["new_measures"] = json!("freeze freeze");
                signed(b)
            },
            "new_measures",
        ),
        (
            {
                let mut b = d1();
                b["events"] = json!(["two words"]);
                signed(b)
            },
            "events",
        ),
        (
            {
                let mut b = d1();
                b["attributes"] = json!({"no_form": 1});
                signed(b)
            },
            "attributes",
        ),
    ];
    for (body, detail) in semantic {
        assert_eq!(
            code(desk.decide(&body)),
            (26, Some(detail.to_owned())),
            "{body}"
        );
    }
    // Nothing of it was stored.
    assert!(
        desk.store
            .account(&IBAN_HASH.parse().unwrap())
            .unwrap()
            .is_none()
    );
}

#[test]
fn freeze_replay_conflict_and_unknown_accounts() {
    let desk = desk();
    let mut anonymous = d1();
    anonymous.as_object_mut().unwrap().remove("payto_uri");
    assert_eq!(
        code(desk.decide(&anonymous)),
        (1041, Some("h_payto".into()))
    );
    let Decided::Applied { outcome_serial, .. } = desk.decide(&d1()).unwrap() else {
        panic!("applied expected");
    };
    assert_eq!(desk.decide(&d1()).unwrap(), Decided::Replayed);
    let h_payto = IBAN_HASH.parse().unwrap();
    let active = desk.store.active_outcome(&h_payto).unwrap().unwrap();
    assert_eq!(active.serial, outcome_serial);
    assert!(active.to_investigate);
    assert!(
        active
            .new_rules
            .unwrap()
            .rules
            .iter()
            .all(|r| r.measures == ["verboten"])
    );
    let mut older = d1();
    older["decision_time"] = json!({"t_s": 1699999999});
    assert_eq!(code(desk.decide(&signed(older))).0, 1827);
    // Equal times are accepted: a later decision lifts the freeze.
    let mut lift = d1();
    lift["new_rules"] =
        json!({"expiration_time": {"t_s": 1700000000}, "rules": [], "custom_measures": {}});
    lift["keep_investigating"] = json!(false);
    desk.decide(&signed(lift)).unwrap();
    let (_, rules) = desk.service.current_rules(&h_payto).unwrap();
    assert_eq!(rules, desk.service.rules().default_rule_set());
    assert!(
        !desk
            .store
            .active_outcome(&h_payto)
            .unwrap()
            .unwrap()
            .to_investigate
    );
}

#[test]
fn new_measures_open_a_set_and_a_decision_without_them_closes_it() {
    let desk = desk();
    let Decided::Applied {
        measure_serial,
        access_token,
        ..
    } = desk.decide(&d2()).unwrap()
    else {
        panic!("applied expected");
    };
    assert!(measure_serial.is_some());
    let info = desk.service.kyc_info(&access_token.to_base32()).unwrap();
    let requirement = &info.information.unwrap().requirements[0];
    assert_eq!(requirement.form, "full_name_and_birthdate");
    assert_eq!(
        requirement.context,
        Some(json!({"limit": 1000, "note": "Tab\there"}))
    );
    // The customer completes the form: the program's outcome supersedes the decision.
    let id = requirement.id.clone().unwrap();
    let form = json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice", "DATE_OF_BIRTH": "2000-01-01"});
    desk.service
        .upload(&id, form.as_object().unwrap().clone())
        .unwrap();
    let h_payto = ALICE_HASH.parse().unwrap();
    let active = desk.store.active_outcome(&h_payto).unwrap().unwrap();
    assert!(active.serial > 1, "the program outcome is active");
    // A later decision without new_measures closes any pending requirement.
    // Signed before the program ran: too old now.
    let mut late = d2();
    late["decision_time"] = json!({"t_s": 1700000200});
    assert_eq!(code(desk.decide(&signed(late))).0, 1827);
    let mut again = d2();
    again["decision_time"] = json!({"t_s": 1700000600});
    desk.decide(&signed(again)).unwrap();
    let mut close = d2();
    close.as_object_mut().unwrap().remove("new_measures");
    close["decision_time"] = json!({"t_s": 1700000700});
    desk.decide(&signed(close)).unwrap();
    assert!(desk.store.open_measure(&h_payto).unwrap().is_none());
    assert!(
        desk.service
            .kyc_info(&access_token.to_base32())
            .unwrap()
            .information
            .is_none()
    );
}

#[test]
fn expired_rules_give_way_to_their_successor_measure() {
    let desk = desk();
    desk.decide(&d2()).unwrap();
    let h_payto = ALICE_HASH.parse().unwrap();
    let token = token_of(&desk, ALICE_HASH);
    // Past the expiration (2100-01-01) the successor `freeze` (a SKIP measure) runs.
    desk.clock
        .set(Timestamp::from_seconds(4_102_444_801).unwrap());
    desk.service.kyc_info(&token).unwrap();
    let active = desk.store.active_outcome(&h_payto).unwrap().unwrap();
    assert!(active.to_investigate, "frozen by the successor's program");
    assert!(
        active
            .new_rules
            .unwrap()
            .rules
            .iter()
            .all(|r| r.threshold.is_zero())
    );
    // Rules without successor fall back to the defaults once expired.
    let mut short = d1();
    short["new_rules"]["expiration_time"] = json!({"t_s": 1700000400});
    let desk = desk_with("", Arc::new(crate::ports::programs::NoPrograms));
    desk.decide(&signed(short)).unwrap();
    let (_, rules) = desk
        .service
        .current_rules(&IBAN_HASH.parse().unwrap())
        .unwrap();
    assert_eq!(rules, desk.service.rules().default_rule_set());
}

#[test]
fn a_non_skip_successor_is_opened_while_the_expired_rules_apply() {
    let desk = desk();
    let mut body = d2();
    body["new_rules"]["successor_measure"] = json!("personal");
    body.as_object_mut().unwrap().remove("new_measures");
    desk.decide(&signed(body)).unwrap();
    let token = token_of(&desk, ALICE_HASH);
    assert!(desk.service.kyc_info(&token).unwrap().information.is_none());
    desk.clock
        .set(Timestamp::from_seconds(4_102_444_801).unwrap());
    let info = desk.service.kyc_info(&token).unwrap();
    assert_eq!(
        info.information.unwrap().requirements[0].form,
        "full_name_and_birthdate"
    );
    let (_, rules) = desk
        .service
        .current_rules(&ALICE_HASH.parse().unwrap())
        .unwrap();
    assert_eq!(rules.successor_measure.as_deref(), Some("personal"));
}

#[test]
fn a_decision_wins_over_a_program_still_running() {
    let desk = desk();
    let Decided::Applied { access_token, .. } = desk.decide(&d2()).unwrap() else {
        panic!("applied expected");
    };
    let info = desk.service.kyc_info(&access_token.to_base32()).unwrap();
    let id = info.information.unwrap().requirements[0]
        .id
        .clone()
        .unwrap();
    // The officer closes the requirement before the customer's upload completes.
    let mut close = d2();
    close.as_object_mut().unwrap().remove("new_measures");
    close["decision_time"] = json!({"t_s": 1700000200});
    desk.decide(&signed(close)).unwrap();
    let h_payto = ALICE_HASH.parse().unwrap();
    let decided = desk.store.active_outcome(&h_payto).unwrap().unwrap();
    let form = json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice", "DATE_OF_BIRTH": "2000-01-01"});
    assert_eq!(
        code(desk.service.upload(&id, form.as_object().unwrap().clone())).0,
        1941
    );
    assert_eq!(
        desk.store.active_outcome(&h_payto).unwrap().unwrap(),
        decided
    );
    // A program outcome of the past cannot replace a decision stored after it started.
    let stale = desk
        .store
        .store_program_outcome(
            &h_payto,
            Some(decided.serial - 1),
            crate::ports::kyc::NewOutcome {
                program: "test".into(),
                expiration_time: Timestamp::never(),
                properties: None,
                to_investigate: false,
                new_rules: desk.service.rules().default_rule_set(),
                events: Vec::new(),
            },
            desk.clock.now(),
        )
        .unwrap();
    assert!(!stale);
}

#[test]
fn instant_measures_and_external_programs() {
    // An external program that accepts: its outcome supersedes the decision at once.
    let accepting = FnProgramRunner(|argv: &[String], stdin: &[u8]| {
        assert_eq!(argv[0], "/opt/check");
        let input: Value = serde_json::from_slice(stdin).unwrap();
        assert!(input.get("attributes").is_none(), "not requested");
        Ok(br#"{"new_rules":{"expiration_time":{"t_s":"never"},"rules":[],"custom_measures":{}},"events":["checked"]}"#.to_vec())
    });
    let extra = "[aml-program-check]\nCOMMAND = /opt/check\nDESCRIPTION = x\nFALLBACK = freeze\n\
                 [kyc-measure-instant]\nCHECK_NAME = SKIP\nPROGRAM = check\n";
    let desk = desk_with(extra, Arc::new(accepting));
    let mut body = d1();
    body["new_measures"] = json!("instant");
    body["keep_investigating"] = json!(false);
    desk.decide(&signed(body.clone())).unwrap();
    let h_payto = IBAN_HASH.parse().unwrap();
    let active = desk.store.active_outcome(&h_payto).unwrap().unwrap();
    assert!(active.new_rules.unwrap().rules.is_empty());
    assert_eq!(
        desk.store
            .count_events("checked", Timestamp::EPOCH, Timestamp::never())
            .unwrap(),
        1
    );
    // Garbage, failures and timeouts all apply the fallback (freeze) and answer 1945.
    for failure in [
        Ok(b"not json".to_vec()),
        Ok(b"{}".to_vec()),
        Err(ProgramRunError::Failed("exit status: 3".into())),
        Err(ProgramRunError::Timeout(std::time::Duration::from_secs(1))),
    ] {
        let runner = FnProgramRunner(move |_: &[String], _: &[u8]| failure.clone());
        let desk = desk_with(extra, Arc::new(runner));
        assert_eq!(code(desk.decide(&signed(body.clone()))).0, 1945);
        let active = desk.store.active_outcome(&h_payto).unwrap().unwrap();
        assert!(active.to_investigate);
        assert!(
            active
                .new_rules
                .unwrap()
                .rules
                .iter()
                .all(|r| r.threshold.is_zero())
        );
        // The decision itself stays: a retry is a replay.
        assert_eq!(
            desk.decide(&signed(body.clone())).unwrap(),
            Decided::Replayed
        );
    }
}

#[test]
fn events_are_counted_at_the_decision_time() {
    let desk = desk();
    let mut body = d1();
    body["events"] = json!(["sar-filed", "sar-filed"]);
    desk.decide(&signed(body)).unwrap();
    let at = |s| Timestamp::from_seconds(s).unwrap();
    assert_eq!(
        desk.store
            .count_events("sar-filed", at(0), at(1_700_000_001))
            .unwrap(),
        2
    );
    assert_eq!(
        desk.store
            .count_events("sar-filed", at(1_700_000_001), Timestamp::never())
            .unwrap(),
        0
    );
    assert_eq!(
        desk.store
            .count_events("other", at(0), Timestamp::never())
            .unwrap(),
        0
    );
}

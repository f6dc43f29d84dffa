//! Officer decisions over real HTTP (exchange-aml-decisions.md §9): freeze, ask for more
//! information, lift; every refusal; statistics; the officer reads; external AML programs.

use serde_json::{Value, json};
use talerbox::domain::aml::decision_request::{DecisionRequest, sign_decision};
use talerbox::domain::primitives::{EddsaPrivateKey, base32};

use crate::support::pdf::pdf_text;
use crate::support::{TestServer, assert_error, talerbox};

pub(crate) const A_PUB: &str = "0EGGFFZKSR8BW7BGVMCEEJY0K5KY9NHGKEJGTQRXVJ3684JN66W0";
pub(crate) const A_SIG: &str = "6Z4JPM58WFZ8AHWSM9K5DCNXG537ZYB8Q4D7WXHA3JDP6SHECV9SZGKJ0TZRS80KT8PRT7223SGMJDKKG7SJJM31WZCK5FN4ZATCA20";
const D1_SIG: &str = "R9YQ3302WER8QDZNWQW88C5240Z923FR52QVNHJ1DA210DPHBE5BECQGYBJ1EEHW54JY0JZX86XQ077PTT5BK7YP20Y2W17Q5F2N40G";
const D2_SIG: &str = "33RW98T7A5TXD8YVK29ZHHM1Z06R8P9E2ZQ6AN8PG6A38HMYYHAP6R2DY0757A5MFM3MPYMA6WBX1FNC8NXBY3QRKW32319YGK24W0G";
pub(crate) const IBAN_HASH: &str = "A2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G";
const ALICE_HASH: &str = "F8YT6T7NJN3M1TEM3NC0DWKPRZB3MEYW5NK9S9SBEP7JR7C4ERS0";

fn officer_a() -> EddsaPrivateKey {
    EddsaPrivateKey::from_seed(std::array::from_fn(|i| i as u8))
}

pub(crate) fn d1() -> Value {
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
        "new_measures": "officer-form", "keep_investigating": false,
        "new_rules": {"custom_measures": {"officer-form": {"check_name": "personal",
            "context": {"limit": 1000, "note": "Tab\there"}, "prog_name": "accept"}},
            "expiration_time": {"t_s": 4102444800u64},
            "rules": [{"display_priority": 2, "exposed": true, "is_and_combinator": false,
                "measures": ["officer-form"], "operation_type": "WITHDRAW", "threshold": "KUDOS:1000",
                "timeframe": {"d_us": 2592000000000u64}}],
            "successor_measure": "freeze"},
        "officer_sig": D2_SIG})
}

/// `body` signed anew by officer A, with its decision time moved to now.
pub(crate) fn fresh(mut body: Value) -> Value {
    use talerbox::ports::clock::Clock as _;
    let now = talerbox::adapters::system::SystemClock
        .now()
        .as_seconds()
        .unwrap();
    body["decision_time"] = json!({"t_s": now});
    let request = DecisionRequest::parse(body.to_string().as_bytes()).unwrap();
    let signature = sign_decision(&officer_a(), &request.signed_body());
    body["officer_sig"] = json!(base32::encode(&signature.0));
    body
}

impl TestServer {
    async fn decide(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(&format!("exchange/aml/{A_PUB}/decision")))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn officer_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("exchange/aml/{A_PUB}/{path}")))
            .header("Taler-AML-Officer-Signature", A_SIG)
            .send()
            .await
            .unwrap()
    }

    fn enable_a(&self, read_only: bool) {
        self.aml
            .enable_officer(&A_PUB.parse().unwrap(), "Olivia Officer", read_only)
            .unwrap();
    }

    fn kyc_token(&self, hash: &str) -> String {
        let (status, out, err) = talerbox(self.dir.path(), &["kyc", "token", hash]);
        assert_eq!(status, 0, "{err}");
        out.lines().next().unwrap().to_owned()
    }
}

#[tokio::test]
async fn the_pdf_export_names_the_payto_uri_a_decision_gave() {
    let server = TestServer::start().await;
    server.enable_a(false);
    assert_eq!(server.decide(&d1()).await.status(), 204);
    server
        .aml
        .store_attributes(talerbox::domain::aml::StoreAttributes {
            h_payto: IBAN_HASH.parse().unwrap(),
            attributes: serde_json::from_value(json!({"FORM_ID": "officer-note", "NOTE": "ok"}))
                .unwrap(),
            source: talerbox::domain::aml::AttributeSource::Officer(A_PUB.parse().unwrap()),
            expiration_time: talerbox::domain::primitives::Timestamp::never(),
            process_serial: None,
        })
        .unwrap();
    let response = server
        .client
        .get(server.url(&format!("exchange/aml/{A_PUB}/attributes/{IBAN_HASH}")))
        .header("Taler-AML-Officer-Signature", A_SIG)
        .header("Accept", "application/pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, text) = pdf_text(&response.bytes().await.unwrap());
    for expected in [
        "Account: payto://iban/DE89370400440532013000?receiver-name=Alice\n",
        "Event 1 of 1 - collected ",
        " - entered by an AML officer\n",
        "NOTE: ok\n",
    ] {
        assert!(text.contains(expected), "{expected} missing in {text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn freeze_replay_conflict_and_refusals() {
    let server = TestServer::start().await;
    // Not an officer yet: a valid signature by an unregistered key.
    assert_error(server.decide(&d1()).await, 403, 1826).await;
    server.enable_a(false);
    let mut anonymous = d1();
    anonymous.as_object_mut().unwrap().remove("payto_uri");
    let body = assert_error(server.decide(&anonymous).await, 404, 1041).await;
    assert_eq!(body["detail"], "h_payto");
    let mut wrong = d1();
    wrong["justification"] = json!("Structuring suspected; account frozen pending review!");
    assert_error(server.decide(&wrong).await, 403, 1825).await;
    let mut other = d1();
    other["payto_uri"] = json!("payto://x-taler-bank/localhost:8080/alice?receiver-name=Alice");
    assert_error(server.decide(&other).await, 400, 26).await;
    let response = server
        .client
        .post(server.url(&format!("exchange/aml/{A_PUB}/decision")))
        .body("{\"h_payto\": 1")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, 22).await;

    assert_eq!(server.decide(&d1()).await.status(), 204);
    assert_eq!(
        server.decide(&d1()).await.status(),
        204,
        "a replay changes nothing"
    );
    let mut older = d1();
    older["decision_time"] = json!({"t_s": 1699999999});
    let request = DecisionRequest::parse(older.to_string().as_bytes()).unwrap();
    older["officer_sig"] = json!(base32::encode(
        &sign_decision(&officer_a(), &request.signed_body()).0
    ));
    assert_error(server.decide(&older).await, 409, 1827).await;

    // The decisions list shows the freeze with its officer and full payto, once.
    let response = server
        .officer_get(&format!("decisions?h_payto={IBAN_HASH}"))
        .await;
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    let records = list["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["decider_pub"], A_PUB);
    assert_eq!(records[0]["justification"], d1()["justification"]);
    assert_eq!(records[0]["full_payto"], d1()["payto_uri"]);
    assert_eq!(
        records[0]["limits"]["rules"][0]["measures"],
        json!(["verboten"])
    );
    assert_eq!(records[0]["to_investigate"], true);

    // Wrong methods and shapes.
    let response = server
        .client
        .get(server.url(&format!("exchange/aml/{A_PUB}/decision")))
        .header("Taler-AML-Officer-Signature", A_SIG)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let response = server
        .client
        .post(server.url(&format!("exchange/aml/{A_PUB}/decisions")))
        .send()
        .await
        .unwrap();
    assert_error(response, 405, 20).await;
    // Read-only and disabled officers may not decide.
    server.enable_a(true);
    assert_error(server.decide(&fresh(d1())).await, 403, 1826).await;
    let (status, _, err) = talerbox(server.dir.path(), &["aml", "officer", "disable", A_PUB]);
    assert_eq!(status, 0, "{err}");
    assert_error(server.decide(&fresh(d1())).await, 403, 1826).await;
    server.stop().await;
}

#[tokio::test]
async fn ask_for_information_then_the_program_follows_then_lift() {
    let server = TestServer::start().await;
    server.enable_a(false);
    assert_eq!(server.decide(&d2()).await.status(), 204);
    let token = server.kyc_token(ALICE_HASH);
    let info: Value = server
        .get(&format!("exchange/kyc-info/{token}"))
        .await
        .json()
        .await
        .unwrap();
    let requirement = &info["requirements"][0];
    assert_eq!(requirement["form"], "full_name_and_birthdate");
    assert_eq!(
        requirement["context"],
        json!({"limit": 1000, "note": "Tab\there"})
    );
    let id = requirement["id"].as_str().unwrap().to_owned();
    // A long poll waiting on kyc-info wakes when the officer decides.
    let etag = "\"1-1\"".to_owned();
    let poll = {
        let client = server.client.clone();
        let url = server.url(&format!("exchange/kyc-info/{token}?timeout_ms=10000"));
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let response = client
                .get(url)
                .header("If-None-Match", etag)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), started.elapsed())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let form = json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice", "DATE_OF_BIRTH": "2000-01-01"});
    let upload = server
        .client
        .post(server.url(&format!("exchange/kyc-upload/{id}")))
        .json(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 204);
    let (status, waited) = poll.await.unwrap();
    assert_eq!(status, 204);
    assert!(waited < std::time::Duration::from_secs(5));
    // The program's outcome is active; the decision is kept as history.
    let list: Value = server
        .officer_get(&format!("decisions?h_payto={ALICE_HASH}&limit=10"))
        .await
        .json()
        .await
        .unwrap();
    let records = list["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["is_active"], true);
    assert!(records[1].get("justification").is_none());
    assert_eq!(records[0]["is_active"], false);
    assert_eq!(records[0]["justification"], d2()["justification"]);
    // Freeze with a visible requirement, then lift.
    let mut freeze = d2();
    freeze["new_measures"] = json!("personal");
    freeze["keep_investigating"] = json!(true);
    assert_eq!(server.decide(&fresh(freeze)).await.status(), 204);
    let info: Value = server
        .get(&format!("exchange/kyc-info/{token}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["requirements"][0]["form"], "full_name_and_birthdate");
    let old = server.client.post(server.url(&format!("exchange/kyc-upload/{id}")))
        .json(&json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Eve", "DATE_OF_BIRTH": "1990-01-01"}))
        .send().await.unwrap();
    assert_error(old, 409, 1941).await;
    let mut lift = d2();
    lift.as_object_mut().unwrap().remove("new_measures");
    lift["new_rules"] = json!({"expiration_time": {"t_s": 1}, "rules": [], "custom_measures": {}});
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(server.decide(&fresh(lift)).await.status(), 204);
    assert_eq!(
        server
            .get(&format!("exchange/kyc-info/{token}"))
            .await
            .status(),
        204
    );
    server.stop().await;
}

#[tokio::test]
async fn statistics_measures_legitimizations_and_accounts() {
    let server = TestServer::start().await;
    server.enable_a(false);
    // Events are not signed: D1 as it is, counted at its decision time.
    let mut body = d1();
    body["events"] = json!(["sar-filed"]);
    assert_eq!(server.decide(&body).await.status(), 204);
    let response = server.officer_get("kyc-statistics/sar-filed%20other").await;
    assert_eq!(response.status(), 200);
    let statistics: Value = response.json().await.unwrap();
    assert_eq!(
        statistics,
        json!({"statistics": [{"name": "sar-filed", "counter": 1}, {"name": "other", "counter": 0}]})
    );
    assert_eq!(
        server
            .officer_get("kyc-statistics/sar-filed?end_date=1")
            .await
            .status(),
        204
    );
    assert_error(
        server
            .officer_get("kyc-statistics/sar-filed?start_date=x")
            .await,
        400,
        26,
    )
    .await;
    assert_error(server.officer_get("kyc-statistics").await, 404, 21).await;
    let measures: Value = server.officer_get("measures").await.json().await.unwrap();
    assert_eq!(measures["roots"]["email"]["check_name"], "email");
    assert!(measures["programs"]["accept"].is_object());
    assert_eq!(
        measures["checks"]["personal"]["outputs"],
        json!(["FULL_NAME", "DATE_OF_BIRTH"])
    );
    assert_eq!(measures["default_rules"][0]["rule_name"], "withdraw-high");
    assert_eq!(server.decide(&d2()).await.status(), 204);
    let sets: Value = server
        .officer_get("legitimizations?active=yes")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sets["measures"][0]["h_payto"], ALICE_HASH);
    assert_eq!(sets["measures"][0]["is_finished"], false);
    assert_eq!(
        server
            .officer_get("legitimizations?active=no")
            .await
            .status(),
        204
    );
    assert_error(
        server.officer_get("legitimizations?active=maybe").await,
        400,
        26,
    )
    .await;
    let accounts: Value = server
        .officer_get("accounts?high_risk=yes")
        .await
        .json()
        .await
        .unwrap();
    let listed = accounts["accounts"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["h_payto"], IBAN_HASH);
    assert_eq!(listed[0]["to_investigate"], true);
    let all: Value = server
        .officer_get("accounts?limit=10")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["accounts"].as_array().unwrap().len(), 2);
    server.stop().await;
}

fn script(dir: &std::path::Path, name: &str, run: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let body = format!(
        "#!/bin/sh\ncase \"$1\" in -r|-a) exit 0;; -i) echo attributes; exit 0;; esac\n{run}\n"
    );
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn external_programs_pass_fail_time_out_and_print_garbage() {
    let scripts = tempfile::tempdir().unwrap();
    let accept = r#"cat > /dev/null; echo '{"new_rules":{"expiration_time":{"t_s":"never"},"rules":[],"custom_measures":{}},"events":["passed"]}'"#;
    let cases = [
        ("pass", accept, 204, false),
        ("fail", "cat > /dev/null; exit 3", 500, true),
        ("slow", "exec sleep 10", 500, true),
        ("garbage", "cat > /dev/null; echo '{}'", 500, true),
    ];
    for (name, run, status, frozen) in cases {
        let program = script(scripts.path(), name, run);
        let extra = format!(
            "[exchangedb]\nMAX_AML_PROGRAM_RUNTIME = 1 s\n\
             [aml-program-accept]\nCOMMAND = {program}\nDESCRIPTION = external\nFALLBACK = freeze\n"
        );
        let server = TestServer::start_with(&extra).await;
        server.enable_a(false);
        let (code, out, _) = talerbox(server.dir.path(), &["aml", "program", "info", "accept"]);
        assert_eq!(code, 0);
        assert!(out.contains("inputs: attributes"), "{out}");
        assert_eq!(server.decide(&d2()).await.status(), 204);
        let token = server.kyc_token(ALICE_HASH);
        let info: Value = server
            .get(&format!("exchange/kyc-info/{token}"))
            .await
            .json()
            .await
            .unwrap();
        let id = info["requirements"][0]["id"].as_str().unwrap().to_owned();
        let form = json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice", "DATE_OF_BIRTH": "2000-01-01"});
        let upload = server
            .client
            .post(server.url(&format!("exchange/kyc-upload/{id}")))
            .json(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(upload.status().as_u16(), status, "{name}");
        if status == 500 {
            assert_error(upload, 500, 1945).await;
        }
        let list: Value = server
            .officer_get(&format!("decisions?h_payto={ALICE_HASH}&active=yes"))
            .await
            .json()
            .await
            .unwrap();
        let active = &list["records"][0];
        assert_eq!(active["to_investigate"], frozen, "{name}: {active}");
        let zero = active["limits"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["threshold"] == "KUDOS:0");
        assert_eq!(zero && frozen, frozen, "{name}: the fallback freezes");
        server.stop().await;
    }
}

#[tokio::test]
async fn the_cli_decides_as_an_officer() {
    let server = TestServer::start().await;
    let key_file = server.dir.path().join("officer.key");
    std::fs::write(
        &key_file,
        format!(
            "{}\n",
            base32::encode(&std::array::from_fn::<u8, 32, _>(|i| i as u8))
        ),
    )
    .unwrap();
    server.enable_a(false);
    let key = key_file.to_str().unwrap();
    let payto = "payto://iban/DE89370400440532013000?receiver-name=Alice";
    let (status, out, err) = talerbox(
        server.dir.path(),
        &[
            "aml",
            "decide",
            payto,
            "--officer-key",
            key,
            "--justification",
            "freeze",
            "--rules",
            "freeze",
            "--investigate",
            "--event",
            "frozen",
        ],
    );
    assert_eq!(status, 0, "{err}");
    assert!(out.trim().parse::<u64>().is_ok(), "{out}");
    let (status, out, err) = talerbox(
        server.dir.path(),
        &[
            "aml",
            "decide",
            IBAN_HASH,
            "--officer-key",
            key,
            "--justification",
            "more",
            "--measures",
            "personal",
            "--decision-time",
            "4000000000",
        ],
    );
    assert_eq!(status, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[2].ends_with(&format!("kyc-spa/{}", lines[1])));
    // The operator finds the case: the account with its flags, the open requirement.
    let (status, out, _) = talerbox(server.dir.path(), &["aml", "accounts"]);
    assert_eq!(status, 0);
    assert_eq!(
        out.trim(),
        format!("{IBAN_HASH} rules - - {payto}"),
        "the second decision did not keep investigating"
    );
    let (status, out, _) = talerbox(
        server.dir.path(),
        &["aml", "accounts", "--investigation", "yes"],
    );
    assert_eq!((status, out.as_str()), (0, ""));
    let (status, out, _) = talerbox(server.dir.path(), &["kyc", "list"]);
    assert_eq!(status, 0);
    assert!(
        out.starts_with(IBAN_HASH) && out.trim().ends_with(" personal"),
        "{out}"
    );
    let (status, _, err) = talerbox(
        server.dir.path(),
        &[
            "aml",
            "decide",
            IBAN_HASH,
            "--officer-key",
            key,
            "--justification",
            "late",
            "--decision-time",
            "1",
        ],
    );
    assert_eq!(status, 1);
    assert!(
        err.starts_with("error 1827 EXCHANGE_AML_DECISION_MORE_RECENT_PRESENT"),
        "{err}"
    );
    let (status, out, _) = talerbox(
        server.dir.path(),
        &[
            "aml",
            "decide",
            IBAN_HASH,
            "--officer-key",
            key,
            "--justification",
            "x",
            "--print-request",
        ],
    );
    assert_eq!(status, 0);
    let printed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(printed["h_payto"], IBAN_HASH);
    let (status, out, _) = talerbox(
        server.dir.path(),
        &["aml", "program", "test", "accept", "--input", "/dev/null"],
    );
    assert_eq!(status, 1, "{out}");
    let input = server.dir.path().join("input.json");
    std::fs::write(&input, r#"{"attributes": {"FULL_NAME": "A"}}"#).unwrap();
    let (status, out, err) = talerbox(
        server.dir.path(),
        &[
            "aml",
            "program",
            "test",
            "accept",
            "--input",
            input.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 0, "{err}");
    assert!(out.starts_with("{\"new_rules\":"), "{out}");
    server.stop().await;
}

#[tokio::test]
async fn arrays_and_scalars_are_not_bodies() {
    let server = TestServer::start().await;
    server.enable_a(false);
    for body in ["[]", "[{\"h_payto\": 1}]", "\"decision\"", "12", "false"] {
        for path in [
            format!("exchange/aml/{A_PUB}/decision"),
            "exchange/management/aml-officers".to_owned(),
        ] {
            let answer = server
                .client
                .post(server.url(&path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_error(answer, 400, 22).await;
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_signature_is_answered_before_the_rules_are_judged() {
    let server = TestServer::start().await;
    server.enable_a(false);
    // Rules that would be refused (400/26), signed by nobody: the signature is the answer.
    let mut body = d1();
    body["new_rules"] = json!({"rules": "not a list"});
    assert_error(server.decide(&body).await, 403, 1825).await;
    body["new_measures"] = json!("no-such-measure");
    assert_error(server.decide(&body).await, 403, 1825).await;
    server.stop().await;
}

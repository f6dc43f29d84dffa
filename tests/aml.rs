//! The AML officer endpoints over real HTTP and the `talerbox` CLI (exchange-aml.md), with the
//! test keys of taler-primitives.md §4–§5.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::Response;
use serde_json::{Value, json};
use talerbox::app::StartOptions;
use talerbox::domain::aml::{AttributeSource, NewOutcome, StoreAttributes};
use talerbox::domain::primitives::{
    EddsaPrivateKey, EddsaPublicKey, NormalizedPaytoHash, Payto, Timestamp,
};

use crate::support::pdf::pdf_text;
use crate::support::{TestServer, assert_error, config_file};

const A_PUB: &str = "0EGGFFZKSR8BW7BGVMCEEJY0K5KY9NHGKEJGTQRXVJ3684JN66W0";
const A_SIG: &str = "6Z4JPM58WFZ8AHWSM9K5DCNXG537ZYB8Q4D7WXHA3JDP6SHECV9SZGKJ0TZRS80KT8PRT7223SGMJDKKG7SJJM31WZCK5FN4ZATCA20";
const B_PUB: &str = "4N1VJBZH15AH2HVAVJ1PKPVDVJ9KCSD135WDV8A09VGGCV59APEG";
const B_SIG: &str = "0GZVFEHZR6XV173F0Q8EJPBKN2ZH8K9PC4Y6N75C094Q36J0SJ2J7BH4P012E581TPQH4ANFAJFHVS25WSWSAJ0EC0QDJP0R1MV4408";
const MASTER_PUB: &str = "56PBNRA1QK5F1CHE3AAD6K8BRWV1WMKD1FZ15J4QJJY968MPDQBG";
const MASTER_SIG_1700000000: &str = "MMNQR19C887Y6XR63RFF0Q2SH4JTY9JQSNDSPAQ10WZPX0FD2651FDNJBESXAHZJ3KNSE1XFY4HFZZA9KRVK8247BWTX1RJ96FCXG00";
const MASTER_SIG_1700000100: &str = "XTAJ76J70671991VQEP38NWF5W9M4N1EWFFAY5KNT7NYEG9YAPKEBCMVD7QQTYC7T1WYVP8BZNRT49K424VSVYXCBWQK2GWSHWK102R";
const MASTER_SIG_1700000200: &str = "MDJ2HRVFGM54S9EFFK4184K9MFXK006D78WNJ2H1CBEX71GRFRG7HXDR3FSKM85H665X6BZ9CH5X84HNF5ANXQ4YWFT0GGGKE89R02G";
/// `payto://iban/DE89370400440532013000` (primitives §8).
const ACCOUNT: &str = "A2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G";

fn key(text: &str) -> EddsaPublicKey {
    text.parse().unwrap()
}

fn account() -> NormalizedPaytoHash {
    let hash = Payto::parse_full("payto://iban/DE89370400440532013000?receiver-name=Alice")
        .unwrap()
        .h_normalized();
    assert_eq!(hash.to_string(), ACCOUNT);
    hash
}

fn other_account() -> NormalizedPaytoHash {
    NormalizedPaytoHash([7; 32])
}

impl TestServer {
    async fn aml_get(&self, path: &str, signature: Option<&str>, accept: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(&format!("exchange/aml/{path}")));
        if let Some(signature) = signature {
            request = request.header("Taler-AML-Officer-Signature", signature);
        }
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        request.send().await.unwrap()
    }

    async fn attributes(&self, query: &str) -> Response {
        let path = format!("{A_PUB}/attributes/{ACCOUNT}{query}");
        self.aml_get(&path, Some(A_SIG), None).await
    }

    fn enable(&self, officer: &str, name: &str) {
        self.aml.enable_officer(&key(officer), name, false).unwrap();
    }

    fn file(
        &self,
        h_payto: NormalizedPaytoHash,
        attributes: Value,
        source: AttributeSource,
    ) -> u64 {
        self.aml
            .store_attributes(StoreAttributes {
                h_payto,
                attributes: serde_json::from_value(attributes).unwrap(),
                source,
                expiration_time: Timestamp::never(),
                process_serial: None,
            })
            .unwrap()
    }

    /// Files rows 1..=20 so that the account owns 3, 7, 8, 12 and 20 (spec §4.2).
    fn file_spec_example(&self) {
        for rowid in 1..=20u64 {
            let owner = if [3, 7, 8, 12, 20].contains(&rowid) {
                account()
            } else {
                other_account()
            };
            let filed = self.file(owner, json!({"FORM_ID": "test", "N": rowid}), customer());
            assert_eq!(filed, rowid);
        }
    }
}

fn customer() -> AttributeSource {
    AttributeSource::Customer {
        provider: Some("FORM".into()),
    }
}

async fn rowids(response: Response) -> Vec<u64> {
    if response.status() == 204 {
        return Vec::new();
    }
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rowid"].as_u64().unwrap())
        .collect()
}

// ---- reading attributes ----

#[tokio::test]
async fn a_valid_officer_reads_json() {
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    let first = server.file(
        account(),
        json!({"FORM_ID": "test", "FULL_NAME": "Alice Example"}),
        customer(),
    );
    let second = server.file(
        account(),
        json!({"FORM_ID": "officer-note", "NOTE": "checked"}),
        AttributeSource::Officer(key(A_PUB)),
    );
    let response = server.attributes("").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    let details = body["details"].as_array().unwrap();
    assert_eq!(details.len(), 2);
    assert_eq!(details[0]["rowid"], second);
    assert_eq!(details[0]["by_aml_officer"], true);
    assert_eq!(details[0]["attributes"]["NOTE"], "checked");
    assert_eq!(details[1]["rowid"], first);
    assert_eq!(details[1]["by_aml_officer"], false);
    assert_eq!(
        details[1]["attributes"],
        json!({"FORM_ID": "test", "FULL_NAME": "Alice Example"})
    );
    assert!(details[1]["collection_time"]["t_s"].as_u64().unwrap() > 1_700_000_000);
    // Lower-case keys in the path are the same keys.
    let lower = format!(
        "{}/attributes/{}",
        A_PUB.to_lowercase(),
        ACCOUNT.to_lowercase()
    );
    let response = server.aml_get(&lower, Some(A_SIG), None).await;
    assert_eq!(rowids(response).await, [second, first]);
    server.stop().await;
}

#[tokio::test]
async fn a_valid_officer_reads_a_pdf() {
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    let form = |name: &str| json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": name, "DATE_OF_BIRTH": "1990-01-02"});
    let first = server.file(account(), form("Łukasz Čapek"), customer());
    server.file(account(), form("Zoë Ærøskøbing"), customer());
    let path = format!("{A_PUB}/attributes/{ACCOUNT}");
    let response = server
        .aml_get(&path, Some(A_SIG), Some("application/pdf"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert_eq!(disposition, "inline; filename=\"aml-A2260CZA.pdf\"");
    let pdf = response.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-1."));
    assert!(pdf.len() < 100 * 1024, "{} bytes", pdf.len());
    let (pages, text) = pdf_text(&pdf);
    assert_eq!(pages, 1);
    let exchange = format!("Exchange: {}exchange/\n", server.base);
    let officer = format!("Exported by AML officer: Olivia Officer\nOfficer public key: {A_PUB}\n");
    let hash = format!("Account hash (h_normalized_payto): {ACCOUNT}");
    for expected in [
        exchange.as_str(),
        officer.as_str(),
        hash.as_str(),
        // No decision or KYC process has named the account's payto URI yet.
        "Account: (payto URI not known to the exchange)",
        "2 collection events, numbered oldest first",
        "Event 1 of 2 - collected ",
        "Full name: Łukasz Čapek\n",
        "Event 2 of 2 - collected ",
        "Full name: Zoë Ærøskøbing\n",
        "Date of birth: 1990-01-02",
        "Form: Full name and date of birth (full_name_and_birthdate)",
        "submitted by the customer",
        "Page 1 of 1",
    ] {
        assert!(text.contains(expected), "{expected} missing in {text}");
    }
    assert!(text.find("Łukasz") < text.find("Zoë"), "{text}");
    // Internal row ids stay out of the document.
    assert!(!text.contains(&format!("Row {first}")), "{text}");
    // JSON stays the default for */* and for types we do not offer.
    for accept in ["*/*", "text/html", "application/pdf;q=0, application/json"] {
        let response = server.aml_get(&path, Some(A_SIG), Some(accept)).await;
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{accept}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn eighty_rows_make_a_pdf_of_several_pages() {
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    let long = "very long value ".repeat(30);
    for n in 0..80 {
        server.file(
            account(),
            json!({"FORM_ID": "test", "FULL_NAME": format!("Person {n}"), "REMARK": long}),
            customer(),
        );
    }
    let path = format!("{A_PUB}/attributes/{ACCOUNT}?limit=-80");
    let response = server
        .aml_get(&path, Some(A_SIG), Some("application/pdf"))
        .await;
    assert_eq!(response.status(), 200);
    let (pages, text) = pdf_text(&response.bytes().await.unwrap());
    assert!(pages > 3, "{pages} pages");
    for n in 0..80 {
        assert!(
            text.contains(&format!("FULL_NAME: Person {n}\n")),
            "row {n}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn pdf_output_can_be_disabled() {
    let server = TestServer::start_with("[exchange]\nENABLE_AML_PDF = NO\n").await;
    server.enable(A_PUB, "Olivia Officer");
    let path = format!("{A_PUB}/attributes/{ACCOUNT}");
    let response = server
        .aml_get(&path, Some(A_SIG), Some("application/pdf"))
        .await;
    assert_eq!(response.status(), 501);
    let body: Value = response.json().await.unwrap();
    assert!(body["code"].is_u64(), "{body}");
    let response = server.aml_get(&path, Some(A_SIG), None).await;
    assert_eq!(response.status(), 204);
    server.stop().await;
}

// ---- authentication ----

#[tokio::test]
async fn signatures_are_checked_against_the_path_key() {
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    server.enable(B_PUB, "Oscar Other");
    let path = format!("{A_PUB}/attributes/{ACCOUNT}");
    let mut flipped = A_SIG.to_owned();
    flipped.replace_range(5..6, if &A_SIG[5..6] == "A" { "B" } else { "A" });
    for signature in [None, Some("garbage"), Some(&flipped[..]), Some(&A_SIG[1..])] {
        let response = server.aml_get(&path, signature, None).await;
        assert_error(response, 403, 1033).await;
    }
    // B's valid signature on A's path: another registered officer is still refused.
    assert_error(server.aml_get(&path, Some(B_SIG), None).await, 403, 1033).await;
    // B on its own path is fine.
    let own = format!("{B_PUB}/attributes/{ACCOUNT}");
    assert_eq!(server.aml_get(&own, Some(B_SIG), None).await.status(), 204);
    server.stop().await;
}

#[tokio::test]
async fn unknown_disabled_and_read_only_officers() {
    let server = TestServer::start().await;
    assert_error(server.attributes("").await, 404, 1034).await;
    server.aml.enable_officer(&key(A_PUB), "Ro", true).unwrap();
    assert_eq!(server.attributes("").await.status(), 204);
    server.aml.disable_officer(&key(A_PUB)).unwrap().unwrap();
    assert_error(server.attributes("").await, 409, 1034).await;
    server.stop().await;
}

#[tokio::test]
async fn path_shapes_get_their_own_codes() {
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    let long_hash = talerbox::domain::primitives::sha512(b"x").to_string();
    for (path, signature, status, code) in [
        ("".to_owned(), Some(A_SIG), 400, 1032),
        ("NOTAKEY/attributes".to_owned(), Some(A_SIG), 400, 1032),
        (
            format!("{B_SIG}/attributes/{ACCOUNT}"),
            Some(A_SIG),
            400,
            1032,
        ),
        (A_PUB.to_owned(), Some(A_SIG), 404, 1002),
        // The operation is checked after the signature.
        (format!("{A_PUB}/bogus"), None, 403, 1033),
        // An unknown operation is 1001, as the exchange answers it.
        (format!("{A_PUB}/bogus"), Some(A_SIG), 404, 1001),
        (format!("{A_PUB}/attributes"), Some(A_SIG), 404, 21),
        (
            format!("{A_PUB}/attributes/{ACCOUNT}/more"),
            Some(A_SIG),
            404,
            21,
        ),
        (format!("{A_PUB}/decisions/more"), Some(A_SIG), 404, 21),
        (format!("{A_PUB}/attributes/nope"), Some(A_SIG), 400, 29),
        (
            format!("{A_PUB}/attributes/{long_hash}"),
            Some(A_SIG),
            400,
            29,
        ),
        // The hash is checked after the officer.
        (format!("{B_PUB}/attributes/nope"), Some(B_SIG), 404, 1034),
    ] {
        let response = server.aml_get(&path, signature, None).await;
        assert_error(response, status, code).await;
    }
    let response = server.get("exchange/aml").await;
    assert_error(response, 400, 1032).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_accounts_answer_204() {
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    server.file(other_account(), json!({"FORM_ID": "x"}), customer());
    let response = server.attributes("").await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    server.stop().await;
}

// ---- limit and offset (spec §4.2) ----

#[tokio::test]
async fn limit_and_offset_edges() {
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    server.file_spec_example();
    let empty: [u64; 0] = [];
    for (query, expected) in [
        ("", &[20, 12, 8, 7, 3][..]),
        ("?limit=-2", &[20, 12]),
        ("?limit=-2&offset=12", &[8, 7]),
        ("?limit=2", &[3, 7]),
        ("?limit=2&offset=7", &[8, 12]),
        ("?limit=5&offset=20", &empty),
        ("?limit=0", &empty),
        ("?limit=0&offset=5", &empty),
        ("?offset=12", &[8, 7, 3]),
        ("?offset=3", &empty),
        ("?limit=1&offset=0", &[3]),
        ("?limit=-1&offset=4", &[3]),
        ("?limit=1&offset=19", &[20]),
        // Clamped, never refused.
        ("?limit=1025", &[3, 7, 8, 12, 20]),
        ("?limit=-1025", &[20, 12, 8, 7, 3]),
        ("?limit=9223372036854775807", &[3, 7, 8, 12, 20]),
        ("?limit=-9223372036854775808", &[20, 12, 8, 7, 3]),
        ("?limit=-2&offset=9223372036854775807", &[20, 12]),
        ("?limit=-2&offset=9223372036854775808", &[20, 12]),
        ("?limit=-2&offset=18446744073709551615", &[20, 12]),
        ("?limit=2&offset=18446744073709551615", &empty),
        ("?limit=%2D2", &[20, 12]),
        ("?other=1&limit=2", &[3, 7]),
        // Large pages run on the blocking pool; same answer.
        ("?limit=-500", &[20, 12, 8, 7, 3]),
    ] {
        assert_eq!(
            rowids(server.attributes(query).await).await,
            expected,
            "{query}"
        );
    }
    for query in [
        "?limit=9223372036854775808",
        "?limit=-9223372036854775809",
        "?limit=abc",
        "?limit=",
        "?limit=1.5",
        "?limit=%2B2",
        "?offset=-1",
        "?offset=18446744073709551616",
        "?offset=x",
        "?limit=2&offset=",
        "?limit=%FF",
        "?limit=-2000&offset=x",
    ] {
        assert_error(server.attributes(query).await, 400, 26).await;
    }
    server.stop().await;
}

// ---- rows under an old key ----

#[tokio::test]
async fn rows_under_an_old_key_show_without_attributes() {
    let old = TestServer::start_with("[exchange]\nATTRIBUTE_ENCRYPTION_KEY = old key\n").await;
    old.enable(A_PUB, "Olivia Officer");
    let old_row = old.file(account(), json!({"FORM_ID": "old"}), customer());
    let dir = old.stop_keeping_data().await;
    let accept = StartOptions {
        accept_new_attribute_key: true,
    };
    let new = TestServer::start_in(
        dir,
        "[exchange]\nATTRIBUTE_ENCRYPTION_KEY = new key\n",
        accept,
    )
    .await;
    let new_row = new.file(account(), json!({"FORM_ID": "new"}), customer());
    let response = new.attributes("").await;
    let body: Value = response.json().await.unwrap();
    let details = body["details"].as_array().unwrap();
    assert_eq!(details.len(), 2);
    assert_eq!(details[0]["rowid"], new_row);
    assert_eq!(details[0]["attributes"], json!({"FORM_ID": "new"}));
    assert_eq!(details[1]["rowid"], old_row);
    assert!(details[1].get("attributes").is_none(), "{body}");
    assert_eq!(details[1]["by_aml_officer"], false);
    // And the PDF says so instead of failing.
    let path = format!("{A_PUB}/attributes/{ACCOUNT}");
    let response = new
        .aml_get(&path, Some(A_SIG), Some("application/pdf"))
        .await;
    let (_, text) = pdf_text(&response.bytes().await.unwrap());
    assert!(text.contains("(attributes unavailable"), "{text}");
    assert!(text.contains("Form: new"), "{text}");
    new.stop().await;
}

// ---- decisions ----

#[tokio::test]
async fn decisions_list_accounts_to_look_at() {
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    let running = &server;
    let decisions = |query: &str| {
        let path = format!("{A_PUB}/decisions{query}");
        async move { running.aml_get(&path, Some(A_SIG), None).await }
    };
    assert_eq!(decisions("").await.status(), 204);
    let outcome = |h_payto, investigate| NewOutcome {
        h_payto,
        decision_time: Timestamp::from_seconds(1_700_000_000).unwrap(),
        expiration_time: Timestamp::never(),
        properties: None,
        new_measure_name: None,
        to_investigate: investigate,
        new_rules: None,
        decider: None,
    };
    server
        .aml
        .record_outcome(&outcome(account(), true))
        .unwrap();
    server
        .aml
        .record_outcome(&outcome(other_account(), false))
        .unwrap();
    server
        .aml
        .record_outcome(&outcome(account(), false))
        .unwrap();
    let body: Value = decisions("").await.json().await.unwrap();
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["rowid"], 3);
    assert_eq!(records[0]["h_payto"], ACCOUNT);
    assert_eq!(records[0]["is_active"], true);
    assert_eq!(records[0]["to_investigate"], false);
    assert_eq!(records[0]["decision_time"], json!({"t_s": 1_700_000_000}));
    // A decision without rules shows the exchange's default rules.
    assert_eq!(
        records[0]["limits"]["rules"][0]["rule_name"],
        "withdraw-high"
    );
    assert_eq!(records[2]["is_active"], false);
    let filtered: Value = decisions(&format!("?h_payto={ACCOUNT}&active=yes"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["records"].as_array().unwrap().len(), 1);
    let investigated: Value = decisions("?investigation=yes").await.json().await.unwrap();
    assert_eq!(investigated["records"][0]["rowid"], 1);
    assert_eq!(decisions("?limit=1&offset=3").await.status(), 204);
    assert_error(decisions("?active=maybe").await, 400, 26).await;
    server.stop().await;
}

// ---- officer registration ----

fn setup(t_s: u64, active: bool, read_only: bool, sig: &str) -> Value {
    json!({
        "officer_pub": A_PUB,
        "officer_name": "Olivia Officer",
        "is_active": active,
        "read_only": read_only,
        "change_date": {"t_s": t_s},
        "master_sig": sig,
    })
}

#[tokio::test]
async fn management_registers_officers_with_master_signatures() {
    let server =
        TestServer::start_with(&format!("[exchange]\nMASTER_PUBLIC_KEY = {MASTER_PUB}\n")).await;
    let post = |body: String| {
        server
            .client
            .post(server.url("exchange/management/aml-officers"))
            .body(body)
            .send()
    };
    // Bad signatures and bodies first: nothing is stored.
    let by_officer = "6FC5JGSW3ZADR74C4SB5AVKR505CVEMTVCG0D6Y9N1X881PPPZ8HB8VKTCYD1M0J8EYQBY8QQZ82T0TWS6BV2GT6NERZHHTNDEEZM20";
    let body = setup(1_700_000_000, true, false, by_officer).to_string();
    assert_error(post(body).await.unwrap(), 403, 1830).await;
    let body = setup(1_700_000_000, true, true, MASTER_SIG_1700000000).to_string();
    assert_error(post(body).await.unwrap(), 403, 1830).await;
    assert_error(post("{oops".into()).await.unwrap(), 400, 22).await;
    assert_error(post("{}".into()).await.unwrap(), 400, 22).await;
    let mut wrong_type = setup(1_700_000_000, true, false, MASTER_SIG_1700000000);
    wrong_type["is_active"] = json!("yes");
    assert_error(post(wrong_type.to_string()).await.unwrap(), 400, 22).await;
    assert_error(server.attributes("").await, 404, 1034).await;

    let good = setup(1_700_000_000, true, false, MASTER_SIG_1700000000).to_string();
    assert_eq!(post(good.clone()).await.unwrap().status(), 204);
    assert_eq!(server.attributes("").await.status(), 204);
    // Replays are idempotent; a later status wins; an older one is 409/1831.
    assert_eq!(post(good).await.unwrap().status(), 204);
    let disable = setup(1_700_000_100, false, false, MASTER_SIG_1700000100).to_string();
    assert_eq!(post(disable).await.unwrap().status(), 204);
    assert_error(server.attributes("").await, 409, 1034).await;
    let enable_ro = setup(1_700_000_200, true, true, MASTER_SIG_1700000200).to_string();
    assert_eq!(post(enable_ro).await.unwrap().status(), 204);
    let older = setup(1_700_000_100, false, false, MASTER_SIG_1700000100).to_string();
    assert_error(post(older).await.unwrap(), 409, 1831).await;
    assert_eq!(server.attributes("").await.status(), 204);
    let get = server
        .client
        .get(server.url("exchange/management/aml-officers"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    server.stop().await;
}

#[tokio::test]
async fn without_a_configured_master_key_the_generated_one_signs() {
    let server = TestServer::start().await;
    // The vector signatures are by another master key.
    let body = setup(1_700_000_000, true, false, MASTER_SIG_1700000000).to_string();
    let response = server
        .client
        .post(server.url("exchange/management/aml-officers"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_error(response, 403, 1830).await;
    let master_file = server.dir.path().join("data/master-key");
    let master: EddsaPrivateKey = std::fs::read_to_string(master_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let change = Timestamp::from_seconds(1_700_000_000).unwrap();
    let status = talerbox::domain::primitives::officer_status_body(
        change,
        &key(A_PUB),
        "Olivia Officer",
        true,
        false,
    );
    let sig = talerbox::domain::primitives::sign_purpose(
        &master,
        talerbox::domain::primitives::purpose::MASTER_AML_KEY,
        &status,
    );
    let response = server
        .client
        .post(server.url("exchange/management/aml-officers"))
        .body(setup(1_700_000_000, true, false, &sig.to_string()).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(server.attributes("").await.status(), 204);
    server.stop().await;
}

// ---- the CLI ----

fn talerbox(data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_talerbox"));
    command.arg("--data-dir").arg(data);
    command
}

fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn officer_commands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_eq!(run(talerbox(&data).arg("init")).0, 0);
    let (code, out, err) = run(talerbox(&data).args(["aml", "officer", "new", "--name", "Nina"]));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let private: EddsaPrivateKey = lines[1].parse().unwrap();
    assert_eq!(private.public_key().to_string(), lines[0]);

    let (code, _, err) = run(talerbox(&data).args([
        "aml",
        "officer",
        "add",
        "--pub",
        &A_PUB.to_lowercase(),
        "--name",
        "Olivia Officer",
        "--read-only",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(talerbox(&data).args(["aml", "officer", "list"]));
    assert_eq!(code, 0);
    let listed: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(listed.len(), 2, "{out}");
    let olivia = listed.iter().find(|l| l[0] == A_PUB).unwrap();
    assert_eq!(&olivia[1..4], ["Olivia Officer", "active", "read-only"]);
    let nina = listed.iter().find(|l| l[0] == lines[0]).unwrap();
    assert_eq!(&nina[1..4], ["Nina", "active", "read-write"]);

    let (code, _, _) = run(talerbox(&data).args(["aml", "officer", "disable", A_PUB]));
    assert_eq!(code, 0);
    let (_, out, _) = run(talerbox(&data).args(["aml", "officer", "list"]));
    let olivia: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with(A_PUB))
        .unwrap()
        .split('\t')
        .collect();
    assert_eq!(&olivia[1..3], ["Olivia Officer", "disabled"]);
    let (code, _, err) = run(talerbox(&data).args(["aml", "officer", "disable", B_PUB]));
    assert_eq!(code, 1);
    assert!(err.contains(B_PUB), "{err}");
    let (code, _, err) =
        run(talerbox(&data).args(["aml", "officer", "add", "--pub", "x", "--name", "n"]));
    assert_eq!(code, 1, "{err}");

    // sign-query gives the officer's header value (vector of primitives §4).
    let a_private = "000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG";
    let (code, out, _) = run(talerbox(&data).args(["aml", "officer", "sign-query", a_private]));
    assert_eq!((code, out.trim()), (0, A_SIG));
}

#[test]
fn master_pub_is_generated_once_or_configured() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_eq!(run(talerbox(&data).arg("init")).0, 0);
    let (code, first, _) = run(talerbox(&data).args(["exchange", "master-pub"]));
    assert_eq!(code, 0);
    assert_eq!(first.trim().len(), 52);
    let (_, second, _) = run(talerbox(&data).args(["exchange", "master-pub"]));
    assert_eq!(first, second);
    let private: EddsaPrivateKey = std::fs::read_to_string(data.join("master-key"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(format!("{}\n", private.public_key()), first);
    #[cfg(unix)]
    for file in ["master-key", "attribute-key"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let config = config_file(
        dir.path(),
        &format!(
            "[exchange]\nMASTER_PUBLIC_KEY = {}\n",
            MASTER_PUB.to_lowercase()
        ),
    );
    let (code, out, _) = run(talerbox(&data)
        .arg("-c")
        .arg(&config)
        .args(["exchange", "master-pub"]));
    assert_eq!(
        (code, out.as_str()),
        (0, format!("{MASTER_PUB}\n").as_str())
    );
}

/// Starts `serve` and returns whether it announced its address (then stops it) or its exit
/// code and standard error.
fn try_serve(command: &mut Command, flags: &[&str]) -> Result<(), (i32, String)> {
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("listening on http://") {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(child.wait().unwrap().success());
            return Ok(());
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    Err((status.code().unwrap_or(-1), seen))
}

#[test]
fn a_changed_attribute_key_is_refused_unless_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let old = config_file(dir.path(), "[exchange]\nATTRIBUTE_ENCRYPTION_KEY = old\n");
    try_serve(talerbox(&data).arg("-c").arg(&old), &[]).unwrap();
    let new = dir.path().join("new.conf");
    std::fs::write(&new, "[exchange]\nATTRIBUTE_ENCRYPTION_KEY = new\n").unwrap();
    let (code, err) = try_serve(talerbox(&data).arg("-c").arg(&new), &[]).unwrap_err();
    assert_ne!(code, 0);
    assert!(err.contains("[exchange] ATTRIBUTE_ENCRYPTION_KEY"), "{err}");
    assert!(err.contains("--accept-new-attribute-key"), "{err}");
    // The same key again is fine; the flag adopts the new key for good.
    try_serve(talerbox(&data).arg("-c").arg(&old), &[]).unwrap();
    let accept = ["--accept-new-attribute-key"];
    try_serve(talerbox(&data).arg("-c").arg(&new), &accept).unwrap();
    try_serve(talerbox(&data).arg("-c").arg(&new), &[]).unwrap();
    assert!(try_serve(talerbox(&data).arg("-c").arg(&old), &[]).is_err());
}

#[test]
fn a_replaced_key_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    try_serve(&mut talerbox(&data), &[]).unwrap();
    let file = data.join("attribute-key");
    std::fs::write(&file, "ANOTHERKEY\n").unwrap();
    let (code, err) = try_serve(&mut talerbox(&data), &[]).unwrap_err();
    assert_ne!(code, 0);
    assert!(err.contains(&file.display().to_string()), "{err}");
}

#[tokio::test]
async fn wrong_signatures_are_throttled() {
    let server = TestServer::start_with(
        "[talerbox]\nTHROTTLE_ACCOUNT_BURST = 2\nTHROTTLE_ACCOUNT_INTERVAL = 1 h\n",
    )
    .await;
    server.enable(A_PUB, "Olivia Officer");
    let path = format!("{A_PUB}/attributes/{ACCOUNT}");
    for _ in 0..3 {
        let response = server.aml_get(&path, Some(B_SIG), None).await;
        assert_error(response, 403, 1033).await;
    }
    let throttled = server.aml_get(&path, Some(A_SIG), None).await;
    assert!(throttled.headers().contains_key("retry-after"));
    assert_error(throttled, 429, 7004).await;
    // Another officer's budget is its own.
    let other = format!("{B_PUB}/attributes/{ACCOUNT}");
    assert_error(server.aml_get(&other, Some(A_SIG), None).await, 403, 1033).await;
    server.stop().await;
}

/// One attribute row of 2,000 fields: 64 parallel PDF exports of it from a `talerbox serve`
/// process each stay small, and the server's peak resident memory (VmHWM) stays bounded.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn parallel_exports_of_a_huge_row_stay_bounded() {
    const EXPORTS: usize = 64;
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    let fields: serde_json::Map<String, Value> = (0..2_000)
        .map(|i| {
            (
                format!("FIELD_{i:04}"),
                json!(format!("value {i} ").repeat(20)),
            )
        })
        .collect();
    server.file(account(), Value::Object(fields), customer());
    let dir = server.stop_keeping_data().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_talerbox"))
        .arg("-c")
        .arg(dir.path().join("talerbox.conf"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_owned();
        }
    };
    // Keep reading the log so that the server never waits on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let client = reqwest::Client::new();
    let url = format!("{base}exchange/aml/{A_PUB}/attributes/{ACCOUNT}");
    let exports: Vec<_> = (0..EXPORTS)
        .map(|_| {
            let request = client
                .get(&url)
                .header("Taler-AML-Officer-Signature", A_SIG)
                .header("Accept", "application/pdf");
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap()
            })
        })
        .collect();
    for export in exports {
        let pdf = export.await.unwrap();
        assert!(pdf.len() < 1024 * 1024, "{} bytes", pdf.len());
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    eprintln!(
        "peak RSS (VmHWM) of the server after {EXPORTS} parallel PDF exports of a 2,000-field \
         row: {} MiB",
        peak_kib / 1024
    );
    assert!(peak_kib < 128 * 1024, "{peak_kib} KiB");
    let pdf = reqwest::Client::new()
        .get(&url)
        .header("Taler-AML-Officer-Signature", A_SIG)
        .header("Accept", "application/pdf")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (pages, text) = pdf_text(&pdf);
    assert!(pages < 100, "{pages} pages");
    assert!(text.contains("1800 more attributes not shown"), "{text}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

// ---- the access log and signed exports (compliance-evidence.md §1.6, §2, §3) ----

/// The `aml.attributes_read` entries of the account, newest first.
fn reads_of(server: &TestServer, account: &str) -> Vec<Value> {
    let (code, out, err) = crate::support::talerbox(
        server.dir.path(),
        &[
            "audit",
            "log",
            "--account",
            account,
            "--kind",
            "aml.attributes_read",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `talerbox export verify FILE PROOF` on `body` and `proof` written to files.
fn export_verify(server: &TestServer, body: &[u8], proof: &str) -> (i32, String) {
    let file = server.dir.path().join("export.bin");
    std::fs::write(&file, body).unwrap();
    let proof_file = server.dir.path().join("export.proof");
    std::fs::write(&proof_file, proof).unwrap();
    let (code, out, _) = crate::support::talerbox(
        server.dir.path(),
        &[
            "export",
            "verify",
            file.to_str().unwrap(),
            proof_file.to_str().unwrap(),
        ],
    );
    (code, out)
}

#[tokio::test]
async fn officer_reads_are_journaled_and_exports_carry_proofs_that_verify() {
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    let row = server.file(account(), json!({"FORM_ID": "test", "N": 1}), customer());
    for accept in [None, Some("application/pdf")] {
        let path = format!("{A_PUB}/attributes/{ACCOUNT}");
        let response = server.aml_get(&path, Some(A_SIG), accept).await;
        assert_eq!(response.status(), 200);
        let proof = response.headers()["talerbox-export-proof"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(proof.len(), 218);
        let body = response.bytes().await.unwrap().to_vec();
        let (code, out) = export_verify(&server, &body, &proof);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.starts_with(&format!(
                "export ok: account {ACCOUNT}, read by officer {A_PUB} at "
            )),
            "{out}"
        );
        let mut changed = body.clone();
        changed[body.len() / 2] ^= 1;
        assert_eq!(export_verify(&server, &changed, &proof).0, 1);
        // The journal entry holds the hash of exactly these bytes.
        let newest = &reads_of(&server, ACCOUNT)[0];
        assert_eq!(newest["actor"], format!("officer:{A_PUB}"));
        let sha = talerbox::domain::primitives::crypto::sha512(&body).to_string();
        assert_eq!(newest["details"]["body_sha512"], sha);
        assert_eq!(newest["details"]["rows"], json!([row, row]));
        assert_eq!(newest["details"]["count"], 1);
        let format = if accept.is_some() { "pdf" } else { "json" };
        assert_eq!(newest["details"]["format"], format);
    }
    // An access attempt is an access: a 204 is journaled with count 0.
    let other = other_account().to_string();
    let path = format!("{A_PUB}/attributes/{other}");
    assert_eq!(server.aml_get(&path, Some(A_SIG), None).await.status(), 204);
    assert_eq!(reads_of(&server, &other)[0]["details"]["count"], 0);
    assert_eq!(reads_of(&server, ACCOUNT).len(), 2);

    // The officer sees the account's journal, and that read is journaled too.
    let path = format!("{A_PUB}/journal?h_payto={ACCOUNT}");
    let response = server.aml_get(&path, Some(A_SIG), None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let kinds: Vec<&str> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "aml.attributes_read",
            "aml.attributes_read",
            "kyc.attributes_stored"
        ]
    );
    assert_eq!(body["entries"][0]["h_payto"], ACCOUNT);
    let (_, out, _) = crate::support::talerbox(
        server.dir.path(),
        &[
            "audit",
            "log",
            "--account",
            ACCOUNT,
            "--kind",
            "aml.journal_read",
            "--json",
        ],
    );
    let entry: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(entry["details"]["count"], 3);
    server.stop().await;
}

#[tokio::test]
async fn a_read_that_cannot_be_journaled_answers_500_54_and_no_data() {
    let server = TestServer::start().await;
    server.enable(A_PUB, "Olivia Officer");
    server.file(
        account(),
        json!({"FORM_ID": "test", "SECRET": "s3cr3t"}),
        customer(),
    );
    let conn = rusqlite::Connection::open(server.dir.path().join("data/talerbox.sqlite3")).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER fail_journal BEFORE INSERT ON compliance_journal
         BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    )
    .unwrap();
    let response = server.attributes("").await;
    assert!(response.headers().get("talerbox-export-proof").is_none());
    let body = assert_error(response, 500, 54).await;
    assert!(!body.to_string().contains("s3cr3t"));
    let decisions = server
        .aml_get(&format!("{A_PUB}/decisions"), Some(A_SIG), None)
        .await;
    assert_error(decisions, 500, 54).await;
    conn.execute_batch("DROP TRIGGER fail_journal").unwrap();
    assert_eq!(server.attributes("").await.status(), 200);
    server.stop().await;
}

/// Files a row for `h_payto` that expired long ago.
fn file_expired(server: &TestServer, h_payto: NormalizedPaytoHash) -> u64 {
    server
        .aml
        .store_attributes(StoreAttributes {
            h_payto,
            attributes: serde_json::from_value(json!({"FORM_ID": "test", "NAME": "Old"})).unwrap(),
            source: customer(),
            expiration_time: Timestamp::from_seconds(1).unwrap(),
            process_serial: None,
        })
        .unwrap()
}

#[tokio::test]
async fn retention_purges_due_rows_except_those_on_hold() {
    let server = TestServer::start_with("[exchange]\nATTRIBUTE_RETENTION = 1 s\n").await;
    let dir = server.dir.path();
    let cli = |args: &[&str]| crate::support::talerbox(dir, args);
    server.enable(A_PUB, "Olivia Officer");
    let held = [
        file_expired(&server, account()),
        file_expired(&server, account()),
    ];
    let other = other_account().to_string();
    let free = file_expired(&server, other_account());
    let (code, out, err) = cli(&["aml", "hold", ACCOUNT, "--reason", "court order 7"]);
    assert_eq!(
        (code, out.trim()),
        (0, format!("{ACCOUNT} on hold").as_str()),
        "{err}"
    );
    let (_, out, _) = cli(&["aml", "hold", "--list"]);
    assert!(
        out.starts_with(ACCOUNT) && out.trim().ends_with("court order 7"),
        "{out}"
    );
    // Collection times are whole seconds: with a retention of 1 s a row is due from the second
    // after next. The purge the server runs at startup finds none of them; after 2.1 s the
    // command below finds them all.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (_, out, _) = cli(&["retention", "purge", "--dry-run"]);
    assert_eq!(out.trim(), "would purge 1 rows of 1 accounts");
    let (code, out, _) = cli(&["retention", "purge"]);
    assert_eq!((code, out.trim()), (0, "purged 1 rows of 1 accounts"));
    assert_eq!(
        cli(&["retention", "purge"]).1.trim(),
        "purged 0 rows of 0 accounts"
    );

    // The purged row keeps its place, without attributes; the held rows keep theirs.
    let path = format!("{A_PUB}/attributes/{other}");
    let body: Value = server
        .aml_get(&path, Some(A_SIG), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["details"][0]["rowid"], free);
    assert!(body["details"][0].get("attributes").is_none(), "{body}");
    let body: Value = server.attributes("").await.json().await.unwrap();
    assert_eq!(body["details"][0]["attributes"]["NAME"], "Old");

    // Released, the account's rows go too.
    let (_, out, _) = cli(&["aml", "hold", ACCOUNT, "--release"]);
    assert_eq!(out.trim(), format!("{ACCOUNT} released"));
    assert_eq!(
        cli(&["retention", "purge"]).1.trim(),
        "purged 2 rows of 1 accounts"
    );
    let (_, out, _) = cli(&[
        "audit",
        "log",
        "--account",
        ACCOUNT,
        "--kind",
        "retention.purged",
        "--json",
    ]);
    let entry: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(entry["details"]["rows"], json!(held));
    assert_eq!(entry["actor"], "operator");
    let (_, out, _) = cli(&[
        "audit",
        "log",
        "--account",
        ACCOUNT,
        "--kind",
        "retention.hold",
    ]);
    assert_eq!(out.lines().count(), 2);
    assert!(
        !out.contains("court order"),
        "the journal keeps only the reason's hash: {out}"
    );
    assert_eq!(cli(&["audit", "verify"]).0, 0);
    server.stop().await;
}

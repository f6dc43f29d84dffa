//! The wallet's and merchant's way into KYC over real HTTP: the exchange's `/config`, the 501s
//! of the endpoints talerbox leaves out, `POST /kyc-wallet` and `GET /kyc-check`.

use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use reqwest::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};
use talerbox::domain::primitives::{base32, purpose};

use crate::support::{TestServer, assert_error, talerbox};

/// A BALANCE rule whose measure is the personal-data form, and the admin trigger enabled.
const CONFIG: &str = "[exchange]\nADMIN_TOKEN = secret-token:kyc-admin\n\n\
    [kyc-rule-balance-high]\nENABLED = YES\nEXPOSED = YES\nOPERATION_TYPE = BALANCE\n\
    THRESHOLD = KUDOS:100\nTIMEFRAME = 30 d\nNEXT_MEASURES = personal\n";
const BOB: &str = "payto://x-taler-bank/localhost/bob?receiver-name=Bob";
const BOB_NORMALIZED: &str = "payto://x-taler-bank/localhost/bob";
const SIGNATURE: &str = "Account-Owner-Signature";

/// An EdDSA key of the test's own: a wallet's reserve key or a merchant's account key.
struct Key(SigningKey);

impl Key {
    fn new(seed: u8) -> Key {
        Key(SigningKey::from_bytes(&[seed; 32]))
    }

    fn public(&self) -> String {
        base32::encode(self.0.verifying_key().as_bytes())
    }

    /// Signs `body` under `purpose`: be32(size) ‖ be32(purpose) ‖ body.
    fn sign(&self, purpose: u32, body: &[u8]) -> String {
        let mut block = Vec::new();
        block.extend_from_slice(&u32::try_from(8 + body.len()).unwrap().to_be_bytes());
        block.extend_from_slice(&purpose.to_be_bytes());
        block.extend_from_slice(body);
        base32::encode(&self.0.sign(&block).to_bytes())
    }

    /// The wallet's signature over its balance (purpose 1205 over the 24-byte AmountNBO).
    fn sign_balance(&self, value: u64, fraction: u32, currency: &str) -> String {
        let mut nbo = Vec::new();
        nbo.extend_from_slice(&value.to_be_bytes());
        nbo.extend_from_slice(&fraction.to_be_bytes());
        let mut name = [0u8; 12];
        name[..currency.len()].copy_from_slice(currency.as_bytes());
        nbo.extend_from_slice(&name);
        self.sign(1205, &nbo)
    }

    /// The `Account-Owner-Signature` of kyc-check.
    fn kyc_auth(&self) -> String {
        self.sign(purpose::KYC_AUTH, &[])
    }
}

/// `h_normalized_payto` of a normalized payto: SHA-512 over the URI and a NUL, cut to 32 bytes.
fn hash_payto(normalized: &str) -> String {
    let mut hasher = Sha512::new();
    hasher.update(normalized.as_bytes());
    hasher.update([0u8]);
    base32::encode(&hasher.finalize()[..32])
}

struct Wallets {
    server: TestServer,
}

impl Wallets {
    async fn start() -> Wallets {
        Wallets::start_with(CONFIG).await
    }

    async fn start_with(extra: &str) -> Wallets {
        Wallets {
            server: TestServer::start_with(extra).await,
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(&format!("exchange/{path}"))
    }

    /// The wallet's account hash: its reserve payto at this exchange (`-http`: plain HTTP).
    fn wallet_h_payto(&self, key: &Key) -> String {
        let host_path = self.url("").strip_prefix("http://").unwrap().to_owned();
        hash_payto(&format!(
            "payto://taler-reserve-http/{host_path}{}",
            key.public()
        ))
    }

    async fn register_raw(&self, body: &Value) -> Response {
        self.server
            .client
            .post(self.url("kyc-wallet"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Registers `key` with a balance of `value` KUDOS, signed correctly.
    async fn register(&self, key: &Key, value: u64) -> Response {
        self.register_raw(&json!({
            "reserve_pub": key.public(),
            "reserve_sig": key.sign_balance(value, 0, "KUDOS"),
            "balance": format!("KUDOS:{value}"),
        }))
        .await
    }

    async fn check_with(&self, h_payto: &str, signature: Option<&str>, query: &str) -> Response {
        let mut request = self
            .server
            .client
            .get(self.url(&format!("kyc-check/{h_payto}{query}")));
        if let Some(signature) = signature {
            request = request.header(SIGNATURE, signature);
        }
        request.send().await.unwrap()
    }

    async fn check(&self, h_payto: &str, key: &Key) -> Response {
        self.check_with(h_payto, Some(&key.kyc_auth()), "").await
    }

    /// kyc-check's body, asserting its status.
    async fn status(&self, h_payto: &str, key: &Key, status: u16) -> Value {
        let response = self.check(h_payto, key).await;
        assert_eq!(response.status(), status);
        response.json().await.unwrap()
    }

    /// Fills in the personal-data form the open measure of `token` asks for.
    async fn complete_personal_form(&self, token: &str) {
        let info: Value = self
            .server
            .get(&format!("exchange/kyc-info/{token}"))
            .await
            .json()
            .await
            .unwrap();
        let id = info["requirements"][0]["id"].as_str().unwrap();
        let uploaded = self
            .server
            .client
            .post(self.url(&format!("kyc-upload/{id}")))
            .json(&json!({
                "FORM_ID": "full_name_and_birthdate",
                "FULL_NAME": "Wally Wallet",
                "DATE_OF_BIRTH": "1990-01-31",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), 204);
    }
}

#[tokio::test]
async fn exchange_config_names_its_currency_and_kyc_requirements() {
    let server = TestServer::start().await;
    let exchange: Value = server.get("exchange/config").await.json().await.unwrap();
    assert_eq!(exchange["currency"], "KUDOS");
    assert_eq!(exchange["currency_specification"]["currency"], "KUDOS");
    assert_eq!(
        exchange["currency_specification"]["name"],
        "Kudos (Taler Demonstrator)"
    );
    assert_eq!(
        exchange["supported_kyc_requirements"],
        serde_json::json!([])
    );
    // The bank's specification stays as libeufin-bank sends it: without `currency`.
    let bank: Value = server.get("bank/config").await.json().await.unwrap();
    assert!(bank["currency_specification"].get("currency").is_none());
    assert!(bank.get("supported_kyc_requirements").is_none());
    server.stop().await;
}

#[tokio::test]
async fn endpoints_left_out_answer_501_and_unknown_ones_404() {
    let server = TestServer::start().await;
    let key = "000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG";
    let get = |path: String| server.client.get(server.url(&format!("exchange/{path}")));
    let post = |path: String| server.client.post(server.url(&format!("exchange/{path}")));
    let requests = [
        get("keys".into()),
        get("seed".into()),
        get("terms".into()),
        get("privacy".into()),
        get(format!("reserves/{key}")),
        get(format!("reserves/{key}/history")),
        post(format!("reserves/{key}/batch-withdraw")),
        post("batch-deposit".into()),
        post(format!("coins/{key}/melt")),
        post(format!("refreshes/{key}/reveal")),
        post(format!("coins/{key}/recoup")),
        post(format!("purses/{key}/create")),
        server
            .client
            .delete(server.url(&format!("exchange/purses/{key}"))),
        get(format!("contracts/{key}")),
        get(format!("transfers/{key}")),
        get(format!("wads/{key}")),
        get(format!("deposits/{key}/{key}/{key}/{key}")),
        get("kyc-webhook/challenger/anything".into()),
        post("kyc-webhook/challenger".into()),
        get("management/keys".into()),
        post("management/wire".into()),
        post(format!("management/signkeys/{key}/revoke")),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        let url = response.url().to_string();
        let body = assert_error(response, 501, 21).await;
        assert_eq!(body["hint"], "not implemented by talerbox", "{url}");
    }
    // A wrong method on a left-out endpoint is still 405, an unknown path still 404.
    let response = get("batch-deposit".into()).send().await.unwrap();
    assert_error(response, 405, 20).await;
    for path in ["exchange/keys/extra", "exchange/reserves", "exchange/nope"] {
        assert_error(server.get(path).await, 404, 21).await;
    }
    server.stop().await;
}

// ---- POST /kyc-wallet ----

#[tokio::test]
async fn a_balance_below_the_rules_is_allowed_and_registers_the_wallet() {
    let wallets = Wallets::start().await;
    let wallet = Key::new(1);
    let response = wallets.register(&wallet, 50).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"expiration_time": {"t_s": "never"}, "next_threshold": "KUDOS:100"})
    );
    // The reserve key is now the account's key: kyc-check answers the wallet.
    let status = wallets
        .status(&wallets.wallet_h_payto(&wallet), &wallet, 200)
        .await;
    assert_eq!(status["aml_review"], false);
    assert_eq!(status["access_token"].as_str().unwrap().len(), 52);
    let limits = status["limits"].as_array().unwrap();
    assert!(limits.contains(&json!({
        "operation_type": "BALANCE",
        "rule_name": "balance-high",
        "timeframe": {"d_us": 2_592_000_000_000u64},
        "threshold": "KUDOS:100",
        "soft_limit": true,
    })));
    assert!(limits.iter().any(|l| l["operation_type"] == "WITHDRAW"));
    wallets.server.stop().await;
}

#[tokio::test]
async fn a_balance_reaching_a_rule_opens_its_measures_with_451() {
    let wallets = Wallets::start().await;
    let wallet = Key::new(2);
    let h_payto = wallets.wallet_h_payto(&wallet);
    let first = wallets.register(&wallet, 100).await;
    assert_eq!(first.status(), 451);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["code"], 1028);
    assert!(first["hint"].is_string());
    assert_eq!(first["h_payto"], h_payto.as_str());
    assert!(first.get("account_pub").is_none(), "{first}");
    assert!(first.get("bad_kyc_auth").is_none(), "{first}");
    let row = first["requirement_row"].as_u64().unwrap();
    assert!(row > 0);
    // Asked again, the same requirement; the account's key is now known.
    let again: Value = wallets.register(&wallet, 250).await.json().await.unwrap();
    assert_eq!(again["requirement_row"], row);
    assert_eq!(again["account_pub"], wallet.public().as_str());
    // kyc-check: 202 while the measure is open; kyc-info shows the form.
    let status = wallets.status(&h_payto, &wallet, 202).await;
    let token = status["access_token"].as_str().unwrap();
    let info: Value = wallets
        .server
        .get(&format!("exchange/kyc-info/{token}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["requirements"][0]["form"], "full_name_and_birthdate");
    // Once the form is in, the program's rules apply: the balance is below their limit.
    wallets.complete_personal_form(token).await;
    let status = wallets.status(&h_payto, &wallet, 200).await;
    assert!(
        status["limits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["soft_limit"] == false && l["threshold"] == "KUDOS:10000")
    );
    let allowed: Value = wallets.register(&wallet, 250).await.json().await.unwrap();
    assert_eq!(allowed["next_threshold"], "KUDOS:10000");
    assert!(allowed["expiration_time"]["t_s"].as_u64().is_some());
    wallets.server.stop().await;
}

#[tokio::test]
async fn kyc_wallet_refuses_bad_signatures_other_currencies_and_bad_json() {
    let wallets = Wallets::start().await;
    let wallet = Key::new(3);
    // Signed over another balance, or by another key.
    let body = json!({
        "reserve_pub": wallet.public(),
        "reserve_sig": wallet.sign_balance(5, 0, "KUDOS"),
        "balance": "KUDOS:500",
    });
    assert_error(wallets.register_raw(&body).await, 403, 1925).await;
    let body = json!({
        "reserve_pub": wallet.public(),
        "reserve_sig": Key::new(4).sign_balance(500, 0, "KUDOS"),
        "balance": "KUDOS:500",
    });
    assert_error(wallets.register_raw(&body).await, 403, 1925).await;
    // A fraction is part of the signed amount.
    let body = json!({
        "reserve_pub": wallet.public(),
        "reserve_sig": wallet.sign_balance(5, 50_000_000, "KUDOS"),
        "balance": "KUDOS:5.5",
    });
    assert_eq!(wallets.register_raw(&body).await.status(), 200);
    // Another currency, even signed correctly.
    let body = json!({
        "reserve_pub": wallet.public(),
        "reserve_sig": wallet.sign_balance(5, 0, "EUR"),
        "balance": "EUR:5",
    });
    assert_error(wallets.register_raw(&body).await, 400, 22).await;
    for bad in [
        json!({"reserve_pub": wallet.public(), "balance": "KUDOS:5"}),
        json!({"reserve_pub": "not-a-key", "reserve_sig": wallet.sign_balance(5, 0, "KUDOS"), "balance": "KUDOS:5"}),
        json!({"reserve_pub": wallet.public(), "reserve_sig": wallet.sign_balance(5, 0, "KUDOS"), "balance": "KUDOS"}),
        json!([]),
        // The sequence form of a correctly signed request is no object either.
        json!([
            wallet.public(),
            wallet.sign_balance(5, 0, "KUDOS"),
            "KUDOS:5"
        ]),
        json!("KUDOS:5"),
        json!(5),
    ] {
        assert_error(wallets.register_raw(&bad).await, 400, 22).await;
    }
    let response = wallets
        .server
        .client
        .post(wallets.url("kyc-wallet"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, 22).await;
    // None of the refused requests created an account.
    let h_payto = wallets.wallet_h_payto(&Key::new(4));
    assert_error(wallets.check(&h_payto, &Key::new(4)).await, 404, 1939).await;
    wallets.server.stop().await;
}

// ---- GET /kyc-check ----

#[tokio::test]
async fn kyc_check_answers_every_error_with_its_code() {
    let wallets = Wallets::start().await;
    let wallet = Key::new(5);
    let h_payto = wallets.wallet_h_payto(&wallet);
    let signature = wallet.kyc_auth();
    // Path, then header, then query.
    let response = wallets.check_with("not-a-hash", Some(&signature), "").await;
    assert_error(response, 400, 29).await;
    assert_error(wallets.check_with(&h_payto, None, "").await, 400, 25).await;
    let response = wallets.check_with(&h_payto, Some("XYZ"), "").await;
    assert_error(response, 400, 26).await;
    let response = wallets
        .check_with(&h_payto, Some(&signature), "?timeout_ms=soon")
        .await;
    assert_error(response, 400, 26).await;
    let response = wallets
        .check_with(&h_payto, Some(&signature), "?lpt=x")
        .await;
    assert_error(response, 400, 26).await;
    // Unknown account; an lpt out of range is ignored.
    let response = wallets
        .check_with(&h_payto, Some(&signature), "?lpt=9")
        .await;
    assert_error(response, 404, 1939).await;
    // Known account without a key: the admin trigger opened it.
    let triggered = wallets
        .server
        .client
        .post(wallets.url("admin/kyc-trigger"))
        .bearer_auth("secret-token:kyc-admin")
        .json(&json!({"payto_uri": BOB, "measures": "personal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(triggered.status(), 200);
    let bob = hash_payto(BOB_NORMALIZED);
    assert_error(wallets.check(&bob, &wallet).await, 409, 1940).await;
    // A key known, a signature by another one.
    assert_eq!(wallets.register(&wallet, 1).await.status(), 200);
    let intruder = Key::new(6);
    let body = assert_error(wallets.check(&h_payto, &intruder).await, 403, 1930).await;
    assert_eq!(body["expected_account_pub"], wallet.public().as_str());
    // A signature by the right key under another purpose does not count.
    let response = wallets
        .check_with(&h_payto, Some(&wallet.sign(1205, &[])), "")
        .await;
    assert_error(response, 403, 1930).await;
    wallets.server.stop().await;
}

#[tokio::test]
async fn an_operator_recorded_key_authenticates_a_bank_account() {
    let wallets = Wallets::start().await;
    let dir = wallets.server.dir.path().to_owned();
    let merchant = Key::new(7);
    let (code, out, err) = talerbox(&dir, &["kyc", "trigger", BOB, "--measure", "personal"]);
    assert_eq!(code, 0, "{err}");
    let token = out.lines().next().unwrap().to_owned();
    let bob = hash_payto(BOB_NORMALIZED);
    let (code, out, err) = talerbox(&dir, &["kyc", "account-key", BOB, &merchant.public()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), bob);
    let status = wallets.status(&bob, &merchant, 202).await;
    assert_eq!(status["access_token"], token.as_str());
    // A new key replaces the old one.
    let successor = Key::new(8);
    let (code, _, err) = talerbox(&dir, &["kyc", "account-key", BOB, &successor.public()]);
    assert_eq!(code, 0, "{err}");
    let body = assert_error(wallets.check(&bob, &merchant).await, 403, 1930).await;
    assert_eq!(body["expected_account_pub"], successor.public().as_str());
    // Bad input is refused before anything is stored.
    let (code, _, _) = talerbox(&dir, &["kyc", "account-key", BOB, "not-a-key"]);
    assert_ne!(code, 0);
    let (code, _, _) = talerbox(
        &dir,
        &["kyc", "account-key", "payto://nope", &merchant.public()],
    );
    assert_ne!(code, 0);
    wallets.server.stop().await;
}

#[tokio::test]
async fn a_long_poll_for_kyc_ok_wakes_when_the_measure_is_completed() {
    let wallets = Wallets::start().await;
    let wallet = Key::new(9);
    let h_payto = wallets.wallet_h_payto(&wallet);
    assert_eq!(wallets.register(&wallet, 500).await.status(), 451);
    let token = wallets.status(&h_payto, &wallet, 202).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = wallets.url(&format!("kyc-check/{h_payto}?lpt=3&timeout_ms=20000"));
    let poll = {
        let client = wallets.server.client.clone();
        let signature = wallet.kyc_auth();
        tokio::spawn(async move {
            let started = Instant::now();
            let response = client
                .get(url)
                .header(SIGNATURE, signature)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !poll.is_finished(),
        "the poll must wait while the measure is open"
    );
    wallets.complete_personal_form(&token).await;
    let (status, waited) = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    assert!(waited >= Duration::from_millis(400) && waited < Duration::from_secs(10));
    // Without a target, the same request answers at once.
    let started = Instant::now();
    let response = wallets
        .check_with(&h_payto, Some(&wallet.kyc_auth()), "?timeout_ms=20000")
        .await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    wallets.server.stop().await;
}

#[tokio::test]
async fn a_long_poll_for_the_key_waits_for_the_account_then_answers_404() {
    let wallets = Wallets::start().await;
    let wallet = Key::new(10);
    let h_payto = wallets.wallet_h_payto(&wallet);
    let started = Instant::now();
    let response = wallets
        .check_with(&h_payto, Some(&wallet.kyc_auth()), "?lpt=1&timeout_ms=300")
        .await;
    assert_error(response, 404, 1939).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Woken by the wallet's registration.
    let url = wallets.url(&format!("kyc-check/{h_payto}?lpt=1&timeout_ms=20000"));
    let poll = {
        let client = wallets.server.client.clone();
        let signature = wallet.kyc_auth();
        tokio::spawn(async move {
            client
                .get(url)
                .header(SIGNATURE, signature)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished());
    assert_eq!(wallets.register(&wallet, 1).await.status(), 200);
    let status = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    wallets.server.stop().await;
}

#[tokio::test]
async fn without_kyc_the_check_answers_204_and_every_balance_is_allowed() {
    let wallets = Wallets::start_with(&format!("{CONFIG}\n[exchange]\nENABLE_KYC = NO\n")).await;
    let wallet = Key::new(11);
    let response = wallets.register(&wallet, 5000).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"expiration_time": {"t_s": "never"}}));
    let h_payto = wallets.wallet_h_payto(&wallet);
    assert_eq!(wallets.check(&h_payto, &wallet).await.status(), 204);
    // The request is still checked first.
    assert_error(wallets.check_with(&h_payto, None, "").await, 400, 25).await;
    wallets.server.stop().await;
}

#[tokio::test]
async fn an_instant_measure_runs_its_program_and_the_new_rules_decide() {
    // Crossing 1000 KUDOS freezes the wallet at once (a SKIP measure); the freeze forbids
    // every operation from zero, so the balance then crosses a forbidden rule.
    let wallets = Wallets::start_with(
        "[kyc-rule-balance-freeze]\nENABLED = YES\nEXPOSED = YES\nOPERATION_TYPE = BALANCE\n\
         THRESHOLD = KUDOS:1000\nTIMEFRAME = 30 d\nNEXT_MEASURES = freeze\n",
    )
    .await;
    let wallet = Key::new(12);
    let h_payto = wallets.wallet_h_payto(&wallet);
    assert_eq!(wallets.register(&wallet, 999).await.status(), 200);
    let response = wallets.register(&wallet, 1000).await;
    let body = assert_error(response, 451, 1028).await;
    assert_eq!(body["account_pub"], wallet.public().as_str());
    let status = wallets.status(&h_payto, &wallet, 202).await;
    assert_eq!(status["aml_review"], true);
    let limits = status["limits"].as_array().unwrap();
    assert!(!limits.is_empty());
    assert!(
        limits
            .iter()
            .all(|l| l["soft_limit"] == false && l["threshold"] == "KUDOS:0")
    );
    wallets.server.stop().await;
}

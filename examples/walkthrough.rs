//! The whole offline flow, in process, against the real HTTP server on a free port:
//! a bank account, a KYC requirement for it, the built-in challenger as the provider (address
//! and PIN entered as a browser would, the PIN read from the outbox), the proof, and an AML
//! officer exporting the account's attribute history as a PDF, then deciding: a freeze the
//! customer sees, a request for more information, and closing the case. Finally a wallet:
//! its balance crosses a BALANCE rule (`POST /kyc-wallet`), and it gets its access token from
//! `GET /kyc-check` signed with its reserve key, not from an operator.
//!
//! Run: `cargo run --example walkthrough`

use std::time::Duration;
use talerbox::domain::evidence::RequirementTrigger;

use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};
use talerbox::app::{self, App};
use talerbox::config::{Config, Overrides};
use talerbox::domain::aml::decision_request::{DecisionRequest, sign_decision};
use talerbox::domain::kyc::MeasureSpec;
use talerbox::domain::primitives::{Amount, EddsaPrivateKey, Payto, base32, purpose, sign_purpose};

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let overrides = Overrides {
        listen: None,
        data_dir: Some(data.path().to_owned()),
    };
    // The defaults plus one rule for wallets: a balance of 5000 KUDOS asks who the owner is.
    let config_file = data.path().join("talerbox.conf");
    std::fs::write(
        &config_file,
        "[kyc-rule-wallet-balance]\nENABLED = YES\nEXPOSED = YES\nOPERATION_TYPE = BALANCE\n\
         THRESHOLD = KUDOS:5000\nTIMEFRAME = 30 d\nNEXT_MEASURES = personal\n",
    )?;
    let app = App::open(Config::load(Some(&config_file), &overrides)?)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/", listener.local_addr()?);
    let urls = app.urls(listener.local_addr()?);
    let officer = app
        .aml
        .new_officer("Olivia Officer")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let kyc = app.kyc_service(&urls.exchange, &urls.challenger)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app::serve(&app, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    // A browser that shows redirects instead of following them.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    for component in ["bank", "exchange", "challenger"] {
        let config: Value = browser
            .get(format!("{base}{component}/config"))
            .send()
            .await?
            .json()
            .await?;
        println!("{component}: {} {}", config["name"], config["version"]);
    }

    let account: Value = browser
        .post(format!("{base}bank/accounts"))
        .json(&json!({"username": "alice", "password": "alice-password", "name": "Alice"}))
        .send()
        .await?
        .json()
        .await?;
    let payto = account["internal_payto_uri"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!("bank account: {payto}");

    let triggered = tokio::task::spawn_blocking(move || {
        kyc.trigger(
            &payto,
            &MeasureSpec::parse("email"),
            RequirementTrigger::Cli,
        )
    })
    .await??;
    let token = triggered.access_token;
    let info: Value = browser
        .get(format!("{base}exchange/kyc-info/{token}"))
        .send()
        .await?
        .json()
        .await?;
    let id = info["requirements"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!(
        "KYC requirement: {}",
        info["requirements"][0]["description"]
    );

    let started: Value = browser
        .post(format!("{base}exchange/kyc-start/{id}"))
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    let redirect_url = started["redirect_url"].as_str().unwrap_or_default();
    let nonce = redirect_url
        .split("/authorize/")
        .nth(1)
        .and_then(|rest| rest.split('?').next())
        .unwrap_or_default();
    println!(
        "challenger page: {}",
        redirect_url.split('?').next().unwrap_or_default()
    );

    // The browser opens the page (which binds the OAuth parameters), then sends the address.
    let page = browser
        .get(redirect_url)
        .header("Accept", "text/html")
        .send()
        .await?;
    anyhow::ensure!(
        page.status().is_success(),
        "authorize answered {}",
        page.status()
    );
    browser
        .post(format!("{base}challenger/challenge/{nonce}"))
        .header(CONTENT_TYPE, FORM)
        .body("CONTACT_EMAIL=alice%40example.com")
        .send()
        .await?;
    let pin = outbox_pin(&data.path().join("outbox"))?;
    println!("PIN from the outbox: {pin}");
    let solved = browser
        .post(format!("{base}challenger/solve/{nonce}"))
        .header(CONTENT_TYPE, FORM)
        .body(format!("pin={pin}"))
        .send()
        .await?;
    let proof_url = solved
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let proof = browser.get(&proof_url).send().await?;
    println!(
        "kyc-proof: {} → {:?}",
        proof.status(),
        proof.headers().get(LOCATION)
    );
    let after = browser
        .get(format!("{base}exchange/kyc-info/{token}"))
        .send()
        .await?;
    println!("kyc-info afterwards: {}", after.status());

    let h_payto = Payto::parse_full(account["internal_payto_uri"].as_str().unwrap_or_default())?
        .h_normalized();
    let signature = sign_purpose(&officer.private_key, purpose::AML_QUERY, &[]);
    let pdf = browser
        .get(format!(
            "{base}exchange/aml/{}/attributes/{h_payto}",
            officer.officer.officer_pub
        ))
        .header("Taler-AML-Officer-Signature", signature.to_string())
        .header("Accept", "application/pdf")
        .send()
        .await?
        .bytes()
        .await?;
    let path = data.path().join("history.pdf");
    std::fs::write(&path, &pdf)?;
    anyhow::ensure!(pdf.starts_with(b"%PDF"), "the export is not a PDF");
    println!("AML attribute history: {} bytes of PDF", pdf.len());

    // The officer acts: freeze (the customer sees the review), ask for more information,
    // then close the case with the configured default rules.
    let decide = |body: Value| {
        let browser = browser.clone();
        let url = format!(
            "{base}exchange/aml/{}/decision",
            officer.officer.officer_pub
        );
        let key = officer.private_key.clone();
        async move {
            let signed = signed_decision(&key, body)?;
            let answer = browser.post(url).json(&signed).send().await?;
            anyhow::ensure!(
                answer.status() == 204,
                "decision answered {}",
                answer.status()
            );
            anyhow::Ok(())
        }
    };
    let now = now_seconds();
    let frozen = json!({"expiration_time": {"t_s": "never"}, "custom_measures": {}, "rules": [
        {"operation_type": "WITHDRAW", "threshold": "KUDOS:0", "timeframe": {"d_us": 86_400_000_000u64},
         "measures": ["verboten"], "display_priority": 1, "exposed": true}]});
    decide(
        json!({"h_payto": h_payto, "decision_time": {"t_s": now}, "justification": "Review",
        "new_rules": frozen, "new_measures": "frozen", "keep_investigating": true}),
    )
    .await?;
    let info: Value = browser
        .get(format!("{base}exchange/kyc-info/{token}"))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "frozen; the customer reads: {}",
        info["requirements"][0]["description"]
    );
    decide(json!({"h_payto": h_payto, "decision_time": {"t_s": now + 1}, "justification": "Who are you?",
        "new_rules": frozen, "new_measures": "personal", "keep_investigating": true})).await?;
    let info: Value = browser
        .get(format!("{base}exchange/kyc-info/{token}"))
        .send()
        .await?
        .json()
        .await?;
    let id = info["requirements"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let upload = browser
        .post(format!("{base}exchange/kyc-upload/{id}"))
        .json(
            &json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice Example",
            "DATE_OF_BIRTH": "1990-01-01"}),
        )
        .send()
        .await?;
    println!(
        "more information asked for and uploaded: {}",
        upload.status()
    );
    let defaults = json!({"expiration_time": {"t_s": now + 2}, "rules": [], "custom_measures": {}});
    decide(
        json!({"h_payto": h_payto, "decision_time": {"t_s": now + 2}, "justification": "Cleared",
        "new_rules": defaults, "keep_investigating": false}),
    )
    .await?;
    let decisions: Value = browser
        .get(format!(
            "{base}exchange/aml/{}/decisions?h_payto={h_payto}&limit=10",
            officer.officer.officer_pub
        ))
        .header("Taler-AML-Officer-Signature", signature.to_string())
        .send()
        .await?
        .json()
        .await?;
    let count = decisions["records"].as_array().map_or(0, Vec::len);
    println!("case closed: {count} decisions and outcomes on record");

    wallet(&browser, &format!("{base}exchange/")).await?;

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server).await???;
    Ok(())
}

/// The wallet step: registration with a balance over the BALANCE rule, the access token from
/// kyc-check, the form, and kyc-check again.
async fn wallet(browser: &reqwest::Client, exchange: &str) -> anyhow::Result<()> {
    let reserve = EddsaPrivateKey::generate(&mut rand_core::OsRng);
    let reserve_pub = reserve.public_key();
    let balance: Amount = "KUDOS:6000".parse()?;
    let registered = browser
        .post(format!("{exchange}kyc-wallet"))
        .json(&json!({
            "reserve_pub": reserve_pub,
            "reserve_sig": sign_purpose(&reserve, purpose::WALLET_ACCOUNT_SETUP, &balance.to_nbo()),
            "balance": balance,
        }))
        .send()
        .await?;
    let status = registered.status();
    let required: Value = registered.json().await?;
    anyhow::ensure!(status == 451, "kyc-wallet answered {status}: {required}");
    let h_payto = required["h_payto"].as_str().unwrap_or_default().to_owned();
    println!(
        "wallet: balance {balance} needs KYC (code {}, requirement {})",
        required["code"], required["requirement_row"]
    );
    let check = |expected: u16| {
        let url = format!("{exchange}kyc-check/{h_payto}");
        let signature = sign_purpose(&reserve, purpose::KYC_AUTH, &[]).to_string();
        async move {
            let answer = browser
                .get(url)
                .header("Account-Owner-Signature", signature)
                .send()
                .await?;
            let status = answer.status().as_u16();
            let body: Value = answer.json().await?;
            anyhow::ensure!(status == expected, "kyc-check answered {status}: {body}");
            anyhow::Ok(body)
        }
    };
    let token = check(202).await?["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!("wallet: access token from kyc-check: {token}");
    let info: Value = browser
        .get(format!("{exchange}kyc-info/{token}"))
        .send()
        .await?
        .json()
        .await?;
    let id = info["requirements"][0]["id"].as_str().unwrap_or_default();
    let upload = browser
        .post(format!("{exchange}kyc-upload/{id}"))
        .json(
            &json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Wally Wallet",
            "DATE_OF_BIRTH": "1990-01-01"}),
        )
        .send()
        .await?;
    anyhow::ensure!(
        upload.status() == 204,
        "kyc-upload answered {}",
        upload.status()
    );
    let limits = check(200).await?["limits"].as_array().map_or(0, Vec::len);
    println!("wallet: form uploaded; kyc-check 200 with {limits} limits");
    Ok(())
}

/// `body` with the officer's signature over it (purpose 1350).
fn signed_decision(key: &EddsaPrivateKey, mut body: Value) -> anyhow::Result<Value> {
    body["officer_sig"] = json!(base32::encode(&[0u8; 64]));
    let request =
        DecisionRequest::parse(body.to_string().as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    body["officer_sig"] = json!(base32::encode(
        &sign_decision(key, &request.signed_body()).0
    ));
    Ok(body)
}

fn now_seconds() -> u64 {
    use talerbox::ports::clock::Clock as _;
    talerbox::adapters::system::SystemClock
        .now()
        .as_seconds()
        .unwrap_or_default()
}

/// The only run of 8 digits in the newest message of the outbox.
fn outbox_pin(outbox: &std::path::Path) -> anyhow::Result<String> {
    let mut files: Vec<_> = std::fs::read_dir(outbox)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let newest = files
        .last()
        .ok_or_else(|| anyhow::anyhow!("the outbox is empty"))?;
    let message = std::fs::read_to_string(newest)?;
    message
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 8)
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no PIN in {}", newest.display()))
}

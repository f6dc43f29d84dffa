//! The whole offline flow, in process, against the real HTTP server on a free port:
//! a bank account, a KYC requirement for it, the built-in challenger as the provider (address
//! and PIN entered as a browser would, the PIN read from the outbox), the proof, and an AML
//! officer exporting the account's attribute history as a PDF.
//!
//! Run: `cargo run --example walkthrough`

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};
use talerbox::app::{self, App};
use talerbox::config::{Config, Overrides};
use talerbox::domain::kyc::MeasureSpec;
use talerbox::domain::primitives::{Payto, purpose, sign_purpose};

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let overrides = Overrides {
        listen: None,
        data_dir: Some(data.path().to_owned()),
    };
    let app = App::open(Config::load(None, &overrides)?)?;
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

    let triggered =
        tokio::task::spawn_blocking(move || kyc.trigger(&payto, &MeasureSpec::parse("email")))
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

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server).await???;
    Ok(())
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

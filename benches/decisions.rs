//! AML decisions on this machine, against the real server over loopback HTTP
//! (`synchronous=FULL`), with the load generator in the same process.
//!
//! 1. `POST /exchange/aml/$OFFICER_PUB/decision` decisions/s over keep-alive connections: each
//!    a signed decision on an account of its own (created from its `payto_uri`), opening a
//!    measure set; each verified and committed before its 204. The requests are signed
//!    before the clock starts (signing is the officer's cost, not the exchange's).
//! 2. `GET /exchange/kyc-info/$TOKEN` requests/s on an account with decisions (its open set
//!    was opened by a decision), to compare with the figure of `cargo bench --bench kyc`.
//!
//! Run: `cargo bench --bench decisions` (or `-- decide` / `-- info`). Each figure is the median
//! of several runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{Value, json};
use talerbox::app::{self, App};
use talerbox::config::{Config, Overrides};
use talerbox::domain::aml::decision_request::{DecisionRequest, sign_decision};
use talerbox::domain::primitives::{EddsaPrivateKey, Payto, base32};

const RUNS: usize = 5;
const DECISIONS_PER_RUN: usize = 4000;
const RUN_TIME: Duration = Duration::from_secs(4);
const CONNECTIONS: usize = 32;

mod support;

use support::{Error, connect, median, rate, send};

fn main() -> Result<(), Error> {
    let only = std::env::args()
        .nth(1)
        .filter(|a| a == "decide" || a == "info");
    let wanted = |phase: &str| only.as_deref().is_none_or(|o| o == phase);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("decisions benchmark: {cores} cores, {RUNS} runs, medians");

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let data = tempfile::tempdir()?;
        let overrides = Overrides {
            listen: None,
            data_dir: Some(data.path().join("data")),
        };
        let app = App::open(Config::load(None, &overrides)?)?;
        let officer = EddsaPrivateKey::from_seed([7; 32]);
        app.aml
            .enable_officer(&officer.public_key(), "Bench Officer", false)
            .map_err(|e| format!("{e:?}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let kyc = app.kyc_trigger_service(&app.urls(address).exchange);
        tokio::spawn(async move { app::serve(&app, listener, std::future::pending()).await });
        let path = format!("/exchange/aml/{}/decision", officer.public_key());

        if wanted("decide") {
            let mut rates = Vec::new();
            for run in 0..RUNS {
                let bodies: Vec<String> = (0..DECISIONS_PER_RUN)
                    .map(|i| decision(&officer, &format!("r{run}a{i}")).to_string())
                    .collect();
                rates.push(decide_all(address, &path, bodies).await?);
            }
            let (rate, runs) = median(rates);
            println!(
                "POST /decision (verified, committed, opening a measure set), {CONNECTIONS} connections: {rate:.0} decisions/s (runs: {runs})"
            );
        }
        if wanted("info") {
            let mut connection = connect(address).await?;
            let body = decision(&officer, "reader").to_string();
            let headers = [("content-type", "application/json")];
            let (status, answer) = send(&mut connection, Method::POST, &path, &headers, body).await?;
            expect("decision", status, 204, &answer)?;
            // A later decision on the same account: the account now has two.
            let mut second = decision(&officer, "reader");
            second["justification"] = json!("second look");
            let second = resign(&officer, second);
            let (status, answer) =
                send(&mut connection, Method::POST, &path, &headers, second.to_string()).await?;
            expect("decision", status, 204, &answer)?;
            let h_payto = Payto::parse_full(&payto("reader"))?.h_normalized();
            let token = kyc
                .account_token(&h_payto)
                .map_err(|e| e.to_string())?
                .ok_or("no account")?;
            let info = format!("/exchange/kyc-info/{token}");
            let mut rates = Vec::new();
            for _ in 0..RUNS {
                rates.push(rate(address, Method::GET, &info, &[], 200, CONNECTIONS, RUN_TIME).await?);
            }
            let (rate, runs) = median(rates);
            println!(
                "GET /kyc-info on an account with decisions, {CONNECTIONS} connections: {rate:.0} req/s (runs: {runs})"
            );
        }
        Ok::<(), Error>(())
    })
}

fn payto(name: &str) -> String {
    format!("payto://x-taler-bank/localhost/{name}?receiver-name={name}")
}

/// A signed decision asking account `name` for its personal data under tighter limits.
fn decision(officer: &EddsaPrivateKey, name: &str) -> Value {
    let payto = payto(name);
    let h_payto = Payto::parse_full(&payto).map(|p| p.h_normalized().to_string());
    let body = json!({
        "h_payto": h_payto.unwrap_or_default(),
        "payto_uri": payto,
        "decision_time": {"t_s": 1_700_000_000u64},
        "justification": "Limits lowered pending identification",
        "properties": {"high_risk": true},
        "new_rules": {"expiration_time": {"t_s": "never"}, "custom_measures": {}, "rules": [
            {"operation_type": "WITHDRAW", "threshold": "KUDOS:100", "timeframe": {"d_us": 2_592_000_000_000u64},
             "measures": ["personal"], "display_priority": 1, "exposed": true}]},
        "new_measures": "personal",
        "keep_investigating": true,
        "events": ["limits-lowered"],
    });
    resign(officer, body)
}

fn resign(officer: &EddsaPrivateKey, mut body: Value) -> Value {
    body["officer_sig"] = json!(base32::encode(&[0u8; 64]));
    if let Ok(request) = DecisionRequest::parse(body.to_string().as_bytes()) {
        body["officer_sig"] = json!(base32::encode(
            &sign_decision(officer, &request.signed_body()).0
        ));
    }
    body
}

fn expect(step: &str, status: u16, wanted: u16, body: &[u8]) -> Result<(), Error> {
    if status == wanted {
        return Ok(());
    }
    let body = String::from_utf8_lossy(body);
    Err(format!("{step} answered {status}: {body}").into())
}

/// Decisions/s of sending every body once over [`CONNECTIONS`] keep-alive connections.
async fn decide_all(address: SocketAddr, path: &str, bodies: Vec<String>) -> Result<f64, Error> {
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let count = queue.lock().map_err(|_| "poisoned")?.len();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (queue, path) = (Arc::clone(&queue), path.to_owned());
        workers.push(tokio::spawn(async move {
            let mut connection = connect(address).await?;
            loop {
                let next = queue.lock().map_err(|_| "poisoned")?.pop();
                let Some(body) = next else { break };
                let headers = [("content-type", "application/json")];
                let (status, answer) =
                    send(&mut connection, Method::POST, &path, &headers, body).await?;
                expect("decision", status, 204, &answer)?;
            }
            Ok::<(), Error>(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

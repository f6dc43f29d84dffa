//! The server's memory under the loads of the benchmarks, a flood of failed logins and
//! parallel PDF exports: peak RSS (`VmHWM`) of a real `talerbox serve` process with the
//! default argon2id cost, printed after each phase.
//!
//! `cargo test --test main footprint -- --ignored --nocapture` (Linux). `TALERBOX_BIN=path`
//! measures another build of the server, e.g. `target/release/talerbox`.

use crate::support::kyc_form_upload;
use crate::support::process::{spawn_server, talerbox};
use std::path::Path;

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

/// Every failed login reaches argon2: each comes from its own address behind the trusted
/// proxy, so the throttle does not cut the flood short.
const CONFIG: &str = "[exchange]\nADMIN_TOKEN = secret-token:footprint\n\
    [talerbox]\nTRUSTED_PROXIES = 127.0.0.1\n";
const ADMIN_TOKEN: &str = "secret-token:footprint";
const CLIENT_SECRET: &str = "secret-token:client";
const PAYTO: &str = "payto://x-taler-bank/localhost/alice?receiver-name=Alice";
const FAILED_LOGINS: usize = 512;
const PDF_EXPORTS: usize = 64;
const ATTRIBUTE_ROWS: usize = 20;

fn run(dir: &Path, args: &[&str]) -> String {
    let output = talerbox(dir).args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// `VmHWM` and `VmRSS` of `pid` in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn report(phase: &str, pid: u32, started: Instant) {
    let (peak, now) = memory(pid);
    println!(
        "{phase:<48} peak RSS {peak:6.1} MiB, RSS now {now:6.1} MiB ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
}

/// Runs `count` requests made by `make`, `parallel` at a time.
async fn load<F, Fut>(count: usize, parallel: usize, make: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut next = 0;
    while next < count {
        let wave = (next..count.min(next + parallel)).map(&make);
        join_all(wave).await;
        next += parallel;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn footprint_peak_rss_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("talerbox.conf"), CONFIG).unwrap();
    run(dir.path(), &["init"]);
    let client = run(
        dir.path(),
        &[
            "challenger",
            "client",
            "add",
            "--secret-unsafe",
            CLIENT_SECRET,
            "--redirect-uri",
            "https://exchange.example/cb",
        ],
    );
    let client = client.lines().next().unwrap().to_owned();
    let officer = run(
        dir.path(),
        &["aml", "officer", "new", "--name", "Footprint"],
    );
    let mut officer = officer.lines();
    let (officer_pub, officer_key) = (officer.next().unwrap(), officer.next().unwrap());
    let signature = run(dir.path(), &["aml", "officer", "sign-query", officer_key]);
    let signature = signature.trim().to_owned();

    let (mut child, base) = spawn_server(dir.path());
    let pid = child.id();
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    report("started", pid, started);

    // The benchmarks' loads, in small: registrations (argon2), token reads, challenger
    // setups, KYC triggers with uploads, AML JSON reads.
    load(64, 8, |i| {
        let request = http
            .post(format!("{base}bank/accounts"))
            .json(&json!({"username": format!("user{i}"), "password": "password-1", "name": "U"}));
        async move { assert_eq!(request.send().await.unwrap().status(), 200) }
    })
    .await;
    let token: Value = http
        .post(format!("{base}bank/accounts/user0/token"))
        .basic_auth("user0", Some("password-1"))
        .json(&json!({"scope": "readonly"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    load(20_000, 32, |_| {
        let request = http
            .get(format!("{base}bank/accounts/user0"))
            .bearer_auth(&token);
        async move { assert_eq!(request.send().await.unwrap().status(), 200) }
    })
    .await;
    load(2_000, 32, |_| {
        let request = http
            .post(format!("{base}challenger/setup/{client}"))
            .bearer_auth(CLIENT_SECRET);
        async move { assert_eq!(request.send().await.unwrap().status(), 200) }
    })
    .await;
    let mut h_payto = String::new();
    for round in 0..ATTRIBUTE_ROWS {
        let name = format!("Alice the {round}th");
        let (opened, uploaded) = kyc_form_upload(&http, &base, ADMIN_TOKEN, PAYTO, &name)
            .await
            .unwrap();
        assert_eq!(uploaded, 204);
        h_payto = opened["h_normalized_payto"].as_str().unwrap().to_owned();
    }
    let attributes = format!("{base}exchange/aml/{officer_pub}/attributes/{h_payto}");
    load(2_000, 32, |_| {
        let request = http
            .get(&attributes)
            .header("Taler-AML-Officer-Signature", &signature);
        async move { assert_eq!(request.send().await.unwrap().status(), 200) }
    })
    .await;
    report("after the benchmark loads", pid, started);

    load(FAILED_LOGINS, FAILED_LOGINS, |i| {
        let user = if i % 2 == 0 {
            "admin".to_owned()
        } else {
            format!("nobody{i}")
        };
        let request = http
            .get(format!("{base}bank/accounts/{user}"))
            .basic_auth(user, Some("wrong-password"))
            .header("X-Forwarded-For", format!("10.{}.{}.1", i / 256, i % 256));
        async move { assert_eq!(request.send().await.unwrap().status(), 401) }
    })
    .await;
    report(
        &format!("after {FAILED_LOGINS} parallel failed logins"),
        pid,
        started,
    );

    load(PDF_EXPORTS, PDF_EXPORTS, |_| {
        let request = http
            .get(&attributes)
            .header("Taler-AML-Officer-Signature", &signature)
            .header(ACCEPT, "application/pdf");
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert!(response.bytes().await.unwrap().starts_with(b"%PDF"));
        }
    })
    .await;
    report(
        &format!("after {PDF_EXPORTS} parallel PDF exports ({ATTRIBUTE_ROWS} rows)"),
        pid,
        started,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    report("2 s later", pid, started);
    child.kill().unwrap();
    child.wait().unwrap();
}

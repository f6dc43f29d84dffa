//! The exchange's KYC endpoints on this machine, against the real server over loopback HTTP
//! (`synchronous=FULL`), with the load generator in the same process.
//!
//! 1. `GET /exchange/kyc-info/$TOKEN` requests/s over keep-alive connections (an open
//!    requirement: the 200 answer with the requirement list and ETag).
//! 2. `POST /exchange/kyc-start/$ID` requests/s for an already initiated LINK requirement (the
//!    stored redirect URL; nothing is sent to the challenger).
//! 3. Wake-up latency: a long poll of kyc-info waits with the current ETag; a FORM upload then
//!    satisfies the requirement. Measured from sending the upload to the poll's answer (the
//!    upload's own round trip, with its commit, is shown too).
//!
//! Run: `cargo bench --bench kyc` (or `-- info` / `-- start` / `-- wake`). Each figure is the
//! median of several runs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use talerbox::app::{self, App};
use talerbox::config::{Config, Overrides};

const RUNS: usize = 5;
const RUN_TIME: Duration = Duration::from_secs(4);
const CONNECTIONS: usize = 32;
const WAKE_SAMPLES: usize = 200;
const ADMIN: &str = "secret-token:bench";

mod support;

use support::{
    BenchDatabase, Connection, Error, backend, connect, expect, kyc_open, listen, median, rate,
    send,
};

fn main() -> Result<(), Error> {
    let only = std::env::args()
        .nth(1)
        .filter(|a| a == "info" || a == "start" || a == "wake");
    let wanted = |phase: &str| only.as_deref().is_none_or(|o| o == phase);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let database = BenchDatabase::from_env()?;
    println!(
        "kyc benchmark ({}): {cores} cores, {RUNS} runs of {RUN_TIME:?}, medians",
        backend(&database)
    );

    let std_listener = listen()?;
    let bound = std_listener.local_addr()?;
    // Opened before the runtime starts (the stores block).
    let data = tempfile::tempdir()?;
    let file = data.path().join("talerbox.conf");
    let extra = database
        .as_ref()
        .map(|d| d.config(bound))
        .unwrap_or_default();
    std::fs::write(&file, format!("[exchange]\nADMIN_TOKEN = {ADMIN}\n{extra}"))?;
    let overrides = Overrides {
        listen: None,
        data_dir: Some(data.path().join("data")),
    };
    let app = App::open(Config::load(Some(&file), &overrides)?)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let address = bound;
        tokio::spawn(async move { app::serve(&app, listener, std::future::pending()).await });

        let mut connection = connect(address).await?;
        let (token, ids) = kyc_open(&mut connection, ADMIN, "alice", "email personal").await?;
        let link = ids.first().ok_or("no LINK requirement")?.clone();

        if wanted("info") {
            let path = format!("/exchange/kyc-info/{token}");
            let mut rates = Vec::new();
            for _ in 0..RUNS {
                rates.push(rate(address, Method::GET, &path, &[], 200, CONNECTIONS, RUN_TIME).await?);
            }
            let (rate, runs) = median(rates);
            println!("GET /kyc-info, {CONNECTIONS} connections: {rate:.0} req/s (runs: {runs})");
        }
        if wanted("start") {
            let path = format!("/exchange/kyc-start/{link}");
            // Initiate once (setup at the challenger); later starts answer the stored URL.
            let (status, body) = send(&mut connection, Method::POST, &path, &[], "{}").await?;
            expect("kyc-start", status, 200, &body)?;
            let mut rates = Vec::new();
            for _ in 0..RUNS {
                rates.push(rate(address, Method::POST, &path, &[], 200, CONNECTIONS, RUN_TIME).await?);
            }
            let (rate, runs) = median(rates);
            println!(
                "POST /kyc-start (initiated), {CONNECTIONS} connections: {rate:.0} req/s (runs: {runs})"
            );
        }
        if wanted("wake") {
            let mut wakes = Vec::new();
            let mut uploads = Vec::new();
            for n in 0..WAKE_SAMPLES {
                let (wake, upload) = wake_sample(address, &mut connection, n).await?;
                wakes.push(wake.as_secs_f64() * 1e3);
                uploads.push(upload.as_secs_f64() * 1e3);
            }
            wakes.sort_by(f64::total_cmp);
            uploads.sort_by(f64::total_cmp);
            let pct = |v: &[f64], p: usize| v[(v.len() - 1) * p / 100];
            println!(
                "upload → long poll answer, {WAKE_SAMPLES} samples: median {:.2} ms (p10 {:.2}, p90 {:.2}); upload round trip alone: median {:.2} ms",
                pct(&wakes, 50),
                pct(&wakes, 10),
                pct(&wakes, 90),
                pct(&uploads, 50),
            );
        }
        Ok::<(), Error>(())
    })
}

/// One wake-up: a fresh account with the `personal` form open, a long poll waiting on its
/// ETag, then the upload. Answers (upload sent → poll answered, upload round trip).
async fn wake_sample(
    address: SocketAddr,
    connection: &mut Connection,
    n: usize,
) -> Result<(Duration, Duration), Error> {
    let (token, ids) = kyc_open(connection, ADMIN, &format!("wake{n}"), "personal").await?;
    let form = ids.first().ok_or("no FORM requirement")?.clone();
    let path = format!("/exchange/kyc-info/{token}");
    // The ETag of the account's open set, from the headers.
    let etag = {
        connection.ready().await?;
        let request = Request::builder()
            .uri(&path)
            .header("host", "bench")
            .body(Full::new(Bytes::new()))?;
        let response = connection.send_request(request).await?;
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .ok_or("no ETag")?
            .to_owned();
        response.into_body().collect().await?;
        etag
    };
    let mut poller = connect(address).await?;
    let poll = tokio::spawn(async move {
        let path = format!("{path}?timeout_ms=10000");
        let (status, body) = send(
            &mut poller,
            Method::GET,
            &path,
            &[("if-none-match", &etag)],
            "",
        )
        .await?;
        let answered = Instant::now();
        expect("long poll", status, 204, &body)?;
        Ok::<Instant, Error>(answered)
    });
    // Give the poll time to reach the server and wait.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let upload = serde_json::json!({
        "FORM_ID": "full_name_and_birthdate",
        "FULL_NAME": format!("Customer {n}"),
        "DATE_OF_BIRTH": "1990-01-31",
    });
    let sent = Instant::now();
    let (status, body) = send(
        connection,
        Method::POST,
        &format!("/exchange/kyc-upload/{form}"),
        &[("content-type", "application/json")],
        &upload.to_string(),
    )
    .await?;
    let uploaded = sent.elapsed();
    expect("kyc-upload", status, 204, &body)?;
    let answered = poll.await??;
    Ok((answered.saturating_duration_since(sent), uploaded))
}

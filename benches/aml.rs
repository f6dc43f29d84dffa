//! AML officer reads on this machine, against the real server over loopback HTTP.
//!
//! 1. Ceiling: what a signed 20-row JSON read cannot avoid, in process, one thread per core:
//!    one strict Ed25519 verification, the 20 row reads from SQLite and 20 decryptions.
//! 2. Signed `GET /exchange/aml/$OFFICER_PUB/attributes/$H` (JSON, 20 rows), requests/s over
//!    keep-alive connections, and its share of the ceiling.
//! 3. PDF: the median time to render a 20-row export (in process) and to answer one signed PDF
//!    request end to end, and PDF exports/s over HTTP.
//!
//! Run: `cargo bench --bench aml` (`-- json`, `-- pdf` for one part). Medians of several runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use serde_json::json;
use talerbox::adapters::pdf::UnicodePdfRenderer;
use talerbox::app::{self, App};
use talerbox::config::{Config, Overrides};
use talerbox::domain::aml::{
    AttributeEvent, AttributeHistory, AttributeSource, ExportContext, ExportDocument, Page,
    StoreAttributes,
};
use talerbox::domain::primitives::{
    AttributeKey, EddsaPrivateKey, EddsaSignature, NormalizedPaytoHash, Timestamp, purpose,
    sign_purpose, verify_purpose,
};
use talerbox::ports::aml::AttributeStore;
use talerbox::ports::attribute_cipher::{AttributeCipher, TalerAttributeCipher};
use talerbox::ports::pdf::PdfRenderer;

const RUNS: usize = 5;
const RUN_TIME: Duration = Duration::from_secs(3);
const ROWS: usize = 20;
const JSON_CONNECTIONS: usize = 32;
const PDF_CONNECTIONS: usize = 4;
const RENDERS: usize = 200;
const SECRET: &str = "aml benchmark key";

mod support;

use support::{Error, connect, median};

fn main() -> Result<(), Error> {
    let only = std::env::args()
        .nth(1)
        .filter(|a| a == "json" || a == "pdf");
    let wanted = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("AML benchmark: {cores} cores, {RUNS} runs of {RUN_TIME:?}, {ROWS} rows, medians");

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let data = tempfile::tempdir()?;
        let file = data.path().join("bench.conf");
        std::fs::write(&file, format!("[exchange]\nATTRIBUTE_ENCRYPTION_KEY = {SECRET}\n"))?;
        let overrides = Overrides {
            listen: None,
            data_dir: Some(data.path().join("data")),
        };
        let app = App::open(Config::load(Some(&file), &overrides)?)?;
        let officer = EddsaPrivateKey::from_seed([1; 32]);
        let signature = sign_purpose(&officer, purpose::AML_QUERY, &[]);
        app.aml
            .enable_officer(&officer.public_key(), "Bench Officer", false)
            .map_err(|e| e.to_string())?;
        let account = NormalizedPaytoHash([9; 32]);
        for n in 0..ROWS {
            app.aml
                .store_attributes(StoreAttributes {
                    h_payto: account,
                    attributes: serde_json::from_value(json!({
                        "FORM_ID": "full_name_and_birthdate",
                        "FULL_NAME": format!("Łukasz Čapek {n}"),
                        "DATE_OF_BIRTH": "1990-01-02",
                        "CONTACT_EMAIL": "alice@example.com",
                        "ADDRESS_LINES": "Bahnhofstrasse 1\n8001 Zürich",
                        "ADDRESS_COUNTRY": "CH",
                    }))?,
                    source: AttributeSource::Customer {
                        provider: Some("FORM".into()),
                    },
                    expiration_time: Timestamp::never(),
                    process_serial: None,
                })
                .map_err(|e| e.to_string())?;
        }
        let store = app.storage.aml().attributes;
        let cipher = Arc::new(TalerAttributeCipher::new(AttributeKey::from_secret_text(
            SECRET,
        )));
        let path = format!(
            "/exchange/aml/{}/attributes/{account}",
            officer.public_key()
        );
        let header = signature.to_string();
        let public = officer.public_key();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { app::serve(&app, listener, std::future::pending()).await });

        if wanted("json") {
            let (mut ceilings, mut rates, mut shares) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..RUNS {
                let (store, cipher) = (Arc::clone(&store), Arc::clone(&cipher));
                let ceiling = tokio::task::spawn_blocking(move || {
                    ceiling_rate(cores, &store, &cipher, public, signature, account)
                })
                .await??;
                let rate = http_rate(address, &path, &header, None, JSON_CONNECTIONS).await?;
                ceilings.push(ceiling);
                rates.push(rate);
                shares.push(100.0 * rate / ceiling);
            }
            let (ceiling, runs) = median(ceilings);
            println!("ceiling (1 Ed25519 verify + {ROWS} row reads + {ROWS} decryptions), {cores} threads: {ceiling:.0}/s (runs: {runs})");
            let (rate, runs) = median(rates);
            println!("signed GET attributes, JSON, {ROWS} rows, {JSON_CONNECTIONS} connections: {rate:.0} req/s (runs: {runs})");
            let (share, runs) = median(shares);
            println!("JSON requests / ceiling: {share:.0}% (runs: {runs})");
        }

        if wanted("pdf") {
            let history = history(&*store, &cipher, account)?;
            let document = history.document(&ExportContext {
                exchange: format!("http://{address}/exchange/"),
                payto: Some("payto://iban/CH9300762011623852957?receiver-name=Zo%C3%AB".into()),
                officer_name: "Bench Officer".into(),
                officer_pub: public,
                exported_at: Timestamp::from_seconds(1_700_000_000).ok_or("time")?,
            });
            let size = UnicodePdfRenderer::new()?.render(&document)?.len();
            println!("PDF size, {ROWS} rows: {size} bytes");
            let mut medians = Vec::new();
            let mut latencies = Vec::new();
            let mut rates = Vec::new();
            for _ in 0..RUNS {
                let document = document.clone();
                let render = tokio::task::spawn_blocking(move || render_median(&document)).await??;
                medians.push(render);
                latencies.push(pdf_latency_median(address, &path, &header).await?);
                rates.push(
                    http_rate(address, &path, &header, Some("application/pdf"), PDF_CONNECTIONS)
                        .await?,
                );
            }
            let (render, runs) = median(medians);
            println!("PDF render, {ROWS} rows, median of {RENDERS}: {render:.0} µs (runs: {runs})");
            let (latency, runs) = median(latencies);
            println!("signed GET attributes, PDF, {ROWS} rows, one request at a time, median of {RENDERS}: {latency:.0} µs (runs: {runs})");
            let (rate, runs) = median(rates);
            println!("signed GET attributes, PDF, {ROWS} rows, {PDF_CONNECTIONS} connections: {rate:.0} exports/s (runs: {runs})");
        }
        Ok::<(), Error>(())
    })
}

/// Verifications + row reads + decryptions per second, `threads` threads.
fn ceiling_rate(
    threads: usize,
    store: &Arc<dyn AttributeStore>,
    cipher: &Arc<TalerAttributeCipher>,
    public: talerbox::domain::primitives::EddsaPublicKey,
    signature: EddsaSignature,
    account: NormalizedPaytoHash,
) -> Result<f64, String> {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (store, cipher, done) = (Arc::clone(store), Arc::clone(cipher), Arc::clone(&done));
            std::thread::spawn(move || -> Result<(), String> {
                while started.elapsed() < RUN_TIME {
                    verify_purpose(&public, purpose::AML_QUERY, &[], &signature)
                        .map_err(|e| e.to_string())?;
                    let rows = store
                        .attributes(&account, &Page::new(-(ROWS as i64), i64::MAX as u64))
                        .map_err(|e| e.to_string())?;
                    let opened = rows
                        .iter()
                        .filter_map(|r| cipher.open(&r.encrypted))
                        .count();
                    if opened != ROWS {
                        return Err(format!("{opened} rows decrypted"));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "ceiling thread panicked")??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// The decrypted history, as the service builds it.
fn history(
    store: &dyn AttributeStore,
    cipher: &TalerAttributeCipher,
    account: NormalizedPaytoHash,
) -> Result<AttributeHistory, Error> {
    let rows = store.attributes(&account, &Page::new(-(ROWS as i64), i64::MAX as u64))?;
    let events = rows
        .into_iter()
        .map(|row| AttributeEvent {
            rowid: row.rowid,
            by_aml_officer: row.source.by_aml_officer(),
            attributes: cipher.open(&row.encrypted),
            collection_time: row.collection_time,
        })
        .collect();
    Ok(AttributeHistory {
        h_payto: account,
        events,
    })
}

/// Median time of one render, in microseconds.
fn render_median(document: &ExportDocument) -> Result<f64, String> {
    let renderer = UnicodePdfRenderer::new().map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(RENDERS);
    for _ in 0..RENDERS {
        let started = Instant::now();
        let pdf = renderer.render(document).map_err(|e| e.to_string())?;
        times.push(started.elapsed().as_secs_f64() * 1e6);
        if !pdf.starts_with(b"%PDF-") {
            return Err("not a PDF".into());
        }
    }
    Ok(median(times).0)
}

/// Median time of one signed PDF request end to end (one connection, one at a time), in µs.
async fn pdf_latency_median(
    address: std::net::SocketAddr,
    path: &str,
    signature: &str,
) -> Result<f64, Error> {
    let mut connection = connect(address).await?;
    let mut times = Vec::with_capacity(RENDERS);
    for _ in 0..RENDERS {
        let started = Instant::now();
        connection.ready().await?;
        let request = Request::get(path)
            .header("host", "bench")
            .header("taler-aml-officer-signature", signature)
            .header("accept", "application/pdf")
            .body(Full::new(Bytes::new()))?;
        let response = connection.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        times.push(started.elapsed().as_secs_f64() * 1e6);
        if status != 200 || !body.starts_with(b"%PDF-") {
            return Err(format!("PDF request answered {status}").into());
        }
    }
    Ok(median(times).0)
}

/// Signed GETs per second over `connections` keep-alive connections.
async fn http_rate(
    address: std::net::SocketAddr,
    path: &str,
    signature: &str,
    accept: Option<&'static str>,
    connections: usize,
) -> Result<f64, Error> {
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..connections {
        let (path, signature) = (path.to_owned(), signature.to_owned());
        clients.push(tokio::spawn(async move {
            let mut connection = connect(address).await?;
            let mut done = 0u64;
            while started.elapsed() < RUN_TIME {
                connection.ready().await?;
                let mut request = Request::get(path.as_str())
                    .header("host", "bench")
                    .header("taler-aml-officer-signature", signature.as_str());
                if let Some(accept) = accept {
                    request = request.header("accept", accept);
                }
                let response = connection
                    .send_request(request.body(Full::new(Bytes::new()))?)
                    .await?;
                let status = response.status().as_u16();
                let body = response.into_body().collect().await?.to_bytes();
                if status != 200 || body.len() < 100 {
                    return Err(format!("answered {status}").into());
                }
                done += 1;
            }
            Ok::<u64, Error>(done)
        }));
    }
    let mut total = 0;
    for client in clients {
        total += client.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

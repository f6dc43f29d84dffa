//! Bank throughput on this machine, against the real server over loopback HTTP.
//!
//! 1. argon2id alone with the default parameters, one hashing thread per core: the ceiling
//!    for registrations, since each registration hashes one password.
//! 2. Registrations/s: concurrent `POST /bank/accounts` with fresh usernames.
//! 3. Authenticated reads/s: concurrent `GET /bank/accounts/$USERNAME` with a bearer token,
//!    over keep-alive connections.
//!
//! Run: `cargo bench --bench bank`. Each figure is the median of several runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;
use talerbox::adapters::password::{Argon2Hasher, Argon2Params};
use talerbox::app::{self, App};
use talerbox::config::{Config, Overrides};
use talerbox::ports::password::PasswordHasher;

const RUNS: usize = 5;
const RUN_TIME: Duration = Duration::from_secs(4);
const REGISTRATION_CLIENTS: usize = 8;
const READ_CONNECTIONS: usize = 32;

mod support;

use support::{BenchDatabase, Error, backend, bank_reader, connect, listen, median, rate, send};

fn main() -> Result<(), Error> {
    // `cargo bench --bench bank -- reads` runs only the reads (e.g. under a profiler).
    let only = std::env::args()
        .nth(1)
        .filter(|a| a == "reads" || a == "registrations");
    let wanted = |phase: &str| only.as_deref().is_none_or(|o| o == phase);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let database = BenchDatabase::from_env()?;
    println!(
        "bank benchmark ({}): {cores} cores, {RUNS} runs of {RUN_TIME:?}, medians",
        backend(&database)
    );

    let std_listener = listen()?;
    let bound = std_listener.local_addr()?;
    // Opened before the runtime starts (the stores block).
    let data = tempfile::tempdir()?;
    let file = data.path().join("talerbox.conf");
    std::fs::write(
        &file,
        database
            .as_ref()
            .map(|d| d.config(bound))
            .unwrap_or_default(),
    )?;
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

        if wanted("registrations") {
            // Alternate the two measurements so that drift of a noisy machine hits both.
            let (mut alone, mut registered, mut shares) = (Vec::new(), Vec::new(), Vec::new());
            for run in 0..RUNS {
                let hashes = tokio::task::spawn_blocking(move || argon2_rate(cores)).await??;
                let registrations = registration_rate(address, run).await?;
                alone.push(hashes);
                registered.push(registrations);
                shares.push(100.0 * registrations / hashes);
            }
            let (hashes, runs) = median(alone);
            println!("argon2id alone (m=19456 KiB, t=2, p=1), {cores} threads: {hashes:.1} hashes/s (runs: {runs})");
            let (rate, runs) = median(registered);
            println!("registrations, {REGISTRATION_CLIENTS} clients: {rate:.1}/s (runs: {runs})");
            let (share, runs) = median(shares);
            println!("registrations / argon2id alone: {share:.0}% (runs: {runs})");
        }

        if wanted("reads") {
            let auth = bank_reader(&mut connect(address).await?, "reader").await?;
            let headers = [("authorization", auth.as_str())];
            let path = "/bank/accounts/reader";
            let mut reads = Vec::new();
            for _ in 0..RUNS {
                reads.push(rate(address, Method::GET, path, &headers, 200, READ_CONNECTIONS, RUN_TIME).await?);
            }
            let (rate, runs) = median(reads);
            println!("bearer GET /accounts/$USERNAME, {READ_CONNECTIONS} connections: {rate:.0} req/s (runs: {runs})");
        }
        Ok::<(), Error>(())
    })
}

/// Hashes per second with one thread per core.
fn argon2_rate(threads: usize) -> Result<f64, String> {
    let hasher = Arc::new(Argon2Hasher::new(Argon2Params::default()).map_err(|e| e.to_string())?);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (hasher, done) = (Arc::clone(&hasher), Arc::clone(&done));
            std::thread::spawn(move || {
                while started.elapsed() < RUN_TIME {
                    if hasher.hash("correct horse battery staple").is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| "hashing thread panicked".to_owned())?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

async fn registration_rate(address: std::net::SocketAddr, run: usize) -> Result<f64, Error> {
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..REGISTRATION_CLIENTS {
        clients.push(tokio::spawn(async move {
            let mut connection = connect(address).await.map_err(|e| e.to_string())?;
            let mut created = 0u64;
            while started.elapsed() < RUN_TIME {
                let body = format!(
                    r#"{{"username":"user-{run}-{client}-{created}","password":"password-{created}","name":"Bench User"}}"#
                );
                let (status, _) = send(&mut connection, Method::POST, "/bank/accounts", &[], body)
                    .await
                    .map_err(|e| e.to_string())?;
                if status != 200 {
                    return Err(format!("registration answered {status}"));
                }
                created += 1;
            }
            Ok::<u64, String>(created)
        }));
    }
    let mut total = 0;
    for client in clients {
        total += client.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

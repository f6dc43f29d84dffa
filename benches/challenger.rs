//! Challenger throughput on this machine, against the real server over loopback HTTP, with
//! `synchronous=FULL` and the outbox sender.
//!
//! 1. Complete validation flows/s: concurrent clients, each running setup → authorize →
//!    challenge → PIN from the outbox → solve → token → info, over keep-alive connections.
//! 2. `GET /info` requests/s with one access token over keep-alive connections.
//!
//! Run: `cargo bench --bench challenger` (or `-- flows` / `-- info`). Each figure is the
//! median of several runs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::Method;
use talerbox::app::{self, App};
use talerbox::config::{Config, Overrides};

const RUNS: usize = 5;
const RUN_TIME: Duration = Duration::from_secs(4);
const FLOW_CLIENTS: usize = 32;
const INFO_CONNECTIONS: usize = 32;
const SECRET: &str = "secret-token:bench";
const REDIRECT: &str = "https://exchange.example/kyc-proof/challenger";

mod support;

use support::{BenchDatabase, ChallengerClient, Error, backend, connect, listen, median, rate};

fn main() -> Result<(), Error> {
    let only = std::env::args()
        .nth(1)
        .filter(|a| a == "flows" || a == "info");
    let wanted = |phase: &str| only.as_deref().is_none_or(|o| o == phase);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let database = BenchDatabase::from_env()?;
    println!(
        "challenger benchmark ({}): {cores} cores, {RUNS} runs of {RUN_TIME:?}, medians",
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
    std::fs::write(&file, extra)?;
    let overrides = Overrides {
        listen: None,
        data_dir: Some(data.path().join("data")),
    };
    let app = App::open(Config::load(Some(&file), &overrides)?)?;
    let client = app.challenger(None)?.service.add_client(SECRET, REDIRECT)?;
    let outbox = app.challenger(None)?.outbox.clone();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let address = bound;
        tokio::spawn(async move { app::serve(&app, listener, std::future::pending()).await });
        let bench = Bench {
            address,
            client: ChallengerClient {
                id: client.id.to_string(),
                secret: SECRET.to_owned(),
                redirect: REDIRECT.to_owned(),
                outbox,
            },
        };

        if wanted("flows") {
            let mut rates = Vec::new();
            for run in 0..RUNS {
                rates.push(bench.flow_rate(run).await?);
            }
            let (rate, runs) = median(rates);
            println!(
                "complete flows (setup to info), {FLOW_CLIENTS} clients: {rate:.0} flows/s (runs: {runs})"
            );
        }
        if wanted("info") {
            let mut connection = connect(address).await?;
            let token = bench
                .client
                .validate(&mut connection, "reader@bench.example", "S")
                .await?;
            let auth = format!("Bearer {token}");
            let headers = [("authorization", auth.as_str())];
            let mut rates = Vec::new();
            for _ in 0..RUNS {
                let info = "/challenger/info";
                rates.push(rate(address, Method::GET, info, &headers, 200, INFO_CONNECTIONS, RUN_TIME).await?);
            }
            let (rate, runs) = median(rates);
            println!(
                "GET /info, {INFO_CONNECTIONS} connections: {rate:.0} req/s (runs: {runs})"
            );
        }
        Ok::<(), Error>(())
    })
}

struct Bench {
    address: SocketAddr,
    client: ChallengerClient,
}

impl Bench {
    async fn flow_rate(&self, run: usize) -> Result<f64, Error> {
        let started = Instant::now();
        let mut clients = Vec::new();
        for client in 0..FLOW_CLIENTS {
            let (address, challenger) = (self.address, self.client.clone());
            clients.push(tokio::spawn(async move {
                let mut connection = connect(address).await?;
                let mut flows = 0u64;
                while started.elapsed() < RUN_TIME {
                    let n = (run as u64) << 32 | flows;
                    let email = format!("c{client}-{n}@bench.example");
                    challenger
                        .validate(&mut connection, &email, &format!("S{n}"))
                        .await?;
                    flows += 1;
                }
                Ok::<u64, Error>(flows)
            }));
        }
        let mut total = 0;
        for client in clients {
            total += client.await??;
        }
        Ok(total as f64 / started.elapsed().as_secs_f64())
    }
}

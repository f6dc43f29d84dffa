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
use std::path::PathBuf;
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

use support::{Connection, Error, connect, expect, json_field, median, send, take_code};

fn main() -> Result<(), Error> {
    let only = std::env::args()
        .nth(1)
        .filter(|a| a == "flows" || a == "info");
    let wanted = |phase: &str| only.as_deref().is_none_or(|o| o == phase);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("challenger benchmark: {cores} cores, {RUNS} runs of {RUN_TIME:?}, medians");

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let data = tempfile::tempdir()?;
        let overrides = Overrides {
            listen: None,
            data_dir: Some(data.path().to_owned()),
        };
        let app = App::open(Config::load(None, &overrides)?)?;
        let client = app.challenger(None)?.service.add_client(SECRET, REDIRECT)?;
        let outbox = app.challenger(None)?.outbox.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { app::serve(&app, listener, std::future::pending()).await });
        let bench = Bench {
            address,
            client_id: client.id.to_string(),
            outbox,
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
            let token = bench.flow(&mut connection, usize::MAX, 0).await?;
            let mut rates = Vec::new();
            for _ in 0..RUNS {
                rates.push(info_rate(address, &token).await?);
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
    client_id: String,
    outbox: PathBuf,
}

impl Bench {
    /// One complete validation; answers the access token.
    async fn flow(
        &self,
        connection: &mut Connection,
        client: usize,
        n: u64,
    ) -> Result<String, Error> {
        let bearer = format!("Bearer {SECRET}");
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let (status, body) = send(
            connection,
            Method::POST,
            &format!("/challenger/setup/{}", self.client_id),
            &[("authorization", &bearer), form[0]],
            String::new(),
        )
        .await?;
        expect("setup", status, 200, &body)?;
        let nonce = json_field(&body, "nonce")?;
        let redirect = serde_urlencoded::to_string([("redirect_uri", REDIRECT)])?;
        let path = format!(
            "/challenger/authorize/{nonce}?response_type=code&client_id={}&{redirect}&state=S{n}",
            self.client_id
        );
        let (status, body) = send(connection, Method::GET, &path, &[], String::new()).await?;
        expect("authorize", status, 200, &body)?;
        let address = format!("c{client}-{n}@bench.example");
        let (status, body) = send(
            connection,
            Method::POST,
            &format!("/challenger/challenge/{nonce}"),
            &form,
            serde_urlencoded::to_string([("CONTACT_EMAIL", &address)])?,
        )
        .await?;
        expect("challenge", status, 200, &body)?;
        let pin = take_code(&self.outbox, &address)?;
        let (status, body) = send(
            connection,
            Method::POST,
            &format!("/challenger/solve/{nonce}"),
            &[form[0], ("accept", "application/json")],
            format!("pin={pin}"),
        )
        .await?;
        expect("solve", status, 200, &body)?;
        let redirect_url = json_field(&body, "redirect_url")?;
        let query = redirect_url.split_once('?').map_or("", |(_, q)| q);
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)?;
        let code = pairs
            .into_iter()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v)
            .ok_or("no code")?;
        let token_form = serde_urlencoded::to_string([
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_secret", SECRET),
            ("code", &code),
            ("grant_type", "authorization_code"),
        ])?;
        let (status, body) = send(
            connection,
            Method::POST,
            "/challenger/token",
            &form,
            token_form,
        )
        .await?;
        expect("token", status, 200, &body)?;
        let token = json_field(&body, "access_token")?;
        let auth = format!("Bearer {token}");
        let (status, body) = send(
            connection,
            Method::GET,
            "/challenger/info",
            &[("authorization", &auth)],
            String::new(),
        )
        .await?;
        expect("info", status, 200, &body)?;
        Ok(token)
    }

    async fn flow_rate(&self, run: usize) -> Result<f64, Error> {
        let started = Instant::now();
        let mut clients = Vec::new();
        for client in 0..FLOW_CLIENTS {
            let bench = Bench {
                address: self.address,
                client_id: self.client_id.clone(),
                outbox: self.outbox.clone(),
            };
            clients.push(tokio::spawn(async move {
                let mut connection = connect(bench.address).await?;
                let mut flows = 0u64;
                while started.elapsed() < RUN_TIME {
                    let n = (run as u64) << 32 | flows;
                    bench.flow(&mut connection, client, n).await?;
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

async fn info_rate(address: SocketAddr, token: &str) -> Result<f64, Error> {
    let started = Instant::now();
    let auth = format!("Bearer {token}");
    let mut readers = Vec::new();
    for _ in 0..INFO_CONNECTIONS {
        let auth = auth.clone();
        readers.push(tokio::spawn(async move {
            let mut connection = connect(address).await?;
            let mut reads = 0u64;
            while started.elapsed() < RUN_TIME {
                let headers = [("authorization", auth.as_str())];
                let (status, body) = send(
                    &mut connection,
                    Method::GET,
                    "/challenger/info",
                    &headers,
                    String::new(),
                )
                .await?;
                expect("info", status, 200, &body)?;
                reads += 1;
            }
            Ok::<u64, Error>(reads)
        }));
    }
    let mut total = 0;
    for reader in readers {
        total += reader.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

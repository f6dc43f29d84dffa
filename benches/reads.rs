//! The read endpoints against a bare server: requests/s of each read, and its ratio to a
//! minimal hyper server (no routing, no middleware, a fixed small JSON body) measured in the
//! same run with the same load generator, over loopback HTTP with the load generator in the
//! same process on the same cores.
//!
//! Each run measures the bare server and every read in turn (the order rotating from run to
//! run), so that drift of a noisy machine hits all of them; the ratios are taken within a
//! run, then the medians over the runs are reported.
//!
//! Run: `cargo bench --bench reads` (or `-- bare config account info kyc-info`, any subset, to
//! load the server with those alone, e.g. under a profiler).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::Method;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use talerbox::app::{self, App};
use talerbox::config::{Config, Overrides};

const RUNS: usize = 9;
const RUN_TIME: Duration = Duration::from_millis(1500);
const CONNECTIONS: usize = 32;
const ADMIN: &str = "secret-token:bench";
const CLIENT_SECRET: &str = "secret-token:client";
const REDIRECT: &str = "https://exchange.example/kyc-proof/challenger";
/// What the bare server answers: a JSON body of the size of a small Taler response.
const BARE_BODY: &[u8] = br#"{"name":"bare","version":"0:0:0","currency":"KUDOS"}"#;

mod support;

use support::{
    BenchDatabase, ChallengerClient, Error, backend, bank_reader, connect, kyc_open, listen,
    median, rate,
};

/// One kind of request being measured.
struct Target {
    name: &'static str,
    address: SocketAddr,
    path: String,
    /// The path as reported (without the token it may carry).
    shown: &'static str,
    authorization: Option<String>,
}

fn main() -> Result<(), Error> {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let database = BenchDatabase::from_env()?;
    println!(
        "reads benchmark ({}): {cores} cores, {RUNS} runs of {RUN_TIME:?} per endpoint, {CONNECTIONS} connections, medians",
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
    let client = app
        .challenger(None)?
        .service
        .add_client(CLIENT_SECRET, REDIRECT)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let challenger = ChallengerClient {
            id: client.id.to_string(),
            secret: CLIENT_SECRET.to_owned(),
            redirect: REDIRECT.to_owned(),
            outbox: app.challenger(None)?.outbox.clone(),
        };
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let server = bound;
        tokio::spawn(async move { app::serve(&app, listener, std::future::pending()).await });
        let bare = bare_server().await?;

        let mut connection = connect(server).await?;
        let bank = bank_reader(&mut connection, "reader").await?;
        let info = challenger
            .validate(&mut connection, "reader@bench.example", "S")
            .await?;
        let (kyc, _) = kyc_open(&mut connection, ADMIN, "reader", "email personal").await?;
        let target = |name, path: &str, shown, authorization: Option<String>| Target {
            name,
            address: server,
            path: path.to_owned(),
            shown,
            authorization,
        };
        let mut targets = vec![
            Target {
                name: "bare",
                address: bare,
                path: "/".to_owned(),
                shown: "/ (bare hyper server)",
                authorization: None,
            },
            target("config", "/bank/config", "/bank/config", None),
            target(
                "account",
                "/bank/accounts/reader",
                "/bank/accounts/$U",
                Some(bank),
            ),
            target(
                "info",
                "/challenger/info",
                "/challenger/info",
                Some(format!("Bearer {info}")),
            ),
            target(
                "kyc-info",
                &format!("/exchange/kyc-info/{kyc}"),
                "/exchange/kyc-info/$TOKEN",
                None,
            ),
        ];
        targets.retain(|t| only.is_empty() || only.iter().any(|o| o == t.name));

        let mut rates = vec![Vec::new(); targets.len()];
        let mut ratios = vec![Vec::new(); targets.len()];
        for run in 0..RUNS {
            let mut this_run = vec![0.0; targets.len()];
            for step in 0..targets.len() {
                let index = (run + step) % targets.len();
                this_run[index] = measure(&targets[index]).await?;
            }
            let bare_rate = targets
                .iter()
                .position(|t| t.name == "bare")
                .map(|i| this_run[i]);
            for (index, rate) in this_run.into_iter().enumerate() {
                rates[index].push(rate);
                if let Some(bare_rate) = bare_rate {
                    ratios[index].push(rate / bare_rate);
                }
            }
        }
        for (index, target) in targets.iter().enumerate() {
            let (rate, runs) = median(rates[index].clone());
            let line = match target.authorization {
                Some(_) => format!("GET {} (bearer)", target.shown),
                None => format!("GET {}", target.shown),
            };
            let ratio = if ratios[index].is_empty() {
                String::new()
            } else {
                let (ratio, _) = median(ratios[index].clone());
                let mut sorted = ratios[index].clone();
                sorted.sort_by(f64::total_cmp);
                format!(
                    " = {ratio:.2}x bare (runs {:.2}-{:.2})",
                    sorted[0],
                    sorted[sorted.len() - 1]
                )
            };
            println!(
                "{:<10} {line}: {rate:.0} req/s{ratio} (runs: {runs})",
                target.name
            );
        }
        Ok::<(), Error>(())
    })
}

async fn measure(target: &Target) -> Result<f64, Error> {
    let authorization = target.authorization.as_deref();
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    rate(
        target.address,
        Method::GET,
        &target.path,
        &headers,
        200,
        CONNECTIONS,
        RUN_TIME,
    )
    .await
}

/// A minimal hyper server answering every request with `BARE_BODY`: the ceiling that
/// connection handling and HTTP/1.1 parsing alone allow on this machine.
async fn bare_server() -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(|_request| async {
                let mut response = hyper::Response::new(Full::new(Bytes::from_static(BARE_BODY)));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                Ok::<_, Infallible>(response)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::spawn(connection);
        }
    });
    Ok(address)
}

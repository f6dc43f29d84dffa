//! The bank's second factor on this machine, against the real server over loopback HTTP at
//! `synchronous=FULL`, with the codes delivered to the outbox (`TAN_EMAIL = talerbox-outbox`).
//!
//! One round is a protected `PATCH /bank/accounts/$USERNAME` by an owner with 2FA on, with its
//! challenge: PATCH (202) → `POST …/challenge/$ID` (200, code to the outbox) → code read from
//! the outbox → `POST …/challenge/$ID/confirm` (204) → the PATCH replayed with
//! `Taler-Challenge-Ids` (204). Each client has its own account and bearer token.
//!
//! Run: `cargo bench --bench tan`. Each figure is the median of several runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hyper::Method;
use talerbox::app::{self, App};
use talerbox::config::{Config, Overrides};

mod support;

use support::{Connection, Error, connect, expect, json_field, median, send, take_code};

const RUNS: usize = 5;
const RUN_TIME: Duration = Duration::from_secs(4);
const CLIENTS: usize = 32;
const ADMIN_PASSWORD: &str = "bench-admin-password";

fn main() -> Result<(), Error> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "TAN benchmark: {cores} cores, {RUNS} runs of {RUN_TIME:?}, {CLIENTS} clients, medians"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let data = tempfile::tempdir()?;
        let file = data.path().join("talerbox.conf");
        std::fs::write(&file, "[libeufin-bank]\nTAN_EMAIL = talerbox-outbox\n")?;
        let overrides = Overrides {
            listen: None,
            data_dir: Some(data.path().join("data")),
        };
        let app = App::open(Config::load(Some(&file), &overrides)?)?;
        app.accounts.set_password("admin", ADMIN_PASSWORD)?;
        let outbox = data.path().join("data").join(app::OUTBOX_DIR);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { app::serve(&app, listener, std::future::pending()).await });

        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            clients.push(Client::enrol(address, outbox.clone(), client).await?);
        }
        let (mut rates, mut latencies) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let (rate, latency) = round_rate(&mut clients).await?;
            rates.push(rate);
            latencies.push(latency);
        }
        let (rate, runs) = median(rates);
        println!("protected PATCH rounds (4 requests + outbox read): {rate:.0} rounds/s = {:.0} requests/s (runs: {runs})", rate * 4.0);
        let (latency, runs) = median(latencies);
        println!("median round latency: {latency:.1} ms (runs: {runs})");
        Ok::<(), Error>(())
    })
}

/// One account with 2FA by e-mail and a bearer token, and its own connection.
struct Client {
    connection: Connection,
    outbox: PathBuf,
    username: String,
    email: String,
    bearer: String,
    rounds: u64,
}

impl Client {
    /// Registers the account, takes a token while 2FA is still off, then has the admin turn
    /// 2FA on (the admin's own changes are not gated).
    async fn enrol(address: SocketAddr, outbox: PathBuf, n: usize) -> Result<Client, Error> {
        let mut connection = connect(address).await?;
        let (username, password) = (format!("tan{n}"), format!("password-{n}"));
        let email = format!("tan{n}@example.com");
        let body =
            format!(r#"{{"username":"{username}","password":"{password}","name":"TAN {n}"}}"#);
        let (status, answer) =
            send(&mut connection, Method::POST, "/bank/accounts", &[], body).await?;
        expect("registration", status, 200, &answer)?;
        let owner = basic(&username, &password);
        let (status, answer) = send(
            &mut connection,
            Method::POST,
            &format!("/bank/accounts/{username}/token"),
            &[("authorization", &owner)],
            r#"{"scope":"readwrite","duration":{"d_us":"forever"}}"#,
        )
        .await?;
        expect("token", status, 200, &answer)?;
        let bearer = format!("Bearer {}", json_field(&answer, "access_token")?);
        let admin = basic("admin", ADMIN_PASSWORD);
        let body = format!(r#"{{"tan_channel":"email","contact_data":{{"email":"{email}"}}}}"#);
        let (status, answer) = send(
            &mut connection,
            Method::PATCH,
            &format!("/bank/accounts/{username}"),
            &[("authorization", &admin)],
            body,
        )
        .await?;
        expect("turning 2FA on", status, 204, &answer)?;
        Ok(Client {
            connection,
            outbox,
            username,
            email,
            bearer,
            rounds: 0,
        })
    }

    /// One protected PATCH with its challenge round trip.
    async fn round(&mut self) -> Result<(), Error> {
        let path = format!("/bank/accounts/{}", self.username);
        let body = format!(r#"{{"is_public":{}}}"#, self.rounds.is_multiple_of(2));
        self.rounds += 1;
        let auth = [("authorization", self.bearer.as_str())];
        let (status, answer) =
            send(&mut self.connection, Method::PATCH, &path, &auth, &body).await?;
        expect("PATCH", status, 202, &answer)?;
        let challenges: serde_json::Value = serde_json::from_slice(&answer)?;
        let id = challenges["challenges"][0]["challenge_id"]
            .as_str()
            .ok_or("no challenge_id")?
            .to_owned();
        let challenge = format!("{path}/challenge/{id}");
        let (status, answer) =
            send(&mut self.connection, Method::POST, &challenge, &auth, "").await?;
        expect("challenge", status, 200, &answer)?;
        let code = take_code(&self.outbox, &self.email)?;
        let confirm = format!("{challenge}/confirm");
        let tan = format!(r#"{{"tan":"{code}"}}"#);
        let (status, answer) =
            send(&mut self.connection, Method::POST, &confirm, &auth, tan).await?;
        expect("confirm", status, 204, &answer)?;
        let replay = [auth[0], ("taler-challenge-ids", id.as_str())];
        let (status, answer) =
            send(&mut self.connection, Method::PATCH, &path, &replay, &body).await?;
        expect("replay", status, 204, &answer)
    }
}

fn basic(username: &str, password: &str) -> String {
    let pair = format!("{username}:{password}");
    format!("Basic {}", data_encoding::BASE64.encode(pair.as_bytes()))
}

/// Rounds/s of all clients for `RUN_TIME`, and the median round latency in milliseconds.
async fn round_rate(clients: &mut Vec<Client>) -> Result<(f64, f64), Error> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for mut client in clients.drain(..) {
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < RUN_TIME {
                let round = Instant::now();
                client.round().await?;
                latencies.push(round.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, Error>((client, latencies))
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        let (client, latencies) = worker.await??;
        all.extend(latencies);
        clients.push(client);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let latency = all.get(all.len() / 2).copied().unwrap_or(f64::NAN);
    Ok((rate, latency))
}

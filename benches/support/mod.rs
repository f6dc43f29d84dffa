//! What the benchmarks share: medians of runs and a keep-alive HTTP/1.1 client.

// Every benchmark compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The median of `values` and all of them, rounded, for the report.
pub fn median(mut values: Vec<f64>) -> (f64, String) {
    values.sort_by(f64::total_cmp);
    let all: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
    (values[values.len() / 2], all.join(", "))
}

/// A keep-alive HTTP/1.1 connection.
pub type Connection = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

pub async fn connect(address: SocketAddr) -> Result<Connection, Error> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends one request; returns the status and the body.
pub async fn send(
    connection: &mut Connection,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl AsRef<[u8]>,
) -> Result<(u16, Bytes), Error> {
    connection.ready().await?;
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "bench");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = connection
        .send_request(request.body(Full::new(Bytes::copy_from_slice(body.as_ref())))?)
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

/// Requests/s of one request (with `headers`) repeated for `run_time` over `connections`
/// keep-alive connections; every answer must have status `wanted`.
pub async fn rate(
    address: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    wanted: u16,
    connections: usize,
    run_time: std::time::Duration,
) -> Result<f64, Error> {
    let started = std::time::Instant::now();
    let body = if method == Method::POST { "{}" } else { "" };
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    if !body.is_empty() {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (method, path, headers) = (method.clone(), path.to_owned(), headers.clone());
        workers.push(tokio::spawn(async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            let mut connection = connect(address).await?;
            let mut done = 0u64;
            while started.elapsed() < run_time {
                let (status, answer) =
                    send(&mut connection, method.clone(), &path, &headers, body).await?;
                if status != wanted {
                    let text = String::from_utf8_lossy(&answer);
                    return Err(format!("{path} answered {status}: {text}").into());
                }
                done += 1;
            }
            Ok::<u64, Error>(done)
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// `Err` naming the step unless the status is `wanted`.
pub fn expect(step: &str, status: u16, wanted: u16, body: &[u8]) -> Result<(), Error> {
    if status == wanted {
        return Ok(());
    }
    let body = String::from_utf8_lossy(body);
    Err(format!("{step} answered {status}: {body}").into())
}

/// The string `field` of a JSON object body.
pub fn json_field(body: &[u8], field: &str) -> Result<String, Error> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    value[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {field} in {value}").into())
}

/// Takes the 8-digit code (challenger PIN or bank TAN) for `address` out of the outbox: the
/// message file's name ends in the address.
pub fn take_code(outbox: &std::path::Path, address: &str) -> Result<String, Error> {
    let suffix = format!("-{address}.txt");
    for entry in std::fs::read_dir(outbox)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(&suffix) {
            let message = std::fs::read_to_string(&path)?;
            std::fs::remove_file(&path)?;
            let code = message
                .split(|c: char| !c.is_ascii_digit())
                .find(|run| run.len() == 8)
                .ok_or("no code in the message")?;
            return Ok(code.to_owned());
        }
    }
    Err(format!("no message for {address}").into())
}

/// Registers the bank account `username` and answers a bearer header of a read-only token
/// that never expires.
pub async fn bank_reader(connection: &mut Connection, username: &str) -> Result<String, Error> {
    let password = format!("{username}-password");
    let body = serde_json::json!({ "username": username, "password": password, "name": username });
    let (status, answer) = send(
        connection,
        Method::POST,
        "/bank/accounts",
        &[],
        body.to_string(),
    )
    .await?;
    expect("registration", status, 200, &answer)?;
    let basic = data_encoding::BASE64.encode(format!("{username}:{password}").as_bytes());
    let (status, answer) = send(
        connection,
        Method::POST,
        &format!("/bank/accounts/{username}/token"),
        &[("authorization", &format!("Basic {basic}"))],
        r#"{"scope":"readonly","duration":{"d_us":"forever"}}"#,
    )
    .await?;
    expect("token request", status, 200, &answer)?;
    Ok(format!("Bearer {}", json_field(&answer, "access_token")?))
}

/// Opens `measures` for the account `name` with the exchange's admin trigger (bearer
/// `admin`); answers its access token and the requirement ids kyc-info lists.
pub async fn kyc_open(
    connection: &mut Connection,
    admin: &str,
    name: &str,
    measures: &str,
) -> Result<(String, Vec<String>), Error> {
    let trigger = serde_json::json!({
        "payto_uri": format!("payto://x-taler-bank/localhost/{name}?receiver-name={name}"),
        "measures": measures,
    });
    let auth = format!("Bearer {admin}");
    let (status, body) = send(
        connection,
        Method::POST,
        "/exchange/admin/kyc-trigger",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        &trigger.to_string(),
    )
    .await?;
    expect("trigger", status, 200, &body)?;
    let token = json_field(&body, "access_token")?;
    let path = format!("/exchange/kyc-info/{token}");
    let (status, body) = send(connection, Method::GET, &path, &[], "").await?;
    expect("kyc-info", status, 200, &body)?;
    let info: serde_json::Value = serde_json::from_slice(&body)?;
    let ids = info["requirements"]
        .as_array()
        .ok_or("no requirements")?
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    Ok((token, ids))
}

/// A client registered at the challenger, and where its PINs are written.
#[derive(Clone)]
pub struct ChallengerClient {
    pub id: String,
    pub secret: String,
    pub redirect: String,
    pub outbox: std::path::PathBuf,
}

impl ChallengerClient {
    /// One complete validation of the e-mail `address` (setup → authorize → challenge → PIN
    /// from the outbox → solve → token → info); answers the access token.
    pub async fn validate(
        &self,
        connection: &mut Connection,
        address: &str,
        state: &str,
    ) -> Result<String, Error> {
        let bearer = format!("Bearer {}", self.secret);
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let (status, body) = send(
            connection,
            Method::POST,
            &format!("/challenger/setup/{}", self.id),
            &[("authorization", &bearer), form[0]],
            String::new(),
        )
        .await?;
        expect("setup", status, 200, &body)?;
        let nonce = json_field(&body, "nonce")?;
        let redirect = serde_urlencoded::to_string([("redirect_uri", &self.redirect)])?;
        let path = format!(
            "/challenger/authorize/{nonce}?response_type=code&client_id={}&{redirect}&state={state}",
            self.id
        );
        let (status, body) = send(connection, Method::GET, &path, &[], String::new()).await?;
        expect("authorize", status, 200, &body)?;
        let (status, body) = send(
            connection,
            Method::POST,
            &format!("/challenger/challenge/{nonce}"),
            &form,
            serde_urlencoded::to_string([("CONTACT_EMAIL", address)])?,
        )
        .await?;
        expect("challenge", status, 200, &body)?;
        let pin = take_code(&self.outbox, address)?;
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
            ("client_id", self.id.as_str()),
            ("redirect_uri", &self.redirect),
            ("client_secret", &self.secret),
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
}

/// `TALERBOX_BENCH_PG=URI` runs a benchmark's server on PostgreSQL (a cluster with fsync on,
/// e.g. `scripts/pg-test-cluster start --fsync`), in a fresh schema dropped at the end.
pub struct BenchDatabase {
    base: String,
    schema: String,
}

impl BenchDatabase {
    /// The schema to use, or `None` (SQLite) without `TALERBOX_BENCH_PG`. Call it before the
    /// benchmark's runtime starts: the PostgreSQL client blocks.
    pub fn from_env() -> Result<Option<BenchDatabase>, Error> {
        let Ok(base) = std::env::var("TALERBOX_BENCH_PG") else {
            return Ok(None);
        };
        let database = BenchDatabase {
            base,
            schema: format!("bench_{}", std::process::id()),
        };
        database.admin(&format!(
            "DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}",
            database.schema
        ))?;
        Ok(Some(database))
    }

    fn admin(&self, sql: &str) -> Result<(), Error> {
        let mut client =
            talerbox::adapters::postgres::parse_uri(&self.base)?.connect(postgres::NoTls)?;
        client.batch_execute(sql)?;
        Ok(())
    }

    /// The configuration lines that put a server listening on `address` on this schema
    /// (PostgreSQL needs the public URL: the exchange calls the built-in challenger there).
    pub fn config(&self, address: SocketAddr) -> String {
        let database = talerbox::adapters::postgres::with_search_path(&self.base, &self.schema);
        format!("[talerbox]\nDATABASE = {database}\nBASE_URL = http://{address}/\n")
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        let _ = talerbox::adapters::system::outside_runtime(|| self.admin(&drop));
    }
}

/// The server's listener, bound before the runtime starts (its address goes into the
/// configuration); `tokio::net::TcpListener::from_std` takes it over.
pub fn listen() -> Result<std::net::TcpListener, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// "SQLite" or "PostgreSQL", for the report's first line.
pub fn backend(database: &Option<BenchDatabase>) -> &'static str {
    if database.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

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

/// Requests/s of one request repeated for `run_time` over `connections` keep-alive
/// connections; every answer must have status `wanted`.
pub async fn rate(
    address: SocketAddr,
    method: Method,
    path: &str,
    wanted: u16,
    connections: usize,
    run_time: std::time::Duration,
) -> Result<f64, Error> {
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (method, path) = (method.clone(), path.to_owned());
        let body = if method == Method::POST { "{}" } else { "" };
        workers.push(tokio::spawn(async move {
            let mut connection = connect(address).await?;
            let mut done = 0u64;
            let json = [("content-type", "application/json")];
            let headers: &[(&str, &str)] = if body.is_empty() { &[] } else { &json };
            while started.elapsed() < run_time {
                let (status, answer) =
                    send(&mut connection, method.clone(), &path, headers, body).await?;
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

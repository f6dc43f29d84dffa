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

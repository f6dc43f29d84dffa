//! Connection limits: header, body and idle timeouts and the connection cap
//! (`[talerbox] HEADER_READ_TIMEOUT`, `BODY_READ_TIMEOUT`, `IDLE_TIMEOUT`, `MAX_CONNECTIONS`).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestServer;

fn limits(header: &str, body: &str, idle: &str, max: usize) -> String {
    format!(
        "[talerbox]\nHEADER_READ_TIMEOUT = {header}\nBODY_READ_TIMEOUT = {body}\n\
         IDLE_TIMEOUT = {idle}\nMAX_CONNECTIONS = {max}\n"
    )
}

async fn connect(server: &TestServer) -> TcpStream {
    let address = server
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/');
    TcpStream::connect(address).await.unwrap()
}

/// Reads until the server closes the connection (a reset counts as closed); answers what was
/// read. Fails the test if that takes longer than `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut data = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&data).into_owned()
}

#[tokio::test]
async fn slow_request_heads_neither_stall_others_nor_stay() {
    let server = TestServer::start_with(&limits("500 ms", "5 s", "5 s", 512)).await;
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = connect(&server).await;
        stream
            .write_all(b"GET /bank/config HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    let started = Instant::now();
    let response = server.get("bank/config").await;
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    // Their heads never complete: each is closed after the header timeout, unanswered.
    for stream in &mut slow {
        let answer = read_until_closed(stream, Duration::from_secs(5)).await;
        assert_eq!(answer, "");
    }
    assert!(started.elapsed() >= Duration::from_millis(400));
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(&limits("5 s", "5 s", "300 ms", 512)).await;
    // A connection that never sends anything.
    let mut silent = connect(&server).await;
    let opened = Instant::now();
    assert_eq!(
        read_until_closed(&mut silent, Duration::from_secs(5)).await,
        ""
    );
    let waited = opened.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    // A kept-alive connection after its answer.
    let mut kept = connect(&server).await;
    kept.write_all(b"GET /bank/config HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let sent = Instant::now();
    let answer = read_until_closed(&mut kept, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(sent.elapsed() >= Duration::from_millis(250));
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let server = TestServer::start_with(&limits("5 s", "300 ms", "5 s", 512)).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(
            b"POST /bank/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\":",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":11"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let server = TestServer::start_with(&limits("5 s", "5 s", "500 ms", 2)).await;
    let _first = connect(&server).await;
    let _second = connect(&server).await;
    // Both slots are taken by idle connections until the idle timeout frees them.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(server.url("bank/config"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    server.stop().await;
}

#[test]
fn limits_must_be_positive() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "[talerbox]\nIDLE_TIMEOUT = 0 s\n",
        "[talerbox]\nHEADER_READ_TIMEOUT = forever\n",
        "[talerbox]\nMAX_CONNECTIONS = 0\n",
    ] {
        let file = crate::support::config_file(dir.path(), bad);
        let error = talerbox::config::Config::load(Some(&file), &Default::default())
            .err()
            .unwrap();
        assert!(error.to_string().contains("talerbox"), "{error}");
    }
}

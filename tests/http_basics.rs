//! The shared HTTP rules: the three `/config` endpoints, errors, body limits, compression,
//! CORS and health.

use std::io::Write;

use crate::support::{TestServer, assert_error};

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn each_component_answers_its_config() {
    let server = TestServer::start().await;
    let bank: serde_json::Value = server.get("bank/config").await.json().await.unwrap();
    assert_eq!(bank["name"], "taler-corebank");
    assert_eq!(bank["version"], "10:0:0");
    assert_eq!(bank["currency"], "KUDOS");
    assert_eq!(bank["base_url"], server.url("bank/"));
    let exchange: serde_json::Value = server.get("exchange/config").await.json().await.unwrap();
    assert_eq!(exchange["name"], "taler-exchange");
    assert_eq!(exchange["version"], "23:0:6");
    assert_eq!(
        exchange["currency_specification"]["num_fractional_normal_digits"],
        2
    );
    let challenger: serde_json::Value = server.get("challenger/config").await.json().await.unwrap();
    assert_eq!(challenger["name"], "challenger");
    assert_eq!(challenger["version"], "6:0:5");
    assert_eq!(challenger["address_type"], "email");
    server.stop().await;
}

#[tokio::test]
async fn a_trailing_slash_is_tolerated() {
    let server = TestServer::start().await;
    assert_eq!(server.get("bank/config/").await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn prefixes_and_base_urls_follow_the_configuration() {
    let server = TestServer::start_with(
        "[talerbox]\nBANK_PREFIX = /money/\n[libeufin-bank]\nBASE_URL = https://bank.example.com\n",
    )
    .await;
    let bank: serde_json::Value = server.get("money/config").await.json().await.unwrap();
    assert_eq!(bank["base_url"], "https://bank.example.com/");
    assert_error(server.get("bank/config").await, 404, 21).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_with_code_21() {
    let server = TestServer::start().await;
    for path in ["nope", "bank/nope", "exchange/", "challenger/config/extra"] {
        assert_error(server.get(path).await, 404, 21).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_method_is_405_with_code_20_and_allow() {
    let server = TestServer::start().await;
    let response = server
        .client
        .delete(server.url("exchange/config"))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET"), "{allow}");
    assert_error(response, 405, 20).await;
    server.stop().await;
}

#[tokio::test]
async fn bodies_over_the_global_limit_are_413_whatever_the_path() {
    let server = TestServer::start().await;
    let body = vec![b'x'; 16 * 1024 * 1024 + 1];
    for path in ["nowhere/at/all", "exchange/config"] {
        let response = server
            .client
            .post(server.url(path))
            .body(body.clone())
            .send()
            .await;
        assert_error(response.unwrap(), 413, 32).await;
    }
    // The server keeps serving.
    assert_eq!(server.get("healthz").await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn the_service_limits_apply_to_the_inflated_size() {
    let server = TestServer::start().await;
    let bank_sized = vec![b' '; 4 * 1024 + 1];
    let post = |path: &str, body: Vec<u8>, deflated: bool| {
        let mut request = server.client.post(server.url(path)).body(body);
        if deflated {
            request = request.header("Content-Encoding", "deflate");
        }
        request.send()
    };
    assert_error(
        post("bank/config", bank_sized.clone(), false)
            .await
            .unwrap(),
        413,
        32,
    )
    .await;
    let compressed = deflate(&bank_sized);
    assert!(compressed.len() < 100);
    assert_error(
        post("bank/config", compressed, true).await.unwrap(),
        413,
        32,
    )
    .await;
    // Within the bank's limit the request reaches routing (405: /config is GET only).
    assert_error(
        post("bank/config", deflate(b"{}"), true).await.unwrap(),
        405,
        20,
    )
    .await;
    let challenger_sized = vec![b' '; 64 * 1024 + 1];
    assert_error(
        post("challenger/config", challenger_sized, false)
            .await
            .unwrap(),
        413,
        32,
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn compressed_bodies_are_checked() {
    let server = TestServer::start().await;
    let corrupt = server
        .client
        .post(server.url("exchange/config"))
        .header("Content-Encoding", "deflate")
        .body("this is not zlib")
        .send()
        .await
        .unwrap();
    assert_error(corrupt, 400, 28).await;
    let gzip = server
        .client
        .post(server.url("exchange/config"))
        .header("Content-Encoding", "gzip")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(gzip, 415, 28).await;
    server.stop().await;
}

#[tokio::test]
async fn browsers_may_call_the_api_from_other_origins() {
    let server = TestServer::start().await;
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("bank/accounts"))
        .header("Origin", "https://spa.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let simple = server
        .client
        .get(server.url("bank/config"))
        .header("Origin", "https://spa.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(simple.headers()["access-control-allow-origin"], "*");
    server.stop().await;
}

#[tokio::test]
async fn healthz_touches_the_database() {
    let server = TestServer::start().await;
    let response = server.get("healthz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert!(server.dir.path().join("data/talerbox.sqlite3").exists());
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let server = TestServer::start().await;
    // A slow upload is in flight when the shutdown starts; it still gets its answer.
    let (sender, body) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let stream = reqwest::Body::wrap_stream(tokio_stream_from(body));
    let request = server
        .client
        .post(server.url("exchange/config"))
        .body(stream)
        .send();
    let in_flight = tokio::spawn(request);
    sender.send(Ok(b"{".to_vec())).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let url = server.url("healthz");
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    sender.send(Ok(b"}".to_vec())).await.unwrap();
    drop(sender);
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 405);
    stopping.await.unwrap();
    // After the shutdown nothing listens any more.
    assert!(reqwest::get(url).await.is_err());
}

/// Adapts an mpsc receiver to the `Stream` reqwest wants, without a stream utility crate.
fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

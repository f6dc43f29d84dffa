//! The operations endpoints: `/metrics` in the Prometheus text format and `/readyz`.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

use crate::support::{ADMIN_PASSWORD, TestServer};

/// The value of the sample `name{labels}` (labels as printed), or 0 when it is absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

async fn scrape(server: &TestServer) -> String {
    let response = server.get("metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

const CONFIG_OK: &str =
    r#"talerbox_http_requests_total{method="GET",route="/bank/config",status="200"}"#;
const UNMATCHED: &str =
    r#"talerbox_http_requests_total{method="GET",route="unmatched",status="404"}"#;
const BATCHES: &str = "talerbox_writer_batch_size_count";

#[tokio::test]
async fn metrics_move_with_requests_and_writes() {
    let server = TestServer::start_with(
        "[talerbox]\nTHROTTLE_ACCOUNT_BURST = 1\nTHROTTLE_ACCOUNT_INTERVAL = 1 h\n",
    )
    .await;
    let before = scrape(&server).await;
    for _ in 0..3 {
        assert_eq!(server.get("bank/config").await.status(), 200);
    }
    assert_eq!(server.get("bank/no/such/thing").await.status(), 404);
    // A registration is a write through the writer.
    let registered = server
        .client
        .post(server.url("bank/accounts"))
        .json(&json!({"username": "alice", "password": "alice-password", "name": "Alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);
    // Failed logins until the throttle refuses one.
    let mut refused = 0;
    for _ in 0..3 {
        let login = server
            .client
            .get(server.url("bank/accounts/admin"))
            .basic_auth("admin", Some("wrong"))
            .send()
            .await
            .unwrap();
        refused += u32::from(login.status() == 429);
    }
    assert!(refused >= 1);
    let after = scrape(&server).await;

    assert_eq!(sample(&after, CONFIG_OK) - sample(&before, CONFIG_OK), 3.0);
    // Unknown paths share one label: no raw path becomes a series.
    assert_eq!(sample(&after, UNMATCHED) - sample(&before, UNMATCHED), 1.0);
    assert!(!after.contains("no/such/thing"));
    let latency = r#"talerbox_http_request_duration_seconds_count{method="GET",route="/bank/config",status="200"}"#;
    assert_eq!(sample(&after, latency), 3.0);
    let register =
        r#"talerbox_http_requests_total{method="POST",route="/bank/accounts",status="200"}"#;
    assert_eq!(sample(&after, register), 1.0);
    assert!(sample(&after, BATCHES) > sample(&before, BATCHES));
    assert_eq!(sample(&after, "talerbox_writer_queue_depth"), 0.0);
    assert!(sample(&after, "talerbox_database_size_bytes") > 0.0);
    assert_eq!(sample(&after, "talerbox_password_hash_queue"), 0.0);
    assert!(after.contains("# TYPE talerbox_password_hash_queue gauge"));
    let throttled = r#"talerbox_throttled_requests_total{kind="bank_password"}"#;
    assert_eq!(sample(&after, throttled), f64::from(refused));
    assert!(
        sample(
            &after,
            r#"talerbox_http_requests_total{method="GET",route="/bank/accounts/{username}",status="429"}"#
        ) >= 1.0
    );
    assert!(after.ends_with("# EOF\n"));
    server.stop().await;
}

#[tokio::test]
async fn waiting_long_polls_are_counted() {
    let server = TestServer::start_with("[exchange]\nADMIN_TOKEN = secret-token:ops\n").await;
    let opened: Value = server
        .client
        .post(server.url("exchange/admin/kyc-trigger"))
        .header(AUTHORIZATION, "Bearer secret-token:ops")
        .json(
            &json!({"payto_uri": "payto://x-taler-bank/localhost/bob?receiver-name=Bob",
            "measures": "personal"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = opened["access_token"].as_str().unwrap().to_owned();
    let info = server.get(&format!("exchange/kyc-info/{token}")).await;
    let etag = info.headers()[ETAG].to_str().unwrap().to_owned();
    let poll = {
        let request = server
            .client
            .get(server.url(&format!("exchange/kyc-info/{token}?timeout_ms=1500")))
            .header(IF_NONE_MATCH, etag);
        tokio::spawn(request.send())
    };
    let mut seen = 0.0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = sample(&scrape(&server).await, "talerbox_long_polls_waiting");
        if seen > 0.0 {
            break;
        }
    }
    assert_eq!(seen, 1.0);
    assert_eq!(poll.await.unwrap().unwrap().status(), 304);
    let done = scrape(&server).await;
    assert_eq!(sample(&done, "talerbox_long_polls_waiting"), 0.0);
    server.stop().await;
}

#[tokio::test]
async fn readyz_fails_while_the_writer_is_stuck() {
    let server = TestServer::start().await;
    assert_eq!(server.get("readyz").await.status(), 200);
    // Another process holds the write lock: the writer's next batch waits for it.
    let lock = rusqlite::Connection::open(server.dir.path().join("data/talerbox.sqlite3")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let registration = server
        .client
        .post(server.url("bank/accounts"))
        .json(&json!({"username": "alice", "password": "alice-password", "name": "Alice"}));
    let registration = tokio::spawn(registration.send());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let mut stuck = None;
    for _ in 0..30 {
        let ready = server.get("readyz").await;
        if ready.status() == 503 {
            stuck = Some(ready.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lock.execute_batch("COMMIT").unwrap();
    let stuck = stuck.expect("readyz stayed 200 while the writer waited");
    assert_eq!(stuck["status"], "not ready");
    assert!(
        stuck["reason"].as_str().unwrap().contains("writer"),
        "{stuck}"
    );
    registration.await.unwrap().unwrap();
    assert_eq!(server.get("readyz").await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn readyz_and_healthz_answer_on_the_root() {
    let server = TestServer::start().await;
    let ready = server.get("readyz").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(server.get("healthz").await.status(), 200);
    // Not under a component's prefix.
    assert_eq!(server.get("bank/metrics").await.status(), 404);
    // The admin's login still works: the endpoints take no credentials.
    let admin = server
        .client
        .get(server.url("bank/accounts/admin"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    server.stop().await;
}

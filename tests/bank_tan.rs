//! The bank's second factor over real HTTP (corebank-tan.md): the unauthenticated
//! challenge endpoints, their errors, and the outbox delivery.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_error};

const OUTBOX_TAN: &str =
    "[libeufin-bank]\nTAN_SMS = talerbox-outbox\nTAN_EMAIL = talerbox-outbox\n";

async fn post(server: &TestServer, path: &str, body: Option<Value>) -> reqwest::Response {
    let request = server
        .client
        .request(Method::POST, server.url(&format!("bank/{path}")));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

#[tokio::test]
async fn challenge_endpoints_answer_unknown_challenges_and_bad_bodies() {
    let server = TestServer::start_with(OUTBOX_TAN).await;
    // A well-formed but unknown id, a malformed id, and an unknown account: 404/5107.
    let unknown = "0000000000000000000000000Z";
    for path in [
        format!("accounts/admin/challenge/{unknown}"),
        "accounts/admin/challenge/not-an-id".to_owned(),
        format!("accounts/nobody/challenge/{unknown}"),
    ] {
        assert_error(post(&server, &path, None).await, 404, 5107).await;
        let confirm = format!("{path}/confirm");
        let answer = post(&server, &confirm, Some(json!({"tan": "12345678"}))).await;
        assert_error(answer, 404, 5107).await;
    }
    // The confirm body is checked first: 400/22 even for an unknown challenge.
    let confirm = format!("accounts/admin/challenge/{unknown}/confirm");
    for body in [json!({}), json!({"tan": 12345678}), json!([])] {
        assert_error(post(&server, &confirm, Some(body)).await, 400, 22).await;
    }
    // No authentication is needed, and a malformed Authorization header is ignored.
    let answer = server
        .client
        .post(server.url(&format!("bank/accounts/admin/challenge/{unknown}")))
        .header("Authorization", "Bogus !!")
        .send()
        .await
        .unwrap();
    assert_error(answer, 404, 5107).await;
    server.stop().await;
}

#[tokio::test]
async fn cors_preflight_allows_the_challenge_ids_header() {
    let server = TestServer::start().await;
    let answer = server
        .client
        .request(Method::OPTIONS, server.url("bank/accounts/alice"))
        .header("Origin", "https://spa.example")
        .header("Access-Control-Request-Method", "PATCH")
        .header("Access-Control-Request-Headers", "taler-challenge-ids")
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let allowed = answer.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    // The permissive CORS layer answers the wildcard, which covers this header.
    assert!(
        allowed == "*" || allowed.contains("taler-challenge-ids"),
        "{allowed}"
    );
    server.stop().await;
}

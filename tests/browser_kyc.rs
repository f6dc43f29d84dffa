//! The customer's KYC page in a real browser (headless Chromium over WebDriver).

use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::browser::Browser;

const ADMIN: &str = "secret-token:kyc-admin";
const CONFIG: &str = "[exchange]\nADMIN_TOKEN = secret-token:kyc-admin\n";
const ALICE: &str = "payto://x-taler-bank/localhost/alice?receiver-name=Alice";

/// Opens a requirement of `measures` for Alice through the admin API; answers the token.
async fn trigger(server: &TestServer, measures: &str) -> String {
    let response = server
        .client
        .post(server.url("exchange/admin/kyc-trigger"))
        .bearer_auth(ADMIN)
        .json(&json!({"payto_uri": ALICE, "measures": measures}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_page_loads_under_its_policy_without_console_errors() {
    let server = TestServer::start_with(CONFIG).await;
    let token = trigger(&server, "personal").await;
    let page = server.url(&format!("exchange/kyc-spa/{token}"));

    let response = server.client.get(&page).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = response.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");

    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.goto(&page).await;
    browser.wait_for("main h2").await;
    browser.wait_for_text("main", "What is required").await;
    let lang = browser
        .run("return document.documentElement.lang;", vec![])
        .await;
    assert_eq!(lang, "en");
    browser.screenshot("kyc-smoke").await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");
    let requests = browser.requests().await;
    let info = requests
        .iter()
        .find(|r| r.url.contains(&format!("/exchange/kyc-info/{token}")))
        .unwrap_or_else(|| panic!("no kyc-info request in {requests:?}"));
    assert_eq!(info.method, "GET");
    assert!(info.headers.is_object() && info.body.is_none(), "{info:?}");
    browser.close().await;
    server.stop().await;
}

#[tokio::test]
async fn pages_and_assets_carry_the_policy_etags_and_404s() {
    let server = TestServer::start().await;
    for (path, kind) in [
        ("exchange/kyc-spa/ANYTOKEN", "text/html"),
        ("exchange/kyc-spa/app.js", "text/javascript"),
        ("exchange/aml-spa/", "text/html"),
        ("exchange/aml-spa", "text/html"),
        ("exchange/aml-spa/app.js", "text/javascript"),
        ("exchange/web/common/style.css", "text/css"),
        ("exchange/web/common/api.js", "text/javascript"),
        ("exchange/web/common/base32.js", "text/javascript"),
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers[CONTENT_TYPE].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert!(headers.contains_key(CONTENT_SECURITY_POLICY), "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-cache");
        let etag = headers["etag"].clone();
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");

        let again = server
            .client
            .get(server.url(path))
            .header("if-none-match", etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag);

        let head = server.client.head(server.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "{path}");
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
    // Pages point at their files by absolute path, whatever the page's own address.
    let page = server.get("exchange/aml-spa").await.text().await.unwrap();
    assert!(page.contains("src=\"/exchange/aml-spa/app.js\""), "{page}");
    for path in [
        "exchange/kyc-spa/nope.js",
        "exchange/web/common/nope.css",
        "exchange/aml-spa/x.js",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(response.headers().contains_key(CONTENT_SECURITY_POLICY));
    }
    server.stop().await;
}

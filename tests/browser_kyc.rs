//! The customer's KYC page in a real browser (headless Chromium over WebDriver).

use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::support::browser::Browser;
use crate::support::{TestServer, outbox_pin, talerbox};

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

    // The first load's transfer: the page and every file it loaded, uncompressed (the budget
    // of both pages together is 150 KB; this one keeps well under half of it).
    let sizes = browser
        .run(
            "const all = [...performance.getEntriesByType('navigation'), \
             ...performance.getEntriesByType('resource')]; \
             return all.map(e => [e.name, e.decodedBodySize]);",
            vec![],
        )
        .await;
    let sizes = sizes.as_array().unwrap();
    let total: u64 = sizes.iter().map(|entry| entry[1].as_u64().unwrap()).sum();
    println!(
        "first load: {total} bytes in {} files: {sizes:?}",
        sizes.len()
    );
    assert!(sizes.len() >= 5, "{sizes:?}");
    assert!(total < 40_000, "{total} bytes: {sizes:?}");
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

/// A FORM check with a file, next to the built-in e-mail check.
const ADDRESS_CONFIG: &str = "[exchange]\nADMIN_TOKEN = secret-token:kyc-admin\n\n\
    [kyc-check-address]\nTYPE = FORM\nFORM_NAME = address_proof\n\
    DESCRIPTION = \"Show us where you live\"\nDESCRIPTION_I18N = {}\n\
    OUTPUTS = STREET_ADDRESS UTILITY_BILL_SCAN\nFALLBACK = freeze\n\n\
    [kyc-measure-address]\nCHECK_NAME = address\nPROGRAM = accept\nCONTEXT = {}\n";

#[tokio::test]
async fn a_customer_passes_email_and_a_form_with_a_file_from_the_printed_url() {
    // The real binary, so that `kyc trigger` learns the server's address as it would.
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    crate::support::config_file(dir, ADDRESS_CONFIG);
    let server = Served::start(dir);
    let (code, out, err) = talerbox(dir, &["kyc", "trigger", ALICE, "--measure", "email"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let token = lines[0];
    let page = lines[2].to_owned();
    assert_eq!(page, format!("{}exchange/kyc-spa/{token}", server.base));

    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.goto(&page).await;
    browser.wait_for_text("main", "One step is required.").await;
    browser
        .wait_for_text(
            ".requirement[data-form=LINK]",
            "Confirm your e-mail address",
        )
        .await;
    browser
        .wait_for_text(".requirement[data-form=LINK]", "To do")
        .await;
    browser.screenshot("kyc-1-email-step").await;

    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");

    // The e-mail step through the challenger's pages, the PIN from the outbox.
    click(&browser, ".requirement[data-form=LINK] button").await;
    browser.wait_for("input[type=email]").await;
    browser.screenshot("kyc-2-challenger-address").await;
    type_into(&browser, "input[type=email]", "alice@example.com").await;
    click(&browser, "form button[type=submit]").await;
    browser.wait_for("#pin").await;
    browser.screenshot("kyc-2-challenger-pin").await;
    type_into(&browser, "#pin", &outbox_pin(dir)).await;
    click(&browser, "form button[type=submit]").await;
    browser.wait_for_text("main", "complete").await;
    // What the challenger's own pages logged is not this page's concern.
    let _ = browser.console_errors().await;
    // Back on the page: nothing is left.
    browser.goto(&page).await;
    browser.wait_for_text("#done", "Done.").await;

    // The operator asks for proof of address: the same page, now with a form.
    let (code, out, err) = talerbox(dir, &["kyc", "trigger", ALICE, "--measure", "address"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().nth(2), Some(page.as_str()));
    browser.goto(&page).await;
    browser
        .wait_for_text(
            ".requirement[data-form=address_proof]",
            "Show us where you live",
        )
        .await;
    // Its fields come from the server's description; empty fields are refused in the page.
    click(&browser, ".requirement[data-form=address_proof] button").await;
    browser
        .wait_for("#field-address_proof-UTILITY_BILL_SCAN[type=file]")
        .await;
    click(
        &browser,
        "form[data-form-id=address_proof] button[type=submit]",
    )
    .await;
    browser
        .wait_for_text(
            "#field-address_proof-STREET_ADDRESS-error",
            "Street address is required.",
        )
        .await;
    browser.screenshot("kyc-3-form-refused").await;
    let bill = dir.join("bill.pdf");
    std::fs::write(&bill, b"%PDF-1.4 electricity bill").unwrap();
    type_into(
        &browser,
        "#field-address_proof-STREET_ADDRESS",
        "Hauptstrasse 1, Zurich",
    )
    .await;
    type_into(
        &browser,
        "#field-address_proof-UTILITY_BILL_SCAN",
        bill.to_str().unwrap(),
    )
    .await;
    // At phone width.
    browser.client.set_window_size(400, 760).await.unwrap();
    browser.screenshot("kyc-4-form-filled-phone").await;
    click(
        &browser,
        "form[data-form-id=address_proof] button[type=submit]",
    )
    .await;
    // The long poll brings the page to its end by itself.
    browser.wait_for_text("#done", "Done.").await;
    browser.screenshot("kyc-5-done").await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");

    // One upload, and the exchange has nothing more to ask.
    let uploads: Vec<_> = browser
        .requests()
        .await
        .into_iter()
        .filter(|r| r.url.contains("/kyc-upload/"))
        .collect();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let info = reqwest::get(format!("{}exchange/kyc-info/{token}", server.base))
        .await
        .unwrap();
    assert_eq!(info.status(), 204);
    browser.close().await;
}

/// `talerbox serve` on a test directory's configuration and data, stopped on drop.
struct Served {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT/`
    base: String,
}

impl Served {
    fn start(dir: &std::path::Path) -> Served {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_talerbox"))
            .arg("-c")
            .arg(dir.join("talerbox.conf"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let rest = line.split("listening on ").nth(1)?;
                Some(rest.trim().to_owned())
            })
            .expect("the server says where it listens");
        // Keep reading its log, so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Served { child, base }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_page_updates_itself_and_names_unknown_forms_and_tokens() {
    let server = TestServer::start_with(CONFIG).await;
    let token = trigger(&server, "personal").await;
    let page = server.url(&format!("exchange/kyc-spa/{token}"));
    let Some(browser) = Browser::start().await else {
        return;
    };

    // The page's logic, unit by unit, in the same browser.
    browser.goto(&page).await;
    browser.wait_for(".requirement").await;
    let module = server.url("exchange/kyc-spa/logic.js");
    let result = browser
        .run(include_str!("browser_kyc_logic.js"), vec![json!(module)])
        .await;
    assert_eq!(result["failures"], json!([]), "{result}");
    assert!(result["count"].as_u64().unwrap() >= 20, "{result}");

    // The shared base32 codec writes what the server writes, and reads it back.
    let samples: Vec<Vec<u8>> = (0..=33u8)
        .map(|n| (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect())
        .collect();
    let encoded = browser
        .run(
            "return import(arguments[0]).then(b => arguments[1].map(bytes => { \
               const text = b.encode(Uint8Array.from(bytes)); \
               return [text, Array.from(b.decode(text.toLowerCase().replace(/0/g, 'o')))]; }));",
            vec![
                json!(server.url("exchange/web/common/base32.js")),
                json!(samples),
            ],
        )
        .await;
    for (bytes, answer) in samples.iter().zip(encoded.as_array().unwrap()) {
        let expected = talerbox::domain::primitives::base32::encode(bytes);
        assert_eq!(answer[0], expected.as_str(), "{bytes:?}");
        assert_eq!(answer[1], json!(bytes), "{expected}");
    }

    // The built-in form, sent from another client: the long poll brings the page to done.
    let requirement: Value = server
        .get(&format!("exchange/kyc-info/{token}"))
        .await
        .json()
        .await
        .unwrap();
    let id = requirement["requirements"][0]["id"].as_str().unwrap();

    // A form the server does not describe is a message with its code in the step's card.
    browser
        .run(
            "const real = window.fetch; window.fetch = (url, options) => \
             String(url).includes('/kyc-forms/') \
               ? (window.fetch = real, Promise.resolve(new Response( \
                   JSON.stringify({code: 1931, hint: 'no such form'}), {status: 404}))) \
               : real(url, options);",
            vec![],
        )
        .await;
    click(&browser, ".requirement button").await;
    let message = browser
        .wait_for_text(".requirement .alert", "Error code 1931.")
        .await;
    assert!(message.contains("full_name_and_birthdate"), "{message}");
    browser.screenshot("kyc-6-unknown-form").await;
    // Asked again, the server describes it.
    click(&browser, ".requirement button").await;
    browser
        .wait_for("#field-full_name_and_birthdate-DATE_OF_BIRTH[type=date]")
        .await;
    browser.screenshot("kyc-7-personal-form").await;
    let stale = browser
        .run(
            "return document.querySelectorAll('.requirement .alert').length;",
            vec![],
        )
        .await;
    assert_eq!(stale, 0, "the earlier complaint is gone");
    let uploaded = server
        .client
        .post(server.url(&format!("exchange/kyc-upload/{id}")))
        .json(
            &json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice",
            "DATE_OF_BIRTH": "1990-01-31"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 204);
    browser.wait_for_text("#done", "Done.").await;
    // It got there by a long poll that named what it had seen.
    let polls: Vec<_> = browser
        .requests()
        .await
        .into_iter()
        .filter(|r| r.url.contains("/kyc-info/") && r.url.contains("timeout_ms=25000"))
        .collect();
    assert!(!polls.is_empty());
    assert!(
        polls.iter().all(|r| r.headers["If-None-Match"]
            .as_str()
            .is_some_and(|tag| tag.starts_with('"'))),
        "{polls:?}"
    );

    // A form the server does not know is a message with its code, not a blank page.
    let unknown = server.get("exchange/kyc-forms/no_such_form").await;
    let body = crate::support::assert_error(unknown, 404, 1931).await;
    assert_eq!(body["hint"], "no such form");
    assert_eq!(body["detail"], "no_such_form");
    let other = trigger(&server, "personal").await;
    assert_eq!(other, token);

    // An unknown token is refused in words, with the code.
    let stranger = "A".repeat(52);
    browser
        .goto(&server.url(&format!("exchange/kyc-spa/{stranger}")))
        .await;
    let text = browser
        .wait_for_text(
            "main .alert",
            "leads to no identity check: ask the exchange for a new link. Error code 1919.",
        )
        .await;
    assert!(!text.is_empty());
    browser.screenshot("kyc-8-unknown-token").await;
    browser.close().await;
    server.stop().await;
}

async fn click(browser: &Browser, css: &str) {
    browser.wait_for(css).await.click().await.unwrap();
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    browser.wait_for(css).await.send_keys(text).await.unwrap();
}

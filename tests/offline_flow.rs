//! The offline flow of issue 5, end to end over real HTTP with no configuration: a bank
//! account, a KYC trigger from the CLI, the built-in challenger as provider in browser pages,
//! the PIN from the outbox, the proof, and an AML officer reading the stored attributes.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

use crate::support::{TestServer, outbox_pin, talerbox};

const FORM: &str = "application/x-www-form-urlencoded";

/// `base` + path of an absolute URL on the test server.
fn path_of<'a>(server: &TestServer, url: &'a str) -> &'a str {
    url.strip_prefix(server.base.as_str())
        .unwrap_or_else(|| panic!("{url} is not on {}", server.base))
}

#[tokio::test]
async fn the_offline_flow_works_out_of_the_box() {
    let mut server = TestServer::start().await;
    // A browser that shows each redirect instead of following it.
    server.client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let dir = server.dir.path().to_owned();

    // A bank account, whose payto the exchange's KYC is about.
    let registered: Value = server
        .client
        .post(server.url("bank/accounts"))
        .json(&json!({"username": "alice", "password": "alice-password", "name": "Alice"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payto = registered["internal_payto_uri"]
        .as_str()
        .unwrap()
        .to_owned();

    // The operator opens the e-mail measure from the command line (another process).
    let (code, out, err) = talerbox(&dir, &["kyc", "trigger", &payto, "--measure", "email"]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let token = lines.next().unwrap().to_owned();
    assert_eq!(token.len(), 52);
    assert_eq!(lines.next().unwrap().len(), 52);
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(&format!("kyc-info/{token}"))
    );

    // kyc-info lists the requirement; kyc-start hands over to the built-in challenger.
    let info: Value = server
        .get(&format!("exchange/kyc-info/{token}"))
        .await
        .json()
        .await
        .unwrap();
    let requirement = &info["requirements"][0];
    assert_eq!(requirement["form"], "LINK");
    let id = requirement["id"].as_str().unwrap().to_owned();
    let start = |id: String| {
        server
            .client
            .post(server.url(&format!("exchange/kyc-start/{id}")))
            .json(&json!({}))
            .send()
    };
    let started: Value = start(id.clone()).await.unwrap().json().await.unwrap();
    let redirect_url = started["redirect_url"].as_str().unwrap().to_owned();
    assert!(
        redirect_url.starts_with(&server.url("challenger/authorize/")),
        "{redirect_url}"
    );
    // Idempotent: the same URL again.
    let again: Value = start(id).await.unwrap().json().await.unwrap();
    assert_eq!(again["redirect_url"], redirect_url.as_str());

    // The person's browser: the address page, the address, the PIN from the outbox.
    let page = server
        .client
        .get(&redirect_url)
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let nonce = path_of(&server, &redirect_url)
        .trim_start_matches("challenger/authorize/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let challenged = server
        .client
        .post(server.url(&format!("challenger/challenge/{nonce}")))
        .header(CONTENT_TYPE, FORM)
        .header(ACCEPT, "text/html")
        .body("CONTACT_EMAIL=alice%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(challenged.status(), StatusCode::OK);
    let solved = server
        .client
        .post(server.url(&format!("challenger/solve/{nonce}")))
        .header(CONTENT_TYPE, FORM)
        .header(ACCEPT, "text/html")
        .body(format!("pin={}", outbox_pin(&dir)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        solved.status(),
        StatusCode::FOUND,
        "{:?}",
        solved.text().await
    );
    let proof_url = solved.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        proof_url.starts_with(&server.url("exchange/kyc-proof/challenger?")),
        "{proof_url}"
    );

    // The browser follows to kyc-proof, which fetches the address and lands on kyc-done.
    let proof = server.client.get(&proof_url).send().await.unwrap();
    assert_eq!(
        proof.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        proof.text().await
    );
    assert_eq!(
        proof.headers()[LOCATION],
        server.url("exchange/kyc-done").as_str()
    );
    assert_eq!(
        server.get("exchange/kyc-done").await.status(),
        StatusCode::OK
    );
    // A replayed proof finds nothing waiting.
    let replay = server.client.get(&proof_url).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::NOT_FOUND);

    // Nothing is open any more.
    assert_eq!(
        server
            .get(&format!("exchange/kyc-info/{token}"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    // An AML officer reads the stored, encrypted attributes.
    let (code, out, err) = talerbox(&dir, &["aml", "officer", "new", "--name", "Olivia Officer"]);
    assert_eq!(code, 0, "{err}");
    let mut keys = out.lines();
    let (officer_pub, officer_priv) = (
        keys.next().unwrap().to_owned(),
        keys.next().unwrap().to_owned(),
    );
    let (_, signature, _) = talerbox(&dir, &["aml", "officer", "sign-query", &officer_priv]);
    let h_payto = talerbox::domain::primitives::Payto::parse_full(&payto)
        .unwrap()
        .h_normalized();
    let history: Value = server
        .client
        .get(server.url(&format!("exchange/aml/{officer_pub}/attributes/{h_payto}")))
        .header("Taler-AML-Officer-Signature", signature.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = &history["details"][0];
    assert_eq!(row["attributes"]["CONTACT_EMAIL"], "alice@example.com");
    assert_eq!(row["attributes"]["FORM_ID"], "challenger-email");
    assert_eq!(row["by_aml_officer"], false);
    server.stop().await;
}

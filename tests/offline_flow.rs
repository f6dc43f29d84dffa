//! The offline flow of issue 5, end to end over real HTTP with no configuration: a bank
//! account, a KYC trigger from the CLI, the built-in challenger as provider in browser pages,
//! the PIN from the outbox, the proof, and an AML officer reading the stored attributes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

use crate::support::{TestServer, config_file, outbox_pin, talerbox};

const FORM: &str = "application/x-www-form-urlencoded";

/// A running server as the flow sees it: its base URL, its directory (configuration file and
/// `data/`) and a browser that shows each redirect instead of following it.
pub(crate) struct Site {
    base: String,
    dir: PathBuf,
    client: reqwest::Client,
}

impl Site {
    pub(crate) fn new(base: String, dir: &Path) -> Site {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Site {
            base,
            dir: dir.to_owned(),
            client,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// The path of an absolute URL on this site.
    fn path_of<'a>(&self, url: &'a str) -> &'a str {
        url.strip_prefix(self.base.as_str())
            .unwrap_or_else(|| panic!("{url} is not on {}", self.base))
    }
}

/// What the flow handled that must never reach a log, and the account it went through.
pub(crate) struct Secrets {
    values: Vec<(&'static str, String)>,
    /// The customer's full payto URI.
    pub(crate) payto: String,
    /// The customer's KYC access token.
    pub(crate) token: String,
}

#[tokio::test]
async fn the_offline_flow_works_out_of_the_box() {
    let server = TestServer::start().await;
    offline_flow(&Site::new(server.base.clone(), server.dir.path())).await;
    crate::evidence::assert_offline_flow_journal(server.dir.path());
    server.stop().await;
}

/// Runs the whole flow on `server`; answers the secrets it saw.
pub(crate) async fn offline_flow(server: &Site) -> Secrets {
    let dir = server.dir.clone();

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
    assert!(lines.next().unwrap().ends_with(&format!("kyc-spa/{token}")));

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
    let nonce = server
        .path_of(&redirect_url)
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
    let pin = outbox_pin(&dir);
    let solved = server
        .client
        .post(server.url(&format!("challenger/solve/{nonce}")))
        .header(CONTENT_TYPE, FORM)
        .header(ACCEPT, "text/html")
        .body(format!("pin={pin}"))
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
    // Reloading the callback ends on the same page.
    let replay = server.client.get(&proof_url).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        replay.headers()[LOCATION],
        server.url("exchange/kyc-done").as_str()
    );

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
    let code = proof_url
        .split(['?', '&'])
        .find_map(|pair| pair.strip_prefix("code="))
        .unwrap()
        .to_owned();
    let client = rusqlite::Connection::open(dir.join("data/talerbox.sqlite3"))
        .unwrap()
        .query_row(
            "SELECT value FROM talerbox_meta WHERE name = 'kyc_challenger_client:challenger'",
            [],
            |row| row.get::<_, String>(0),
        )
        .unwrap();
    let (_, client_secret) = client.split_once(' ').unwrap();
    Secrets {
        values: vec![
            ("password", "alice-password".to_owned()),
            ("address", "alice@example.com".to_owned()),
            ("address, URL-encoded", "alice%40example.com".to_owned()),
            ("KYC access token", token.clone()),
            ("challenger nonce", nonce),
            ("PIN", pin),
            ("authorization code", code),
            ("client secret", client_secret.to_owned()),
            (
                "client secret, base32 part",
                client_secret["secret-token:".len()..].to_owned(),
            ),
            ("officer private key", officer_priv),
            ("officer signature", signature.trim().to_owned()),
        ],
        payto,
        token,
    }
}

/// `talerbox -L trace serve` on `dir` with its log going to `dir/log`; answers the child and
/// its base URL.
fn serve_at_trace_level(dir: &Path) -> (Child, String) {
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_talerbox"))
        .arg("-c")
        .arg(dir.join("talerbox.conf"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["-L", "trace", "serve", "--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stderr(log)
        .spawn()
        .unwrap();
    for _ in 0..500 {
        let text = std::fs::read_to_string(dir.join("log")).unwrap();
        if let Some(line) = text.lines().find(|l| l.contains("listening on http://")) {
            let base = line.split("listening on ").nth(1).unwrap().to_owned();
            return (child, base);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not start");
}

#[tokio::test]
async fn a_trace_level_log_holds_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    config_file(dir.path(), "");
    let (mut child, base) = serve_at_trace_level(dir.path());
    let secrets = offline_flow(&Site::new(base, dir.path())).await;
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    // The log is a trace log indeed (debug lines are written; at trace everything is).
    assert!(log.contains("DEBUG") || log.contains("TRACE"), "{log}");
    // Dumps of raw traffic put a text column at the end of each line: joined, it shows
    // what a secret split over several lines would.
    let line_ends: String = log
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .collect();
    for (what, value) in &secrets.values {
        assert!(value.len() >= 8, "{what}: {value}");
        let lines: Vec<_> = log.lines().filter(|l| l.contains(value.as_str())).collect();
        assert!(lines.is_empty(), "the log shows the {what}: {lines:#?}");
        assert!(
            !line_ends.contains(value.as_str()),
            "the log shows the {what} across lines"
        );
    }
}

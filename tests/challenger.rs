//! The challenger over real HTTP (challenger.md §3–§9), driven as the exchange's oauth2 KYC
//! logic and a browser drive it; clients are registered with the CLI.

use std::io::Write;
use std::path::Path;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, LOCATION};
use reqwest::{RequestBuilder, Response};
use serde_json::{Value, json};

use crate::support::{TestServer, assert_error, talerbox};

const SECRET: &str = "secret-token:exchange-secret";
const REDIRECT: &str = "https://exchange.example/kyc-proof/challenger";
const FORM: &str = "application/x-www-form-urlencoded";

/// A server with one registered client, and an HTTP client that does not follow redirects.
struct Challenger {
    server: TestServer,
    http: reqwest::Client,
    client_id: String,
    prefix: String,
}

fn add_client(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "challenger",
        "client",
        "add",
        "--secret-unsafe",
        SECRET,
        "--redirect-uri",
        REDIRECT,
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = talerbox(dir, &args);
    assert_eq!(code, 0, "{err}");
    let id = out.lines().next().unwrap().to_owned();
    assert!(id.parse::<u64>().is_ok(), "{out}");
    id
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// The only run of 8 or more digits of a message.
fn pin_in(message: &str) -> String {
    let runs: Vec<&str> = message
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 8)
        .collect();
    assert_eq!(runs.len(), 1, "{message}");
    runs[0].to_owned()
}

/// Query parameters of a URL.
fn query(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(query).unwrap()
}

fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

impl Challenger {
    async fn start() -> Challenger {
        Challenger::start_with("").await
    }

    async fn start_with(extra: &str) -> Challenger {
        let server = TestServer::start_with(extra).await;
        let client_id = add_client(server.dir.path(), &[]);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Challenger {
            server,
            http,
            client_id,
            prefix: "challenger".into(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(&format!("{}/{path}", self.prefix))
    }

    fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path))
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path))
    }

    /// POST /setup as the exchange does: only the Authorization header, an empty body that
    /// libcurl labels as a form.
    async fn setup(&self) -> String {
        let response = self
            .post(&format!("setup/{}", self.client_id))
            .header(AUTHORIZATION, format!("Bearer {SECRET}"))
            .header(CONTENT_TYPE, FORM)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["nonce"].as_str().unwrap().to_owned()
    }

    fn authorize_path(&self, nonce: &str, extra: &str) -> String {
        let redirect: String = serde_urlencoded::to_string([("redirect_uri", REDIRECT)]).unwrap();
        format!(
            "authorize/{nonce}?response_type=code&client_id={}&{redirect}&state=STATE0{extra}",
            self.client_id
        )
    }

    async fn authorize(&self, nonce: &str, extra: &str) -> Response {
        self.get(&self.authorize_path(nonce, extra))
            .send()
            .await
            .unwrap()
    }

    async fn challenge(&self, nonce: &str, email: &str) -> Response {
        self.post(&format!("challenge/{nonce}"))
            .header(CONTENT_TYPE, FORM)
            .body(serde_urlencoded::to_string([("CONTACT_EMAIL", email)]).unwrap())
            .send()
            .await
            .unwrap()
    }

    async fn solve(&self, nonce: &str, pin: &str) -> Response {
        self.post(&format!("solve/{nonce}"))
            .header(CONTENT_TYPE, FORM)
            .body(format!("pin={pin}"))
            .send()
            .await
            .unwrap()
    }

    /// The PIN of the newest message in the outbox.
    fn outbox_pin(&self) -> String {
        let dir = self.server.dir.path().join("data/outbox");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        pin_in(&std::fs::read_to_string(files.last().unwrap()).unwrap())
    }

    fn token_form(&self, code: &str) -> Vec<(String, String)> {
        [
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "STATE0"),
            ("client_secret", SECRET),
            ("code", code),
            ("grant_type", "authorization_code"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    async fn token(&self, form: &[(String, String)]) -> Response {
        self.post("token")
            .header(CONTENT_TYPE, FORM)
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap()
    }

    /// setup → authorize → challenge → PIN → solve; answers the nonce and the code.
    async fn solved(&self, extra: &str) -> (String, String) {
        let nonce = self.setup().await;
        assert_eq!(self.authorize(&nonce, extra).await.status(), 200);
        assert_eq!(
            self.challenge(&nonce, "alice@example.com").await.status(),
            200
        );
        let response = self.solve(&nonce, &self.outbox_pin()).await;
        assert_eq!(response.status(), 302);
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        (nonce, param(&location, "code").unwrap())
    }

    async fn info(&self, token: &str) -> Response {
        self.get("info")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
    }
}

/// Asserts an RFC 6749 error body that also carries the Taler code.
async fn assert_oauth_error(response: Response, status: u16, error: &str, code: u64) {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["hint"].is_string(), "{body}");
}

// ---- /config ----

#[tokio::test]
async fn config_describes_the_instance() {
    let ch = Challenger::start().await;
    let config: Value = ch.get("config").send().await.unwrap().json().await.unwrap();
    assert_eq!(config["name"], "challenger");
    assert_eq!(config["version"], "6:0:5");
    assert_eq!(config["address_type"], "email");
    assert_eq!(config["address_hint"], "john@example.com");
    assert!(config["restrictions"]["CONTACT_EMAIL"]["regex"].is_string());
    assert_eq!(
        config["implementation"],
        "urn:net:taler:specs:challenger:talerbox"
    );
    ch.server.stop().await;
}

// ---- the whole flow ----

#[tokio::test]
async fn full_flow_as_the_exchange_drives_it() {
    let ch = Challenger::start().await;
    let nonce = ch.setup().await;
    assert_eq!(nonce.len(), 52);
    let status: Value = ch.authorize(&nonce, "").await.json().await.unwrap();
    assert_eq!(
        status,
        json!({"fix_address": false, "changes_left": 3, "retransmission_time": {"t_s": 0},
               "pin_transmissions_left": 3, "auth_attempts_left": 3, "solved": false})
    );
    let response = ch.challenge(&nonce, "alice@example.com").await;
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["type"], "created");
    assert_eq!(created["transmitted"], true);
    assert_eq!(created["attempts_left"], 3);
    assert_eq!(
        created["address"],
        json!({"CONTACT_EMAIL": "alice@example.com"})
    );
    assert!(created["retransmission_time"]["t_s"].as_u64().unwrap() > 0);
    // The outbox file names the address; the message names the nonce.
    let (code, out, _) = talerbox(ch.server.dir.path(), &["challenger", "outbox"]);
    assert_eq!(code, 0);
    assert!(out.contains("To: alice@example.com"), "{out}");
    assert!(out.contains(&nonce[..6]), "{out}");
    let pin = ch.outbox_pin();
    // No Accept header: a redirect to the client with code and state.
    let response = ch.solve(&nonce, &pin).await;
    assert_eq!(response.status(), 302);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "{location}"
    );
    assert_eq!(param(&location, "state").as_deref(), Some("STATE0"));
    let code = param(&location, "code").unwrap();
    let response = ch.token(&ch.token_form(&code)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let token: Value = response.json().await.unwrap();
    assert!(
        token["token_type"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("bearer")
    );
    assert_eq!(token["expires_in"], 3600);
    let access = token["access_token"].as_str().unwrap();
    assert!(!access.contains([' ', ';', '\n', '\r']));
    let response = ch.info(access).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let info: Value = response.json().await.unwrap();
    assert!(info["id"].is_u64(), "{info}");
    assert_eq!(
        info["address"],
        json!({"CONTACT_EMAIL": "alice@example.com"})
    );
    assert_eq!(info["address_type"], "email");
    assert_eq!(info["expires"], info["address_expiration"]);
    assert!(info["expires"]["t_s"].as_u64().unwrap() > 1_700_000_000);
    // The token stays usable; the code does not.
    assert_eq!(ch.info(access).await.status(), 200);
    let replay = ch.token(&ch.token_form(&code)).await;
    assert_oauth_error(replay, 401, "invalid_grant", 9753).await;
    assert_error(ch.info(access).await, 404, 9753).await;
    ch.server.stop().await;
}

#[tokio::test]
async fn pkce_s256_and_plain() {
    let ch = Challenger::start().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gXFG2CJ0k";
    let s256 = "qUyZDhNkq5Dh2c61N0TJUbT2uepXnj3V5UFKRo1XhCI";
    let (_, code) = ch
        .solved(&format!(
            "&code_challenge={s256}&code_challenge_method=S256"
        ))
        .await;
    let form = ch.token_form(&code);
    assert_oauth_error(ch.token(&form).await, 401, "invalid_grant", 9754).await;
    let mut wrong = form.clone();
    wrong.push(("code_verifier".into(), s256.into()));
    assert_oauth_error(ch.token(&wrong).await, 401, "invalid_grant", 9754).await;
    let mut right = form.clone();
    right.push(("code_verifier".into(), verifier.into()));
    assert_eq!(ch.token(&right).await.status(), 200);
    let (_, code) = ch.solved(&format!("&code_challenge={verifier}")).await;
    let mut plain = ch.token_form(&code);
    plain.push(("code_verifier".into(), verifier.into()));
    assert_eq!(ch.token(&plain).await.status(), 200);
    ch.server.stop().await;
}

#[tokio::test]
async fn json_clients_get_json_and_deflated_uploads_are_read() {
    let ch = Challenger::start().await;
    // A deflated JSON /setup body, labelled and (as the exchange sends it) unlabelled.
    let body = deflate(br#"{"CONTACT_EMAIL":"bob@example.com","read_only":true}"#);
    for labelled in [true, false] {
        let mut request = ch
            .post(&format!("setup/{}", ch.client_id))
            .header(AUTHORIZATION, format!("Bearer {SECRET}"))
            .header(
                CONTENT_TYPE,
                if labelled { "application/json" } else { FORM },
            )
            .body(body.clone());
        if labelled {
            request = request.header(CONTENT_ENCODING, "deflate");
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "labelled: {labelled}");
        let nonce: Value = response.json().await.unwrap();
        let nonce = nonce["nonce"].as_str().unwrap();
        let status: Value = ch.authorize(nonce, "").await.json().await.unwrap();
        assert_eq!(status["fix_address"], true);
        assert_eq!(status["last_address"]["CONTACT_EMAIL"], "bob@example.com");
    }
    // JSON at /challenge and /solve, and a JSON answer instead of the redirect.
    let nonce = ch.setup().await;
    let response = ch
        .post(&format!("challenge/{nonce}"))
        .json(&json!({"CONTACT_EMAIL": "carol@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = ch
        .post(&format!("solve/{nonce}"))
        .header(ACCEPT, "application/json")
        .json(&json!({"pin": ch.outbox_pin()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "completed");
    let code = param(body["redirect_url"].as_str().unwrap(), "code").unwrap();
    // /challenge of a solved validation: a fresh code.
    let again: Value = ch
        .challenge(&nonce, "carol@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["type"], "completed");
    let fresh = param(again["redirect_url"].as_str().unwrap(), "code").unwrap();
    assert_ne!(code, fresh);
    // No /authorize was made: no redirect_uri bound, the registered one is accepted.
    assert_eq!(ch.token(&ch.token_form(&fresh)).await.status(), 200);
    ch.server.stop().await;
}

// ---- errors of each endpoint ----

#[tokio::test]
async fn setup_errors() {
    let ch = Challenger::start().await;
    let path = format!("setup/{}", ch.client_id);
    let bearer = format!("Bearer {SECRET}");
    let send = |path: String, auth: Option<&str>, body: &'static str| {
        let mut request = ch.post(&path).header(CONTENT_TYPE, "application/json");
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth.to_owned());
        }
        request.body(body).send()
    };
    assert_error(send(path.clone(), None, "").await.unwrap(), 400, 25).await;
    assert_error(send(path.clone(), Some(SECRET), "").await.unwrap(), 400, 26).await;
    let bad_id = send("setup/abc".into(), Some(&bearer), "").await.unwrap();
    assert_error(bad_id, 400, 26).await;
    let wrong = send(path.clone(), Some("Bearer secret-token:wrong"), "")
        .await
        .unwrap();
    assert_error(wrong, 404, 9750).await;
    let unknown = send("setup/424242".into(), Some(&bearer), "")
        .await
        .unwrap();
    assert_error(unknown, 404, 9750).await;
    assert_error(
        send(path.clone(), Some(&bearer), "{").await.unwrap(),
        400,
        22,
    )
    .await;
    let bad_flag = send(path.clone(), Some(&bearer), r#"{"read_only": 1}"#)
        .await
        .unwrap();
    assert_error(bad_flag, 400, 26).await;
    // Not an object: the JSON code, as for every body (issue 12).
    assert_error(
        send(path.clone(), Some(&bearer), "[]").await.unwrap(),
        400,
        22,
    )
    .await;
    let big = ch
        .post(&path)
        .header(AUTHORIZATION, &bearer)
        .body(vec![b' '; 64 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_error(big, 413, 32).await;
    assert_eq!(send(path, Some(&bearer), "{}").await.unwrap().status(), 200);
    assert_error(ch.get("setup/1").send().await.unwrap(), 405, 20).await;
    ch.server.stop().await;
}

#[tokio::test]
async fn authorize_errors() {
    let ch = Challenger::start().await;
    let nonce = ch.setup().await;
    let get = |path: String| ch.get(&path).send();
    let unknown = "0".repeat(52);
    assert_error(
        get(format!("authorize/{unknown}?response_type=code"))
            .await
            .unwrap(),
        404,
        9755,
    )
    .await;
    assert_error(get(format!("authorize/{nonce}")).await.unwrap(), 400, 25).await;
    let wrong_type = format!("authorize/{nonce}?response_type=token&client_id=1");
    assert_error(get(wrong_type).await.unwrap(), 400, 26).await;
    let no_client = format!("authorize/{nonce}?response_type=code");
    assert_error(get(no_client).await.unwrap(), 400, 25).await;
    let bad_client = format!("authorize/{nonce}?response_type=code&client_id=x");
    assert_error(get(bad_client).await.unwrap(), 400, 26).await;
    let unknown_client = format!("authorize/{nonce}?response_type=code&client_id=999");
    assert_error(get(unknown_client).await.unwrap(), 404, 9750).await;
    let other = add_client(ch.server.dir.path(), &[]);
    let foreign = format!("authorize/{nonce}?response_type=code&client_id={other}");
    assert_error(get(foreign).await.unwrap(), 404, 9755).await;
    let evil = format!(
        "authorize/{nonce}?response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fevil.example%2F",
        ch.client_id
    );
    assert_error(get(evil).await.unwrap(), 403, 9751).await;
    let short_pkce = ch.authorize(&nonce, "&code_challenge=abc").await;
    assert_error(short_pkce, 400, 26).await;
    let method_only = ch.authorize(&nonce, "&code_challenge_method=S256").await;
    assert_error(method_only, 400, 26).await;
    // POST is the same as GET; its body is ignored.
    let response = ch
        .post(&ch.authorize_path(&nonce, ""))
        .header(CONTENT_TYPE, FORM)
        .body("response_type=token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    ch.server.stop().await;
}

#[tokio::test]
async fn challenge_errors_and_limits() {
    let ch = Challenger::start().await;
    let nonce = ch.setup().await;
    assert_error(
        ch.challenge(&"0".repeat(52), "a@example.com").await,
        404,
        9755,
    )
    .await;
    let empty = ch
        .post(&format!("challenge/{nonce}"))
        .header(CONTENT_TYPE, FORM)
        .send()
        .await
        .unwrap();
    assert_error(empty, 400, 25).await;
    assert_error(ch.challenge(&nonce, "no at sign").await, 400, 26).await;
    for address in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(ch.challenge(&nonce, address).await.status(), 200);
    }
    assert_error(ch.challenge(&nonce, "d@example.com").await, 429, 9757).await;
    // Same address again before the retransmission time: nothing sent.
    let again: Value = ch
        .challenge(&nonce, "c@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["transmitted"], false);
    // A read-only address cannot change.
    let fixed = ch
        .post(&format!("setup/{}", ch.client_id))
        .header(AUTHORIZATION, format!("Bearer {SECRET}"))
        .json(&json!({"CONTACT_EMAIL": "fixed@example.com", "read_only": true}))
        .send()
        .await
        .unwrap();
    let fixed: Value = fixed.json().await.unwrap();
    let fixed = fixed["nonce"].as_str().unwrap();
    assert_error(ch.challenge(fixed, "other@example.com").await, 403, 9760).await;
    assert_eq!(ch.challenge(fixed, "fixed@example.com").await.status(), 200);
    ch.server.stop().await;
}

#[tokio::test]
async fn resends_are_limited_by_count() {
    let ch = Challenger::start_with("[challenger]\nPIN_RETRANSMISSION_FREQUENCY = 0 s\n").await;
    let nonce = ch.setup().await;
    for left in [2, 1, 0] {
        let body: Value = ch
            .challenge(&nonce, "a@example.com")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["transmitted"], true, "{left}");
    }
    assert_error(ch.challenge(&nonce, "a@example.com").await, 429, 9757).await;
    let status: Value = ch.authorize(&nonce, "").await.json().await.unwrap();
    assert_eq!(status["pin_transmissions_left"], 0);
    ch.server.stop().await;
}

#[tokio::test]
async fn solve_errors_and_attempts() {
    let ch = Challenger::start().await;
    let nonce = ch.setup().await;
    let no_challenge = ch.solve(&nonce, "12345678").await;
    assert_eq!(no_challenge.status(), 403);
    let body: Value = no_challenge.json().await.unwrap();
    assert_eq!(body["no_challenge"], true);
    ch.challenge(&nonce, "a@example.com").await;
    let pin = ch.outbox_pin();
    let wrong = if pin == "00000000" {
        "00000001"
    } else {
        "00000000"
    };
    assert_error(ch.solve(&"0".repeat(52), wrong).await, 404, 9755).await;
    let missing = ch
        .post(&format!("solve/{nonce}"))
        .header(CONTENT_TYPE, FORM)
        .send()
        .await
        .unwrap();
    assert_error(missing, 400, 25).await;
    assert_error(ch.solve(&nonce, "12ab").await, 400, 26).await;
    for left in [2, 1, 0] {
        let response = ch.solve(&nonce, wrong).await;
        assert_eq!(response.status(), 403);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "pending");
        assert_eq!(
            (body["ec"].clone(), body["code"].clone()),
            (json!(9758), json!(9758))
        );
        assert_eq!(body["auth_attempts_left"], left);
        assert_eq!(body["addresses_left"], 2);
        assert_eq!(body["pin_transmissions_left"], 2);
        assert_eq!(body["exhausted"], false);
    }
    let exhausted = ch.solve(&nonce, &pin).await;
    let body = assert_error(exhausted, 429, 9757).await;
    assert_eq!(body["exhausted"], true);
    ch.server.stop().await;
}

#[tokio::test]
async fn token_errors() {
    let ch = Challenger::start().await;
    let (_, code) = ch.solved("").await;
    let form = ch.token_form(&code);
    let with = |name: &str, value: &str| {
        let mut form = form.clone();
        form.retain(|(k, _)| k != name);
        if !value.is_empty() {
            form.push((name.to_owned(), value.to_owned()));
        }
        form
    };
    for field in ["client_id", "client_secret", "code", "grant_type"] {
        assert_oauth_error(ch.token(&with(field, "")).await, 400, "invalid_request", 25).await;
    }
    let bad_id = ch.token(&with("client_id", "one")).await;
    assert_oauth_error(bad_id, 400, "invalid_request", 26).await;
    let grant = ch.token(&with("grant_type", "password")).await;
    assert_oauth_error(grant, 400, "unsupported_grant_type", 26).await;
    let unknown = ch.token(&with("client_id", "4242")).await;
    assert_oauth_error(unknown, 404, "invalid_client", 9750).await;
    let secret = ch.token(&with("client_secret", "secret-token:wrong")).await;
    assert_oauth_error(secret, 401, "invalid_client", 9750).await;
    let malformed = ch.token(&with("code", "not-a-code")).await;
    assert_oauth_error(malformed, 401, "invalid_grant", 9754).await;
    let unknown_code = ch.token(&with("code", &"0".repeat(52))).await;
    assert_oauth_error(unknown_code, 401, "invalid_grant", 9755).await;
    let redirect = ch
        .token(&with("redirect_uri", "https://evil.example/"))
        .await;
    assert_oauth_error(redirect, 401, "invalid_grant", 9751).await;
    // The code is bound to its client.
    let other = add_client(ch.server.dir.path(), &[]);
    let foreign = ch.token(&with("client_id", &other)).await;
    assert_oauth_error(foreign, 401, "invalid_grant", 9754).await;
    // None of this used the code up; JSON bodies work too.
    let object: serde_json::Map<String, Value> = form
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let response = ch.post("token").json(&object).send().await.unwrap();
    assert_eq!(response.status(), 200);
    ch.server.stop().await;
}

#[tokio::test]
async fn info_errors() {
    let ch = Challenger::start().await;
    assert_error(ch.get("info").send().await.unwrap(), 403, 25).await;
    let basic = ch.get("info").header(AUTHORIZATION, "Basic YTpi").send();
    assert_error(basic.await.unwrap(), 403, 26).await;
    assert_error(ch.info("short").await, 403, 26).await;
    assert_error(ch.info(&"0".repeat(52)).await, 404, 9753).await;
    ch.server.stop().await;
}

// ---- delivery by a helper command ----

fn helper(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_failing_helper_is_502_and_counts_for_nothing() {
    let scripts = tempfile::tempdir().unwrap();
    let failing = helper(scripts.path(), "fail.sh", "exit 1");
    let ch = Challenger::start_with(&format!("[challenger]\nAUTH_COMMAND = {failing}\n")).await;
    let nonce = ch.setup().await;
    let before: Value = ch.authorize(&nonce, "").await.json().await.unwrap();
    assert_error(ch.challenge(&nonce, "a@example.com").await, 502, 9752).await;
    let after: Value = ch.authorize(&nonce, "").await.json().await.unwrap();
    assert_eq!(before, after);
    ch.server.stop().await;
}

#[tokio::test]
async fn the_helper_gets_the_address_and_the_message() {
    let scripts = tempfile::tempdir().unwrap();
    let out = scripts.path().join("delivered");
    let body = format!("printf '%s\\n' \"$1\" > {0}; cat >> {0}", out.display());
    let script = helper(scripts.path(), "deliver.sh", &body);
    let ch = Challenger::start_with(&format!("[challenger]\nAUTH_COMMAND = {script}\n")).await;
    let nonce = ch.setup().await;
    assert_eq!(ch.challenge(&nonce, "a@example.com").await.status(), 200);
    let delivered = std::fs::read_to_string(out).unwrap();
    let (address, message) = delivered.split_once('\n').unwrap();
    assert_eq!(address, "a@example.com");
    let pin = pin_in(message);
    assert_eq!(ch.solve(&nonce, &pin).await.status(), 302);
    ch.server.stop().await;
}

// ---- browsers ----

#[tokio::test]
async fn browsers_get_pages_and_a_redirect() {
    let ch = Challenger::start().await;
    let nonce = ch.setup().await;
    let html = "text/html,application/xhtml+xml,*/*;q=0.8";
    let page = ch
        .get(&ch.authorize_path(&nonce, ""))
        .header(ACCEPT, html)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let text = page.text().await.unwrap();
    assert!(text.contains("name=\"CONTACT_EMAIL\""), "{text}");
    assert!(text.contains(&nonce[..6]));
    let browser_post = |path: String, body: String| {
        ch.post(&path)
            .header(ACCEPT, html)
            .header(CONTENT_TYPE, FORM)
            .body(body)
            .send()
    };
    let refused = browser_post(format!("challenge/{nonce}"), "CONTACT_EMAIL=nope".into())
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let text = refused.text().await.unwrap();
    assert!(text.contains("role=\"alert\"") && text.contains("name=\"CONTACT_EMAIL\""));
    let sent = browser_post(
        format!("challenge/{nonce}"),
        "CONTACT_EMAIL=a%40example.com".into(),
    )
    .await
    .unwrap();
    assert_eq!(sent.status(), 200);
    let text = sent.text().await.unwrap();
    assert!(
        text.contains("name=\"pin\"") && text.contains("3 attempts left"),
        "{text}"
    );
    let wrong = browser_post(format!("solve/{nonce}"), "pin=1".into())
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let text = wrong.text().await.unwrap();
    assert!(
        text.contains("2 attempts left") && text.contains("not right"),
        "{text}"
    );
    // Letters in the PIN: the same form again with the message, no attempt spent.
    let typo = browser_post(format!("solve/{nonce}"), "pin=12ab".into())
        .await
        .unwrap();
    assert_eq!(typo.status(), 400);
    let text = typo.text().await.unwrap();
    assert!(
        text.contains("name=\"pin\"")
            && text.contains("2 attempts left")
            && text.contains("role=\"alert\""),
        "{text}"
    );
    // The right PIN typed in two groups.
    let pin = ch.outbox_pin();
    let spaced = format!("pin={}+{}", &pin[..4], &pin[4..]);
    let right = browser_post(format!("solve/{nonce}"), spaced)
        .await
        .unwrap();
    assert_eq!(right.status(), 302);
    let gone = ch
        .get(&format!("authorize/{}", "0".repeat(52)))
        .header(ACCEPT, html)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert!(gone.text().await.unwrap().contains("expired"));
    ch.server.stop().await;
}

// ---- instances ----

#[tokio::test]
async fn each_instance_has_its_own_prefix_and_clients() {
    let mut ch = Challenger::start_with(
        "[challenger-phone]\nADDRESS_TYPE = phone\nADDRESS_HINT = +41 79 123 45 67\n",
    )
    .await;
    let phone = add_client(ch.server.dir.path(), &["--instance", "phone"]);
    let config: Value = ch
        .http
        .get(ch.server.url("challenger-phone/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["address_type"], "phone");
    assert_eq!(config["restrictions"], json!({}));
    // The default instance's client is unknown to the phone instance.
    let default_client = ch.client_id.clone();
    ch.prefix = "challenger-phone".into();
    let response = ch
        .post(&format!("setup/{default_client}"))
        .header(AUTHORIZATION, format!("Bearer {SECRET}"))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, 9750).await;
    ch.client_id = phone;
    let nonce = ch.setup().await;
    let response = ch
        .post(&format!("challenge/{nonce}"))
        .header(CONTENT_TYPE, FORM)
        .body("CONTACT_PHONE=%2B41791234567")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let outbox = ch.server.dir.path().join("data/outbox/phone");
    let files: Vec<_> = std::fs::read_dir(outbox).unwrap().collect();
    assert_eq!(files.len(), 1);
    let (code, out, _) = talerbox(
        ch.server.dir.path(),
        &["challenger", "outbox", "--instance", "phone"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("To: +41791234567"), "{out}");
    ch.server.stop().await;
}

// ---- the admin CLI ----

#[test]
fn client_admin_commands_work_on_a_fresh_installation() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("talerbox.conf"),
        "[challenger-sms]\nADDRESS_TYPE = phone\n",
    )
    .unwrap();
    assert_eq!(talerbox(dir.path(), &["init"]).0, 0);
    let first = add_client(dir.path(), &[]);
    let second = add_client(dir.path(), &[]);
    assert!(second.parse::<u64>().unwrap() > first.parse::<u64>().unwrap());
    let (code, out, _) = talerbox(dir.path(), &["challenger", "client", "list"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2);
    assert!(
        out.starts_with(&format!("{first}\t{REDIRECT}\t0\n")),
        "{out}"
    );
    let (code, _, _) = talerbox(dir.path(), &["challenger", "client", "delete", &first]);
    assert_eq!(code, 0);
    let (code, _, err) = talerbox(dir.path(), &["challenger", "client", "delete", &first]);
    assert_ne!(code, 0, "{err}");
    let (_, out, _) = talerbox(dir.path(), &["challenger", "client", "list"]);
    assert_eq!(out.lines().count(), 1);
    // Instances keep their own clients.
    let (_, out, _) = talerbox(
        dir.path(),
        &["challenger", "--instance", "sms", "client", "list"],
    );
    assert_eq!(out, "");
    let (code, _, err) = talerbox(dir.path(), &["challenger", "--instance", "nope", "outbox"]);
    assert_ne!(code, 0);
    assert!(err.contains("challenger-nope"), "{err}");
    let bad = [
        "challenger",
        "client",
        "add",
        "--secret-unsafe",
        "s",
        "--redirect-uri",
        "ftp://x/",
    ];
    let (code, _, _) = talerbox(dir.path(), &bad);
    assert_ne!(code, 0);
    let (code, out, _) = talerbox(dir.path(), &["challenger", "outbox"]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[tokio::test]
async fn wrong_pins_are_throttled_beyond_the_attempt_counter() {
    let ch = Challenger::start_with(
        "[challenger]\nMAX_AUTH_ATTEMPTS = 10\n\
         [talerbox]\nTHROTTLE_ACCOUNT_BURST = 1\nTHROTTLE_ACCOUNT_INTERVAL = 1 h\n",
    )
    .await;
    let nonce = ch.setup().await;
    assert_eq!(ch.challenge(&nonce, "a@example.com").await.status(), 200);
    let pin = ch.outbox_pin();
    let wrong = if pin.starts_with('1') { "2" } else { "1" }.repeat(pin.len());
    for _ in 0..2 {
        assert_error(ch.solve(&nonce, &wrong).await, 403, 9758).await;
    }
    // Attempts are left, but this validation's budget from this address is spent.
    let throttled = ch.solve(&nonce, &pin).await;
    assert!(throttled.headers().contains_key("retry-after"));
    assert_error(throttled, 429, 9757).await;
    ch.server.stop().await;
}

#[tokio::test]
async fn parallel_pin_submissions_take_turns() {
    // Budgets out of the way: this is about the challenger's own rules.
    let ch = Challenger::start_with(
        "[talerbox]\nTHROTTLE_ADDRESS_BURST = 1000\nTHROTTLE_ACCOUNT_BURST = 1000\n",
    )
    .await;
    let wrong_of = |pin: &str| if pin.starts_with('1') { "2" } else { "1" }.repeat(pin.len());

    // 32 wrong PINs at once: the 3 attempts are spent by exactly 3, the rest find none left.
    let nonce = ch.setup().await;
    assert_eq!(ch.challenge(&nonce, "a@example.com").await.status(), 200);
    let wrong = wrong_of(&ch.outbox_pin());
    let answers = futures_util::future::join_all((0..32).map(|_| ch.solve(&nonce, &wrong))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        29,
        "{statuses:?}"
    );

    // 32 right PINs at once: each is answered with a code of its own.
    let nonce = ch.setup().await;
    assert_eq!(ch.challenge(&nonce, "b@example.com").await.status(), 200);
    let pin = ch.outbox_pin();
    let answers = futures_util::future::join_all((0..32).map(|_| ch.solve(&nonce, &pin))).await;
    let mut codes = std::collections::HashSet::new();
    for answer in &answers {
        assert_eq!(answer.status(), 302, "{:?}", answer.headers());
        let location = answer.headers()[LOCATION].to_str().unwrap();
        codes.insert(param(location, "code").unwrap());
    }
    assert_eq!(codes.len(), 32);

    // Solved: a wrong PIN gets no code.
    let refused = ch.solve(&nonce, &wrong_of(&pin)).await;
    assert!(!refused.headers().contains_key(LOCATION));
    assert_error(refused, 403, 9758).await;
    ch.server.stop().await;
}

#[tokio::test]
async fn arrays_and_scalars_are_not_bodies() {
    let ch = Challenger::start().await;
    let setup = format!("setup/{}", ch.client_id);
    for body in ["[]", r#"["a@example.com"]"#, "\"x\"", "7", "true"] {
        let answer = ch
            .post(&setup)
            .header(AUTHORIZATION, format!("Bearer {SECRET}"))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(answer, 400, 22).await;
        // The client is authenticated before its body is looked at.
        let stranger = ch
            .post(&setup)
            .header(AUTHORIZATION, "Bearer secret-token:wrong")
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(stranger, 404, 9750).await;
    }
    let nonce = ch.setup().await;
    assert_eq!(ch.authorize(&nonce, "").await.status(), 200);
    for body in ["[]", r#"["a@example.com"]"#, "\"x\"", "7"] {
        for step in ["challenge", "solve"] {
            let answer = ch
                .post(&format!("{step}/{nonce}"))
                .header(ACCEPT, "application/json")
                .header(CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_error(answer, 400, 22).await;
        }
    }
    ch.server.stop().await;
}

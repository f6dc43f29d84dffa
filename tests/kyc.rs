//! The exchange's KYC process over real HTTP (exchange-kyc spec §4–§9): kyc-info with ETags and
//! long polls, kyc-start, kyc-upload, kyc-proof with the built-in challenger, the admin trigger
//! and `talerbox kyc trigger`.

use std::time::{Duration, Instant};

use reqwest::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION,
};
use reqwest::{RequestBuilder, Response};
use serde_json::{Value, json};
use talerbox::domain::kyc::{AccessToken, RequirementId};

use crate::support::{TestServer, assert_error, outbox_pin, talerbox};

const ADMIN: &str = "secret-token:kyc-admin";
const ALICE: &str = "payto://iban/DE89370400440532013000?receiver-name=Alice";
const BOB: &str = "payto://x-taler-bank/localhost/bob?receiver-name=Bob";
const FORM: &str = "application/x-www-form-urlencoded";
const PERSONAL_FORM: &str = "full_name_and_birthdate";

/// The admin trigger enabled, and a measure with the INFO check.
const CONFIG: &str = "[exchange]\nADMIN_TOKEN = secret-token:kyc-admin\n\n\
    [kyc-measure-info]\nCHECK_NAME = info-frozen\nPROGRAM = accept\nCONTEXT = {}\n";

/// A server with KYC enabled as configured above, and a client that does not follow redirects.
struct Kyc {
    server: TestServer,
    http: reqwest::Client,
}

/// What the admin trigger answered.
struct Opened {
    token: String,
    h_payto: String,
    row: u64,
}

impl Kyc {
    async fn start() -> Kyc {
        Kyc::start_with(CONFIG).await
    }

    async fn start_with(extra: &str) -> Kyc {
        let server = TestServer::start_with(extra).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Kyc { server, http }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(&format!("exchange/{path}"))
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path))
    }

    fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path))
    }

    async fn trigger_raw(&self, payto: &str, measures: &str) -> Response {
        self.post("admin/kyc-trigger")
            .header(AUTHORIZATION, format!("Bearer {ADMIN}"))
            .json(&json!({"payto_uri": payto, "measures": measures}))
            .send()
            .await
            .unwrap()
    }

    async fn trigger(&self, payto: &str, measures: &str) -> Opened {
        let response = self.trigger_raw(payto, measures).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        Opened {
            token: body["access_token"].as_str().unwrap().to_owned(),
            h_payto: body["h_normalized_payto"].as_str().unwrap().to_owned(),
            row: body["requirement_row"].as_u64().unwrap(),
        }
    }

    async fn info(&self, token: &str) -> Response {
        self.get(&format!("kyc-info/{token}")).send().await.unwrap()
    }

    /// kyc-info's requirements (asserting 200) and its ETag.
    async fn requirements(&self, token: &str) -> (Vec<Value>, String) {
        let response = self.info(token).await;
        assert_eq!(response.status(), 200);
        let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        (body["requirements"].as_array().unwrap().clone(), etag)
    }

    async fn kyc_start(&self, id: &str) -> Response {
        self.post(&format!("kyc-start/{id}"))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
    }

    async fn upload(&self, id: &str, body: &Value) -> Response {
        self.post(&format!("kyc-upload/{id}"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn proof(&self, query: &str) -> Response {
        self.get(&format!("kyc-proof/challenger{query}"))
            .send()
            .await
            .unwrap()
    }
}

fn personal(name: &str) -> Value {
    json!({"FORM_ID": PERSONAL_FORM, "FULL_NAME": name, "DATE_OF_BIRTH": "1990-01-31"})
}

/// The id of requirement `index` of measure set `serial` (for requirements kyc-info shows
/// without one, or with an index it does not show).
fn id_for(token: &str, serial: u64, index: u32) -> String {
    RequirementId::new(&AccessToken::parse(token).unwrap(), serial, index).to_string()
}

fn id_of(requirement: &Value) -> String {
    requirement["id"].as_str().unwrap().to_owned()
}

/// Asserts an HTML page (kyc-proof) with `status` that shows the numeric `code`.
async fn assert_page(response: Response, status: u16, code: u64) {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let body = response.text().await.unwrap();
    assert!(body.contains(&code.to_string()), "{body}");
}

/// Query parameters of a URL.
fn query(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(query).unwrap()
}

fn param(url: &str, name: &str) -> String {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

// ---- admin trigger (§8) ----

#[tokio::test]
async fn admin_trigger_exists_only_with_a_token() {
    let kyc = Kyc::start_with("").await;
    let response = kyc
        .post("admin/kyc-trigger")
        .header(AUTHORIZATION, format!("Bearer {ADMIN}"))
        .json(&json!({"payto_uri": ALICE, "measures": "email"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, 21).await;
}

#[tokio::test]
async fn admin_trigger_answers_and_refuses() {
    let kyc = Kyc::start().await;
    let body = json!({"payto_uri": ALICE, "measures": "email"});
    for auth in [None, Some("Bearer wrong"), Some(ADMIN)] {
        let mut request = kyc.post("admin/kyc-trigger").json(&body);
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        assert_error(request.send().await.unwrap(), 401, 40).await;
    }

    let response = kyc.trigger_raw(ALICE, "email").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let object = body.as_object().unwrap();
    assert_eq!(object.len(), 3, "{body}");
    assert_eq!(body["h_normalized_payto"].as_str().unwrap().len(), 52);
    assert!(AccessToken::parse(body["access_token"].as_str().unwrap()).is_some());
    assert!(body["requirement_row"].as_u64().unwrap() > 0);

    // The same account keeps its token; a new set gets a new row.
    let again = kyc.trigger(ALICE, "personal").await;
    assert_eq!(again.token, body["access_token"]);
    assert_eq!(again.h_payto, body["h_normalized_payto"]);
    assert!(again.row > body["requirement_row"].as_u64().unwrap());

    assert_error(kyc.trigger_raw(ALICE, "no-such-measure").await, 400, 26).await;
    assert_error(kyc.trigger_raw("not a payto", "email").await, 400, 26).await;
    assert_error(
        kyc.trigger_raw("payto://iban/DE89370400440532013000", "email")
            .await,
        400,
        26,
    )
    .await;
}

// ---- kyc-info (§4) ----

#[tokio::test]
async fn kyc_info_token_and_timeout_errors() {
    let kyc = Kyc::start().await;
    assert_error(kyc.info("short").await, 400, 26).await;
    assert_error(kyc.info(&"0".repeat(53)).await, 400, 26).await;
    assert_error(kyc.info(&"~".repeat(52)).await, 400, 26).await;
    let unknown = AccessToken([7; 32]).to_base32();
    assert_error(kyc.info(&unknown).await, 403, 1919).await;

    let opened = kyc.trigger(ALICE, "email").await;
    for bad in ["abc", "-1", "1.5", ""] {
        let response = kyc
            .get(&format!("kyc-info/{}?timeout_ms={bad}", opened.token))
            .send()
            .await
            .unwrap();
        assert_error(response, 400, 26).await;
    }
}

#[tokio::test]
async fn kyc_info_lists_requirements_with_etag() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "email personal info").await;
    let response = kyc.info(&opened.token).await;
    assert_eq!(response.status(), 200);
    let etag = format!("\"{}-0\"", opened.row);
    assert_eq!(response.headers()[ETAG], etag.as_str());
    assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["is_and_combinator"], false);
    assert_eq!(body["voluntary_measures"], json!([]));
    let requirements = body["requirements"].as_array().unwrap();
    assert_eq!(requirements.len(), 3, "{body}");

    assert_eq!(requirements[0]["form"], "LINK");
    assert_eq!(
        requirements[0]["description"],
        "Confirm your e-mail address"
    );
    assert_eq!(
        id_of(&requirements[0]),
        id_for(&opened.token, opened.row, 0)
    );
    assert_eq!(requirements[1]["form"], PERSONAL_FORM);
    assert_eq!(requirements[1]["description"], "Tell us who you are");
    assert_eq!(
        id_of(&requirements[1]),
        id_for(&opened.token, opened.row, 1)
    );
    assert_eq!(requirements[2]["form"], "INFO");
    assert_eq!(
        requirements[2]["description"],
        "Your account is under review"
    );
    assert!(requirements[2].get("id").is_none(), "{body}");

    // The same ETag: 304, empty body, same headers.
    let response = kyc
        .get(&format!("kyc-info/{}", opened.token))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()[ETAG], etag.as_str());
    assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
    assert!(response.bytes().await.unwrap().is_empty());

    // Another or a malformed ETag: the full answer.
    for other in ["\"1-1\"", "garbage", &etag[1..etag.len() - 1]] {
        let response = kyc
            .get(&format!("kyc-info/{}", opened.token))
            .header(IF_NONE_MATCH, other)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{other}");
    }

    // An AND set says so.
    let and = kyc.trigger(BOB, "+ personal info").await;
    let body: Value = kyc.info(&and.token).await.json().await.unwrap();
    assert_eq!(body["is_and_combinator"], true);
    assert_eq!(body["requirements"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn kyc_info_is_204_when_nothing_is_open() {
    let kyc = Kyc::start().await;
    // `freeze` is a SKIP measure: its program runs at once and nothing stays open.
    let opened = kyc.trigger(ALICE, "freeze").await;
    let response = kyc.info(&opened.token).await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());

    // At once, even with a timeout.
    let begin = Instant::now();
    let response = kyc
        .get(&format!("kyc-info/{}?timeout_ms=5000", opened.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(begin.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn kyc_info_long_poll_times_out_with_304() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "personal").await;
    let (_, etag) = kyc.requirements(&opened.token).await;
    let begin = Instant::now();
    let response = kyc
        .get(&format!("kyc-info/{}?timeout_ms=300", opened.token))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()[ETAG], etag.as_str());
    assert!(begin.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn kyc_info_long_poll_returns_when_an_upload_satisfies_it() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "personal").await;
    let (requirements, etag) = kyc.requirements(&opened.token).await;
    let id = id_of(&requirements[0]);

    let poll = {
        let request = kyc
            .get(&format!("kyc-info/{}?timeout_ms=5000", opened.token))
            .header(IF_NONE_MATCH, &etag);
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), Instant::now())
        })
    };
    // Let the poll reach the server (if it comes late it sees the change at once anyway).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!poll.is_finished());
    let begin = Instant::now();
    assert_eq!(kyc.upload(&id, &personal("Alice")).await.status(), 204);
    let (status, returned) = poll.await.unwrap();
    assert_eq!(status, 204);
    let waited = returned.saturating_duration_since(begin);
    assert!(waited < Duration::from_secs(1), "{waited:?}");
}

#[tokio::test]
async fn kyc_info_long_poll_wakes_on_a_cli_trigger() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "personal").await;
    let (_, etag) = kyc.requirements(&opened.token).await;

    let poll = {
        let request = kyc
            .get(&format!("kyc-info/{}?timeout_ms=8000", opened.token))
            .header(IF_NONE_MATCH, &etag);
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let returned = Instant::now();
            let status = response.status().as_u16();
            let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
            let body: Value = response.json().await.unwrap();
            (status, etag, body, returned)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!poll.is_finished());
    let dir = kyc.server.dir.path().to_owned();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        talerbox(&dir, &["kyc", "trigger", ALICE, "--measure", "email"])
    })
    .await
    .unwrap();
    let exited = Instant::now();
    assert_eq!(code, 0, "{err}");

    // Line 1: the token alone (the account's, unchanged); line 2: the hash; line 3: the URL.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0].len(), 52);
    assert_eq!(lines[0], opened.token);
    assert_eq!(lines[1].len(), 52);
    assert!(lines[2].starts_with("http"), "{out}");
    assert!(
        lines[2].ends_with(&format!("/exchange/kyc-spa/{}", opened.token)),
        "{out}"
    );

    let (status, new_etag, body, returned) = poll.await.unwrap();
    assert_eq!(status, 200);
    assert_ne!(new_etag, etag);
    assert_eq!(body["requirements"][0]["form"], "LINK");
    let waited = returned.saturating_duration_since(exited);
    assert!(waited < Duration::from_millis(1500), "{waited:?}");

    // Again, long after the server started.
    let poll = {
        let request = kyc
            .get(&format!("kyc-info/{}?timeout_ms=8000", opened.token))
            .header(IF_NONE_MATCH, &new_etag);
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!poll.is_finished());
    let dir = kyc.server.dir.path().to_owned();
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        talerbox(&dir, &["kyc", "trigger", ALICE, "--measure", "personal"])
    })
    .await
    .unwrap();
    let exited = Instant::now();
    assert_eq!(code, 0, "{err}");
    let (status, returned) = poll.await.unwrap();
    assert_eq!(status, 200);
    let waited = returned.saturating_duration_since(exited);
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
}

#[test]
fn cli_trigger_prints_token_then_url() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::config_file(dir.path(), "");
    assert_eq!(talerbox(dir.path(), &["init"]).0, 0);
    let (code, out, err) = talerbox(dir.path(), &["kyc", "trigger", BOB, "--measure", "email"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let token = lines[0];
    assert_eq!(token.len(), 52);
    assert!(AccessToken::parse(token).is_some(), "{token}");
    let hash = talerbox::domain::primitives::Payto::parse_full(BOB)
        .unwrap()
        .h_normalized();
    assert_eq!(lines[1], hash.to_string());
    assert_eq!(
        lines[2],
        format!("http://127.0.0.1:8080/exchange/kyc-spa/{token}")
    );

    // A misspelled measure is named, with the valid ones.
    let (code, _, err) = talerbox(dir.path(), &["kyc", "trigger", BOB, "--measure", "emial"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("\"emial\"") && err.contains("email") && err.contains("personal"),
        "{err}"
    );
}

// ---- kyc-start (§5) ----

#[tokio::test]
async fn kyc_start_id_errors() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "email personal info").await;
    let other = kyc.trigger(BOB, "email").await;
    let link = id_for(&opened.token, opened.row, 0);
    let (hash, _) = link.split_once('-').unwrap();

    assert_error(kyc.kyc_start("nodash").await, 404, 21).await;
    for malformed in [
        "AAAA-0-1".to_owned(),
        format!("{hash}-0"),
        format!("{hash}-0-"),
        format!("{hash}-x-{}", opened.row),
        format!("{hash}-0-+{}", opened.row),
        format!("{hash}-0-{}-1", opened.row),
        format!("{hash}-4294967296-{}", opened.row),
        format!("{hash}-0-18446744073709551616"),
    ] {
        assert_error(kyc.kyc_start(&malformed).await, 400, 26).await;
    }
    // Unknown serials, also beyond i64.
    assert_error(kyc.kyc_start(&format!("{hash}-0-999999")).await, 404, 21).await;
    assert_error(
        kyc.kyc_start(&format!("{hash}-0-18446744073709551615"))
            .await,
        404,
        21,
    )
    .await;
    // Another account's hash, and the hash of another index.
    let foreign = id_for(&other.token, opened.row, 0);
    assert_error(kyc.kyc_start(&foreign).await, 404, 21).await;
    assert_error(
        kyc.kyc_start(&format!("{hash}-1-{}", opened.row)).await,
        404,
        21,
    )
    .await;
    // Leading zeros are fine.
    let padded = id_for(&opened.token, opened.row, 0).replacen("-0-", "-000-", 1);
    assert_eq!(kyc.kyc_start(&padded).await.status(), 200);

    // An index past the set, FORM and INFO requirements.
    let past = id_for(&opened.token, opened.row, 3);
    assert_error(kyc.kyc_start(&past).await, 400, 1943).await;
    let form = id_for(&opened.token, opened.row, 1);
    assert_error(kyc.kyc_start(&form).await, 409, 1944).await;
    let info = id_for(&opened.token, opened.row, 2);
    assert_error(kyc.kyc_start(&info).await, 409, 1944).await;
}

#[tokio::test]
async fn kyc_start_bodies() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "email").await;
    let (requirements, _) = kyc.requirements(&opened.token).await;
    let id = id_of(&requirements[0]);
    let path = format!("kyc-start/{id}");

    let malformed = kyc
        .post(&path)
        .header(CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, 22).await;

    // Over 64 KiB, announced or streamed.
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(64 * 1024));
    let response = kyc
        .post(&path)
        .header(CONTENT_TYPE, "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_error(response, 413, 32).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(8192)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let response = kyc
        .post(&path)
        .header(CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, 32).await;

    // An empty body counts as `{}`; a body just under the limit is fine.
    let empty = kyc
        .post(&path)
        .header(CONTENT_LENGTH, 0)
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 200);
    let near = format!("{{\"pad\": \"{}\"}}", "x".repeat(60 * 1024));
    let response = kyc
        .post(&path)
        .header(CONTENT_TYPE, "application/json")
        .body(near)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn kyc_start_is_idempotent_and_points_at_the_challenger() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "email").await;
    let (requirements, _) = kyc.requirements(&opened.token).await;
    let id = id_of(&requirements[0]);

    let first = kyc.kyc_start(&id).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first.as_object().unwrap().len(), 1, "{first}");
    let url = first["redirect_url"].as_str().unwrap().to_owned();
    let second: Value = kyc.kyc_start(&id).await.json().await.unwrap();
    assert_eq!(second["redirect_url"], url.as_str());

    let authorize = kyc.server.url("challenger/authorize/");
    let rest = url
        .strip_prefix(&authorize)
        .unwrap_or_else(|| panic!("{url}"));
    let nonce = rest.split('?').next().unwrap();
    assert!(!nonce.is_empty() && !nonce.contains('/'), "{url}");
    assert_eq!(param(&url, "response_type"), "code");
    assert!(param(&url, "client_id").parse::<u64>().is_ok(), "{url}");
    assert_eq!(param(&url, "redirect_uri"), kyc.url("kyc-proof/challenger"));
    assert_eq!(param(&url, "state"), opened.h_payto);

    // The challenger knows the nonce: its authorize page answers.
    let page = kyc.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
}

#[tokio::test]
async fn concurrent_kyc_starts_answer_one_url() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "email").await;
    let (requirements, _) = kyc.requirements(&opened.token).await;
    let url = kyc.url(&format!("kyc-start/{}", id_of(&requirements[0])));
    let starts: Vec<_> = (0..16)
        .map(|_| {
            let request = kyc.http.post(&url).json(&json!({}));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.unwrap();
                body["redirect_url"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut urls = Vec::new();
    for start in starts {
        urls.push(start.await.unwrap());
    }
    urls.dedup();
    assert_eq!(urls.len(), 1, "{urls:?}");
    // One start set up one validation at the challenger, however many raced.
    let db =
        rusqlite::Connection::open(kyc.server.dir.path().join("data/talerbox.sqlite3")).unwrap();
    let validations: i64 = db
        .query_row("SELECT COUNT(*) FROM challenger_validations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(validations, 1);
    let again: Value = kyc
        .kyc_start(&id_of(&requirements[0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["redirect_url"], urls[0].as_str());
}

// ---- kyc-upload (§7) ----

#[tokio::test]
async fn kyc_upload_stores_once_and_replays() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "email personal").await;
    let (requirements, _) = kyc.requirements(&opened.token).await;
    let link = id_of(&requirements[0]);
    let form = id_of(&requirements[1]);

    // Extra attributes are accepted.
    let mut attributes = personal("Alice");
    attributes["NATIONALITY"] = json!("DE");
    let response = kyc.upload(&form, &attributes).await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    // The set is finished: nothing open any more, and it cannot be started.
    assert_eq!(kyc.info(&opened.token).await.status(), 204);
    assert_error(kyc.kyc_start(&link).await, 409, 1941).await;

    // The same upload again: 204; anything else: 409/1941.
    assert_eq!(kyc.upload(&form, &attributes).await.status(), 204);
    assert_error(kyc.upload(&form, &personal("Alice")).await, 409, 1941).await;
    assert_error(kyc.upload(&form, &personal("Mallory")).await, 409, 1941).await;
    assert_error(kyc.upload(&link, &attributes).await, 409, 1941).await;
}

#[tokio::test]
async fn kyc_upload_refusals_store_nothing() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "email personal info").await;
    let (requirements, etag) = kyc.requirements(&opened.token).await;
    let link = id_of(&requirements[0]);
    let form = id_of(&requirements[1]);
    let (hash, _) = form.split_once('-').unwrap();

    let body = kyc
        .upload(
            &form,
            &json!({"FORM_ID": PERSONAL_FORM, "FULL_NAME": "Alice"}),
        )
        .await;
    let body = assert_error(body, 400, 1921).await;
    assert_eq!(body["detail"], "DATE_OF_BIRTH");
    let body = kyc
        .upload(
            &form,
            &json!({"FORM_ID": PERSONAL_FORM, "DATE_OF_BIRTH": "1990-01-31"}),
        )
        .await;
    assert_eq!(assert_error(body, 400, 1921).await["detail"], "FULL_NAME");

    let mut wrong_form = personal("Alice");
    wrong_form["FORM_ID"] = json!("another_form");
    assert_error(kyc.upload(&form, &wrong_form).await, 400, 26).await;
    let mut no_form = personal("Alice");
    no_form.as_object_mut().unwrap().remove("FORM_ID");
    assert_error(kyc.upload(&form, &no_form).await, 400, 26).await;
    let text = kyc
        .post(&format!("kyc-upload/{form}"))
        .header(CONTENT_TYPE, "text/plain")
        .body("FULL_NAME=Alice")
        .send()
        .await
        .unwrap();
    assert_error(text, 400, 26).await;
    let not_json = kyc
        .post(&format!("kyc-upload/{form}"))
        .header(CONTENT_TYPE, "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(not_json, 400, 22).await;

    // Not a form: LINK and INFO requirements; an index past the set.
    assert_error(kyc.upload(&link, &personal("Alice")).await, 400, 1923).await;
    let info = id_for(&opened.token, opened.row, 2);
    assert_error(kyc.upload(&info, &personal("Alice")).await, 400, 1923).await;
    let past = id_for(&opened.token, opened.row, 9);
    assert_error(kyc.upload(&past, &personal("Alice")).await, 400, 1943).await;

    // Unknown serial, wrong hash; malformed ids.
    let unknown = format!("{hash}-1-999999");
    assert_error(kyc.upload(&unknown, &personal("Alice")).await, 404, 1939).await;
    let other = kyc.trigger(BOB, "personal").await;
    let foreign = id_for(&other.token, opened.row, 1);
    assert_error(kyc.upload(&foreign, &personal("Alice")).await, 404, 1939).await;
    assert_error(kyc.upload("nodash", &personal("Alice")).await, 404, 21).await;
    assert_error(
        kyc.upload(&format!("{hash}-1-x"), &personal("Alice")).await,
        400,
        26,
    )
    .await;

    // Nothing was stored: the requirement is still open, unchanged.
    let (still, same_etag) = kyc.requirements(&opened.token).await;
    assert_eq!(same_etag, etag);
    assert_eq!(still, requirements);
    assert_eq!(kyc.upload(&form, &personal("Alice")).await.status(), 204);
}

#[tokio::test]
async fn kyc_upload_checks_the_id_before_it_parses_the_body() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "personal").await;
    let (requirements, _) = kyc.requirements(&opened.token).await;
    let form = id_of(&requirements[0]);
    let (hash, _) = form.split_once('-').unwrap();
    // A large body that is not even JSON: an unknown id is refused for the id, not the body.
    let garbage = format!("[{}", "1,".repeat(4 * 1024 * 1024));
    let unknown = kyc
        .post(&format!("kyc-upload/{hash}-0-999999"))
        .header(CONTENT_TYPE, "application/json")
        .body(garbage.clone())
        .send()
        .await
        .unwrap();
    assert_error(unknown, 404, 1939).await;
    // With a valid id, anything but a JSON object is refused without being parsed.
    let array = kyc
        .post(&format!("kyc-upload/{form}"))
        .header(CONTENT_TYPE, "application/json")
        .body(garbage)
        .send()
        .await
        .unwrap();
    assert_error(array, 400, 22).await;
    assert_eq!(kyc.upload(&form, &personal("Alice")).await.status(), 204);
}

#[tokio::test]
async fn kyc_upload_accepts_an_html_form() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "personal").await;
    let (requirements, _) = kyc.requirements(&opened.token).await;
    let form = id_of(&requirements[0]);
    let body = serde_urlencoded::to_string([
        ("FORM_ID", PERSONAL_FORM),
        ("FULL_NAME", "Alice Doe"),
        ("DATE_OF_BIRTH", "1990-01-31"),
    ])
    .unwrap();
    let response = kyc
        .post(&format!("kyc-upload/{form}"))
        .header(CONTENT_TYPE, format!("{FORM}; charset=utf-8"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(kyc.info(&opened.token).await.status(), 204);
    // The replay as JSON with the same strings is the same upload.
    assert_eq!(
        kyc.upload(
            &form,
            &json!({"FORM_ID": PERSONAL_FORM, "FULL_NAME": "Alice Doe", "DATE_OF_BIRTH": "1990-01-31"})
        )
        .await
        .status(),
        204
    );
    // A form without a field names it.
    let bob = kyc.trigger(BOB, "personal").await;
    let (requirements, _) = kyc.requirements(&bob.token).await;
    let response = kyc
        .post(&format!("kyc-upload/{}", id_of(&requirements[0])))
        .header(CONTENT_TYPE, FORM)
        .body(format!("FORM_ID={PERSONAL_FORM}&FULL_NAME=Bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error(response, 400, 1921).await["detail"],
        "DATE_OF_BIRTH"
    );
}

#[tokio::test]
async fn kyc_upload_accepts_a_multipart_form_with_files() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "personal").await;
    let (requirements, _) = kyc.requirements(&opened.token).await;
    let form = id_of(&requirements[0]);
    let boundary = "talerbox-test-boundary";
    let part = |name: &str, value: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    };
    let body = format!(
        "{}{}{}--{boundary}\r\nContent-Disposition: form-data; name=\"ID_SCAN\"; filename=\"id.txt\"\r\nContent-Type: text/plain\r\n\r\nfoo\r\n--{boundary}--\r\n",
        part("FORM_ID", PERSONAL_FORM),
        part("FULL_NAME", "Alice Doe"),
        part("DATE_OF_BIRTH", "1990-01-31"),
    );
    let upload = |body: String| {
        kyc.post(&format!("kyc-upload/{form}"))
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
    };
    assert_eq!(upload(body.clone()).await.unwrap().status(), 204);
    assert_eq!(kyc.info(&opened.token).await.status(), 204);
    // The same form again is a replay; the file's bytes travel as base32 ("foo" = CSQPY).
    assert_eq!(upload(body).await.unwrap().status(), 204);
    let file = json!({"filename": "id.txt", "content_type": "text/plain", "data": "CSQPY"});
    let same_as_json = json!({"FORM_ID": PERSONAL_FORM, "FULL_NAME": "Alice Doe", "DATE_OF_BIRTH": "1990-01-31", "ID_SCAN": file});
    assert_eq!(kyc.upload(&form, &same_as_json).await.status(), 204);
    // A broken multipart body is malformed.
    let broken = upload(format!("--{boundary}\r\nnonsense")).await.unwrap();
    assert_error(broken, 400, 26).await;
}

// ---- kyc-proof (§6) and the whole flow with the built-in challenger ----

#[tokio::test]
async fn kyc_proof_errors() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "email").await;

    let response = kyc
        .get(&format!("kyc-proof/nope?state={}&code=x", opened.h_payto))
        .send()
        .await
        .unwrap();
    assert_page(response, 404, 1931).await;
    let response = kyc
        .get(&format!(
            "kyc-proof/CHALLENGER?state={}&code=x",
            opened.h_payto
        ))
        .send()
        .await
        .unwrap();
    assert_page(response, 400, 26).await;
    assert_error(kyc.proof("?code=x").await, 400, 25).await;
    assert_error(kyc.proof("?state=nope&code=x").await, 400, 26).await;
    // No process started yet.
    let query = format!("?state={}&code=x", opened.h_payto);
    assert_page(kyc.proof(&query).await, 404, 1929).await;

    // Started: neither code nor error → 400, the process stays open; an error fails it.
    let (requirements, _) = kyc.requirements(&opened.token).await;
    assert_eq!(kyc.kyc_start(&id_of(&requirements[0])).await.status(), 200);
    assert_page(
        kyc.proof(&format!("?state={}", opened.h_payto)).await,
        400,
        26,
    )
    .await;
    let pending = format!("?state={}&error=temporarily_unavailable", opened.h_payto);
    assert_page(kyc.proof(&pending).await, 403, 1038).await;
    let denied = format!("?state={}&error=access_denied", opened.h_payto);
    assert_page(kyc.proof(&denied).await, 403, 1038).await;
    assert_page(kyc.proof(&denied).await, 404, 1929).await;
}

#[tokio::test]
async fn email_validation_end_to_end() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "email").await;
    let (requirements, _) = kyc.requirements(&opened.token).await;
    let id = id_of(&requirements[0]);
    let started: Value = kyc.kyc_start(&id).await.json().await.unwrap();
    let url = started["redirect_url"].as_str().unwrap().to_owned();
    let nonce = url
        .strip_prefix(&kyc.server.url("challenger/authorize/"))
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();

    // The browser: authorize page, address, PIN from the outbox.
    assert_eq!(kyc.http.get(&url).send().await.unwrap().status(), 200);
    let challenge = kyc
        .http
        .post(kyc.server.url(&format!("challenger/challenge/{nonce}")))
        .header(CONTENT_TYPE, FORM)
        .body("CONTACT_EMAIL=alice%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), 200);
    let pin = outbox_pin(kyc.server.dir.path());
    let solved = kyc
        .http
        .post(kyc.server.url(&format!("challenger/solve/{nonce}")))
        .header(CONTENT_TYPE, FORM)
        .body(format!("pin={pin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(solved.status(), 302);
    let back = solved.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        back.starts_with(&kyc.url("kyc-proof/challenger?")),
        "{back}"
    );
    assert_eq!(param(&back, "state"), opened.h_payto);

    // The proof, loaded four times at once (a browser's reloads): one code exchange, and
    // every load is sent to kyc-done; the requirement is satisfied.
    let loads: Vec<_> = (0..4)
        .map(|_| {
            let (http, back) = (kyc.http.clone(), back.clone());
            tokio::spawn(async move { http.get(&back).send().await.unwrap() })
        })
        .collect();
    let mut answers = Vec::new();
    for load in loads {
        answers.push(load.await.unwrap());
    }
    let proof = answers.pop().unwrap();
    for other in answers {
        assert_eq!(other.status(), 303);
        assert_eq!(other.headers()[LOCATION], proof.headers()[LOCATION]);
    }
    assert_eq!(proof.status(), 303);
    let done = proof.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(done, kyc.url("kyc-done"));
    assert!(proof.bytes().await.unwrap().is_empty());
    let page = kyc.http.get(&done).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(kyc.info(&opened.token).await.status(), 204);

    // A later reload ends there too; the finished requirement cannot be restarted.
    let reload = kyc.http.get(&back).send().await.unwrap();
    assert_eq!(reload.status(), 303);
    assert_eq!(reload.headers()[LOCATION].to_str().unwrap(), done);
    assert_error(kyc.kyc_start(&id).await, 409, 1941).await;
}

#[tokio::test]
async fn arrays_and_scalars_are_not_bodies() {
    let kyc = Kyc::start().await;
    let opened = kyc.trigger(ALICE, "email personal").await;
    let (requirements, _) = kyc.requirements(&opened.token).await;
    let start = id_of(&requirements[0]);
    let upload = id_of(&requirements[1]);
    let (hash, _) = start.split_once('-').unwrap();
    for body in ["[]", r#"["payto://x", "email"]"#, "\"x\"", "1", "null"] {
        let post = |path: String| {
            kyc.post(&path)
                .header(CONTENT_TYPE, "application/json")
                .body(body)
                .send()
        };
        assert_error(post(format!("kyc-start/{start}")).await.unwrap(), 400, 22).await;
        assert_error(post(format!("kyc-upload/{upload}")).await.unwrap(), 400, 22).await;
        // An id that opens nothing is refused for the id, whatever the body.
        let unknown = post(format!("kyc-start/{hash}-0-999999")).await.unwrap();
        assert_error(unknown, 404, 21).await;
        let trigger = kyc
            .post("admin/kyc-trigger")
            .header(AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(trigger, 400, 22).await;
        let stranger = kyc
            .post("admin/kyc-trigger")
            .header(AUTHORIZATION, "Bearer secret-token:guess")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(stranger, 401, 40).await;
    }
}

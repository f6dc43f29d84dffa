//! Two `talerbox serve` processes on one PostgreSQL database (issue: scale-out): what one
//! instance writes, the other serves; long polls on one wake on changes made through the
//! other; races between them end as on one instance; a killed instance loses nothing it
//! acknowledged. They skip loudly without `TALERBOX_TEST_PG`.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

use crate::aml_decisions::{A_PUB, A_SIG, IBAN_HASH, d1, fresh};
use crate::durability::{self, Acknowledged, Key};
use crate::support::kyc_form_upload;
use crate::support::postgres::Schema;
use crate::support::process::{spawn_server_at, talerbox};

const ADMIN_TOKEN: &str = durability::ADMIN_TOKEN;
const ALICE: &str = "payto://iban/DE89370400440532013000?receiver-name=Alice";
const ATTRIBUTE_KEY: &str = "instances-share-this-attribute-key";

/// Two instances, A and B, on one schema, with one key directory; URLs name A.
struct Pair {
    schema: Schema,
    dir: tempfile::TempDir,
    a: Instance,
    b: Instance,
    http: reqwest::Client,
}

struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on the loopback interface (A's address must be known to write BASE_URL).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes the configuration both instances read into `dir/a` and `dir/b`.
fn configure(dir: &Path, schema: &Schema, port: u16) -> [PathBuf; 2] {
    let config = format!(
        "[talerbox]\nDATABASE = {}\nBASE_URL = http://127.0.0.1:{port}/\nKEY_DIR = {}\n\
         [libeufin-bank]\nPASSWORD_HASH_MEMORY_KIB = 64\nPASSWORD_HASH_ITERATIONS = 1\n\
         [exchange]\nADMIN_TOKEN = {ADMIN_TOKEN}\nATTRIBUTE_ENCRYPTION_KEY = {ATTRIBUTE_KEY}\n",
        schema.uri(),
        dir.join("keys").display()
    );
    ["a", "b"].map(|name| {
        let own = dir.join(name);
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("talerbox.conf"), &config).unwrap();
        own
    })
}

impl Pair {
    /// Starts A and B one after the other (`together`: at the same time).
    fn start(test: &str, together: bool) -> Option<Pair> {
        let schema = Schema::fresh(test)?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let [dir_a, dir_b] = configure(dir.path(), &schema, port);
        let (a, b) = if together {
            let listen_a = format!("127.0.0.1:{port}");
            let a = std::thread::spawn(move || spawn_server_at(&dir_a, &listen_a));
            let b = std::thread::spawn(move || spawn_server_at(&dir_b, "127.0.0.1:0"));
            (a.join().unwrap(), b.join().unwrap())
        } else {
            let a = spawn_server_at(&dir_a, &format!("127.0.0.1:{port}"));
            (a, spawn_server_at(&dir_b, "127.0.0.1:0"))
        };
        Some(Pair {
            schema,
            dir,
            a: Instance {
                child: a.0,
                base: a.1,
            },
            b: Instance {
                child: b.0,
                base: b.1,
            },
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        })
    }

    /// The CLI on A's configuration (a third process on the same database).
    fn cli(&self, args: &[&str]) -> String {
        let output = talerbox(&self.dir.path().join("a"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "talerbox {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Opens `measure` for `payto` through instance `on`: the access token.
    async fn trigger(&self, on: &Instance, payto: &str, measure: &str) -> String {
        let response = self
            .http
            .post(format!("{}exchange/admin/kyc-trigger", on.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"payto_uri": payto, "measures": measure}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// kyc-info on `on`: the first requirement's id and the ETag.
    async fn requirement(&self, on: &Instance, token: &str) -> (String, String) {
        let response = self
            .http
            .get(format!("{}exchange/kyc-info/{token}", on.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        let id = body["requirements"][0]["id"].as_str().unwrap().to_owned();
        (id, etag)
    }
}

#[tokio::test]
async fn an_account_registered_on_one_logs_in_on_the_other() {
    let Some(pair) = Pair::start("two instances: accounts", false) else {
        return;
    };
    let registered = pair
        .http
        .post(format!("{}bank/accounts", pair.a.base))
        .json(&json!({"username": "carol", "password": "pw-carol-1", "name": "Carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);
    let token = pair
        .http
        .post(format!("{}bank/accounts/carol/token", pair.b.base))
        .basic_auth("carol", Some("pw-carol-1"))
        .json(&json!({"scope": "readonly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token: Value = token.json().await.unwrap();
    let account = pair
        .http
        .get(format!("{}bank/accounts/carol", pair.a.base))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200);
    let account: Value = account.json().await.unwrap();
    assert_eq!(account["name"], "Carol");
    // A second registration of the name on the other instance is refused as on one.
    let again = pair
        .http
        .post(format!("{}bank/accounts", pair.b.base))
        .json(&json!({"username": "carol", "password": "pw-other-1", "name": "Other"}))
        .send()
        .await
        .unwrap();
    crate::support::assert_error(again, 409, 5121).await;
}

#[tokio::test]
async fn a_long_poll_on_one_wakes_on_an_upload_through_the_other() {
    let Some(pair) = Pair::start("two instances: long poll", false) else {
        return;
    };
    let token = pair.trigger(&pair.a, ALICE, "personal").await;
    let (id, etag) = pair.requirement(&pair.a, &token).await;
    let poll = pair
        .http
        .get(format!(
            "{}exchange/kyc-info/{token}?timeout_ms=30000",
            pair.a.base
        ))
        .header(IF_NONE_MATCH, &etag);
    let poll = tokio::spawn(async move {
        let response = poll.send().await.unwrap();
        (response.status().as_u16(), Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "the long poll answered before the change"
    );
    let uploaded = pair
        .http
        .post(format!("{}exchange/kyc-upload/{id}", pair.b.base))
        .json(
            &json!({"FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Alice",
            "DATE_OF_BIRTH": "1990-01-31"}),
        )
        .send()
        .await
        .unwrap();
    let acknowledged = Instant::now();
    assert_eq!(uploaded.status(), 204);
    let (status, answered) = poll.await.unwrap();
    assert_eq!(status, 204);
    let waited = answered.saturating_duration_since(acknowledged);
    eprintln!("long poll on A answered {waited:?} after B acknowledged the upload");
    assert!(waited < Duration::from_millis(50), "{waited:?}");
}

#[tokio::test]
async fn concurrent_kyc_starts_on_both_open_one_process() {
    let Some(pair) = Pair::start("two instances: kyc-start race", false) else {
        return;
    };
    let token = pair.trigger(&pair.a, ALICE, "email").await;
    let (id, _) = pair.requirement(&pair.b, &token).await;
    let starts: Vec<_> = (0..16)
        .map(|n| {
            let base = if n % 2 == 0 {
                &pair.a.base
            } else {
                &pair.b.base
            };
            let request = pair
                .http
                .post(format!("{base}exchange/kyc-start/{id}"))
                .json(&json!({}));
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
    // Every URL names the one public address.
    assert!(urls[0].starts_with(&pair.a.base), "{}", urls[0]);
    // One process, holding the URL every start answered. (Starts that raced before the URL
    // was recorded may each have set up a validation at the challenger; the unused ones
    // expire and are purged, as on one instance.)
    assert_eq!(
        pair.schema
            .count("SELECT count(*) FROM legitimization_processes"),
        1
    );
    let recorded = pair.schema.count(&format!(
        "SELECT count(*) FROM legitimization_processes WHERE redirect_url = '{}'",
        urls[0].replace('\'', "''")
    ));
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn a_decision_through_one_is_seen_on_the_other() {
    let Some(pair) = Pair::start("two instances: decisions", false) else {
        return;
    };
    pair.cli(&[
        "aml",
        "officer",
        "add",
        "--pub",
        A_PUB,
        "--name",
        "Olivia Officer",
    ]);
    let decided = pair
        .http
        .post(format!("{}exchange/aml/{A_PUB}/decision", pair.a.base))
        .json(&fresh(d1()))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 204);
    for instance in [&pair.b, &pair.a] {
        let decisions = pair
            .http
            .get(format!("{}exchange/aml/{A_PUB}/decisions", instance.base))
            .header("Taler-AML-Officer-Signature", A_SIG)
            .send()
            .await
            .unwrap();
        assert_eq!(decisions.status(), 200);
        let body: Value = decisions.json().await.unwrap();
        let records = body["records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{body}");
        assert_eq!(records[0]["decider_pub"], A_PUB);
        assert_eq!(records[0]["to_investigate"], true);
    }
    // The customer's view of the frozen account is the same on both.
    let token = pair.cli(&["kyc", "token", IBAN_HASH]);
    let token = token.lines().next().unwrap();
    let mut views = Vec::new();
    for instance in [&pair.a, &pair.b] {
        let info = pair
            .http
            .get(format!("{}exchange/kyc-info/{token}", instance.base))
            .send()
            .await
            .unwrap();
        views.push((info.status().as_u16(), info.text().await.unwrap()));
    }
    assert_eq!(views[0], views[1]);
}

#[tokio::test]
async fn both_starting_at_once_share_one_admin_and_one_challenger_client() {
    let Some(pair) = Pair::start("two instances: cold start", true) else {
        return;
    };
    let admins = pair
        .schema
        .count("SELECT count(*) FROM bank_accounts WHERE username = 'admin'");
    assert_eq!(admins, 1);
    let clients = pair.cli(&["challenger", "client", "list"]);
    assert_eq!(clients.lines().count(), 1, "{clients}");
    let token = pair.trigger(&pair.b, ALICE, "email").await;
    let (id, _) = pair.requirement(&pair.a, &token).await;
    let mut client_ids = Vec::new();
    for instance in [&pair.a, &pair.b] {
        let started: Value = pair
            .http
            .post(format!("{}exchange/kyc-start/{id}", instance.base))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = started["redirect_url"].as_str().unwrap().to_owned();
        let client = url.split("client_id=").nth(1).unwrap();
        client_ids.push(client.split('&').next().unwrap().to_owned());
    }
    assert_eq!(client_ids[0], client_ids[1]);
    // The schema is at this binary's version, and both instances agree on the keys.
    let check = pair.cli(&["db", "check"]);
    assert_eq!(check.trim(), "ok");
    let master_a = pair.cli(&["exchange", "master-pub"]);
    let master_b = {
        let output = talerbox(&pair.dir.path().join("b"))
            .args(["exchange", "master-pub"])
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(master_a, master_b);
}

#[test]
fn an_instance_with_other_keys_is_refused() {
    let Some(schema) = Schema::fresh("two instances: key guard") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let [dir_a, dir_b] = configure(dir.path(), &schema, free_port());
    let first = talerbox(&dir_a).arg("init").output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // B reads a key directory of its own: its fresh master key is not the first one.
    let other_keys = dir.path().join("other-keys");
    let config = std::fs::read_to_string(dir_b.join("talerbox.conf")).unwrap();
    let config = config.replace(
        &format!("KEY_DIR = {}", dir.path().join("keys").display()),
        &format!("KEY_DIR = {}", other_keys.display()),
    );
    std::fs::write(dir_b.join("talerbox.conf"), config).unwrap();
    let refused = talerbox(&dir_b).arg("init").output().unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("KEY_DIR"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_load_loses_no_acknowledged_write() {
    let Some(pair) = Pair::start("two instances: SIGKILL", false) else {
        return;
    };
    let client_id = pair.cli(&[
        "challenger",
        "client",
        "add",
        "--secret-unsafe",
        durability::CLIENT_SECRET,
        "--redirect-uri",
        durability::REDIRECT,
    ]);
    let client_id = client_id.lines().next().unwrap().to_owned();
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let mut pair = pair;
    let began = Instant::now();
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let base = if writer % 2 == 0 {
                pair.a.base.clone()
            } else {
                pair.b.base.clone()
            };
            tokio::spawn(durability::write_until_killed(
                base,
                client_id.clone(),
                0,
                writer,
                Arc::clone(&acked),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400 + durability::random_below(400))).await;
    pair.a.child.kill().unwrap(); // SIGKILL
    pair.a.child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    pair.b.child.kill().unwrap();
    pair.b.child.wait().unwrap();
    let loaded = began.elapsed();
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        !acked.accounts.is_empty() && !acked.uploads.is_empty(),
        "the load wrote too little to prove anything"
    );
    talerbox::adapters::system::outside_runtime(|| {
        let mut client = pair.schema.client();
        durability::assert_all_present(&acked, |table, column, key| {
            let sql = format!("SELECT count(*) FROM {table} WHERE {column} = $1");
            match key {
                Key::Text(text) => client.query_one(&sql, &[&text]),
                Key::Bytes(bytes) => client.query_one(&sql, &[&bytes]),
            }
            .unwrap()
            .get(0)
        });
    })
    .unwrap();
    let writes = acked.accounts.len() + acked.nonces.len() + acked.uploads.len();
    eprintln!(
        "two instances, A killed under load: {} accounts, {} validations, {} uploads \
         acknowledged in {loaded:?} ({:.0} acknowledged writes/s, a correctness run)",
        acked.accounts.len(),
        acked.nonces.len(),
        acked.uploads.len(),
        writes as f64 / loaded.as_secs_f64()
    );
    // A restarted instance serves what both acknowledged.
    let (child, base) = spawn_server_at(&pair.dir.path().join("a"), "127.0.0.1:0");
    pair.a = Instance { child, base };
    let last = acked.accounts.last().unwrap();
    let read = pair
        .http
        .get(format!("{}bank/accounts/{last}", pair.a.base))
        .basic_auth(last, Some("password-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
}

/// Stops a server gracefully (SIGTERM) and waits for it.
fn terminate(mut child: Child) {
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    child.wait().unwrap();
}

#[tokio::test]
async fn a_sqlite_installation_moves_to_postgresql_and_reads_the_same() {
    let Some(schema) = Schema::fresh("db migrate-from-sqlite") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let [on_postgres, _] = configure(dir.path(), &schema, free_port());
    // The same installation's configuration without DATABASE: the embedded file.
    let on_sqlite = dir.path().join("sqlite");
    std::fs::create_dir_all(&on_sqlite).unwrap();
    let text = std::fs::read_to_string(on_postgres.join("talerbox.conf")).unwrap();
    let sqlite_text: String = text
        .lines()
        .filter(|l| !l.starts_with("DATABASE =") && !l.starts_with("BASE_URL ="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(on_sqlite.join("talerbox.conf"), sqlite_text).unwrap();
    let run = |dir: &Path, args: &[&str]| {
        let output = talerbox(dir).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "talerbox {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let http = reqwest::Client::new();

    // Fill the SQLite installation through the real services.
    let (child, base) = spawn_server_at(&on_sqlite, "127.0.0.1:0");
    let registered = http
        .post(format!("{base}bank/accounts"))
        .json(&json!({"username": "dave", "password": "pw-dave-1", "name": "Dave"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);
    let add = |redirect: &str| {
        run(
            &on_sqlite,
            &[
                "challenger",
                "client",
                "add",
                "--secret-unsafe",
                "secret-token:c",
                "--redirect-uri",
                redirect,
            ],
        )
        .lines()
        .next()
        .unwrap()
        .parse::<i64>()
        .unwrap()
    };
    add("https://kept.example/cb");
    let deleted = add("https://deleted.example/cb");
    run(
        &on_sqlite,
        &["challenger", "client", "delete", &deleted.to_string()],
    );
    let (opened, uploaded) = kyc_form_upload(&http, &base, ADMIN_TOKEN, ALICE, "Alice Ärger")
        .await
        .unwrap();
    assert_eq!(uploaded, 204);
    let token = opened["access_token"].as_str().unwrap().to_owned();
    run(
        &on_sqlite,
        &[
            "aml",
            "officer",
            "add",
            "--pub",
            A_PUB,
            "--name",
            "Olivia Officer",
        ],
    );
    let decided = http
        .post(format!("{base}exchange/aml/{A_PUB}/decision"))
        .json(&fresh(d1()))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 204);
    let before = read_back(&http, &base, &token).await;
    terminate(child);

    // Move it, then serve it on PostgreSQL.
    let file = on_sqlite.join("data/talerbox.sqlite3");
    let file = file.to_str().unwrap();
    let report = run(&on_postgres, &["db", "migrate-from-sqlite", file]);
    assert!(report.contains("bank_accounts: 2 rows"), "{report}");
    let (child, base) = spawn_server_at(&on_postgres, "127.0.0.1:0");
    let after = read_back(&http, &base, &token).await;
    assert_eq!(after, before);
    // A new client gets an id above the deleted one's.
    let next = run(
        &on_postgres,
        &[
            "challenger",
            "client",
            "add",
            "--secret-unsafe",
            "secret-token:n",
            "--redirect-uri",
            "https://next.example/cb",
        ],
    );
    let next: i64 = next.lines().next().unwrap().parse().unwrap();
    assert!(next > deleted, "{next} after deleted {deleted}");
    // The moved journal verifies, and a second move into the filled database is refused.
    assert!(run(&on_postgres, &["audit", "verify"]).starts_with("journal ok: "));
    let again = talerbox(&on_postgres)
        .args(["db", "migrate-from-sqlite", file])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(message.contains("not empty"), "{message}");
    terminate(child);
}

/// What an installation serves about the data the migration test wrote: the account, the
/// customer's requirements, the officer's view of the decision and of the attributes.
async fn read_back(http: &reqwest::Client, base: &str, token: &str) -> Vec<Value> {
    let account: Value = http
        .get(format!("{base}bank/accounts/dave"))
        .basic_auth("dave", Some("pw-dave-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let info = http
        .get(format!("{base}exchange/kyc-info/{token}"))
        .send()
        .await
        .unwrap();
    let info = json!({"status": info.status().as_u16(), "body": info.text().await.unwrap()});
    let officer = |path: String| {
        http.get(format!("{base}exchange/aml/{A_PUB}/{path}"))
            .header("Taler-AML-Officer-Signature", A_SIG)
            .send()
    };
    let decisions: Value = officer("decisions".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attributes: Value = officer(format!("attributes/{IBAN_HASH}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account["name"], "Dave");
    assert!(
        attributes.to_string().contains("Alice Ärger"),
        "{attributes}"
    );
    vec![account, info, decisions, attributes]
}

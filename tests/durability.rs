//! SIGKILL under a mixed write load: every write the server acknowledged is still there after
//! the restart, and `talerbox db check` passes after every kill. Five kills by default;
//! `TALERBOX_KILLS=20 cargo test --test main durability` asks for more.

use crate::support::kyc_form_upload;
use crate::support::process::{spawn_server, talerbox};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use talerbox::domain::primitives::base32;

pub(crate) const ADMIN_TOKEN: &str = "secret-token:durability";
pub(crate) const CLIENT_SECRET: &str = "secret-token:client";
pub(crate) const REDIRECT: &str = "https://exchange.example/kyc-proof/x";
const CONFIG: &str = "[libeufin-bank]\nPASSWORD_HASH_MEMORY_KIB = 64\nPASSWORD_HASH_ITERATIONS = 1\n\
    [exchange]\nADMIN_TOKEN = secret-token:durability\n";
/// Writers running at once against the server.
const WRITERS: usize = 8;

/// A random number from the OS-seeded hasher keys (no clock, no extra crate).
pub(crate) fn random_below(bound: u64) -> u64 {
    RandomState::new().build_hasher().finish() % bound
}

/// What the server acknowledged.
#[derive(Default)]
pub(crate) struct Acknowledged {
    /// Bank accounts (`POST /bank/accounts` answered 200).
    pub accounts: Vec<String>,
    /// Challenger validations (`POST /challenger/setup` answered a nonce).
    pub nonces: Vec<[u8; 32]>,
    /// Accounts whose KYC form upload answered 204.
    pub uploads: Vec<[u8; 32]>,
}

/// One write of the mix; `Err` when the server went away (the write is not acknowledged).
async fn one_write(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    name: &str,
    acked: &Mutex<Acknowledged>,
) -> Result<(), reqwest::Error> {
    match random_below(3) {
        0 => {
            let response = http
                .post(format!("{base}bank/accounts"))
                .json(&json!({"username": name, "password": "password-1", "name": name}))
                .send()
                .await?;
            assert_eq!(response.status(), 200, "registration of {name}");
            acked.lock().unwrap().accounts.push(name.to_owned());
        }
        1 => {
            let response = http
                .post(format!("{base}challenger/setup/{client_id}"))
                .bearer_auth(CLIENT_SECRET)
                .send()
                .await?;
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await?;
            let nonce = base32::decode_array(body["nonce"].as_str().unwrap()).unwrap();
            acked.lock().unwrap().nonces.push(nonce);
        }
        _ => {
            let payto = format!("payto://x-taler-bank/localhost/{name}?receiver-name=N");
            let (opened, uploaded) = kyc_form_upload(http, base, ADMIN_TOKEN, &payto, name).await?;
            assert_eq!(uploaded, 204);
            let h_payto = opened["h_normalized_payto"].as_str().unwrap();
            let hash = base32::decode_array(h_payto).unwrap();
            acked.lock().unwrap().uploads.push(hash);
        }
    }
    Ok(())
}

/// Writes until the server goes away.
pub(crate) async fn write_until_killed(
    base: String,
    client_id: String,
    round: usize,
    writer: usize,
    acked: Arc<Mutex<Acknowledged>>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for n in 0.. {
        let name = format!("r{round}w{writer}n{n}");
        if one_write(&http, &base, &client_id, &name, &acked)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A key of an acknowledged write, as stored.
pub(crate) enum Key<'a> {
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// Every acknowledged write is in the database; `count(table, column, key)` counts the rows
/// of `table` whose `column` holds `key`.
pub(crate) fn assert_all_present(
    acked: &Acknowledged,
    mut count: impl FnMut(&str, &str, Key) -> i64,
) {
    for username in &acked.accounts {
        let found = count("bank_accounts", "username", Key::Text(username));
        assert_eq!(found, 1, "acknowledged account {username} lost");
    }
    for nonce in &acked.nonces {
        let found = count("challenger_validations", "nonce", Key::Bytes(nonce));
        assert_eq!(found, 1, "acknowledged validation lost");
    }
    for h_payto in &acked.uploads {
        let found = count("kyc_attributes", "h_payto", Key::Bytes(h_payto));
        assert!(found >= 1, "acknowledged upload lost");
    }
}

/// Counts rows in the SQLite file `db`.
fn sqlite_count(db: &Path) -> impl Fn(&str, &str, Key) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    move |table, column, key| {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?1");
        match key {
            Key::Text(text) => conn.query_row(&sql, [text], |r| r.get(0)),
            Key::Bytes(bytes) => conn.query_row(&sql, [bytes], |r| r.get(0)),
        }
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let kills: usize = std::env::var("TALERBOX_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("talerbox.conf"), CONFIG).unwrap();
    assert!(talerbox(dir.path()).arg("init").status().unwrap().success());
    let added = talerbox(dir.path())
        .args([
            "challenger",
            "client",
            "add",
            "--secret-unsafe",
            CLIENT_SECRET,
        ])
        .args(["--redirect-uri", REDIRECT])
        .output()
        .unwrap();
    assert!(added.status.success());
    let client_id = String::from_utf8(added.stdout).unwrap();
    let client_id = client_id.lines().next().unwrap().to_owned();
    let db = dir.path().join("data/talerbox.sqlite3");
    let acked = Arc::new(Mutex::new(Acknowledged::default()));

    for round in 0..kills {
        let (mut child, base) = spawn_server(dir.path());
        // The writes of all earlier rounds survived the last kill and this restart.
        assert_all_present(&acked.lock().unwrap(), sqlite_count(&db));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let run = write_until_killed(
                    base.clone(),
                    client_id.clone(),
                    round,
                    writer,
                    Arc::clone(&acked),
                );
                tokio::spawn(run)
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + random_below(350))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for writer in writers {
            writer.await.unwrap();
        }
        let check = talerbox(dir.path()).args(["db", "check"]).output().unwrap();
        assert!(
            check.status.success(),
            "db check after kill {round}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let (mut child, base) = spawn_server(dir.path());
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert_all_present(&acked, sqlite_count(&db));
    assert!(
        !acked.accounts.is_empty() && !acked.nonces.is_empty() && !acked.uploads.is_empty(),
        "the load wrote too little to prove anything"
    );
    // The restarted server serves what it acknowledged before the kills.
    let last = acked.accounts.last().unwrap();
    let read = reqwest::Client::new()
        .get(format!("{base}bank/accounts/{last}"))
        .basic_auth(last, Some("password-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    eprintln!(
        "{kills} kills survived: {} accounts, {} validations, {} uploads acknowledged",
        acked.accounts.len(),
        acked.nonces.len(),
        acked.uploads.len()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

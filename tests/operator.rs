//! What an operator meets at the command line: installations, locks, pipes, backups.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn talerbox() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_talerbox"));
    command
        .env_remove("TALERBOX_DATA_DIR")
        .env_remove("TALERBOX_CONFIG");
    command
}

fn output(command: &mut Command) -> (i32, String, String) {
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Runs `talerbox --data-dir DATA ARGS…`.
fn on(data: &Path, args: &[&str]) -> (i32, String, String) {
    output(talerbox().arg("--data-dir").arg(data).args(args))
}

/// Starts `talerbox serve` on a free port and `data`; answers the child and its address.
fn spawn_server(data: &Path) -> (Child, String) {
    let mut child = talerbox()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            return (child, rest.trim_end_matches('/').to_owned());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no 'listening on' line");
}

fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

#[test]
fn commands_refuse_a_directory_without_installation_and_init_creates_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nothing-here");
    let commands: &[&[&str]] = &[
        &["challenger", "outbox"],
        &["challenger", "client", "list"],
        &["aml", "officer", "list"],
        &["aml", "officer", "new", "--name", "X"],
        &["exchange", "master-pub"],
        &["db", "check"],
        &["db", "backup", "/tmp/never-written.sqlite3"],
        &[
            "bank",
            "passwd",
            "admin",
            "--password-unsafe",
            "some-password",
        ],
        &[
            "kyc",
            "trigger",
            "payto://x-taler-bank/localhost/a?receiver-name=A",
            "--measure",
            "email",
        ],
    ];
    for args in commands {
        let (code, out, err) = on(&data, args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(
            err.contains(&format!("data directory {}", data.display()))
                && err.contains("--data-dir")
                && err.contains("TALERBOX_DATA_DIR"),
            "{args:?}: {err}"
        );
        assert!(!data.exists(), "{args:?} created {}", data.display());
    }
    // `init` creates it; the installation's key stays the same from then on.
    let (code, out, err) = on(&data, &["init"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("now holds"), "{out}");
    assert!(data.join("talerbox.sqlite3").exists());
    let (code, first, _) = on(&data, &["exchange", "master-pub"]);
    assert_eq!(code, 0);
    assert_eq!(first.trim().len(), 52, "{first}");
    let (code, out, _) = on(&data, &["init"]);
    assert_eq!(code, 0);
    assert!(out.contains("already holds"), "{out}");
    // TALERBOX_DATA_DIR points at it as --data-dir does.
    let (code, second, err) = output(
        talerbox()
            .env("TALERBOX_DATA_DIR", &data)
            .args(["exchange", "master-pub"]),
    );
    assert_eq!((code, &second), (0, &first), "{err}");
}

#[test]
fn a_second_server_on_one_data_directory_refuses_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (first, address) = spawn_server(&data);
    let (code, _, err) = output(
        talerbox()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("PID {}", first.id())) && err.contains(&data.display().to_string()),
        "{err}"
    );
    // Admin commands still work while the server runs.
    let (code, out, err) = on(&data, &["aml", "officer", "new", "--name", "Olivia"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    // kyc trigger learns the running server's address (port 0 in the configuration).
    let (code, out, err) = on(
        &data,
        &[
            "kyc",
            "trigger",
            "payto://x-taler-bank/localhost/a?receiver-name=A",
            "--measure",
            "email",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[2],
        format!("http://{address}/exchange/kyc-spa/{}", lines[0]),
        "{out}"
    );
    terminate(first);
    // Once the first has stopped, a server starts again.
    let (again, _) = spawn_server(&data);
    terminate(again);
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_eq!(on(&data, &["init"]).0, 0);
    for args in [&["config", "dump"][..], &["exchange", "master-pub"]] {
        // The reading end is gone before the command writes: every write fails with EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let (code, _, err) = output(
            talerbox()
                .arg("--data-dir")
                .arg(&data)
                .args(args)
                .stdout(Stdio::from(writer)),
        );
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn payto_hash_prints_the_normalised_uri_and_its_hash() {
    let (code, out, err) = output(talerbox().args([
        "payto",
        "hash",
        "PAYTO://IBAN/COBADEFFXXX/de89370400440532013000?receiver-name=A",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "payto://iban/DE89370400440532013000\nA2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G\n"
    );
    let (code, out, err) = output(talerbox().args(["payto", "hash", "mailto:a@example.com"]));
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("not a payto URI"), "{err}");
}

#[test]
fn kyc_trigger_prints_no_url_it_cannot_know() {
    const PAYTO: &str = "payto://x-taler-bank/localhost:8080/alice?receiver-name=a";
    const HASH: &str = "F8YT6T7NJN3M1TEM3NC0DWKPRZB3MEYW5NK9S9SBEP7JR7C4ERS0";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_eq!(on(&data, &["init"]).0, 0);
    let trigger = |config: &str| {
        let file = crate::support::config_file(dir.path(), config);
        output(
            talerbox()
                .arg("-c")
                .arg(file)
                .arg("--data-dir")
                .arg(&data)
                .args(["kyc", "trigger", PAYTO, "--measure", "email"]),
        )
    };
    // A listener on port 0: the server's address is unknown here.
    let (code, out, err) = trigger("[talerbox]\nLISTEN = 127.0.0.1:0\n");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[1], HASH);
    assert!(err.contains("public URL is unknown"), "{err}");
    // The exchange's configured base URL wins.
    let (code, out, err) = trigger(
        "[talerbox]\nLISTEN = 127.0.0.1:0\n[exchange]\nBASE_URL = https://ex.example.com/\n",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[2],
        format!("https://ex.example.com/kyc-spa/{}", lines[0])
    );
}

/// Runs `talerbox` on a test server's directory with `input` on standard input.
fn with_stdin(dir: &Path, args: &[&str], input: &str) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = talerbox()
        .arg("-c")
        .arg(dir.join("talerbox.conf"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn secrets_come_from_standard_input_not_the_command_line() {
    let server = crate::support::TestServer::start().await;
    let dir = server.dir.path();
    // The password argument of old is gone; without a terminal nothing is prompted for.
    let (code, _, _) = crate::support::talerbox(dir, &["bank", "passwd", "admin", "x-password"]);
    assert_eq!(code, 2);
    let (code, _, err) = crate::support::talerbox(dir, &["bank", "passwd", "admin"]);
    assert_eq!(code, 1);
    assert!(err.contains("--password-stdin"), "{err}");
    let (code, _, err) = with_stdin(
        dir,
        &["bank", "passwd", "admin", "--password-stdin"],
        "from-standard-input\nignored\n",
    );
    assert_eq!(code, 0, "{err}");
    let token = server
        .client
        .post(server.url("bank/accounts/admin/token"))
        .basic_auth("admin", Some("from-standard-input"))
        .json(&serde_json::json!({"scope": "readonly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);

    let (code, out, err) = with_stdin(
        dir,
        &[
            "challenger",
            "client",
            "add",
            "--secret-stdin",
            "--redirect-uri",
            "https://ex.example/cb",
        ],
        "secret-token:piped\n",
    );
    assert_eq!(code, 0, "{err}");
    let id = out.trim();
    let setup = |secret: &'static str| {
        server
            .client
            .post(server.url(&format!("challenger/setup/{id}")))
            .bearer_auth(secret)
            .send()
    };
    assert_eq!(setup("secret-token:piped").await.unwrap().status(), 200);
    assert_ne!(setup("secret-token:other").await.unwrap().status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn the_exchange_registers_with_the_challenger_once_per_installation() {
    use crate::support::TestServer;
    use talerbox::app::StartOptions;
    let first = TestServer::start().await;
    let dir = first.stop_keeping_data().await;
    // The second start listens on another port: the same client follows it.
    let second = TestServer::start_in(dir, "", StartOptions::default()).await;
    // Answering means started (the client is registered before the first connection).
    assert_eq!(second.get("exchange/config").await.status(), 200);
    let (code, out, err) =
        crate::support::talerbox(second.dir.path(), &["challenger", "client", "list"]);
    assert_eq!(code, 0, "{err}");
    let clients: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(clients.len(), 1, "{out}");
    assert_eq!(clients[0][0], "1");
    assert_eq!(
        clients[0][1],
        format!("{}exchange/kyc-proof/challenger", second.base),
        "{out}"
    );
    second.stop().await;
}

#[tokio::test]
async fn a_backup_under_write_load_restores_accounts_keys_and_attributes() {
    use crate::support::{ADMIN_PASSWORD, TestServer};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use talerbox::app::StartOptions;
    use talerbox::domain::aml::{AttributeSource, StoreAttributes};
    use talerbox::domain::primitives::{
        EddsaPrivateKey, NormalizedPaytoHash, Timestamp, purpose, sign_purpose,
    };

    let server = TestServer::start().await;
    let officer = EddsaPrivateKey::from_seed([5; 32]);
    server
        .aml
        .enable_officer(&officer.public_key(), "Olivia", false)
        .unwrap();
    let account = NormalizedPaytoHash([3; 32]);
    server
        .aml
        .store_attributes(StoreAttributes {
            h_payto: account,
            attributes: serde_json::from_value(serde_json::json!({"FULL_NAME": "Łukasz Čapek"}))
                .unwrap(),
            source: AttributeSource::Customer { provider: None },
            expiration_time: Timestamp::never(),
            process_serial: None,
        })
        .unwrap();
    let register = |client: reqwest::Client, url: String, name: String| async move {
        let body = serde_json::json!({"username": name, "password": "some-password", "name": name});
        client.post(url).json(&body).send().await.unwrap().status()
    };
    let accounts = server.url("bank/accounts");
    assert_eq!(
        register(server.client.clone(), accounts.clone(), "before".into()).await,
        200
    );
    // Writers keep registering accounts while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, url, stop) = (server.client.clone(), accounts.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(
                    register(client.clone(), url.clone(), format!("load{n}")).await,
                    200
                );
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let backup = server.dir.path().join("backup");
    let (dir, target) = (server.dir.path().to_owned(), backup.clone());
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        crate::support::talerbox(&dir, &["db", "backup", target.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    stop.store(true, Ordering::Relaxed);
    assert!(load.await.unwrap() > 0);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    let names: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "talerbox.sqlite3",
            "attribute-key",
            "journal-key",
            "master-key",
            "tan-body-key"
        ],
        "{manifest}"
    );
    assert_eq!(manifest["version"], 1);
    let original = server.dir.path().to_owned();
    let master = on(&original.join("data"), &["exchange", "master-pub"]).1;

    // Never over an existing installation; never from a tampered backup.
    let (code, _, err) =
        crate::support::talerbox(&original, &["restore", backup.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("already holds"), "{err}");
    let tampered = tempfile::tempdir().unwrap();
    for name in [
        "manifest.json",
        "talerbox.sqlite3",
        "attribute-key",
        "master-key",
    ] {
        std::fs::copy(backup.join(name), tampered.path().join(name)).unwrap();
    }
    std::fs::write(tampered.path().join("attribute-key"), "OTHER\n").unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let (code, _, err) = on(
        &fresh.path().join("data"),
        &["restore", tampered.path().to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(err.contains("does not match the manifest"), "{err}");
    assert!(!fresh.path().join("data/talerbox.sqlite3").exists());
    let _kept = server.stop_keeping_data().await;

    // Restored into a new directory, it starts with the same keys, accounts and attributes.
    let (code, _, err) = on(
        &fresh.path().join("data"),
        &["restore", backup.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    #[cfg(unix)]
    for file in ["master-key", "attribute-key"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(fresh.path().join("data").join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    assert_eq!(
        on(&fresh.path().join("data"), &["exchange", "master-pub"]).1,
        master
    );
    let restored = TestServer::start_in(fresh, "", StartOptions::default()).await;
    let before = restored
        .client
        .get(restored.url("bank/accounts/before"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(before.status(), 200);
    let signature = sign_purpose(&officer, purpose::AML_QUERY, &[]);
    let attributes = restored
        .client
        .get(restored.url(&format!(
            "exchange/aml/{}/attributes/{account}",
            officer.public_key()
        )))
        .header("Taler-AML-Officer-Signature", signature.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(attributes.status(), 200);
    let body: serde_json::Value = attributes.json().await.unwrap();
    assert_eq!(
        body["details"][0]["attributes"]["FULL_NAME"], "Łukasz Čapek",
        "{body}"
    );
    restored.stop().await;
}

#[test]
fn the_outbox_lists_the_newest_first_and_filters_by_address() {
    use std::sync::Arc;
    use talerbox::adapters::delivery::OutboxSender;
    use talerbox::domain::primitives::{RelativeTime, Timestamp};
    use talerbox::ports::clock::FakeClock;
    use talerbox::ports::sender::Sender as _;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_eq!(on(&data, &["init"]).0, 0);
    let clock = Arc::new(FakeClock::at(
        Timestamp::from_seconds(1_700_000_000).unwrap(),
    ));
    let outbox = OutboxSender::new(data.join("outbox"), clock.clone());
    for (address, text) in [
        ("a@example.com", "first"),
        ("b@example.com", "second"),
        ("a@example.com", "third"),
    ] {
        outbox.send(address, text).unwrap();
        clock.advance(RelativeTime::from_seconds(60));
    }
    let (code, out, err) = on(&data, &["challenger", "outbox"]);
    assert_eq!(code, 0, "{err}");
    let bodies: Vec<&str> = out
        .lines()
        .filter(|l| ["first", "second", "third"].contains(l))
        .collect();
    assert_eq!(bodies, ["third", "second", "first"], "{out}");
    let (code, out, _) = on(
        &data,
        &["challenger", "outbox", "--address", "a@example.com"],
    );
    assert_eq!(code, 0);
    let to: Vec<&str> = out.lines().filter(|l| l.starts_with("To: ")).collect();
    assert_eq!(to, ["To: a@example.com", "To: a@example.com"], "{out}");
    assert!(out.contains("third") && !out.contains("second"), "{out}");
}

/// Sends one HTTP/1.1 request to `address`; answers the status line.
fn http(address: &str, request: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

/// Runs a server with `config`, sends requests carrying a password, a token and an address,
/// stops it and answers everything it logged.
fn log_of_a_session(config: &str) -> (String, std::path::PathBuf, tempfile::TempDir) {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let file = crate::support::config_file(
        dir.path(),
        &format!(
            "[talerbox]\nLISTEN = 127.0.0.1:0\n[libeufin-bank]\nPASSWORD_HASH_MEMORY_KIB = 64\nPASSWORD_HASH_ITERATIONS = 1\n{config}"
        ),
    );
    let data = dir.path().join("data");
    let mut child = talerbox()
        .arg("-c")
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .arg("serve")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let address = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{log}");
        log.push_str(&line);
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim().trim_end_matches('/').to_owned();
        }
    };
    let body = r#"{"username":"logged","password":"pw-SECRET-1234","name":"Log Ged"}"#;
    let status = http(
        &address,
        &format!(
            "POST /bank/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(status.contains("200"), "{status}");
    // base64("logged:pw-SECRET-1234")
    let status = http(
        &address,
        "GET /bank/accounts/logged HTTP/1.1\r\nHost: x\r\nAuthorization: Basic bG9nZ2VkOnB3LVNFQ1JFVC0xMjM0\r\nConnection: close\r\n\r\n",
    );
    assert!(status.contains("200"), "{status}");
    http(
        &address,
        "GET /exchange/kyc-info/TOKENVALUE000000000000000000000000000000000000000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    http(
        &address,
        "GET /nowhere?email=alice@example.com HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    stderr.read_to_string(&mut log).unwrap();
    assert!(child.wait().unwrap().success(), "{log}");
    (log, file, dir)
}

fn assert_no_secrets(log: &str) {
    for secret in [
        "pw-SECRET-1234",
        "bG9nZ2VkOnB3LVNFQ1JFVC0xMjM0",
        "TOKENVALUE",
        "alice@example.com",
        "\u{1b}[",
    ] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
}

#[test]
fn the_log_names_the_start_and_each_request_without_secrets() {
    let (log, file, dir) = log_of_a_session("");
    assert_no_secrets(&log);
    let start = log
        .lines()
        .find(|l| l.contains("talerbox started"))
        .unwrap();
    let data = dir.path().join("data");
    for part in [
        format!("data_dir={}", data.display()),
        file.display().to_string(),
        "bank=http://127.0.0.1:".into(),
        "/exchange/".into(),
        "challenger=http://127.0.0.1:".into(),
    ] {
        assert!(start.contains(&part), "{part} not in {start}");
    }
    let requests: Vec<&str> = log.lines().filter(|l| l.contains(" request ")).collect();
    assert_eq!(requests.len(), 4, "{log}");
    assert!(
        requests[0].contains("method=POST route=/bank/accounts status=200 duration_ms="),
        "{}",
        requests[0]
    );
    assert!(
        requests[2].contains("method=GET route=/exchange/kyc-info/{"),
        "{}",
        requests[2]
    );
    assert!(
        requests[3].contains("route=- status=404"),
        "{}",
        requests[3]
    );
    let migrations = log.lines().filter(|l| l.contains("version=1")).count();
    assert_eq!(migrations, 1, "{log}");
}

#[test]
fn log_format_json_writes_one_object_a_line() {
    let (log, _, _) = log_of_a_session("[talerbox]\nLOG_FORMAT = json\n");
    assert_no_secrets(&log);
    let objects: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.starts_with("talerbox: listening"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let request = objects
        .iter()
        .find(|o| o["fields"]["route"] == "/bank/accounts")
        .unwrap();
    assert_eq!(request["fields"]["method"], "POST");
    assert_eq!(request["fields"]["status"], 200);
    assert!(request["fields"]["duration_ms"].is_number(), "{request}");
}

#[test]
fn a_tan_script_that_cannot_run_is_a_startup_warning() {
    let (log, _, _) = log_of_a_session("TAN_SMS = /nonexistent/talerbox-sms\n");
    let warning = log
        .lines()
        .find(|line| line.contains("TAN_SMS = /nonexistent/talerbox-sms: no such file"))
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert_no_secrets(&log);
}

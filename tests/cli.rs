//! The `talerbox` binary as operators use it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::config_file;

fn talerbox() -> Command {
    Command::new(env!("CARGO_BIN_EXE_talerbox"))
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String, String) {
    let output = talerbox().args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn serve_announces_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = talerbox()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut address = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            address = Some(rest.trim_end_matches('/').to_owned());
            break;
        }
    }
    let address = address.expect("no 'listening on' line");
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /exchange/config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("taler-exchange"));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    assert!(data.join("talerbox.sqlite3").exists());
}

#[test]
fn config_get_and_dump_behave_like_taler_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        dir.path(),
        "[paths]\nROOT = /srv\n[exchange]\nBASE_URL = https://ex.example.com/\nX = $ROOT/x\n",
    );
    let file = file.to_str().unwrap();
    // -c before or after the subcommand.
    let (code, out, _) = run(&["-c", file, "config", "get", "exchange", "base_url"]);
    assert_eq!((code, out.as_str()), (0, "https://ex.example.com/\n"));
    let (code, out, _) = run(&["config", "get", "EXCHANGE", "X", "-c", file]);
    assert_eq!((code, out.as_str()), (0, "/srv/x\n"));
    let (code, out, _) = run(&["config", "get", "libeufin-bank", "CURRENCY"]);
    assert_eq!((code, out.as_str()), (0, "KUDOS\n"));
    let (code, _, err) = run(&["config", "get", "exchange", "NO_SUCH_OPTION"]);
    assert_ne!(code, 0);
    assert!(err.contains("NO_SUCH_OPTION"), "{err}");
    let (code, dump, _) = run(&["config", "dump", "-c", file]);
    assert_eq!(code, 0);
    assert!(dump.contains("[talerbox]"), "{dump}");
    assert!(
        dump.contains("BASE_URL = https://ex.example.com/"),
        "{dump}"
    );
    // Each value says where it came from: the file written here, or the embedded defaults.
    let from_file = format!("# from {file}:");
    let base_url = dump.find("BASE_URL = https://ex.example.com/").unwrap();
    assert!(
        dump[..base_url]
            .rfind("# from")
            .map(|at| dump[at..].starts_with(&from_file))
            .unwrap(),
        "{dump}"
    );
    assert!(dump.contains("# from <defaults>:"), "{dump}");
    assert!(dump.contains("THRESHOLD = KUDOS:1000"), "{dump}");
}

#[test]
fn a_bad_value_is_an_error_naming_section_option_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        dir.path(),
        "# comment\n[talerbox]\nLISTEN = not-an-address\n",
    );
    let (code, _, err) = run(&["-c", file.to_str().unwrap(), "config", "dump"]);
    assert_ne!(code, 0);
    assert!(err.contains("[talerbox] LISTEN"), "{err}");
    assert!(err.contains("talerbox.conf:3"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_unknown_option_is_a_warning_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), "[challenger]\nNO_SUCH_THING = 1\n");
    let (code, _, err) = run(&["-c", file.to_str().unwrap(), "config", "dump"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("WARN") && err.contains("NO_SUCH_THING"),
        "{err}"
    );
}

#[test]
fn db_check_and_backup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // No database yet: the check fails.
    let (code, _, _) = run(&["db", "check", "--data-dir", data]);
    assert_ne!(code, 0);
    // A database as `serve` creates it.
    let config = crate::support::load_config(dir.path(), "");
    drop(talerbox::app::App::open(config).unwrap());
    let (code, out, err) = run(&["--data-dir", data, "db", "check"]);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
    let backup = dir.path().join("backup");
    let (code, _, err) = run(&["db", "backup", backup.to_str().unwrap(), "--data-dir", data]);
    assert_eq!(code, 0, "{err}");
    let conn = rusqlite::Connection::open(backup.join("talerbox.sqlite3")).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        version as usize,
        talerbox::adapters::sqlite::latest_version()
    );
    // An existing target is never overwritten.
    let (code, _, err) = run(&["db", "backup", backup.to_str().unwrap(), "--data-dir", data]);
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn a_corrupt_database_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("talerbox.sqlite3"), vec![0x42; 8192]).unwrap();
    let (code, _, _) = run(&["db", "check", "--data-dir", data.to_str().unwrap()]);
    assert_ne!(code, 0);
}

#[test]
fn bank_admin_commands_work_after_init() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        dir.path(),
        "[libeufin-bank]\nPASSWORD_HASH_MEMORY_KIB = 64\nPASSWORD_HASH_ITERATIONS = 1\n",
    );
    let data = dir.path().join("fresh");
    let common = [
        "-c",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let with = |args: &[&str]| -> Vec<String> {
        common.iter().chain(args).map(|a| (*a).to_owned()).collect()
    };
    let (code, out, err) = run(&with(&["init"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("now holds a talerbox installation"), "{out}");
    let (code, out, err) = run(&with(&[
        "bank",
        "passwd",
        "admin",
        "--password-unsafe",
        "admin-secret-1",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&with(&[
        "bank",
        "create-account",
        "--username",
        "shop",
        "--password",
        "shop-password",
        "--name",
        "The Shop",
        "--public",
        "--email",
        "shop@example.com",
        "--debit-threshold",
        "KUDOS:50",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "payto://x-taler-bank/localhost/shop?receiver-name=The%20Shop\n"
    );
    // The same request again is an idempotent replay; a different one is refused.
    let (code, _, _) = run(&with(&[
        "bank",
        "create-account",
        "--username",
        "shop",
        "--password",
        "other-password",
        "--name",
        "X",
    ]));
    assert_ne!(code, 0);
    let (code, _, err) = run(&with(&[
        "bank",
        "passwd",
        "nobody",
        "--password-unsafe",
        "some-password",
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("UNKNOWN_ACCOUNT"), "{err}");
    let (code, _, err) = run(&with(&[
        "bank",
        "passwd",
        "shop",
        "--password-unsafe",
        "short",
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("PASSWORD_TOO_SHORT"), "{err}");
    // The account is there, with the admin-only threshold.
    let config = crate::support::load_config(dir.path(), "");
    let mut config = config;
    config.server.data_dir = data.clone();
    let app = talerbox::app::App::open(config).unwrap();
    let operator = talerbox::domain::accounts::Caller::operator();
    let shop = app.accounts.account_data(&operator, "shop").unwrap();
    assert_eq!(shop.debit_threshold.to_string(), "KUDOS:50");
    assert!(shop.is_public);
}

/// Starts `talerbox ARGS` under umask 022 (the usual default, which makes new files
/// world-readable) with standard error piped.
fn under_umask_022(args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_talerbox"))
        .args(args);
    command
}

/// Starts `serve` on `data` under umask 022; answers the child and the log lines written
/// before it listened.
fn serve_under_umask_022(data: &std::path::Path) -> (std::process::Child, Vec<String>) {
    let mut child = under_umask_022(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("listening on http://") {
            return (child, lines);
        }
        lines.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no 'listening on' line: {lines:?}");
}

fn stop(child: &mut std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_backups_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, log) = serve_under_umask_022(&data);
    assert!(!log.iter().any(|l| l.contains("WARN")), "{log:?}");
    // While the server runs, the database has its -wal and -shm files.
    for file in [
        "talerbox.sqlite3",
        "talerbox.sqlite3-wal",
        "talerbox.sqlite3-shm",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&data), 0o700);
    assert_eq!(
        talerbox::adapters::private_files::loose_modes(&data).unwrap(),
        vec![]
    );
    let copy = dir.path().join("backup.sqlite3");
    let status = under_umask_022(&[
        "db",
        "backup",
        copy.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .status()
    .unwrap();
    assert!(status.success());
    // A backup is a directory of private files.
    assert_eq!(mode(&copy), 0o700);
    for entry in std::fs::read_dir(&copy).unwrap() {
        assert_eq!(mode(&entry.unwrap().path()), 0o600);
    }
    stop(&mut child);

    // Modes loosened by hand are reported at the next start.
    let loosen = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    loosen(&data, 0o755);
    loosen(&data.join("talerbox.sqlite3"), 0o644);
    let (mut child, log) = serve_under_umask_022(&data);
    stop(&mut child);
    let warnings: Vec<_> = log.iter().filter(|l| l.contains("WARN")).collect();
    // SQLite gives the -wal and -shm files it recreates the database file's mode.
    let expected = [
        format!("{} has mode 0755", data.display()),
        "talerbox.sqlite3 has mode 0644".to_owned(),
        "talerbox.sqlite3-shm has mode 0644".to_owned(),
        "talerbox.sqlite3-wal has mode 0644".to_owned(),
    ];
    assert_eq!(warnings.len(), expected.len(), "{log:?}");
    for (warning, expected) in warnings.iter().zip(&expected) {
        assert!(warning.contains(expected.as_str()), "{warning}");
    }
}

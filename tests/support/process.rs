//! `talerbox` as a separate process on a test directory (`talerbox.conf` and `data/` in it),
//! for tests that kill it or measure it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `talerbox -c DIR/talerbox.conf --data-dir DIR/data`, unaffected by the caller's
/// `TALERBOX_*` variables; `TALERBOX_BIN` picks another binary (e.g. a release build).
pub fn talerbox(dir: &Path) -> Command {
    let binary =
        std::env::var("TALERBOX_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_talerbox").into());
    let mut command = Command::new(binary);
    command
        .env_remove("TALERBOX_DATA_DIR")
        .env_remove("TALERBOX_CONFIG")
        .arg("-c")
        .arg(dir.join("talerbox.conf"))
        .arg("--data-dir")
        .arg(dir.join("data"));
    command
}

/// Starts `serve` on a free port and answers it with its base URL; its standard error is
/// drained by a thread, so that request logs never fill the pipe.
pub fn spawn_server(dir: &Path) -> (Child, String) {
    spawn_server_at(dir, "127.0.0.1:0")
}

/// Like `spawn_server`, listening on `listen`.
pub fn spawn_server_at(dir: &Path, listen: &str) -> (Child, String) {
    let mut child = talerbox(dir)
        .args(["serve", "--listen", listen])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let Some(stderr) = child.stderr.take() else {
        panic!("no standard error to read");
    };
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let Some(line) = lines.next() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server ended before it listened");
        };
        if let Some(rest) = line.unwrap().split("listening on ").nth(1) {
            break rest.trim().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, base)
}

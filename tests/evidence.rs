//! Compliance evidence (compliance-evidence.md): the journal as the CLI shows it, its
//! verification after tampering behind the server's back, and exports.

use std::path::Path;

use serde_json::Value;

use crate::support::{TestServer, talerbox};

/// Entries of `audit log --json`, oldest first.
fn journal(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["audit", "log", "--json", "--limit", "10000"];
    args.extend_from_slice(extra);
    let (code, out, err) = talerbox(dir, &args);
    assert_eq!(code, 0, "{err}");
    let mut entries: Vec<Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    entries.reverse();
    entries
}

fn kinds(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// The offline flow (tests/offline_flow.rs) leaves these entries, in this order.
pub fn assert_offline_flow_journal(dir: &Path) {
    let entries = journal(dir, &[]);
    assert_eq!(
        kinds(&entries),
        [
            "journal.started",
            "kyc.requirement_opened",
            "kyc.process_started",
            "kyc.attributes_stored",
            "kyc.program_outcome",
            "aml.officer_changed",
            "aml.attributes_read",
        ]
    );
    let actors: Vec<&str> = entries
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors[..5],
        [
            "system",
            "operator",
            "system",
            "provider:challenger",
            "program:accept"
        ]
    );
    assert_eq!(entries[1]["details"]["trigger"], "cli");
    // The four KYC entries concern the customer's account; none holds personal data.
    let account = &entries[1]["h_payto"];
    assert!(account.is_string());
    // The officer's read of the file is in the account's access log.
    assert_eq!(&entries[6]["h_payto"], &entries[1]["h_payto"]);
    assert_eq!(entries[6]["details"]["format"], "json");
    assert_eq!(entries[6]["details"]["count"], 1);
    for entry in entries[1..5].iter().chain(&entries[6..]) {
        assert_eq!(&entry["h_payto"], account);
        let text = entry.to_string();
        assert!(
            !text.contains("alice") && !text.contains("payto://"),
            "{text}"
        );
    }
    let serials: Vec<u64> = entries
        .iter()
        .map(|e| e["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(serials, (1..=7).collect::<Vec<u64>>());
}

/// Adds an officer through the CLI: one `aml.officer_changed` entry.
fn add_officer(dir: &Path) {
    let (code, _, err) = talerbox(dir, &["aml", "officer", "new", "--name", "Olivia"]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test]
async fn audit_verify_names_the_serial_of_a_row_edited_behind_the_servers_back() {
    let server = TestServer::start().await;
    add_officer(server.dir.path());
    add_officer(server.dir.path());
    let dir = server.stop_keeping_data().await;
    let (code, out, err) = talerbox(dir.path(), &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    // The graceful stop checkpointed the journal.
    assert_eq!(
        out.trim(),
        "journal ok: 4 entries, last checkpoint at serial 4"
    );

    // An attacker with the file: drops the guard and edits the middle entry's details.
    let conn = rusqlite::Connection::open(dir.path().join("data/talerbox.sqlite3")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER compliance_journal_no_update;
         UPDATE compliance_journal SET details = replace(details, 'true', 'fals') WHERE serial = 2;",
    )
    .unwrap();
    drop(conn);
    let (code, out, _) = talerbox(dir.path(), &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.trim(), "journal broken at serial 2: hash mismatch");
}

#[tokio::test]
async fn a_deleted_row_is_a_gap_and_an_export_verifies_until_one_byte_changes() {
    let server = TestServer::start().await;
    let dir = server.dir.path().to_owned();
    for _ in 0..3 {
        add_officer(&dir);
    }
    let file = dir.join("journal.jsonl");
    let (code, out, err) = talerbox(&dir, &["audit", "export", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("exported 5 entries"), "{out}");
    let (_, journal_pub, _) = talerbox(&dir, &["audit", "pub"]);
    let journal_pub = journal_pub.trim().to_owned();
    let verify_export = |path: &Path| {
        talerbox(
            &dir,
            &[
                "audit",
                "verify-export",
                path.to_str().unwrap(),
                "--pub",
                &journal_pub,
            ],
        )
    };
    let (code, out, _) = verify_export(&file);
    assert_eq!(
        (code, out.trim()),
        (0, "export ok: 5 entries, last checkpoint at serial 5")
    );

    // One byte changed in the file: the export no longer verifies.
    let text = std::fs::read_to_string(&file).unwrap();
    let changed = dir.join("changed.jsonl");
    std::fs::write(
        &changed,
        text.replacen("\"actor\":\"operator\"", "\"actor\":\"operatoR\"", 1),
    )
    .unwrap();
    let (code, out, _) = verify_export(&changed);
    assert_eq!(
        (code, out.trim()),
        (1, "export broken at serial 2: hash mismatch")
    );
    // Cut after its checkpoint, an export fails too.
    let cut = dir.join("cut.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, lines[..4].join("\n")).unwrap();
    assert_eq!(verify_export(&cut).0, 1);
    // Another key does not verify the checkpoint.
    let other = "BZS2VSJ2ZTNYEKN15FEX430G50FGTV8ZJ6QK9X8YKMHMFSP5RAQG";
    let (code, out, _) = talerbox(
        &dir,
        &[
            "audit",
            "verify-export",
            file.to_str().unwrap(),
            "--pub",
            other,
        ],
    );
    assert_eq!(
        (code, out.trim()),
        (1, "export broken at serial 5: bad checkpoint")
    );

    let dir = server.stop_keeping_data().await;
    let conn = rusqlite::Connection::open(dir.path().join("data/talerbox.sqlite3")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER compliance_journal_no_delete;
         DELETE FROM compliance_journal WHERE serial = 3;",
    )
    .unwrap();
    drop(conn);
    let (code, out, _) = talerbox(dir.path(), &["audit", "verify"]);
    assert_eq!(
        (code, out.trim()),
        (1, "journal broken at serial 3: gap: entry missing")
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::config_file(dir.path(), "");
    let (code, _, _) = talerbox(dir.path(), &["audit", "verify-export"]);
    assert_eq!(code, 2);
}

//! `talerbox audit …`: verify, list and export the compliance journal
//! (compliance-evidence.md §1.7). Exit codes: 0 success, 1 failed verification, 2 usage.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;

use talerbox::app::App;
use talerbox::domain::aml::iso8601_utc;
use talerbox::domain::evidence::{
    ChainVerifier, ExportProof, JournalEntry, JournalKind, VerifyFailure,
};
use talerbox::domain::primitives::canonical_json::canonical_text_of;
use talerbox::domain::primitives::{EddsaPublicKey, Timestamp, base32};
use talerbox::ports::journal::JournalQuery;

/// `audit verify`: recomputes the chain and checks every checkpoint.
pub fn verify(app: &App, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let public = app.journal_key.public_key();
    let mut verifier = ChainVerifier::from_start(&public);
    let mut failure: Option<VerifyFailure> = None;
    app.journal
        .scan(1, &mut |entry| {
            failure = verifier.push(&entry).err();
            failure.is_none()
        })
        .map_err(|e| anyhow::anyhow!("reading the journal: {e}"))?;
    if let Some(failure) = failure {
        writeln!(out, "journal broken at {failure}")?;
        return Ok(ExitCode::from(1));
    }
    writeln!(out, "{}", ok_line("journal", &verifier.finish()))?;
    Ok(ExitCode::SUCCESS)
}

fn ok_line(what: &str, summary: &talerbox::domain::evidence::VerifySummary) -> String {
    let checkpoint = summary
        .last_checkpoint
        .map_or_else(|| "none".to_owned(), |s| s.to_string());
    format!(
        "{what} ok: {} entries, last checkpoint at serial {checkpoint}",
        summary.entries
    )
}

/// A usage error: exit code 2, as for a malformed command line.
fn usage(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("talerbox: {message}");
    Ok(ExitCode::from(2))
}

/// Filters of `audit log`.
pub struct LogFilter {
    pub account: Option<String>,
    pub actor: Option<String>,
    pub kind: Option<String>,
    pub since: Option<u64>,
    pub limit: u64,
    pub json: bool,
}

/// `audit log`: entries newest first, one a line.
pub fn log(app: &App, filter: LogFilter, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let h_payto = match filter
        .account
        .as_deref()
        .map(App::named_account)
        .transpose()
    {
        Ok(named) => named.map(|(h, _)| h),
        Err(e) => return usage(&format!("--account: {e:#}")),
    };
    if let Some(Err(e)) = filter.kind.as_deref().map(str::parse::<JournalKind>) {
        return usage(&format!("--kind: {e}"));
    }
    let since = filter
        .since
        .map(|s| Timestamp::from_seconds(s).context("--since is out of range"))
        .transpose()?;
    let entries = app
        .journal
        .entries(&JournalQuery {
            h_payto,
            actor: filter.actor,
            kind: filter.kind,
            since,
            before_serial: None,
            limit: filter.limit,
        })
        .map_err(|e| anyhow::anyhow!("reading the journal: {e}"))?;
    for entry in entries {
        if filter.json {
            writeln!(out, "{}", canonical_text_of(&log_json(&entry)))?;
        } else {
            let account = entry
                .h_payto
                .map_or_else(|| "-".to_owned(), |h| base32::encode(&h));
            writeln!(
                out,
                "{} {} {} {} {} {}",
                entry.serial,
                iso8601_utc(entry.at()),
                entry.kind,
                entry.actor,
                account,
                entry.details
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn log_json(entry: &JournalEntry) -> serde_json::Value {
    let details: serde_json::Value =
        serde_json::from_str(&entry.details).unwrap_or_else(|_| json!(entry.details));
    json!({
        "serial": entry.serial,
        "at_us": entry.at_us,
        "kind": entry.kind,
        "actor": entry.actor,
        "h_payto": entry.h_payto.map(|h| base32::encode(&h)),
        "details": details,
    })
}

/// One line of an export: every stored column, binary ones in base32, `details` as the exact
/// stored text so that the file can be verified without the database.
fn export_json(entry: &JournalEntry) -> serde_json::Value {
    json!({
        "serial": entry.serial,
        "at_us": entry.at_us,
        "kind": entry.kind,
        "actor": entry.actor,
        "h_payto": entry.h_payto.map(|h| base32::encode(&h)),
        "details": entry.details,
        "prev": base32::encode(&entry.prev),
        "hash": base32::encode(&entry.hash),
    })
}

fn parse_export_line(line: &str) -> anyhow::Result<JournalEntry> {
    #[derive(serde::Deserialize)]
    struct Line {
        serial: u64,
        at_us: u64,
        kind: String,
        actor: String,
        h_payto: Option<String>,
        details: String,
        prev: String,
        hash: String,
    }
    let line: Line = serde_json::from_str(line)?;
    Ok(JournalEntry {
        serial: line.serial,
        at_us: line.at_us,
        kind: line.kind,
        actor: line.actor,
        h_payto: line
            .h_payto
            .map(|h| base32::decode_array::<32>(&h))
            .transpose()?,
        details: line.details,
        prev: base32::decode_array::<64>(&line.prev)?,
        hash: base32::decode_array::<64>(&line.hash)?,
    })
}

/// `audit export FILE [--from SERIAL]`: checkpoints the journal if needed, then writes the
/// entries from `from` up to that last checkpoint.
pub fn export(app: &App, file: &Path, from: u64, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    app.journal
        .checkpoint(&app.journal_key)
        .map_err(|e| anyhow::anyhow!("appending a checkpoint: {e}"))?;
    let newest = app
        .journal
        .entries(&JournalQuery {
            kind: Some(JournalKind::JournalCheckpoint.as_str().to_owned()),
            limit: 1,
            ..JournalQuery::default()
        })
        .map_err(|e| anyhow::anyhow!("reading the journal: {e}"))?;
    let upto = newest.first().map_or(0, |e| e.serial);
    let mut writer = std::io::BufWriter::new(
        std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?,
    );
    let mut count = 0u64;
    let mut failure = None;
    app.journal
        .scan(from, &mut |entry| {
            if entry.serial > upto {
                return false;
            }
            count += 1;
            let line = canonical_text_of(&export_json(&entry));
            failure = writeln!(writer, "{line}").err();
            failure.is_none()
        })
        .map_err(|e| anyhow::anyhow!("reading the journal: {e}"))?;
    if let Some(e) = failure {
        return Err(e).with_context(|| format!("writing {}", file.display()));
    }
    writer.flush()?;
    writeln!(
        out,
        "exported {count} entries to {}, ending with the checkpoint at serial {upto}",
        file.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `audit verify-export FILE --pub KEY`: checks an export offline, without the database.
pub fn verify_export(
    file: &Path,
    journal_pub: &EddsaPublicKey,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let mut verifier = ChainVerifier::from_any(journal_pub);
    let mut last: Option<JournalEntry> = None;
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        let entry = match parse_export_line(&line) {
            Ok(entry) => entry,
            Err(e) => {
                writeln!(out, "export broken at line {}: {e}", number + 1)?;
                return Ok(ExitCode::from(1));
            }
        };
        if let Err(failure) = verifier.push(&entry) {
            writeln!(out, "export broken at {failure}")?;
            return Ok(ExitCode::from(1));
        }
        last = Some(entry);
    }
    match last {
        Some(entry) if entry.kind == JournalKind::JournalCheckpoint.as_str() => {
            writeln!(out, "{}", ok_line("export", &verifier.finish()))?;
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            writeln!(out, "export broken: it does not end with a checkpoint")?;
            Ok(ExitCode::from(1))
        }
    }
}

/// `export verify FILE PROOF`: whether `FILE` is exactly what the proof's officer was sent.
pub fn verify_export_proof(
    file: &Path,
    proof: &str,
    journal_pub: &EddsaPublicKey,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let proof_text = match std::fs::read_to_string(proof) {
        Ok(text) => text,
        Err(_) => proof.to_owned(),
    };
    let Some(proof) = ExportProof::decode(&proof_text) else {
        return usage("the proof is not 136 bytes of base32");
    };
    if !proof.verify(journal_pub, &body) {
        writeln!(
            out,
            "export not verified: the file or the proof was changed, or another key signed it"
        )?;
        return Ok(ExitCode::from(1));
    }
    writeln!(
        out,
        "export ok: account {}, read by officer {} at {}",
        proof.h_payto,
        proof.officer_pub,
        iso8601_utc(proof.at)
    )?;
    Ok(ExitCode::SUCCESS)
}

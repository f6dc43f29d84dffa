//! `talerbox retention purge` and `talerbox aml hold` (compliance-evidence.md §4).

use std::io::Write;
use std::process::ExitCode;

use talerbox::adapters::system::SystemClock;
use talerbox::app::App;
use talerbox::domain::aml::iso8601_utc;
use talerbox::domain::evidence::Actor;
use talerbox::ports::clock::Clock;

/// Purges due rows (or counts them with `dry_run`).
pub fn purge(app: &App, dry_run: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let purged = app
        .storage
        .retention()
        .purge_attributes(
            SystemClock.now(),
            app.config.exchange.attribute_retention,
            Actor::operator(),
            dry_run,
        )
        .map_err(|e| anyhow::anyhow!("purging: {e}"))?;
    let verb = if dry_run { "would purge" } else { "purged" };
    writeln!(
        out,
        "{verb} {} rows of {} accounts",
        purged.rows, purged.accounts
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Sets the hold of `account` (with `reason`) or releases it (without).
pub fn hold(
    app: &App,
    account: &str,
    reason: Option<String>,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let h_payto = match App::named_account(account) {
        Ok((h_payto, _)) => h_payto,
        Err(e) => {
            eprintln!("talerbox: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let holding = reason.is_some();
    let changed = app
        .storage
        .retention()
        .set_hold(h_payto, reason, SystemClock.now())
        .map_err(|e| anyhow::anyhow!("storing the hold: {e}"))?;
    let state = match (holding, changed) {
        (true, _) => "on hold",
        (false, true) => "released",
        (false, false) => "was not on hold",
    };
    writeln!(out, "{h_payto} {state}")?;
    Ok(ExitCode::SUCCESS)
}

/// One hold a line: account, since, reason.
pub fn list_holds(app: &App, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let holds = app
        .storage
        .retention()
        .holds()
        .map_err(|e| anyhow::anyhow!("reading holds: {e}"))?;
    for hold in holds {
        writeln!(
            out,
            "{} {} {}",
            hold.h_payto,
            iso8601_utc(hold.since),
            hold.reason
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

//! Secrets for admin commands: from a prompt without echo, or from standard input, so they do
//! not end up in shell histories and process lists; the command-line form is opt-in.

use std::io::{BufRead as _, IsTerminal as _};

/// Where a command takes a secret from (its `--…-stdin` and `--…-unsafe VALUE` options).
#[derive(Debug)]
pub struct SecretSource {
    pub stdin: bool,
    pub value: Option<String>,
}

/// Reads `what` (e.g. "password") as `source` says; without a choice, prompts on a terminal.
/// `flag` names the standard-input option for the error message.
pub fn read(what: &str, flag: &str, source: SecretSource) -> anyhow::Result<String> {
    let secret = if let Some(value) = source.value {
        value
    } else if source.stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{what}: "))?
    } else {
        anyhow::bail!("standard input is not a terminal: give the {what} on it with {flag}");
    };
    if secret.is_empty() {
        anyhow::bail!("the {what} is empty");
    }
    Ok(secret)
}

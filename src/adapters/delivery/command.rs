//! The command sender: runs the configured helper as the Taler components do — the address as
//! `argv[1]`, the message on standard input, no shell. Exit status 0 means accepted for
//! delivery; anything else, or no exit within the time limit, is a failure.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::adapters::process;
use crate::ports::sender::{SendError, Sender};

/// How long a helper may take.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Kept of a helper's standard error for the log.
const STDERR_LIMIT: usize = 4096;

#[derive(Debug, Clone)]
pub struct CommandSender {
    program: PathBuf,
    timeout: Duration,
    /// Added to talerbox's own environment, overriding same-named variables.
    env: Vec<(String, String)>,
}

impl CommandSender {
    pub fn new(program: impl Into<PathBuf>) -> CommandSender {
        CommandSender {
            program: program.into(),
            timeout: HELPER_TIMEOUT,
            env: Vec::new(),
        }
    }

    /// Extra environment for the helper (the bank's `TAN_*_ENV`).
    pub fn with_env(mut self, env: Vec<(String, String)>) -> CommandSender {
        self.env = env;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> CommandSender {
        self.timeout = timeout;
        self
    }
}

impl Sender for CommandSender {
    fn send(&self, address: &str, message: &str) -> Result<(), SendError> {
        let mut command = Command::new(&self.program);
        command
            .arg(address)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = process::spawn(&mut command).map_err(|e| {
            SendError(format!(
                "could not start the helper {}: {e}",
                self.program.display()
            ))
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may exit without reading; its exit status decides, not the pipe.
            let _ = stdin.write_all(message.as_bytes());
        }
        let stderr = child
            .stderr
            .take()
            .map(|pipe| process::read_on_the_side(pipe, STDERR_LIMIT));
        let status = process::wait_with_timeout(&mut child, self.timeout)
            .map_err(|e| SendError(format!("waiting for the helper: {e}")))?
            .ok_or_else(|| {
                SendError(format!(
                    "the helper did not finish within {} s",
                    self.timeout.as_secs()
                ))
            })?;
        let written = stderr
            .and_then(|reader| process::collect(reader, Duration::from_millis(100)))
            .map_or(0, |(text, _)| text.len());
        if written > 0 {
            // Not the text itself: a helper may echo the address or the PIN.
            tracing::debug!(bytes = written, "the helper wrote to its standard error");
        }
        if status.success() {
            Ok(())
        } else {
            Err(SendError(format!("the helper failed ({status})")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn script(dir: &std::path::Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("helper.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn the_address_is_the_argument_and_the_message_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let helper = script(
            dir.path(),
            &format!("printf '%s|' \"$1\" > {0}; cat >> {0}", out.display()),
        );
        CommandSender::new(&helper)
            .send("a b@example.com", "PIN 12345678\n")
            .unwrap();
        let written = std::fs::read_to_string(out).unwrap();
        assert_eq!(written, "a b@example.com|PIN 12345678\n");
    }

    #[test]
    fn extra_environment_is_added_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let helper = script(
            dir.path(),
            &format!("printf '%s|%s' \"$TAN_TEST\" \"$HOME\" > {}", out.display()),
        );
        CommandSender::new(&helper)
            .with_env(vec![
                ("TAN_TEST".into(), "a b".into()),
                ("HOME".into(), "/nowhere".into()),
            ])
            .send("+41", "m")
            .unwrap();
        assert_eq!(std::fs::read_to_string(out).unwrap(), "a b|/nowhere");
    }

    #[test]
    fn failures_and_timeouts_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let failing = script(dir.path(), "echo oops >&2; exit 3");
        assert!(CommandSender::new(&failing).send("a", "m").is_err());
        assert!(
            CommandSender::new(dir.path().join("missing"))
                .send("a", "m")
                .is_err()
        );
        let slow = script(dir.path(), "exec sleep 5");
        let started = Instant::now();
        let err = CommandSender::new(&slow)
            .with_timeout(Duration::from_millis(200))
            .send("a", "m")
            .unwrap_err();
        assert!(err.0.contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}

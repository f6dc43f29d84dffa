//! The command sender: runs the configured helper as the Taler components do — the address as
//! `argv[1]`, the message on standard input, no shell. Exit status 0 means accepted for
//! delivery; anything else, or no exit within the time limit, is a failure.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::ports::sender::{SendError, Sender};

/// How long a helper may take.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Kept of a helper's standard error for the log.
const STDERR_LIMIT: u64 = 4096;

#[derive(Debug, Clone)]
pub struct CommandSender {
    program: PathBuf,
    timeout: Duration,
}

impl CommandSender {
    pub fn new(program: impl Into<PathBuf>) -> CommandSender {
        CommandSender {
            program: program.into(),
            timeout: HELPER_TIMEOUT,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> CommandSender {
        self.timeout = timeout;
        self
    }

    /// Waits for the helper's exit, polling with a growing pause; kills it after the timeout.
    fn wait(&self, child: &mut Child) -> Result<ExitStatus, SendError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if started.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(SendError(format!(
                        "the helper did not finish within {} s",
                        self.timeout.as_secs()
                    )));
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(SendError(format!("waiting for the helper: {e}"))),
            }
        }
    }
}

impl CommandSender {
    /// Starts the helper. A helper file that is still open for writing somewhere (just
    /// installed, or written while another thread forks) fails with "text file busy" for a
    /// moment: that is retried briefly instead of failing the delivery.
    fn spawn(&self, address: &str) -> std::io::Result<std::process::Child> {
        let mut attempts = 0;
        loop {
            let started = Command::new(&self.program)
                .arg(address)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn();
            match started {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 20 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }
}

impl Sender for CommandSender {
    fn send(&self, address: &str, message: &str) -> Result<(), SendError> {
        let mut child = self.spawn(address).map_err(|e| {
            SendError(format!(
                "could not start the helper {}: {e}",
                self.program.display()
            ))
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may exit without reading; its exit status decides, not the pipe.
            let _ = stdin.write_all(message.as_bytes());
        }
        // Read standard error on the side, so that a chatty helper cannot block on a full pipe.
        let stderr = child.stderr.take().map(|pipe| {
            std::thread::spawn(move || {
                std::io::copy(&mut pipe.take(STDERR_LIMIT), &mut std::io::sink()).unwrap_or(0)
            })
        });
        let status = self.wait(&mut child)?;
        if let Some(reader) = stderr {
            // A grandchild may keep the pipe open: give the reader a moment, never more.
            let deadline = Instant::now() + Duration::from_millis(100);
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if reader.is_finished() {
                let bytes = reader.join().unwrap_or_default();
                if bytes > 0 {
                    // Not the text itself: a helper may echo the address or the PIN.
                    tracing::debug!(bytes, "the helper wrote to its standard error");
                }
            }
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

//! The delivery of the bank's TAN codes (corebank-tan.md §7): per channel, the configured
//! script run by the command sender, or the built-in outbox for the value `talerbox-outbox`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::delivery::{CommandSender, OutboxSender};
use crate::config::BankConfig;
use crate::domain::tan::TanSenders;
use crate::ports::clock::Clock;
use crate::ports::sender::Sender;

/// The `TAN_SMS` / `TAN_EMAIL` value that selects the outbox of the data directory.
pub const OUTBOX_DELIVERY: &str = "talerbox-outbox";

/// The senders of the configured channels; `outbox` is the data directory's outbox folder.
/// A script that cannot run is logged as a warning: the channel stays advertised and its
/// sends fail with 502 (§2, §7).
pub fn tan_senders(bank: &BankConfig, outbox: &Path, clock: Arc<dyn Clock>) -> TanSenders {
    let timeout = Duration::from_micros(bank.tan_script_timeout.as_micros());
    let sender = |option: &str,
                  script: &Option<String>,
                  env: &[(String, String)]|
     -> Option<Arc<dyn Sender>> {
        let script = script.as_deref()?;
        if script == OUTBOX_DELIVERY {
            return Some(Arc::new(OutboxSender::new(outbox, Arc::clone(&clock))));
        }
        if let Some(problem) = script_problem(script) {
            tracing::warn!(
                "[libeufin-bank] {option} = {script}: {problem}; codes on this channel cannot \
                 be sent (502) until it is fixed"
            );
        }
        Some(Arc::new(
            CommandSender::new(script)
                .with_timeout(timeout)
                .with_env(env.to_vec()),
        ))
    };
    TanSenders {
        sms: sender("TAN_SMS", &bank.tan_sms, &bank.tan_sms_env),
        email: sender("TAN_EMAIL", &bank.tan_email, &bank.tan_email_env),
    }
}

/// Why `script` cannot be run, if it cannot: a path to nothing or to a file without execute
/// permission, or a bare name found nowhere on `PATH` (where the command sender looks).
fn script_problem(script: &str) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |metadata: &std::fs::Metadata| {
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    };
    if script.contains('/') {
        return match std::fs::metadata(script) {
            Err(_) => Some("no such file"),
            Ok(metadata) if !executable(&metadata) => Some("not an executable file"),
            Ok(_) => None,
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .any(|dir| std::fs::metadata(dir.join(script)).is_ok_and(|m| executable(&m)));
    (!found).then_some("not found on PATH")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};
    use crate::domain::primitives::Timestamp;
    use crate::ports::clock::FakeClock;

    fn bank(text: &str) -> BankConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("talerbox.conf");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), &Overrides::default())
            .unwrap()
            .bank
    }

    #[test]
    fn scripts_that_cannot_run_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.sh");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let missing = dir.path().join("missing.sh");
        assert_eq!(
            script_problem(missing.to_str().unwrap()),
            Some("no such file")
        );
        assert_eq!(
            script_problem(plain.to_str().unwrap()),
            Some("not an executable file")
        );
        assert_eq!(
            script_problem(dir.path().to_str().unwrap()),
            Some("not an executable file")
        );
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(script_problem(plain.to_str().unwrap()), None);
        assert_eq!(script_problem("sh"), None);
        assert_eq!(
            script_problem("talerbox-no-such-tan-script"),
            Some("not found on PATH")
        );
    }

    #[test]
    fn outbox_and_script_delivery_per_channel() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("tan.sh");
        let record = dir.path().join("record");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s|%s|' \"$1\" \"$TAN_KEY\" >> {0}; cat >> {0}\n",
                record.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = bank(&format!(
            "[libeufin-bank]\nTAN_SMS = talerbox-outbox\nTAN_EMAIL = {}\n\
             TAN_EMAIL_ENV = {{\"TAN_KEY\": \"k1\"}}\n",
            script.display()
        ));
        let outbox = dir.path().join("outbox");
        let clock = Arc::new(FakeClock::at(
            Timestamp::from_seconds(1_700_000_000).unwrap(),
        ));
        let senders = tan_senders(&config, &outbox, clock);
        let message = "T-01234567 is your Taler Bank verification code";
        senders.sms.unwrap().send("+41791234567", message).unwrap();
        let listed = OutboxSender::list(&outbox).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].address, "+41791234567");
        assert_eq!(listed[0].message, message);
        senders.email.unwrap().send("a@b.example", message).unwrap();
        assert_eq!(
            std::fs::read_to_string(&record).unwrap(),
            format!("a@b.example|k1|{message}")
        );
        let none = tan_senders(
            &bank(""),
            &outbox,
            Arc::new(FakeClock::at(Timestamp::EPOCH)),
        );
        assert!(none.sms.is_none() && none.email.is_none());
    }
}

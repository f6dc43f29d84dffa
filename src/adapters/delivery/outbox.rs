//! The outbox sender (the default, for offline demos): each message becomes one file in a
//! directory. The file holds exactly the message, so that the PIN stays its only run of 8
//! digits; the address goes into the file name:
//! `<seconds since the epoch>-<sequence>-<percent-encoded address>.txt`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::adapters::private_files;
use crate::domain::primitives::Timestamp;
use crate::ports::clock::Clock;
use crate::ports::sender::{SendError, Sender};

/// Longest encoded address in a file name (names are limited to 255 bytes).
const MAX_ENCODED_ADDRESS: usize = 160;
/// Marks an address cut to fit the file name.
const TRUNCATED: char = '~';

pub struct OutboxSender {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    sequence: AtomicU64,
}

/// One message of an outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub file: PathBuf,
    pub time: Timestamp,
    pub address: String,
    /// The address did not fit the file name; `address` is its beginning.
    pub truncated: bool,
    pub message: String,
}

fn kept(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"@.+_-".contains(&byte)
}

fn encode_address(address: &str) -> String {
    let mut encoded = String::new();
    for byte in address.bytes() {
        let piece = if kept(byte) {
            char::from(byte).to_string()
        } else {
            format!("%{byte:02X}")
        };
        if encoded.len() + piece.len() > MAX_ENCODED_ADDRESS {
            encoded.push(TRUNCATED);
            break;
        }
        encoded.push_str(&piece);
    }
    encoded
}

fn decode_address(encoded: &str) -> (String, bool) {
    let (encoded, truncated) = match encoded.strip_suffix(TRUNCATED) {
        Some(rest) => (rest, true),
        None => (encoded, false),
    };
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&decoded).into_owned(), truncated)
}

impl OutboxSender {
    pub fn new(dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> OutboxSender {
        OutboxSender {
            dir: dir.into(),
            clock,
            sequence: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The messages in `dir`, oldest first; an absent directory is an empty outbox.
    pub fn list(dir: &Path) -> std::io::Result<Vec<OutboxMessage>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut messages = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".txt") else {
                continue;
            };
            let mut parts = stem.splitn(3, '-');
            let (Some(seconds), Some(_), Some(encoded)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(time) = seconds.parse().ok().and_then(Timestamp::from_seconds) else {
                continue;
            };
            let (address, truncated) = decode_address(encoded);
            let message = std::fs::read_to_string(&path)?;
            messages.push(OutboxMessage {
                file: path,
                time,
                address,
                truncated,
                message,
            });
        }
        messages.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(messages)
    }
}

impl Sender for OutboxSender {
    fn send(&self, address: &str, message: &str) -> Result<(), SendError> {
        let failed = |e: std::io::Error| SendError(format!("writing to the outbox: {e}"));
        private_files::create_dir(&self.dir).map_err(failed)?;
        let seconds = self.clock.now().as_seconds().unwrap_or_default();
        let encoded = encode_address(address);
        loop {
            let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
            let name = format!("{seconds:011}-{sequence:08}-{encoded}.txt");
            let file = private_files::create_new_file(&self.dir.join(name));
            match file {
                // Taken by an earlier run of the server in the same second: next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(failed(e)),
                Ok(mut file) => return file.write_all(message.as_bytes()).map_err(failed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::clock::FakeClock;

    #[cfg(unix)]
    #[test]
    fn the_outbox_and_its_messages_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at(
            Timestamp::from_seconds(1_700_000_000).unwrap(),
        ));
        let outbox = OutboxSender::new(dir.path().join("outbox/instance"), clock);
        outbox.send("alice@example.com", "PIN 12345678").unwrap();
        assert_eq!(mode(&dir.path().join("outbox")), 0o700);
        assert_eq!(mode(outbox.dir()), 0o700);
        let messages = OutboxSender::list(outbox.dir()).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(mode(&messages[0].file), 0o600);
    }

    #[test]
    fn messages_round_trip_with_their_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at(
            Timestamp::from_seconds(1_700_000_000).unwrap(),
        ));
        let outbox = OutboxSender::new(dir.path().join("outbox"), clock);
        assert!(OutboxSender::list(outbox.dir()).unwrap().is_empty());
        outbox.send("alice@example.com", "PIN 12345678").unwrap();
        outbox.send("+41 79/1 %x", "second").unwrap();
        let postal = format!("{{\"CONTACT_NAME\":\"{}\"}}", "Zoë ".repeat(40));
        outbox.send(&postal, "third").unwrap();
        let messages = OutboxSender::list(outbox.dir()).unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0].address, "alice@example.com");
        assert_eq!(messages[0].message, "PIN 12345678");
        assert_eq!(messages[0].time.as_seconds(), Some(1_700_000_000));
        assert_eq!(
            (messages[1].address.as_str(), messages[1].truncated),
            ("+41 79/1 %x", false)
        );
        assert!(messages[2].truncated);
        assert!(postal.starts_with(&messages[2].address[..18]));
    }
}

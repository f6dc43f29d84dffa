//! Keys in the data directory: the exchange's attribute key file and master key pair and the
//! bank's TAN body key, created at first start (mode 0600), and the guard against a silent
//! attribute key change.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::adapters::private_files;
use crate::domain::primitives::{AttributeKey, EddsaPrivateKey, EddsaPublicKey, base32};
use crate::domain::tan::BodyKey;
use crate::ports::meta::MetaStore;
use crate::ports::random::{Random, random_bytes};

/// Holds base32 of 32 random bytes; its trimmed text is the attribute secret.
pub const ATTRIBUTE_KEY_FILE: &str = "attribute-key";
/// Holds the master private key (base32 of the 32-byte seed).
pub const MASTER_KEY_FILE: &str = "master-key";
/// Holds the journal key (base32 of the 32-byte seed), which signs checkpoints and export
/// proofs (compliance-evidence.md §1.5, §3).
pub const JOURNAL_KEY_FILE: &str = "journal-key";
/// Holds base32 of the 32-byte key of the TAN body hashes (corebank-tan.md §3.4).
pub const TAN_BODY_KEY_FILE: &str = "tan-body-key";
/// `talerbox_meta` entry with hex SHA-256(K).
const FINGERPRINT_META: &str = "attribute_key_fingerprint";

/// Where the attribute key came from, for messages (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Option,
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Option => f.write_str("[exchange] ATTRIBUTE_ENCRYPTION_KEY"),
            KeySource::File(path) => write!(f, "key file {}", path.display()),
        }
    }
}

/// The attribute key: from the option if set, else from the key file (created if missing).
pub fn attribute_key(
    option: Option<&str>,
    data_dir: &Path,
    random: &dyn Random,
) -> anyhow::Result<(AttributeKey, KeySource)> {
    if let Some(secret) = option {
        return Ok((AttributeKey::from_secret_text(secret), KeySource::Option));
    }
    let path = data_dir.join(ATTRIBUTE_KEY_FILE);
    let text = read_or_create_secret(&path, || base32::encode(&random_bytes::<32>(random)))?;
    let secret = text.trim();
    if secret.is_empty() {
        anyhow::bail!("the attribute key file {} is empty", path.display());
    }
    Ok((
        AttributeKey::from_secret_text(secret),
        KeySource::File(path),
    ))
}

/// The master private key of the data directory (created if missing).
pub fn master_private_key(data_dir: &Path, random: &dyn Random) -> anyhow::Result<EddsaPrivateKey> {
    let path = data_dir.join(MASTER_KEY_FILE);
    let text = read_or_create_secret(&path, || {
        EddsaPrivateKey::from_seed(random_bytes(random)).to_base32_secret()
    })?;
    text.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("the master key file {} is malformed", path.display()))
}

/// The journal key of the data directory (created if missing).
pub fn journal_key(data_dir: &Path, random: &dyn Random) -> anyhow::Result<EddsaPrivateKey> {
    let path = data_dir.join(JOURNAL_KEY_FILE);
    let text = read_or_create_secret(&path, || {
        EddsaPrivateKey::from_seed(random_bytes(random)).to_base32_secret()
    })?;
    text.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("the journal key file {} is malformed", path.display()))
}

/// The key of the bank's TAN body hashes (created if missing). Kept out of the database, so a
/// copy of the database alone allows no guessing of the bodies a hash covers.
pub fn tan_body_key(data_dir: &Path, random: &dyn Random) -> anyhow::Result<BodyKey> {
    let path = data_dir.join(TAN_BODY_KEY_FILE);
    let text = read_or_create_secret(&path, || base32::encode(&random_bytes::<32>(random)))?;
    base32::decode_array::<32>(text.trim())
        .map(BodyKey::new)
        .map_err(|_| anyhow::anyhow!("the TAN body key file {} is malformed", path.display()))
}

/// The exchange's effective master key: `[exchange] MASTER_PUBLIC_KEY` if set (its private
/// key stays offline), else the key pair of the data directory.
#[derive(Debug, Clone)]
pub struct MasterKey {
    pub public: EddsaPublicKey,
    /// Present only for a key pair generated in the data directory.
    pub private: Option<EddsaPrivateKey>,
}

pub fn master_key(
    configured: Option<EddsaPublicKey>,
    data_dir: &Path,
    random: &dyn Random,
) -> anyhow::Result<MasterKey> {
    if let Some(public) = configured {
        return Ok(MasterKey {
            public,
            private: None,
        });
    }
    let private = master_private_key(data_dir, random)?;
    Ok(MasterKey {
        public: private.public_key(),
        private: Some(private),
    })
}

/// Reads `path`, or creates it with `make()` readable by the owner only. A concurrent creator
/// wins the race cleanly: the loser reads the winner's file.
fn read_or_create_secret(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut file = match private_files::create_new_file(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()));
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    };
    let text = make() + "\n";
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(text)
}

/// What the stored fingerprint says about the key in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// No fingerprint yet: now stored.
    FirstUse,
    Unchanged,
    /// Different, and accepted: the new fingerprint is stored.
    ChangeAccepted,
}

/// Refuses a key whose fingerprint differs from the stored one unless `accept_new`.
pub fn guard_attribute_key(
    db: &dyn MetaStore,
    key: &AttributeKey,
    source: &KeySource,
    accept_new: bool,
) -> anyhow::Result<KeyCheck> {
    let fingerprint = data_encoding::HEXLOWER.encode(&key.fingerprint());
    let stored = db
        .get(FINGERPRINT_META)
        .context("reading the attribute key fingerprint")?;
    let check = match stored {
        None => KeyCheck::FirstUse,
        Some(stored) if stored == fingerprint => return Ok(KeyCheck::Unchanged),
        Some(_) if accept_new => KeyCheck::ChangeAccepted,
        Some(_) => anyhow::bail!(
            "the attribute encryption key from the {source} is not the key this database was \
             used with; attributes stored under the old key could no longer be read. Restore \
             the old key, or start once with `talerbox serve --accept-new-attribute-key` to \
             accept the new one (old rows then show without attributes)"
        ),
    };
    let adopted = match (&stored, check) {
        (Some(old), KeyCheck::ChangeAccepted) => Some(
            crate::domain::evidence::events::attribute_key_adopted(old, &fingerprint),
        ),
        _ => None,
    };
    db.set(FINGERPRINT_META, &fingerprint, adopted)
        .context("storing the attribute key fingerprint")?;
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::{Database, DbOptions};
    use crate::ports::random::SeededRandom;

    #[test]
    fn the_tan_body_key_is_created_once_private_and_checked() {
        use crate::domain::tan::CanonicalBody;
        let dir = tempfile::tempdir().unwrap();
        let body = CanonicalBody::of_json(&serde_json::json!({"a": 1}));
        let first = tan_body_key(dir.path(), &SeededRandom::new(1)).unwrap();
        let again = tan_body_key(dir.path(), &SeededRandom::new(2)).unwrap();
        assert_eq!(first.hash(&[0; 16], &body), again.hash(&[0; 16], &body));
        let path = dir.path().join(TAN_BODY_KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        let fresh = tan_body_key(other.path(), &SeededRandom::new(2)).unwrap();
        assert_ne!(first.hash(&[0; 16], &body), fresh.hash(&[0; 16], &body));
        std::fs::write(&path, "not base32\n").unwrap();
        assert!(tan_body_key(dir.path(), &SeededRandom::new(1)).is_err());
    }

    #[test]
    fn key_files_are_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let random = SeededRandom::new(1);
        let (first, source) = attribute_key(None, dir.path(), &random).unwrap();
        let path = dir.path().join(ATTRIBUTE_KEY_FILE);
        assert_eq!(source, KeySource::File(path.clone()));
        let (again, _) = attribute_key(None, dir.path(), &SeededRandom::new(2)).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 52);
        assert_eq!(
            first.fingerprint(),
            AttributeKey::from_secret_text(text.trim()).fingerprint()
        );
        let master = master_private_key(dir.path(), &random).unwrap();
        let master_again = master_private_key(dir.path(), &SeededRandom::new(3)).unwrap();
        assert_eq!(master.public_key(), master_again.public_key());
        #[cfg(unix)]
        for file in [ATTRIBUTE_KEY_FILE, MASTER_KEY_FILE] {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    #[test]
    fn the_option_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (key, source) = attribute_key(
            Some("talerbox-test-key-A"),
            dir.path(),
            &SeededRandom::new(1),
        )
        .unwrap();
        assert_eq!(source, KeySource::Option);
        assert_eq!(
            key.fingerprint(),
            AttributeKey::from_secret_text("talerbox-test-key-A").fingerprint()
        );
        assert!(!dir.path().join(ATTRIBUTE_KEY_FILE).exists());
    }

    #[test]
    fn a_changed_key_is_refused_unless_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("k.sqlite3"), &DbOptions::default()).unwrap();
        let old = AttributeKey::from_secret_text("old");
        let new = AttributeKey::from_secret_text("new");
        let source = KeySource::Option;
        assert_eq!(
            guard_attribute_key(&db, &old, &source, false).unwrap(),
            KeyCheck::FirstUse
        );
        assert_eq!(
            guard_attribute_key(&db, &old, &source, false).unwrap(),
            KeyCheck::Unchanged
        );
        let err = guard_attribute_key(&db, &new, &source, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ATTRIBUTE_ENCRYPTION_KEY"), "{err}");
        assert!(err.contains("--accept-new-attribute-key"), "{err}");
        assert_eq!(
            guard_attribute_key(&db, &new, &source, true).unwrap(),
            KeyCheck::ChangeAccepted
        );
        assert_eq!(
            guard_attribute_key(&db, &new, &source, false).unwrap(),
            KeyCheck::Unchanged
        );
        assert!(guard_attribute_key(&db, &old, &source, false).is_err());
    }
}

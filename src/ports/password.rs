//! Password hashing (argon2id in production, a cheap stand-in in tests).

/// Hashing failed (e.g. out of memory); never carries the password.
#[derive(Debug, Clone, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordHashError(pub String);

pub trait PasswordHasher: Send + Sync {
    /// A self-describing hash (PHC string) of `password` with a fresh salt.
    fn hash(&self, password: &str) -> Result<String, PasswordHashError>;
    /// Whether `password` matches `hash`; malformed hashes never match.
    fn verify(&self, password: &str, hash: &str) -> bool;
}

/// A fast, salted SHA-256 hasher for tests and demos: never for real passwords.
#[derive(Debug, Default)]
pub struct InsecureTestHasher {
    counter: std::sync::atomic::AtomicU64,
}

impl PasswordHasher for InsecureTestHasher {
    fn hash(&self, password: &str) -> Result<String, PasswordHashError> {
        let salt = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(format!("test${salt}${}", digest(salt, password)))
    }

    fn verify(&self, password: &str, hash: &str) -> bool {
        let mut parts = hash.split('$');
        let (Some("test"), Some(salt), Some(expected), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(salt) = salt.parse() else { return false };
        crate::domain::primitives::constant_time_eq(
            digest(salt, password).as_bytes(),
            expected.as_bytes(),
        )
    }
}

fn digest(salt: u64, password: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::new()
        .chain_update(salt.to_be_bytes())
        .chain_update(password.as_bytes())
        .finalize();
    data_encoding::HEXLOWER.encode(&hash)
}

//! argon2id password hashing (PHC strings, 16-byte random salts).

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Condvar, Mutex};

use crate::adapters::system::OsRandom;
use crate::ports::password::{PasswordHashError, PasswordHasher};
use crate::ports::random::{Random, random_bytes};

/// argon2id cost parameters (`[libeufin-bank] PASSWORD_HASH_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// OWASP's recommendation for argon2id: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Argon2Params {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

pub struct Argon2Hasher {
    argon2: Argon2<'static>,
    gate: HashingGate,
}

/// Lets at most one hash per core run at a time: more would only make the memory-hard
/// hashes evict each other from the caches, so the waiting ones queue here instead.
struct HashingGate {
    running: Mutex<usize>,
    freed: Condvar,
    limit: usize,
}

impl HashingGate {
    fn new(limit: usize) -> Self {
        HashingGate {
            running: Mutex::new(0),
            freed: Condvar::new(),
            limit: limit.max(1),
        }
    }

    fn run<T>(&self, work: impl FnOnce() -> T) -> T {
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            while *running >= self.limit {
                running = self.freed.wait(running).unwrap_or_else(|p| p.into_inner());
            }
            *running += 1;
        }
        let result = work();
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        *running -= 1;
        self.freed.notify_one();
        result
    }
}

impl Argon2Hasher {
    pub fn new(params: Argon2Params) -> Result<Argon2Hasher, PasswordHashError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| PasswordHashError(format!("invalid argon2 parameters: {e}")))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Argon2Hasher {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            gate: HashingGate::new(cores),
        })
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &str) -> Result<String, PasswordHashError> {
        let salt_bytes: [u8; 16] = random_bytes(&OsRandom as &dyn Random);
        let salt =
            SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordHashError(e.to_string()))?;
        self.gate
            .run(|| self.argon2.hash_password(password.as_bytes(), &salt))
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordHashError(e.to_string()))
    }

    /// The parameters stored in the hash apply, so older hashes stay valid when the
    /// configured cost changes.
    fn verify(&self, password: &str, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        self.argon2
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Hasher {
        Argon2Hasher::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_with_fresh_salts() {
        let hasher = cheap();
        let first = hasher.hash("correct horse").unwrap();
        let second = hasher.hash("correct horse").unwrap();
        assert!(first.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{first}");
        assert_ne!(first, second);
        assert!(hasher.verify("correct horse", &first));
        assert!(!hasher.verify("correct horsE", &first));
        assert!(!hasher.verify("correct horse", "not a hash"));
    }

    #[test]
    fn the_default_parameters_are_owasp_grade() {
        let hasher = Argon2Hasher::new(Argon2Params::default()).unwrap();
        let hash = hasher.hash("pw").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        // A hash made with other parameters still verifies.
        assert!(hasher.verify("pw", &cheap().hash("pw").unwrap()));
    }

    #[test]
    fn invalid_parameters_are_an_error() {
        assert!(
            Argon2Hasher::new(Argon2Params {
                memory_kib: 1,
                iterations: 0,
                parallelism: 1
            })
            .is_err()
        );
    }
}

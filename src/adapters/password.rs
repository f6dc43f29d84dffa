//! argon2id password hashing (PHC strings, 16-byte random salts).
//!
//! Every hash and every verification runs in a slot of one bounded pool: at most one per core
//! at a time, each on its slot's reused memory. A flood of logins therefore queues instead of
//! allocating an argon2 block (~19 MiB) per request, and memory stays at the pool's size.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use prometheus_client::metrics::gauge::Gauge;

use crate::adapters::system::OsRandom;
use crate::domain::primitives::constant_time_eq;
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
    params: Params,
    pool: BlockPool,
}

/// The memory of `size` argon2 computations. A computation takes a slot (waiting while all are
/// busy), runs on the slot's blocks and gives them back, so they are allocated once per slot.
/// A stored hash that needs more memory than the configured cost gets a buffer of its own for
/// that one call, freed afterwards.
struct BlockPool {
    free: Mutex<Vec<Vec<Block>>>,
    returned: Condvar,
    size: usize,
    /// Blocks a slot keeps between calls (the configured cost).
    kept_blocks: usize,
    /// The most computations seen running at once.
    peak: AtomicUsize,
    /// Computations waiting for a slot.
    waiting: Gauge,
}

impl BlockPool {
    fn new(size: usize, kept_blocks: usize) -> Self {
        let size = size.max(1);
        BlockPool {
            free: Mutex::new((0..size).map(|_| Vec::new()).collect()),
            returned: Condvar::new(),
            size,
            kept_blocks,
            peak: AtomicUsize::new(0),
            waiting: Gauge::default(),
        }
    }

    fn run<T>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        let mut slot = {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            let mut waited = false;
            let slot = loop {
                if let Some(slot) = free.pop() {
                    self.peak
                        .fetch_max(self.size - free.len(), Ordering::Relaxed);
                    break slot;
                }
                if !waited {
                    waited = true;
                    self.waiting.inc();
                }
                free = self.returned.wait(free).unwrap_or_else(|p| p.into_inner());
            };
            if waited {
                self.waiting.dec();
            }
            slot
        };
        let result = if blocks <= self.kept_blocks.max(slot.len()) {
            if slot.len() < blocks {
                slot.resize(self.kept_blocks, Block::default());
            }
            work(&mut slot[..blocks])
        } else {
            work(&mut vec![Block::default(); blocks])
        };
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(slot);
        self.returned.notify_one();
        result
    }
}

impl Argon2Hasher {
    /// A hasher whose pool has one slot per core.
    pub fn new(params: Argon2Params) -> Result<Argon2Hasher, PasswordHashError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Argon2Hasher::with_pool_size(params, cores)
    }

    /// A hasher that runs at most `slots` hashes or verifications at once.
    pub fn with_pool_size(
        params: Argon2Params,
        slots: usize,
    ) -> Result<Argon2Hasher, PasswordHashError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(Params::DEFAULT_OUTPUT_LEN),
        )
        .map_err(|e| PasswordHashError(format!("invalid argon2 parameters: {e}")))?;
        let pool = BlockPool::new(slots, params.block_count());
        Ok(Argon2Hasher { params, pool })
    }

    /// The most hashes or verifications that have run at once so far.
    pub fn peak_concurrency(&self) -> usize {
        self.pool.peak.load(Ordering::Relaxed)
    }

    /// The number of computations waiting for a pool slot (a metrics gauge, live).
    pub fn queue_gauge(&self) -> Gauge {
        self.pool.waiting.clone()
    }

    /// The raw argon2 output of `password` under `argon2`, computed in a pool slot.
    fn compute(
        &self,
        argon2: &Argon2<'_>,
        blocks: usize,
        password: &str,
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::Error> {
        self.pool.run(blocks, |memory| {
            argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, memory)
        })
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &str) -> Result<String, PasswordHashError> {
        let salt_bytes: [u8; 16] = random_bytes(&OsRandom as &dyn Random);
        let salt =
            SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordHashError(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.compute(
            &argon2,
            self.params.block_count(),
            password,
            &salt_bytes,
            &mut out,
        )
        .map_err(|e| PasswordHashError(e.to_string()))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params)
                .map_err(|e| PasswordHashError(e.to_string()))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| PasswordHashError(e.to_string()))?),
        };
        Ok(phc.to_string())
    }

    /// The parameters stored in the hash apply, so older hashes stay valid when the
    /// configured cost changes.
    fn verify(&self, password: &str, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
            Algorithm::try_from(parsed.algorithm),
            Params::try_from(&parsed),
            parsed.salt,
            parsed.hash,
        ) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(version)) => version,
            Some(Err(_)) => return false,
        };
        let mut salt_buffer = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buffer) else {
            return false;
        };
        let blocks = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        let mut out = vec![0u8; expected.len()];
        self.compute(&argon2, blocks, password, salt, &mut out)
            .is_ok()
            && constant_time_eq(&out, expected.as_bytes())
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
    fn verifications_and_hashes_never_run_more_than_the_pool_size_at_once() {
        let hasher = Argon2Hasher::with_pool_size(
            Argon2Params {
                memory_kib: 256,
                iterations: 4,
                parallelism: 1,
            },
            2,
        )
        .unwrap();
        let stored = hasher.hash("right").unwrap();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..16)
                .map(|i| {
                    let (hasher, stored) = (&hasher, &stored);
                    scope.spawn(move || {
                        if i % 4 == 0 {
                            hasher.hash("another").unwrap();
                        } else {
                            // Failed logins, the flood that must not grow memory.
                            assert!(!hasher.verify("wrong", stored));
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.join().unwrap();
            }
        });
        let peak = hasher.peak_concurrency();
        assert!((1..=2).contains(&peak), "{peak} ran at once");
        // Each slot holds the configured cost's blocks once, not one set per call.
        let free = hasher.pool.free.lock().unwrap();
        assert_eq!(free.len(), 2);
        assert!(free.iter().all(|slot| slot.len() <= 256), "slots grew");
    }

    #[test]
    fn hashes_of_the_argon2_crate_and_costlier_hashes_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let hasher = cheap();
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let costly = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(512, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert!(hasher.verify("pw", &costly));
        assert!(!hasher.verify("pW", &costly));
        // The costlier hash ran on a buffer of its own: the slot kept the configured size.
        let free = hasher.pool.free.lock().unwrap();
        assert!(free.iter().all(|slot| slot.len() <= 64), "slot grew");
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

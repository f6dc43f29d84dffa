//! The real clock and the operating system's random generator (the only places allowed to
//! read them, see `clippy.toml`), and a thread for blocking work started from async code.

use crate::domain::primitives::Timestamp;
use crate::ports::clock::Clock;
use crate::ports::random::Random;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_micros(u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX - 1))
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    #[allow(clippy::disallowed_types)]
    fn fill(&self, buffer: &mut [u8]) {
        use rand_core::RngCore as _;
        rand_core::OsRng.fill_bytes(buffer);
    }
}

/// Runs `work` on a short-lived thread of its own and waits for it: for the few store calls
/// made while setting up async code (startup, the first look at the change counter). The
/// PostgreSQL client blocks on a runtime of its own, which must not start inside the
/// server's; the SQLite stores do not mind either way.
pub fn outside_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> std::thread::Result<T> {
    std::thread::scope(|scope| scope.spawn(work).join())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_is_after_2024() {
        assert!(SystemClock.now().as_seconds().unwrap() > 1_700_000_000);
    }

    #[test]
    fn os_random_is_not_constant() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        OsRandom.fill(&mut a);
        OsRandom.fill(&mut b);
        assert_ne!(a, b);
    }
}

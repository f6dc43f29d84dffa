//! Time comes through this port, so domain rules (expiry, retransmission gaps) are testable
//! with a fake clock.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::primitives::{RelativeTime, Timestamp};

pub trait Clock: Send + Sync {
    /// The current time, rounded down to whole seconds as Taler timestamps are.
    fn now(&self) -> Timestamp;
}

/// A clock that stands still until told to move (for tests and demos).
#[derive(Debug)]
pub struct FakeClock {
    micros: AtomicU64,
}

impl FakeClock {
    pub fn at(time: Timestamp) -> Self {
        FakeClock {
            micros: AtomicU64::new(time.as_micros()),
        }
    }

    pub fn set(&self, time: Timestamp) {
        self.micros.store(time.as_micros(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: RelativeTime) {
        let now = Timestamp::from_micros(self.micros.load(Ordering::SeqCst));
        self.set(now.saturating_add(by));
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.micros.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_clock_moves_only_when_told() {
        let clock = FakeClock::at(Timestamp::from_seconds(1_700_000_000).unwrap());
        assert_eq!(clock.now().as_seconds(), Some(1_700_000_000));
        clock.advance(RelativeTime::from_seconds(90));
        assert_eq!(clock.now().as_seconds(), Some(1_700_000_090));
    }
}

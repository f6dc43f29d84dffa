//! Retention (compliance-evidence.md §4): when an attribute row is due for purging.

use crate::domain::primitives::{RelativeTime, Timestamp};

/// Rows collected before this time are old enough to purge (if expired and not held);
/// `None` when retention is forever.
pub fn purge_cutoff(now: Timestamp, retention: RelativeTime) -> Option<Timestamp> {
    if retention.is_forever() {
        return None;
    }
    Some(Timestamp::from_micros(
        now.as_micros().saturating_sub(retention.as_micros()),
    ))
}

/// A row is due when `collection_time + retention < now`, its expiration has passed, and
/// its account has no hold.
pub fn is_due(
    collection: Timestamp,
    expiration: Timestamp,
    held: bool,
    now: Timestamp,
    retention: RelativeTime,
) -> bool {
    purge_cutoff(now, retention).is_some_and(|cutoff| collection < cutoff)
        && !expiration.is_never()
        && expiration < now
        && !held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_only_when_old_expired_and_not_held() {
        let t = |s| Timestamp::from_seconds(s).unwrap();
        let year = RelativeTime::from_seconds(100);
        let now = t(1_000);
        assert!(is_due(t(899), t(950), false, now, year));
        assert!(
            !is_due(t(900), t(950), false, now, year),
            "not older than retention"
        );
        assert!(!is_due(t(899), t(1_001), false, now, year), "not expired");
        assert!(
            !is_due(t(899), Timestamp::never(), false, now, year),
            "never expires"
        );
        assert!(!is_due(t(899), t(950), true, now, year), "held");
        assert!(!is_due(t(0), t(1), false, now, RelativeTime::forever()));
    }
}

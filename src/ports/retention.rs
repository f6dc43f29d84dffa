//! Retention purges and legal holds (compliance-evidence.md §4), one port over both databases.
//! Each change is journaled in the same transaction.

use crate::domain::evidence::Actor;
use crate::domain::primitives::{NormalizedPaytoHash, RelativeTime, Timestamp};

use super::StoreError;

/// What a purge erased (or would erase).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub rows: u64,
    pub accounts: u64,
}

/// A legal hold as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub h_payto: NormalizedPaytoHash,
    pub reason: String,
    pub since: Timestamp,
}

pub trait RetentionStore: Send + Sync {
    /// Erases the blobs of every due row (collected before `now - retention`, expired, the
    /// account not on hold), with one `retention.purged` entry per account listing its rows;
    /// with `dry_run`, only counts them.
    fn purge_attributes(
        &self,
        now: Timestamp,
        retention: RelativeTime,
        actor: Actor,
        dry_run: bool,
    ) -> Result<Purged, StoreError>;

    /// Sets (or, with `reason` = `None`, releases) the account's legal hold, journaled as
    /// `retention.hold`; answers whether anything changed.
    fn set_hold(
        &self,
        h_payto: NormalizedPaytoHash,
        reason: Option<String>,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Every legal hold, oldest first.
    fn holds(&self) -> Result<Vec<Hold>, StoreError>;
}

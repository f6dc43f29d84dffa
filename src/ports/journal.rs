//! The compliance journal port (compliance-evidence.md §1). Entries describing a change are
//! appended by the store that makes the change, inside the same transaction; this port
//! appends entries of their own (reads, checkpoints) and lists the journal.

use std::sync::{Arc, Mutex};

use crate::domain::evidence::{Actor, sign_checkpoint};
use crate::domain::evidence::{JournalEntry, JournalKind, NewJournalEntry, checkpoint_details};
use crate::domain::primitives::{EddsaPrivateKey, NormalizedPaytoHash, Timestamp};

use super::StoreError;
use super::clock::Clock;

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalQuery {
    pub h_payto: Option<NormalizedPaytoHash>,
    pub actor: Option<String>,
    pub kind: Option<String>,
    pub since: Option<Timestamp>,
    /// Only entries with a smaller serial (paging backwards).
    pub before_serial: Option<u64>,
    pub limit: u64,
}

impl JournalQuery {
    pub fn matches(&self, entry: &JournalEntry) -> bool {
        self.h_payto.is_none_or(|h| entry.h_payto == Some(h.0))
            && self.actor.as_ref().is_none_or(|a| &entry.actor == a)
            && self.kind.as_ref().is_none_or(|k| &entry.kind == k)
            && self.since.is_none_or(|t| entry.at_us >= t.as_micros())
            && self.before_serial.is_none_or(|s| entry.serial < s)
    }
}

pub trait Journal: Send + Sync {
    /// Appends one entry in a transaction of its own; returns its serial. For a read, the
    /// entry is durable when this returns.
    fn append(&self, entry: &NewJournalEntry) -> Result<u64, StoreError>;
    /// Entries matching `query`, newest first.
    fn entries(&self, query: &JournalQuery) -> Result<Vec<JournalEntry>, StoreError>;
    /// Visits every entry from serial `from` on, in serial order, until `visit` says stop.
    fn scan(
        &self,
        from: u64,
        visit: &mut dyn FnMut(JournalEntry) -> bool,
    ) -> Result<(), StoreError>;
    /// Appends a checkpoint signed by `key` unless the newest entry is one already (or the
    /// journal is empty); returns the checkpoint's serial.
    fn checkpoint(&self, key: &EddsaPrivateKey) -> Result<Option<u64>, StoreError>;
}

/// The checkpoint following `last` at `at`, or `None` if `last` is a checkpoint already.
pub fn checkpoint_after(
    last: Option<(u64, &str, [u8; 64])>,
    key: &EddsaPrivateKey,
    at: Timestamp,
) -> Option<NewJournalEntry> {
    let (serial, kind, hash) = last?;
    if kind == JournalKind::JournalCheckpoint.as_str() {
        return None;
    }
    let signature = sign_checkpoint(key, serial, at, &hash);
    Some(NewJournalEntry::new(
        JournalKind::JournalCheckpoint,
        Actor::system(),
        None,
        &checkpoint_details(serial, &signature),
    ))
}

/// A journal in memory, for tests and embedders; it can be told to fail.
pub struct InMemoryJournal {
    clock: Arc<dyn Clock>,
    entries: Mutex<Vec<JournalEntry>>,
    failing: std::sync::atomic::AtomicBool,
}

impl InMemoryJournal {
    pub fn new(clock: Arc<dyn Clock>) -> InMemoryJournal {
        InMemoryJournal {
            clock,
            entries: Mutex::new(Vec::new()),
            failing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From now on every append fails (fault injection).
    pub fn fail_appends(&self, fail: bool) {
        self.failing
            .store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<JournalEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, list: &mut Vec<JournalEntry>, entry: &NewJournalEntry) -> u64 {
        let (serial, prev) = list
            .last()
            .map_or((1, [0u8; 64]), |last| (last.serial + 1, last.hash));
        list.push(JournalEntry::chained(prev, serial, self.clock.now(), entry));
        serial
    }
}

impl Journal for InMemoryJournal {
    fn append(&self, entry: &NewJournalEntry) -> Result<u64, StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Internal(
                "journal append failed (injected)".into(),
            ));
        }
        let mut list = self.lock();
        Ok(self.push(&mut list, entry))
    }

    fn entries(&self, query: &JournalQuery) -> Result<Vec<JournalEntry>, StoreError> {
        let list = self.lock();
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        Ok(list
            .iter()
            .rev()
            .filter(|e| query.matches(e))
            .take(limit)
            .cloned()
            .collect())
    }

    fn scan(
        &self,
        from: u64,
        visit: &mut dyn FnMut(JournalEntry) -> bool,
    ) -> Result<(), StoreError> {
        let list = self.lock().clone();
        for entry in list.into_iter().filter(|e| e.serial >= from) {
            if !visit(entry) {
                break;
            }
        }
        Ok(())
    }

    fn checkpoint(&self, key: &EddsaPrivateKey) -> Result<Option<u64>, StoreError> {
        let mut list = self.lock();
        let last = list.last().map(|e| (e.serial, e.kind.clone(), e.hash));
        let at = self.clock.now();
        let Some(entry) =
            checkpoint_after(last.as_ref().map(|(s, k, h)| (*s, k.as_str(), *h)), key, at)
        else {
            return Ok(None);
        };
        Ok(Some(self.push(&mut list, &entry)))
    }
}

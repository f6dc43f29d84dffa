//! Facts about the installation kept beside the data: key fingerprints, the exchange's
//! registration with the built-in challenger.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::StoreError;
use crate::domain::evidence::NewJournalEntry;

pub trait MetaStore: Send + Sync {
    /// The value stored under `name`, if any.
    fn get(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Stores `value` under `name`, replacing any earlier value, and appends `entry` to the
    /// journal in the same transaction.
    fn set(&self, name: &str, value: &str, entry: Option<NewJournalEntry>)
    -> Result<(), StoreError>;
}

/// In memory; journal entries are kept in order for tests to read.
#[derive(Default)]
pub struct InMemoryMetaStore {
    state: Mutex<(BTreeMap<String, String>, Vec<NewJournalEntry>)>,
}

impl InMemoryMetaStore {
    /// The journal entries written with the values, oldest first.
    pub fn entries(&self) -> Vec<NewJournalEntry> {
        self.state.lock().map(|s| s.1.clone()).unwrap_or_default()
    }
}

impl MetaStore for InMemoryMetaStore {
    fn get(&self, name: &str) -> Result<Option<String>, StoreError> {
        let state = self
            .state
            .lock()
            .map_err(|_| StoreError::Internal("meta store poisoned".into()))?;
        Ok(state.0.get(name).cloned())
    }

    fn set(
        &self,
        name: &str,
        value: &str,
        entry: Option<NewJournalEntry>,
    ) -> Result<(), StoreError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::Internal("meta store poisoned".into()))?;
        state.0.insert(name.to_owned(), value.to_owned());
        state.1.extend(entry);
        Ok(())
    }
}

/// The conformance suite: every store reads back what it was given.
#[cfg(test)]
pub fn conformance(store: &dyn MetaStore) {
    assert_eq!(store.get("k").unwrap(), None);
    store.set("k", "one", None).unwrap();
    store.set("k", "two", None).unwrap();
    store.set("other", "x y", None).unwrap();
    assert_eq!(store.get("k").unwrap().as_deref(), Some("two"));
    assert_eq!(store.get("other").unwrap().as_deref(), Some("x y"));
}

#[cfg(test)]
mod tests {
    #[test]
    fn in_memory_conforms() {
        super::conformance(&super::InMemoryMetaStore::default());
    }
}

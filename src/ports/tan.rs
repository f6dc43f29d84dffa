//! The store of bank TAN challenges (corebank-tan.md §3.4, §12). Each method is one atomic
//! transaction. Send and confirm change a challenge by compare-and-swap on its whole
//! mutable state, so two concurrent confirms never both spend one attempt.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::domain::primitives::Timestamp;
use crate::domain::tan::{Challenge, ChallengeId, ChallengeState, invalidate, mark_used};

use super::StoreError;

pub trait TanStore: Send + Sync {
    /// Stores the new challenges of one 202, all or none.
    fn create(&self, challenges: &[Challenge]) -> Result<(), StoreError>;
    /// The challenge `id` if it belongs to account `account_id`.
    fn challenge(&self, account_id: i64, id: &ChallengeId)
    -> Result<Option<Challenge>, StoreError>;
    /// Stores `new` if the stored challenge still equals `expected`; `false` (nothing
    /// changed) if it moved on in between.
    fn replace(&self, expected: &Challenge, new: &Challenge) -> Result<bool, StoreError>;
    /// Marks the challenges `used` of the account used and, with `invalidate_others`, kills
    /// every other pending or solved-but-unused challenge of it (§4.4, §8.3). `false`
    /// (nothing changed) if one of `used` is no longer solved, unused and alive.
    fn consume(
        &self,
        account_id: i64,
        used: &[ChallengeId],
        invalidate_others: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Deletes the challenges whose last event is before `cutoff`; answers how many.
    fn purge_before(&self, cutoff: Timestamp) -> Result<usize, StoreError>;
}

/// The time of a challenge's latest event (§3.5, garbage collection).
pub fn last_event(challenge: &Challenge) -> Timestamp {
    [
        Some(challenge.created_at),
        challenge.code_expires_at,
        challenge.next_send_at,
        challenge.solved_at,
        challenge.used_at,
        challenge.invalidated_at,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(challenge.created_at)
}

/// An in-memory `TanStore` for unit tests and embedders.
#[derive(Debug, Default)]
pub struct InMemoryTanStore {
    challenges: Mutex<BTreeMap<[u8; 16], Challenge>>,
}

impl InMemoryTanStore {
    /// Runs `change` while no other call can touch the challenges and, if it reports that it
    /// applied, consumes `used` as `consume` does: the in-memory form of one transaction over
    /// an account change and its challenges. `None` (nothing run) if one of `used` is no longer
    /// solved, unused and alive.
    pub fn consume_with<T>(
        &self,
        account_id: i64,
        used: &[ChallengeId],
        invalidate_others: bool,
        now: Timestamp,
        change: impl FnOnce() -> Result<(T, bool), StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut state = self.lock();
        let usable = used.iter().all(|id| {
            state
                .get(id.as_bytes())
                .is_some_and(|c| c.account_id == account_id && c.state() == ChallengeState::Solved)
        });
        if !usable {
            return Ok(None);
        }
        let (outcome, applied) = change()?;
        if !applied {
            return Ok(Some(outcome));
        }
        for challenge in state.values_mut() {
            if challenge.account_id != account_id {
                continue;
            }
            if used.contains(&challenge.id) {
                mark_used(challenge, now);
            } else if invalidate_others {
                invalidate(challenge, now);
            }
        }
        Ok(Some(outcome))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<[u8; 16], Challenge>> {
        match self.challenges.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl TanStore for InMemoryTanStore {
    fn create(&self, challenges: &[Challenge]) -> Result<(), StoreError> {
        let mut state = self.lock();
        if challenges
            .iter()
            .any(|c| state.contains_key(c.id.as_bytes()))
        {
            return Err(StoreError::Internal("duplicate challenge id".into()));
        }
        for challenge in challenges {
            state.insert(*challenge.id.as_bytes(), challenge.clone());
        }
        Ok(())
    }

    fn challenge(
        &self,
        account_id: i64,
        id: &ChallengeId,
    ) -> Result<Option<Challenge>, StoreError> {
        Ok(self
            .lock()
            .get(id.as_bytes())
            .filter(|c| c.account_id == account_id)
            .cloned())
    }

    fn replace(&self, expected: &Challenge, new: &Challenge) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state.get_mut(expected.id.as_bytes()) {
            Some(stored) if stored == expected && new.id == expected.id => {
                *stored = new.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn consume(
        &self,
        account_id: i64,
        used: &[ChallengeId],
        invalidate_others: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let consumed =
            self.consume_with(account_id, used, invalidate_others, now, || Ok(((), true)))?;
        Ok(consumed.is_some())
    }

    fn purge_before(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let before = state.len();
        state.retain(|_, challenge| last_event(challenge) >= cutoff);
        Ok(before - state.len())
    }
}

#[cfg(test)]
mod tests {
    crate::ports::tan_conformance::tan_store_conformance!(super::InMemoryTanStore::default());
}

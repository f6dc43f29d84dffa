//! The store of one challenger instance: clients, validations and grants. Each method is one
//! atomic transaction. Validations change by compare-and-swap on their `version`, so that the
//! domain computes every transition and concurrent requests never both spend one attempt.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::domain::challenges::{Client, Grant, NewGrant, Validation};
use crate::domain::primitives::Timestamp;

use super::StoreError;

/// Result of a compare-and-swap on a validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Stored; carries the new grant's id when one was inserted.
    Updated { grant_id: Option<i64> },
    /// The stored version was not the expected one (or the validation is gone): nothing changed.
    Conflict,
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub validations: usize,
    pub grants: usize,
}

pub trait ChallengeStore: Send + Sync {
    /// Registers a client; ids are never reused.
    fn add_client(&self, redirect_uri: &str, secret_hash: [u8; 32]) -> Result<Client, StoreError>;
    fn client(&self, id: i64) -> Result<Option<Client>, StoreError>;
    /// All clients, by id.
    fn clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Deletes a client with its validations and grants; `false` if there was none.
    fn delete_client(&self, id: i64) -> Result<bool, StoreError>;
    /// Points a client at a new redirect URI; `false` if there is no such client.
    fn set_redirect_uri(&self, id: i64, redirect_uri: &str) -> Result<bool, StoreError>;

    /// Stores a new validation and counts it for its client; `false` (nothing stored) if the
    /// client does not exist.
    fn create_validation(&self, validation: &Validation) -> Result<bool, StoreError>;
    fn validation(&self, nonce: &[u8; 32]) -> Result<Option<Validation>, StoreError>;
    /// The validation whose current authorization code has this hash.
    fn validation_by_code(&self, code_hash: &[u8; 32]) -> Result<Option<Validation>, StoreError>;
    /// Replaces the validation if its stored version is `expected_version`, and inserts `grant`
    /// (for that validation) in the same transaction.
    fn update_validation(
        &self,
        expected_version: u64,
        validation: &Validation,
        grant: Option<&NewGrant>,
    ) -> Result<UpdateOutcome, StoreError>;

    /// Deletes the grants issued from a code; answers how many.
    fn revoke_grants(&self, code_hash: &[u8; 32]) -> Result<usize, StoreError>;
    fn grant(&self, token_hash: &[u8; 32]) -> Result<Option<Grant>, StoreError>;

    /// Deletes grants whose token expired by `now`, then validations expired by `now` that
    /// no remaining grant refers to.
    fn purge_expired(&self, now: Timestamp) -> Result<Purged, StoreError>;
}

/// An in-memory `ChallengeStore` for unit tests and embedders.
#[derive(Debug, Default)]
pub struct InMemoryChallengeStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    clients: BTreeMap<i64, Client>,
    next_client: i64,
    validations: BTreeMap<[u8; 32], Validation>,
    grants: BTreeMap<i64, Grant>,
    next_grant: i64,
}

impl InMemoryChallengeStore {
    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl ChallengeStore for InMemoryChallengeStore {
    fn add_client(&self, redirect_uri: &str, secret_hash: [u8; 32]) -> Result<Client, StoreError> {
        let mut state = self.lock();
        state.next_client += 1;
        let client = Client {
            id: state.next_client,
            redirect_uri: redirect_uri.to_owned(),
            secret_hash,
            validation_counter: 0,
        };
        state.clients.insert(client.id, client.clone());
        Ok(client)
    }

    fn client(&self, id: i64) -> Result<Option<Client>, StoreError> {
        Ok(self.lock().clients.get(&id).cloned())
    }

    fn clients(&self) -> Result<Vec<Client>, StoreError> {
        Ok(self.lock().clients.values().cloned().collect())
    }

    fn set_redirect_uri(&self, id: i64, redirect_uri: &str) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(client) = state.clients.get_mut(&id) else {
            return Ok(false);
        };
        redirect_uri.clone_into(&mut client.redirect_uri);
        Ok(true)
    }

    fn delete_client(&self, id: i64) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if state.clients.remove(&id).is_none() {
            return Ok(false);
        }
        let nonces: Vec<[u8; 32]> = state
            .validations
            .values()
            .filter(|v| v.client_id == id)
            .map(|v| v.nonce)
            .collect();
        for nonce in &nonces {
            state.validations.remove(nonce);
        }
        state.grants.retain(|_, g| !nonces.contains(&g.nonce));
        Ok(true)
    }

    fn create_validation(&self, validation: &Validation) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if state.validations.contains_key(&validation.nonce) {
            return Err(StoreError::Internal("nonce collision".into()));
        }
        let Some(client) = state.clients.get_mut(&validation.client_id) else {
            return Ok(false);
        };
        client.validation_counter += 1;
        state
            .validations
            .insert(validation.nonce, validation.clone());
        Ok(true)
    }

    fn validation(&self, nonce: &[u8; 32]) -> Result<Option<Validation>, StoreError> {
        Ok(self.lock().validations.get(nonce).cloned())
    }

    fn validation_by_code(&self, code_hash: &[u8; 32]) -> Result<Option<Validation>, StoreError> {
        let state = self.lock();
        let found = state
            .validations
            .values()
            .find(|v| v.code.as_ref().is_some_and(|c| &c.hash == code_hash));
        Ok(found.cloned())
    }

    fn update_validation(
        &self,
        expected_version: u64,
        validation: &Validation,
        grant: Option<&NewGrant>,
    ) -> Result<UpdateOutcome, StoreError> {
        let mut state = self.lock();
        let current = state.validations.get(&validation.nonce);
        if current.is_none_or(|v| v.version != expected_version) {
            return Ok(UpdateOutcome::Conflict);
        }
        if let Some(code) = &validation.code {
            let taken = state.validations.values().any(|v| {
                v.nonce != validation.nonce && v.code.as_ref().is_some_and(|c| c.hash == code.hash)
            });
            if taken {
                return Err(StoreError::Internal("authorization code collision".into()));
            }
        }
        let grant_id = match grant {
            None => None,
            Some(new) => {
                if state
                    .grants
                    .values()
                    .any(|g| g.token_hash == new.token_hash)
                {
                    return Err(StoreError::Internal("access token collision".into()));
                }
                state.next_grant += 1;
                let id = state.next_grant;
                state
                    .grants
                    .insert(id, stored_grant(id, validation.nonce, new));
                Some(id)
            }
        };
        state
            .validations
            .insert(validation.nonce, validation.clone());
        Ok(UpdateOutcome::Updated { grant_id })
    }

    fn revoke_grants(&self, code_hash: &[u8; 32]) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let before = state.grants.len();
        state.grants.retain(|_, g| &g.code_hash != code_hash);
        Ok(before - state.grants.len())
    }

    fn grant(&self, token_hash: &[u8; 32]) -> Result<Option<Grant>, StoreError> {
        let state = self.lock();
        let found = state.grants.values().find(|g| &g.token_hash == token_hash);
        Ok(found.cloned())
    }

    fn purge_expired(&self, now: Timestamp) -> Result<Purged, StoreError> {
        let mut state = self.lock();
        let grants_before = state.grants.len();
        state.grants.retain(|_, g| g.token_expires > now);
        let grants = grants_before - state.grants.len();
        let referenced: Vec<[u8; 32]> = state.grants.values().map(|g| g.nonce).collect();
        let validations_before = state.validations.len();
        state
            .validations
            .retain(|nonce, v| !v.is_expired(now) || referenced.contains(nonce));
        let validations = validations_before - state.validations.len();
        Ok(Purged {
            validations,
            grants,
        })
    }
}

/// The stored form of a new grant; shared by the store implementations.
pub fn stored_grant(id: i64, nonce: [u8; 32], new: &NewGrant) -> Grant {
    Grant {
        id,
        nonce,
        token_hash: new.token_hash,
        code_hash: new.code_hash,
        address: new.address.clone(),
        address_type: new.address_type.clone(),
        address_expires: new.address_expires,
        token_expires: new.token_expires,
    }
}

#[cfg(test)]
mod tests {
    crate::ports::challenge_conformance::challenge_store_conformance!(
        super::InMemoryChallengeStore::default()
    );
}

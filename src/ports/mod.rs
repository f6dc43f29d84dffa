//! Ports: what the domain needs from the world, as traits, with in-memory implementations
//! for tests and embedders.

#[cfg(test)]
pub mod account_conformance;
pub mod accounts;
pub mod aml;
#[cfg(test)]
pub mod aml_conformance;
pub mod attribute_cipher;
pub mod clock;
pub mod health;
pub mod password;
pub mod pdf;
pub mod random;

/// A store could not do its job; the domain answers such failures with a 5xx.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Temporarily unable (busy, pool exhausted): worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Internal(String),
}

impl StoreError {
    /// An amount computation inside a transaction failed (e.g. overflow past 2^52).
    pub fn amount(error: crate::domain::primitives::AmountError) -> StoreError {
        StoreError::Internal(format!("amount arithmetic: {error}"))
    }
}

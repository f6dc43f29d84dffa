//! Ports: what the domain needs from the world, as traits, with in-memory implementations
//! for tests and embedders.

#[cfg(test)]
pub mod account_conformance;
pub mod accounts;
pub mod aml;
#[cfg(test)]
pub mod aml_conformance;
pub mod attribute_cipher;
#[cfg(test)]
pub mod challenge_conformance;
pub mod challenges;
pub mod clock;
pub mod health;
pub mod journal;
pub mod kyc;
#[cfg(test)]
pub mod kyc_conformance;
pub mod meta;
pub mod password;
pub mod pdf;
pub mod programs;
pub mod provider_http;
pub mod random;
pub mod retention;
#[cfg(test)]
pub mod retention_conformance;
pub mod sender;
pub mod tan;
#[cfg(test)]
pub mod tan_conformance;

/// A store could not do its job; the domain answers such failures with a 5xx.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Temporarily unable (busy, pool exhausted): worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Internal(String),
}

/// A store failure as the services answer it: 503 when worth retrying, else 500. The cause
/// stays in the detail, which the HTTP layer logs and does not send.
impl From<StoreError> for crate::domain::primitives::TalerError {
    fn from(error: StoreError) -> Self {
        use crate::domain::primitives::{ErrorCode, TalerError};
        match error {
            StoreError::Unavailable(cause) => {
                TalerError::new(ErrorCode::GenericDbSoftFailure).with_detail(cause)
            }
            StoreError::Internal(cause) => {
                TalerError::new(ErrorCode::GenericDbFetchFailed).with_detail(cause)
            }
        }
    }
}

impl StoreError {
    /// An amount computation inside a transaction failed (e.g. overflow past 2^52).
    pub fn amount(error: crate::domain::primitives::AmountError) -> StoreError {
        StoreError::Internal(format!("amount arithmetic: {error}"))
    }
}

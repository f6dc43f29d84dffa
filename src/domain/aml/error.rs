//! The failures of the AML endpoints. Several share a code but not a status (an unknown
//! officer is 404, a disabled one 409, both 1034), so they are distinct variants; the HTTP
//! adapter maps each to its status in one place.

use crate::domain::primitives::{ErrorCode, TalerError};
use crate::ports::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AmlError {
    /// `$OFFICER_PUB` missing or not 32 bytes of base32 (400).
    #[error("officer public key malformed")]
    OfficerPubMalformed,
    /// Nothing after `$OFFICER_PUB` (404).
    #[error("wrong number of path segments")]
    WrongNumberOfSegments,
    /// Extra path segments (404).
    #[error("endpoint unknown")]
    EndpointUnknown,
    /// A GET of the decision operation, which only takes POST (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// An operation the officer API does not have (404).
    #[error("operation unknown")]
    OperationUnknown,
    /// `Taler-AML-Officer-Signature` missing, malformed or not valid for the path's key (403).
    #[error("officer signature invalid: {0}")]
    SignatureInvalid(&'static str),
    /// Never registered (404).
    #[error("officer unknown")]
    OfficerUnknown,
    /// Registered but disabled (409).
    #[error("officer disabled")]
    OfficerDisabled,
    /// A path segment that must be base32 of a fixed size is not (400).
    #[error("path segment malformed: {0}")]
    PathSegmentMalformed(&'static str),
    /// A query parameter or body field is malformed (400).
    #[error("parameter malformed: {0}")]
    ParameterMalformed(String),
    /// The body is not JSON (400).
    #[error("body is not JSON: {0}")]
    JsonInvalid(String),
    /// A PDF was asked for but PDF output is disabled (501).
    #[error("PDF output is disabled")]
    PdfDisabled,
    /// The master signature of an officer status does not verify (403).
    #[error("master signature invalid")]
    MasterSignatureInvalid,
    /// A newer officer status is stored (409).
    #[error("a more recent officer status is present")]
    OfficerMoreRecentPresent,
    /// The store failed (500/503).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A read could not be journaled: it answers no data (500, compliance-evidence.md §1.6).
    #[error("journal write failed: {0}")]
    JournalFailed(StoreError),
    /// A bug or a broken adapter (renderer, cipher) (500).
    #[error("internal failure: {0}")]
    Internal(String),
}

impl AmlError {
    /// The GANA code sent as `code`.
    pub fn code(&self) -> ErrorCode {
        use ErrorCode as C;
        match self {
            AmlError::OfficerPubMalformed => C::ExchangeGenericAmlOfficerPubMalformed,
            AmlError::WrongNumberOfSegments => C::ExchangeGenericWrongNumberOfSegments,
            AmlError::EndpointUnknown => C::GenericEndpointUnknown,
            AmlError::OperationUnknown => C::ExchangeGenericOperationUnknown,
            AmlError::MethodNotAllowed => C::GenericMethodInvalid,
            AmlError::SignatureInvalid(_) => C::ExchangeGenericAmlOfficerGetSignatureInvalid,
            AmlError::OfficerUnknown | AmlError::OfficerDisabled => {
                C::ExchangeGenericAmlOfficerAccessDenied
            }
            AmlError::PathSegmentMalformed(_) => C::GenericPathSegmentMalformed,
            AmlError::ParameterMalformed(_) => C::GenericParameterMalformed,
            AmlError::JsonInvalid(_) => C::GenericJsonInvalid,
            // The upstream code's number is unverified (exchange-aml.md §9 [D]).
            AmlError::PdfDisabled => C::ExchangeGenericBadConfiguration,
            AmlError::MasterSignatureInvalid => {
                C::ExchangeManagementUpdateAmlOfficerSignatureInvalid
            }
            AmlError::OfficerMoreRecentPresent => C::ExchangeManagementAmlOfficersMoreRecentPresent,
            AmlError::Store(StoreError::Unavailable(_)) => C::GenericDbSoftFailure,
            AmlError::Store(StoreError::Internal(_)) => C::GenericDbFetchFailed,
            AmlError::JournalFailed(_) => C::GenericDbCommitFailed,
            AmlError::Internal(_) => C::GenericInternalInvariantFailure,
        }
    }

    /// The `ErrorDetail` body. Failures inside talerbox keep their cause out of it (the
    /// adapter logs it).
    pub fn to_taler(&self) -> TalerError {
        let error = TalerError::new(self.code());
        match self {
            AmlError::OfficerUnknown => error.with_hint("AML officer unknown"),
            AmlError::OfficerDisabled => error.with_hint("AML officer not enabled"),
            AmlError::SignatureInvalid(detail) | AmlError::PathSegmentMalformed(detail) => {
                error.with_detail(*detail)
            }
            AmlError::ParameterMalformed(detail) | AmlError::JsonInvalid(detail) => {
                error.with_detail(detail.clone())
            }
            AmlError::PdfDisabled => error.with_hint("PDF output is disabled on this exchange"),
            _ => error,
        }
    }

    /// Whether the cause is talerbox's own (5xx), to be logged.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            AmlError::Store(_) | AmlError::Internal(_) | AmlError::JournalFailed(_)
        )
    }
}

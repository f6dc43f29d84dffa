//! Officer authentication of `GET /aml/$OFFICER_PUB/...` (exchange-aml.md §3).
//!
//! The header carries the officer's signature over the fixed 8-byte AML_QUERY block; nothing
//! of the request is signed, so it is a bearer credential bound to the path's key.

use crate::domain::primitives::{EddsaPublicKey, EddsaSignature, base32, purpose, verify_purpose};

use super::error::AmlError;
use super::model::Officer;
use super::service::AmlService;

/// Decodes `$OFFICER_PUB` (lenient base32, exactly 32 bytes).
pub fn parse_officer_pub(segment: &str) -> Result<EddsaPublicKey, AmlError> {
    base32::decode_array(segment)
        .map(EddsaPublicKey)
        .map_err(|_| AmlError::OfficerPubMalformed)
}

/// Checks that `header` is a valid query signature of `officer_pub` (strict verification).
pub fn check_query_signature(
    officer_pub: &EddsaPublicKey,
    header: Option<&str>,
) -> Result<(), AmlError> {
    let header = header.ok_or(AmlError::SignatureInvalid("Taler-AML-Officer-Signature"))?;
    let signature: EddsaSignature = base32::decode_array(header.trim())
        .map(EddsaSignature)
        .map_err(|_| AmlError::SignatureInvalid("Taler-AML-Officer-Signature malformed"))?;
    verify_purpose(officer_pub, purpose::AML_QUERY, &[], &signature)
        .map_err(|_| AmlError::SignatureInvalid("Taler-AML-Officer-Signature"))
}

impl AmlService {
    /// The signature first (403), then the officer's registration (404 unknown, 409
    /// disabled). Read-only officers may read.
    pub fn authenticate(
        &self,
        officer_pub: &EddsaPublicKey,
        signature: Option<&str>,
    ) -> Result<Officer, AmlError> {
        check_query_signature(officer_pub, signature)?;
        let officer = self
            .ports
            .officers
            .officer(officer_pub)?
            .ok_or(AmlError::OfficerUnknown)?;
        if !officer.is_active {
            return Err(AmlError::OfficerDisabled);
        }
        Ok(officer)
    }
}

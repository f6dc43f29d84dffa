//! Signatures by the journal key: checkpoints (§1.5) and export proofs (§3).
//! Purposes 4200–4299 are talerbox-local.

use crate::domain::primitives::base32;
use crate::domain::primitives::crypto::{sha512, sign_purpose, verify_purpose};
use crate::domain::primitives::{
    EddsaPrivateKey, EddsaPublicKey, EddsaSignature, NormalizedPaytoHash, Timestamp,
};

use super::JournalEntry;

pub const CHECKPOINT_PURPOSE: u32 = 4201;
pub const EXPORT_PURPOSE: u32 = 4202;
pub const EXPORT_PROOF_HEADER: &str = "Talerbox-Export-Proof";
/// `at_us (8) ‖ officer_pub (32) ‖ h_payto (32) ‖ signature (64)`.
pub const EXPORT_PROOF_LEN: usize = 136;

/// `u64be upto ‖ u64be at_us ‖ hash_of_entry_upto`, after the purpose header.
pub fn checkpoint_body(upto: u64, at_us: u64, hash_upto: &[u8; 64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(80);
    body.extend_from_slice(&upto.to_be_bytes());
    body.extend_from_slice(&at_us.to_be_bytes());
    body.extend_from_slice(hash_upto);
    body
}

/// The details of a checkpoint appended at `at` right after the entry `upto` whose hash is
/// `hash_upto` (a checkpoint always covers the entry before it).
pub fn sign_checkpoint(
    key: &EddsaPrivateKey,
    upto: u64,
    at: Timestamp,
    hash_upto: &[u8; 64],
) -> EddsaSignature {
    sign_purpose(
        key,
        CHECKPOINT_PURPOSE,
        &checkpoint_body(upto, at.as_micros(), hash_upto),
    )
}

pub fn checkpoint_details(upto: u64, signature: &EddsaSignature) -> serde_json::Value {
    serde_json::json!({ "upto": upto, "signature": signature.to_string() })
}

/// A checkpoint entry holds: `upto` is the entry before it, and the signature covers that
/// entry's hash (its own `prev`) and the checkpoint's time.
pub fn verify_checkpoint(journal_pub: &EddsaPublicKey, entry: &JournalEntry) -> bool {
    checkpoint_holds(journal_pub, entry).is_some()
}

fn checkpoint_holds(journal_pub: &EddsaPublicKey, entry: &JournalEntry) -> Option<()> {
    let details: serde_json::Value = serde_json::from_str(&entry.details).ok()?;
    let upto = details.get("upto").and_then(|v| v.as_u64())?;
    let signature: EddsaSignature = details
        .get("signature")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())?;
    if upto.checked_add(1) != Some(entry.serial) {
        return None;
    }
    verify_purpose(
        journal_pub,
        CHECKPOINT_PURPOSE,
        &checkpoint_body(upto, entry.at_us, &entry.prev),
        &signature,
    )
    .ok()
}

/// The proof that accompanies an attribute export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportProof {
    pub at: Timestamp,
    pub officer_pub: EddsaPublicKey,
    pub h_payto: NormalizedPaytoHash,
    pub signature: EddsaSignature,
}

fn export_body(
    body_sha512: &[u8; 64],
    h_payto: &NormalizedPaytoHash,
    at: Timestamp,
    officer_pub: &EddsaPublicKey,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(136);
    out.extend_from_slice(body_sha512);
    out.extend_from_slice(&h_payto.0);
    out.extend_from_slice(&at.as_micros().to_be_bytes());
    out.extend_from_slice(&officer_pub.0);
    out
}

impl ExportProof {
    pub fn sign(
        key: &EddsaPrivateKey,
        body: &[u8],
        h_payto: NormalizedPaytoHash,
        at: Timestamp,
        officer_pub: EddsaPublicKey,
    ) -> ExportProof {
        let signature = sign_purpose(
            key,
            EXPORT_PURPOSE,
            &export_body(&sha512(body).0, &h_payto, at, &officer_pub),
        );
        ExportProof {
            at,
            officer_pub,
            h_payto,
            signature,
        }
    }

    pub fn verify(&self, journal_pub: &EddsaPublicKey, body: &[u8]) -> bool {
        verify_purpose(
            journal_pub,
            EXPORT_PURPOSE,
            &export_body(&sha512(body).0, &self.h_payto, self.at, &self.officer_pub),
            &self.signature,
        )
        .is_ok()
    }

    /// The header value: base32 of the 136 bytes.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(EXPORT_PROOF_LEN);
        bytes.extend_from_slice(&self.at.as_micros().to_be_bytes());
        bytes.extend_from_slice(&self.officer_pub.0);
        bytes.extend_from_slice(&self.h_payto.0);
        bytes.extend_from_slice(&self.signature.0);
        base32::encode(&bytes)
    }

    pub fn decode(text: &str) -> Option<ExportProof> {
        let bytes: [u8; EXPORT_PROOF_LEN] = base32::decode_array(text.trim()).ok()?;
        let mut at = [0u8; 8];
        at.copy_from_slice(&bytes[..8]);
        let mut officer = [0u8; 32];
        officer.copy_from_slice(&bytes[8..40]);
        let mut h_payto = [0u8; 32];
        h_payto.copy_from_slice(&bytes[40..72]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[72..]);
        Some(ExportProof {
            at: Timestamp::from_micros(u64::from_be_bytes(at)),
            officer_pub: EddsaPublicKey(officer),
            h_payto: NormalizedPaytoHash(h_payto),
            signature: EddsaSignature(signature),
        })
    }
}

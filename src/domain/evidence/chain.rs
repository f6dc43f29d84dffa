//! The hash chain (§1.1) and its verification, one entry at a time so that a journal of
//! millions of entries is checked in constant memory.

use sha2::{Digest, Sha512};

use crate::domain::primitives::EddsaPublicKey;

use super::{JournalEntry, JournalKind, verify_checkpoint};

/// `SHA-512(prev ‖ u64be(serial) ‖ u64be(at_us) ‖ kind ‖ 0 ‖ actor ‖ 0 ‖ H ‖ details)`,
/// `H` being the account hash or 32 zero bytes.
pub fn entry_hash(
    prev: &[u8; 64],
    serial: u64,
    at_us: u64,
    kind: &str,
    actor: &str,
    h_payto: Option<&[u8; 32]>,
    details: &str,
) -> [u8; 64] {
    let mut hasher = Sha512::new();
    hasher.update(prev);
    hasher.update(serial.to_be_bytes());
    hasher.update(at_us.to_be_bytes());
    hasher.update(kind.as_bytes());
    hasher.update([0u8]);
    hasher.update(actor.as_bytes());
    hasher.update([0u8]);
    hasher.update(h_payto.unwrap_or(&[0u8; 32]));
    hasher.update(details.as_bytes());
    hasher.finalize().into()
}

/// Why an entry breaks the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyProblem {
    /// The entry with this serial is missing (or a serial repeats or goes back).
    Gap,
    /// `prev` is not the previous entry's hash.
    BrokenLink,
    /// The stored hash is not the hash of the entry's fields.
    HashMismatch,
    /// The kind is not in the closed list.
    UnknownKind,
    /// A checkpoint whose details or signature do not hold.
    BadCheckpoint,
}

impl VerifyProblem {
    pub fn describe(&self) -> &'static str {
        match self {
            VerifyProblem::Gap => "gap: entry missing",
            VerifyProblem::BrokenLink => "hash mismatch: prev is not the previous entry's hash",
            VerifyProblem::HashMismatch => "hash mismatch",
            VerifyProblem::UnknownKind => "unknown kind",
            VerifyProblem::BadCheckpoint => "bad checkpoint",
        }
    }
}

/// The first bad serial and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("serial {serial}: {}", problem.describe())]
pub struct VerifyFailure {
    pub serial: u64,
    pub problem: VerifyProblem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifySummary {
    pub entries: u64,
    pub last_serial: u64,
    pub last_checkpoint: Option<u64>,
}

/// Checks entries in serial order; stops being useful at the first failure.
#[derive(Debug)]
pub struct ChainVerifier<'k> {
    journal_pub: &'k EddsaPublicKey,
    /// The next expected serial and the hash it must link to; `None` before the first
    /// entry of an export that starts inside the chain.
    expected: Option<(u64, [u8; 64])>,
    summary: VerifySummary,
}

impl<'k> ChainVerifier<'k> {
    /// Verifies a whole journal, which starts at serial 1 after 64 zero bytes.
    pub fn from_start(journal_pub: &'k EddsaPublicKey) -> Self {
        Self::starting(journal_pub, Some((1, [0u8; 64])))
    }

    /// Verifies a part of a journal: its first entry is taken as the anchor.
    pub fn from_any(journal_pub: &'k EddsaPublicKey) -> Self {
        Self::starting(journal_pub, None)
    }

    fn starting(journal_pub: &'k EddsaPublicKey, expected: Option<(u64, [u8; 64])>) -> Self {
        ChainVerifier {
            journal_pub,
            expected,
            summary: VerifySummary {
                entries: 0,
                last_serial: 0,
                last_checkpoint: None,
            },
        }
    }

    pub fn push(&mut self, entry: &JournalEntry) -> Result<(), VerifyFailure> {
        let fail = |serial, problem| Err(VerifyFailure { serial, problem });
        if let Some((serial, prev)) = self.expected {
            if entry.serial != serial {
                return fail(serial, VerifyProblem::Gap);
            }
            if entry.prev != prev {
                return fail(serial, VerifyProblem::BrokenLink);
            }
        }
        if entry.computed_hash() != entry.hash {
            return fail(entry.serial, VerifyProblem::HashMismatch);
        }
        let Ok(kind) = entry.kind.parse::<JournalKind>() else {
            return fail(entry.serial, VerifyProblem::UnknownKind);
        };
        if kind == JournalKind::JournalCheckpoint {
            if !verify_checkpoint(self.journal_pub, entry) {
                return fail(entry.serial, VerifyProblem::BadCheckpoint);
            }
            self.summary.last_checkpoint = Some(entry.serial);
        }
        self.expected = Some((entry.serial.saturating_add(1), entry.hash));
        self.summary.entries += 1;
        self.summary.last_serial = entry.serial;
        Ok(())
    }

    pub fn finish(self) -> VerifySummary {
        self.summary
    }
}

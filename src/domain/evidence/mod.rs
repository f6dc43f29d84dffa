//! Compliance evidence: the hash-chained journal of KYC/AML events, its signed checkpoints,
//! and the proofs that accompany attribute exports (compliance-evidence.md).

mod chain;
mod entry;
pub mod events;
mod kind;
mod proof;
pub mod retention;
#[cfg(test)]
mod tests;

pub use chain::{ChainVerifier, VerifyFailure, VerifyProblem, VerifySummary, entry_hash};
pub use entry::{Actor, JournalEntry, NewJournalEntry};
pub use events::{AttributesRead, RequirementTrigger};
pub use kind::JournalKind;
pub use proof::{
    CHECKPOINT_PURPOSE, EXPORT_PROOF_HEADER, EXPORT_PROOF_LEN, EXPORT_PURPOSE, ExportProof,
    checkpoint_body, checkpoint_details, sign_checkpoint, verify_checkpoint,
};

//! The closed list of journal kinds (§1.2); the store refuses any other.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JournalKind {
    KycRequirementOpened,
    KycProcessStarted,
    KycAttributesStored,
    KycProgramOutcome,
    AmlDecision,
    AmlAttributesRead,
    AmlDecisionsRead,
    AmlJournalRead,
    AmlOfficerChanged,
    RetentionPurged,
    RetentionHold,
    KeysAttributeKeyAdopted,
    JournalCheckpoint,
    JournalStarted,
}

impl JournalKind {
    pub const ALL: [JournalKind; 14] = [
        JournalKind::KycRequirementOpened,
        JournalKind::KycProcessStarted,
        JournalKind::KycAttributesStored,
        JournalKind::KycProgramOutcome,
        JournalKind::AmlDecision,
        JournalKind::AmlAttributesRead,
        JournalKind::AmlDecisionsRead,
        JournalKind::AmlJournalRead,
        JournalKind::AmlOfficerChanged,
        JournalKind::RetentionPurged,
        JournalKind::RetentionHold,
        JournalKind::KeysAttributeKeyAdopted,
        JournalKind::JournalCheckpoint,
        JournalKind::JournalStarted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JournalKind::KycRequirementOpened => "kyc.requirement_opened",
            JournalKind::KycProcessStarted => "kyc.process_started",
            JournalKind::KycAttributesStored => "kyc.attributes_stored",
            JournalKind::KycProgramOutcome => "kyc.program_outcome",
            JournalKind::AmlDecision => "aml.decision",
            JournalKind::AmlAttributesRead => "aml.attributes_read",
            JournalKind::AmlDecisionsRead => "aml.decisions_read",
            JournalKind::AmlJournalRead => "aml.journal_read",
            JournalKind::AmlOfficerChanged => "aml.officer_changed",
            JournalKind::RetentionPurged => "retention.purged",
            JournalKind::RetentionHold => "retention.hold",
            JournalKind::KeysAttributeKeyAdopted => "keys.attribute_key_adopted",
            JournalKind::JournalCheckpoint => "journal.checkpoint",
            JournalKind::JournalStarted => "journal.started",
        }
    }

    /// The reads of an account's file: the access log (§2).
    pub fn is_access(self) -> bool {
        matches!(
            self,
            JournalKind::AmlAttributesRead
                | JournalKind::AmlDecisionsRead
                | JournalKind::AmlJournalRead
        )
    }
}

impl fmt::Display for JournalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown journal kind {0:?}")]
pub struct UnknownKind(pub String);

impl FromStr for JournalKind {
    type Err = UnknownKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        JournalKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownKind(text.to_owned()))
    }
}

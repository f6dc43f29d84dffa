//! The journal entry of each event (§1.2): which kind, which actor, which details. Details
//! hold identifiers, counts, hashes and signatures only, never personal data.

use serde_json::json;

use crate::domain::kyc::LegitimizationMeasures;
use crate::domain::primitives::{EddsaPublicKey, EddsaSignature, NormalizedPaytoHash, Timestamp};

use super::{Actor, JournalKind, NewJournalEntry};

/// What opened a set of measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequirementTrigger {
    /// A rule or a program's successor, applied by talerbox itself.
    Rule,
    /// The exchange's admin trigger endpoint.
    Admin,
    /// `talerbox kyc trigger`.
    Cli,
    /// An officer decision.
    Decision,
}

impl RequirementTrigger {
    fn as_str(self) -> &'static str {
        match self {
            RequirementTrigger::Rule => "rule",
            RequirementTrigger::Admin => "admin",
            RequirementTrigger::Cli => "cli",
            RequirementTrigger::Decision => "decision",
        }
    }

    fn actor(self) -> Actor {
        match self {
            RequirementTrigger::Cli => Actor::operator(),
            _ => Actor::system(),
        }
    }
}

pub fn requirement_opened(
    h_payto: NormalizedPaytoHash,
    measures: &LegitimizationMeasures,
    trigger: RequirementTrigger,
) -> NewJournalEntry {
    let checks: Vec<&str> = measures
        .measures
        .iter()
        .map(|m| m.check_name.as_str())
        .collect();
    NewJournalEntry::new(
        JournalKind::KycRequirementOpened,
        trigger.actor(),
        Some(h_payto),
        &json!({"measures": checks, "trigger": trigger.as_str()}),
    )
}

pub fn process_started(
    h_payto: NormalizedPaytoHash,
    measure: u64,
    provider: &str,
    process: u64,
) -> NewJournalEntry {
    NewJournalEntry::new(
        JournalKind::KycProcessStarted,
        Actor::system(),
        Some(h_payto),
        &json!({"measure": measure, "provider": provider, "process": process}),
    )
}

pub fn attributes_stored(
    h_payto: NormalizedPaytoHash,
    actor: Actor,
    row: u64,
    expiration: Timestamp,
) -> NewJournalEntry {
    NewJournalEntry::new(
        JournalKind::KycAttributesStored,
        actor,
        Some(h_payto),
        &json!({"row": row, "expiration_us": micros(expiration)}),
    )
}

pub fn program_outcome(
    h_payto: NormalizedPaytoHash,
    program: &str,
    decision: u64,
    to_investigate: bool,
    events: &[String],
) -> NewJournalEntry {
    NewJournalEntry::new(
        JournalKind::KycProgramOutcome,
        Actor::program(program),
        Some(h_payto),
        &json!({"decision": decision, "to_investigate": to_investigate, "events": events}),
    )
}

pub fn aml_decision(
    h_payto: NormalizedPaytoHash,
    officer: &EddsaPublicKey,
    decision: u64,
    officer_sig: &EddsaSignature,
    to_investigate: bool,
) -> NewJournalEntry {
    NewJournalEntry::new(
        JournalKind::AmlDecision,
        Actor::officer(officer),
        Some(h_payto),
        &json!({
            "decision": decision,
            "officer_sig": officer_sig.to_string(),
            "to_investigate": to_investigate,
        }),
    )
}

pub fn officer_changed(
    actor: Actor,
    officer: &EddsaPublicKey,
    active: bool,
    read_only: bool,
) -> NewJournalEntry {
    NewJournalEntry::new(
        JournalKind::AmlOfficerChanged,
        actor,
        None,
        &json!({"officer": officer.to_string(), "active": active, "read_only": read_only}),
    )
}

/// Which attribute rows an officer read, and the hash of exactly what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributesRead {
    pub pdf: bool,
    /// Row ids of the first and last row sent (in the order sent), if any.
    pub rows: Option<(u64, u64)>,
    pub count: u64,
    pub body_sha512: [u8; 64],
}

pub fn attributes_read(
    h_payto: NormalizedPaytoHash,
    officer: &EddsaPublicKey,
    read: &AttributesRead,
) -> NewJournalEntry {
    let rows = read.rows.map_or_else(Vec::new, |(a, b)| vec![a, b]);
    NewJournalEntry::new(
        JournalKind::AmlAttributesRead,
        Actor::officer(officer),
        Some(h_payto),
        &json!({
            "format": if read.pdf { "pdf" } else { "json" },
            "rows": rows,
            "count": read.count,
            "body_sha512": crate::domain::primitives::base32::encode(&read.body_sha512),
        }),
    )
}

pub fn decisions_read(
    h_payto: Option<NormalizedPaytoHash>,
    officer: &EddsaPublicKey,
    count: u64,
    filter: serde_json::Value,
) -> NewJournalEntry {
    NewJournalEntry::new(
        JournalKind::AmlDecisionsRead,
        Actor::officer(officer),
        h_payto,
        &json!({"count": count, "filter": filter}),
    )
}

pub fn journal_read(
    h_payto: NormalizedPaytoHash,
    officer: &EddsaPublicKey,
    count: u64,
) -> NewJournalEntry {
    NewJournalEntry::new(
        JournalKind::AmlJournalRead,
        Actor::officer(officer),
        Some(h_payto),
        &json!({"count": count}),
    )
}

pub fn purged(h_payto: NormalizedPaytoHash, actor: Actor, rows: &[u64]) -> NewJournalEntry {
    NewJournalEntry::new(
        JournalKind::RetentionPurged,
        actor,
        Some(h_payto),
        &json!({"rows": rows}),
    )
}

pub fn hold(h_payto: NormalizedPaytoHash, hold: bool, reason: &str) -> NewJournalEntry {
    let reason_hash = crate::domain::primitives::crypto::sha512(reason.as_bytes());
    NewJournalEntry::new(
        JournalKind::RetentionHold,
        Actor::operator(),
        Some(h_payto),
        &json!({"hold": hold, "reason_sha512": reason_hash.to_string()}),
    )
}

pub fn attribute_key_adopted(old_fingerprint: &str, new_fingerprint: &str) -> NewJournalEntry {
    NewJournalEntry::new(
        JournalKind::KeysAttributeKeyAdopted,
        Actor::operator(),
        None,
        &json!({"old_fingerprint": old_fingerprint, "new_fingerprint": new_fingerprint}),
    )
}

/// Times in details are integers (µs); "never" is `u64::MAX`, which exceeds the canonical
/// JSON's integers, so it is written as -1.
fn micros(time: Timestamp) -> i64 {
    i64::try_from(time.as_micros()).unwrap_or(-1)
}

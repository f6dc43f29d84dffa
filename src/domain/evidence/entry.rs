//! Journal entries: what is appended, and what is stored.

use crate::domain::primitives::canonical_json::canonical_text_of;
use crate::domain::primitives::{EddsaPublicKey, NormalizedPaytoHash, Timestamp};

use super::JournalKind;

/// Who caused an entry (§1.3), in its stored text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    pub fn system() -> Actor {
        Actor("system".into())
    }
    pub fn operator() -> Actor {
        Actor("operator".into())
    }
    pub fn master() -> Actor {
        Actor("master".into())
    }
    pub fn officer(officer_pub: &EddsaPublicKey) -> Actor {
        Actor(format!("officer:{officer_pub}"))
    }
    pub fn provider(name: &str) -> Actor {
        Actor(format!("provider:{name}"))
    }
    pub fn form(id: &str) -> Actor {
        Actor(format!("form:{id}"))
    }
    pub fn program(name: &str) -> Actor {
        Actor(format!("program:{name}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An entry to append; the store gives it its serial, time, `prev` and `hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJournalEntry {
    pub kind: JournalKind,
    pub actor: Actor,
    pub h_payto: Option<NormalizedPaytoHash>,
    /// Canonical JSON object text (§1.4): identifiers, counts, hashes and signatures only.
    pub details: String,
}

impl NewJournalEntry {
    pub fn new(
        kind: JournalKind,
        actor: Actor,
        h_payto: Option<NormalizedPaytoHash>,
        details: &serde_json::Value,
    ) -> NewJournalEntry {
        NewJournalEntry {
            kind,
            actor,
            h_payto,
            details: canonical_text_of(details),
        }
    }
}

/// A stored entry, as the chain covers it. `kind` stays text so that a tampered row is
/// reported by `verify` instead of failing to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub serial: u64,
    /// Microseconds as stored (not rounded: every bit is covered by the hash).
    pub at_us: u64,
    pub kind: String,
    pub actor: String,
    pub h_payto: Option<[u8; 32]>,
    pub details: String,
    pub prev: [u8; 64],
    pub hash: [u8; 64],
}

impl JournalEntry {
    /// The entry following `prev_hash` at `serial`, with its hash computed.
    pub fn chained(
        prev: [u8; 64],
        serial: u64,
        at: Timestamp,
        entry: &NewJournalEntry,
    ) -> JournalEntry {
        let h_payto = entry.h_payto.map(|h| h.0);
        let kind = entry.kind.as_str();
        let hash = super::entry_hash(
            &prev,
            serial,
            at.as_micros(),
            kind,
            entry.actor.as_str(),
            h_payto.as_ref(),
            &entry.details,
        );
        JournalEntry {
            serial,
            at_us: at.as_micros(),
            kind: kind.to_owned(),
            actor: entry.actor.as_str().to_owned(),
            h_payto,
            details: entry.details.clone(),
            prev,
            hash,
        }
    }

    pub fn at(&self) -> Timestamp {
        Timestamp::from_micros(self.at_us)
    }

    /// The hash this entry's fields give (equal to `hash` unless tampered with).
    pub fn computed_hash(&self) -> [u8; 64] {
        super::entry_hash(
            &self.prev,
            self.serial,
            self.at_us,
            &self.kind,
            &self.actor,
            self.h_payto.as_ref(),
            &self.details,
        )
    }
}

//! The AML part's stores: officers, attribute rows (shared with KYC, which appends them) and
//! decisions (outcomes, shared with KYC). Each method is one atomic transaction.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::domain::aml::{
    AttributeRecord, DecisionFilter, DecisionRecord, NewAttributeRecord, NewOutcome, Officer,
    OfficerChange, OperatorAction, Page,
};
use crate::domain::primitives::{EddsaPublicKey, NormalizedPaytoHash, RelativeTime, Timestamp};

use super::StoreError;

/// What `upsert_officer` did (exchange-aml.md §2.1 step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfficerUpsert {
    /// Inserted, or overwrote an older status.
    Stored,
    /// A status with the same date is stored; nothing changed.
    Replayed,
    /// A status with a later date is stored; nothing changed.
    MoreRecentPresent,
}

pub trait OfficerStore: Send + Sync {
    fn officer(&self, officer_pub: &EddsaPublicKey) -> Result<Option<Officer>, StoreError>;
    /// Stores a status unless one with the same or a later date is stored.
    fn upsert_officer(&self, change: &OfficerChange) -> Result<OfficerUpsert, StoreError>;
    /// Applies an operator action dated `now`, or one second after the stored date if that is
    /// not earlier, without a master signature. Disabling an unknown officer answers `None`.
    fn operator_update(
        &self,
        officer_pub: &EddsaPublicKey,
        action: &OperatorAction,
        now: Timestamp,
    ) -> Result<Option<Officer>, StoreError>;
    /// Every officer, ordered by public key.
    fn list_officers(&self) -> Result<Vec<Officer>, StoreError>;
}

pub trait AttributeStore: Send + Sync {
    /// Appends a row; returns its row id, larger than every row id before it.
    fn append_attributes(&self, record: &NewAttributeRecord) -> Result<u64, StoreError>;
    /// The account's rows on `page`, in its order.
    fn attributes(
        &self,
        h_payto: &NormalizedPaytoHash,
        page: &Page,
    ) -> Result<Vec<AttributeRecord>, StoreError>;
}

pub trait DecisionStore: Send + Sync {
    /// Inserts a decision as the account's active one (the previous one becomes inactive);
    /// returns its row id.
    fn insert_outcome(&self, outcome: &NewOutcome) -> Result<u64, StoreError>;
    /// The decisions matching `filter`, in its page's order.
    fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<DecisionRecord>, StoreError>;
}

/// The date an operator action gets: now, but always after the stored change.
pub fn operator_date(stored: Option<Timestamp>, now: Timestamp) -> Timestamp {
    match stored {
        Some(last) if last >= now => last.saturating_add(RelativeTime::from_seconds(1)),
        _ => now,
    }
}

/// The officer after an operator action, `None` for disabling an unknown one.
pub fn apply_operator_action(
    existing: Option<&Officer>,
    officer_pub: &EddsaPublicKey,
    action: &OperatorAction,
    now: Timestamp,
) -> Option<Officer> {
    let last_change = operator_date(existing.map(|o| o.last_change), now);
    match action {
        OperatorAction::Enable { name, read_only } => Some(Officer {
            officer_pub: *officer_pub,
            name: name.clone(),
            is_active: true,
            read_only: *read_only,
            last_change,
            master_sig: None,
        }),
        OperatorAction::Disable => existing.map(|officer| Officer {
            is_active: false,
            last_change,
            master_sig: None,
            ..officer.clone()
        }),
    }
}

/// In-memory AML stores for unit tests and embedders.
#[derive(Debug, Default)]
pub struct InMemoryAmlStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    officers: BTreeMap<[u8; 32], Officer>,
    attributes: BTreeMap<u64, AttributeRecord>,
    last_attribute: u64,
    decisions: BTreeMap<u64, DecisionRecord>,
    last_decision: u64,
}

impl InMemoryAmlStore {
    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The rows of `rows` on `page` that pass `wanted`, in the page's order.
fn select_page<T: Clone>(
    rows: &BTreeMap<u64, T>,
    page: &Page,
    wanted: impl Fn(&T) -> bool,
) -> Vec<T> {
    if page.limit() == 0 {
        return Vec::new();
    }
    let picked = rows
        .iter()
        .filter(|(id, row)| page.admits(**id) && wanted(row));
    let rows: Vec<T> = if page.is_forward() {
        picked
            .take(page.count())
            .map(|(_, row)| row.clone())
            .collect()
    } else {
        picked
            .rev()
            .take(page.count())
            .map(|(_, row)| row.clone())
            .collect()
    };
    rows
}

impl OfficerStore for InMemoryAmlStore {
    fn officer(&self, officer_pub: &EddsaPublicKey) -> Result<Option<Officer>, StoreError> {
        Ok(self.lock().officers.get(&officer_pub.0).cloned())
    }

    fn upsert_officer(&self, change: &OfficerChange) -> Result<OfficerUpsert, StoreError> {
        let mut state = self.lock();
        if let Some(stored) = state.officers.get(&change.officer_pub.0) {
            if stored.last_change > change.change_date {
                return Ok(OfficerUpsert::MoreRecentPresent);
            }
            if stored.last_change == change.change_date {
                return Ok(OfficerUpsert::Replayed);
            }
        }
        state.officers.insert(
            change.officer_pub.0,
            Officer {
                officer_pub: change.officer_pub,
                name: change.name.clone(),
                is_active: change.is_active,
                read_only: change.read_only,
                last_change: change.change_date,
                master_sig: change.master_sig,
            },
        );
        Ok(OfficerUpsert::Stored)
    }

    fn operator_update(
        &self,
        officer_pub: &EddsaPublicKey,
        action: &OperatorAction,
        now: Timestamp,
    ) -> Result<Option<Officer>, StoreError> {
        let mut state = self.lock();
        let existing = state.officers.get(&officer_pub.0);
        let Some(updated) = apply_operator_action(existing, officer_pub, action, now) else {
            return Ok(None);
        };
        state.officers.insert(officer_pub.0, updated.clone());
        Ok(Some(updated))
    }

    fn list_officers(&self) -> Result<Vec<Officer>, StoreError> {
        Ok(self.lock().officers.values().cloned().collect())
    }
}

impl AttributeStore for InMemoryAmlStore {
    fn append_attributes(&self, record: &NewAttributeRecord) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let rowid = state.last_attribute + 1;
        state.last_attribute = rowid;
        state.attributes.insert(
            rowid,
            AttributeRecord {
                rowid,
                h_payto: record.h_payto,
                collection_time: record.collection_time,
                expiration_time: record.expiration_time,
                source: record.source.clone(),
                form_id: record.form_id.clone(),
                encrypted: record.encrypted.clone(),
            },
        );
        Ok(rowid)
    }

    fn attributes(
        &self,
        h_payto: &NormalizedPaytoHash,
        page: &Page,
    ) -> Result<Vec<AttributeRecord>, StoreError> {
        Ok(select_page(&self.lock().attributes, page, |row| {
            &row.h_payto == h_payto
        }))
    }
}

impl DecisionStore for InMemoryAmlStore {
    fn insert_outcome(&self, outcome: &NewOutcome) -> Result<u64, StoreError> {
        let mut state = self.lock();
        for decision in state.decisions.values_mut() {
            if decision.h_payto == outcome.h_payto {
                decision.is_active = false;
            }
        }
        let rowid = state.last_decision + 1;
        state.last_decision = rowid;
        state.decisions.insert(
            rowid,
            DecisionRecord {
                rowid,
                h_payto: outcome.h_payto,
                decision_time: outcome.decision_time,
                expiration_time: outcome.expiration_time,
                properties: outcome.properties.clone(),
                new_measure_name: outcome.new_measure_name.clone(),
                to_investigate: outcome.to_investigate,
                is_active: true,
                new_rules: outcome.new_rules.clone(),
                justification: outcome.decider.as_ref().map(|d| d.justification.clone()),
                decider_pub: outcome.decider.as_ref().map(|d| d.officer_pub),
                full_payto: None,
            },
        );
        Ok(rowid)
    }

    fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<DecisionRecord>, StoreError> {
        Ok(select_page(&self.lock().decisions, &filter.page, |row| {
            filter.h_payto.is_none_or(|h| h == row.h_payto)
                && filter.active.is_none_or(|a| a == row.is_active)
                && filter.investigation.is_none_or(|i| i == row.to_investigate)
        }))
    }
}

#[cfg(test)]
mod tests {
    crate::ports::aml_conformance::aml_store_conformance!(super::InMemoryAmlStore::default());
}

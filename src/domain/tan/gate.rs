//! The 2FA gate (corebank-tan.md §4.2): from the current factor set F, the new pairs N of a
//! PATCH and the challenges a request presents, decide whether it runs or gets a 202.

use super::model::{BodyKey, Challenge, ChallengeId, Factor, RequestBinding, Role, TanSettings};
use crate::domain::primitives::Timestamp;

/// The gate's verdict for a gated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run the request and mark these presented challenges used in the same transaction.
    Proceed { used: Vec<ChallengeId> },
    /// Answer 202 with one new challenge of `role` per pair, in canonical order.
    Challenge {
        role: Role,
        factors: Vec<Factor>,
        combi_and: bool,
    },
}

/// Decides a gated request. `presented` holds the stored challenges the request's
/// `Taler-Challenge-Ids` named (unknown ids already dropped); those that do not count for
/// `binding` at `now` are ignored (§4.1).
pub fn decide(
    current: &[Factor],
    new: &[Factor],
    presented: &[Challenge],
    key: &BodyKey,
    binding: &RequestBinding,
    settings: &TanSettings,
    now: Timestamp,
) -> Decision {
    let counting: Vec<&Challenge> = presented
        .iter()
        .filter(|challenge| challenge.counts_for(key, binding, settings, now))
        .collect();
    // 1. The current factor: any counting challenge proves it, since an `address`
    //    challenge is only created after this step passed and a change of F kills the rest.
    if !current.is_empty() && counting.is_empty() {
        return Decision::Challenge {
            role: Role::Auth,
            factors: current.to_vec(),
            combi_and: false,
        };
    }
    // 2. Every new pair needs its own solved `address` challenge.
    let missing: Vec<Factor> = new
        .iter()
        .filter(|factor| {
            !counting
                .iter()
                .any(|c| c.role == Role::Address && c.factor() == **factor)
        })
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Decision::Challenge {
            role: Role::Address,
            factors: missing,
            combi_and: true,
        };
    }
    Decision::Proceed {
        used: counting.iter().map(|challenge| challenge.id).collect(),
    }
}

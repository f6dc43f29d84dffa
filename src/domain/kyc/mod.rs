//! The exchange's KYC process: measures, legitimization processes, forms and provider hand-off.

mod model;
mod requirement;

pub use model::*;
pub use requirement::{AccessToken, RequirementId, RequirementIdError, measure_authorization_hash};

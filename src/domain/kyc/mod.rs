//! The exchange's KYC process: measures, legitimization processes, forms and provider hand-off.

mod model;
mod oauth2;
mod requirement;
mod rules;

pub use model::*;
pub use oauth2::{
    ConvertedAttributes, Initiation, access_token, authorize_url_with_nonce,
    convert_challenger_info, provider_refusal, redirect_uri,
};
pub use requirement::{AccessToken, RequirementId, RequirementIdError, measure_authorization_hash};
pub use rules::{
    AmlOutcome, CustomMeasure, KycRule, LegitimizationMeasures, LegitimizationRuleSet,
    MeasureInformation, run_builtin,
};

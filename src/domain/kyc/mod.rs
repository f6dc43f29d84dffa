//! The exchange's KYC process: measures, legitimization processes, forms and provider hand-off.

mod decide;
mod flows;
pub mod forms;
mod model;
mod oauth2;
mod programs;
mod requirement;
mod rules;
mod ruleset;
mod service;
mod wallet;

pub use decide::Decided;
pub use flows::{ProofFailure, ProofParams, UploadOutcome};
pub use forms::{
    FieldKind, FormDescription, FormField, PERSONAL_FORM, customer_page_url,
    describe as describe_form,
};
pub use model::*;
pub use oauth2::{
    ConvertedAttributes, Initiation, access_token, authorize_url_with_nonce,
    convert_challenger_info, provider_refusal, redirect_uri,
};
pub use programs::{INTROSPECTION_TIMEOUT, ProgramRun};
pub use requirement::{AccessToken, RequirementId, RequirementIdError, measure_authorization_hash};
pub use rules::{
    AmlOutcome, CustomMeasure, KycRule, LegitimizationMeasures, LegitimizationRuleSet,
    MeasureInformation, run_builtin,
};
pub use ruleset::{RuleSetError, check_event_names};
pub use service::{KycInfo, KycProcessInformation, KycService, Requirement, Triggered};
pub use wallet::{
    AccountCheck, AccountLimit, AccountStatus, LongPollTarget, WalletAnswer, WalletRegistration,
    account_limits, balance_rules,
};

#[cfg(test)]
mod decide_tests;
#[cfg(test)]
mod tests;

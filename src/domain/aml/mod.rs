//! AML officers and what they read (exchange-aml.md): officer registration, the
//! `Taler-AML-Officer-Signature` check, the attribute history of an account with its JSON and
//! PDF export model, and the decision list. The KYC process files attribute rows through
//! [`AmlService::store_attributes`].

mod access;
mod auth;
mod cases;
pub mod decision_request;
mod decisions;
mod document;
mod error;
mod export;
mod model;
mod officers;
mod paging;
mod service;

pub use access::{PendingRead, SignedExport};
pub use auth::parse_officer_pub;
pub use cases::{AccountRecord, EventCounter, MeasureSetRecord, measures_json};
pub use decisions::{AmlDecision, AmlDecisionsResponse, DecisionFilter};
pub use document::{
    ATTRIBUTES_UNAVAILABLE, ExportContext, ExportDocument, ExportSection, MAX_ATTRIBUTES_PER_EVENT,
    MAX_DOCUMENT_CHARS, MAX_VALUE_CHARS,
};
pub use error::AmlError;
pub use export::{AttributeEvent, AttributeHistory, KycAttributes, iso8601_utc};
pub use model::{
    AttributeMap, AttributeRecord, AttributeSource, Decider, DecisionRecord, NewAttributeRecord,
    NewOutcome, Officer, OfficerChange, OperatorAction,
};
pub use officers::{AmlOfficerSetup, NewOfficer};
pub use paging::{MAX_PAGE, Page, page_from_query};
pub use service::{
    AmlPorts, AmlService, AmlSettings, AttributeReport, ExportFormat, StoreAttributes,
};

#[cfg(test)]
mod tests;

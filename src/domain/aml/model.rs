//! What the AML part stores: officers, encrypted attribute rows, decisions (outcomes).

use crate::domain::primitives::{EddsaPublicKey, EddsaSignature, NormalizedPaytoHash, Timestamp};

/// A decrypted attribute object (`CustomerKycAttributes`).
pub type AttributeMap = serde_json::Map<String, serde_json::Value>;

/// An AML officer as registered (exchange-aml.md §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Officer {
    pub officer_pub: EddsaPublicKey,
    pub name: String,
    /// `false`: disabled; GET requests answer 409.
    pub is_active: bool,
    /// May read but not decide.
    pub read_only: bool,
    /// When the current status took effect; a change must carry a later date.
    pub last_change: Timestamp,
    /// The master signature of the status; `None` for rows set by the operator CLI.
    pub master_sig: Option<EddsaSignature>,
}

/// A new officer status (`POST /management/aml-officers` after its signature check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerChange {
    pub officer_pub: EddsaPublicKey,
    pub name: String,
    pub is_active: bool,
    pub read_only: bool,
    pub change_date: Timestamp,
    pub master_sig: Option<EddsaSignature>,
}

/// What the operator CLI does to an officer; the store dates it after any stored change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorAction {
    Enable {
        name: String,
        read_only: bool,
    },
    /// Keeps the stored name and rights.
    Disable,
}

/// Who filed an attribute row (exchange-aml.md §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeSource {
    /// The customer, through a form upload or a provider (`provider` = its name, `FORM` for
    /// uploads).
    Customer { provider: Option<String> },
    /// An AML officer along with a decision.
    Officer(EddsaPublicKey),
}

impl AttributeSource {
    pub fn by_aml_officer(&self) -> bool {
        matches!(self, AttributeSource::Officer(_))
    }
}

/// An attribute row to append (its blob already encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttributeRecord {
    pub h_payto: NormalizedPaytoHash,
    pub collection_time: Timestamp,
    pub expiration_time: Timestamp,
    pub source: AttributeSource,
    /// `FORM_ID` of the attributes, kept in the clear as in the KYC tables.
    pub form_id: Option<String>,
    /// The legitimization process that collected the data (KYC); `None` for officer rows.
    pub process_serial: Option<u64>,
    pub encrypted: Vec<u8>,
}

/// An attribute row as stored; `rowid` is the global, strictly increasing serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeRecord {
    pub rowid: u64,
    pub h_payto: NormalizedPaytoHash,
    pub collection_time: Timestamp,
    pub expiration_time: Timestamp,
    pub source: AttributeSource,
    pub form_id: Option<String>,
    pub encrypted: Vec<u8>,
}

/// The officer behind a decision (`aml_history`); program outcomes have none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub officer_pub: EddsaPublicKey,
    pub justification: String,
    pub officer_sig: EddsaSignature,
}

/// A decision about an account (a `legitimization_outcomes` row) to insert; it becomes the
/// account's active one.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutcome {
    pub h_payto: NormalizedPaytoHash,
    pub decision_time: Timestamp,
    pub expiration_time: Timestamp,
    pub properties: Option<AttributeMap>,
    pub new_measure_name: Option<String>,
    pub to_investigate: bool,
    /// The `LegitimizationRuleSet`; `None` = the default rules.
    pub new_rules: Option<serde_json::Value>,
    pub decider: Option<Decider>,
}

/// A stored decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    pub rowid: u64,
    pub h_payto: NormalizedPaytoHash,
    pub decision_time: Timestamp,
    pub expiration_time: Timestamp,
    pub properties: Option<AttributeMap>,
    pub new_measure_name: Option<String>,
    pub to_investigate: bool,
    pub is_active: bool,
    pub new_rules: Option<serde_json::Value>,
    pub justification: Option<String>,
    /// The deciding officer; `None` for program outcomes.
    pub decider_pub: Option<EddsaPublicKey>,
    /// The account's full payto URI, where known.
    pub full_payto: Option<String>,
}

//! `AmlService`: the AML rules over the ports. The attribute history is read in the spec's
//! check order: path hash, query, format, then one store read and the decryptions.

use std::sync::{Arc, OnceLock};

use crate::domain::primitives::{
    EddsaPrivateKey, EddsaPublicKey, NormalizedPaytoHash, Timestamp, base32,
};
use crate::ports::aml::{AttributeStore, DecisionStore, OfficerStore};
use crate::ports::attribute_cipher::{AttributeCipher, NONCE_LEN};
use crate::ports::clock::Clock;
use crate::ports::journal::Journal;
use crate::ports::kyc::KycStore;
use crate::ports::pdf::PdfRenderer;
use crate::ports::random::{Random, random_bytes};

use super::document::ExportContext;
use super::error::AmlError;
use super::export::{AttributeEvent, AttributeHistory};
use super::model::{AttributeMap, AttributeSource, NewAttributeRecord, NewOutcome, Officer};
use super::paging::page_from_query;

/// The ports the AML rules need.
#[derive(Clone)]
pub struct AmlPorts {
    pub officers: Arc<dyn OfficerStore>,
    pub attributes: Arc<dyn AttributeStore>,
    pub decisions: Arc<dyn DecisionStore>,
    /// Measure sets, accounts and events (shared with the KYC process).
    pub kyc: Arc<dyn KycStore>,
    pub cipher: Arc<dyn AttributeCipher>,
    pub pdf: Arc<dyn PdfRenderer>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    /// The access log: officer reads are appended before they are answered.
    pub journal: Arc<dyn Journal>,
    /// Signs export proofs.
    pub journal_key: EddsaPrivateKey,
}

/// The exchange's configuration as the AML rules need it.
#[derive(Debug, Clone)]
pub struct AmlSettings {
    /// The effective master public key (signs officer registrations).
    pub master_pub: EddsaPublicKey,
    /// `[exchange] ENABLE_AML_PDF`.
    pub pdf_enabled: bool,
    /// The default `LegitimizationRuleSet`, shown for decisions that set no rules.
    pub default_rules: serde_json::Value,
    /// The `GET /aml/$PUB/measures` body ([`super::measures_json`]).
    pub measures: serde_json::Value,
}

/// The representation an officer asked for (content negotiation happens at the edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Pdf,
}

/// A 200 answer of the attributes endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeReport {
    /// Serialize with [`AttributeHistory::json`].
    Json(AttributeHistory),
    /// A rendered PDF document of the account's history.
    Pdf {
        h_payto: NormalizedPaytoHash,
        bytes: Vec<u8>,
        /// Row ids drawn, in the order drawn.
        rows: Vec<u64>,
    },
}

/// What the KYC process files after a check completes (or an officer along with a decision).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreAttributes {
    pub h_payto: NormalizedPaytoHash,
    pub attributes: AttributeMap,
    pub source: AttributeSource,
    /// `Timestamp::never()` when the data does not expire.
    pub expiration_time: Timestamp,
    pub process_serial: Option<u64>,
}

pub struct AmlService {
    pub(super) ports: AmlPorts,
    pub(super) settings: AmlSettings,
    /// The exchange's public base URL, known once the server is bound (printed in exports).
    exchange_url: OnceLock<String>,
}

impl AmlService {
    pub fn new(ports: AmlPorts, settings: AmlSettings) -> AmlService {
        AmlService {
            ports,
            settings,
            exchange_url: OnceLock::new(),
        }
    }

    /// Tells the service the exchange's public base URL (once; later calls are ignored).
    pub fn set_exchange_url(&self, url: String) {
        let _ = self.exchange_url.set(url);
    }

    pub fn settings(&self) -> &AmlSettings {
        &self.settings
    }

    /// `GET /aml/$OFFICER_PUB/attributes/$H_NORMALIZED_PAYTO` after authentication: `None`
    /// when no row matches (204). A row that cannot be decrypted is listed without its
    /// attributes.
    pub fn attributes(
        &self,
        officer: &Officer,
        h_payto: &str,
        query: &[(String, String)],
        format: ExportFormat,
    ) -> Result<Option<AttributeReport>, AmlError> {
        let h_payto = base32::decode_array(h_payto)
            .map(NormalizedPaytoHash)
            .map_err(|_| AmlError::PathSegmentMalformed("H_NORMALIZED_PAYTO"))?;
        let page = page_from_query(query)?;
        if format == ExportFormat::Pdf && !self.settings.pdf_enabled {
            return Err(AmlError::PdfDisabled);
        }
        if page.limit() == 0 {
            return Ok(None);
        }
        let records = self.ports.attributes.attributes(&h_payto, &page)?;
        if records.is_empty() {
            return Ok(None);
        }
        let events = records
            .into_iter()
            .map(|record| AttributeEvent {
                rowid: record.rowid,
                by_aml_officer: record.source.by_aml_officer(),
                attributes: self.ports.cipher.open(&record.encrypted),
                collection_time: record.collection_time,
            })
            .collect();
        let history = AttributeHistory { h_payto, events };
        Ok(Some(match format {
            ExportFormat::Json => AttributeReport::Json(history),
            ExportFormat::Pdf => AttributeReport::Pdf {
                h_payto,
                rows: history.events.iter().map(|e| e.rowid).collect(),
                bytes: self
                    .ports
                    .pdf
                    .render(&history.document(&self.export_context(officer, &h_payto)?))
                    .map_err(|e| AmlError::Internal(format!("rendering the PDF: {e}")))?,
            },
        }))
    }

    /// The exchange, the account's payto URI (if known), the officer and the time of an export.
    fn export_context(
        &self,
        officer: &Officer,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<ExportContext, AmlError> {
        let account = self.ports.kyc.account(h_payto)?;
        Ok(ExportContext {
            exchange: self
                .exchange_url
                .get()
                .cloned()
                .unwrap_or_else(|| "(base URL not known)".to_owned()),
            payto: account.map(|a| a.full_payto.unwrap_or(a.normalized_payto)),
            officer_name: officer.name.clone(),
            officer_pub: officer.officer_pub,
            exported_at: self.ports.clock.now(),
        })
    }

    /// Records a decision (an AML program's outcome or an officer's) as the account's active
    /// one; returns its row id.
    pub fn record_outcome(&self, outcome: &NewOutcome) -> Result<u64, AmlError> {
        Ok(self.ports.decisions.insert_outcome(outcome)?)
    }

    /// Encrypts and appends one attribute row, collected now; returns its row id. The
    /// operation the KYC process calls after a form upload or a provider proof.
    pub fn store_attributes(&self, request: StoreAttributes) -> Result<u64, AmlError> {
        let nonce: [u8; NONCE_LEN] = random_bytes(self.ports.random.as_ref());
        let encrypted = self
            .ports
            .cipher
            .seal(&request.attributes, nonce)
            .map_err(|e| AmlError::Internal(format!("encrypting attributes: {e}")))?;
        let form_id = request
            .attributes
            .get("FORM_ID")
            .and_then(|id| id.as_str())
            .map(str::to_owned);
        let record = NewAttributeRecord {
            h_payto: request.h_payto,
            collection_time: self.ports.clock.now(),
            expiration_time: request.expiration_time,
            source: request.source,
            form_id,
            process_serial: request.process_serial,
            encrypted,
        };
        Ok(self.ports.attributes.append_attributes(&record)?)
    }
}

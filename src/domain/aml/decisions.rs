//! `GET /aml/$OFFICER_PUB/decisions` (exchange-aml.md §5): the decisions (outcomes) of
//! accounts, so that officers find the accounts whose attributes they read.

use serde::Serialize;

use crate::domain::primitives::{EddsaPublicKey, NormalizedPaytoHash, Timestamp, base32};

use super::access::PendingRead;
use super::error::AmlError;
use super::model::{AttributeMap, DecisionRecord, Officer};
use super::paging::{Page, page_from_query};
use super::service::AmlService;

/// Which decisions to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionFilter {
    pub page: Page,
    pub h_payto: Option<NormalizedPaytoHash>,
    /// `Some(true)`: only current decisions; `Some(false)`: only superseded ones.
    pub active: Option<bool>,
    /// `Some(b)`: only decisions whose `to_investigate` is `b`.
    pub investigation: Option<bool>,
}

/// One record of the 200 body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AmlDecision {
    pub h_payto: NormalizedPaytoHash,
    pub rowid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    pub decision_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<AttributeMap>,
    /// The decision's `LegitimizationRuleSet` (the default rules when it set none).
    pub limits: serde_json::Value,
    pub to_investigate: bool,
    pub is_active: bool,
    /// The deciding officer (talerbox extra); absent for program outcomes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decider_pub: Option<EddsaPublicKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_payto: Option<String>,
}

/// The 200 body (`AmlDecisions`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AmlDecisionsResponse {
    pub records: Vec<AmlDecision>,
}

impl DecisionFilter {
    /// The filter as the access log records it (integers and booleans only).
    pub fn journal_json(&self) -> serde_json::Value {
        let mut filter = serde_json::json!({
            "limit": self.page.limit(),
            "offset": i64::try_from(self.page.offset()).unwrap_or(i64::MAX),
        });
        if let Some(object) = filter.as_object_mut() {
            if let Some(active) = self.active {
                object.insert("active".into(), active.into());
            }
            if let Some(investigation) = self.investigation {
                object.insert("investigation".into(), investigation.into());
            }
        }
        filter
    }

    /// `limit`/`offset` as for attributes, `h_payto`, `active` and `investigation`
    /// (`yes`/`no`/`all`); anything malformed is 400/26.
    pub fn from_query(query: &[(String, String)]) -> Result<DecisionFilter, AmlError> {
        let value = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let h_payto = value("h_payto")
            .map(|text| {
                base32::decode_array(text)
                    .map(NormalizedPaytoHash)
                    .map_err(|_| AmlError::ParameterMalformed(format!("h_payto={text}")))
            })
            .transpose()?;
        Ok(DecisionFilter {
            page: page_from_query(query)?,
            h_payto,
            active: tristate("active", value("active"))?,
            investigation: tristate("investigation", value("investigation"))?,
        })
    }
}

/// A yes/no/all parameter (case-insensitive, default all).
pub(super) fn tristate(name: &str, value: Option<&str>) -> Result<Option<bool>, AmlError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("all") => Ok(None),
        Some("yes") => Ok(Some(true)),
        Some("no") => Ok(Some(false)),
        Some(_) => Err(AmlError::ParameterMalformed(name.to_owned())),
    }
}

impl AmlService {
    /// The decisions on the page; `None` when there are none (204).
    pub fn decisions(
        &self,
        officer: &Officer,
        query: &[(String, String)],
    ) -> Result<Option<AmlDecisionsResponse>, AmlError> {
        let pending = self.prepare_decisions(officer, query)?;
        self.commit_read(pending)
    }

    /// The decisions, pending their `aml.decisions_read` entry (also when there are none).
    pub fn prepare_decisions(
        &self,
        officer: &Officer,
        query: &[(String, String)],
    ) -> Result<PendingRead<Option<AmlDecisionsResponse>>, AmlError> {
        let filter = DecisionFilter::from_query(query)?;
        let records = if filter.page.limit() == 0 {
            Vec::new()
        } else {
            self.ports.decisions.decisions(&filter)?
        };
        let entry = crate::domain::evidence::events::decisions_read(
            filter.h_payto,
            &officer.officer_pub,
            records.len() as u64,
            filter.journal_json(),
        );
        let answer = (!records.is_empty()).then(|| AmlDecisionsResponse {
            records: records
                .into_iter()
                .map(|record| self.decision_json(record))
                .collect(),
        });
        Ok(PendingRead::new(entry, answer))
    }

    fn decision_json(&self, record: DecisionRecord) -> AmlDecision {
        AmlDecision {
            h_payto: record.h_payto,
            rowid: record.rowid,
            justification: record.justification,
            decision_time: record.decision_time,
            properties: record.properties,
            limits: record
                .new_rules
                .unwrap_or_else(|| self.settings.default_rules.clone()),
            to_investigate: record.to_investigate,
            is_active: record.is_active,
            decider_pub: record.decider_pub,
            full_payto: record.full_payto,
        }
    }
}

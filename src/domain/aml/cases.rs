//! The officer reads that support decisions (exchange-aml-decisions.md §4): the configured
//! measures, event statistics, measure sets and accounts.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::domain::kyc::{KycRules, LegitimizationMeasures};
use crate::domain::primitives::{NormalizedPaytoHash, Timestamp, base32};
use crate::ports::kyc::{AccountFilter, MeasureListing};

use super::decisions::tristate;
use super::error::AmlError;
use super::model::Officer;
use super::paging::page_from_query;
use super::service::AmlService;

/// The longest event name (§3.6 step 5).
const MAX_EVENT_NAME: usize = 64;

/// `GET /aml/$PUB/measures`: the configured vocabulary, computed once at start.
pub fn measures_json(rules: &KycRules) -> Value {
    let roots: Map<String, Value> = rules
        .measures
        .values()
        .map(|m| {
            let check = if m.check_name == crate::domain::kyc::SKIP {
                "SKIP".to_owned()
            } else {
                m.check_name.clone()
            };
            let value = json!({"check_name": check, "prog_name": m.program,
                "context": m.context, "voluntary": m.voluntary});
            (m.name.clone(), value)
        })
        .collect();
    let programs: Map<String, Value> = rules
        .programs
        .values()
        .map(|p| {
            let value = json!({"description": p.description, "context": p.required_context,
                "inputs": p.required_attributes});
            (p.name.clone(), value)
        })
        .collect();
    let checks: Map<String, Value> = rules
        .checks
        .values()
        .map(|c| {
            let mut value = json!({"description": c.description, "requires": c.requires,
                "outputs": c.outputs, "fallback": c.fallback});
            if let (Some(i18n), Some(object)) = (&c.description_i18n, value.as_object_mut()) {
                object.insert("description_i18n".to_owned(), i18n.clone());
            }
            (c.name.clone(), value)
        })
        .collect();
    json!({
        "roots": roots,
        "programs": programs,
        "checks": checks,
        "default_rules": rules.default_rule_set().rules,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventCounter {
    pub name: String,
    pub counter: u64,
}

/// One measure set as `legitimizations` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasureSetRecord {
    pub h_payto: NormalizedPaytoHash,
    pub rowid: u64,
    pub start_time: Timestamp,
    pub measures: LegitimizationMeasures,
    pub is_finished: bool,
}

/// One account as `accounts` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountRecord {
    pub h_payto: NormalizedPaytoHash,
    pub rowid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_payto: Option<String>,
    pub open: bool,
    pub to_investigate: bool,
    pub high_risk: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<Timestamp>,
}

fn first<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Whole seconds since the epoch, unsigned decimal.
fn seconds(query: &[(String, String)], name: &str) -> Result<Option<Timestamp>, AmlError> {
    first(query, name)
        .map(|text| {
            text.parse::<u64>()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                .and_then(Timestamp::from_seconds)
                .ok_or_else(|| AmlError::ParameterMalformed(name.to_owned()))
        })
        .transpose()
}

impl AmlService {
    /// `GET /aml/$PUB/measures`.
    pub fn measures(&self, _officer: &Officer) -> &Value {
        &self.settings.measures
    }

    /// `GET /aml/$PUB/kyc-statistics/$NAMES`; `None` when every counter is 0 (204).
    pub fn kyc_statistics(
        &self,
        _officer: &Officer,
        names: &str,
        query: &[(String, String)],
    ) -> Result<Option<Vec<EventCounter>>, AmlError> {
        let names: Vec<&str> = names.split(' ').filter(|n| !n.is_empty()).collect();
        if names.is_empty() || names.iter().any(|n| n.len() > MAX_EVENT_NAME) {
            return Err(AmlError::ParameterMalformed("NAMES".to_owned()));
        }
        let start = seconds(query, "start_date")?.unwrap_or(Timestamp::EPOCH);
        let end = seconds(query, "end_date")?.unwrap_or_else(|| self.ports.clock.now());
        let mut counters = Vec::with_capacity(names.len());
        for name in names {
            let counter = if start < end {
                self.ports.kyc.count_events(name, start, end)?
            } else {
                0
            };
            counters.push(EventCounter {
                name: name.to_owned(),
                counter,
            });
        }
        Ok(counters.iter().any(|c| c.counter > 0).then_some(counters))
    }

    /// `GET /aml/$PUB/legitimizations`; `None` when nothing matches (204).
    pub fn legitimizations(
        &self,
        _officer: &Officer,
        query: &[(String, String)],
    ) -> Result<Option<Vec<MeasureSetRecord>>, AmlError> {
        self.measure_sets(query)
    }

    /// The measure sets the query names (also the operator's `kyc list`).
    pub fn measure_sets(
        &self,
        query: &[(String, String)],
    ) -> Result<Option<Vec<MeasureSetRecord>>, AmlError> {
        let page = page_from_query(query)?;
        let filter_h_payto = first(query, "h_payto")
            .map(|text| {
                base32::decode_array(text)
                    .map(NormalizedPaytoHash)
                    .map_err(|_| AmlError::ParameterMalformed("h_payto".to_owned()))
            })
            .transpose()?;
        let listing = MeasureListing {
            filter_h_payto,
            open: tristate("active", first(query, "active"))?,
        };
        let rows = self.ports.kyc.list_measures(&listing, &page)?;
        let records: Vec<MeasureSetRecord> = rows
            .into_iter()
            .map(|row| MeasureSetRecord {
                h_payto: row.h_payto,
                rowid: row.serial,
                start_time: row.start_time,
                measures: row.measures,
                is_finished: row.is_finished,
            })
            .collect();
        Ok((!records.is_empty()).then_some(records))
    }

    /// `GET /aml/$PUB/accounts`; `None` when nothing matches (204).
    pub fn accounts(
        &self,
        _officer: &Officer,
        query: &[(String, String)],
    ) -> Result<Option<Vec<AccountRecord>>, AmlError> {
        self.account_list(query)
    }

    /// The accounts the query names (also the operator's `aml accounts`).
    pub fn account_list(
        &self,
        query: &[(String, String)],
    ) -> Result<Option<Vec<AccountRecord>>, AmlError> {
        let page = page_from_query(query)?;
        let filter = AccountFilter {
            investigation: tristate("investigation", first(query, "investigation"))?,
            open: tristate("open", first(query, "open"))?,
            high_risk: tristate("high_risk", first(query, "high_risk"))?,
        };
        let rows = self.ports.kyc.list_accounts(&filter, &page)?;
        let records: Vec<AccountRecord> = rows
            .into_iter()
            .map(|row| AccountRecord {
                open: row.active.is_some(),
                to_investigate: row.to_investigate(),
                high_risk: row.high_risk(),
                decision_time: row.active.as_ref().map(|o| o.decision_time),
                expiration_time: row.active.as_ref().map(|o| o.expiration_time),
                h_payto: row.h_payto,
                rowid: row.serial,
                full_payto: row.full_payto,
            })
            .collect();
        Ok((!records.is_empty()).then_some(records))
    }
}

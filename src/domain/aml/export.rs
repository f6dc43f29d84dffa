//! The attribute history of one account as the officer sees it, and its `KycAttributes` JSON
//! (the document a PDF renderer lays out is drawn from it in `document`).

use serde::Serialize;

use crate::domain::primitives::{NormalizedPaytoHash, Timestamp};

use super::model::AttributeMap;

/// One decrypted collection event; `attributes` is `None` when the row cannot be decrypted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeEvent {
    pub rowid: u64,
    pub by_aml_officer: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<AttributeMap>,
    pub collection_time: Timestamp,
}

/// The selected rows of one account, in the page's order.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeHistory {
    pub h_payto: NormalizedPaytoHash,
    pub events: Vec<AttributeEvent>,
}

/// The JSON body of a 200 (`KycAttributes`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KycAttributes<'a> {
    pub details: &'a [AttributeEvent],
}

impl AttributeHistory {
    pub fn json(&self) -> KycAttributes<'_> {
        KycAttributes {
            details: &self.events,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a timestamp, `never` for never.
pub fn iso8601_utc(time: Timestamp) -> String {
    let Some(seconds) = time.as_seconds() else {
        return "never".to_owned();
    };
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_seconds(seconds).unwrap()
    }

    #[test]
    fn iso8601() {
        assert_eq!(iso8601_utc(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(at(1_700_000_123)), "2023-11-14T22:15:23Z");
        assert_eq!(iso8601_utc(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601_utc(at(4_102_444_799)), "2099-12-31T23:59:59Z");
        assert_eq!(iso8601_utc(Timestamp::never()), "never");
    }

    fn history() -> AttributeHistory {
        let attributes: AttributeMap = serde_json::from_str(
            r#"{"FULL_NAME":"Alice Example","FORM_ID":"test","FORM_VERSION":2,"ADDR":{"c":"CH"}}"#,
        )
        .unwrap();
        AttributeHistory {
            h_payto: NormalizedPaytoHash([1; 32]),
            events: vec![
                AttributeEvent {
                    rowid: 20,
                    by_aml_officer: false,
                    attributes: Some(attributes),
                    collection_time: at(1_700_000_123),
                },
                AttributeEvent {
                    rowid: 12,
                    by_aml_officer: true,
                    attributes: None,
                    collection_time: at(1_699_990_000),
                },
            ],
        }
    }

    #[test]
    fn json_omits_unavailable_attributes() {
        let json = serde_json::to_value(history().json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"details": [
                {"rowid": 20, "by_aml_officer": false, "collection_time": {"t_s": 1_700_000_123},
                 "attributes": {"FULL_NAME": "Alice Example", "FORM_ID": "test",
                                "FORM_VERSION": 2, "ADDR": {"c": "CH"}}},
                {"rowid": 12, "by_aml_officer": true, "collection_time": {"t_s": 1_699_990_000}},
            ]})
        );
    }
}

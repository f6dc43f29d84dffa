//! The AML export as a document for a compliance file: who holds the account, who exported it
//! and when, then every collection event, oldest first, with the form's labels. A renderer only
//! lays this text out. What one export may print is bounded, so that one huge attribute row
//! cannot make an export take unbounded memory; what is left out is said so in the document.

use crate::domain::kyc::forms::{self, field_label};
use crate::domain::primitives::{EddsaPublicKey, NormalizedPaytoHash, Timestamp};

use super::export::{AttributeEvent, AttributeHistory, iso8601_utc};
use super::model::AttributeMap;

/// Text of a document, in reading order, for a renderer that only lays it out: it decides
/// line breaks and pages, never content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDocument {
    pub title: String,
    /// Lines under the title: exchange, account, export.
    pub preamble: Vec<String>,
    pub sections: Vec<ExportSection>,
}

/// One collection event: a heading and its `Label: value` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSection {
    pub heading: String,
    pub lines: Vec<String>,
}

/// What the document says about its origin besides the history itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportContext {
    /// The exchange's base URL.
    pub exchange: String,
    /// The account's payto URI, when the exchange knows it.
    pub payto: Option<String>,
    pub officer_name: String,
    pub officer_pub: EddsaPublicKey,
    pub exported_at: Timestamp,
}

/// Printed instead of the attributes of a row that cannot be decrypted.
pub const ATTRIBUTES_UNAVAILABLE: &str = "(attributes unavailable: the row cannot be decrypted)";

/// Characters of one attribute value that are printed; the rest is replaced by a note.
pub const MAX_VALUE_CHARS: usize = 1_000;
/// Attributes of one event that are printed.
pub const MAX_ATTRIBUTES_PER_EVENT: usize = 200;
/// Characters of attribute text in one document; later events are listed without attributes.
pub const MAX_DOCUMENT_CHARS: usize = 256 * 1024;

const TITLE: &str = "KYC attribute history";

impl AttributeHistory {
    /// The document of this history: events renumbered oldest first (internal row ids are
    /// left out), attributes labelled by their form, within the limits above.
    pub fn document(&self, context: &ExportContext) -> ExportDocument {
        let mut events: Vec<&AttributeEvent> = self.events.iter().collect();
        events.sort_by_key(|event| (event.collection_time, event.rowid));
        let count = events.len();
        let mut budget = MAX_DOCUMENT_CHARS;
        let sections = events
            .iter()
            .enumerate()
            .map(|(index, event)| section(index + 1, count, event, &mut budget))
            .collect();
        ExportDocument {
            title: TITLE.to_owned(),
            preamble: preamble(&self.h_payto, count, context),
            sections,
        }
    }
}

fn preamble(h_payto: &NormalizedPaytoHash, count: usize, context: &ExportContext) -> Vec<String> {
    let payto = context
        .payto
        .as_deref()
        .unwrap_or("(payto URI not known to the exchange)");
    let plural = if count == 1 { "" } else { "s" };
    vec![
        format!("Exchange: {}", context.exchange),
        format!("Account: {payto}"),
        format!("Account hash (h_normalized_payto): {h_payto}"),
        format!("Exported by AML officer: {}", context.officer_name),
        format!("Officer public key: {}", context.officer_pub),
        format!("Exported at: {}", iso8601_utc(context.exported_at)),
        format!("{count} collection event{plural}, numbered oldest first"),
    ]
}

fn section(
    number: usize,
    count: usize,
    event: &AttributeEvent,
    budget: &mut usize,
) -> ExportSection {
    let source = if event.by_aml_officer {
        "entered by an AML officer"
    } else {
        "submitted by the customer"
    };
    let heading = format!(
        "Event {number} of {count} - collected {} - {source}",
        iso8601_utc(event.collection_time)
    );
    let lines = match &event.attributes {
        None => vec![ATTRIBUTES_UNAVAILABLE.to_owned()],
        Some(_) if *budget == 0 => vec![format!(
            "(attributes not shown: the document reached its limit of {MAX_DOCUMENT_CHARS} \
             characters; export fewer events or use the JSON export)"
        )],
        Some(attributes) => attribute_lines(attributes, budget),
    };
    ExportSection { heading, lines }
}

/// `Label: value` lines, the form's fields first in the form's order, then the other
/// attributes sorted by name (non-strings as compact JSON).
fn attribute_lines(attributes: &AttributeMap, budget: &mut usize) -> Vec<String> {
    let form_id = attributes.get("FORM_ID").and_then(|id| id.as_str());
    let form = form_id.and_then(forms::builtin);
    let form_order = |key: &str| {
        form.and_then(|form| form.fields.iter().position(|f| f.name == key))
            .unwrap_or(usize::MAX)
    };
    let mut keys: Vec<&String> = attributes.keys().collect();
    keys.sort_by(|a, b| form_order(a).cmp(&form_order(b)).then(a.cmp(b)));
    let total = keys.len();
    let mut lines = Vec::new();
    for key in keys.into_iter().take(MAX_ATTRIBUTES_PER_EVENT) {
        if *budget == 0 {
            break;
        }
        let Some(value) = attributes.get(key) else {
            continue;
        };
        let label = field_label(form_id, key).unwrap_or(key);
        let text = match (key.as_str(), value) {
            ("FORM_ID", serde_json::Value::String(id)) => match forms::builtin(id) {
                Some(form) => format!("{} ({id})", form.title),
                None => id.clone(),
            },
            (_, serde_json::Value::String(text)) => text.clone(),
            (_, other) => other.to_string(),
        };
        let line = bounded(&format!("{label}: {text}"), budget);
        lines.push(line);
    }
    if lines.len() < total {
        lines.push(format!(
            "({} more attributes not shown: one event prints at most {MAX_ATTRIBUTES_PER_EVENT} \
             and the document {MAX_DOCUMENT_CHARS} characters; the JSON export lists them all)",
            total - lines.len()
        ));
    }
    lines
}

/// `line` cut to [`MAX_VALUE_CHARS`] and to what is left of `budget`, with a note when cut.
fn bounded(line: &str, budget: &mut usize) -> String {
    let limit = MAX_VALUE_CHARS.min(*budget);
    let length = line.chars().count();
    if length <= limit {
        *budget -= length;
        return line.to_owned();
    }
    *budget -= limit;
    let kept: String = line.chars().take(limit).collect();
    format!("{kept} ... (truncated: {length} characters in all)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::primitives::EddsaPrivateKey;

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_seconds(seconds).unwrap()
    }

    fn attributes(json: serde_json::Value) -> Option<AttributeMap> {
        Some(serde_json::from_value(json).unwrap())
    }

    fn context() -> ExportContext {
        ExportContext {
            exchange: "https://exchange.example/".into(),
            payto: Some("payto://iban/CH9300762011623852957?receiver-name=Alice".into()),
            officer_name: "Olga Officer".into(),
            officer_pub: EddsaPrivateKey::from_seed([3; 32]).public_key(),
            exported_at: at(1_700_100_000),
        }
    }

    fn event(rowid: u64, time: u64, attributes: Option<AttributeMap>) -> AttributeEvent {
        AttributeEvent {
            rowid,
            by_aml_officer: rowid == 12,
            attributes,
            collection_time: at(time),
        }
    }

    fn history(events: Vec<AttributeEvent>) -> AttributeHistory {
        AttributeHistory {
            h_payto: NormalizedPaytoHash([1; 32]),
            events,
        }
    }

    #[test]
    fn names_the_exchange_account_officer_and_time() {
        let context = context();
        let document = history(vec![event(3, 1_700_000_000, None)]).document(&context);
        assert_eq!(
            document.preamble,
            [
                "Exchange: https://exchange.example/".to_owned(),
                "Account: payto://iban/CH9300762011623852957?receiver-name=Alice".to_owned(),
                format!(
                    "Account hash (h_normalized_payto): {}",
                    NormalizedPaytoHash([1; 32])
                ),
                "Exported by AML officer: Olga Officer".to_owned(),
                format!("Officer public key: {}", context.officer_pub),
                "Exported at: 2023-11-16T02:00:00Z".to_owned(),
                "1 collection event, numbered oldest first".to_owned(),
            ]
        );
        let unknown = ExportContext {
            payto: None,
            ..context
        };
        let document = history(vec![]).document(&unknown);
        assert_eq!(
            document.preamble[1],
            "Account: (payto URI not known to the exchange)"
        );
    }

    #[test]
    fn numbers_events_oldest_first_with_labels_and_without_row_ids() {
        let form = attributes(serde_json::json!({
            "FORM_ID": "full_name_and_birthdate", "FULL_NAME": "Łukasz Čapek",
            "DATE_OF_BIRTH": "1990-01-02", "ADDR": {"c": "CH"}, "FORM_VERSION": 2
        }));
        // Page order is newest first: the document is oldest first all the same.
        let events = vec![
            event(20, 1_700_000_123, form),
            event(12, 1_699_990_000, None),
        ];
        let document = history(events).document(&context());
        assert_eq!(document.sections.len(), 2);
        assert_eq!(
            document.sections[0].heading,
            "Event 1 of 2 - collected 2023-11-14T19:26:40Z - entered by an AML officer"
        );
        assert_eq!(document.sections[0].lines, [ATTRIBUTES_UNAVAILABLE]);
        assert_eq!(
            document.sections[1].heading,
            "Event 2 of 2 - collected 2023-11-14T22:15:23Z - submitted by the customer"
        );
        assert_eq!(
            document.sections[1].lines,
            [
                "Full name: Łukasz Čapek",
                "Date of birth: 1990-01-02",
                "ADDR: {\"c\":\"CH\"}",
                "Form: Full name and date of birth (full_name_and_birthdate)",
                "Form version: 2",
            ]
        );
        let text = format!("{document:?}");
        assert!(
            !text.contains("Row 20") && !text.contains("rowid"),
            "{text}"
        );
    }

    #[test]
    fn a_huge_row_is_cut_with_notes() {
        let mut huge = serde_json::Map::new();
        for i in 0..2_000 {
            huge.insert(format!("FIELD_{i:04}"), "x".repeat(5_000).into());
        }
        let events = (0..3)
            .map(|i| event(i, 1_700_000_000 + i, attributes(huge.clone().into())))
            .collect();
        let document = history(events).document(&context());
        let printed: usize = document
            .sections
            .iter()
            .flat_map(|s| &s.lines)
            .map(|l| l.chars().count())
            .sum();
        // Each cut line carries a short note beyond the budget.
        assert!(printed < MAX_DOCUMENT_CHARS + 20_000, "{printed}");
        let first = &document.sections[0].lines;
        assert_eq!(first.len(), MAX_ATTRIBUTES_PER_EVENT + 1);
        assert!(first[0].starts_with("FIELD_0000: xxx"));
        assert!(first[0].ends_with("... (truncated: 5012 characters in all)"));
        assert!(first[MAX_ATTRIBUTES_PER_EVENT].starts_with("(1800 more attributes not shown"));
        // The budget is spent within the second event; the third says why it shows nothing.
        assert!(document.sections[2].lines[0].starts_with("(attributes not shown"));
    }
}

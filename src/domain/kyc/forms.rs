//! The descriptions of the forms FORM checks ask the customer to fill in: one description per
//! form name, which the customer's page renders (fields, labels, types, validation).
//!
//! `full_name_and_birthdate` is built in. Any other form name of a configured FORM check is
//! described by that check's `OUTPUTS`: one required field per attribute, its type read from
//! the attribute's name (see `FieldKind::for_attribute`). Officers see the uploaded attributes
//! under the same labels (`field_label`).

use serde::Serialize;

use super::model::{CheckKind, KycRules};

/// The customer's KYC page for `token` at the exchange whose base URL (ending in `/`) is given.
pub fn customer_page_url(exchange_base_url: &str, token: &str) -> String {
    format!("{exchange_base_url}kyc-spa/{token}")
}

/// The form every installation knows.
pub const PERSONAL_FORM: &str = "full_name_and_birthdate";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormDescription {
    /// The form's name, sent back as `FORM_ID` with the upload.
    pub id: String,
    pub title: String,
    pub fields: Vec<FormField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormField {
    /// The attribute name the value is uploaded under.
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    pub required: bool,
    /// A help text shown under the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Text,
    /// A calendar date, uploaded as `YYYY-MM-DD`; a date of birth must lie in the past.
    Date,
    Email,
    Tel,
    /// A file, uploaded as `{filename, content_type, data}` (multipart).
    File,
}

impl FieldKind {
    /// The type an attribute's name suggests: `…_FILE`, `…_DOCUMENT`, `…_SCAN` → a file;
    /// `…DATE…` → a date; `…EMAIL…` → an e-mail address; `…PHONE…` → a phone number; else text.
    pub fn for_attribute(name: &str) -> FieldKind {
        let name = name.to_ascii_uppercase();
        if ["_FILE", "_DOCUMENT", "_SCAN"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
        {
            FieldKind::File
        } else if name.contains("DATE") {
            FieldKind::Date
        } else if name.contains("EMAIL") {
            FieldKind::Email
        } else if name.contains("PHONE") {
            FieldKind::Tel
        } else {
            FieldKind::Text
        }
    }
}

/// `DATE_OF_BIRTH` → "Date of birth".
fn label_for(attribute: &str) -> String {
    let words = attribute.to_ascii_lowercase().replace('_', " ");
    let mut chars = words.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect::<String>()
    })
}

fn field(name: &str, kind: FieldKind, hint: Option<&str>) -> FormField {
    FormField {
        name: name.to_owned(),
        label: label_for(name),
        kind,
        required: true,
        hint: hint.map(str::to_owned),
    }
}

/// The form every installation knows, built once.
static PERSONAL: std::sync::LazyLock<FormDescription> =
    std::sync::LazyLock::new(|| FormDescription {
        id: PERSONAL_FORM.to_owned(),
        title: "Full name and date of birth".to_owned(),
        fields: vec![
            field(
                "FULL_NAME",
                FieldKind::Text,
                Some("As written in your identity document."),
            ),
            field("DATE_OF_BIRTH", FieldKind::Date, None),
        ],
    });

/// The built-in form `name`, if it is one.
pub fn builtin(name: &str) -> Option<&'static FormDescription> {
    (name == PERSONAL_FORM).then(|| &*PERSONAL)
}

/// The description of form `name`, or `None` when neither built in nor named by a FORM
/// check of `rules`.
pub fn describe(rules: &KycRules, name: &str) -> Option<FormDescription> {
    if let Some(form) = builtin(name) {
        return Some(form.clone());
    }
    let check = rules
        .checks
        .values()
        .find(|check| matches!(&check.kind, CheckKind::Form { form_name } if form_name == name))?;
    Some(FormDescription {
        id: name.to_owned(),
        title: if check.description.is_empty() {
            label_for(name)
        } else {
            check.description.clone()
        },
        fields: check
            .outputs
            .iter()
            .map(|output| field(output, FieldKind::for_attribute(output), None))
            .collect(),
    })
}

/// Labels of attributes any form or provider may set: the form's own id and version, and what
/// the challenger's address validation yields.
const COMMON_LABELS: &[(&str, &str)] = &[
    ("FORM_ID", "Form"),
    ("FORM_VERSION", "Form version"),
    ("CONTACT_EMAIL", "E-mail address"),
    ("CONTACT_PHONE", "Phone number"),
    ("CONTACT_NAME", "Contact name"),
    ("ADDRESS_LINES", "Postal address"),
    ("ADDRESS_COUNTRY", "Country"),
];

/// The label an officer reads for `attribute` of an upload through form `form_id`: the built-in
/// form's label or a common attribute's label. `None` (print the attribute's name) otherwise:
/// a configured form's labels are derived from these very names.
pub fn field_label(form_id: Option<&str>, attribute: &str) -> Option<&'static str> {
    let own = form_id
        .and_then(builtin)
        .map_or(&[][..], |form| &form.fields[..]);
    own.iter()
        .find(|field| field.name == attribute)
        .map(|field| field.label.as_str())
        .or_else(|| {
            COMMON_LABELS
                .iter()
                .find(|(name, _)| *name == attribute)
                .map(|(_, label)| *label)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::kyc::Check;

    fn rules_with(check: Check) -> KycRules {
        let mut rules = KycRules {
            currency: "KUDOS".to_owned(),
            max_program_runtime: crate::domain::primitives::RelativeTime::forever(),
            providers: Default::default(),
            checks: Default::default(),
            programs: Default::default(),
            measures: Default::default(),
            rules: Vec::new(),
        };
        rules.checks.insert(check.name.clone(), check);
        rules
    }

    fn form_check(form_name: &str, outputs: &[&str]) -> Check {
        Check {
            name: "proof".to_owned(),
            kind: CheckKind::Form {
                form_name: form_name.to_owned(),
            },
            description: "Proof of address".to_owned(),
            description_i18n: None,
            requires: Vec::new(),
            outputs: outputs.iter().map(|o| (*o).to_owned()).collect(),
            fallback: "freeze".to_owned(),
        }
    }

    #[test]
    fn the_personal_form_is_built_in() {
        let rules = rules_with(form_check("other", &[]));
        let form = describe(&rules, PERSONAL_FORM).unwrap();
        let names: Vec<_> = form.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["FULL_NAME", "DATE_OF_BIRTH"]);
        assert_eq!(form.fields[1].kind, FieldKind::Date);
        assert_eq!(form.fields[1].label, "Date of birth");
    }

    #[test]
    fn a_configured_form_is_described_by_its_outputs() {
        let rules = rules_with(form_check(
            "address_proof",
            &[
                "STREET_ADDRESS",
                "UTILITY_BILL_SCAN",
                "ISSUE_DATE",
                "CONTACT_EMAIL",
                "CONTACT_PHONE",
            ],
        ));
        let form = describe(&rules, "address_proof").unwrap();
        assert_eq!(form.title, "Proof of address");
        let kinds: Vec<_> = form.fields.iter().map(|f| f.kind).collect();
        use FieldKind::*;
        assert_eq!(kinds, [Text, File, Date, Email, Tel]);
        assert!(form.fields.iter().all(|f| f.required));
        assert_eq!(form.fields[1].label, "Utility bill scan");
        let json = serde_json::to_value(&form).unwrap();
        assert_eq!(json["fields"][1]["type"], "file");
        assert!(describe(&rules, "no_such_form").is_none());
    }

    #[test]
    fn officers_read_the_labels_the_customer_saw() {
        let personal = Some(PERSONAL_FORM);
        assert_eq!(field_label(personal, "FULL_NAME"), Some("Full name"));
        assert_eq!(
            field_label(personal, "DATE_OF_BIRTH"),
            Some("Date of birth")
        );
        assert_eq!(field_label(personal, "FORM_ID"), Some("Form"));
        assert_eq!(field_label(None, "CONTACT_EMAIL"), Some("E-mail address"));
        // Outside the built-in form, and for an attribute it lacks, the name is printed.
        assert_eq!(
            field_label(Some("address_proof"), "UTILITY_BILL_SCAN"),
            None
        );
        assert_eq!(field_label(None, "EXTRA"), None);
        assert_eq!(field_label(personal, "EXTRA"), None);
    }
}

//! Addresses as users submit them: the fields of the instance's address type, trimmed, each
//! checked against its configured restriction.

use serde_json::{Map, Value};

use crate::domain::primitives::{ErrorCode, TalerError};

use super::model::{Address, AddressType};

/// Longest accepted value of one address field, in bytes.
pub const MAX_FIELD_LEN: usize = 1024;

/// `/config.restrictions` entry: a field's value must match `regex` somewhere (anchor it for a
/// full match, as with POSIX `regexec`).
#[derive(Debug, Clone)]
pub struct Restriction {
    pub field: String,
    pub regex: regex::Regex,
    pub hint: Option<String>,
}

pub(super) fn missing(field: &str) -> TalerError {
    TalerError::new(ErrorCode::GenericParameterMissing).with_detail(field.to_owned())
}

pub(super) fn malformed(field: &str) -> TalerError {
    TalerError::new(ErrorCode::GenericParameterMalformed).with_detail(field.to_owned())
}

/// A field's value as given: `None` when absent, null or blank; an error when not a string or
/// too long.
fn field_value<'a>(
    input: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, TalerError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            let text = text.trim();
            if text.len() > MAX_FIELD_LEN {
                return Err(malformed(field).with_hint("address field too long"));
            }
            Ok(Some(text).filter(|t| !t.is_empty()))
        }
        Some(_) => Err(malformed(field).with_hint("address fields are strings")),
    }
}

/// Step 2 of `/challenge`: every field of the type present (25) and well-formed (26).
/// Fields of other types are ignored.
pub fn validate_address(
    address_type: AddressType,
    restrictions: &[Restriction],
    input: &Map<String, Value>,
) -> Result<Address, TalerError> {
    let mut address = Address::new();
    for &field in address_type.fields() {
        let value = field_value(input, field)?.ok_or_else(|| missing(field))?;
        if let Some(rule) = restrictions.iter().find(|r| r.field == field)
            && !rule.regex.is_match(value)
        {
            let hint = rule
                .hint
                .clone()
                .unwrap_or_else(|| "address rejected".into());
            return Err(malformed(field).with_hint(hint));
        }
        address.insert(field.to_owned(), value.to_owned());
    }
    Ok(address)
}

/// The address given at `/setup`: the type's fields that are present (unchecked, since the
/// client vouches for it); `None` when none is.
pub fn setup_address(
    address_type: AddressType,
    input: &Map<String, Value>,
) -> Result<Option<Address>, TalerError> {
    let mut address = Address::new();
    for &field in address_type.fields() {
        if let Some(value) = field_value(input, field)? {
            address.insert(field.to_owned(), value.to_owned());
        }
    }
    Ok(Some(address).filter(|a| !a.is_empty()))
}

/// What the helper gets as `argv[1]`: the one value of an e-mail or phone address, compact
/// JSON of a postal one.
pub fn helper_argument(address_type: AddressType, address: &Address) -> String {
    match address_type {
        AddressType::Email | AddressType::Phone => {
            address.values().next().cloned().unwrap_or_default()
        }
        AddressType::Postal | AddressType::PostalCh => {
            serde_json::to_string(address).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn email_rule() -> Vec<Restriction> {
        vec![Restriction {
            field: "CONTACT_EMAIL".into(),
            regex: regex::Regex::new("^[^@ ]+@[^@ ]+$").unwrap(),
            hint: Some("e-mail address".into()),
        }]
    }

    #[test]
    fn fields_are_trimmed_checked_and_projected() {
        let address = validate_address(
            AddressType::Email,
            &email_rule(),
            &object(json!({"CONTACT_EMAIL": " a@b.example ", "OTHER": 1})),
        )
        .unwrap();
        assert_eq!(
            address,
            Address::from([("CONTACT_EMAIL".into(), "a@b.example".into())])
        );
    }

    #[test]
    fn missing_is_25_and_malformed_26() {
        let code = |input: Value| {
            validate_address(AddressType::Email, &email_rule(), &object(input))
                .unwrap_err()
                .code
                .number()
        };
        assert_eq!(code(json!({})), 25);
        assert_eq!(code(json!({"CONTACT_EMAIL": "  "})), 25);
        assert_eq!(code(json!({"CONTACT_EMAIL": null})), 25);
        assert_eq!(code(json!({"CONTACT_EMAIL": "no-at-sign"})), 26);
        assert_eq!(code(json!({"CONTACT_EMAIL": 5})), 26);
        assert_eq!(
            code(json!({"CONTACT_EMAIL": format!("{}@b", "a".repeat(2000))})),
            26
        );
    }

    #[test]
    fn postal_addresses_need_every_field_and_go_to_the_helper_as_json() {
        let input = object(json!({"CONTACT_NAME": "Ann", "ADDRESS_LINES": "Road 1\n1000 Town"}));
        let err = validate_address(AddressType::Postal, &[], &input).unwrap_err();
        assert_eq!(err.detail.as_deref(), Some("ADDRESS_COUNTRY"));
        let address = validate_address(AddressType::PostalCh, &[], &input).unwrap();
        assert_eq!(
            helper_argument(AddressType::PostalCh, &address),
            r#"{"ADDRESS_LINES":"Road 1\n1000 Town","CONTACT_NAME":"Ann"}"#
        );
    }

    #[test]
    fn setup_addresses_keep_what_is_given() {
        let none = setup_address(AddressType::Email, &object(json!({"read_only": true})));
        assert_eq!(none.unwrap(), None);
        let some = setup_address(AddressType::Email, &object(json!({"CONTACT_EMAIL": "x"})));
        assert_eq!(some.unwrap().unwrap()["CONTACT_EMAIL"], "x");
        let bad = setup_address(AddressType::Email, &object(json!({"CONTACT_EMAIL": []})));
        assert_eq!(bad.unwrap_err().code.number(), 26);
    }
}

//! The Taler error vocabulary: `ErrorCode` (generated from the GANA table) and
//! `TalerError`, which serialises to the standard `ErrorDetail` JSON body.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

include!(concat!(env!("OUT_DIR"), "/error_codes.rs"));

impl ErrorCode {
    /// The GANA number sent as `code`.
    pub const fn number(self) -> u32 {
        self as u32
    }

    /// The full registry name, e.g. `TALER_EC_GENERIC_JSON_INVALID`.
    pub fn name(self) -> String {
        format!("TALER_EC_{}", self.short_name())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.short_name(), self.number())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.number())
    }
}

/// An error as Taler components report it: `{"code": N, "hint": "...", "detail": "..."}`.
///
/// The hint defaults to the code's registry name (the table carries no descriptions);
/// clients key on `code`, never on `hint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TalerError {
    pub code: ErrorCode,
    pub hint: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl TalerError {
    pub fn new(code: ErrorCode) -> Self {
        TalerError {
            code,
            hint: Cow::Borrowed(code.short_name()),
            detail: None,
        }
    }

    /// Replaces the default hint with an endpoint's own text.
    pub fn with_hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.hint = hint.into();
        self
    }

    /// Adds request-specific context such as the offending parameter's name.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl From<ErrorCode> for TalerError {
    fn from(code: ErrorCode) -> Self {
        TalerError::new(code)
    }
}

impl fmt::Display for TalerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.hint)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for TalerError {}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = include_str!("../../../data/taler-error-codes.tsv");

    #[test]
    fn every_table_row_is_a_code_with_its_name_and_status() {
        let rows: Vec<&str> = TSV.lines().skip(1).collect();
        assert_eq!(rows.len(), ErrorCode::ALL.len());
        for row in rows {
            let fields: Vec<&str> = row.split('\t').collect();
            let number: u32 = fields[0].parse().unwrap();
            let code = ErrorCode::from_number(number).unwrap();
            assert_eq!(code.number(), number);
            assert_eq!(code.name(), fields[1]);
            assert_eq!(code.registry_http_status().to_string(), fields[2]);
        }
    }

    #[test]
    fn well_known_codes() {
        assert_eq!(ErrorCode::GenericEndpointUnknown.number(), 21);
        assert_eq!(ErrorCode::GenericJsonInvalid.number(), 22);
        assert_eq!(ErrorCode::GenericUploadExceedsLimit.number(), 32);
        assert_eq!(
            ErrorCode::GenericUploadExceedsLimit.registry_http_status(),
            413
        );
        assert_eq!(ErrorCode::from_number(999_999), None);
    }

    #[test]
    fn serialises_as_error_detail() {
        let plain = TalerError::new(ErrorCode::GenericJsonInvalid);
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"code":22,"hint":"GENERIC_JSON_INVALID"}"#
        );
        let detailed = TalerError::new(ErrorCode::ExchangeGenericAmlOfficerGetSignatureInvalid)
            .with_detail("Taler-AML-Officer-Signature");
        assert_eq!(
            serde_json::to_string(&detailed).unwrap(),
            r#"{"code":1033,"hint":"EXCHANGE_GENERIC_AML_OFFICER_GET_SIGNATURE_INVALID","detail":"Taler-AML-Officer-Signature"}"#
        );
    }
}

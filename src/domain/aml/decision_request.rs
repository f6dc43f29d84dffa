//! The body of `POST /aml/$OFFICER_PUB/decision` (exchange-aml-decisions.md §3.1) and the
//! block its officer signs (§3.4, purpose 1350, 312 bytes).

use crate::domain::primitives::canonical_json::CanonicalJson;
use crate::domain::primitives::{
    EddsaPrivateKey, EddsaPublicKey, EddsaSignature, ErrorCode, NormalizedPaytoHash, Payto,
    TalerError, Timestamp, base32, purpose, sha512, sign_purpose, verify_purpose,
};

/// A decision request whose members have their types (steps 4–8 of §3.5 passed).
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRequest {
    pub justification: String,
    pub h_payto: NormalizedPaytoHash,
    pub payto_uri: Option<Payto>,
    pub new_rules: CanonicalJson,
    pub properties: Option<CanonicalJson>,
    pub events: Vec<String>,
    pub new_measures: Option<String>,
    pub keep_investigating: bool,
    pub decision_time: Timestamp,
    pub officer_sig: EddsaSignature,
    /// Officer-filed attributes (unsigned).
    pub attributes: Option<CanonicalJson>,
    pub attributes_expiration: Option<Timestamp>,
}

fn json_invalid(member: &str) -> TalerError {
    TalerError::new(ErrorCode::GenericJsonInvalid)
        .with_hint("member missing or of the wrong type")
        .with_detail(member.to_owned())
}

pub(crate) fn malformed(member: &str, hint: &'static str) -> TalerError {
    TalerError::new(ErrorCode::GenericParameterMalformed)
        .with_hint(hint)
        .with_detail(member.to_owned())
}

type Members = std::collections::BTreeMap<String, CanonicalJson>;

/// A member that is present and not `null`.
fn present<'a>(members: &'a Members, name: &str) -> Option<&'a CanonicalJson> {
    members.get(name).filter(|v| **v != CanonicalJson::Null)
}

fn text(members: &Members, name: &str) -> Result<Option<String>, TalerError> {
    match present(members, name) {
        None => Ok(None),
        Some(CanonicalJson::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(json_invalid(name)),
    }
}

fn required_text(members: &Members, name: &str) -> Result<String, TalerError> {
    text(members, name)?.ok_or_else(|| json_invalid(name))
}

fn object(members: &Members, name: &str) -> Result<Option<CanonicalJson>, TalerError> {
    match present(members, name) {
        None => Ok(None),
        Some(value @ CanonicalJson::Object(_)) => Ok(Some(value.clone())),
        Some(_) => Err(json_invalid(name)),
    }
}

fn base32_member<const N: usize>(members: &Members, name: &str) -> Result<[u8; N], TalerError> {
    base32::decode_array(&required_text(members, name)?).map_err(|_| json_invalid(name))
}

fn timestamp(members: &Members, name: &str) -> Result<Option<Timestamp>, TalerError> {
    present(members, name)
        .map(|value| serde_json::from_value(value.to_value()).map_err(|_| json_invalid(name)))
        .transpose()
}

impl DecisionRequest {
    /// Parses a body in the order of §3.5 steps 4–8.
    pub fn parse(body: &[u8]) -> Result<DecisionRequest, TalerError> {
        let json = CanonicalJson::parse(body).map_err(|e| {
            TalerError::new(ErrorCode::GenericJsonInvalid)
                .with_hint("body is not valid JSON")
                .with_detail(e.to_string())
        })?;
        let CanonicalJson::Object(members) = json else {
            return Err(TalerError::new(ErrorCode::GenericJsonInvalid)
                .with_hint("body must be a JSON object"));
        };
        let justification = required_text(&members, "justification")?;
        let h_payto = NormalizedPaytoHash(base32_member(&members, "h_payto")?);
        let payto_text = text(&members, "payto_uri")?;
        let new_rules = object(&members, "new_rules")?.ok_or_else(|| json_invalid("new_rules"))?;
        let properties = object(&members, "properties")?;
        let events = match present(&members, "events") {
            None => Vec::new(),
            Some(CanonicalJson::Array(items)) => items
                .iter()
                .map(|item| match item {
                    CanonicalJson::String(s) => Ok(s.clone()),
                    _ => Err(json_invalid("events")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(json_invalid("events")),
        };
        let new_measures = text(&members, "new_measures")?;
        let keep_investigating = match present(&members, "keep_investigating") {
            Some(CanonicalJson::Bool(b)) => *b,
            _ => return Err(json_invalid("keep_investigating")),
        };
        let decision_time =
            timestamp(&members, "decision_time")?.ok_or_else(|| json_invalid("decision_time"))?;
        let officer_sig = EddsaSignature(base32_member(&members, "officer_sig")?);
        let attributes = object(&members, "attributes")?;
        let attributes_expiration = timestamp(&members, "attributes_expiration")?;
        // Step 6: hashed members have one canonical form only without reals.
        for (name, value) in [
            ("new_rules", Some(&new_rules)),
            ("properties", properties.as_ref()),
        ] {
            if value.is_some_and(CanonicalJson::contains_real) {
                return Err(malformed(name, "numbers must be integers"));
            }
        }
        if decision_time.is_never() {
            return Err(malformed("decision_time", "decision_time must be finite"));
        }
        // Steps 7–8.
        let payto_uri = payto_text
            .map(|uri| {
                let payto = Payto::parse_full(&uri).map_err(|e| {
                    TalerError::new(ErrorCode::GenericJsonInvalid)
                        .with_hint(format!("payto_uri is not a full payto URI: {e}"))
                        .with_detail("payto_uri")
                })?;
                if payto.h_normalized() != h_payto {
                    return Err(malformed("payto_uri", "payto_uri does not hash to h_payto"));
                }
                Ok(payto)
            })
            .transpose()?;
        Ok(DecisionRequest {
            justification,
            h_payto,
            payto_uri,
            new_rules,
            properties,
            events,
            new_measures,
            keep_investigating,
            decision_time,
            officer_sig,
            attributes,
            attributes_expiration,
        })
    }

    /// The 304 bytes after the purpose header (§3.4).
    pub fn signed_body(&self) -> Vec<u8> {
        signed_body(
            self.decision_time,
            &self.h_payto,
            &self.justification,
            self.properties.as_ref(),
            &self.new_rules,
            self.new_measures.as_deref(),
            self.keep_investigating,
        )
    }

    /// Step 9: the officer's signature over the block (403/1825 otherwise).
    pub fn verify(&self, officer_pub: &EddsaPublicKey) -> Result<(), TalerError> {
        verify_purpose(
            officer_pub,
            purpose::AML_DECISION,
            &self.signed_body(),
            &self.officer_sig,
        )
        .map_err(|_| {
            TalerError::new(ErrorCode::ExchangeAmlDecisionAddSignatureInvalid)
                .with_hint("officer_sig does not sign this decision")
        })
    }
}

/// The signed block's body from its parts; absent `properties` and `new_measures` hash to
/// 64 zero bytes.
pub fn signed_body(
    decision_time: Timestamp,
    h_payto: &NormalizedPaytoHash,
    justification: &str,
    properties: Option<&CanonicalJson>,
    new_rules: &CanonicalJson,
    new_measures: Option<&str>,
    keep_investigating: bool,
) -> Vec<u8> {
    let zeros = [0u8; 64];
    let mut body = Vec::with_capacity(304);
    body.extend_from_slice(&decision_time.as_micros().to_be_bytes());
    body.extend_from_slice(&h_payto.0);
    body.extend_from_slice(&sha512(justification.as_bytes()).0);
    body.extend_from_slice(&properties.map_or(zeros, |p| p.hash().0));
    body.extend_from_slice(&new_rules.hash().0);
    body.extend_from_slice(&new_measures.map_or(zeros, |m| sha512(m.as_bytes()).0));
    body.extend_from_slice(&u64::from(keep_investigating).to_be_bytes());
    body
}

/// Signs a decision as an officer would (the CLI's `aml decide`).
pub fn sign_decision(key: &EddsaPrivateKey, body: &[u8]) -> EddsaSignature {
    sign_purpose(key, purpose::AML_DECISION, body)
}

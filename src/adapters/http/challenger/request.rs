//! What the challenger reads from requests: content negotiation, header text, and bodies that
//! arrive as forms or JSON (or, from the exchange, as unlabelled deflated JSON).

use std::io::Read;

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Map, Value};

use crate::domain::challenges::Params;
use crate::domain::primitives::json_body::from_object_slice;
use crate::domain::primitives::{ErrorCode, TalerError};

/// Whether `Accept` lists `media` explicitly (wildcards do not count; `q=0` refuses it).
pub fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let listed = parts
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(media));
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            listed && !refused
        })
}

/// A header's text; a value that is not text counts as present but empty (so: malformed).
pub fn header_text(headers: &HeaderMap, name: axum::http::HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|value| value.to_str().unwrap_or_default().to_owned())
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            let media = media.trim();
            media.eq_ignore_ascii_case("application/json") || media.ends_with("+json")
        })
}

fn json_invalid(detail: impl Into<String>) -> TalerError {
    TalerError::new(ErrorCode::GenericJsonInvalid).with_detail(detail)
}

/// `a=1&b=x%20y` as pairs (the decoder is lenient: undecodable text yields no pairs).
pub fn pairs(text: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(text).unwrap_or_default()
}

/// Query or form parameters for the domain.
pub fn params(text: &[u8]) -> Params {
    Params(pairs(text))
}

/// Form pairs as a JSON object of strings (the first occurrence of a name counts).
fn form_object(body: &[u8]) -> Map<String, Value> {
    let mut object = Map::new();
    for (name, value) in pairs(body) {
        object.entry(name).or_insert(Value::String(value));
    }
    object
}

/// A body decoded as a JSON object: JSON when labelled so, a form otherwise; an empty body is
/// an empty object.
pub fn object_body(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, TalerError> {
    if !is_json(headers) {
        return Ok(form_object(body));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    from_object_slice(body).map_err(|e| json_invalid(e.to_string()))
}

/// Form or JSON parameters (`/token`): every JSON value as its text.
pub fn param_body(headers: &HeaderMap, body: &[u8]) -> Result<Params, TalerError> {
    if !is_json(headers) {
        return Ok(params(body));
    }
    let object = object_body(headers, body)?;
    let pairs = object
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(text) => (name, text),
            other => (name, other.to_string()),
        })
        .collect();
    Ok(Params(pairs))
}

/// The `/setup` body (spec §4, §12.10): empty → `None`; JSON; deflated JSON without a
/// `Content-Encoding` (the exchange sends it so); or a form whose `read_only` is a word.
pub fn setup_body(
    headers: &HeaderMap,
    body: &[u8],
    limit: usize,
) -> Result<Option<Value>, TalerError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Ok(value) = from_object_slice(body) {
        return Ok(Some(value));
    }
    if body.first() == Some(&0x78)
        && let Some(value) = inflate(body, limit).and_then(|b| from_object_slice(&b).ok())
    {
        return Ok(Some(value));
    }
    if is_json(headers) {
        return Err(json_invalid("the body is not JSON"));
    }
    let mut object = form_object(body);
    if let Some(Value::String(word)) = object.get("read_only") {
        let flag = match word.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Some(true),
            "false" | "no" | "0" | "off" => Some(false),
            _ => None,
        };
        if let Some(flag) = flag {
            object.insert("read_only".into(), Value::Bool(flag));
        }
    }
    Ok(Some(Value::Object(object)))
}

/// A zlib stream inflated within `limit` bytes; `None` if it is not one or is too large.
fn inflate(compressed: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut inflated = Vec::new();
    let budget = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::ZlibDecoder::new(compressed)
        .take(budget)
        .read_to_end(&mut inflated)
        .ok()?;
    (inflated.len() <= limit).then_some(inflated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::io::Write;

    fn headers(pairs: &[(axum::http::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn accept_lists_media_explicitly() {
        let browser = headers(&[(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")]);
        assert!(accepts(&browser, "text/html"));
        assert!(!accepts(&browser, "application/json"));
        assert!(!accepts(&headers(&[(ACCEPT, "*/*")]), "application/json"));
        assert!(accepts(
            &headers(&[(ACCEPT, "Application/JSON; q=0.5")]),
            "application/json"
        ));
        assert!(!accepts(
            &headers(&[(ACCEPT, "application/json;q=0")]),
            "application/json"
        ));
        assert!(!accepts(&HeaderMap::new(), "text/html"));
    }

    #[test]
    fn setup_bodies_in_every_form_the_exchange_sends() {
        let form = headers(&[(CONTENT_TYPE, "application/x-www-form-urlencoded")]);
        assert_eq!(setup_body(&form, b"", 1000).unwrap(), None);
        let json = br#"{"CONTACT_EMAIL":"a@b"}"#;
        let expected = serde_json::json!({"CONTACT_EMAIL": "a@b"});
        assert_eq!(
            setup_body(&form, json, 1000).unwrap(),
            Some(expected.clone())
        );
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(json).unwrap();
        let deflated = encoder.finish().unwrap();
        assert_eq!(setup_body(&form, &deflated, 1000).unwrap(), Some(expected));
        let typed = setup_body(&form, b"CONTACT_EMAIL=a%40b&read_only=true", 1000).unwrap();
        assert_eq!(
            typed,
            Some(serde_json::json!({"CONTACT_EMAIL": "a@b", "read_only": true}))
        );
        // A form field starting with 'x' (0x78) is no zlib stream.
        let x = setup_body(&form, b"x=1", 1000).unwrap();
        assert_eq!(x, Some(serde_json::json!({"x": "1"})));
        let labelled = headers(&[(CONTENT_TYPE, "application/json")]);
        assert_eq!(
            setup_body(&labelled, b"{", 1000).unwrap_err().code.number(),
            22
        );
    }

    #[test]
    fn object_bodies() {
        let json = headers(&[(CONTENT_TYPE, "application/json")]);
        // Not an object: the JSON code, as for every body.
        assert_eq!(object_body(&json, b"[1]").unwrap_err().code.number(), 22);
        assert_eq!(object_body(&json, b"{x").unwrap_err().code.number(), 22);
        let object = object_body(&HeaderMap::new(), b"pin=1&pin=2").unwrap();
        assert_eq!(object["pin"], "1");
        let params = param_body(&json, br#"{"client_id": 5, "code": "C"}"#).unwrap();
        assert_eq!(
            (params.get("client_id"), params.get("code")),
            (Some("5"), Some("C"))
        );
    }
}

//! The exchange's canonical JSON and its hash (`TALER_json_hash`, exchange-aml-decisions.md §2).
//!
//! Signed AML decisions cover SHA-512 over the canonical text of JSON members plus one NUL
//! byte. The text must be reproduced exactly, so parsing is strict and keeps what a general
//! JSON library loses: duplicate member names, whether a number had a fraction or exponent,
//! and integers outside i64 are all visible here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::crypto::{HashCode, sha512};

/// Deeper nesting is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// A JSON value as the exchange hashes it. Object members are kept in the canonical order:
/// `String`'s `Ord` compares UTF-8 bytes, which is the exchange's key order.
#[derive(Debug, Clone, PartialEq)]
pub enum CanonicalJson {
    Null,
    Bool(bool),
    Integer(i64),
    /// A number written with a fraction or an exponent, kept as its token: it has no
    /// canonical form talerbox accepts in hashed members.
    Real(String),
    String(String),
    Array(Vec<CanonicalJson>),
    Object(BTreeMap<String, CanonicalJson>),
}

/// Why a text is not JSON that talerbox hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem} at byte {offset}")]
pub struct JsonSyntaxError {
    pub offset: usize,
    pub problem: &'static str,
}

impl CanonicalJson {
    /// Parses one JSON value (surrounding whitespace allowed). Refuses invalid UTF-8,
    /// duplicate member names, `\u0000`, lone surrogates and integers outside i64.
    pub fn parse(bytes: &[u8]) -> Result<CanonicalJson, JsonSyntaxError> {
        let text = std::str::from_utf8(bytes).map_err(|e| JsonSyntaxError {
            offset: e.valid_up_to(),
            problem: "invalid UTF-8",
        })?;
        let mut parser = Parser { text, pos: 0 };
        parser.skip_whitespace();
        let value = parser.value(0)?;
        parser.skip_whitespace();
        if parser.pos != text.len() {
            return Err(parser.error("trailing characters"));
        }
        Ok(value)
    }

    /// The canonical text: no whitespace, members sorted by UTF-8 bytes, minimal escapes.
    pub fn canonical_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// SHA-512 over the canonical text followed by one 0x00 byte.
    pub fn hash(&self) -> HashCode {
        let mut text = self.canonical_text().into_bytes();
        text.push(0);
        sha512(&text)
    }

    /// Whether a number with a fraction or an exponent occurs anywhere inside.
    pub fn contains_real(&self) -> bool {
        match self {
            CanonicalJson::Real(_) => true,
            CanonicalJson::Array(items) => items.iter().any(CanonicalJson::contains_real),
            CanonicalJson::Object(members) => members.values().any(CanonicalJson::contains_real),
            _ => false,
        }
    }

    pub fn as_object(&self) -> Option<&BTreeMap<String, CanonicalJson>> {
        match self {
            CanonicalJson::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The same value for serde (reals as floating point numbers).
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            CanonicalJson::Null => Value::Null,
            CanonicalJson::Bool(b) => Value::Bool(*b),
            CanonicalJson::Integer(n) => Value::from(*n),
            CanonicalJson::Real(token) => token
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
            CanonicalJson::String(s) => Value::String(s.clone()),
            CanonicalJson::Array(items) => Value::Array(items.iter().map(Self::to_value).collect()),
            CanonicalJson::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_value()))
                    .collect(),
            ),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            CanonicalJson::Null => out.push_str("null"),
            CanonicalJson::Bool(true) => out.push_str("true"),
            CanonicalJson::Bool(false) => out.push_str("false"),
            CanonicalJson::Integer(n) => {
                let _ = write!(out, "{n}");
            }
            CanonicalJson::Real(token) => out.push_str(token),
            CanonicalJson::String(s) => write_string(s, out),
            CanonicalJson::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            CanonicalJson::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// Canonical text of a serde value (whose numbers are what serde_json parsed): for values
/// talerbox builds itself, such as a program's stored rules.
pub fn canonical_text_of(value: &serde_json::Value) -> String {
    from_value(value).canonical_text()
}

fn from_value(value: &serde_json::Value) -> CanonicalJson {
    use serde_json::Value;
    match value {
        Value::Null => CanonicalJson::Null,
        Value::Bool(b) => CanonicalJson::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => CanonicalJson::Integer(i),
            None => CanonicalJson::Real(n.to_string()),
        },
        Value::String(s) => CanonicalJson::String(s.clone()),
        Value::Array(items) => CanonicalJson::Array(items.iter().map(from_value).collect()),
        Value::Object(members) => CanonicalJson::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), from_value(v)))
                .collect(),
        ),
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, problem: &'static str) -> JsonSyntaxError {
        JsonSyntaxError {
            offset: self.pos,
            problem,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonSyntaxError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error("unexpected character"))
        }
    }

    fn literal(
        &mut self,
        word: &str,
        value: CanonicalJson,
    ) -> Result<CanonicalJson, JsonSyntaxError> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unknown literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<CanonicalJson, JsonSyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(CanonicalJson::String),
            Some(b't') => self.literal("true", CanonicalJson::Bool(true)),
            Some(b'f') => self.literal("false", CanonicalJson::Bool(false)),
            Some(b'n') => self.literal("null", CanonicalJson::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<CanonicalJson, JsonSyntaxError> {
        self.expect(b'{')?;
        let mut members = BTreeMap::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(CanonicalJson::Object(members));
        }
        loop {
            self.skip_whitespace();
            let key_at = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.error("member name expected"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            self.expect(b':')?;
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            if members.insert(key, value).is_some() {
                return Err(JsonSyntaxError {
                    offset: key_at,
                    problem: "duplicate member name",
                });
            }
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(CanonicalJson::Object(members));
                }
                _ => return Err(self.error("',' or '}' expected")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<CanonicalJson, JsonSyntaxError> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(CanonicalJson::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(CanonicalJson::Array(items));
                }
                _ => return Err(self.error("',' or ']' expected")),
            }
        }
    }

    fn number(&mut self) -> Result<CanonicalJson, JsonSyntaxError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.pos += 1;
            }
            p.pos - from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_digits = digits(self);
        if int_digits == 0 {
            return Err(self.error("digit expected"));
        }
        if int_digits > 1 && self.text.as_bytes()[int_start] == b'0' {
            return Err(JsonSyntaxError {
                offset: int_start,
                problem: "leading zero",
            });
        }
        let mut real = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            real = true;
            if digits(self) == 0 {
                return Err(self.error("digit expected"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            real = true;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.error("digit expected"));
            }
        }
        let token = &self.text[start..self.pos];
        if real {
            return Ok(CanonicalJson::Real(token.to_owned()));
        }
        token
            .parse::<i64>()
            .map(CanonicalJson::Integer)
            .map_err(|_| JsonSyntaxError {
                offset: start,
                problem: "integer out of range",
            })
    }

    fn hex4(&mut self) -> Result<u32, JsonSyntaxError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("four hex digits expected"))?;
        let value = u32::from_str_radix(digits, 16)
            .ok()
            .filter(|_| digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("four hex digits expected"))?;
        self.pos += 4;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, JsonSyntaxError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let plain = rest
                .find(|c: char| c == '"' || c == '\\' || (c as u32) < 0x20)
                .ok_or(JsonSyntaxError {
                    offset: self.text.len(),
                    problem: "unterminated string",
                })?;
            out.push_str(&rest[..plain]);
            self.pos += plain;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                _ => return Err(self.error("control character in string")),
            }
        }
    }

    fn escape(&mut self) -> Result<char, JsonSyntaxError> {
        let at = self.pos;
        let byte = self
            .peek()
            .ok_or_else(|| self.error("unterminated string"))?;
        self.pos += 1;
        let simple = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(at),
            _ => return Err(self.error("unknown escape")),
        };
        Ok(simple)
    }

    fn unicode_escape(&mut self, at: usize) -> Result<char, JsonSyntaxError> {
        let lone = JsonSyntaxError {
            offset: at,
            problem: "lone surrogate",
        };
        let first = self.hex4()?;
        let code = match first {
            0 => {
                return Err(JsonSyntaxError {
                    offset: at,
                    problem: "\\u0000 in string",
                });
            }
            0xD800..=0xDBFF => {
                if !self.text[self.pos..].starts_with("\\u") {
                    return Err(lone);
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(lone);
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(lone),
            code => code,
        };
        char::from_u32(code).ok_or(lone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::primitives::base32;

    fn canonical(text: &str) -> String {
        CanonicalJson::parse(text.as_bytes())
            .unwrap()
            .canonical_text()
    }

    fn hash32(text: &str) -> String {
        base32::encode(&CanonicalJson::parse(text.as_bytes()).unwrap().hash().0)
    }

    #[test]
    fn empty_object_vector() {
        assert_eq!(
            hash32("{}"),
            "R2ZV38GDA2PJ7W14K1AD0F3HRNHP9HQVV60QZ43V6D9D2JRTTXV9WC3YZKEDE5XT32WXPV94SW38QFW32QVXV3D1QW6VEQWY2ZGJYR0"
        );
    }

    #[test]
    fn j4_orders_keys_by_utf8_bytes() {
        let input = r#"{"z":"\u0001\u001f\u007f/\u00e9\u20ac","a":[0,-1,true,false,null],"\u00e9":{},"Z":[],"\ufb01":1,"\ud83d\ude00":2}"#;
        let text = canonical(input);
        let expected = "7b225a223a5b5d2c2261223a5b302c2d312c747275652c66616c73652c6e756c6c5d2c227a223a225c75303030315c75303031667f2fc3a9e282ac222c22c3a9223a7b7d2c22efac81223a312c22f09f9880223a327d";
        let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        assert_eq!(
            hash32(input),
            "M2WJ5PCCGXT91ESCX4Z6BCEVXJ9ZNQDVFMY1EYNMG5XQY1NNWBKP8Z75J7XJRQSP9HPBYVARH7EWGH3JSX69RXW0HBQD7SBQCE5KZ68"
        );
    }

    #[test]
    fn decision_d1_members() {
        let properties = r#"{"high_risk":true,"pep":false,"business_domain":"retail"}"#;
        assert_eq!(
            canonical(properties),
            r#"{"business_domain":"retail","high_risk":true,"pep":false}"#
        );
        assert_eq!(
            hash32(properties),
            "ZWE4XY1YG0V61FWV7FQ9BQ2896XE68DA5DN83R09D82CGHS8Z3J6HFR10Z12K6PCS0SAMNHATMCD8HWFAHST966KK341VTJGRCTWVY0"
        );
        let rules = r#"{"expiration_time":{"t_s":"never"},"custom_measures":{},"rules":[
   {"operation_type":"WITHDRAW","threshold":"KUDOS:0","timeframe":{"d_us":3600000000},
    "measures":["verboten"],"display_priority":1,"exposed":false,"is_and_combinator":false},
   {"operation_type":"DEPOSIT","threshold":"KUDOS:0","timeframe":{"d_us":3600000000},
    "measures":["verboten"],"display_priority":1,"exposed":false,"is_and_combinator":false}]}"#;
        assert_eq!(
            hash32(rules),
            "C93F96B684HT9WJE2JKRY2BQR70BZPSTDE3VZWMRWM4GG7WZYSC9AJFR3XWZ5KSFVJB3ADRF446MMGXNKE49W6QV22GEMQ9XPCA9020"
        );
    }

    #[test]
    fn escapes_and_numbers() {
        assert_eq!(canonical(r#""a\/b\u00e9\u001F""#), "\"a/bé\\u001f\"");
        assert_eq!(canonical("[-0, 10, -7]"), "[0,10,-7]");
        assert_eq!(
            canonical(" { \"b\" : 1 , \"a\" : [ ] } "),
            r#"{"a":[],"b":1}"#
        );
        assert_eq!(canonical("\"\\b\\t\\n\\f\\r\""), "\"\\b\\t\\n\\f\\r\"");
        let real = CanonicalJson::parse(b"[1, {\"x\": 1.5}]").unwrap();
        assert!(real.contains_real());
        assert!(CanonicalJson::parse(b"[1e2]").unwrap().contains_real());
        assert!(
            !CanonicalJson::parse(b"[1, \"1.5\"]")
                .unwrap()
                .contains_real()
        );
    }

    #[test]
    fn refused_texts() {
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#""\u0000""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            "9223372036854775808",
            "-9223372036854775809",
            "01",
            "[1,]",
            "{\"a\" 1}",
            "\"tab\there\"",
            "nul",
            "{} {}",
            "",
        ] {
            assert!(CanonicalJson::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(CanonicalJson::parse(b"\"\xff\"").is_err());
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(CanonicalJson::parse(deep.as_bytes()).is_err());
        assert_eq!(canonical("9223372036854775807"), "9223372036854775807");
        assert_eq!(canonical("-9223372036854775808"), "-9223372036854775808");
    }

    #[test]
    fn serde_values_get_the_same_text() {
        let value = serde_json::json!({"b": [1, -2, "x\u{1}"], "a": {"c": null, "B": true}});
        let parsed = CanonicalJson::parse(value.to_string().as_bytes()).unwrap();
        assert_eq!(canonical_text_of(&value), parsed.canonical_text());
        assert_eq!(parsed.to_value(), value);
    }
}

//! payto URIs, their normalization and the normalized hash
//! (taler-primitives.md §8).
//!
//! Only the methods `iban`, `x-taler-bank`, `taler-reserve` and
//! `taler-reserve-http` are understood; any other method is malformed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::base32::base32_bytes_newtype;
use super::crypto::{EddsaPublicKey, sha512_with_nul};
use super::iban::Iban;

const PREFIX: &str = "payto://";

base32_bytes_newtype!(
    /// `h_normalized_payto`: first 32 bytes of SHA-512(normalized URI ‖ NUL).
    NormalizedPaytoHash,
    32
);

impl NormalizedPaytoHash {
    /// Hashes an already normalized payto URI.
    pub fn of_normalized(normalized: &str) -> Self {
        NormalizedPaytoHash(sha512_with_nul(normalized).truncated())
    }
}

/// Why a payto URI was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaytoError {
    /// Does not start with `payto://` (any case).
    #[error("payto URI must start with payto://")]
    Prefix,
    /// A character outside the allowed set.
    #[error("invalid character at offset {0}")]
    Character(usize),
    /// No `/` after the method.
    #[error("missing '/' after the payto method")]
    MissingPath,
    /// A method talerbox does not handle.
    #[error("unsupported payto method")]
    UnsupportedMethod,
    /// The path does not fit the method (segments, host, reserve key).
    #[error("malformed payto path")]
    Path,
    /// The IBAN is not valid.
    #[error("invalid IBAN in payto URI")]
    Iban,
    /// A full `iban` or `x-taler-bank` payto lacks `receiver-name`.
    #[error("missing receiver-name")]
    MissingReceiverName,
    /// `receiver-name` is not valid percent-encoded UTF-8.
    #[error("invalid percent-encoding in receiver-name")]
    Encoding,
    /// A normalized payto must not have a query part.
    #[error("normalized payto must not have a query")]
    UnexpectedQuery,
}

/// The account a payto URI designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaytoTarget {
    /// `payto://iban/[BIC/]IBAN`.
    Iban { bic: Option<String>, iban: Iban },
    /// `payto://x-taler-bank/HOST[:PORT]/[PATH/]ACCOUNT`; `host` is
    /// lower-cased, `path` (without trailing `/`, maybe empty) and
    /// `account` keep their case.
    XTalerBank {
        host: String,
        path: String,
        account: String,
    },
    /// `payto://taler-reserve[-http]/HOSTPATH/RESERVE_PUB`; `host_path`
    /// keeps its trailing `/`.
    TalerReserve {
        http: bool,
        host_path: String,
        reserve_pub: EddsaPublicKey,
    },
}

/// A validated payto URI with its normalized form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payto {
    text: String,
    normalized: String,
    target: PaytoTarget,
    receiver_name: Option<String>,
}

/// Which rules apply: a full payto may need `receiver-name`, a normalized
/// one has no query at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Full,
    Normalized,
}

impl Payto {
    /// Parses a full payto (as named in wire requests): `iban` and
    /// `x-taler-bank` must carry `receiver-name`.
    pub fn parse_full(text: &str) -> Result<Self, PaytoError> {
        parse(text, Form::Full)
    }

    /// Parses a normalized payto: no query part, no `receiver-name`
    /// needed. Any valid spelling is accepted and normalized again.
    pub fn parse_normalized(text: &str) -> Result<Self, PaytoError> {
        parse(text, Form::Normalized)
    }

    /// The wallet account of `reserve_pub` at the exchange with base URL `exchange_base_url`
    /// (ending in `/`): `payto://taler-reserve[-http]/HOSTPATH/RESERVE_PUB`, `-http` for an
    /// `http://` exchange (taler-primitives.md §8).
    pub fn reserve(
        exchange_base_url: &str,
        reserve_pub: &EddsaPublicKey,
    ) -> Result<Self, PaytoError> {
        let (method, host_path) = if let Some(rest) = exchange_base_url.strip_prefix("http://") {
            ("taler-reserve-http", rest)
        } else if let Some(rest) = exchange_base_url.strip_prefix("https://") {
            ("taler-reserve", rest)
        } else {
            return Err(PaytoError::Path);
        };
        parse(
            &format!("{PREFIX}{method}/{host_path}{reserve_pub}"),
            Form::Normalized,
        )
    }

    /// The URI exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The normalized URI (no query; §8 rules per method).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// `h_normalized_payto` of this URI.
    pub fn h_normalized(&self) -> NormalizedPaytoHash {
        NormalizedPaytoHash::of_normalized(&self.normalized)
    }

    /// The percent-decoded `receiver-name`, if present.
    pub fn receiver_name(&self) -> Option<&str> {
        self.receiver_name.as_deref()
    }

    /// The designated account.
    pub fn target(&self) -> &PaytoTarget {
        &self.target
    }

    /// The IBAN of an `iban` payto.
    pub fn iban(&self) -> Option<&Iban> {
        match &self.target {
            PaytoTarget::Iban { iban, .. } => Some(iban),
            _ => None,
        }
    }

    /// `(host, account)` of an `x-taler-bank` payto.
    pub fn x_taler_bank_account(&self) -> Option<(&str, &str)> {
        match &self.target {
            PaytoTarget::XTalerBank { host, account, .. } => Some((host, account)),
            _ => None,
        }
    }
}

/// The characters upstream `TALER_payto_validate` allows anywhere.
fn is_allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"/:$&?!-_.,;=*+%~@()[]".contains(&byte)
}

fn parse(text: &str, form: Form) -> Result<Payto, PaytoError> {
    let has_prefix = text
        .get(..PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX));
    if !has_prefix {
        return Err(PaytoError::Prefix);
    }
    if let Some(offset) = text.bytes().position(|b| !is_allowed(b)) {
        return Err(PaytoError::Character(offset));
    }
    // All characters are ASCII now, so byte offsets are char boundaries.
    let (location, query) = match text.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (text, None),
    };
    if form == Form::Normalized && query.is_some() {
        return Err(PaytoError::UnexpectedQuery);
    }
    let after_prefix = location.get(PREFIX.len()..).unwrap_or_default();
    let (method, path) = after_prefix
        .split_once('/')
        .ok_or(PaytoError::MissingPath)?;
    let receiver_name = match query {
        Some(query) => receiver_name_param(query)?,
        None => None,
    };

    let method = method.to_ascii_lowercase();
    let (target, needs_name) = match method.as_str() {
        "iban" => (parse_iban_path(path)?, true),
        "x-taler-bank" => (parse_x_taler_bank_path(path)?, true),
        "taler-reserve" => (parse_reserve_path(path, false)?, false),
        "taler-reserve-http" => (parse_reserve_path(path, true)?, false),
        _ => return Err(PaytoError::UnsupportedMethod),
    };
    if form == Form::Full && needs_name && receiver_name.is_none() {
        return Err(PaytoError::MissingReceiverName);
    }
    let normalized = match &target {
        PaytoTarget::Iban { iban, .. } => format!("payto://iban/{iban}"),
        PaytoTarget::XTalerBank { host, .. } => {
            // Lower-case up to the 4th '/', keep [PATH/]ACCOUNT verbatim.
            let account_part = path
                .split_once('/')
                .map(|(_, rest)| rest)
                .unwrap_or_default();
            format!("payto://x-taler-bank/{host}/{account_part}")
        }
        PaytoTarget::TalerReserve { .. } => location.to_owned(),
    };
    Ok(Payto {
        text: text.to_owned(),
        normalized,
        target,
        receiver_name,
    })
}

/// `[BIC/]IBAN`: one or two segments. The IBAN segment must already be
/// compact (letters and digits only) so the normalized form is unambiguous.
fn parse_iban_path(path: &str) -> Result<PaytoTarget, PaytoError> {
    let segments: Vec<&str> = path.split('/').collect();
    let (bic, iban) = match segments.as_slice() {
        [iban] => (None, *iban),
        [bic, iban] => (Some(*bic), *iban),
        _ => return Err(PaytoError::Path),
    };
    let is_code = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !bic.is_none_or(is_code) {
        return Err(PaytoError::Path);
    }
    if !iban.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(PaytoError::Iban);
    }
    let iban = Iban::parse(iban).map_err(|_| PaytoError::Iban)?;
    Ok(PaytoTarget::Iban {
        bic: bic.map(str::to_owned),
        iban,
    })
}

/// `HOST[:PORT]/[PATH/]ACCOUNT` with no empty segments.
fn parse_x_taler_bank_path(path: &str) -> Result<PaytoTarget, PaytoError> {
    let (host, rest) = path.split_once('/').ok_or(PaytoError::Path)?;
    if !is_valid_host(host) || rest.split('/').any(str::is_empty) {
        return Err(PaytoError::Path);
    }
    let (account_path, account) = match rest.rsplit_once('/') {
        Some((account_path, account)) => (account_path, account),
        None => ("", rest),
    };
    Ok(PaytoTarget::XTalerBank {
        host: host.to_ascii_lowercase(),
        path: account_path.to_owned(),
        account: account.to_owned(),
    })
}

/// Host name labels of letters, digits, `-` and `_` separated by single
/// dots, not starting with `-`, then an optional `:port`.
fn is_valid_host(host: &str) -> bool {
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let name_ok = !name.starts_with('-')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    let port_ok = port.is_none_or(|port| {
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
    });
    name_ok && port_ok
}

/// `HOSTPATH/RESERVE_PUB` where HOSTPATH starts with a non-empty host.
fn parse_reserve_path(path: &str, http: bool) -> Result<PaytoTarget, PaytoError> {
    let (host_path, reserve_pub) = path.rsplit_once('/').ok_or(PaytoError::Path)?;
    if host_path.split('/').next().is_none_or(str::is_empty) {
        return Err(PaytoError::Path);
    }
    let reserve_pub = reserve_pub.parse().map_err(|_| PaytoError::Path)?;
    Ok(PaytoTarget::TalerReserve {
        http,
        host_path: format!("{host_path}/"),
        reserve_pub,
    })
}

/// The first `receiver-name` parameter (key compared case-insensitively,
/// like upstream), percent-decoded.
pub(crate) fn receiver_name_param(query: &str) -> Result<Option<String>, PaytoError> {
    let value = query.split('&').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.eq_ignore_ascii_case("receiver-name").then_some(value)
    });
    value.map(percent_decode).transpose()
}

/// RFC 3986 percent-decoding (`+` stays `+`); the result must be UTF-8.
fn percent_decode(text: &str) -> Result<String, PaytoError> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let (hex, tail) = tail.split_at_checked(2).ok_or(PaytoError::Encoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| PaytoError::Encoding)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PaytoError::Encoding);
            }
            bytes.push(u8::from_str_radix(hex, 16).map_err(|_| PaytoError::Encoding)?);
            rest = tail;
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| PaytoError::Encoding)
}

impl FromStr for Payto {
    type Err = PaytoError;

    /// Same as [`Payto::parse_full`].
    fn from_str(text: &str) -> Result<Self, PaytoError> {
        Payto::parse_full(text)
    }
}

impl fmt::Display for Payto {
    /// The URI exactly as parsed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Payto {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Payto {
    /// Deserializes a full payto.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Payto::parse_full(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DE_NORMALIZED: &str = "payto://iban/DE89370400440532013000";
    const DE_HASH: &str = "A2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G";

    fn full(text: &str) -> Payto {
        Payto::parse_full(text).unwrap()
    }

    #[test]
    fn spec_table() {
        let rows = [
            (
                "payto://iban/DE89370400440532013000?receiver-name=Alice",
                DE_NORMALIZED,
                DE_HASH,
            ),
            (
                "PAYTO://IBAN/COBADEFFXXX/de89370400440532013000?receiver-name=A",
                DE_NORMALIZED,
                DE_HASH,
            ),
            (
                "payto://x-taler-bank/Bank.Example.COM/Alice?receiver-name=Alice%20A",
                "payto://x-taler-bank/bank.example.com/Alice",
                "QXVV9KF4PZA3J4AP2016GFTWC3N3M0BPBAM269A0Z3BVSVBAVB50",
            ),
            (
                "payto://x-taler-bank/localhost:8080/alice?receiver-name=a",
                "payto://x-taler-bank/localhost:8080/alice",
                "F8YT6T7NJN3M1TEM3NC0DWKPRZB3MEYW5NK9S9SBEP7JR7C4ERS0",
            ),
            (
                "payto://iban/CH9300762011623852957?receiver-name=B",
                "payto://iban/CH9300762011623852957",
                "R9ZC8S4YS72JWHDNTH8F15V4M2X14XH1RC53A80EQ9AH6195K6K0",
            ),
            (
                "payto://taler-reserve/exchange.example.com/000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG",
                "payto://taler-reserve/exchange.example.com/000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG",
                "YW06MB5P8DNNQ4N47T5V9EBYFXVHASJMFY3CHRH98K1AS3VD3XS0",
            ),
        ];
        for (input, normalized, hash) in rows {
            let payto = full(input);
            assert_eq!(payto.normalized(), normalized, "{input}");
            assert_eq!(payto.h_normalized().to_string(), hash, "{input}");
            // The normalized form parses as such and is a fixed point.
            let again = Payto::parse_normalized(normalized).unwrap();
            assert_eq!(again.normalized(), normalized);
            assert_eq!(again.h_normalized(), payto.h_normalized());
        }
    }

    #[test]
    fn wrong_rule_hashes_differ() {
        let without_nul = crate::domain::primitives::crypto::sha512(DE_NORMALIZED.as_bytes());
        assert_eq!(
            NormalizedPaytoHash(without_nul.truncated()).to_string(),
            "BCWA45ZM5GVT7QFY4Y1CK91FKP065F5VMFCZ6BGXJBQ4MX7J2JZ0"
        );
        let lower = NormalizedPaytoHash::of_normalized("payto://iban/de89370400440532013000");
        assert_eq!(
            lower.to_string(),
            "Z8X5V0FGSZ4DWMPXC01V4SE7XPMHDAF5CQCHKDH835V54QCBXW2G"
        );
        let right = full("payto://iban/de89370400440532013000?receiver-name=x").h_normalized();
        assert_eq!(right.to_string(), DE_HASH);
        assert_ne!(right, lower);
    }

    #[test]
    fn accessors() {
        let iban =
            full("payto://iban/COBADEFFXXX/DE89370400440532013000?receiver-name=Alice%20%C3%84");
        assert_eq!(iban.receiver_name(), Some("Alice Ä"));
        assert_eq!(iban.iban().unwrap().as_str(), "DE89370400440532013000");
        assert_eq!(
            iban.target(),
            &PaytoTarget::Iban {
                bic: Some("COBADEFFXXX".to_owned()),
                iban: Iban::parse("DE89370400440532013000").unwrap()
            }
        );
        assert_eq!(iban.x_taler_bank_account(), None);

        let bank = full("payto://x-taler-bank/Bank.Example:80/Sub/Dir/Bob?x=1&RECEIVER-NAME=B+o");
        assert_eq!(
            bank.x_taler_bank_account(),
            Some(("bank.example:80", "Bob"))
        );
        assert_eq!(bank.receiver_name(), Some("B+o"));
        assert_eq!(
            bank.normalized(),
            "payto://x-taler-bank/bank.example:80/Sub/Dir/Bob"
        );
        match bank.target() {
            PaytoTarget::XTalerBank { path, .. } => assert_eq!(path, "Sub/Dir"),
            other => panic!("{other:?}"),
        }

        let reserve = full(
            "payto://taler-reserve-http/ex.example/base/000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG",
        );
        match reserve.target() {
            PaytoTarget::TalerReserve {
                http,
                host_path,
                reserve_pub,
            } => {
                assert!(*http);
                assert_eq!(host_path, "ex.example/base/");
                assert_eq!(reserve_pub.as_bytes()[31], 0x1f);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(reserve.receiver_name(), None);
        assert_eq!(reserve.to_string(), reserve.as_str());
    }

    #[test]
    fn rejects() {
        let cases = [
            (
                "http://iban/DE89370400440532013000?receiver-name=A",
                PaytoError::Prefix,
            ),
            ("payto:/iban/DE89370400440532013000", PaytoError::Prefix),
            (
                "payto://iban/DE89370400440532013000?receiver-name=A B",
                PaytoError::Character(51),
            ),
            (
                "payto://iban/DE89370400440532013000?receiver-name=Ä",
                PaytoError::Character(50),
            ),
            ("payto://iban", PaytoError::MissingPath),
            (
                "payto://bitcoin/bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh?receiver-name=A",
                PaytoError::UnsupportedMethod,
            ),
            (
                "payto://upi/alice@example?receiver-name=A",
                PaytoError::UnsupportedMethod,
            ),
            (
                "payto://iban/DE88370400440532013000?receiver-name=A",
                PaytoError::Iban,
            ),
            (
                "payto://iban/DE89-3704-0044-0532-0130-00?receiver-name=A",
                PaytoError::Iban,
            ),
            (
                "payto://iban/DE89370400440532013000",
                PaytoError::MissingReceiverName,
            ),
            (
                "payto://iban/DE89370400440532013000?receiver=A",
                PaytoError::MissingReceiverName,
            ),
            (
                "payto://iban/A/B/DE89370400440532013000?receiver-name=A",
                PaytoError::Path,
            ),
            (
                "payto://iban//DE89370400440532013000?receiver-name=A",
                PaytoError::Path,
            ),
            (
                "payto://iban/DE89370400440532013000?receiver-name=%4",
                PaytoError::Encoding,
            ),
            (
                "payto://iban/DE89370400440532013000?receiver-name=%ZZ",
                PaytoError::Encoding,
            ),
            (
                "payto://iban/DE89370400440532013000?receiver-name=%FF",
                PaytoError::Encoding,
            ),
            (
                "payto://x-taler-bank/localhost/alice",
                PaytoError::MissingReceiverName,
            ),
            (
                "payto://x-taler-bank/localhost?receiver-name=a",
                PaytoError::Path,
            ),
            (
                "payto://x-taler-bank/localhost/?receiver-name=a",
                PaytoError::Path,
            ),
            (
                "payto://x-taler-bank//alice?receiver-name=a",
                PaytoError::Path,
            ),
            (
                "payto://x-taler-bank/-bank/alice?receiver-name=a",
                PaytoError::Path,
            ),
            (
                "payto://x-taler-bank/bank..com/alice?receiver-name=a",
                PaytoError::Path,
            ),
            (
                "payto://x-taler-bank/.bank/alice?receiver-name=a",
                PaytoError::Path,
            ),
            (
                "payto://x-taler-bank/bank:/alice?receiver-name=a",
                PaytoError::Path,
            ),
            (
                "payto://x-taler-bank/bank:8a/alice?receiver-name=a",
                PaytoError::Path,
            ),
            (
                "payto://x-taler-bank/bank:99999/alice?receiver-name=a",
                PaytoError::Path,
            ),
            (
                "payto://x-taler-bank/ba$nk/alice?receiver-name=a",
                PaytoError::Path,
            ),
            (
                "payto://taler-reserve/000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG",
                PaytoError::Path,
            ),
            ("payto://taler-reserve/ex.example/NOTAKEY", PaytoError::Path),
        ];
        for (input, error) in cases {
            assert_eq!(Payto::parse_full(input), Err(error), "{input}");
        }
        assert_eq!(
            Payto::parse_normalized("payto://iban/DE89370400440532013000?receiver-name=A"),
            Err(PaytoError::UnexpectedQuery)
        );
        // Empty receiver-name is present (as upstream accepts it).
        assert_eq!(
            full("payto://iban/DE89370400440532013000?receiver-name=").receiver_name(),
            Some("")
        );
    }

    #[test]
    fn serde_as_string() {
        let text = "payto://iban/DE89370400440532013000?receiver-name=Alice";
        let payto = full(text);
        let json = serde_json::to_string(&payto).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Payto>(&json).unwrap(), payto);
        assert!(serde_json::from_str::<Payto>("\"payto://iban/DE89370400440532013000\"").is_err());
        let hash = payto.h_normalized();
        let hash_json = serde_json::to_string(&hash).unwrap();
        assert_eq!(hash_json, format!("\"{DE_HASH}\""));
        assert_eq!(
            serde_json::from_str::<NormalizedPaytoHash>(&hash_json).unwrap(),
            hash
        );
    }

    /// Mostly well-formed payto URIs with random case, hosts and segments.
    fn payto_like() -> impl Strategy<Value = String> {
        let method = prop_oneof![
            Just("iban"),
            Just("IBAN"),
            Just("x-taler-bank"),
            Just("X-Taler-Bank"),
            Just("taler-reserve"),
            Just("taler-reserve-http"),
            Just("bitcoin"),
        ];
        let segment = "[A-Za-z0-9_][A-Za-z0-9._-]{0,10}(:[0-9]{1,4})?";
        let last = prop_oneof![
            Just("DE89370400440532013000".to_owned()),
            Just("de89370400440532013000".to_owned()),
            Just("ch9300762011623852957".to_owned()),
            Just("000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG".to_owned()),
            "[A-Za-z0-9%~.-]{1,12}",
        ];
        (
            prop_oneof![Just("payto://"), Just("PAYTO://"), Just("Payto:/")],
            method,
            proptest::collection::vec(segment, 0..3),
            last,
            prop_oneof![
                Just(""),
                Just("?receiver-name=X%20Y"),
                Just("?a=b&receiver-name=Q")
            ],
        )
            .prop_map(|(prefix, method, segments, last, query)| {
                let mut uri = format!("{prefix}{method}/");
                for segment in segments {
                    uri.push_str(&segment);
                    uri.push('/');
                }
                format!("{uri}{last}{query}")
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,100}") {
            let _ = Payto::parse_full(&text);
            let _ = Payto::parse_normalized(&text);
        }

        #[test]
        fn normalized_is_a_fixed_point(text in payto_like()) {
            let parsed = [Payto::parse_full(&text), Payto::parse_normalized(&text)];
            for payto in parsed.into_iter().flatten() {
                let again = Payto::parse_normalized(payto.normalized()).unwrap();
                prop_assert_eq!(again.normalized(), payto.normalized());
                prop_assert_eq!(again.h_normalized(), payto.h_normalized());
            }
        }

        #[test]
        fn valid_x_taler_bank_normalizes(
            host in "[A-Za-z0-9_][A-Za-z0-9_-]{0,10}(\\.[A-Za-z0-9_-]{1,10}){0,3}",
            account in "[A-Za-z0-9._~-]{1,20}",
        ) {
            let payto = Payto::parse_full(&format!(
                "payto://x-taler-bank/{host}/{account}?receiver-name=n"
            )).unwrap();
            prop_assert_eq!(
                payto.normalized(),
                format!("payto://x-taler-bank/{}/{}", host.to_ascii_lowercase(), account)
            );
        }
    }

    #[test]
    fn reserve_accounts_follow_the_exchange_base_url() {
        let key: EddsaPublicKey = "000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG"
            .parse()
            .unwrap();
        let secure = Payto::reserve("https://exchange.example.com/", &key).unwrap();
        assert_eq!(
            secure.normalized(),
            "payto://taler-reserve/exchange.example.com/000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG"
        );
        assert_eq!(
            secure.h_normalized().to_string(),
            "YW06MB5P8DNNQ4N47T5V9EBYFXVHASJMFY3CHRH98K1AS3VD3XS0"
        );
        let plain = Payto::reserve("http://127.0.0.1:8080/exchange/", &key).unwrap();
        assert_eq!(
            plain.normalized(),
            "payto://taler-reserve-http/127.0.0.1:8080/exchange/000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG"
        );
        assert!(Payto::reserve("ftp://x/", &key).is_err());
    }
}

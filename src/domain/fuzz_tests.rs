//! Property-based fuzzing of every wire parser of the domain: base32, amounts, payto URIs,
//! timestamps, JSON bodies (serde and the canonical parser), decision bodies, query strings
//! and path segments. Each target runs `TALERBOX_FUZZ_CASES` cases (default 100,000) and must
//! never panic; where a parser accepts, what it accepted must survive a round trip.
//!
//! Ignored by default (they take a while): `cargo test --release --lib -- --ignored fuzz_`.

use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::domain::accounts::{BankPayto, Scope, TanChannel, Username, parse_authorization};
use crate::domain::aml::decision_request::DecisionRequest;
use crate::domain::aml::parse_officer_pub;
use crate::domain::challenges::{AddressType, PkceMethod, Secret32};
use crate::domain::kyc::{AccessToken, MeasureSpec, RequirementId};
use crate::domain::primitives::canonical_json::CanonicalJson;
use crate::domain::primitives::json_body::from_object_slice;
use crate::domain::primitives::{Amount, Iban, Payto, RelativeTime, Timestamp, base32};

/// Cases per target: 100,000 unless `TALERBOX_FUZZ_CASES` says otherwise.
pub(crate) fn fuzz_config() -> Config {
    let cases = std::env::var("TALERBOX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Text that is often close to valid: `near` strings mixed with arbitrary ones.
pub(crate) fn near(pattern: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::string::string_regex(pattern).unwrap_or_else(|_| unreachable!()),
        1 => ".{0,40}",
    ]
}

/// JSON text: generated values printed (some valid, deep or odd), or arbitrary bytes.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_]{0,6}|.{0,4}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => near(r#"[\[\]{}",:0-9eE.+\-a-z\\ ]{0,40}"#).prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(fuzz_config())]

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_base32(text in near("[0-9A-Za-z=\\-_ ]{0,110}"), bytes in prop::collection::vec(any::<u8>(), 0..70)) {
        for len in [0, 1, 5, 32, 64, text.len() * 5 / 8] {
            if let Ok(decoded) = base32::decode(&text, len) {
                prop_assert_eq!(decoded.len(), len);
                prop_assert_eq!(base32::decode(&base32::encode(&decoded), len).ok(), Some(decoded));
            }
        }
        let _ = base32::decode_array::<32>(&text);
        let encoded = base32::encode(&bytes);
        prop_assert_eq!(base32::decode(&encoded, bytes.len()).ok(), Some(bytes));
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_amounts(text in near("[A-Za-z]{0,13}:[0-9]{0,20}(\\.[0-9]{0,10})?")) {
        if let Ok(amount) = text.parse::<Amount>() {
            let printed = amount.to_string();
            prop_assert_eq!(printed.parse::<Amount>().ok(), Some(amount));
        }
        let _ = serde_json::from_str::<Amount>(&format!("{:?}", text));
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_payto(text in near("payto://(iban|x-taler-bank|void)/[A-Za-z0-9/.:%\\-]{0,40}(\\?[a-z\\-]{0,14}=[A-Za-z%+ 0-9]{0,12}(&[a-z\\-]{0,8}=.{0,6})?)?")) {
        if let Ok(payto) = Payto::parse_full(&text) {
            let _ = payto.h_normalized();
            let again = Payto::parse_full(&payto.to_string());
            prop_assert!(again.is_ok(), "{} does not parse again", payto);
        }
        let _ = Payto::parse_normalized(&text);
        let _ = text.parse::<Payto>();
        let _ = BankPayto::parse(&text);
        let _ = Iban::parse(&text);
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_timestamps(
        seconds in prop_oneof![any::<i64>().prop_map(|s| s.to_string()), any::<u64>().prop_map(|s| s.to_string()), near("\"never\"|\"forever\"|-?[0-9.eE+]{0,24}|\"[0-9]{0,5}\"")],
        key in prop_oneof![Just("t_s"), Just("d_us"), Just("t_us"), Just("d_s")],
    ) {
        let text = format!("{{\"{key}\": {seconds}}}");
        if let Ok(time) = serde_json::from_str::<Timestamp>(&text) {
            let printed = serde_json::to_string(&time).unwrap_or_default();
            prop_assert_eq!(serde_json::from_str::<Timestamp>(&printed).ok(), Some(time));
        }
        if let Ok(span) = serde_json::from_str::<RelativeTime>(&text) {
            let printed = serde_json::to_string(&span).unwrap_or_default();
            prop_assert_eq!(serde_json::from_str::<RelativeTime>(&printed).ok(), Some(span));
        }
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_json_bodies(body in json_bytes()) {
        let decoded = from_object_slice::<serde_json::Value>(&body);
        if let Ok(value) = &decoded {
            prop_assert!(value.is_object());
        }
        let _ = from_object_slice::<crate::domain::accounts::api::RegisterAccountRequest>(&body);
        let _ = from_object_slice::<crate::domain::aml::AmlOfficerSetup>(&body);
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_canonical_json(body in json_bytes()) {
        if let Ok(json) = CanonicalJson::parse(&body) {
            // What it accepts is JSON; without reals (which hashed members may not hold,
            // exchange-aml-decisions.md §3.5 step 6) its printed form hashes the same.
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
            if !json.contains_real() {
                let again = CanonicalJson::parse(json.to_value().to_string().as_bytes());
                prop_assert_eq!(again.ok().map(|j| j.hash()), Some(json.hash()));
            }
        }
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_decision_bodies(body in json_bytes(), members in json_value()) {
        let _ = DecisionRequest::parse(&body);
        // An object with the right member names but any values.
        let mut object = serde_json::Map::new();
        for name in ["justification", "h_payto", "new_rules", "keep_investigating", "decision_time", "officer_sig", "properties", "events", "payto_uri", "attributes"] {
            object.insert(name.to_owned(), members.clone());
        }
        let _ = DecisionRequest::parse(serde_json::Value::Object(object).to_string().as_bytes());
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_query_strings(query in near("([a-z_]{0,8}=[-0-9a-z%+]{0,12}&?){0,4}")) {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap_or_default();
        let _ = crate::domain::accounts::page_from_query(&pairs, false);
        let _ = crate::domain::accounts::page_from_query(&pairs, true);
        if let Ok(page) = crate::domain::aml::page_from_query(&pairs) {
            prop_assert!(page.limit().unsigned_abs() <= crate::domain::aml::MAX_PAGE.unsigned_abs());
        }
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_path_segments(segment in near("[0-9A-Z]{0,60}(-[0-9]{0,22}){0,3}|[a-z0-9._\\-]{0,40}")) {
        let _ = RequirementId::parse(&segment);
        let _ = AccessToken::parse(&segment);
        let _ = parse_officer_pub(&segment);
        let _ = Secret32::parse(&segment);
        let _ = MeasureSpec::parse(&segment);
        let _ = Scope::parse(&segment);
        let _ = TanChannel::parse(&segment);
        let _ = AddressType::parse(&segment);
        let _ = PkceMethod::parse(&segment);
        if let Some(username) = Username::parse(&segment) {
            prop_assert_eq!(Username::parse(username.as_str()).map(|u| u.as_str().to_owned()), Some(username.as_str().to_owned()));
        }
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_authorization_headers(header in near("(Basic|Bearer|basic) ?[A-Za-z0-9+/=:\\-]{0,40}")) {
        let _ = parse_authorization(&header);
    }
}

//! The operator's decision commands (exchange-aml-decisions.md §6): `aml decide` signs a
//! decision with an officer key file and applies it through the same domain operation as
//! HTTP; `kyc token` looks an account's access token up.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::App;
use crate::domain::aml::decision_request::{DecisionRequest, sign_decision};
use crate::domain::kyc::{Decided, KycService, OperationType};
use crate::domain::primitives::{
    EddsaPrivateKey, NormalizedPaytoHash, Payto, RelativeTime, TalerError, Timestamp, base32,
};

/// `talerbox aml decide` as typed.
#[derive(Debug, Clone, Default)]
pub struct DecideRequest {
    pub account: String,
    pub officer_key: PathBuf,
    pub justification: String,
    /// `freeze`, `default`, `keep` or a file with a LegitimizationRuleSet.
    pub rules: String,
    pub expiration: Option<String>,
    pub successor: Option<String>,
    pub properties: Option<String>,
    pub measures: Option<String>,
    pub investigate: bool,
    pub events: Vec<String>,
    pub decision_time: Option<u64>,
    pub attributes: Option<PathBuf>,
    pub attributes_expiration: Option<String>,
}

/// What `aml decide` did.
#[derive(Debug)]
pub enum DecideOutput {
    /// `--print-request`: the signed body.
    Request(String),
    Applied {
        outcome_serial: u64,
        /// Token and customer page URL when a measure set is open.
        opened: Option<(String, String)>,
    },
    Replayed,
}

/// A duration as `30d`, `12h`, `5m`, `90s` (or `90`), or `never`.
pub fn parse_duration(text: &str) -> anyhow::Result<RelativeTime> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("never") || text.eq_ignore_ascii_case("forever") {
        return Ok(RelativeTime::forever());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .with_context(|| format!("duration {text}: a number and a unit (s, m, h, d)"))?;
    let factor = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => anyhow::bail!("duration {text}: unknown unit {other}"),
    };
    Ok(RelativeTime::from_seconds(number.saturating_mul(factor)))
}

fn json_file_or_text(text: &str) -> anyhow::Result<Value> {
    let content = if text.trim_start().starts_with('{') {
        text.to_owned()
    } else {
        std::fs::read_to_string(text).with_context(|| format!("reading {text}"))?
    };
    serde_json::from_str(&content).with_context(|| format!("{text} is not JSON"))
}

impl App {
    /// The account an operator names: a full payto (also sent as `payto_uri`), a payto
    /// without receiver name, or a 52-character hash.
    pub fn named_account(account: &str) -> anyhow::Result<(NormalizedPaytoHash, Option<String>)> {
        if account.starts_with("payto://") {
            let payto = Payto::parse_full(account)
                .or_else(|_| Payto::parse_normalized(account))
                .map_err(|e| anyhow::anyhow!("{account}: {e}"))?;
            let full = payto.receiver_name().map(|_| payto.as_str().to_owned());
            return Ok((payto.h_normalized(), full));
        }
        let hash = account
            .parse()
            .map_err(|_| anyhow::anyhow!("{account}: neither a payto URI nor an account hash"))?;
        Ok((hash, None))
    }

    /// `talerbox aml decide`.
    pub fn decide(
        &self,
        kyc: &KycService,
        request: &DecideRequest,
        print_only: bool,
    ) -> anyhow::Result<Result<DecideOutput, TalerError>> {
        let seed_text = std::fs::read_to_string(&request.officer_key)
            .with_context(|| format!("reading {}", request.officer_key.display()))?;
        let seed: [u8; 32] = base32::decode_array(seed_text.trim())
            .map_err(|_| anyhow::anyhow!("the officer key file must hold a base32 private key"))?;
        let key = EddsaPrivateKey::from_seed(seed);
        let (h_payto, full_payto) = Self::named_account(&request.account)?;
        let now = kyc_now();
        let decision_time = match request.decision_time {
            Some(seconds) => Timestamp::from_seconds(seconds).context("decision time")?,
            None => now,
        };
        let mut rules = match request.rules.as_str() {
            "freeze" => freeze_rules(&kyc.rules().currency),
            "default" | "" => default_rules(decision_time),
            "keep" => match kyc
                .active_rules(&h_payto)
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Some(rules) => serde_json::to_value(rules)?,
                None => default_rules(decision_time),
            },
            file => json_file_or_text(file)?,
        };
        if let Some(expiration) = &request.expiration {
            let at = decision_time.saturating_add(parse_duration(expiration)?);
            rules["expiration_time"] = serde_json::to_value(at)?;
        }
        if let Some(successor) = &request.successor {
            rules["successor_measure"] = json!(successor);
        }
        let mut body = json!({
            "justification": request.justification,
            "h_payto": h_payto,
            "new_rules": rules,
            "keep_investigating": request.investigate,
            "decision_time": decision_time,
        });
        let object = body
            .as_object_mut()
            .context("a decision is a JSON object")?;
        if let Some(full) = full_payto {
            object.insert("payto_uri".into(), json!(full));
        }
        if let Some(properties) = &request.properties {
            object.insert("properties".into(), json_file_or_text(properties)?);
        }
        if let Some(measures) = &request.measures {
            object.insert("new_measures".into(), json!(measures));
        }
        if !request.events.is_empty() {
            object.insert("events".into(), json!(request.events));
        }
        if let Some(file) = &request.attributes {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            object.insert("attributes".into(), serde_json::from_str(&text)?);
            if let Some(expiration) = &request.attributes_expiration {
                let at = now.saturating_add(parse_duration(expiration)?);
                object.insert("attributes_expiration".into(), serde_json::to_value(at)?);
            }
        }
        // Sign what the server will hash: the body as it parses.
        object.insert("officer_sig".into(), json!(base32::encode(&[0u8; 64])));
        let parsed = match DecisionRequest::parse(body.to_string().as_bytes()) {
            Ok(parsed) => parsed,
            Err(error) => return Ok(Err(error)),
        };
        let signature = sign_decision(&key, &parsed.signed_body());
        body["officer_sig"] = json!(base32::encode(&signature.0));
        let text = body.to_string();
        if print_only {
            return Ok(Ok(DecideOutput::Request(text)));
        }
        Ok(kyc
            .decide(&key.public_key(), text.as_bytes())
            .map(|decided| match decided {
                Decided::Replayed => DecideOutput::Replayed,
                Decided::Applied {
                    outcome_serial,
                    measure_serial,
                    access_token,
                    ..
                } => DecideOutput::Applied {
                    outcome_serial,
                    opened: measure_serial.map(|_| {
                        let token = access_token.to_base32();
                        let url = crate::domain::kyc::customer_page_url(kyc.base_url(), &token);
                        (token, url)
                    }),
                },
            }))
    }
}

fn kyc_now() -> Timestamp {
    use crate::ports::clock::Clock as _;
    crate::adapters::system::SystemClock.now()
}

/// The rules of `talerbox-freeze`: every operation forbidden, for good.
fn freeze_rules(currency: &str) -> Value {
    let rules: Vec<Value> = OperationType::ALL
        .iter()
        .map(|op| {
            json!({"operation_type": op.as_str(), "threshold": format!("{currency}:0"),
                "timeframe": {"d_us": 30u64 * 86_400 * 1_000_000}, "measures": ["verboten"],
                "display_priority": 1, "exposed": true, "is_and_combinator": false})
        })
        .collect();
    json!({"expiration_time": {"t_s": "never"}, "rules": rules, "custom_measures": {}})
}

/// Rules that expire at once, so that the configured defaults apply.
fn default_rules(decision_time: Timestamp) -> Value {
    json!({"expiration_time": decision_time, "rules": [], "custom_measures": {}})
}

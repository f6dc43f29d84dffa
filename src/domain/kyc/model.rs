//! The configured KYC vocabulary (exchange-kyc spec §2.1): providers, checks, AML programs,
//! measures and rules, and the measure-spec strings that name sets of measures.

use std::collections::BTreeMap;

use crate::domain::primitives::{Amount, RelativeTime};

/// The reserved check name meaning "no check": the measure's program runs at once.
pub const SKIP: &str = "skip";
/// The reserved measure name that forbids an operation outright.
pub const VERBOTEN: &str = "verboten";

/// Operation types a rule can limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationType {
    Withdraw,
    Deposit,
    Merge,
    Balance,
    Close,
    Aggregate,
    Transaction,
    Refund,
}

impl OperationType {
    pub const ALL: [OperationType; 8] = [
        OperationType::Withdraw,
        OperationType::Deposit,
        OperationType::Merge,
        OperationType::Balance,
        OperationType::Close,
        OperationType::Aggregate,
        OperationType::Transaction,
        OperationType::Refund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::Withdraw => "WITHDRAW",
            OperationType::Deposit => "DEPOSIT",
            OperationType::Merge => "MERGE",
            OperationType::Balance => "BALANCE",
            OperationType::Close => "CLOSE",
            OperationType::Aggregate => "AGGREGATE",
            OperationType::Transaction => "TRANSACTION",
            OperationType::Refund => "REFUND",
        }
    }

    pub fn parse(text: &str) -> Option<OperationType> {
        OperationType::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(text))
    }
}

/// Case-insensitive, as the exchange reads rule sets.
impl<'de> serde::Deserialize<'de> for OperationType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        OperationType::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown operation type {text}")))
    }
}

/// What a check asks of the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// Information only; nothing to submit.
    Info,
    /// A form the SPA renders and uploads through kyc-upload.
    Form { form_name: String },
    /// An external provider reached through kyc-start.
    Link { provider: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
    pub description: String,
    pub description_i18n: Option<serde_json::Value>,
    pub requires: Vec<String>,
    pub outputs: Vec<String>,
    /// Measure taken when the check fails.
    pub fallback: String,
}

/// The AML programs talerbox runs itself (spec §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinProgram {
    /// Lift limits to the program's `LIMIT` for a year.
    Accept,
    /// Block every operation and flag the account for investigation.
    Freeze,
    /// Keep the current rules; flag for investigation.
    None,
}

impl BuiltinProgram {
    pub fn parse(command: &str) -> Option<BuiltinProgram> {
        match command {
            "talerbox-accept" => Some(BuiltinProgram::Accept),
            "talerbox-freeze" => Some(BuiltinProgram::Freeze),
            "talerbox-none" => Some(BuiltinProgram::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramCommand {
    Builtin(BuiltinProgram),
    /// An external helper with the exchange's helper contract.
    External(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub name: String,
    pub command: ProgramCommand,
    pub description: String,
    pub fallback: String,
    pub required_attributes: Vec<String>,
    pub required_context: Vec<String>,
    /// What an external program wants on its standard input (its `-i` answer).
    pub required_inputs: Vec<ProgramInput>,
    /// Threshold of the rules `talerbox-accept` sets.
    pub limit: Amount,
}

/// A member of an external program's input (`-i` tokens, exchange-aml-decisions.md §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramInput {
    Context,
    Attributes,
    CurrentRules,
    DefaultRules,
    /// Officer decisions; `Some(n)`: the n oldest (n > 0) or |n| newest (n < 0).
    AmlHistory(Option<i64>),
    KycHistory(Option<i64>),
}

impl std::fmt::Display for ProgramInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let history = |f: &mut std::fmt::Formatter<'_>, name, n: &Option<i64>| match n {
            Some(n) => write!(f, "{name}[{n}]"),
            None => write!(f, "{name}"),
        };
        match self {
            ProgramInput::Context => write!(f, "context"),
            ProgramInput::Attributes => write!(f, "attributes"),
            ProgramInput::CurrentRules => write!(f, "current_rules"),
            ProgramInput::DefaultRules => write!(f, "default_rules"),
            ProgramInput::AmlHistory(n) => history(f, "aml_history", n),
            ProgramInput::KycHistory(n) => history(f, "kyc_history", n),
        }
    }
}

impl ProgramInput {
    /// Parses one `-i` token (case-insensitive).
    pub fn parse(token: &str) -> Option<ProgramInput> {
        let lower = token.to_ascii_lowercase();
        let history = |name: &str| -> Option<Option<i64>> {
            let rest = lower.strip_prefix(name)?;
            if rest.is_empty() {
                return Some(None);
            }
            let inner = rest.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse().ok().map(Some)
        };
        match lower.as_str() {
            "context" => Some(ProgramInput::Context),
            "attributes" => Some(ProgramInput::Attributes),
            "current_rules" => Some(ProgramInput::CurrentRules),
            "default_rules" => Some(ProgramInput::DefaultRules),
            _ => history("aml_history")
                .map(ProgramInput::AmlHistory)
                .or_else(|| history("kyc_history").map(ProgramInput::KycHistory)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    pub name: String,
    /// A check name, or `skip`.
    pub check_name: String,
    pub program: String,
    pub context: serde_json::Value,
    pub voluntary: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub operation_type: OperationType,
    pub threshold: Amount,
    pub timeframe: RelativeTime,
    pub measures: MeasureSpec,
    pub exposed: bool,
    pub display_priority: u32,
}

/// Settings of an `oauth2` provider (the exchange's option names, `KYC_OAUTH2_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Provider {
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub info_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub post_url: String,
    pub converter: String,
    pub validity: RelativeTime,
}

/// A set of measures as written in triggers and rules: names separated by spaces, a leading
/// `+` for "all of them", and `verboten` for "forbidden".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeasureSpec {
    pub measures: Vec<String>,
    pub is_and_combinator: bool,
    pub verboten: bool,
}

impl MeasureSpec {
    pub fn parse(text: &str) -> MeasureSpec {
        let text = text.trim();
        let (is_and_combinator, rest) = match text.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut spec = MeasureSpec {
            is_and_combinator,
            ..MeasureSpec::default()
        };
        for name in rest.split_whitespace() {
            if name.eq_ignore_ascii_case(VERBOTEN) {
                spec.verboten = true;
            } else {
                spec.measures.push(name.to_ascii_lowercase());
            }
        }
        spec
    }
}

/// The whole configured vocabulary; names are lower-case, as section names are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KycRules {
    /// The exchange's currency: rule thresholds must be in it.
    pub currency: String,
    /// `[exchangedb] MAX_AML_PROGRAM_RUNTIME`: an external program is killed after it.
    pub max_program_runtime: RelativeTime,
    pub providers: BTreeMap<String, OAuth2Provider>,
    pub checks: BTreeMap<String, Check>,
    pub programs: BTreeMap<String, Program>,
    pub measures: BTreeMap<String, Measure>,
    pub rules: Vec<Rule>,
}

/// A configuration inconsistency, naming the section at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[{section}] {option}: {problem}")]
pub struct KycConfigError {
    pub section: String,
    pub option: &'static str,
    pub problem: String,
}

impl KycRules {
    /// Startup validation (spec §8): every reference resolves, fallbacks skip the check, LINK
    /// checks name a provider.
    pub fn validate(&self) -> Result<(), KycConfigError> {
        let fail = |section: String, option, problem: String| {
            Err(KycConfigError {
                section,
                option,
                problem,
            })
        };
        for check in self.checks.values() {
            let section = format!("kyc-check-{}", check.name);
            if let CheckKind::Link { provider } = &check.kind
                && !self.providers.contains_key(provider)
            {
                return fail(
                    section,
                    "PROVIDER_ID",
                    format!("no [kyc-provider-{provider}]"),
                );
            }
            self.check_fallback(&section, &check.fallback)?;
        }
        for program in self.programs.values() {
            self.check_fallback(&format!("aml-program-{}", program.name), &program.fallback)?;
        }
        for measure in self.measures.values() {
            let section = format!("kyc-measure-{}", measure.name);
            if measure.check_name != SKIP && !self.checks.contains_key(&measure.check_name) {
                return fail(
                    section,
                    "CHECK_NAME",
                    format!("no check {}", measure.check_name),
                );
            }
            if !self.programs.contains_key(&measure.program) {
                return fail(
                    section,
                    "PROGRAM",
                    format!("no AML program {}", measure.program),
                );
            }
        }
        for rule in &self.rules {
            for name in &rule.measures.measures {
                if !self.measures.contains_key(name) {
                    return fail(
                        format!("kyc-rule-{}", rule.name),
                        "NEXT_MEASURES",
                        format!("no measure {name}"),
                    );
                }
            }
        }
        Ok(())
    }

    /// A fallback must be a configured measure whose check is `skip`.
    fn check_fallback(&self, section: &str, fallback: &str) -> Result<(), KycConfigError> {
        let problem = match self.measures.get(fallback) {
            None => format!("no measure {fallback}"),
            Some(measure) if measure.check_name != SKIP => {
                format!("measure {fallback} must use CHECK_NAME = SKIP to be a fallback")
            }
            // `talerbox-none` needs the current rules as input, which a fallback never gets.
            Some(measure)
                if self.programs.get(&measure.program).is_some_and(|p| {
                    p.command == ProgramCommand::Builtin(BuiltinProgram::None)
                }) =>
            {
                format!("measure {fallback} runs talerbox-none, which cannot be a fallback")
            }
            Some(_) => return Ok(()),
        };
        Err(KycConfigError {
            section: section.to_owned(),
            option: "FALLBACK",
            problem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_specs() {
        assert_eq!(
            MeasureSpec::parse("email  Personal"),
            MeasureSpec {
                measures: vec!["email".into(), "personal".into()],
                is_and_combinator: false,
                verboten: false
            }
        );
        let and = MeasureSpec::parse("+ email personal");
        assert!(and.is_and_combinator && and.measures.len() == 2);
        let forbidden = MeasureSpec::parse("VERBOTEN");
        assert!(forbidden.verboten && forbidden.measures.is_empty());
        assert_eq!(MeasureSpec::parse(""), MeasureSpec::default());
    }

    #[test]
    fn operation_types() {
        for op in OperationType::ALL {
            assert_eq!(
                OperationType::parse(&op.as_str().to_ascii_lowercase()),
                Some(op)
            );
        }
        assert_eq!(OperationType::parse("SHOPPING"), None);
    }
}

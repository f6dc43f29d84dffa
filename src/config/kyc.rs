//! The exchange's KYC sections (`[kyc-provider-*]`, `[kyc-check-*]`, `[aml-program-*]`,
//! `[kyc-measure-*]`, `[kyc-rule-*]`) with the exchange's own option names.

use std::str::FromStr;

use super::ini::{Ini, RelativeDuration};
use super::{ConfigError, non_empty};
use crate::domain::kyc::{
    BuiltinProgram, Check, CheckKind, KycRules, Measure, MeasureSpec, OperationType, Program,
    ProgramCommand, Rule, SKIP,
};
use crate::domain::primitives::{Amount, RelativeTime};

/// An `oauth2` provider as configured; unset URLs are derived at startup from the built-in
/// challenger and the exchange's base URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    pub name: String,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub info_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub post_url: Option<String>,
    pub converter: String,
    pub validity: RelativeTime,
}

/// Keeps the client secret out of logs and debug output.
impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("info_url", &self.info_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("post_url", &self.post_url)
            .field("converter", &self.converter)
            .field("validity", &self.validity)
            .finish()
    }
}

/// The KYC configuration: providers (to be resolved) and the rest of the vocabulary.
#[derive(Debug, Clone)]
pub struct KycConfig {
    pub providers: Vec<ProviderConfig>,
    /// Checks, programs, measures and rules; `providers` is filled at startup.
    pub rules: KycRules,
}

pub const SECTION_PREFIXES: [&str; 5] = [
    "kyc-provider-",
    "kyc-check-",
    "aml-program-",
    "kyc-measure-",
    "kyc-rule-",
];

fn sections_with<'a>(
    ini: &'a Ini,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a str, String)> + 'a {
    ini.sections().filter_map(move |section| {
        section
            .strip_prefix(prefix)
            .map(|name| (section, name.to_ascii_lowercase()))
    })
}

fn list(ini: &Ini, section: &str, option: &str) -> Result<Vec<String>, ConfigError> {
    Ok(non_empty(ini.get_string(section, option)?)
        .map(|text| text.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default())
}

fn required(ini: &Ini, section: &str, option: &str) -> Result<String, ConfigError> {
    non_empty(ini.get_string(section, option)?).ok_or_else(|| ini.missing(section, option))
}

fn json_object(
    ini: &Ini,
    section: &str,
    option: &str,
) -> Result<Option<serde_json::Value>, ConfigError> {
    let Some(text) = non_empty(ini.get_string(section, option)?) else {
        return Ok(None);
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(Some(value)),
        _ => Err(ini.invalid(section, option, "expected a JSON object")),
    }
}

fn relative(ini: &Ini, section: &str, option: &str) -> Result<Option<RelativeTime>, ConfigError> {
    Ok(ini
        .get_relative_time(section, option)?
        .map(|duration| match duration {
            RelativeDuration::Micros(micros) => RelativeTime::from_micros(micros),
            RelativeDuration::Forever => RelativeTime::forever(),
        }))
}

fn amount(
    ini: &Ini,
    section: &str,
    option: &str,
    currency: &str,
) -> Result<Option<Amount>, ConfigError> {
    super::amount(ini, section, option, currency)
}

impl KycConfig {
    /// Reads every KYC section; `currency` is the exchange's.
    pub fn read(ini: &Ini, currency: &str) -> Result<KycConfig, ConfigError> {
        if ini.has_section("kyc-check-skip") {
            return Err(ini.invalid("kyc-check-skip", "TYPE", "SKIP is a reserved check name"));
        }
        let mut rules = KycRules {
            currency: currency.to_owned(),
            max_program_runtime: relative(ini, "exchangedb", "MAX_AML_PROGRAM_RUNTIME")?
                .unwrap_or(RelativeTime::from_seconds(60)),
            ..KycRules::default()
        };
        let mut providers = Vec::new();
        for (section, name) in sections_with(ini, "kyc-provider-") {
            providers.push(read_provider(ini, section, name)?);
        }
        for (section, name) in sections_with(ini, "kyc-check-") {
            rules
                .checks
                .insert(name.clone(), read_check(ini, section, name)?);
        }
        for (section, name) in sections_with(ini, "aml-program-") {
            rules
                .programs
                .insert(name.clone(), read_program(ini, section, name, currency)?);
        }
        for (section, name) in sections_with(ini, "kyc-measure-") {
            rules
                .measures
                .insert(name.clone(), read_measure(ini, section, name)?);
        }
        for (section, name) in sections_with(ini, "kyc-rule-") {
            if ini.get_yes_no(section, "ENABLED")?.unwrap_or(true) {
                rules.rules.push(read_rule(ini, section, name, currency)?);
            }
        }
        Ok(KycConfig { providers, rules })
    }

    /// Checks the vocabulary as a whole, with the providers known by name.
    pub fn validate(&self) -> Result<(), crate::domain::kyc::KycConfigError> {
        let mut rules = self.rules.clone();
        for provider in &self.providers {
            rules
                .providers
                .insert(provider.name.clone(), placeholder_provider(provider));
        }
        rules.validate()
    }
}

fn placeholder_provider(provider: &ProviderConfig) -> crate::domain::kyc::OAuth2Provider {
    crate::domain::kyc::OAuth2Provider {
        name: provider.name.clone(),
        authorize_url: String::new(),
        token_url: String::new(),
        info_url: String::new(),
        client_id: String::new(),
        client_secret: String::new(),
        post_url: String::new(),
        converter: provider.converter.clone(),
        validity: provider.validity,
    }
}

fn read_provider(ini: &Ini, section: &str, name: String) -> Result<ProviderConfig, ConfigError> {
    let logic = required(ini, section, "LOGIC")?;
    if !logic.eq_ignore_ascii_case("oauth2") {
        return Err(ini.invalid(section, "LOGIC", "only the oauth2 logic is supported"));
    }
    let url = |option: &str| -> Result<Option<String>, ConfigError> {
        let Some(url) = non_empty(ini.get_string(section, option)?) else {
            return Ok(None);
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ini.invalid(section, option, "must be an http(s) URL"));
        }
        Ok(Some(url))
    };
    let authorize_url = url("KYC_OAUTH2_AUTHORIZE_URL")?;
    let fragment = authorize_url
        .as_deref()
        .and_then(|u| u.split_once('#'))
        .map(|(_, f)| f);
    if fragment.is_some_and(|f| f != "setup") {
        return Err(ini.invalid(
            section,
            "KYC_OAUTH2_AUTHORIZE_URL",
            "the only fragment allowed is #setup",
        ));
    }
    Ok(ProviderConfig {
        authorize_url,
        token_url: url("KYC_OAUTH2_TOKEN_URL")?,
        info_url: url("KYC_OAUTH2_INFO_URL")?,
        client_id: non_empty(ini.get_string(section, "KYC_OAUTH2_CLIENT_ID")?),
        client_secret: non_empty(ini.get_string(section, "KYC_OAUTH2_CLIENT_SECRET")?),
        post_url: url("KYC_OAUTH2_POST_URL")?,
        converter: non_empty(ini.get_string(section, "KYC_OAUTH2_CONVERTER_HELPER")?)
            .unwrap_or_else(|| "challenger".to_owned()),
        validity: relative(ini, section, "KYC_OAUTH2_VALIDITY")?
            .unwrap_or_else(RelativeTime::forever),
        name,
    })
}

fn read_check(ini: &Ini, section: &str, name: String) -> Result<Check, ConfigError> {
    let kind = match ini
        .get_choice(section, "TYPE", &["INFO", "FORM", "LINK"])?
        .as_deref()
    {
        Some("INFO") => CheckKind::Info,
        Some("FORM") => CheckKind::Form {
            form_name: required(ini, section, "FORM_NAME")?,
        },
        Some("LINK") => CheckKind::Link {
            provider: required(ini, section, "PROVIDER_ID")?.to_ascii_lowercase(),
        },
        _ => return Err(ini.missing(section, "TYPE")),
    };
    Ok(Check {
        kind,
        description: non_empty(ini.get_string(section, "DESCRIPTION")?).unwrap_or_default(),
        description_i18n: json_object(ini, section, "DESCRIPTION_I18N")?,
        requires: list(ini, section, "REQUIRES")?,
        outputs: list(ini, section, "OUTPUTS")?,
        fallback: required(ini, section, "FALLBACK")?.to_ascii_lowercase(),
        name,
    })
}

fn read_program(
    ini: &Ini,
    section: &str,
    name: String,
    currency: &str,
) -> Result<Program, ConfigError> {
    let command = required(ini, section, "COMMAND")?;
    let command = match BuiltinProgram::parse(&command) {
        Some(builtin) => ProgramCommand::Builtin(builtin),
        None => ProgramCommand::External(command),
    };
    let default_limit = Amount::from_str(&format!("{currency}:10000"))
        .map_err(|e| ini.invalid(section, "LIMIT", e.to_string()))?;
    Ok(Program {
        command,
        description: non_empty(ini.get_string(section, "DESCRIPTION")?).unwrap_or_default(),
        fallback: required(ini, section, "FALLBACK")?.to_ascii_lowercase(),
        required_attributes: list(ini, section, "REQUIRED_ATTRIBUTES")?,
        required_context: list(ini, section, "REQUIRED_CONTEXT")?,
        required_inputs: Vec::new(),
        limit: amount(ini, section, "LIMIT", currency)?.unwrap_or(default_limit),
        name,
    })
}

fn read_measure(ini: &Ini, section: &str, name: String) -> Result<Measure, ConfigError> {
    let check_name = non_empty(ini.get_string(section, "CHECK_NAME")?)
        .map_or_else(|| SKIP.to_owned(), |c| c.to_ascii_lowercase());
    Ok(Measure {
        check_name,
        program: required(ini, section, "PROGRAM")?.to_ascii_lowercase(),
        context: json_object(ini, section, "CONTEXT")?.unwrap_or_else(|| serde_json::json!({})),
        voluntary: ini.get_yes_no(section, "VOLUNTARY")?.unwrap_or(false),
        name,
    })
}

fn read_rule(ini: &Ini, section: &str, name: String, currency: &str) -> Result<Rule, ConfigError> {
    let operation = required(ini, section, "OPERATION_TYPE")?;
    let operation_type = OperationType::parse(&operation).ok_or_else(|| {
        ini.invalid(
            section,
            "OPERATION_TYPE",
            format!("unknown operation type {operation}"),
        )
    })?;
    let threshold = amount(ini, section, "THRESHOLD", currency)?
        .ok_or_else(|| ini.missing(section, "THRESHOLD"))?;
    let timeframe = match relative(ini, section, "TIMEFRAME")? {
        Some(timeframe) => timeframe,
        None if operation_type == OperationType::Balance => RelativeTime::forever(),
        None => return Err(ini.missing(section, "TIMEFRAME")),
    };
    let mut measures = MeasureSpec::parse(&required(ini, section, "NEXT_MEASURES")?);
    measures.is_and_combinator |= ini
        .get_yes_no(section, "IS_AND_COMBINATOR")?
        .unwrap_or(false);
    let display_priority = ini.get_number(section, "DISPLAY_PRIORITY")?.unwrap_or(0);
    Ok(Rule {
        operation_type,
        threshold,
        timeframe,
        measures,
        exposed: ini.get_yes_no(section, "EXPOSED")?.unwrap_or(false),
        display_priority: u32::try_from(display_priority)
            .map_err(|_| ini.invalid(section, "DISPLAY_PRIORITY", "number too large"))?,
        name,
    })
}

/// Options talerbox knows in each KYC section family (for unknown-option warnings).
pub fn known_options(section: &str) -> Option<&'static [&'static str]> {
    let options: &'static [&'static str] = if section.starts_with("kyc-provider-") {
        &[
            "LOGIC",
            "KYC_OAUTH2_VALIDITY",
            "KYC_OAUTH2_AUTHORIZE_URL",
            "KYC_OAUTH2_TOKEN_URL",
            "KYC_OAUTH2_INFO_URL",
            "KYC_OAUTH2_CLIENT_ID",
            "KYC_OAUTH2_CLIENT_SECRET",
            "KYC_OAUTH2_POST_URL",
            "KYC_OAUTH2_CONVERTER_HELPER",
            "KYC_OAUTH2_DEBUG_MODE",
        ]
    } else if section.starts_with("kyc-check-") {
        &[
            "TYPE",
            "FORM_NAME",
            "PROVIDER_ID",
            "DESCRIPTION",
            "DESCRIPTION_I18N",
            "REQUIRES",
            "OUTPUTS",
            "FALLBACK",
        ]
    } else if section.starts_with("aml-program-") {
        &[
            "COMMAND",
            "DESCRIPTION",
            "FALLBACK",
            "REQUIRED_ATTRIBUTES",
            "REQUIRED_CONTEXT",
            "REQUIRED_INPUTS",
            "ENABLED",
            "LIMIT",
        ]
    } else if section.starts_with("kyc-measure-") {
        &["CHECK_NAME", "PROGRAM", "CONTEXT", "VOLUNTARY"]
    } else if section.starts_with("kyc-rule-") {
        &[
            "ENABLED",
            "EXPOSED",
            "IS_AND_COMBINATOR",
            "OPERATION_TYPE",
            "THRESHOLD",
            "TIMEFRAME",
            "NEXT_MEASURES",
            "DISPLAY_PRIORITY",
        ]
    } else {
        return None;
    };
    Some(options)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};
    use crate::domain::kyc::{CheckKind, OperationType, SKIP};

    fn load(extra: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kyc.conf");
        std::fs::write(&path, extra).unwrap();
        Config::load(Some(&path), &Overrides::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let config = load(
            "[kyc-provider-challenger]\nKYC_OAUTH2_CLIENT_ID = 7\n\
             KYC_OAUTH2_CLIENT_SECRET = secret-token:client-secret-text\n\
             [exchange]\nATTRIBUTE_ENCRYPTION_KEY = attribute-key-text\n\
             ADMIN_TOKEN = secret-token:admin-token-text\n",
        )
        .unwrap();
        assert_eq!(
            config.kyc.providers[0].client_secret.as_deref(),
            Some("secret-token:client-secret-text")
        );
        let shown = format!("{config:?}");
        assert!(
            shown.contains("client_secret: Some(\"<redacted>\")"),
            "{shown}"
        );
        for secret in [
            "client-secret-text",
            "attribute-key-text",
            "admin-token-text",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn the_defaults_hold_the_spec_vocabulary() {
        let config = load("").unwrap();
        let kyc = &config.kyc;
        assert_eq!(kyc.providers.len(), 1);
        assert_eq!(kyc.providers[0].name, "challenger");
        assert_eq!(kyc.providers[0].client_id, None);
        let email = &kyc.rules.checks["email"];
        assert_eq!(
            email.kind,
            CheckKind::Link {
                provider: "challenger".into()
            }
        );
        assert_eq!(email.outputs, ["CONTACT_EMAIL"]);
        assert_eq!(kyc.rules.measures["freeze"].check_name, SKIP);
        let rule = &kyc.rules.rules[0];
        assert_eq!(
            (rule.operation_type, rule.threshold.to_string().as_str()),
            (OperationType::Withdraw, "KUDOS:1000")
        );
        assert_eq!(rule.measures.measures, ["email"]);
        assert_eq!(
            kyc.rules.programs["accept"].limit.to_string(),
            "KUDOS:10000"
        );
    }

    #[test]
    fn inconsistencies_name_the_section() {
        let cases = [
            ("[kyc-check-email]\nFALLBACK = nothing\n", "kyc-check-email"),
            ("[kyc-check-email]\nFALLBACK = email\n", "kyc-check-email"),
            (
                "[kyc-check-email]\nPROVIDER_ID = nobody\n",
                "kyc-check-email",
            ),
            (
                "[kyc-measure-email]\nCHECK_NAME = nothing\n",
                "kyc-measure-email",
            ),
            (
                "[kyc-measure-email]\nPROGRAM = nothing\n",
                "kyc-measure-email",
            ),
            (
                "[kyc-rule-withdraw-high]\nNEXT_MEASURES = nothing\n",
                "kyc-rule-withdraw-high",
            ),
            (
                "[kyc-rule-withdraw-high]\nOPERATION_TYPE = SHOPPING\n",
                "kyc-rule-withdraw-high",
            ),
            (
                "[kyc-rule-withdraw-high]\nTHRESHOLD = EUR:5\n",
                "kyc-rule-withdraw-high",
            ),
            (
                "[kyc-provider-challenger]\nKYC_OAUTH2_AUTHORIZE_URL = http://x/authorize#other\n",
                "kyc-provider-challenger",
            ),
            (
                "[kyc-provider-challenger]\nLOGIC = persona\n",
                "kyc-provider-challenger",
            ),
            ("[kyc-check-skip]\nTYPE = INFO\n", "kyc-check-skip"),
        ];
        for (text, section) in cases {
            let err = load(text).unwrap_err();
            assert!(err.contains(section), "{text}: {err}");
        }
    }

    #[test]
    fn disabled_rules_are_left_out_and_names_ignore_case() {
        let config =
            load("[kyc-rule-withdraw-high]\nENABLED = NO\n[kyc-measure-email]\nPROGRAM = ACCEPT\n")
                .unwrap();
        assert!(config.kyc.rules.rules.is_empty());
        assert_eq!(config.kyc.rules.measures["email"].program, "accept");
    }
}

//! talerbox configuration in the GNU Taler INI format.
//!
//! Precedence: the embedded defaults (`config/defaults.conf`) < the file given with `-c` <
//! command-line flags. Sections and option names are those of the real components
//! (`[libeufin-bank]`, `[exchange]`, `[challenger]`, `[currency-*]`); process-wide options live
//! in `[talerbox]`. Every supported option is documented in `docs/configuration.md`.

pub mod ini;
pub mod kyc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::domain::primitives::{Amount, Currency, EddsaPublicKey, RelativeTime};

pub use ini::{ConfigError, Ini, Origin};

const DEFAULTS: &str = include_str!("config/defaults.conf");
/// The origin label of the embedded defaults.
const DEFAULTS_LABEL: &str = "<defaults>";

/// Options that talerbox knows per section; anything else in these sections draws a warning.
/// Sections not listed here belong to other programs and are ignored.
const KNOWN_OPTIONS: &[(&str, &[&str])] = &[
    (
        "talerbox",
        &[
            "LISTEN",
            "DATA_DIR",
            "BASE_URL",
            "BANK_PREFIX",
            "EXCHANGE_PREFIX",
            "CHALLENGER_PREFIX",
            "LOG_FORMAT",
            "HEADER_READ_TIMEOUT",
            "BODY_READ_TIMEOUT",
            "IDLE_TIMEOUT",
            "MAX_CONNECTIONS",
            "THROTTLE_ADDRESS_BURST",
            "THROTTLE_ADDRESS_INTERVAL",
            "THROTTLE_ACCOUNT_BURST",
            "THROTTLE_ACCOUNT_INTERVAL",
            "TRUSTED_PROXIES",
            "JOURNAL_CHECKPOINT_INTERVAL",
            "DATABASE",
            "DATABASE_POOL_SIZE",
            "KEY_DIR",
        ],
    ),
    (
        "libeufin-bank",
        &[
            "CURRENCY",
            "WIRE_TYPE",
            "IBAN_PAYTO_BIC",
            "X_TALER_BANK_PAYTO_HOSTNAME",
            "NAME",
            "BASE_URL",
            "DEFAULT_DEBT_LIMIT",
            "REGISTRATION_BONUS",
            "REGISTRATION_BONUS_ENABLED",
            "ALLOW_REGISTRATION",
            "ALLOW_ACCOUNT_DELETION",
            "ALLOW_EDIT_NAME",
            "ALLOW_EDIT_CASHOUT_PAYTO_URI",
            "ALLOW_CONVERSION",
            "TAN_SMS",
            "TAN_EMAIL",
            "TAN_SMS_ENV",
            "TAN_EMAIL_ENV",
            "TAN_VALIDITY_PERIOD",
            "TAN_RETRANSMISSION_PERIOD",
            "TAN_RETRY_COUNTER",
            "TAN_SCRIPT_TIMEOUT",
            "SERVE",
            "PORT",
            "BIND_TO",
            "UNIXPATH",
            "PASSWORD_HASH_MEMORY_KIB",
            "PASSWORD_HASH_ITERATIONS",
            "PASSWORD_HASH_PARALLELISM",
            "GC_ABORT_AFTER",
            "GC_CLEAN_AFTER",
            "GC_DELETE_AFTER",
        ],
    ),
    (
        "exchange",
        &[
            "CURRENCY",
            "BASE_URL",
            "ATTRIBUTE_ENCRYPTION_KEY",
            "MASTER_PUBLIC_KEY",
            "ENABLE_AML_PDF",
            "ADMIN_TOKEN",
            "ENABLE_KYC",
            "ATTRIBUTE_RETENTION",
        ],
    ),
    ("challenger", CHALLENGER_OPTIONS),
    ("challenger-*", CHALLENGER_OPTIONS),
    (
        "currency-*",
        &[
            "ENABLED",
            "CODE",
            "NAME",
            "FRACTIONAL_INPUT_DIGITS",
            "FRACTIONAL_NORMAL_DIGITS",
            "FRACTIONAL_TRAILING_ZERO_DIGITS",
            "ALT_UNIT_NAMES",
        ],
    ),
];

/// Options of `[challenger]` and of every `[challenger-NAME]` instance (challenger.md §11).
/// `SERVE`, `PORT`, `BIND_TO`, `UNIXPATH`, `UNIXPATH_MODE` and `DB` are accepted for
/// compatibility and ignored: talerbox has one listener and one database.
const CHALLENGER_OPTIONS: &[&str] = &[
    "ADDRESS_TYPE",
    "ADDRESS_RESTRICTIONS",
    "ADDRESS_HINT",
    "AUTH_COMMAND",
    "DELIVERY",
    "BASE_URL",
    "VALIDATION_DURATION",
    "VALIDATION_EXPIRATION",
    "PIN_RETRANSMISSION_FREQUENCY",
    "MAX_ADDRESS_CHANGES",
    "MAX_PIN_TRANSMISSIONS",
    "MAX_AUTH_ATTEMPTS",
    "CODE_LIFETIME",
    "TOKEN_LIFETIME",
    "SERVE",
    "PORT",
    "BIND_TO",
    "UNIXPATH",
    "UNIXPATH_MODE",
    "DB",
];

/// The section of the default challenger instance; further instances are `challenger-NAME`.
pub const CHALLENGER_SECTION: &str = "challenger";

/// Values given on the command line; they override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// The effective configuration: the raw store plus the typed values talerbox uses.
#[derive(Debug)]
pub struct Config {
    pub ini: Ini,
    pub server: ServerConfig,
    pub bank: BankConfig,
    pub exchange: ExchangeConfig,
    /// `[challenger]`, mounted at the challenger prefix.
    pub challenger: ChallengerConfig,
    /// Every `[challenger-NAME]`, each mounted at `/challenger-NAME/`.
    pub challenger_instances: Vec<ChallengerConfig>,
    pub kyc: kyc::KycConfig,
    /// Unknown options in known sections, to be logged at startup.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `[talerbox] BASE_URL`, ending in `/`; `None`: derived from the bound address.
    pub public_base_url: Option<String>,
    pub bank_prefix: String,
    pub exchange_prefix: String,
    pub challenger_prefix: String,
    /// `[talerbox] LOG_FORMAT`: `json` writes one JSON object per log line.
    pub log_json: bool,
    pub limits: ConnectionLimits,
    pub throttle: ThrottleSettings,
    /// `JOURNAL_CHECKPOINT_INTERVAL`: how often the journal is checkpointed while entries
    /// come in; `None` (`0` or `forever`): only on demand and at shutdown.
    pub journal_checkpoint_interval: Option<Duration>,
    /// `DATABASE` and `DATABASE_POOL_SIZE`.
    pub database: DatabaseChoice,
    /// `KEY_DIR`: where the key files are; `None`: the data directory (see `key_dir()`).
    pub key_dir: Option<PathBuf>,
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseChoice {
    /// `DATA_DIR/talerbox.sqlite3`, with this many pooled read connections.
    Sqlite { readers: u32 },
    /// A PostgreSQL database (a libpq URI), which several instances may share.
    Postgres { uri: String, pool_size: u32 },
}

impl DatabaseChoice {
    fn read(ini: &Ini) -> Result<DatabaseChoice, ConfigError> {
        // Empty means the backend's own default.
        let pool_size = match non_empty(ini.get_string("talerbox", "DATABASE_POOL_SIZE")?) {
            None => None,
            Some(text) => match text.parse::<u32>() {
                Ok(n @ 1..=1000) => Some(n),
                _ => {
                    return Err(ini.invalid(
                        "talerbox",
                        "DATABASE_POOL_SIZE",
                        "must be empty or between 1 and 1000",
                    ));
                }
            },
        };
        let value = non_empty(ini.get_string("talerbox", "DATABASE")?)
            .unwrap_or_else(|| "sqlite".to_owned());
        if value.eq_ignore_ascii_case("sqlite") {
            return Ok(DatabaseChoice::Sqlite {
                readers: pool_size.unwrap_or(4),
            });
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            crate::adapters::postgres::parse_uri(&value)
                .map_err(|e| ini.invalid("talerbox", "DATABASE", e))?;
            return Ok(DatabaseChoice::Postgres {
                uri: value,
                pool_size: pool_size.unwrap_or(crate::adapters::postgres::DEFAULT_POOL_SIZE),
            });
        }
        Err(ini.invalid(
            "talerbox",
            "DATABASE",
            "expected sqlite or a postgres:// URI",
        ))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DatabaseChoice::Postgres { .. })
    }
}

/// How fast failed guesses (passwords, officer signatures, PINs) may come (`[talerbox]`):
/// each budget allows `burst` failures at once and one more per `interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// `THROTTLE_ADDRESS_BURST` / `_INTERVAL`: failures from one client address.
    pub address_burst: u32,
    pub address_interval: Duration,
    /// `THROTTLE_ACCOUNT_BURST` / `_INTERVAL`: failures on one account (username, officer,
    /// validation) from one client address.
    pub account_burst: u32,
    pub account_interval: Duration,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl ThrottleSettings {
    fn read(ini: &Ini) -> Result<ThrottleSettings, ConfigError> {
        let burst = |option: &str| match ini.get_number("talerbox", option)? {
            Some(n @ 1..=1_000_000) => Ok(n as u32),
            Some(_) => Err(ini.invalid("talerbox", option, "must be between 1 and 1000000")),
            None => Err(ini.missing("talerbox", option)),
        };
        let trusted_proxies = ini
            .get_string("talerbox", "TRUSTED_PROXIES")?
            .unwrap_or_default()
            .split_whitespace()
            .map(|text| {
                text.parse().map_err(|_| {
                    ini.invalid(
                        "talerbox",
                        "TRUSTED_PROXIES",
                        format!("not an IP address: {text}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ThrottleSettings {
            address_burst: burst("THROTTLE_ADDRESS_BURST")?,
            address_interval: positive_duration(ini, "THROTTLE_ADDRESS_INTERVAL")?,
            account_burst: burst("THROTTLE_ACCOUNT_BURST")?,
            account_interval: positive_duration(ini, "THROTTLE_ACCOUNT_INTERVAL")?,
            trusted_proxies,
        })
    }
}

/// A `[talerbox]` relative time that is set, above zero and not forever.
fn positive_duration(ini: &Ini, option: &str) -> Result<Duration, ConfigError> {
    match ini.get_relative_time("talerbox", option)? {
        Some(ini::RelativeDuration::Micros(micros)) if micros > 0 => {
            Ok(Duration::from_micros(micros))
        }
        Some(_) => Err(ini.invalid(
            "talerbox",
            option,
            "must be a time above zero and not forever",
        )),
        None => Err(ini.missing("talerbox", option)),
    }
}

/// How long and how many connections the listener keeps (`[talerbox]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `HEADER_READ_TIMEOUT`: from a request's first byte to the end of its head.
    pub header_read_timeout: Duration,
    /// `BODY_READ_TIMEOUT`: to receive a whole request body.
    pub body_read_timeout: Duration,
    /// `IDLE_TIMEOUT`: how long a connection may wait for its (next) request.
    pub idle_timeout: Duration,
    /// `MAX_CONNECTIONS`: connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl ConnectionLimits {
    fn read(ini: &Ini) -> Result<ConnectionLimits, ConfigError> {
        let timeout = |option: &str| positive_duration(ini, option);
        let max_connections = match ini.get_number("talerbox", "MAX_CONNECTIONS")? {
            Some(n @ 1..=1_000_000) => n as usize,
            Some(_) => {
                return Err(ini.invalid(
                    "talerbox",
                    "MAX_CONNECTIONS",
                    "must be between 1 and 1000000",
                ));
            }
            None => return Err(ini.missing("talerbox", "MAX_CONNECTIONS")),
        };
        Ok(ConnectionLimits {
            header_read_timeout: timeout("HEADER_READ_TIMEOUT")?,
            body_read_timeout: timeout("BODY_READ_TIMEOUT")?,
            idle_timeout: timeout("IDLE_TIMEOUT")?,
            max_connections,
        })
    }
}

/// `[libeufin-bank]`: the Corebank options talerbox supports.
#[derive(Debug, Clone)]
pub struct BankConfig {
    pub currency: String,
    pub base_url: Option<String>,
    /// `NAME`: the bank's display name.
    pub name: String,
    /// `WIRE_TYPE`: `iban` or `x-taler-bank`.
    pub wire_type: String,
    pub iban_payto_bic: Option<String>,
    pub x_taler_bank_payto_hostname: Option<String>,
    pub default_debt_limit: Amount,
    pub registration_bonus: Amount,
    pub allow_registration: bool,
    pub allow_account_deletion: bool,
    pub allow_edit_name: bool,
    pub allow_edit_cashout_payto_uri: bool,
    /// `TAN_SMS` / `TAN_EMAIL`: delivery scripts; their presence enables the channel.
    pub tan_sms: Option<String>,
    pub tan_email: Option<String>,
    /// `TAN_SMS_ENV` / `TAN_EMAIL_ENV`: extra environment of the scripts (JSON objects of
    /// strings), sorted by name.
    pub tan_sms_env: Vec<(String, String)>,
    pub tan_email_env: Vec<(String, String)>,
    /// `TAN_VALIDITY_PERIOD`, `TAN_RETRANSMISSION_PERIOD`, `TAN_RETRY_COUNTER`.
    pub tan: crate::domain::tan::TanSettings,
    /// `TAN_SCRIPT_TIMEOUT`: a script running longer is killed.
    pub tan_script_timeout: RelativeTime,
    pub password_hash_memory_kib: u32,
    pub password_hash_iterations: u32,
    pub password_hash_parallelism: u32,
}

#[derive(Clone)]
pub struct ExchangeConfig {
    pub currency: String,
    pub base_url: Option<String>,
    /// `ATTRIBUTE_ENCRYPTION_KEY`: the secret text the attribute key is derived from; unset:
    /// the key file in the data directory.
    pub attribute_encryption_key: Option<String>,
    /// `MASTER_PUBLIC_KEY`: the master key whose private half stays offline; unset: a key
    /// pair in the data directory.
    pub master_public_key: Option<EddsaPublicKey>,
    /// `ENABLE_AML_PDF` (talerbox option): PDF exports of attribute histories.
    pub enable_aml_pdf: bool,
    /// `ENABLE_KYC`: without it, kyc-check answers 204 and kyc-wallet never requires KYC.
    pub enable_kyc: bool,
    /// `ADMIN_TOKEN` (talerbox option): bearer secret of `POST admin/kyc-trigger`; unset, the
    /// endpoint does not exist.
    pub admin_token: Option<String>,
    /// `ATTRIBUTE_RETENTION` (talerbox option): how long attribute rows are kept after
    /// collection (and past their expiration); `forever` disables purging.
    pub attribute_retention: RelativeTime,
}

/// Keeps the attribute key out of logs and debug output.
impl std::fmt::Debug for ExchangeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeConfig")
            .field("currency", &self.currency)
            .field("base_url", &self.base_url)
            .field(
                "attribute_encryption_key",
                &self.attribute_encryption_key.as_ref().map(|_| "<redacted>"),
            )
            .field("master_public_key", &self.master_public_key)
            .field("enable_aml_pdf", &self.enable_aml_pdf)
            .field("enable_kyc", &self.enable_kyc)
            .finish()
    }
}

/// One challenger instance: `[challenger]` or `[challenger-NAME]` (challenger.md §11).
#[derive(Debug, Clone)]
pub struct ChallengerConfig {
    /// Its section name, which also keys its rows in the database.
    pub section: String,
    pub base_url: Option<String>,
    pub address_type: String,
    pub address_hint: String,
    /// `ADDRESS_RESTRICTIONS`: field → `{"regex", "hint"?}`, each regex valid.
    pub restrictions: serde_json::Value,
    pub auth_command: Option<String>,
    pub delivery: Delivery,
    pub validation_duration: RelativeTime,
    pub validation_expiration: RelativeTime,
    pub pin_retransmission_frequency: RelativeTime,
    pub max_address_changes: u32,
    pub max_pin_transmissions: u32,
    pub max_auth_attempts: u32,
    pub code_lifetime: RelativeTime,
    pub token_lifetime: RelativeTime,
}

/// How a challenger instance delivers PINs (`DELIVERY`; default: `command` when
/// `AUTH_COMMAND` is set, otherwise `outbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Command,
    Outbox,
    Log,
}

impl ChallengerConfig {
    /// `NAME` of `[challenger-NAME]`; `None` for `[challenger]`.
    pub fn instance_name(&self) -> Option<&str> {
        self.section.strip_prefix("challenger-")
    }
}

/// `currency_specification` of `/config`, from a `[currency-*]` section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CurrencySpecification {
    pub name: String,
    pub num_fractional_input_digits: u64,
    pub num_fractional_normal_digits: u64,
    pub num_fractional_trailing_zero_digits: u64,
    pub alt_unit_names: serde_json::Value,
}

impl Config {
    /// The configuration files that set at least one option, in the order first seen.
    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = Vec::new();
        for section in self.ini.sections() {
            for entry in self.ini.options(section) {
                let source = &entry.origin.source;
                if !source.starts_with('<') && !files.contains(source) {
                    files.push(source.clone());
                }
            }
        }
        files
    }

    /// Loads the embedded defaults, then `file` if given, then the command-line overrides.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut ini = Ini::new();
        ini.parse_str(DEFAULTS, DEFAULTS_LABEL, None)?;
        if let Some(file) = file {
            ini.load_file(file)?;
        }
        let command_line = Origin {
            source: "<command line>".into(),
            line: 0,
        };
        if let Some(listen) = &overrides.listen {
            ini.set("talerbox", "LISTEN", listen, command_line.clone())?;
        }
        if let Some(dir) = &overrides.data_dir {
            ini.set("talerbox", "DATA_DIR", &dir.to_string_lossy(), command_line)?;
        }
        Config::from_ini(ini)
    }

    /// Builds the typed configuration from a filled store.
    pub fn from_ini(ini: Ini) -> Result<Config, ConfigError> {
        let server = ServerConfig::read(&ini)?;
        let bank = BankConfig::read(&ini)?;
        let exchange = ExchangeConfig::read(&ini)?;
        // One installation, one currency: the exchange's customers bank here.
        if bank.currency != exchange.currency {
            return Err(ini.invalid(
                "exchange",
                "CURRENCY",
                format!(
                    "{} differs from [libeufin-bank] CURRENCY = {}; set both to the same currency",
                    exchange.currency, bank.currency
                ),
            ));
        }
        let challenger = ChallengerConfig::read(&ini, CHALLENGER_SECTION)?;
        let mut challenger_instances = Vec::new();
        for section in ini.sections() {
            if section.starts_with("challenger-") {
                challenger_instances.push(ChallengerConfig::read(&ini, section)?);
            }
        }
        server.check_instance_prefixes(&ini, &challenger_instances)?;
        let kyc = kyc::KycConfig::read(&ini, &exchange.currency)?;
        kyc.validate()
            .map_err(|e| ini.invalid(&e.section, e.option, e.problem))?;
        let warnings = unknown_options(&ini);
        Ok(Config {
            ini,
            server,
            bank,
            exchange,
            challenger,
            challenger_instances,
            kyc,
            warnings,
        })
    }

    /// The display rules of `code` from the enabled `[currency-*]` section that names it;
    /// without one, libeufin's fallback (the code as name, 2/2/2 digits).
    pub fn currency_specification(&self, code: &str) -> Result<CurrencySpecification, ConfigError> {
        for section in self.ini.sections() {
            if !section.starts_with("currency-") {
                continue;
            }
            let enabled = self.ini.get_yes_no(section, "ENABLED")?.unwrap_or(true);
            let matches = self
                .ini
                .get_string(section, "CODE")?
                .is_some_and(|c| c == code);
            if enabled && matches {
                return read_currency_specification(&self.ini, section, code);
            }
        }
        Ok(CurrencySpecification {
            name: code.to_owned(),
            num_fractional_input_digits: 2,
            num_fractional_normal_digits: 2,
            num_fractional_trailing_zero_digits: 2,
            alt_unit_names: serde_json::json!({ "0": code }),
        })
    }
}

impl ServerConfig {
    fn read(ini: &Ini) -> Result<ServerConfig, ConfigError> {
        let listen_text = required(ini, "talerbox", "LISTEN")?;
        let listen = listen_text.parse().map_err(|_| {
            ini.invalid(
                "talerbox",
                "LISTEN",
                format!("not an address:port: {listen_text:?}"),
            )
        })?;
        let data_dir = PathBuf::from(required(ini, "talerbox", "DATA_DIR")?);
        let public_base_url = base_url(ini, "talerbox")?;
        let prefixes = ["BANK_PREFIX", "EXCHANGE_PREFIX", "CHALLENGER_PREFIX"]
            .map(|option| prefix(ini, option));
        let [bank_prefix, exchange_prefix, challenger_prefix] = prefixes;
        let server = ServerConfig {
            listen,
            public_base_url,
            bank_prefix: bank_prefix?,
            exchange_prefix: exchange_prefix?,
            challenger_prefix: challenger_prefix?,
            log_json: ini
                .get_choice("talerbox", "LOG_FORMAT", &["text", "json"])?
                .is_some_and(|format| format == "json"),
            limits: ConnectionLimits::read(ini)?,
            throttle: ThrottleSettings::read(ini)?,
            journal_checkpoint_interval: match ini
                .get_relative_time("talerbox", "JOURNAL_CHECKPOINT_INTERVAL")?
            {
                None => Some(Duration::from_secs(3600)),
                Some(ini::RelativeDuration::Micros(0) | ini::RelativeDuration::Forever) => None,
                Some(ini::RelativeDuration::Micros(micros)) => Some(Duration::from_micros(micros)),
            },
            database: DatabaseChoice::read(ini)?,
            key_dir: non_empty(ini.get_string("talerbox", "KEY_DIR")?).map(PathBuf::from),
            data_dir,
        };
        server.check_prefixes_distinct(ini)?;
        Ok(server)
    }

    /// Where the key files are.
    pub fn key_dir(&self) -> &Path {
        self.key_dir.as_deref().unwrap_or(&self.data_dir)
    }

    fn check_prefixes_distinct(&self, ini: &Ini) -> Result<(), ConfigError> {
        let all = [
            ("BANK_PREFIX", &self.bank_prefix),
            ("EXCHANGE_PREFIX", &self.exchange_prefix),
            ("CHALLENGER_PREFIX", &self.challenger_prefix),
        ];
        for (i, (option, value)) in all.iter().enumerate() {
            if all[..i].iter().any(|(_, earlier)| earlier == value) {
                return Err(ini.invalid(
                    "talerbox",
                    option,
                    format!("prefix {value} is used twice"),
                ));
            }
        }
        Ok(())
    }

    /// `[challenger-NAME]` is mounted at `/challenger-NAME/`, which no other prefix may be.
    fn check_instance_prefixes(
        &self,
        ini: &Ini,
        instances: &[ChallengerConfig],
    ) -> Result<(), ConfigError> {
        let fixed = [
            &self.bank_prefix,
            &self.exchange_prefix,
            &self.challenger_prefix,
        ];
        for instance in instances {
            let prefix = format!("/{}/", instance.section);
            if fixed.iter().any(|p| **p == prefix) {
                return Err(ini.invalid(
                    "talerbox",
                    "CHALLENGER_PREFIX",
                    format!(
                        "prefix {prefix} is also the instance [{}]",
                        instance.section
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The public base URL, ending in `/`: the configured one, or derived from `bound`.
    pub fn public_base_url(&self, bound: SocketAddr) -> String {
        self.public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}/"))
    }
}

impl BankConfig {
    fn read(ini: &Ini) -> Result<BankConfig, ConfigError> {
        const S: &str = "libeufin-bank";
        let currency = currency(ini, S)?;
        let zero = Amount::zero(
            Currency::from_str(&currency).map_err(|e| ini.invalid(S, "CURRENCY", e.to_string()))?,
        );
        let flag = |option: &str| -> Result<bool, ConfigError> {
            Ok(ini.get_yes_no(S, option)?.unwrap_or(false))
        };
        if flag("ALLOW_CONVERSION")? {
            return Err(ini.invalid(
                S,
                "ALLOW_CONVERSION",
                "currency conversion is not supported",
            ));
        }
        // libeufin falls back to iban when WIRE_TYPE is missing.
        let wire_type = ini
            .get_choice(S, "WIRE_TYPE", &["iban", "x-taler-bank"])?
            .unwrap_or_else(|| "iban".to_owned());
        let amount_or_zero = |option: &str| -> Result<Amount, ConfigError> {
            Ok(amount(ini, S, option, &currency)?.unwrap_or_else(|| zero.clone()))
        };
        let cost = |option: &str, default: u32| -> Result<u32, ConfigError> {
            match ini.get_number(S, option)? {
                None => Ok(default),
                Some(n) => u32::try_from(n).map_err(|_| ini.invalid(S, option, "number too large")),
            }
        };
        Ok(BankConfig {
            base_url: base_url(ini, S)?,
            name: non_empty(ini.get_string(S, "NAME")?).unwrap_or_else(|| "Taler Bank".to_owned()),
            wire_type,
            iban_payto_bic: non_empty(ini.get_string(S, "IBAN_PAYTO_BIC")?),
            x_taler_bank_payto_hostname: non_empty(
                ini.get_string(S, "X_TALER_BANK_PAYTO_HOSTNAME")?,
            ),
            default_debt_limit: amount_or_zero("DEFAULT_DEBT_LIMIT")?,
            registration_bonus: amount_or_zero("REGISTRATION_BONUS")?,
            allow_registration: flag("ALLOW_REGISTRATION")?,
            allow_account_deletion: flag("ALLOW_ACCOUNT_DELETION")?,
            allow_edit_name: flag("ALLOW_EDIT_NAME")?,
            allow_edit_cashout_payto_uri: flag("ALLOW_EDIT_CASHOUT_PAYTO_URI")?,
            tan_sms: non_empty(ini.get_string(S, "TAN_SMS")?),
            tan_email: non_empty(ini.get_string(S, "TAN_EMAIL")?),
            tan_sms_env: script_env(ini, S, "TAN_SMS_ENV")?,
            tan_email_env: script_env(ini, S, "TAN_EMAIL_ENV")?,
            tan: tan_settings(ini, S)?,
            tan_script_timeout: relative_time(ini, S, "TAN_SCRIPT_TIMEOUT", 30)?,
            password_hash_memory_kib: cost("PASSWORD_HASH_MEMORY_KIB", 19_456)?,
            password_hash_iterations: cost("PASSWORD_HASH_ITERATIONS", 2)?,
            password_hash_parallelism: cost("PASSWORD_HASH_PARALLELISM", 1)?,
            currency,
        })
    }
}

impl ExchangeConfig {
    fn read(ini: &Ini) -> Result<ExchangeConfig, ConfigError> {
        const S: &str = "exchange";
        let master_public_key = non_empty(ini.get_string(S, "MASTER_PUBLIC_KEY")?)
            .map(|text| {
                text.trim().parse::<EddsaPublicKey>().map_err(|_| {
                    ini.invalid(S, "MASTER_PUBLIC_KEY", "expected 52 base32 characters")
                })
            })
            .transpose()?;
        Ok(ExchangeConfig {
            currency: currency(ini, S)?,
            base_url: base_url(ini, S)?,
            attribute_encryption_key: non_empty(ini.get_string(S, "ATTRIBUTE_ENCRYPTION_KEY")?),
            master_public_key,
            enable_aml_pdf: ini.get_yes_no(S, "ENABLE_AML_PDF")?.unwrap_or(true),
            enable_kyc: ini.get_yes_no(S, "ENABLE_KYC")?.unwrap_or(true),
            admin_token: non_empty(ini.get_string(S, "ADMIN_TOKEN")?),
            attribute_retention: relative_time(ini, S, "ATTRIBUTE_RETENTION", FIVE_YEARS)?,
        })
    }
}

impl ChallengerConfig {
    fn read(ini: &Ini, section: &str) -> Result<ChallengerConfig, ConfigError> {
        let name = section.strip_prefix("challenger-");
        let valid_name = name.is_none_or(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
        if !valid_name {
            return Err(ini.invalid(
                section,
                "ADDRESS_TYPE",
                "instance names are letters, digits, '-', '_' and '.'",
            ));
        }
        let address_type = ini
            .get_choice(
                section,
                "ADDRESS_TYPE",
                &["email", "phone", "postal", "postal-ch"],
            )?
            .unwrap_or_else(|| "email".to_owned());
        // The embedded defaults set these for [challenger]; other instances of the e-mail
        // type get the same, other types none.
        let email = address_type == "email";
        let restrictions = match non_empty(ini.get_string(section, "ADDRESS_RESTRICTIONS")?) {
            Some(text) => restrictions(ini, section, &text)?,
            None if email => serde_json::json!({
                "CONTACT_EMAIL": {"regex": "^[^@ ]+@[^@ ]+$", "hint": "e-mail address"}
            }),
            None => serde_json::json!({}),
        };
        let address_hint = match non_empty(ini.get_string(section, "ADDRESS_HINT")?) {
            Some(hint) => hint,
            None if email => "john@example.com".to_owned(),
            None => String::new(),
        };
        let auth_command = non_empty(ini.get_string(section, "AUTH_COMMAND")?);
        let delivery = match ini.get_choice(section, "DELIVERY", &["command", "outbox", "log"])? {
            Some(choice) if choice == "command" => {
                if auth_command.is_none() {
                    return Err(ini.invalid(section, "DELIVERY", "command needs AUTH_COMMAND"));
                }
                Delivery::Command
            }
            Some(choice) if choice == "log" => Delivery::Log,
            Some(_) => Delivery::Outbox,
            None if auth_command.is_some() => Delivery::Command,
            None => Delivery::Outbox,
        };
        let duration = |option: &str, default_seconds: u64| {
            relative_time(ini, section, option, default_seconds)
        };
        let limit = |option: &str| -> Result<u32, ConfigError> {
            match ini.get_number(section, option)? {
                None => Ok(3),
                Some(n) => u32::try_from(n).map_err(|_| ini.invalid(section, option, "too large")),
            }
        };
        Ok(ChallengerConfig {
            section: section.to_owned(),
            base_url: base_url(ini, section)?,
            address_type,
            address_hint,
            restrictions,
            auth_command,
            delivery,
            validation_duration: duration("VALIDATION_DURATION", 24 * 3600)?,
            validation_expiration: duration("VALIDATION_EXPIRATION", 365 * 24 * 3600)?,
            pin_retransmission_frequency: duration("PIN_RETRANSMISSION_FREQUENCY", 5 * 60)?,
            max_address_changes: limit("MAX_ADDRESS_CHANGES")?,
            max_pin_transmissions: limit("MAX_PIN_TRANSMISSIONS")?,
            max_auth_attempts: limit("MAX_AUTH_ATTEMPTS")?,
            code_lifetime: duration("CODE_LIFETIME", 10 * 60)?,
            token_lifetime: duration("TOKEN_LIFETIME", 3600)?,
        })
    }
}

/// `TAN_*_ENV`: a JSON object of strings; unset or empty means none.
fn script_env(
    ini: &Ini,
    section: &str,
    option: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(text) = non_empty(ini.get_string(section, option)?) else {
        return Ok(Vec::new());
    };
    let value = json_object(ini, section, option, &text)?;
    let mut pairs = Vec::new();
    for (name, value) in value.as_object().into_iter().flatten() {
        let Some(value) = value.as_str() else {
            return Err(ini.invalid(section, option, format!("{name}: expected a string")));
        };
        pairs.push((name.clone(), value.to_owned()));
    }
    Ok(pairs)
}

/// The TAN timing and counter options (corebank-tan.md §2).
fn tan_settings(ini: &Ini, section: &str) -> Result<crate::domain::tan::TanSettings, ConfigError> {
    let validity = relative_time(ini, section, "TAN_VALIDITY_PERIOD", 3600)?;
    if validity == RelativeTime::ZERO {
        return Err(ini.invalid(section, "TAN_VALIDITY_PERIOD", "must be longer than 0 s"));
    }
    let retry_counter = match ini.get_number(section, "TAN_RETRY_COUNTER")? {
        None => 3,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ini.invalid(section, "TAN_RETRY_COUNTER", "expected 1 or more"))?,
    };
    Ok(crate::domain::tan::TanSettings {
        validity,
        retransmission: relative_time(ini, section, "TAN_RETRANSMISSION_PERIOD", 60)?,
        retry_counter,
        clean_after: relative_time(ini, section, "GC_CLEAN_AFTER", 14 * 24 * 3600)?,
    })
}

/// The default of `ATTRIBUTE_RETENTION` (five 365-day years, as the INI's `years`).
const FIVE_YEARS: u64 = 5 * 365 * 86_400;

/// A relative time option, `default_seconds` when unset.
fn relative_time(
    ini: &Ini,
    section: &str,
    option: &str,
    default_seconds: u64,
) -> Result<RelativeTime, ConfigError> {
    Ok(match ini.get_relative_time(section, option)? {
        None => RelativeTime::from_seconds(default_seconds),
        Some(ini::RelativeDuration::Forever) => RelativeTime::forever(),
        Some(ini::RelativeDuration::Micros(micros)) => RelativeTime::from_micros(micros),
    })
}

/// `ADDRESS_RESTRICTIONS`: a JSON object of `{"regex": string, "hint"?: string, ...}` whose
/// regexes compile.
fn restrictions(ini: &Ini, section: &str, text: &str) -> Result<serde_json::Value, ConfigError> {
    const OPTION: &str = "ADDRESS_RESTRICTIONS";
    let value = json_object(ini, section, OPTION, text)?;
    for (field, rule) in value.as_object().into_iter().flatten() {
        let Some(pattern) = rule.get("regex").and_then(serde_json::Value::as_str) else {
            return Err(ini.invalid(section, OPTION, format!("{field}: no \"regex\" string")));
        };
        if let Err(e) = regex::Regex::new(pattern) {
            return Err(ini.invalid(section, OPTION, format!("{field}: bad regex: {e}")));
        }
        if rule.get("hint").is_some_and(|h| !h.is_string()) {
            return Err(ini.invalid(section, OPTION, format!("{field}: \"hint\" is a string")));
        }
    }
    Ok(value)
}

fn read_currency_specification(
    ini: &Ini,
    section: &str,
    code: &str,
) -> Result<CurrencySpecification, ConfigError> {
    let digits = |option: &str| -> Result<u64, ConfigError> {
        let value = ini.get_number(section, option)?.unwrap_or(2);
        if value > 8 {
            return Err(ini.invalid(section, option, "at most 8 fractional digits exist"));
        }
        Ok(value)
    };
    let alt_unit_names = match non_empty(ini.get_string(section, "ALT_UNIT_NAMES")?) {
        Some(text) => json_object(ini, section, "ALT_UNIT_NAMES", &text)?,
        None => serde_json::json!({ "0": code }),
    };
    Ok(CurrencySpecification {
        name: non_empty(ini.get_string(section, "NAME")?).unwrap_or_else(|| code.to_owned()),
        num_fractional_input_digits: digits("FRACTIONAL_INPUT_DIGITS")?,
        num_fractional_normal_digits: digits("FRACTIONAL_NORMAL_DIGITS")?,
        num_fractional_trailing_zero_digits: digits("FRACTIONAL_TRAILING_ZERO_DIGITS")?,
        alt_unit_names,
    })
}

/// An empty value counts as unset (`OPTION =` in a file clears a default).
pub(crate) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn required(ini: &Ini, section: &str, option: &str) -> Result<String, ConfigError> {
    non_empty(ini.get_string(section, option)?)
        .ok_or_else(|| ini.invalid(section, option, "a value is required"))
}

/// A currency code: 1 to 11 upper-case ASCII letters (taler-primitives.md §7).
fn currency(ini: &Ini, section: &str) -> Result<String, ConfigError> {
    let code = required(ini, section, "CURRENCY")?;
    let valid = (1..=11).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_uppercase());
    if !valid {
        return Err(ini.invalid(section, "CURRENCY", "expected 1 to 11 upper-case letters"));
    }
    Ok(code)
}

/// An optional amount, which must be in `currency`.
pub(crate) fn amount(
    ini: &Ini,
    section: &str,
    option: &str,
    currency: &str,
) -> Result<Option<Amount>, ConfigError> {
    let Some(text) = non_empty(ini.get_string(section, option)?) else {
        return Ok(None);
    };
    let amount = Amount::from_str(&text)
        .map_err(|e| ini.invalid(section, option, format!("not an amount ({e}): {text:?}")))?;
    if amount.currency().as_str() != currency {
        // An embedded default follows the configured currency: the operator never wrote it.
        let embedded = ini
            .get_raw(section, option)
            .is_some_and(|entry| entry.origin.source == DEFAULTS_LABEL);
        let adapted = text
            .split_once(':')
            .and_then(|(_, value)| Amount::from_str(&format!("{currency}:{value}")).ok());
        return match adapted {
            Some(adapted) if embedded => Ok(Some(adapted)),
            _ => Err(ini.invalid(section, option, format!("must be in {currency}"))),
        };
    }
    Ok(Some(amount))
}

/// An optional `BASE_URL`: http(s), normalised to end in `/`.
fn base_url(ini: &Ini, section: &str) -> Result<Option<String>, ConfigError> {
    let Some(url) = non_empty(ini.get_string(section, "BASE_URL")?) else {
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ini.invalid(section, "BASE_URL", "must start with http:// or https://"));
    }
    Ok(Some(if url.ends_with('/') { url } else { url + "/" }))
}

/// A URL prefix such as `/bank/`: slashes around, normalised to both.
fn prefix(ini: &Ini, option: &str) -> Result<String, ConfigError> {
    let raw = required(ini, "talerbox", option)?;
    let inner = raw.trim_matches('/');
    let valid = !inner.is_empty()
        && inner.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if !valid {
        return Err(ini.invalid("talerbox", option, "expected a path such as /bank/"));
    }
    Ok(format!("/{inner}/"))
}

fn json_object(
    ini: &Ini,
    section: &str,
    option: &str,
    text: &str,
) -> Result<serde_json::Value, ConfigError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(ini.invalid(section, option, "expected a JSON object")),
        Err(e) => Err(ini.invalid(section, option, format!("invalid JSON: {e}"))),
    }
}

fn known_options_of(section: &str) -> Option<&'static [&'static str]> {
    if let Some(options) = kyc::known_options(section) {
        return Some(options);
    }
    KNOWN_OPTIONS.iter().find_map(|(pattern, options)| {
        let matches = match pattern.strip_suffix('*') {
            Some(stem) => section.starts_with(stem),
            None => section == *pattern,
        };
        matches.then_some(*options)
    })
}

/// The candidate closest to `name` (case-insensitively), if it is close enough to be a typo.
fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&name, &c.to_ascii_lowercase()), c))
        .filter(|(distance, _)| *distance > 0 && *distance <= 2.max(name.len() / 5))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Sections talerbox reads whose name a typo may miss (the others belong to other programs).
const SECTION_NAMES: [&str; 5] = [
    "talerbox",
    "libeufin-bank",
    "exchange",
    "exchangedb",
    "challenger",
];

fn unknown_options(ini: &Ini) -> Vec<String> {
    let mut warnings = Vec::new();
    for section in ini.sections() {
        let Some(known) = known_options_of(section) else {
            let prefixes = kyc::SECTION_PREFIXES
                .iter()
                .map(|p| p.trim_end_matches('-'));
            if SECTION_NAMES
                .iter()
                .any(|n| n.eq_ignore_ascii_case(section))
            {
                continue;
            }
            let typo = closest(section, SECTION_NAMES)
                .map(str::to_owned)
                .or_else(|| {
                    let (stem, name) = section.rsplit_once('-')?;
                    closest(stem, prefixes).map(|p| format!("{p}-{name}"))
                });
            if let Some(meant) = typo {
                warnings.push(format!(
                    "unknown section [{section}] (ignored); did you mean [{meant}]?"
                ));
            }
            continue;
        };
        for entry in ini.options(section) {
            let option = &entry.name;
            if !known.iter().any(|k| k.eq_ignore_ascii_case(option)) {
                let hint = closest(option, known.iter().copied())
                    .map(|k| format!("; did you mean {k}?"))
                    .unwrap_or_default();
                warnings.push(format!(
                    "unknown option [{section}] {option} at {}:{} (ignored){hint}",
                    entry.origin.source, entry.origin.line
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("talerbox.conf");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), &Overrides::default())
    }

    #[test]
    fn the_embedded_defaults_are_a_complete_configuration() {
        let config = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.server.data_dir, PathBuf::from("./talerbox-data"));
        assert_eq!(config.server.bank_prefix, "/bank/");
        assert_eq!(config.bank.currency, "KUDOS");
        assert_eq!(config.challenger.address_type, "email");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let kudos = config.currency_specification("KUDOS").unwrap();
        assert_eq!(kudos.num_fractional_normal_digits, 2);
    }

    #[test]
    fn a_file_overrides_defaults_and_flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.conf");
        std::fs::write(
            &path,
            "[TALERBOX]\nlisten = 0.0.0.0:9999\ndata_dir = /tmp/x\n",
        )
        .unwrap();
        let from_file = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(from_file.server.listen, "0.0.0.0:9999".parse().unwrap());
        let flags = Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: None,
        };
        let with_flags = Config::load(Some(&path), &flags).unwrap();
        assert_eq!(with_flags.server.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(with_flags.server.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn tan_options_have_defaults_values_and_checks() {
        let default = load("").unwrap().bank;
        assert_eq!(default.tan, crate::domain::tan::TanSettings::default());
        assert_eq!(default.tan_script_timeout, RelativeTime::from_seconds(30));
        assert!(default.tan_sms_env.is_empty() && default.tan_email_env.is_empty());
        let set = load(
            "[libeufin-bank]\nTAN_VALIDITY_PERIOD = 5 min\nTAN_RETRANSMISSION_PERIOD = 0 s\n\
             TAN_RETRY_COUNTER = 5\nTAN_SCRIPT_TIMEOUT = 2 s\n\
             TAN_SMS_ENV = {\"B\": \"2\", \"A\": \"1\"}\nGC_CLEAN_AFTER = 2 days\n",
        )
        .unwrap()
        .bank;
        assert_eq!(set.tan.validity, RelativeTime::from_seconds(300));
        assert_eq!(set.tan.retransmission, RelativeTime::ZERO);
        assert_eq!(set.tan.retry_counter, 5);
        assert_eq!(
            set.tan.clean_after,
            RelativeTime::from_seconds(2 * 24 * 3600)
        );
        assert_eq!(set.tan_script_timeout, RelativeTime::from_seconds(2));
        assert_eq!(
            set.tan_sms_env,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        for bad in [
            "TAN_VALIDITY_PERIOD = 0 s",
            "TAN_RETRY_COUNTER = 0",
            "TAN_SMS_ENV = KEY=VALUE",
            "TAN_EMAIL_ENV = [\"A\"]",
            "TAN_EMAIL_ENV = {\"A\": 1}",
        ] {
            let option = bad.split(' ').next().unwrap();
            let err = load(&format!("[libeufin-bank]\n{bad}\n"))
                .err()
                .unwrap_or_else(|| panic!("{bad} was accepted"))
                .to_string();
            assert!(err.contains(option), "{err}");
        }
    }

    #[test]
    fn a_bad_value_names_section_option_and_line() {
        let err = load("[talerbox]\n\nLISTEN = nowhere\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("talerbox") && err.contains("LISTEN"), "{err}");
        assert!(err.contains(":3"), "{err}");
        let err = load("[libeufin-bank]\nCURRENCY = kudos\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("CURRENCY") && err.contains(":2"), "{err}");
    }

    #[test]
    fn unknown_options_in_known_sections_are_warnings() {
        let config = load("[exchange]\nFROBNICATE = 1\n[some-other-program]\nX = 1\n").unwrap();
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("FROBNICATE"));
        assert!(!config.warnings[0].contains("did you mean"));
    }

    #[test]
    fn one_currency_and_the_defaults_follow_it() {
        let error = load("[exchange]\nCURRENCY = EUR\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("[libeufin-bank] CURRENCY = KUDOS"),
            "{error}"
        );
        let config = load("[exchange]\nCURRENCY = EUR\n[libeufin-bank]\nCURRENCY = EUR\n").unwrap();
        let rule = &config.kyc.rules.rules[0];
        assert_eq!(rule.threshold.to_string(), "EUR:1000");
        assert_eq!(config.bank.default_debt_limit.currency().as_str(), "EUR");
        // A value the operator wrote in another currency is still an error.
        let written = load(
            "[exchange]\nCURRENCY = EUR\n[libeufin-bank]\nCURRENCY = EUR\n\
             [kyc-rule-withdraw-high]\nTHRESHOLD = KUDOS:5\n",
        );
        assert!(written.is_err());
    }

    #[test]
    fn misspelled_options_and_sections_get_the_closest_name() {
        let config = load(
            "[exchange]\nENABLE_AML_PFD = YES\n[exchnage]\nX = 1\n[kyc-chek-email]\nTYPE = INFO\n[amlprogram]\nX = 1\n[exchangedb]\nMAX_AML_PROGRAM_RUNTIME = 1 s\n",
        )
        .unwrap();
        let warnings = config.warnings.join("\n");
        assert!(
            warnings.contains("ENABLE_AML_PFD")
                && warnings.contains("did you mean ENABLE_AML_PDF?"),
            "{warnings}"
        );
        assert!(
            warnings.contains("[exchnage] (ignored); did you mean [exchange]?"),
            "{warnings}"
        );
        assert!(
            warnings.contains("did you mean [kyc-check-email]?"),
            "{warnings}"
        );
    }

    #[test]
    fn prefixes_and_base_urls_are_normalised() {
        let config =
            load("[talerbox]\nBANK_PREFIX = money\nBASE_URL = https://ex.com/tb\n").unwrap();
        assert_eq!(config.server.bank_prefix, "/money/");
        assert_eq!(
            config.server.public_base_url.as_deref(),
            Some("https://ex.com/tb/")
        );
        assert!(load("[talerbox]\nBANK_PREFIX = /exchange/\n").is_err());
        assert!(load("[talerbox]\nBASE_URL = ftp://x/\n").is_err());
    }

    #[test]
    fn exchange_aml_options() {
        let defaults = Config::load(None, &Overrides::default()).unwrap();
        assert!(defaults.exchange.enable_aml_pdf);
        assert_eq!(defaults.exchange.attribute_encryption_key, None);
        assert_eq!(defaults.exchange.master_public_key, None);
        let config = load(
            "[exchange]\nENABLE_AML_PDF = NO\nATTRIBUTE_ENCRYPTION_KEY = s3cret\n\
             MASTER_PUBLIC_KEY = 56pbnra1qk5f1che3aad6k8brwv1wmkd1fz15j4qjjy968mpdqbg\n",
        )
        .unwrap();
        assert!(!config.exchange.enable_aml_pdf);
        assert_eq!(
            config.exchange.attribute_encryption_key.as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            config.exchange.master_public_key.unwrap().to_string(),
            "56PBNRA1QK5F1CHE3AAD6K8BRWV1WMKD1FZ15J4QJJY968MPDQBG"
        );
        assert!(!format!("{:?}", config.exchange).contains("s3cret"));
        let err = load("[exchange]\nMASTER_PUBLIC_KEY = nope\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("MASTER_PUBLIC_KEY"), "{err}");
        assert!(load("[exchange]\nENABLE_AML_PDF = maybe\n").is_err());
    }

    #[test]
    fn currency_sections_are_matched_by_code() {
        let config = load(
            "[libeufin-bank]\nCURRENCY = EUR\n[exchange]\nCURRENCY = EUR\n[currency-euro]\nENABLED = YES\nCODE = EUR\nNAME = Euro\nFRACTIONAL_INPUT_DIGITS = 2\nALT_UNIT_NAMES = {\"0\":\"€\"}\n",
        )
        .unwrap();
        let euro = config.currency_specification("EUR").unwrap();
        assert_eq!(euro.name, "Euro");
        assert_eq!(euro.alt_unit_names, serde_json::json!({"0": "€"}));
        let fallback = config.currency_specification("CHF").unwrap();
        assert_eq!(fallback.name, "CHF");
    }

    #[test]
    fn challenger_options_and_instances() {
        let config = Config::load(None, &Overrides::default()).unwrap();
        let default = &config.challenger;
        assert_eq!(default.section, "challenger");
        assert_eq!(default.instance_name(), None);
        assert_eq!(default.delivery, Delivery::Outbox);
        assert_eq!(
            default.validation_duration,
            RelativeTime::from_seconds(86_400)
        );
        assert_eq!(default.code_lifetime, RelativeTime::from_seconds(600));
        assert_eq!(default.max_auth_attempts, 3);
        assert!(config.challenger_instances.is_empty());
        let config = load(
            "[challenger]\nAUTH_COMMAND = /bin/true\nTOKEN_LIFETIME = forever\n\
             MAX_PIN_TRANSMISSIONS = 5\n[challenger-sms]\nADDRESS_TYPE = phone\nDELIVERY = log\n",
        )
        .unwrap();
        assert_eq!(config.challenger.delivery, Delivery::Command);
        assert!(config.challenger.token_lifetime.is_forever());
        assert_eq!(config.challenger.max_pin_transmissions, 5);
        let sms = &config.challenger_instances[0];
        assert_eq!(sms.instance_name(), Some("sms"));
        assert_eq!(sms.address_type, "phone");
        assert_eq!(sms.restrictions, serde_json::json!({}));
        assert_eq!(sms.delivery, Delivery::Log);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn bad_challenger_options_are_errors() {
        for text in [
            "[challenger]\nADDRESS_RESTRICTIONS = {\"CONTACT_EMAIL\": {\"regex\": \"(\"}}\n",
            "[challenger]\nADDRESS_RESTRICTIONS = {\"CONTACT_EMAIL\": {}}\n",
            "[challenger]\nDELIVERY = command\n",
            "[challenger]\nMAX_AUTH_ATTEMPTS = 99999999999\n",
            "[challenger]\nCODE_LIFETIME = soon\n",
            "[talerbox]\nBANK_PREFIX = /challenger-x/\n[challenger-x]\nADDRESS_TYPE = email\n",
        ] {
            assert!(load(text).is_err(), "{text}");
        }
    }
}

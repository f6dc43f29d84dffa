//! Wiring: configuration → adapters → services → HTTP router, and the server's lifecycle.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use tokio::net::TcpListener;

use crate::adapters::delivery::{CommandSender, LogSender, OutboxSender};
use crate::adapters::http::kyc::KycHttp;
use crate::adapters::http::lanes::QuickLane;
use crate::adapters::http::metrics::Metrics;
use crate::adapters::http::{
    self, AmlHttp, BankHttp, ChallengerHttp, ExchangeHttp, HttpContext, Prefixes,
};
use crate::adapters::keys::{self, KeyCheck, MasterKey};
use crate::adapters::password::{Argon2Hasher, Argon2Params};
use crate::adapters::pdf::UnicodePdfRenderer;
use crate::adapters::private_files;
use crate::adapters::system::{OsRandom, SystemClock};
use crate::config::{BankConfig, ChallengerConfig, Config, Delivery};
use crate::domain::accounts::{AccountService, BankSettings, PaytoContext, TanChannel, WireType};
use crate::domain::aml::{AmlPorts, AmlService, AmlSettings};
use crate::domain::challenges::{AddressType, ChallengeService, ChallengerSettings, Restriction};
use crate::domain::primitives::EddsaPrivateKey;
use crate::domain::tan::TanService;
use crate::ports::attribute_cipher::{AttributeCipher, TalerAttributeCipher};
use crate::ports::journal::Journal;
use crate::ports::sender::Sender;

mod decide;
mod evidence;
mod kyc;
mod lock;
mod shared;
pub mod storage;
pub mod tan;

pub use shared::migrate_from_sqlite;
pub use storage::Storage;

pub use lock::{DataDirLock, LOCK_FILE, RunningServer, lock_data_dir, running_server};

pub use decide::{DecideOutput, DecideRequest, parse_duration};

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "talerbox.sqlite3";

/// Directory of the outbox sender inside the data directory (`[challenger-NAME]` uses its
/// subdirectory `NAME`).
pub const OUTBOX_DIR: &str = "outbox";

/// How often expired challenger validations and grants are purged.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Where each component is reached from outside, each URL ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentUrls {
    pub bank: String,
    pub exchange: String,
    pub challenger: String,
}

/// One challenger instance: its configuration, its service and where its outbox is.
pub struct ChallengerInstance {
    pub config: ChallengerConfig,
    pub service: Arc<ChallengeService>,
    pub outbox: PathBuf,
}

/// An opened installation: its configuration, its (migrated) database and the services.
pub struct App {
    pub config: Config,
    pub storage: Storage,
    pub accounts: Arc<AccountService>,
    /// The bank's second factor (corebank-tan.md).
    pub tan: Arc<TanService>,
    /// `[challenger]` first, then every `[challenger-NAME]`.
    pub challengers: Vec<ChallengerInstance>,
    pub aml: Arc<AmlService>,
    pub master_key: MasterKey,
    /// Signs journal checkpoints and export proofs.
    pub journal_key: EddsaPrivateKey,
    pub journal: Arc<dyn Journal>,
    /// The attribute key, shared by AML (reading) and KYC (storing).
    cipher: Arc<dyn AttributeCipher>,
    /// The configuration file external AML programs get as `-c` (none without them).
    program_config: Option<PathBuf>,
    /// Password computations waiting for the argon2 pool (a metric).
    password_queue: prometheus_client::metrics::gauge::Gauge,
}

/// Choices made on the command line when opening an installation.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// `serve --accept-new-attribute-key`: adopt a changed attribute key.
    pub accept_new_attribute_key: bool,
}

impl App {
    /// Creates the data directory on first start and opens the database, applying
    /// migrations. Admin commands call this too, so they work before the first `serve`.
    pub fn open(config: Config) -> anyhow::Result<App> {
        App::open_with(config, StartOptions::default())
    }

    /// Like `open`; refuses a changed attribute key unless `options` accept it.
    pub fn open_with(config: Config, options: StartOptions) -> anyhow::Result<App> {
        let data_dir = &config.server.data_dir;
        private_files::create_dir(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        // Instances sharing a database start one at a time: each finds the admin account,
        // the key fingerprints and the challenger registration of the first in place.
        let _startup = shared::startup_lock(&config)?;
        shared::require_public_url(&config)?;
        let storage = Storage::open(&config)?;
        let key_dir = config.server.key_dir();
        if key_dir != data_dir.as_path() {
            private_files::create_dir(key_dir)
                .with_context(|| format!("creating the key directory {}", key_dir.display()))?;
        }
        let (accounts, password_queue) = account_service(&config, &storage)?;
        let accounts = Arc::new(accounts);
        accounts
            .ensure_admin()
            .map_err(|e| anyhow::anyhow!("creating the admin account: {e}"))?;
        let tan = Arc::new(tan_service(&config, &storage)?);
        let challengers = std::iter::once(&config.challenger)
            .chain(&config.challenger_instances)
            .map(|instance| challenger_instance(&config, instance, &storage))
            .collect::<anyhow::Result<_>>()?;
        let master_key = keys::master_key(config.exchange.master_public_key, key_dir, &OsRandom)?;
        let journal_key = keys::journal_key(key_dir, &OsRandom)?;
        if storage.is_postgres() {
            shared::guard_keys(storage.meta(), &master_key, &journal_key)?;
        }
        let journal = storage.journal();
        let cipher = attribute_cipher(&config, &storage, options)?;
        let mut config = config;
        let program_config = kyc::prepare_programs(&mut config)?;
        let aml = Arc::new(aml_service(
            &config,
            &storage,
            &master_key,
            &journal_key,
            Arc::clone(&cipher),
        )?);
        Ok(App {
            program_config,
            config,
            storage,
            accounts,
            tan,
            challengers,
            aml,
            master_key,
            journal_key,
            journal,
            cipher,
            password_queue,
        })
    }

    /// The challenger instance `[challenger-NAME]`, or `[challenger]` for `None`.
    pub fn challenger(&self, name: Option<&str>) -> anyhow::Result<&ChallengerInstance> {
        self.challengers
            .iter()
            .find(|c| c.config.instance_name() == name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no challenger instance [challenger-{}] is configured",
                    name.unwrap_or_default()
                )
            })
    }

    /// The router of all components, with URLs derived from the bound address.
    pub fn router(&self, bound: SocketAddr) -> anyhow::Result<(Router, KycHttp)> {
        let server = &self.config.server;
        let urls = self.urls(bound);
        let bank_currency = self
            .config
            .currency_specification(&self.config.bank.currency)?;
        let exchange_currency = self
            .config
            .currency_specification(&self.config.exchange.currency)?;
        // One quick lane for all services: one thread per core, whoever calls; on PostgreSQL a
        // read waits for a round trip, so more threads (bounded by the pool) keep the cores busy.
        let lane_threads = match &self.config.server.database {
            crate::config::DatabaseChoice::Sqlite { .. } => cores(),
            crate::config::DatabaseChoice::Postgres { pool_size, .. } => {
                (*pool_size as usize).clamp(cores(), 4 * cores())
            }
        };
        let quick = QuickLane::start(lane_threads)?;
        let mut challengers = Vec::new();
        for instance in &self.challengers {
            let http = ChallengerHttp::new(
                &instance.config,
                Arc::clone(&instance.service),
                Arc::clone(&quick),
            )?;
            challengers.push((format!("/{}/", instance.config.section), http));
        }
        // The first is `[challenger]`, served at the challenger prefix.
        let (_, challenger) = challengers.remove(0);
        let throttle = Arc::new(http::Throttle::new(&server.throttle));
        let metrics = Arc::new(Metrics::new(
            self.storage.facts(),
            self.password_queue.clone(),
            throttle.refusals(),
        ));
        // Resolving the providers may register the exchange with the built-in challenger.
        let service = crate::adapters::system::outside_runtime(|| {
            self.kyc_service(&urls.exchange, &urls.challenger)
        })
        .map_err(|_| anyhow::anyhow!("resolving the KYC providers panicked"))??;
        let kyc = KycHttp::new(
            Arc::new(service),
            Arc::clone(&quick),
            self.config.exchange.admin_token.clone(),
            metrics.long_polls.clone(),
        );
        let aml = AmlHttp {
            service: Arc::clone(&self.aml),
            quick: Arc::clone(&quick),
            kyc: kyc.clone(),
        };
        let context = HttpContext {
            health: self.storage.health(),
            bank: BankHttp::new(
                &self.config.bank,
                &urls.bank,
                &bank_currency,
                Arc::clone(&self.accounts),
                Arc::clone(&self.tan),
                quick,
            ),
            exchange: ExchangeHttp::new(&self.config.exchange.currency, &exchange_currency, aml),
            kyc: kyc.clone(),
            challenger,
            challenger_instances: challengers,
            prefixes: Prefixes {
                bank: server.bank_prefix.clone(),
                exchange: server.exchange_prefix.clone(),
                challenger: server.challenger_prefix.clone(),
            },
            throttle,
            metrics,
        };
        Ok((http::router(context), kyc))
    }

    /// The public base URLs of the components when the listener is bound to `bound`.
    pub fn urls(&self, bound: SocketAddr) -> ComponentUrls {
        let server = &self.config.server;
        let public = server.public_base_url(bound);
        let url = |own: &Option<String>, prefix: &str| {
            own.clone()
                .unwrap_or_else(|| format!("{public}{}", prefix.trim_start_matches('/')))
        };
        ComponentUrls {
            bank: url(&self.config.bank.base_url, &server.bank_prefix),
            exchange: url(&self.config.exchange.base_url, &server.exchange_prefix),
            challenger: url(&self.config.challenger.base_url, &server.challenger_prefix),
        }
    }
}

/// The bank's TAN service: challenges in the database, the body key in the key directory,
/// codes through the configured scripts or the outbox.
fn tan_service(config: &Config, storage: &Storage) -> anyhow::Result<TanService> {
    let bank = &config.bank;
    let data_dir = &config.server.data_dir;
    let key = keys::tan_body_key(config.server.key_dir(), &OsRandom)?;
    if storage.is_postgres() {
        shared::guard_tan_body_key(storage.meta(), &key)?;
    }
    let clock: Arc<dyn crate::ports::clock::Clock> = Arc::new(SystemClock);
    let senders = tan::tan_senders(bank, &data_dir.join(OUTBOX_DIR), Arc::clone(&clock));
    Ok(TanService::new(
        storage.tan(),
        senders,
        clock,
        Arc::new(OsRandom),
        key,
        bank.tan,
        bank.name.clone(),
    ))
}

/// The bank's account service, with argon2id passwords.
fn account_service(
    config: &Config,
    storage: &Storage,
) -> anyhow::Result<(AccountService, prometheus_client::metrics::gauge::Gauge)> {
    let bank = &config.bank;
    let hasher = Argon2Hasher::new(Argon2Params {
        memory_kib: bank.password_hash_memory_kib,
        iterations: bank.password_hash_iterations,
        parallelism: bank.password_hash_parallelism,
    })
    .context("[libeufin-bank] PASSWORD_HASH_* options")?;
    let queue = hasher.queue_gauge();
    let service = AccountService::new(
        storage.accounts(),
        Arc::new(hasher),
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        bank_settings(bank)?,
    )
    .map_err(|e| anyhow::anyhow!("starting the account service: {e}"))?;
    Ok((service, queue))
}

/// A challenger instance on its store, with the configured PIN delivery.
fn challenger_instance(
    config: &Config,
    instance: &ChallengerConfig,
    storage: &Storage,
) -> anyhow::Result<ChallengerInstance> {
    let mut outbox = config.server.data_dir.join(OUTBOX_DIR);
    if let Some(name) = instance.instance_name() {
        outbox.push(name);
    }
    let sender: Arc<dyn Sender> = match (instance.delivery, &instance.auth_command) {
        (Delivery::Command, Some(command)) => Arc::new(CommandSender::new(command)),
        (Delivery::Log, _) => Arc::new(LogSender),
        _ => Arc::new(OutboxSender::new(outbox.clone(), Arc::new(SystemClock))),
    };
    let service = ChallengeService::new(
        storage.challenges(&instance.section),
        sender,
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        challenger_settings(instance)?,
    );
    Ok(ChallengerInstance {
        config: instance.clone(),
        service: Arc::new(service),
        outbox,
    })
}

/// The rules' view of a `[challenger]` section.
fn challenger_settings(instance: &ChallengerConfig) -> anyhow::Result<ChallengerSettings> {
    let section = &instance.section;
    let address_type = AddressType::parse(&instance.address_type)
        .with_context(|| format!("[{section}] ADDRESS_TYPE"))?;
    let mut restrictions = Vec::new();
    for (field, rule) in instance.restrictions.as_object().into_iter().flatten() {
        let pattern = rule
            .get("regex")
            .and_then(serde_json::Value::as_str)
            .with_context(|| format!("[{section}] ADDRESS_RESTRICTIONS: {field}"))?;
        restrictions.push(Restriction {
            field: field.clone(),
            regex: regex::Regex::new(pattern)
                .with_context(|| format!("[{section}] ADDRESS_RESTRICTIONS: {field}"))?,
            hint: rule
                .get("hint")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        });
    }
    Ok(ChallengerSettings {
        address_type,
        restrictions,
        validation_duration: instance.validation_duration,
        validation_expiration: instance.validation_expiration,
        retransmission_frequency: instance.pin_retransmission_frequency,
        max_address_changes: instance.max_address_changes,
        max_pin_transmissions: instance.max_pin_transmissions,
        max_auth_attempts: instance.max_auth_attempts,
        code_lifetime: instance.code_lifetime,
        token_lifetime: instance.token_lifetime,
    })
}

/// Purges expired challenger validations and grants, and the bank's stale TAN challenges,
/// every `PURGE_INTERVAL`, from startup on.
async fn purge_periodically(services: Vec<Arc<ChallengeService>>, tan: Arc<TanService>) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let bank = Arc::clone(&tan);
        match tokio::task::spawn_blocking(move || bank.purge_stale()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(purged)) => tracing::info!(challenges = purged, "purged stale TAN challenges"),
            Ok(Err(e)) => tracing::warn!(error = %e, "purging TAN challenges failed"),
            Err(e) => tracing::warn!(error = %e, "purging TAN challenges failed"),
        }
        for service in &services {
            let service = Arc::clone(service);
            match tokio::task::spawn_blocking(move || service.purge_expired()).await {
                Ok(Ok(purged)) if purged.validations + purged.grants > 0 => tracing::info!(
                    validations = purged.validations,
                    grants = purged.grants,
                    "purged expired challenger data"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "purging challenger data failed"),
                Err(e) => tracing::warn!(error = %e, "purging challenger data failed"),
            }
        }
    }
}

/// The attribute cipher, with the key checked against the stored fingerprint.
fn attribute_cipher(
    config: &Config,
    storage: &Storage,
    options: StartOptions,
) -> anyhow::Result<Arc<dyn AttributeCipher>> {
    let (key, source) = keys::attribute_key(
        config.exchange.attribute_encryption_key.as_deref(),
        config.server.key_dir(),
        &OsRandom,
    )?;
    let accept = options.accept_new_attribute_key;
    match keys::guard_attribute_key(storage.meta(), &key, &source, accept)? {
        KeyCheck::ChangeAccepted => tracing::warn!(
            %source,
            "accepted a new attribute encryption key; rows under the old key show without attributes"
        ),
        KeyCheck::FirstUse | KeyCheck::Unchanged => {}
    }
    Ok(Arc::new(TalerAttributeCipher::new(key)))
}

/// The AML service on the configured stores.
fn aml_service(
    config: &Config,
    storage: &Storage,
    master_key: &MasterKey,
    journal_key: &EddsaPrivateKey,
    cipher: Arc<dyn AttributeCipher>,
) -> anyhow::Result<AmlService> {
    let exchange = &config.exchange;
    let stores = storage.aml();
    let ports = AmlPorts {
        officers: stores.officers,
        attributes: stores.attributes,
        decisions: stores.decisions,
        kyc: storage.kyc(),
        cipher,
        pdf: Arc::new(UnicodePdfRenderer::new()?),
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
        journal: storage.journal(),
        journal_key: journal_key.clone(),
    };
    let settings = AmlSettings {
        master_pub: master_key.public,
        pdf_enabled: exchange.enable_aml_pdf,
        default_rules: serde_json::to_value(config.kyc.rules.default_rule_set())?,
        measures: crate::domain::aml::measures_json(&config.kyc.rules),
    };
    Ok(AmlService::new(ports, settings))
}

/// The rules' view of `[libeufin-bank]`.
fn bank_settings(bank: &BankConfig) -> anyhow::Result<BankSettings> {
    let currency = bank.default_debt_limit.currency().clone();
    let tan_channels = [
        (&bank.tan_sms, TanChannel::Sms),
        (&bank.tan_email, TanChannel::Email),
    ]
    .into_iter()
    .filter_map(|(script, channel)| script.as_ref().map(|_| channel))
    .collect();
    Ok(BankSettings {
        currency,
        wire_type: if bank.wire_type == "iban" {
            WireType::Iban
        } else {
            WireType::XTalerBank
        },
        payto: PaytoContext {
            bic: bank.iban_payto_bic.clone(),
            x_taler_bank_hostname: bank
                .x_taler_bank_payto_hostname
                .clone()
                .unwrap_or_else(|| "localhost".to_owned()),
        },
        default_debt_limit: bank.default_debt_limit.clone(),
        registration_bonus: Some(bank.registration_bonus.clone()).filter(|b| !b.is_zero()),
        allow_registration: bank.allow_registration,
        allow_deletion: bank.allow_account_deletion,
        allow_edit_name: bank.allow_edit_name,
        allow_edit_cashout: bank.allow_edit_cashout_payto_uri,
        tan_channels,
    })
}

/// Cores available to this process.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The database file of a configuration.
pub fn database_path(config: &Config) -> PathBuf {
    config.server.data_dir.join(DATABASE_FILE)
}

/// Refuses to go on unless the data directory holds an installation (its database), so an
/// admin command pointed at the wrong directory never creates a second installation there.
pub fn require_installation(config: &Config) -> anyhow::Result<()> {
    // A PostgreSQL installation is its database, which the next step opens.
    if config.server.database.is_postgres() || database_path(config).exists() {
        return Ok(());
    }
    anyhow::bail!(
        "no talerbox installation in the data directory {} (it holds no {DATABASE_FILE}); \
         point to one with --data-dir DIR or TALERBOX_DATA_DIR, or create one with \
         `talerbox init` or `talerbox serve`",
        config.server.data_dir.display()
    )
}

/// Serves the app on `listener` until `shutdown` resolves; in-flight requests are finished.
/// Prints `listening on http://ADDR/` to standard error once connections are accepted.
pub async fn serve(
    app: &App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = listener.local_addr()?;
    private_files::warn_about_loose_modes(&app.config.server.data_dir);
    let (router, kyc) = app.router(bound)?;
    let watcher = kyc.watch_store();
    // On PostgreSQL, changes made through other instances wake this one's long polls at once
    // (the watcher above stays as the safety net).
    let _listener = match &app.config.server.database {
        crate::config::DatabaseChoice::Postgres { uri, .. } => {
            let changes = std::sync::Arc::downgrade(&kyc.changes);
            let on_change = move || {
                if let Some(changes) = changes.upgrade() {
                    changes.send_modify(|generation| *generation += 1);
                }
            };
            Some(crate::adapters::postgres::ChangeListener::start(
                uri, on_change,
            )?)
        }
        crate::config::DatabaseChoice::Sqlite { .. } => None,
    };
    // Scripts and tests wait for this line; a closed stderr must not stop the server.
    let services = app.challengers.iter().map(|c| Arc::clone(&c.service));
    let purge = tokio::spawn(purge_periodically(services.collect(), Arc::clone(&app.tan)));
    let evidence = tokio::spawn(evidence::maintain(app.evidence_settings()));
    let urls = app.urls(bound);
    app.aml.set_exchange_url(urls.exchange.clone());
    let instances: Vec<String> = app
        .challengers
        .iter()
        .skip(1)
        .map(|c| {
            let own = c.config.base_url.clone();
            let public = app.config.server.public_base_url(bound);
            let url = own.unwrap_or_else(|| format!("{public}{}/", c.config.section));
            format!("{} {url}", c.config.section)
        })
        .collect();
    tracing::info!(
        data_dir = %app.config.server.data_dir.display(),
        database = %app.storage.describe(),
        config_files = ?app.config.files(),
        bank = %urls.bank,
        exchange = %urls.exchange,
        challenger = %urls.challenger,
        challenger_instances = ?instances,
        "talerbox started"
    );
    let _ = writeln!(std::io::stderr(), "talerbox: listening on http://{bound}/");
    let limits = app.config.server.limits;
    let served = http::serve(listener, router, limits, shutdown).await;
    purge.abort();
    watcher.abort();
    evidence.abort();
    evidence::checkpoint_now(app.evidence_settings()).await;
    served?;
    tracing::info!("server stopped");
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers at once (so a signal that arrives right after
/// the "listening" line is not lost) and returns a future that resolves on either.
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutdown requested; finishing in-flight requests");
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested; finishing in-flight requests");
    })
}

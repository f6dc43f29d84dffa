//! Wiring of the exchange's KYC process: provider URLs, the built-in challenger as provider,
//! and the service itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::App;
use crate::adapters::oauth::UreqProviderHttp;
use crate::adapters::programs::{ProcessProgramRunner, introspect};
use crate::adapters::system::{OsRandom, SystemClock};
use crate::config::kyc::ProviderConfig;
use crate::domain::kyc::{KycService, OAuth2Provider, ProgramCommand};
use crate::domain::primitives::base32;
use crate::ports::random::{Random, random_bytes};

/// Writes the effective configuration for external AML programs (their `-c`) and asks
/// each what it needs; `None` when every program is built in.
pub(super) fn prepare_programs(
    config: &mut crate::config::Config,
) -> anyhow::Result<Option<PathBuf>> {
    let external: Vec<(String, String)> = config
        .kyc
        .rules
        .programs
        .values()
        .filter_map(|p| match &p.command {
            ProgramCommand::External(command) => Some((p.name.clone(), command.clone())),
            ProgramCommand::Builtin(_) => None,
        })
        .collect();
    if external.is_empty() {
        return Ok(None);
    }
    let path = config.server.data_dir.join("effective.conf");
    write_private(&path, config.ini.dump().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    let config_arg = path.display().to_string();
    for (name, command) in external {
        let needs = introspect(&command, Some(&config_arg))
            .map_err(|e| anyhow::anyhow!("[aml-program-{name}] COMMAND: {e}"))?;
        if let Some(program) = config.kyc.rules.programs.get_mut(&name) {
            program.required_context = needs.context;
            program.required_attributes = needs.attributes;
            program.required_inputs = needs.inputs;
        }
    }
    check_fallback_inputs(&config.kyc.rules)?;
    Ok(Some(path))
}

/// A fallback measure's program may request no inputs (it is given `{}`).
fn check_fallback_inputs(rules: &crate::domain::kyc::KycRules) -> anyhow::Result<()> {
    let fallbacks = rules
        .checks
        .values()
        .map(|c| (format!("kyc-check-{}", c.name), &c.fallback))
        .chain(
            rules
                .programs
                .values()
                .map(|p| (format!("aml-program-{}", p.name), &p.fallback)),
        );
    for (section, fallback) in fallbacks {
        let program = rules
            .measures
            .get(fallback)
            .and_then(|m| rules.programs.get(&m.program));
        if program.is_some_and(|p| !p.required_inputs.is_empty()) {
            anyhow::bail!(
                "[{section}] FALLBACK: the program of measure {fallback} must request no inputs"
            );
        }
    }
    Ok(())
}

/// Writes a file only its owner may read (it holds the whole configuration).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    crate::adapters::private_files::file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?
        .write_all(bytes)
}

/// Where a provider's client registration with the built-in challenger is remembered.
fn client_key(provider: &str) -> String {
    format!("kyc_challenger_client:{provider}")
}

impl App {
    /// The KYC service of an exchange at `exchange_url`, whose built-in challenger is at
    /// `challenger_url` (both ending in `/`). Resolving the providers may register the
    /// exchange with the built-in challenger: on PostgreSQL that happens under the startup
    /// lock, so that instances starting together register it once.
    pub fn kyc_service(
        &self,
        exchange_url: &str,
        challenger_url: &str,
    ) -> anyhow::Result<KycService> {
        let _startup = super::shared::startup_lock(&self.config)?;
        let mut rules = self.config.kyc.rules.clone();
        for provider in &self.config.kyc.providers {
            let resolved = self.resolve_provider(provider, exchange_url, challenger_url)?;
            rules.providers.insert(resolved.name.clone(), resolved);
        }
        Ok(self.kyc_service_with(rules, exchange_url))
    }

    /// A KYC service that only opens requirements (the admin CLI): it never talks to a
    /// provider, so no provider is resolved and no challenger client registered, whatever
    /// address the running server has.
    pub fn kyc_trigger_service(&self, exchange_url: &str) -> KycService {
        self.kyc_service_with(self.config.kyc.rules.clone(), exchange_url)
    }

    fn kyc_service_with(
        &self,
        rules: crate::domain::kyc::KycRules,
        exchange_url: &str,
    ) -> KycService {
        KycService::new(
            self.storage.kyc(),
            Arc::new(UreqProviderHttp::default()),
            Arc::clone(&self.cipher),
            Arc::new(SystemClock),
            Arc::new(OsRandom),
            rules,
            exchange_url.to_owned(),
        )
        .with_officers(self.storage.aml().officers)
        .with_programs(
            Arc::new(ProcessProgramRunner),
            self.program_config
                .as_ref()
                .map(|p| p.display().to_string()),
        )
        .with_kyc_enabled(self.config.exchange.enable_kyc)
    }

    /// Fills a provider's unset URLs from the built-in challenger and the exchange, and its
    /// empty client id by registering the exchange with the built-in challenger.
    fn resolve_provider(
        &self,
        provider: &ProviderConfig,
        exchange_url: &str,
        challenger_url: &str,
    ) -> anyhow::Result<OAuth2Provider> {
        let url = |own: &Option<String>, path: &str| {
            own.clone()
                .unwrap_or_else(|| format!("{challenger_url}{path}"))
        };
        let authorize_url = url(&provider.authorize_url, "authorize#setup");
        let token_url = url(&provider.token_url, "token");
        let info_url = url(&provider.info_url, "info");
        let built_in = [&authorize_url, &token_url, &info_url]
            .iter()
            .all(|u| u.starts_with(challenger_url));
        let (client_id, client_secret) = match (&provider.client_id, built_in) {
            (Some(id), _) => (
                id.clone(),
                provider.client_secret.clone().unwrap_or_default(),
            ),
            (None, true) => self.builtin_client(&provider.name, exchange_url)?,
            (None, false) => anyhow::bail!(
                "[kyc-provider-{}] KYC_OAUTH2_CLIENT_ID: required for a provider other than the built-in challenger",
                provider.name
            ),
        };
        Ok(OAuth2Provider {
            name: provider.name.clone(),
            authorize_url,
            token_url,
            info_url,
            client_id,
            client_secret,
            post_url: provider
                .post_url
                .clone()
                .unwrap_or_else(|| format!("{exchange_url}kyc-done")),
            converter: provider.converter.clone(),
            validity: provider.validity,
        })
    }

    /// The exchange's client at the built-in challenger for `provider`: one per installation,
    /// registered at the first start. A later start on another address keeps the client and
    /// points its redirect URI at the new one; only a deleted client is registered afresh.
    fn builtin_client(
        &self,
        provider: &str,
        exchange_url: &str,
    ) -> anyhow::Result<(String, String)> {
        let redirect_uri = crate::domain::kyc::redirect_uri(exchange_url, provider);
        let challenger = &self.challenger(None)?.service;
        let key = client_key(provider);
        let stored = self.storage.meta().get(&key)?;
        if let Some((id, secret)) = stored.as_deref().and_then(|s| s.split_once(' ')) {
            let current = challenger.clients().map_err(|e| anyhow::anyhow!("{e}"))?;
            let kept = current
                .iter()
                .find(|c| c.id.to_string() == id && c.secret_matches(secret));
            if let Some(client) = kept {
                if client.redirect_uri != redirect_uri {
                    challenger
                        .set_redirect_uri(client.id, &redirect_uri)
                        .map_err(|e| anyhow::anyhow!("updating the exchange's client: {e}"))?;
                    tracing::info!(
                        provider,
                        client_id = client.id,
                        "the exchange's challenger client follows the exchange's new address"
                    );
                }
                return Ok((id.to_owned(), secret.to_owned()));
            }
        }
        let secret = format!(
            "secret-token:{}",
            base32::encode(&random_bytes::<32>(&OsRandom as &dyn Random))
        );
        let client = challenger
            .add_client(&secret, &redirect_uri)
            .map_err(|e| anyhow::anyhow!("registering the exchange with the challenger: {e}"))?;
        self.storage
            .meta()
            .set(&key, &format!("{} {secret}", client.id), None)
            .context("remembering the exchange's challenger client")?;
        tracing::info!(
            provider,
            client_id = client.id,
            "registered the exchange with the built-in challenger"
        );
        Ok((client.id.to_string(), secret))
    }
}

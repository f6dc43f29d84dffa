//! Wiring: configuration → adapters → services → HTTP router, and the server's lifecycle.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use tokio::net::TcpListener;

use crate::adapters::http::{self, BankHttp, ChallengerHttp, ExchangeHttp, HttpContext, Prefixes};
use crate::adapters::sqlite::{Database, DbOptions};
use crate::config::Config;

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "talerbox.sqlite3";

/// An opened installation: its configuration and its (migrated) database.
pub struct App {
    pub config: Config,
    pub db: Arc<Database>,
}

impl App {
    /// Creates the data directory on first start and opens the database, applying
    /// migrations. Admin commands call this too, so they work before the first `serve`.
    pub fn open(config: Config) -> anyhow::Result<App> {
        let data_dir = &config.server.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        let path = database_path(&config);
        let db = Database::open(&path, &DbOptions::default())
            .with_context(|| format!("opening the database {}", path.display()))?;
        Ok(App {
            config,
            db: Arc::new(db),
        })
    }

    /// The router of all components, with URLs derived from the bound address.
    pub fn router(&self, bound: SocketAddr) -> anyhow::Result<Router> {
        let server = &self.config.server;
        let public = server.public_base_url(bound);
        let component_url = |own: &Option<String>, prefix: &str| {
            own.clone()
                .unwrap_or_else(|| format!("{public}{}", prefix.trim_start_matches('/')))
        };
        let bank_url = component_url(&self.config.bank.base_url, &server.bank_prefix);
        let bank_currency = self
            .config
            .currency_specification(&self.config.bank.currency)?;
        let exchange_currency = self
            .config
            .currency_specification(&self.config.exchange.currency)?;
        let context = HttpContext {
            health: Arc::clone(&self.db) as Arc<dyn crate::ports::health::HealthProbe>,
            bank: BankHttp::new(&self.config.bank, &bank_url, &bank_currency),
            exchange: ExchangeHttp::new(&self.config.exchange.currency, &exchange_currency),
            challenger: ChallengerHttp::new(&self.config.challenger),
            prefixes: Prefixes {
                bank: server.bank_prefix.clone(),
                exchange: server.exchange_prefix.clone(),
                challenger: server.challenger_prefix.clone(),
            },
        };
        Ok(http::router(context))
    }
}

/// The database file of a configuration.
pub fn database_path(config: &Config) -> PathBuf {
    config.server.data_dir.join(DATABASE_FILE)
}

/// Serves the app on `listener` until `shutdown` resolves; in-flight requests are finished.
/// Prints `listening on http://ADDR/` to standard error once connections are accepted.
pub async fn serve(
    app: &App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = listener.local_addr()?;
    let router = app.router(bound)?;
    // Scripts and tests wait for this line; a closed stderr must not stop the server.
    let _ = writeln!(std::io::stderr(), "talerbox: listening on http://{bound}/");
    http::serve(listener, router, shutdown).await?;
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

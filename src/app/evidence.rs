//! The server's evidence maintenance: journal checkpoints every
//! `[talerbox] JOURNAL_CHECKPOINT_INTERVAL` and at shutdown, and the retention purge with the
//! periodic maintenance (compliance-evidence.md §1.5, §4).

use std::sync::Arc;
use std::time::Duration;

use super::App;
use crate::adapters::system::SystemClock;
use crate::domain::evidence::Actor;
use crate::domain::primitives::{EddsaPrivateKey, RelativeTime};
use crate::ports::clock::Clock;
use crate::ports::journal::Journal;
use crate::ports::retention::RetentionStore;

/// How often due attribute rows are looked for.
const RETENTION_INTERVAL: Duration = Duration::from_secs(5 * 60);

#[derive(Clone)]
pub struct EvidenceSettings {
    journal: Arc<dyn Journal>,
    key: EddsaPrivateKey,
    retention_store: Arc<dyn RetentionStore>,
    checkpoint_interval: Option<Duration>,
    retention: RelativeTime,
}

impl App {
    pub fn evidence_settings(&self) -> EvidenceSettings {
        EvidenceSettings {
            journal: Arc::clone(&self.journal),
            key: self.journal_key.clone(),
            retention_store: self.storage.retention(),
            checkpoint_interval: self.config.server.journal_checkpoint_interval,
            retention: self.config.exchange.attribute_retention,
        }
    }
}

/// Runs until aborted: purges at startup and every [`RETENTION_INTERVAL`], checkpoints every
/// interval (a checkpoint is only appended when entries came in since the last one).
pub async fn maintain(settings: EvidenceSettings) {
    let mut purge = tokio::time::interval(RETENTION_INTERVAL);
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let period = settings
        .checkpoint_interval
        .unwrap_or(Duration::from_secs(86_400));
    let mut checkpoint = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = purge.tick() => purge_due(settings.clone()).await,
            _ = checkpoint.tick(), if settings.checkpoint_interval.is_some() => {
                checkpoint_now(settings.clone()).await;
            }
        }
    }
}

async fn purge_due(settings: EvidenceSettings) {
    let purged = tokio::task::spawn_blocking(move || {
        settings.retention_store.purge_attributes(
            SystemClock.now(),
            settings.retention,
            Actor::system(),
            false,
        )
    })
    .await;
    match purged {
        Ok(Ok(purged)) if purged.rows > 0 => tracing::info!(
            rows = purged.rows,
            accounts = purged.accounts,
            "purged attribute rows past their retention"
        ),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the retention purge failed"),
        Err(e) => tracing::warn!(error = %e, "the retention purge failed"),
    }
}

/// Appends a checkpoint if entries came in since the last one.
pub async fn checkpoint_now(settings: EvidenceSettings) {
    let done =
        tokio::task::spawn_blocking(move || settings.journal.checkpoint(&settings.key)).await;
    match done {
        Ok(Ok(Some(serial))) => tracing::info!(serial, "journal checkpoint"),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the journal checkpoint failed"),
        Err(e) => tracing::warn!(error = %e, "the journal checkpoint failed"),
    }
}

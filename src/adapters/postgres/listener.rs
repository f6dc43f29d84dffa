//! Wake-ups across instances: a thread on a connection of its own (outside the pool) listens
//! on the KYC change channel and reports every notification. After a lost connection it
//! reconnects with a growing backoff and reports once, since a change may have been missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;
use postgres::{Client, NoTls};

use super::kyc::CHANNEL;
use super::parse_uri;
use crate::ports::StoreError;

/// How often the thread looks at its stop flag while no notification arrives.
const STOP_CHECK: Duration = Duration::from_millis(200);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const LONGEST_BACKOFF: Duration = Duration::from_secs(30);

/// The listening thread; stopped when dropped.
pub struct ChangeListener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ChangeListener {
    /// Starts listening on the database named by `uri`; `on_change` runs on the listener's
    /// thread for every notification. A database that is down is retried in the background.
    pub fn start(
        uri: &str,
        on_change: impl Fn() + Send + 'static,
    ) -> Result<ChangeListener, StoreError> {
        let config = parse_uri(uri).map_err(StoreError::Internal)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("kyc-listener".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || listen(&config, &stop, &on_change)
            })
            .map_err(|e| StoreError::Internal(format!("starting the KYC listener: {e}")))?;
        Ok(ChangeListener {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ChangeListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn listen(config: &postgres::Config, stop: &AtomicBool, on_change: &dyn Fn()) {
    let mut backoff = FIRST_BACKOFF;
    let mut connected_before = false;
    while !stop.load(Ordering::Relaxed) {
        let mut client = match subscribe(config) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %StoreError::from(e), retry_in = ?backoff, "KYC listener cannot connect");
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(LONGEST_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        if connected_before {
            on_change();
        }
        connected_before = true;
        if let Err(e) = relay(&mut client, stop, on_change) {
            tracing::warn!(error = %StoreError::from(e), "KYC listener lost its connection");
        }
    }
}

fn subscribe(config: &postgres::Config) -> Result<Client, postgres::Error> {
    let mut client = config.connect(NoTls)?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    Ok(client)
}

/// Reports notifications until told to stop (Ok) or the connection fails (Err).
fn relay(
    client: &mut Client,
    stop: &AtomicBool,
    on_change: &dyn Fn(),
) -> Result<(), postgres::Error> {
    while !stop.load(Ordering::Relaxed) {
        {
            let mut notifications = client.notifications();
            let mut pending = notifications.timeout_iter(STOP_CHECK);
            while pending.next()?.is_some() {
                on_change();
            }
        }
        if client.is_closed() {
            // A closed client fails this with the cause.
            client.simple_query("")?;
        }
    }
    Ok(())
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let step = left.min(STOP_CHECK);
        std::thread::sleep(step);
        left -= step;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::{Duration, Instant};

    use super::ChangeListener;
    use crate::adapters::postgres::{PgKycStore, testing};
    use crate::domain::evidence::RequirementTrigger;
    use crate::domain::kyc::{AccessToken, LegitimizationMeasures};
    use crate::domain::primitives::{NormalizedPaytoHash, Timestamp};
    use crate::ports::kyc::{ActivateMeasures, KycStore};

    /// Listener tests cut listening connections: one at a time, so that none is fooled by
    /// the report of another's reconnection.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    fn activation(n: u8) -> ActivateMeasures {
        ActivateMeasures {
            h_payto: NormalizedPaytoHash([n; 32]),
            normalized_payto: format!("payto://x-taler-bank/localhost/u{n}"),
            full_payto: None,
            new_token: AccessToken([n; 32]),
            account_pub: None,
            measures: LegitimizationMeasures {
                measures: Vec::new(),
                is_and_combinator: false,
                verboten: false,
            },
            display_priority: 0,
            trigger: RequirementTrigger::Rule,
            now: Timestamp::from_seconds(1_000).unwrap(),
        }
    }

    #[test]
    fn a_write_on_the_store_wakes_the_listener() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let Some((schema, db)) = testing::database() else {
            return;
        };
        let (woken, wake_ups) = mpsc::channel();
        let listener = ChangeListener::start(&schema.uri(), move || {
            let _ = woken.send(());
        })
        .unwrap();
        let store = PgKycStore::new(Arc::clone(&db));
        // Other tests of the cluster notify the same channel: wait for this write's own
        // notification by writing until one arrives after it (at most a few tries).
        let mut woke = false;
        for n in 1..=3 {
            while wake_ups.try_recv().is_ok() {}
            store.activate_measures(activation(n)).unwrap();
            if wake_ups.recv_timeout(Duration::from_secs(2)).is_ok() {
                woke = true;
                break;
            }
        }
        assert!(woke, "no notification within 2 s of a write");
        drop(listener);
    }

    #[test]
    fn a_lost_connection_is_replaced_and_reported() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let Some((schema, db)) = testing::database() else {
            return;
        };
        let (woken, wake_ups) = mpsc::channel();
        let _listener = ChangeListener::start(&schema.uri(), move || {
            let _ = woken.send(());
        })
        .unwrap();
        // Cut the listener's connection from the server side, once it is listening.
        let mut admin = schema.connect();
        let mut admin = admin.session();
        let deadline = Instant::now() + Duration::from_secs(5);
        let terminated = loop {
            let row = admin
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE query = 'LISTEN talerbox_kyc' AND pid <> pg_backend_pid()",
                    &[],
                )
                .unwrap();
            let count: i64 = row.try_get(0).unwrap();
            if count > 0 || Instant::now() > deadline {
                break count;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(terminated > 0, "the listener never listened");
        while wake_ups.try_recv().is_ok() {}
        // Reconnected, it reports once (a change may have been missed), then listens again.
        wake_ups.recv_timeout(Duration::from_secs(5)).unwrap();
        let store = PgKycStore::new(db);
        store.activate_measures(activation(1)).unwrap();
        wake_ups.recv_timeout(Duration::from_secs(2)).unwrap();
    }

    #[test]
    fn a_listener_stops_when_dropped_even_without_a_database() {
        let listener =
            ChangeListener::start("postgres:///none?host=/nonexistent-socket-dir", || {}).unwrap();
        let started = std::time::Instant::now();
        drop(listener);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

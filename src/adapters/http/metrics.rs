//! Operations endpoints: `GET /metrics` (OpenMetrics text format) and `GET /readyz`.
//!
//! Request counts and latencies are labelled with the matched route template, never the raw
//! path (which may carry tokens, ids and addresses); requests that match no route share the
//! route label `unmatched`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::throttle::RefusalLabels;
use crate::adapters::sqlite::WriterStats;
use crate::ports::health::HealthProbe;

/// A writer busy with one batch for longer than this is stuck: the server is not ready. A
/// batch normally takes milliseconds; one that waits for a lock held by another process
/// waits up to the busy timeout (5 s) and crosses this limit on the way.
pub const WRITER_STALL_LIMIT: Duration = Duration::from_secs(3);

/// The content type of what the encoder writes: the OpenMetrics text format (Prometheus' text
/// exposition format with `# EOF` and `_total` counters), which Prometheus scrapes natively.
const TEXT_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

type LatencyFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The server's metrics, shared behind an `Arc`; the parts that report hold clones of its
/// gauges and families.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    /// kyc-info and kyc-check long polls waiting for a change.
    pub long_polls: Gauge,
    database_bytes: Gauge,
    database: Arc<dyn DatabaseFacts>,
}

/// What the metrics read of the database at scrape time.
pub trait DatabaseFacts: Send + Sync {
    fn writer_stats(&self) -> &WriterStats;
    fn size_on_disk(&self) -> u64;
}

impl DatabaseFacts for crate::adapters::sqlite::Database {
    fn writer_stats(&self) -> &WriterStats {
        crate::adapters::sqlite::Database::writer_stats(self)
    }
    fn size_on_disk(&self) -> u64 {
        crate::adapters::sqlite::Database::size_on_disk(self)
    }
}

impl Metrics {
    /// Registers every metric; the sources are the argon2 pool's gauge of waiting
    /// computations and the throttle's count of refusals.
    pub fn new(
        database: Arc<dyn DatabaseFacts>,
        password_queue: Gauge,
        throttled: Family<RefusalLabels, Counter>,
    ) -> Metrics {
        let mut registry = Registry::with_prefix("talerbox");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, matched route and status",
            requests.clone(),
        );
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from routing to the response head, by method, matched route and status",
            latency.clone(),
        );
        registry.register(
            "throttled_requests",
            "Requests refused with 429 because their kind of guess was over its budget",
            throttled.clone(),
        );
        let long_polls = Gauge::default();
        registry.register(
            "long_polls_waiting",
            "kyc-info and kyc-check long polls waiting for a change",
            long_polls.clone(),
        );
        registry.register(
            "password_hash_queue",
            "Password hashes and verifications waiting for a slot of the argon2 pool",
            password_queue,
        );
        let stats = database.writer_stats();
        registry.register(
            "writer_queue_depth",
            "Write jobs waiting for the SQLite writer",
            stats.queued.clone(),
        );
        registry.register(
            "writer_batch_size",
            "Write jobs per group commit",
            stats.batch_sizes.clone(),
        );
        let database_bytes = Gauge::default();
        registry.register(
            "database_size_bytes",
            "Size of the SQLite database file and its write-ahead log",
            database_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            long_polls,
            database_bytes,
            database,
        }
    }

    /// The text exposition of every metric, as of now.
    fn render(&self) -> Result<String, std::fmt::Error> {
        let size = self.database.size_on_disk();
        self.database_bytes
            .set(i64::try_from(size).unwrap_or(i64::MAX));
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Whether the writer is making progress.
    fn writer_stalled(&self) -> bool {
        self.database.writer_stats().stalled(WRITER_STALL_LIMIT)
    }
}

/// A long poll counted in the gauge for as long as it waits (also when the client leaves).
pub struct Waiting(Gauge);

impl Waiting {
    pub fn start(gauge: &Gauge) -> Waiting {
        gauge.inc();
        Waiting(gauge.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Middleware (per route): counts the request and its latency under its route template.
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    metrics.requests.get_or_create(&labels).inc();
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Operations>) -> Response {
    match state.metrics.render() {
        Ok(text) => ([(CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// What the operations endpoints look at.
#[derive(Clone)]
pub struct Operations {
    pub metrics: Arc<Metrics>,
    pub health: Arc<dyn HealthProbe>,
}

/// `GET /readyz`: 200 while the database answers and the writer makes progress, else 503
/// with the reason. (Migrations run before the listener is bound, so no request can arrive
/// during them.)
pub async fn readyz(State(state): State<Operations>) -> Response {
    if state.metrics.writer_stalled() {
        return not_ready(&format!(
            "the database writer has been busy with one batch for over {} s",
            WRITER_STALL_LIMIT.as_secs()
        ));
    }
    let health = Arc::clone(&state.health);
    match tokio::task::spawn_blocking(move || health.check()).await {
        Ok(Ok(())) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Ok(Err(cause)) => not_ready(&cause.to_string()),
        Err(join) => not_ready(&join.to_string()),
    }
}

fn not_ready(reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "status": "not ready", "reason": reason })),
    )
        .into_response()
}

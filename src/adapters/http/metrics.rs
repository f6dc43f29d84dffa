//! Operations endpoints: `GET /metrics` (OpenMetrics text format) and `GET /readyz`.
//!
//! Request counts and latencies are labelled with the matched route template, never the raw
//! path (which may carry tokens, ids and addresses); requests that match no route share the
//! route label `unmatched`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{MatchedPath, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
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
    method: MethodLabel,
    route: RouteLabel,
    status: u16,
}

/// The request method as a label value (cloning a standard method copies no string).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct MethodLabel(Method);

impl EncodeLabelValue for MethodLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.0.as_str())
    }
}

/// The matched route template as a label value, `unmatched` for requests that match no route
/// (cloning a matched path copies no string).
#[derive(Clone, Debug)]
struct RouteLabel(Option<MatchedPath>);

impl RouteLabel {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for RouteLabel {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RouteLabel {}

impl std::hash::Hash for RouteLabel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
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

    /// Counts one answered request and its latency under its method, route template and
    /// status.
    pub fn record(
        &self,
        method: &Method,
        route: Option<&MatchedPath>,
        status: StatusCode,
        latency: Duration,
    ) {
        let labels = RequestLabels {
            method: MethodLabel(method.clone()),
            route: RouteLabel(route.cloned()),
            status: status.as_u16(),
        };
        self.latency
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
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

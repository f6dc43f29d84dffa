//! The HTTP adapter: one listener, the components mounted under their prefixes, shared rules
//! for bodies, errors, CORS and tracing.
//!
//! Connections are accepted and timed out by `server` (connection cap, header and idle
//! timeouts); everything below runs per request.
//!
//! Middleware order, outermost first: CORS (answers preflights before routing) → trailing
//! slash trimming → the global body buffer/limit/inflation (before routing, so any oversized
//! request is refused whatever its path) → routing → per-route observation (span, metrics and
//! log line, which record the matched route template, never the raw path, which may carry
//! tokens) → per-service guess throttling and body limits.

pub mod aml;
mod bank;
pub mod body;
mod challenger;
mod cors;
pub mod error;
mod exchange;
pub mod kyc;
mod kyc_wallet;
pub mod lanes;
pub mod metrics;
mod negotiate;
mod observe;
mod pages;
mod server;
pub mod throttle;
mod unimplemented;
mod web;

#[cfg(test)]
mod fuzz_tests;

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use crate::config::ConnectionLimits;
use crate::domain::primitives::ErrorCode;
use crate::ports::health::HealthProbe;
use body::{BodyLimit, BodyRules, GLOBAL_BODY_LIMIT};
use error::ApiError;
use throttle::Guess;

/// Everything the HTTP layer needs, resolved at startup.
#[derive(Clone)]
pub struct HttpContext {
    pub health: Arc<dyn HealthProbe>,
    pub bank: bank::BankHttp,
    pub exchange: exchange::ExchangeHttp,
    /// The exchange's KYC routes, served under the exchange prefix.
    pub kyc: kyc::KycHttp,
    /// `[challenger]`, at the challenger prefix.
    pub challenger: challenger::ChallengerHttp,
    /// Each `[challenger-NAME]` with its prefix `/challenger-NAME/`.
    pub challenger_instances: Vec<(String, challenger::ChallengerHttp)>,
    pub prefixes: Prefixes,
    /// Budgets of failed guesses, shared by all components.
    pub throttle: Arc<throttle::Throttle>,
    pub metrics: Arc<metrics::Metrics>,
}

/// Where each component is mounted, e.g. `/bank/`.
#[derive(Debug, Clone)]
pub struct Prefixes {
    pub bank: String,
    pub exchange: String,
    pub challenger: String,
}

pub use aml::AmlHttp;
pub use bank::BankHttp;
pub use challenger::ChallengerHttp;
pub use exchange::ExchangeHttp;
pub use throttle::Throttle;

/// Builds the complete router of all components.
pub fn router(context: HttpContext) -> Router {
    let mount = |prefix: &str| prefix.trim_end_matches('/').to_owned();
    let throttle = context.throttle;
    let guard = |guess: Guess| throttle::GuardLayer {
        throttle: Arc::clone(&throttle),
        guess,
    };
    let operations = metrics::Operations {
        metrics: Arc::clone(&context.metrics),
        health: Arc::clone(&context.health),
    };
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .with_state(Arc::clone(&context.health))
        .route("/readyz", get(metrics::readyz))
        .route("/metrics", get(metrics::metrics))
        .with_state(operations)
        .nest(
            &mount(&context.prefixes.bank),
            bank::router(context.bank).route_layer(guard(Guess::BankPassword)),
        )
        .nest(
            &mount(&context.prefixes.exchange),
            exchange::router(context.exchange)
                .merge(kyc::router(context.kyc))
                .route_layer(guard(Guess::OfficerSignature))
                // Static pages: outside the guess budget, nothing to guess there.
                .merge(web::router(&context.prefixes.exchange)),
        )
        .nest(
            &mount(&context.prefixes.challenger),
            challenger::router(context.challenger).route_layer(guard(Guess::Pin)),
        );
    for (prefix, instance) in context.challenger_instances {
        router = router.nest(
            &mount(&prefix),
            challenger::router(instance).route_layer(guard(Guess::Pin)),
        );
    }
    router
        .fallback(error::endpoint_unknown)
        // Also lifts axum's 2 MiB default body limit: our own buffer enforces the limits.
        .layer(observe::ObserveLayer {
            metrics: context.metrics,
        })
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then finishes
/// in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let rules = BodyRules {
        limit: GLOBAL_BODY_LIMIT,
        read_timeout: limits.body_read_timeout,
    };
    let app =
        cors::AnyOrigin.layer(NormalizePathLayer::trim_trailing_slash().layer(rules.layer(router)));
    server::serve(listener, app, limits, shutdown).await
}

/// Limits the bodies of every route of `router` to `limit` bytes (after inflation).
pub fn limit_bodies<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    limit: usize,
) -> Router<S> {
    router.route_layer(BodyLimit(limit))
}

/// A GET route answering a JSON document fixed at startup (the `/config` endpoints).
fn static_json<S: Clone + Send + Sync + 'static>(value: &serde_json::Value) -> MethodRouter<S> {
    let body = Bytes::from(value.to_string());
    get(move || {
        let body = body.clone();
        async move {
            (
                [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                body,
            )
        }
    })
}

async fn healthz(State(health): State<Arc<dyn HealthProbe>>) -> Response {
    match tokio::task::spawn_blocking(move || health.check()).await {
        Ok(Ok(())) => Json(serde_json::json!({ "status": "ok" })).into_response(),
        Ok(Err(cause)) => {
            let mut error = ApiError::internal(ErrorCode::GenericDbFetchFailed, &cause);
            error.status = StatusCode::SERVICE_UNAVAILABLE;
            error.into_response()
        }
        Err(join) => {
            ApiError::internal(ErrorCode::GenericInternalInvariantFailure, &join).into_response()
        }
    }
}

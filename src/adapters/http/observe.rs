//! What every route does around its handler, in one layer: the `request` span (debug level),
//! the Taler body of the router's bare 405, the request's metrics, its log line and, for
//! server errors, a "response failed" event.
//!
//! One layer rather than one middleware each: the router wraps every layer around every route
//! and clones the whole stack below a middleware for each request it passes, so the cost of
//! stacked middlewares grows with the square of their number.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::response::Response;
use tower::{Layer, Service};
use tracing::Instrument as _;

use super::error;
use super::metrics::Metrics;

/// Wraps each route (and the fallback) in `Observe`; lifts axum's default body limit, since
/// the body buffer in front of the router enforces the limits.
#[derive(Clone)]
pub struct ObserveLayer {
    pub metrics: Arc<Metrics>,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner: DefaultBodyLimit::disable().layer(inner),
            metrics: Arc::clone(&self.metrics),
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Answer {
        let method = request.method().clone();
        // The route template, never the raw path, which may carry tokens.
        let route = request.extensions().get::<MatchedPath>().cloned();
        let span = tracing::debug_span!(
            "request",
            method = %method,
            route = route.as_ref().map_or("-", MatchedPath::as_str)
        );
        let metrics = Arc::clone(&self.metrics);
        let started = Instant::now();
        let answer = {
            let _entered = span.enter();
            tracing::debug!("started processing request");
            self.inner.call(request)
        };
        let traced = async move {
            let Ok(response) = answer.await;
            let response = error::method_invalid_body(response);
            let (status, latency) = (response.status(), Millis(started.elapsed()));
            tracing::debug!(%latency, status = status.as_u16(), "finished processing request");
            if status.is_server_error() {
                tracing::error!(
                    classification = %format_args!("Status code: {status}"),
                    %latency,
                    "response failed"
                );
            }
            response
        }
        .instrument(span);
        Box::pin(async move {
            let response = traced.await;
            let (status, elapsed) = (response.status(), started.elapsed());
            // One line per request at info level: method, matched route, status and duration.
            // Never the query, the headers or the body.
            tracing::info!(
                target: "talerbox::request",
                method = %method,
                route = %route.as_ref().map_or("-", MatchedPath::as_str),
                status = status.as_u16(),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            );
            metrics.record(&method, route.as_ref(), status, elapsed);
            Ok(response)
        })
    }
}

/// A latency in whole milliseconds, as in "3 ms".
#[derive(Clone, Copy)]
struct Millis(Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ms", self.0.as_millis())
    }
}

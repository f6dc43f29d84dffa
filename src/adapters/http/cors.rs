//! CORS for browsers calling the APIs from other origins: every origin, method and header is
//! allowed, as with tower-http's `CorsLayer::permissive()`, header for header (a test holds
//! the two side by side). Written out because its answer never depends on the request: the
//! headers are constants, where the general layer computes them for every request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, VARY,
};
use axum::http::{HeaderValue, Method};
use axum::response::Response;
use tower::{Layer, Service};

const ANY: HeaderValue = HeaderValue::from_static("*");
/// The request headers a CORS answer depends on.
const VARY_ON: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

#[derive(Debug, Clone, Copy, Default)]
pub struct AnyOrigin;

impl<S> Layer<S> for AnyOrigin {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Cors<S> {
        Cors { inner }
    }
}

#[derive(Clone)]
pub struct Cors<S> {
    inner: S,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for Cors<S>
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
        if request.method() == Method::OPTIONS {
            // Every OPTIONS request is answered as a preflight, before routing.
            let mut response = Response::new(Body::empty());
            let headers = response.headers_mut();
            headers.insert(VARY, VARY_ON);
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, ANY);
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, ANY);
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, ANY);
            return Box::pin(std::future::ready(Ok(response)));
        }
        let answer = self.inner.call(request);
        Box::pin(async move {
            let Ok(mut response) = answer.await;
            let headers = response.headers_mut();
            // A response may vary on more: add to its own Vary, never replace it.
            headers.append(VARY, VARY_ON);
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, ANY);
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, ANY);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use tower::ServiceExt as _;

    /// A handler answering with a header of its own, a Vary among them.
    async fn handler(_: Request) -> Result<Response, Infallible> {
        let mut response = Response::new(Body::from("hello"));
        *response.status_mut() = StatusCode::CREATED;
        response
            .headers_mut()
            .insert(VARY, HeaderValue::from_static("accept"));
        response
            .headers_mut()
            .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("x"));
        Ok(response)
    }

    fn requests() -> Vec<Request> {
        let build = |method: Method, headers: &[(&str, &str)]| {
            let mut request = Request::builder().method(method).uri("/bank/config");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.body(Body::empty()).unwrap()
        };
        let origin = ("origin", "https://spa.example.com");
        vec![
            build(Method::GET, &[]),
            build(Method::GET, &[origin]),
            build(
                Method::POST,
                &[origin, ("content-type", "application/json")],
            ),
            build(Method::OPTIONS, &[]),
            build(
                Method::OPTIONS,
                &[
                    origin,
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "authorization"),
                ],
            ),
        ]
    }

    #[tokio::test]
    async fn answers_as_the_permissive_layer_does() {
        for (ours, theirs) in requests().into_iter().zip(requests()) {
            let described = format!("{} {:?}", ours.method(), ours.headers());
            let ours = AnyOrigin
                .layer(tower::service_fn(handler))
                .oneshot(ours)
                .await
                .unwrap();
            let theirs = tower_http::cors::CorsLayer::permissive()
                .layer(tower::service_fn(handler))
                .oneshot(theirs)
                .await
                .unwrap();
            assert_eq!(ours.status(), theirs.status(), "{described}");
            let sorted = |response: &Response| {
                let mut headers: Vec<(String, Vec<u8>)> = response
                    .headers()
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                    .collect();
                headers.sort();
                headers
            };
            assert_eq!(sorted(&ours), sorted(&theirs), "{described}");
            let body = |response: Response| async {
                axum::body::to_bytes(response.into_body(), 100)
                    .await
                    .unwrap()
            };
            assert_eq!(body(ours).await, body(theirs).await, "{described}");
        }
    }
}

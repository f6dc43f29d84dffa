//! Request bodies: the global size limit enforced before routing, `Content-Encoding: deflate`
//! inflation (limits apply to the inflated size), per-route lower limits, and JSON decoding
//! into Taler error codes.

use std::convert::Infallible;
use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::HttpBody as _;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError};
use serde::de::DeserializeOwned;
use tower::{Layer, Service};

use super::error::ApiError;
use crate::domain::primitives::ErrorCode;
use crate::domain::primitives::json_body::from_object_slice;

/// The global limit, as in the Taler C services (`TALER_MHD_REQUEST_BUFFER_MAX`).
pub const GLOBAL_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// A zlib stream may be slightly larger than what it inflates to (headers, stored blocks).
const DEFLATE_SLACK: usize = 64 * 1024;

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Size of the request body after inflation, recorded by `buffer_body` for per-route limits.
#[derive(Debug, Clone, Copy)]
pub struct BodySize(pub usize);

/// Maximum body size for one route or service.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// What `buffer_body` allows every request: a size and a time to receive the body in.
#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    pub limit: usize,
    pub read_timeout: Duration,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::GenericUploadExceedsLimit,
    )
    .with_detail(format!("request body exceeds {limit} bytes"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Deflate,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value.eq_ignore_ascii_case("deflate") {
        Ok(Encoding::Deflate)
    } else if value.eq_ignore_ascii_case("identity") || value.is_empty() {
        Ok(Encoding::Identity)
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::GenericCompressionInvalid,
        )
        .with_detail(format!("unsupported Content-Encoding: {value}")))
    }
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Layer (before routing): reads the whole body within the size limit and the read timeout,
/// inflates it if needed, and hands the plain bytes on, so that every later stage sees an
/// identity-encoded body. A body not received in time is 408 with code 11.
impl<S> Layer<S> for BodyRules {
    type Service = Buffered<S>;

    fn layer(&self, inner: S) -> Buffered<S> {
        Buffered {
            inner,
            rules: *self,
        }
    }
}

/// A service whose requests arrive with their bodies buffered and inflated.
#[derive(Clone)]
pub struct Buffered<S> {
    inner: S,
    rules: BodyRules,
}

impl<S> Service<Request> for Buffered<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Answer {
        if request.body().is_end_stream() && !request.headers().contains_key(CONTENT_ENCODING) {
            // Nothing to read or inflate (most GETs): pass the request on untouched.
            request.extensions_mut().insert(BodySize(0));
            return Box::pin(self.inner.call(request));
        }
        // The service that was made ready is the one that is called, after the body.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let rules = self.rules;
        Box::pin(async move {
            match buffer_body(rules, request).await {
                Ok(request) => inner.call(request).await,
                Err(refusal) => Ok(refusal),
            }
        })
    }
}

/// The request with its body read (within the rules) and inflated, or the answer refusing it.
async fn buffer_body(rules: BodyRules, request: Request) -> Result<Request, Response> {
    let (mut parts, body) = request.into_parts();
    let reading = read_within(&parts.headers, body, rules.limit);
    let bytes = match tokio::time::timeout(rules.read_timeout, reading).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => return Err(error.into_response()),
        Err(_) => {
            let mut response =
                ApiError::new(StatusCode::REQUEST_TIMEOUT, ErrorCode::GenericTimeout)
                    .with_detail(format!(
                        "the request body did not arrive within {} ms",
                        rules.read_timeout.as_millis()
                    ))
                    .into_response();
            // The rest of the body may still be on its way: this connection is done.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return Err(response);
        }
    };
    parts.headers.remove(CONTENT_ENCODING);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    parts.extensions.insert(BodySize(bytes.len()));
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

async fn read_within(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let encoding = content_encoding(headers)?;
    let wire_limit = match encoding {
        Encoding::Identity => limit,
        Encoding::Deflate => limit.saturating_add(DEFLATE_SLACK),
    };
    if declared_length(headers).is_some_and(|length| length > wire_limit) {
        return Err(too_large(limit));
    }
    let raw = match http_body_util::Limited::new(body, wire_limit)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(too_large(limit)),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::GenericUnexpectedRequestError,
            )
            .with_detail(format!("request body could not be read: {e}")));
        }
    };
    match encoding {
        Encoding::Identity => Ok(raw),
        Encoding::Deflate => inflate(&raw, limit),
    }
}

pub(super) fn inflate(compressed: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    let mut inflated = Vec::new();
    let budget = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::ZlibDecoder::new(compressed)
        .take(budget)
        .read_to_end(&mut inflated)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::GenericCompressionInvalid,
            )
            .with_detail(format!("corrupt deflate body: {e}"))
        })?;
    if inflated.len() > limit {
        return Err(too_large(limit));
    }
    Ok(Bytes::from(inflated))
}

/// Layer (route level): refuses bodies over a service's own, lower limit.
impl<S> Layer<S> for BodyLimit {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            limit: *self,
        }
    }
}

/// A route whose request bodies are limited to `limit` bytes (after inflation).
#[derive(Clone)]
pub struct Limited<S> {
    inner: S,
    limit: BodyLimit,
}

impl<S> Service<Request> for Limited<S>
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
        let size = request.extensions().get::<BodySize>().map_or(0, |s| s.0);
        if size > self.limit.0 {
            let refusal = too_large(self.limit.0).into_response();
            return Box::pin(std::future::ready(Ok(refusal)));
        }
        Box::pin(self.inner.call(request))
    }
}

/// A JSON object request body; decoding failures answer 400 with `GENERIC_JSON_INVALID`.
pub struct TalerJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for TalerJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::GenericJsonInvalid)
                .with_detail(e.body_text())
        })?;
        from_object_slice(&bytes).map(TalerJson).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::GenericJsonInvalid)
                .with_detail(e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn inflates_within_the_limit() {
        let body = deflate(b"{\"a\":1}");
        assert_eq!(&inflate(&body, 100).unwrap()[..], b"{\"a\":1}");
    }

    #[test]
    fn the_limit_applies_to_the_inflated_size() {
        let bomb = deflate(&vec![b'a'; 10_000]);
        assert!(bomb.len() < 1000);
        let err = inflate(&bomb, 9_999).unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err.error.code, ErrorCode::GenericUploadExceedsLimit);
        assert_eq!(inflate(&bomb, 10_000).unwrap().len(), 10_000);
    }

    #[test]
    fn corrupt_deflate_is_400_28() {
        let err = inflate(b"not zlib at all", 100).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.error.code.number(), 28);
    }

    #[test]
    fn unknown_encodings_are_415_28() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let err = content_encoding(&headers).unwrap_err();
        assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(err.error.code.number(), 28);
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("Deflate"));
        assert_eq!(content_encoding(&headers).unwrap(), Encoding::Deflate);
    }
}

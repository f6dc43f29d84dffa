//! The one place where errors become HTTP responses: a status and an `ErrorDetail` body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::domain::primitives::{ErrorCode, TalerError};

/// A `TalerError` with the HTTP status an endpoint answers it with.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: TalerError,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode) -> Self {
        ApiError {
            status,
            error: TalerError::new(code),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.error = self.error.with_detail(detail);
        self
    }

    pub fn with_hint(mut self, hint: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.error = self.error.with_hint(hint);
        self
    }

    /// An internal failure: the body carries only the code and a generic hint; the cause goes
    /// to the log, never to the client.
    pub fn internal(code: ErrorCode, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(code = code.number(), %cause, "internal error");
        ApiError::from(TalerError::new(code))
    }
}

/// Uses the registry's status for the code, and 500 where the registry gives none.
impl From<TalerError> for ApiError {
    fn from(error: TalerError) -> Self {
        let status = StatusCode::from_u16(error.code.registry_http_status())
            .ok()
            .filter(|s| s.as_u16() >= 400)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError { status, error }
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        ApiError::from(TalerError::new(code))
    }
}

impl IntoResponse for ApiError {
    /// Server errors keep their cause in the log: the client gets the code and hint only.
    fn into_response(mut self) -> Response {
        if self.status.is_server_error()
            && let Some(detail) = self.error.detail.take()
        {
            tracing::error!(code = self.error.code.number(), %detail, "request failed");
        }
        (self.status, Json(self.error)).into_response()
    }
}

/// Fallback for paths no service knows.
pub async fn endpoint_unknown() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::GenericEndpointUnknown)
}

/// Gives the router's bare 405 (which keeps its `Allow` header) a Taler error body.
pub fn method_invalid_body(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let body = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::GenericMethodInvalid,
    )
    .into_response();
    let (body_parts, body) = body.into_parts();
    parts.headers.extend(body_parts.headers);
    Response::from_parts(parts, body)
}

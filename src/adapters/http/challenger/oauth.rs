//! The OAuth side of the challenger: `POST /token` with RFC 6749 §5.2 error bodies that also
//! carry the Taler `code`/`hint`, and `GET /info`. Neither answer may be cached.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::request::{header_text, param_body};
use super::{Ch, challenger_status, error_with_status};
use crate::domain::challenges::TokenFailure;
use crate::domain::primitives::{ErrorCode, TalerError};

/// RFC 6749 §5.2 error body plus the Taler error fields.
#[derive(Serialize)]
struct OAuthError {
    error: &'static str,
    error_description: String,
    code: ErrorCode,
    hint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn token_error(failure: TokenFailure) -> Response {
    let taler = |code: ErrorCode, hint: &'static str| TalerError::new(code).with_hint(hint);
    let (status, error, taler_error) = match failure {
        TokenFailure::InvalidRequest(e) => (StatusCode::BAD_REQUEST, "invalid_request", e),
        TokenFailure::UnsupportedGrantType => (
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            taler(
                ErrorCode::GenericParameterMalformed,
                "grant_type must be authorization_code",
            ),
        ),
        TokenFailure::UnknownClient => (
            StatusCode::NOT_FOUND,
            "invalid_client",
            taler(ErrorCode::ChallengerGenericClientUnknown, "unknown client"),
        ),
        TokenFailure::BadClientSecret => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            taler(
                ErrorCode::ChallengerGenericClientUnknown,
                "wrong client secret",
            ),
        ),
        TokenFailure::InvalidGrant(code) => {
            let hint = match code {
                ErrorCode::ChallengerGrantUnknown => "authorization code used or expired",
                ErrorCode::ChallengerGenericValidationUnknown => "unknown authorization code",
                ErrorCode::ChallengerGenericClientForbiddenBadRedirectUri => {
                    "redirect_uri does not match the authorization"
                }
                _ => "authorization code or PKCE verifier not acceptable",
            };
            (StatusCode::UNAUTHORIZED, "invalid_grant", taler(code, hint))
        }
        TokenFailure::MissingAddress => (
            StatusCode::CONFLICT,
            "invalid_grant",
            taler(
                ErrorCode::ChallengerMissingAddress,
                "no address was validated",
            ),
        ),
        TokenFailure::Server(e) => {
            let status = challenger_status(e.code);
            let status = if status.is_server_error() {
                status
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            tracing::error!(code = e.code.number(), detail = ?e.detail, "token request failed");
            (status, "server_error", TalerError::new(e.code))
        }
    };
    let body = OAuthError {
        error,
        error_description: taler_error.hint.to_string(),
        code: taler_error.code,
        hint: taler_error.hint.to_string(),
        detail: taler_error.detail,
    };
    no_store((status, Json(body)).into_response())
}

pub(super) async fn token(State(ch): State<Ch>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match param_body(&headers, &body) {
        Ok(params) => params,
        Err(error) => return token_error(TokenFailure::InvalidRequest(error)),
    };
    match ch.blocking(move |s| s.token(&params)).await {
        Ok(Ok(response)) => no_store(Json(response).into_response()),
        Ok(Err(failure)) => token_error(failure),
        Err(error) => token_error(TokenFailure::Server(error)),
    }
}

pub(super) async fn info(State(ch): State<Ch>, request: Request) -> Response {
    let authorization = header_text(request.headers(), AUTHORIZATION);
    let result = ch
        .quick(move |s| s.info(authorization.as_deref()))
        .await
        .and_then(|r| r);
    no_store(match result {
        Ok(info) => Json(info).into_response(),
        Err(error) => {
            let status = match error.code {
                ErrorCode::GenericParameterMissing | ErrorCode::GenericParameterMalformed => {
                    StatusCode::FORBIDDEN
                }
                code => challenger_status(code),
            };
            error_with_status(status, error)
        }
    })
}

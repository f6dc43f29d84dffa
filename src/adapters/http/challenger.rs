//! The routes of one challenger instance (mounted under its prefix), with the statuses of
//! spec §4–§9 and content negotiation: JSON for API clients, pages and redirects for browsers.

mod oauth;
mod pages;
pub(super) mod request;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::error::ApiError;
use super::lanes::QuickLane;
use crate::domain::challenges::{
    AddressType, ChallengeResponse, ChallengeService, ChallengeStatus, SolveOutcome,
};
use crate::domain::primitives::{ErrorCode, TalerError, Timestamp};
use pages::{Pages, PinPage};
use request::{accepts, header_text};

/// Challenger protocol version: implements v1 to v6, all additive.
pub const CHALLENGER_VERSION: &str = "6:0:5";

/// Request bodies of the challenger are limited to 64 KiB.
pub const CHALLENGER_BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct ChallengerHttp {
    pub config: serde_json::Value,
    service: Arc<ChallengeService>,
    quick: Arc<QuickLane>,
    pages: Arc<Pages>,
}

impl ChallengerHttp {
    pub fn new(
        config: &crate::config::ChallengerConfig,
        service: Arc<ChallengeService>,
        quick: Arc<QuickLane>,
    ) -> anyhow::Result<Self> {
        let body = serde_json::json!({
            "name": "challenger",
            "version": CHALLENGER_VERSION,
            "implementation": "urn:net:taler:specs:challenger:talerbox",
            "restrictions": config.restrictions,
            "address_type": config.address_type,
            "address_hint": config.address_hint,
        });
        let address_type = AddressType::parse(&config.address_type)
            .ok_or_else(|| anyhow::anyhow!("unknown address type {}", config.address_type))?;
        let pages = Pages::new(address_type, &config.address_hint)?;
        Ok(ChallengerHttp {
            config: body,
            service,
            quick,
            pages: Arc::new(pages),
        })
    }
}

/// What the handlers share.
#[derive(Clone)]
struct Ch {
    service: Arc<ChallengeService>,
    quick: Arc<QuickLane>,
    pages: Arc<Pages>,
}

fn internal(cause: &dyn std::fmt::Display) -> TalerError {
    TalerError::new(ErrorCode::GenericInternalInvariantFailure).with_detail(cause.to_string())
}

impl Ch {
    /// Runs a call that writes (and waits for its commit) or delivers a PIN on the blocking
    /// pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&ChallengeService) -> T + Send + 'static,
    ) -> Result<T, TalerError> {
        let service = Arc::clone(&self.service);
        tokio::task::spawn_blocking(move || work(&service))
            .await
            .map_err(|join| internal(&join))
    }

    /// Runs a quick read on the quick lane.
    async fn quick<T: Send + 'static>(
        &self,
        work: impl FnOnce(&ChallengeService) -> T + Send + 'static,
    ) -> Result<T, TalerError> {
        let service = Arc::clone(&self.service);
        self.quick
            .run(move || work(&service))
            .await
            .map_err(|lane| internal(&lane))
    }
}

pub fn router(state: ChallengerHttp) -> Router {
    let routes = Router::new()
        .route("/config", super::static_json(&state.config))
        .route("/setup/{client_id}", post(setup))
        .route("/authorize/{nonce}", get(authorize).post(authorize))
        .route("/challenge/{nonce}", post(challenge))
        .route("/solve/{nonce}", post(solve))
        .route("/token", post(oauth::token))
        .route("/info", get(oauth::info))
        .with_state(Ch {
            service: state.service,
            quick: state.quick,
            pages: state.pages,
        });
    super::limit_bodies(routes, CHALLENGER_BODY_LIMIT)
}

/// The HTTP status of a challenger error (spec §4–§9), where it differs from the registry's.
fn challenger_status(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::GenericParameterMissing | C::GenericParameterMalformed | C::GenericJsonInvalid => {
            StatusCode::BAD_REQUEST
        }
        C::ChallengerHelperExecFailed => StatusCode::BAD_GATEWAY,
        C::ChallengerClientForbiddenReadOnly => StatusCode::FORBIDDEN,
        C::GenericDbSoftFailure => StatusCode::SERVICE_UNAVAILABLE,
        other => ApiError::from(other).status,
    }
}

/// A Taler error body with `status`; 5xx causes go to the log only.
fn error_with_status(status: StatusCode, mut error: TalerError) -> Response {
    if status.is_server_error() {
        tracing::error!(code = error.code.number(), detail = ?error.detail, "challenger request failed");
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            error.detail = None;
        }
    }
    ApiError { status, error }.into_response()
}

fn json_error(error: TalerError) -> Response {
    error_with_status(challenger_status(error.code), error)
}

/// An error as a page when the browser asked for HTML, as JSON otherwise.
fn error_response(ch: &Ch, html: bool, error: TalerError) -> Response {
    if html {
        let status = challenger_status(error.code);
        if status.is_server_error() {
            tracing::error!(code = error.code.number(), detail = ?error.detail, "challenger request failed");
        }
        ch.pages.error(status, &error)
    } else {
        json_error(error)
    }
}

fn found(location: &str) -> Response {
    match HeaderValue::from_bytes(location.as_bytes()) {
        Ok(value) => (
            StatusCode::FOUND,
            [
                (LOCATION, value),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(e) => json_error(internal(&e)),
    }
}

async fn setup(
    State(ch): State<Ch>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = header_text(&headers, AUTHORIZATION);
    let decoded = request::setup_body(&headers, &body, CHALLENGER_BODY_LIMIT);
    let result = ch
        .blocking(move |s| s.setup(&client_id, authorization.as_deref(), decoded))
        .await
        .and_then(|r| r);
    match result {
        Ok(response) => Json(response).into_response(),
        Err(error) => json_error(error),
    }
}

async fn authorize(
    State(ch): State<Ch>,
    Path(nonce): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let html = accepts(&headers, "text/html");
    let params = request::params(query.unwrap_or_default().as_bytes());
    let id = nonce.clone();
    let result = ch
        .blocking(move |s| s.authorize(&id, &params))
        .await
        .and_then(|r| r);
    match result {
        Ok(status) if html && status.solved => ch.pages.solved(&nonce),
        Ok(status) if html => ch.pages.address(StatusCode::OK, &nonce, &status, None),
        Ok(status) => Json(status).into_response(),
        Err(error) => error_response(&ch, html, error),
    }
}

/// What a page needs besides the answer: the validation's status and the time.
type PageContext = (Option<ChallengeStatus>, Timestamp);

async fn challenge(
    State(ch): State<Ch>,
    Path(nonce): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = accepts(&headers, "text/html");
    let input = request::object_body(&headers, &body);
    let id = nonce.clone();
    let outcome = ch
        .blocking(move |s| {
            let result = s.challenge(&id, input);
            let context: PageContext = (html.then(|| s.status(&id).ok()).flatten(), s.now());
            (result, context)
        })
        .await;
    let (result, (status, now)) = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return error_response(&ch, html, error),
    };
    match result {
        Ok(response) if !html => Json(response).into_response(),
        Ok(ChallengeResponse::Completed { redirect_url }) => ch.pages.done(&redirect_url),
        Ok(ChallengeResponse::Created {
            attempts_left,
            address,
            transmitted,
            retransmission_time,
            pin_transmissions_left,
            changes_left,
            fix_address,
        }) => {
            let page = PinPage {
                nonce: &nonce,
                address: &address,
                transmitted,
                attempts_left,
                transmissions_left: pin_transmissions_left,
                changes_left,
                fixed: fix_address,
                retransmission_time,
                now,
                error: None,
            };
            ch.pages.pin(StatusCode::OK, &page)
        }
        Err(error) => {
            // A refused address: the form again, with the reason.
            let status_code = challenger_status(error.code);
            match status.filter(|s| status_code.is_client_error() && !s.solved) {
                Some(current) if html => {
                    let words = pages::words(&error);
                    ch.pages.address(status_code, &nonce, &current, Some(words))
                }
                _ => error_response(&ch, html, error),
            }
        }
    }
}

/// The `pin` of a form or JSON body; a non-text JSON value stays malformed.
fn pin_field(object: &serde_json::Map<String, Value>) -> Option<String> {
    match object.get("pin")? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        Value::Number(number) => Some(number.to_string()),
        _ => Some("not a PIN".into()),
    }
}

async fn solve(
    State(ch): State<Ch>,
    Path(nonce): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = accepts(&headers, "application/json");
    let html = !json && accepts(&headers, "text/html");
    let input = request::object_body(&headers, &body);
    let id = nonce.clone();
    let outcome = ch
        .blocking(move |s| {
            let result = input.and_then(|object| s.solve(&id, pin_field(&object).as_deref()));
            let context: PageContext = (html.then(|| s.status(&id).ok()).flatten(), s.now());
            (result, context)
        })
        .await;
    let (result, (status, now)) = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return error_response(&ch, html, error),
    };
    match result {
        Ok(SolveOutcome::Solved { redirect_url }) if json => Json(serde_json::json!({
            "type": "completed",
            "redirect_url": redirect_url,
        }))
        .into_response(),
        Ok(SolveOutcome::Solved { redirect_url }) => found(&redirect_url),
        Ok(SolveOutcome::Refused(refusal)) => {
            let status_code = if refusal.exhausted {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::FORBIDDEN
            };
            let address = status.as_ref().and_then(|s| s.last_address.clone());
            match (html, status, address) {
                (true, Some(current), Some(address)) => {
                    let page = PinPage {
                        nonce: &nonce,
                        address: &address,
                        transmitted: false,
                        attempts_left: refusal.auth_attempts_left,
                        transmissions_left: refusal.pin_transmissions_left,
                        changes_left: refusal.addresses_left,
                        fixed: current.fix_address,
                        retransmission_time: current.retransmission_time,
                        now,
                        error: Some(pages::words(&TalerError::new(refusal.code))),
                    };
                    ch.pages.pin(status_code, &page)
                }
                (true, _, _) => ch.pages.error(status_code, &TalerError::new(refusal.code)),
                _ => (status_code, Json(refusal)).into_response(),
            }
        }
        // A PIN that is empty or not digits: the same form again, saying so.
        Err(error)
            if html
                && matches!(
                    error.code,
                    ErrorCode::GenericParameterMissing | ErrorCode::GenericParameterMalformed
                ) =>
        {
            let address = status.as_ref().and_then(|s| s.last_address.clone());
            match (status, address) {
                (Some(current), Some(address)) => {
                    let page = PinPage {
                        nonce: &nonce,
                        address: &address,
                        transmitted: false,
                        attempts_left: current.auth_attempts_left,
                        transmissions_left: current.pin_transmissions_left,
                        changes_left: current.changes_left,
                        fixed: current.fix_address,
                        retransmission_time: current.retransmission_time,
                        now,
                        error: Some(pages::words(&error)),
                    };
                    ch.pages.pin(StatusCode::BAD_REQUEST, &page)
                }
                _ => error_response(&ch, html, error),
            }
        }
        Err(error) => error_response(&ch, html, error),
    }
}

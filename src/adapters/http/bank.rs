//! The bank's Corebank routes (mounted under the bank prefix).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::lanes::QuickLane;
use crate::domain::accounts::{AccountService, Caller, page_from_query};
use crate::domain::primitives::json_body::from_object_slice;
use crate::domain::primitives::{ErrorCode, TalerError};
use crate::domain::tan::{
    CanonicalBody, ChallengeId, ChallengeResponse, TanFailure, TanRequest, TanService,
    presented_ids,
};

/// Corebank protocol version: v10, with the 2FA challenge flow of corebank-tan.md.
pub const BANK_VERSION: &str = "10:0:0";

/// Request bodies of the bank are limited to 4 KiB, as in libeufin.
pub const BANK_BODY_LIMIT: usize = 4 * 1024;

#[derive(Clone)]
pub struct BankHttp {
    pub config: serde_json::Value,
    pub service: Arc<AccountService>,
    pub tan: Arc<TanService>,
    pub quick: Arc<QuickLane>,
}

/// What the bank's handlers share.
#[derive(Clone)]
struct Bank {
    service: Arc<AccountService>,
    tan: Arc<TanService>,
    quick: Arc<QuickLane>,
}

impl Bank {
    /// Runs a call that may hash passwords or wait for a commit on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&AccountService) -> Result<T, TalerError> + Send + 'static,
    ) -> Result<T, Response> {
        let service = Arc::clone(&self.service);
        match tokio::task::spawn_blocking(move || work(&service)).await {
            Ok(result) => result.map_err(bank_error),
            Err(join) => Err(lane_failure(&join)),
        }
    }

    /// Authenticates the caller, then runs `work` on the blocking pool.
    async fn as_caller<T: Send + 'static>(
        &self,
        header: Option<String>,
        work: impl FnOnce(&AccountService, &Caller) -> Result<T, TalerError> + Send + 'static,
    ) -> Result<T, Response> {
        self.blocking(move |service| {
            let caller = service.require_caller(header.as_deref())?;
            work(service, &caller)
        })
        .await
    }

    /// Runs a read that needs no password hashing on the quick lane: reads with a bearer
    /// token or without credentials; anything else goes to the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        header: Option<&str>,
        work: impl FnOnce(&AccountService) -> Result<T, TalerError> + Send + 'static,
    ) -> Result<T, Response> {
        let cheap = header.is_none_or(|h| {
            h.get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
        });
        if !cheap {
            return self.blocking(work).await;
        }
        let service = Arc::clone(&self.service);
        match self.quick.run(move || work(&service)).await {
            Ok(result) => result.map_err(bank_error),
            Err(lane) => Err(lane_failure(&lane)),
        }
    }
}

fn lane_failure(cause: &dyn std::fmt::Display) -> Response {
    bank_error(
        TalerError::new(ErrorCode::GenericInternalInvariantFailure).with_detail(cause.to_string()),
    )
}

impl BankHttp {
    /// Builds the `/config` document (corebank spec §3) once, at startup.
    pub fn new(
        config: &crate::config::BankConfig,
        base_url: &str,
        specification: &crate::config::CurrencySpecification,
        service: Arc<AccountService>,
        tan: Arc<TanService>,
        quick: Arc<QuickLane>,
    ) -> Self {
        let tan_channels: Vec<&str> = [(&config.tan_sms, "sms"), (&config.tan_email, "email")]
            .into_iter()
            .filter_map(|(script, channel)| script.as_ref().map(|_| channel))
            .collect();
        let body = serde_json::json!({
            "name": "taler-corebank",
            "version": BANK_VERSION,
            "bank_name": config.name,
            "base_url": base_url,
            "currency": config.currency,
            "currency_specification": specification,
            "allow_conversion": false,
            "allow_registrations": config.allow_registration,
            "allow_deletions": config.allow_account_deletion,
            "allow_edit_name": config.allow_edit_name,
            "allow_edit_cashout_payto_uri": config.allow_edit_cashout_payto_uri,
            "default_debit_threshold": config.default_debt_limit,
            "supported_tan_channels": tan_channels,
            "wire_type": config.wire_type,
        });
        BankHttp {
            config: body,
            service,
            tan,
            quick,
        }
    }
}

pub fn router(state: BankHttp) -> Router {
    let routes = Router::new()
        .route("/config", super::static_json(&state.config))
        .route("/accounts", post(register).get(list_accounts))
        .route("/public-accounts", get(list_public_accounts))
        .route(
            "/accounts/{username}",
            get(account_data).patch(reconfigure).delete(delete_account),
        )
        .route(
            "/accounts/{username}/auth",
            axum::routing::patch(change_password),
        )
        .route(
            "/accounts/{username}/token",
            post(create_token).delete(delete_token),
        )
        .route(
            "/accounts/{username}/challenge/{challenge_id}",
            post(send_challenge),
        )
        .route(
            "/accounts/{username}/challenge/{challenge_id}/confirm",
            post(confirm_challenge),
        )
        .with_state(Bank {
            service: state.service,
            tan: state.tan,
            quick: state.quick,
        });
    super::limit_bodies(routes, BANK_BODY_LIMIT)
}

/// The HTTP status of a bank error (corebank spec §12); it differs from the registry's
/// column for some codes (e.g. 5132 is 409 here, not 501).
fn bank_status(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::GenericParameterMissing | C::GenericUnauthorized => StatusCode::UNAUTHORIZED,
        C::GenericForbidden | C::GenericTokenPermissionInsufficient => StatusCode::FORBIDDEN,
        C::BankTanChannelNotSupported
        | C::BankTanChallengeFailed
        | C::BankPasswordTooShort
        | C::BankPasswordTooLong
        | C::End => StatusCode::CONFLICT,
        C::BankTanChannelScriptFailed => StatusCode::BAD_GATEWAY,
        C::GenericDbSoftFailure => StatusCode::SERVICE_UNAVAILABLE,
        other => ApiError::from(other).status,
    }
}

/// Turns a bank error into its response; 401s carry a Basic challenge.
fn bank_error(error: TalerError) -> Response {
    let status = bank_status(error.code);
    let mut response = ApiError { status, error }.into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    }
    response
}

fn json_response<T: Serialize>(result: Result<T, Response>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(response) => response,
    }
}

fn no_content(result: Result<(), Response>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

fn page_response<T: Serialize>(result: Result<Option<T>, Response>) -> Response {
    match result {
        Ok(Some(body)) => Json(body).into_response(),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

/// The `Authorization` header, if any; a value that is not text is a malformed header.
struct AuthHeader(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for AuthHeader {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        match parts.headers.get(AUTHORIZATION) {
            None => Ok(AuthHeader(None)),
            Some(value) => value
                .to_str()
                .map(|v| AuthHeader(Some(v.to_owned())))
                .map_err(|_| {
                    let error = TalerError::new(ErrorCode::GenericHttpHeadersMalformed);
                    bank_error(error.with_detail("Authorization"))
                }),
        }
    }
}

/// Decodes a JSON body after authentication (any decoding failure is 400/22 in the bank).
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, TalerError> {
    from_object_slice(body)
        .map_err(|e| TalerError::new(ErrorCode::GenericJsonInvalid).with_detail(e.to_string()))
}

/// `a=1&b=x%20y` → decoded pairs (the decoder is lenient: it never fails on text).
fn query_pairs(query: Option<String>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(&query.unwrap_or_default()).unwrap_or_default()
}

async fn register(
    State(bank): State<Bank>,
    AuthHeader(header): AuthHeader,
    body: Bytes,
) -> Response {
    json_response(
        bank.blocking(move |service| {
            let caller = service.registration_caller(header.as_deref())?;
            service.register(caller.as_ref(), parse_body(&body)?)
        })
        .await,
    )
}

async fn account_data(
    State(bank): State<Bank>,
    Path(username): Path<String>,
    AuthHeader(header): AuthHeader,
) -> Response {
    let lookup = header.clone();
    json_response(
        bank.read(lookup.as_deref(), move |service| {
            service.read_account(header.as_deref(), &username)
        })
        .await,
    )
}

/// The ids of the `Taler-Challenge-Ids` header lines (corebank-tan.md §4.1); lines that are
/// not text are ignored like unknown ids.
fn challenge_ids(headers: &HeaderMap) -> Vec<ChallengeId> {
    presented_ids(
        headers
            .get_all("taler-challenge-ids")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// 204, or 202 with the challenges the request must solve first.
fn gated_response(result: Result<Option<ChallengeResponse>, Response>) -> Response {
    match result {
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(challenges)) => (StatusCode::ACCEPTED, Json(challenges)).into_response(),
        Err(response) => response,
    }
}

async fn reconfigure(
    State(bank): State<Bank>,
    Path(username): Path<String>,
    AuthHeader(header): AuthHeader,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let presented = challenge_ids(&headers);
    let tan = Arc::clone(&bank.tan);
    gated_response(
        bank.as_caller(header, move |service, caller| {
            service.authorize(caller, &username, true, true)?;
            // Decoded as before the gate existed, so every 400 stays as it was.
            let patch = parse_body(&body)?;
            let request = json_request(&tan, presented, &body)?;
            service.reconfigure_gated(caller, &username, patch, Some(&request))
        })
        .await,
    )
}

/// The gate's view of a request with a JSON body that already decoded.
fn json_request<'a>(
    tan: &'a TanService,
    presented: Vec<ChallengeId>,
    body: &[u8],
) -> Result<TanRequest<'a>, TalerError> {
    let value: serde_json::Value = parse_body(body)?;
    Ok(TanRequest {
        service: tan,
        presented,
        body: CanonicalBody::of_json(&value),
    })
}

async fn change_password(
    State(bank): State<Bank>,
    Path(username): Path<String>,
    AuthHeader(header): AuthHeader,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let presented = challenge_ids(&headers);
    let tan = Arc::clone(&bank.tan);
    gated_response(
        bank.as_caller(header, move |service, caller| {
            service.authorize(caller, &username, true, true)?;
            let change = parse_body(&body)?;
            let request = json_request(&tan, presented, &body)?;
            service.change_password_gated(caller, &username, change, Some(&request))
        })
        .await,
    )
}

async fn delete_account(
    State(bank): State<Bank>,
    Path(username): Path<String>,
    AuthHeader(header): AuthHeader,
    headers: HeaderMap,
) -> Response {
    let presented = challenge_ids(&headers);
    let tan = Arc::clone(&bank.tan);
    gated_response(
        bank.as_caller(header, move |service, caller| {
            // DELETE binds the empty body, whatever was sent (corebank-tan.md §3.4).
            let request = TanRequest {
                service: &tan,
                presented,
                body: CanonicalBody::empty(),
            };
            service.delete_gated(caller, &username, Some(&request))
        })
        .await,
    )
}

async fn create_token(
    State(bank): State<Bank>,
    Path(username): Path<String>,
    AuthHeader(header): AuthHeader,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let presented = challenge_ids(&headers);
    let tan = Arc::clone(&bank.tan);
    let result = bank
        .as_caller(header, move |service, caller| {
            service.authorize_token_owner(caller, &username)?;
            let token = parse_body(&body)?;
            let request = json_request(&tan, presented, &body)?;
            service.create_token_gated(caller, &username, token, Some(&request))
        })
        .await;
    match result {
        Ok(Ok(token)) => Json(token).into_response(),
        Ok(Err(challenges)) => (StatusCode::ACCEPTED, Json(challenges)).into_response(),
        Err(response) => response,
    }
}

async fn delete_token(
    State(bank): State<Bank>,
    Path(username): Path<String>,
    AuthHeader(header): AuthHeader,
) -> Response {
    no_content(
        bank.as_caller(header, move |service, caller| {
            service.delete_token(caller, &username)
        })
        .await,
    )
}

async fn list_accounts(
    State(bank): State<Bank>,
    RawQuery(query): RawQuery,
    AuthHeader(header): AuthHeader,
) -> Response {
    let lookup = header.clone();
    page_response(
        bank.read(lookup.as_deref(), move |service| {
            let caller = service.require_caller(header.as_deref())?;
            let page = page_from_query(&query_pairs(query), false)?;
            service.list_accounts(&caller, &page)
        })
        .await,
    )
}

async fn list_public_accounts(State(bank): State<Bank>, RawQuery(query): RawQuery) -> Response {
    page_response(
        bank.read(None, move |service| {
            let page = page_from_query(&query_pairs(query), true)?;
            service.list_public_accounts(&page)
        })
        .await,
    )
}

/// A TAN error with the status its step answers (corebank-tan.md §10).
fn tan_error(failure: TanFailure) -> Response {
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError {
        status,
        error: failure.error,
    }
    .into_response()
}

/// Runs a TAN endpoint on the blocking pool (a send may wait for a delivery script) for
/// the live account `username`; no authentication (corebank-tan.md §5, §6).
async fn on_challenge<T: Send + 'static>(
    bank: Bank,
    username: String,
    work: impl FnOnce(&TanService, Option<i64>) -> Result<T, TanFailure> + Send + 'static,
) -> Result<T, Response> {
    let run = move || {
        let account = bank
            .service
            .live_account_id(&username)
            .map_err(|error| TanFailure {
                status: bank_status(error.code).as_u16(),
                error,
            })?;
        work(&bank.tan, account)
    };
    match tokio::task::spawn_blocking(run).await {
        Ok(result) => result.map_err(tan_error),
        Err(join) => Err(lane_failure(&join)),
    }
}

/// POST /accounts/$U/challenge/$ID: sends (or re-sends) the code; the body is ignored.
async fn send_challenge(
    State(bank): State<Bank>,
    Path((username, challenge_id)): Path<(String, String)>,
) -> Response {
    json_response(
        on_challenge(bank, username, move |tan, account| {
            tan.send(account, &challenge_id)
        })
        .await,
    )
}

/// The `ChallengeSolve` body of a confirmation.
#[derive(serde::Deserialize)]
struct ChallengeSolve {
    tan: String,
}

/// POST /accounts/$U/challenge/$ID/confirm: solves the challenge with its code.
async fn confirm_challenge(
    State(bank): State<Bank>,
    Path((username, challenge_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let solve: ChallengeSolve = match parse_body(&body) {
        Ok(solve) => solve,
        Err(error) => return bank_error(error),
    };
    no_content(
        on_challenge(bank, username, move |tan, account| {
            tan.confirm(account, &challenge_id, &solve.tan)
        })
        .await,
    )
}

//! The exchange's KYC routes (exchange-kyc spec §4–§8), merged into the exchange router.
//!
//! Long polls of kyc-info wait on a change signal: handlers that change KYC data bump it at
//! once, and a watcher bumps it when the store's change counter moved (changes made by
//! other processes, e.g. `talerbox kyc trigger`).

use crate::domain::evidence::RequirementTrigger;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::watch;

use super::error::ApiError;
use super::lanes::QuickLane;
use super::metrics::Waiting;
use crate::domain::kyc::{KycInfo, KycService, MeasureSpec, ProofFailure, ProofParams};
use crate::domain::primitives::json_body::from_object_slice;
use crate::domain::primitives::{ErrorCode, TalerError, constant_time_eq};
use prometheus_client::metrics::gauge::Gauge;

/// kyc-start bodies are limited to 64 KiB; kyc-upload uses the global 16 MiB.
pub const KYC_START_BODY_LIMIT: usize = 64 * 1024;
/// How often the watcher looks for changes made by other processes.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// The longest long poll a client may ask for.
pub(super) const MAX_LONG_POLL: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct KycHttp {
    pub service: Arc<KycService>,
    pub quick: Arc<QuickLane>,
    /// Bumped on every KYC change; long polls wait on it.
    pub changes: Arc<watch::Sender<u64>>,
    /// `[exchange] ADMIN_TOKEN`; the admin trigger exists only when it is set (shared: the
    /// handlers' state is cloned for every request).
    pub admin_token: Option<Arc<str>>,
    /// Long polls waiting (a metric).
    pub long_polls: Gauge,
}

impl KycHttp {
    pub fn new(
        service: Arc<KycService>,
        quick: Arc<QuickLane>,
        admin_token: Option<String>,
        long_polls: Gauge,
    ) -> Self {
        let (changes, _) = watch::channel(0);
        KycHttp {
            service,
            quick,
            changes: Arc::new(changes),
            admin_token: admin_token.map(Arc::from),
            long_polls,
        }
    }

    /// Wakes the long polls: KYC data changed.
    pub(super) fn changed(&self) {
        self.changes.send_modify(|generation| *generation += 1);
    }

    /// Bumps the change signal whenever the store's counter moves (runs until the server
    /// stops; it ends when the signal has no holders left).
    pub fn watch_store(&self) -> tokio::task::JoinHandle<()> {
        let service = Arc::clone(&self.service);
        let changes = Arc::downgrade(&self.changes);
        // The baseline is taken now: a change made before the first look must count too.
        let mut last = crate::adapters::system::outside_runtime(|| service.change_counter().ok())
            .ok()
            .flatten();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_INTERVAL).await;
                let Some(changes) = changes.upgrade() else {
                    return;
                };
                let probe = Arc::clone(&service);
                let counter = tokio::task::spawn_blocking(move || probe.change_counter()).await;
                if let Ok(Ok(counter)) = counter {
                    if last.is_some_and(|seen| seen != counter) {
                        changes.send_modify(|generation| *generation += 1);
                    }
                    last = Some(counter);
                }
            }
        })
    }
}

pub fn router(state: KycHttp) -> Router {
    let start = super::limit_bodies(
        Router::new().route("/kyc-start/{id}", post(kyc_start)),
        KYC_START_BODY_LIMIT,
    );
    Router::new()
        .route("/kyc-info/{token}", get(kyc_info))
        .route("/kyc-upload/{id}", post(kyc_upload))
        .route("/kyc-proof/{provider}", get(kyc_proof))
        .route("/kyc-done", get(kyc_done))
        .route("/kyc-forms/{form}", get(kyc_form))
        .route("/admin/kyc-trigger", post(admin_trigger))
        .merge(start)
        .merge(super::kyc_wallet::routes())
        .with_state(state)
}

/// The status of a KYC error (spec §9; the registry leaves several open).
fn kyc_status(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::ExchangeKycInfoAuthorizationFailed
        | C::ExchangeKycCheckAuthorizationFailed
        | C::ExchangeKycWalletSignatureInvalid => StatusCode::FORBIDDEN,
        C::ExchangeKycAmlFormIncomplete
        | C::ExchangeKycNotAForm
        | C::ExchangeKycMeasureIndexInvalid
        | C::GenericPathSegmentMalformed => StatusCode::BAD_REQUEST,
        C::ExchangeKycProofBackendInvalidResponse
        | C::ExchangeKycGenericProviderUnexpectedReply => StatusCode::BAD_GATEWAY,
        C::ExchangeKycProofRequestUnknown
        | C::ExchangeKycGenericLogicUnknown
        | C::ExchangeKycCheckRequestUnknown => StatusCode::NOT_FOUND,
        C::ExchangeKycFormAlreadyUploaded
        | C::ExchangeKycInvalidLogicToCheck
        | C::ExchangeKycCheckAuthorizationKeyUnknown
        | C::ExchangeGenericKycFailed => StatusCode::CONFLICT,
        C::GenericDbSoftFailure => StatusCode::SERVICE_UNAVAILABLE,
        other => ApiError::from(other).status,
    }
}

pub(super) fn kyc_error(error: TalerError) -> Response {
    let status = kyc_status(error.code);
    ApiError { status, error }.into_response()
}

fn internal(cause: &dyn std::fmt::Display) -> TalerError {
    TalerError::new(ErrorCode::GenericInternalInvariantFailure).with_detail(cause.to_string())
}

impl KycHttp {
    /// Runs a call that may talk to a provider or wait for a commit on the blocking pool.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&KycService) -> Result<T, TalerError> + Send + 'static,
    ) -> Result<T, TalerError> {
        let service = Arc::clone(&self.service);
        tokio::task::spawn_blocking(move || work(&service))
            .await
            .map_err(|e| internal(&e))?
    }

    /// Runs a few reads on the quick lane.
    pub(super) async fn quick<T: Send + 'static>(
        &self,
        work: impl FnOnce(&KycService) -> Result<T, TalerError> + Send + 'static,
    ) -> Result<T, TalerError> {
        let service = Arc::clone(&self.service);
        self.quick
            .run(move || work(&service))
            .await
            .map_err(|e| internal(&e))?
    }
}

#[derive(Deserialize)]
struct InfoQuery {
    timeout_ms: Option<String>,
}

/// `If-None-Match` as sent (quotes included); a malformed value never matches.
fn if_none_match(headers: &HeaderMap) -> Option<String> {
    headers.get(IF_NONE_MATCH)?.to_str().ok().map(str::to_owned)
}

async fn kyc_info(
    State(kyc): State<KycHttp>,
    Path(token): Path<String>,
    Query(query): Query<InfoQuery>,
    request: Request,
) -> Response {
    let timeout = match query.timeout_ms.as_deref().map(str::parse::<u64>) {
        None => Duration::ZERO,
        Some(Ok(ms)) => Duration::from_millis(ms).min(MAX_LONG_POLL),
        Some(Err(_)) => {
            let error =
                TalerError::new(ErrorCode::GenericParameterMalformed).with_detail("timeout_ms");
            return kyc_error(error);
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let known = if_none_match(request.headers());
    let mut changes = kyc.changes.subscribe();
    loop {
        // Mark the current generation seen before reading, so no change slips between.
        changes.borrow_and_update();
        let lookup = token.clone();
        let info = match kyc.quick(move |service| service.kyc_info(&lookup)).await {
            Ok(info) => info,
            Err(error) => return kyc_error(error),
        };
        let unchanged = known.as_deref() == Some(info.etag().as_str());
        if !unchanged || info.information.is_none() {
            return info_response(info, unchanged);
        }
        let waiting = Waiting::start(&kyc.long_polls);
        let waited = tokio::time::timeout_at(deadline, changes.changed()).await;
        drop(waiting);
        if !matches!(waited, Ok(Ok(()))) {
            return info_response(info, true);
        }
    }
}

fn info_response(info: KycInfo, not_modified: bool) -> Response {
    let Some(information) = &info.information else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(information).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&info.etag()) {
        headers.insert(ETAG, etag);
    }
    response
}

async fn kyc_start(State(kyc): State<KycHttp>, Path(id): Path<String>, body: Bytes) -> Response {
    let started = kyc.blocking(move |service| {
        service.check_start_id(&id)?;
        // The body is ignored, but must be a JSON object when present (empty counts as `{}`).
        if !body.is_empty() {
            from_object_slice::<serde_json::Value>(&body).map_err(|e| {
                TalerError::new(ErrorCode::GenericJsonInvalid).with_detail(e.to_string())
            })?;
        }
        service.start(&id)
    });
    match started.await {
        Ok(redirect_url) => {
            Json(serde_json::json!({ "redirect_url": redirect_url })).into_response()
        }
        Err(error) => kyc_error(error),
    }
}

type Attributes = serde_json::Map<String, serde_json::Value>;

/// An upload's attributes: a JSON object, or the fields of an HTML form as strings (files of a
/// multipart form as `{filename, content_type, data}` with the data in base32, as upstream).
pub(super) async fn upload_attributes(
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Attributes, TalerError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" => {
            parse_off_the_workers(move || {
                from_object_slice::<Attributes>(&body).map_err(|e| {
                    TalerError::new(ErrorCode::GenericJsonInvalid).with_detail(e.to_string())
                })
            })
            .await
        }
        "application/x-www-form-urlencoded" => {
            parse_off_the_workers(move || {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(&body).map_err(|e| {
                        TalerError::new(ErrorCode::GenericParameterMalformed)
                            .with_detail(e.to_string())
                    })?;
                Ok(pairs
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect())
            })
            .await
        }
        "multipart/form-data" => multipart_attributes(content_type, body).await,
        other => Err(TalerError::new(ErrorCode::GenericParameterMalformed)
            .with_detail(format!("unsupported content type {other}"))),
    }
}

/// Upload bodies parsed at once: a few large ones must not occupy every thread.
static UPLOAD_PARSES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Parses an upload body on the blocking pool, at most [`UPLOAD_PARSES`] at a time, so that
/// request workers keep answering other requests meanwhile.
async fn parse_off_the_workers(
    parse: impl FnOnce() -> Result<Attributes, TalerError> + Send + 'static,
) -> Result<Attributes, TalerError> {
    let _permit = UPLOAD_PARSES.acquire().await.map_err(|e| internal(&e))?;
    tokio::task::spawn_blocking(parse)
        .await
        .map_err(|e| internal(&e))?
}

async fn multipart_attributes(content_type: &str, body: Bytes) -> Result<Attributes, TalerError> {
    let malformed = |e: &dyn std::fmt::Display| {
        TalerError::new(ErrorCode::GenericParameterMalformed).with_detail(e.to_string())
    };
    let request = axum::http::Request::builder()
        .header(CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .map_err(|e| malformed(&e))?;
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| malformed(&e))?;
    let mut attributes = Attributes::new();
    while let Some(field) = form.next_field().await.map_err(|e| malformed(&e))? {
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        let value = match field.file_name().map(str::to_owned) {
            None => serde_json::Value::String(field.text().await.map_err(|e| malformed(&e))?),
            Some(filename) => {
                let content_type = field.content_type().map(str::to_owned);
                let data = field.bytes().await.map_err(|e| malformed(&e))?;
                serde_json::json!({
                    "filename": filename,
                    "content_type": content_type,
                    "data": crate::domain::primitives::base32::encode(&data),
                })
            }
        };
        attributes.insert(name, value);
    }
    Ok(attributes)
}

async fn kyc_upload(
    State(kyc): State<KycHttp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The id first: an unknown one costs a lookup, not the parse of up to 16 MiB.
    let checked = id.clone();
    if let Err(error) = kyc
        .quick(move |service| service.check_upload_id(&checked))
        .await
    {
        return kyc_error(error);
    }
    let attributes = match upload_attributes(&headers, body).await {
        Ok(attributes) => attributes,
        Err(error) => return kyc_error(error),
    };
    match kyc
        .blocking(move |service| service.upload(&id, attributes))
        .await
    {
        Ok(_) => {
            kyc.changed();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => kyc_error(error),
    }
}

#[derive(Deserialize)]
struct ProofQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn kyc_proof(
    State(kyc): State<KycHttp>,
    Path(provider): Path<String>,
    Query(query): Query<ProofQuery>,
) -> Response {
    let params = ProofParams {
        state: query.state,
        code: query.code,
        error: query.error,
        error_description: query.error_description,
    };
    let service = Arc::clone(&kyc.service);
    let outcome = tokio::task::spawn_blocking(move || service.proof(&provider, params)).await;
    kyc.changed();
    match outcome {
        Ok(Ok(next)) => match HeaderValue::from_str(&next) {
            Ok(location) => (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response(),
            Err(e) => proof_page(StatusCode::INTERNAL_SERVER_ERROR, &internal(&e)),
        },
        Ok(Err(ProofFailure::Json { status, error })) => ApiError {
            status: status_code(status),
            error,
        }
        .into_response(),
        Ok(Err(ProofFailure::Page { status, error })) => proof_page(status_code(status), &error),
        Err(join) => proof_page(StatusCode::INTERNAL_SERVER_ERROR, &internal(&join)),
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn proof_page(status: StatusCode, error: &TalerError) -> Response {
    if status.is_server_error() {
        tracing::error!(code = error.code.number(), detail = ?error.detail, "KYC proof failed");
    }
    let page = super::pages::render_message(
        "Identity check not completed",
        &error.hint,
        Some(error.code.number()),
    );
    (status, page).into_response()
}

async fn kyc_done() -> Html<String> {
    super::pages::render_message(
        "Step complete",
        "Thank you. This step of the identity check is complete; you may close this page.",
        None,
    )
}

/// The description of a form the customer's page renders (talerbox's own endpoint).
async fn kyc_form(State(state): State<KycHttp>, Path(form): Path<String>) -> Response {
    match crate::domain::kyc::describe_form(state.service.rules(), &form) {
        Some(description) => Json(description).into_response(),
        None => kyc_error(
            TalerError::new(ErrorCode::ExchangeKycGenericLogicUnknown)
                .with_hint("no such form")
                .with_detail(form),
        ),
    }
}

#[derive(Deserialize)]
struct TriggerRequest {
    payto_uri: String,
    measures: String,
}

async fn admin_trigger(State(kyc): State<KycHttp>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(expected) = kyc.admin_token.clone() else {
        return ApiError::new(StatusCode::NOT_FOUND, ErrorCode::GenericEndpointUnknown)
            .into_response();
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes())) {
        return ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::GenericUnauthorized)
            .into_response();
    }
    let request: TriggerRequest = match from_object_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return kyc_error(
                TalerError::new(ErrorCode::GenericJsonInvalid).with_detail(e.to_string()),
            );
        }
    };
    let spec = MeasureSpec::parse(&request.measures);
    match kyc
        .blocking(move |service| {
            service.trigger(&request.payto_uri, &spec, RequirementTrigger::Admin)
        })
        .await
    {
        Ok(triggered) => {
            kyc.changed();
            Json(triggered).into_response()
        }
        Err(error) => kyc_error(error),
    }
}

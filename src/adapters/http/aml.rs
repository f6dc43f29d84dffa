//! The exchange's AML officer routes: `GET /aml/$OFFICER_PUB/{attributes/$H,decisions}` and
//! `POST /management/aml-officers` (exchange-aml.md §2–§5).
//!
//! The path after `/aml/` is split here, in the spec's check order (officer key 400 → missing
//! operation 404 → signature 403 → officer 404/409 → operation 404), so that every malformed
//! request gets its own code instead of the router's generic 404.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{ACCEPT, ALLOW, CONTENT_DISPOSITION, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::error::ApiError;
use super::kyc::KycHttp;
use super::lanes::QuickLane;
use super::negotiate::export_format;
use crate::domain::aml::{
    AmlError, AmlService, ExportFormat, PendingRead, SignedExport, parse_officer_pub,
};
use crate::domain::evidence::EXPORT_PROOF_HEADER;
use crate::domain::kyc::Decided;
use crate::domain::primitives::{ErrorCode, TalerError};
use crate::ports::StoreError;

/// The officer's query signature header.
const SIGNATURE_HEADER: &str = "taler-aml-officer-signature";

#[derive(Clone)]
pub struct AmlHttp {
    pub service: Arc<AmlService>,
    pub quick: Arc<QuickLane>,
    /// Decisions change KYC state (and wake kyc-info long polls).
    pub kyc: KycHttp,
}

/// The AML routes, to be merged into the exchange's router.
pub fn routes(state: AmlHttp) -> Router {
    Router::new()
        .route("/aml", get(officer_get_without_key))
        .route("/aml/{*rest}", get(officer_get).post(officer_post))
        .route("/management/aml-officers", post(register_officer))
        .with_state(state)
}

/// The status of each AML failure (exchange-aml.md §9), in one place.
fn aml_status(error: &AmlError) -> StatusCode {
    match error {
        AmlError::OfficerPubMalformed
        | AmlError::PathSegmentMalformed(_)
        | AmlError::ParameterMalformed(_)
        | AmlError::JsonInvalid(_) => StatusCode::BAD_REQUEST,
        AmlError::SignatureInvalid(_) | AmlError::MasterSignatureInvalid => StatusCode::FORBIDDEN,
        AmlError::WrongNumberOfSegments
        | AmlError::EndpointUnknown
        | AmlError::OperationUnknown
        | AmlError::OfficerUnknown => StatusCode::NOT_FOUND,
        AmlError::OfficerDisabled | AmlError::OfficerMoreRecentPresent => StatusCode::CONFLICT,
        AmlError::PdfDisabled => StatusCode::NOT_IMPLEMENTED,
        AmlError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        AmlError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
        AmlError::Store(StoreError::Internal(_))
        | AmlError::Internal(_)
        | AmlError::JournalFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn aml_error(error: &AmlError) -> Response {
    if error.is_internal() {
        tracing::error!(code = error.code().number(), %error, "AML request failed");
    }
    if matches!(error, AmlError::MethodNotAllowed) {
        return method_not_allowed("POST");
    }
    ApiError {
        status: aml_status(error),
        error: error.to_taler(),
    }
    .into_response()
}

fn lane_failure(cause: &dyn std::fmt::Display) -> Response {
    aml_error(&AmlError::Internal(cause.to_string()))
}

/// What a successful officer GET answers.
enum Answer {
    NoContent,
    Json(Vec<u8>),
    /// An attribute export with its `Talerbox-Export-Proof`.
    Export(SignedExport),
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let vary = (VARY, HeaderValue::from_static("Accept"));
        match self {
            Answer::NoContent => (StatusCode::NO_CONTENT, [vary]).into_response(),
            Answer::Json(body) => (
                [
                    (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                    vary,
                ],
                body,
            )
                .into_response(),
            Answer::Export(export) => {
                let content_type = if export.pdf {
                    "application/pdf"
                } else {
                    "application/json"
                };
                let mut response = (
                    [(CONTENT_TYPE, HeaderValue::from_static(content_type)), vary],
                    export.body,
                )
                    .into_response();
                let headers = response.headers_mut();
                if let Ok(proof) = HeaderValue::from_str(&export.proof.encode()) {
                    headers.insert(EXPORT_PROOF_HEADER, proof);
                }
                if export.pdf {
                    let name = export.h_payto.to_string();
                    let filename = format!("aml-{}.pdf", name.get(..8).unwrap_or(&name));
                    if let Ok(value) =
                        HeaderValue::from_str(&format!("inline; filename=\"{filename}\""))
                    {
                        headers.insert(CONTENT_DISPOSITION, value);
                    }
                }
                response
            }
        }
    }
}

/// An officer GET as received.
struct OfficerGet {
    rest: String,
    signature: Option<String>,
    query: Vec<(String, String)>,
    format: ExportFormat,
}

async fn officer_get_without_key() -> Response {
    aml_error(&AmlError::OfficerPubMalformed)
}

async fn officer_get(
    State(state): State<AmlHttp>,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let header = |name| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
    };
    let format = export_format(header(ACCEPT.as_str()).as_deref());
    let request = OfficerGet {
        rest,
        // A value that is not text cannot be base32: it fails the check like any bad value.
        signature: header(SIGNATURE_HEADER),
        query: serde_urlencoded::from_str(&query.unwrap_or_default()).unwrap_or_default(),
        format,
    };
    let many = asks_for_many_rows(&request.query);
    let service = Arc::clone(&state.service);
    let work = move || dispatch(&service, &request);
    // Rendering a PDF, or decrypting many rows, takes milliseconds: the blocking pool, so
    // that the quick lane stays free for cheap reads.
    let result = if format == ExportFormat::Pdf || many {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|join| lane_failure(&join))
    } else {
        state
            .quick
            .run(work)
            .await
            .map_err(|lane| lane_failure(&lane))
    };
    let pending = match result {
        Ok(Ok(Dispatched::Answer(answer))) => return answer.into_response(),
        Ok(Ok(Dispatched::Journal(pending))) => pending,
        Ok(Err(error)) => return aml_error(&error),
        Err(response) => return response,
    };
    // Waiting for the journal's commit holds no lane thread, so that concurrent reads share
    // the writer's group commits.
    let service = Arc::clone(&state.service);
    match tokio::task::spawn_blocking(move || service.commit_read(pending)).await {
        Ok(Ok(answer)) => answer.into_response(),
        Ok(Err(error)) => aml_error(&error),
        Err(join) => lane_failure(&join),
    }
}

/// A dispatched GET: answered, or to be answered once its journal entry is committed.
enum Dispatched {
    Answer(Answer),
    Journal(PendingRead<Answer>),
}

impl From<Answer> for Dispatched {
    fn from(answer: Answer) -> Self {
        Dispatched::Answer(answer)
    }
}

/// Rows beyond the default page: a page of them may take milliseconds to decrypt.
const QUICK_ROWS: u64 = 64;

/// Whether `limit` asks for more than [`QUICK_ROWS`] rows (a malformed one is refused soon
/// enough anywhere).
fn asks_for_many_rows(query: &[(String, String)]) -> bool {
    query
        .iter()
        .find(|(name, _)| name == "limit")
        .and_then(|(_, value)| value.parse::<i64>().ok())
        .is_some_and(|limit| limit.unsigned_abs() > QUICK_ROWS)
}

/// `$OFFICER_PUB/$OP[/...]` in the spec's check order.
fn dispatch(service: &AmlService, request: &OfficerGet) -> Result<Dispatched, AmlError> {
    let mut segments = request.rest.split('/');
    let officer_pub = parse_officer_pub(segments.next().unwrap_or_default())?;
    let operation = segments.next().ok_or(AmlError::WrongNumberOfSegments)?;
    let officer = service.authenticate(&officer_pub, request.signature.as_deref())?;
    match operation {
        "attributes" => {
            let h_payto = segments.next().ok_or(AmlError::EndpointUnknown)?;
            no_more(&mut segments)?;
            let pending =
                service.prepare_attributes(&officer, h_payto, &request.query, request.format)?;
            Ok(Dispatched::Journal(pending.map(|export| {
                export.map_or(Answer::NoContent, Answer::Export)
            })))
        }
        "journal" => {
            no_more(&mut segments)?;
            match service.prepare_journal(&officer, &request.query)? {
                Ok(pending) => Ok(Dispatched::Journal(pending.try_map(json_answer)?)),
                Err(page) => json_or_none(page),
            }
        }
        "decisions" => {
            no_more(&mut segments)?;
            let pending = service.prepare_decisions(&officer, &request.query)?;
            Ok(Dispatched::Journal(pending.try_map(json_answer)?))
        }
        "measures" => {
            no_more(&mut segments)?;
            json_or_none(Some(service.measures(&officer)))
        }
        "kyc-statistics" => {
            let names = segments.next().ok_or(AmlError::EndpointUnknown)?;
            no_more(&mut segments)?;
            let counters = service.kyc_statistics(&officer, names, &request.query)?;
            json_or_none(counters.map(|statistics| serde_json::json!({"statistics": statistics})))
        }
        "legitimizations" => {
            no_more(&mut segments)?;
            let sets = service.legitimizations(&officer, &request.query)?;
            json_or_none(sets.map(|measures| serde_json::json!({"measures": measures})))
        }
        "accounts" => {
            no_more(&mut segments)?;
            let accounts = service.accounts(&officer, &request.query)?;
            json_or_none(accounts.map(|accounts| serde_json::json!({"accounts": accounts})))
        }
        "decision" => Err(AmlError::MethodNotAllowed),
        _ => Err(AmlError::OperationUnknown),
    }
}

/// Operations officers read with GET.
const GET_OPERATIONS: [&str; 7] = [
    "attributes",
    "journal",
    "decisions",
    "measures",
    "kyc-statistics",
    "legitimizations",
    "accounts",
];

fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        error: TalerError::new(ErrorCode::GenericMethodInvalid),
    }
    .into_response();
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// The status of a decision's refusal (exchange-aml-decisions.md §3.5, §7).
fn decision_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::ExchangeGenericBankAccountUnknown => StatusCode::NOT_FOUND,
        ErrorCode::GenericDbSoftFailure => StatusCode::SERVICE_UNAVAILABLE,
        other => ApiError::from(other).status,
    }
}

/// `POST /aml/$OFFICER_PUB/decision`; POSTs to the read operations are 405.
async fn officer_post(
    State(state): State<AmlHttp>,
    Path(rest): Path<String>,
    body: Bytes,
) -> Response {
    let mut segments = rest.split('/');
    let officer_pub = match parse_officer_pub(segments.next().unwrap_or_default()) {
        Ok(key) => key,
        Err(error) => return aml_error(&error),
    };
    let Some(operation) = segments.next() else {
        return aml_error(&AmlError::WrongNumberOfSegments);
    };
    if operation != "decision" {
        return if GET_OPERATIONS.contains(&operation) {
            method_not_allowed("GET")
        } else {
            aml_error(&AmlError::OperationUnknown)
        };
    }
    if let Err(error) = no_more(&mut segments) {
        return aml_error(&error);
    }
    let service = Arc::clone(&state.kyc.service);
    let decided = tokio::task::spawn_blocking(move || service.decide(&officer_pub, &body)).await;
    match decided {
        Ok(Ok(Decided::Applied { .. })) => {
            state.kyc.changed();
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Ok(Decided::Replayed)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(error)) => {
            // The decision may be applied although its instant measure failed.
            state.kyc.changed();
            let status = decision_status(error.code);
            if status.is_server_error() {
                tracing::error!(%error, "AML decision failed");
            }
            ApiError { status, error }.into_response()
        }
        Err(join) => lane_failure(&join),
    }
}

fn no_more<'a>(segments: &mut impl Iterator<Item = &'a str>) -> Result<(), AmlError> {
    match segments.next() {
        Some(_) => Err(AmlError::EndpointUnknown),
        None => Ok(()),
    }
}

fn json_or_none(body: Option<impl serde::Serialize>) -> Result<Dispatched, AmlError> {
    json_answer(body).map(Dispatched::from)
}

fn json_answer(body: Option<impl serde::Serialize>) -> Result<Answer, AmlError> {
    match body {
        None => Ok(Answer::NoContent),
        Some(body) => Ok(Answer::Json(
            serde_json::to_vec(&body).map_err(|e| AmlError::Internal(e.to_string()))?,
        )),
    }
}

async fn register_officer(State(state): State<AmlHttp>, body: Bytes) -> Response {
    let service = Arc::clone(&state.service);
    match tokio::task::spawn_blocking(move || service.register_officer(&body)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(error)) => aml_error(&error),
        Err(join) => lane_failure(&join),
    }
}

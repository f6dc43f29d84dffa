//! `POST /kyc-wallet` and `GET /kyc-check/$H_NORMALIZED_PAYTO` (exchange-kyc spec §8.1,
//! docs/api-coverage.md), merged into the KYC router. kyc-check long polls wait on the same
//! change signal as kyc-info.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::kyc::{KycHttp, MAX_LONG_POLL, kyc_error};
use super::metrics::Waiting;
use crate::domain::kyc::{AccountCheck, LongPollTarget, WalletAnswer, WalletRegistration};
use crate::domain::primitives::json_body::from_object_slice;
use crate::domain::primitives::{
    Amount, EddsaPublicKey, EddsaSignature, ErrorCode, NormalizedPaytoHash, TalerError,
};

const SIGNATURE_HEADER: &str = "account-owner-signature";

pub fn routes() -> Router<KycHttp> {
    Router::new()
        .route("/kyc-wallet", post(kyc_wallet))
        .route("/kyc-check/{h_payto}", get(kyc_check))
}

#[derive(Deserialize)]
struct WalletRequest {
    reserve_pub: EddsaPublicKey,
    reserve_sig: EddsaSignature,
    balance: Amount,
}

async fn kyc_wallet(State(kyc): State<KycHttp>, body: Bytes) -> Response {
    let request: WalletRequest = match from_object_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let error = TalerError::new(ErrorCode::GenericJsonInvalid).with_detail(e.to_string());
            return kyc_error(error);
        }
    };
    let registration = WalletRegistration {
        reserve_pub: request.reserve_pub,
        reserve_sig: request.reserve_sig,
        balance: request.balance,
    };
    let answer = kyc
        .blocking(move |service| service.kyc_wallet(&registration))
        .await;
    match answer {
        Ok(WalletAnswer::Allowed {
            expiration_time,
            next_threshold,
        }) => {
            kyc.changed();
            let mut body = json!({ "expiration_time": expiration_time });
            if let Some(threshold) = next_threshold {
                body["next_threshold"] = json!(threshold);
            }
            Json(body).into_response()
        }
        Ok(WalletAnswer::KycRequired {
            h_payto,
            account_pub,
            requirement_row,
        }) => {
            kyc.changed();
            let code = ErrorCode::ExchangeGenericKycRequired;
            let mut body = json!({
                "code": code.number(),
                "hint": code.short_name(),
                "h_payto": h_payto,
                "requirement_row": requirement_row,
            });
            if let Some(key) = account_pub {
                body["account_pub"] = json!(key);
            }
            (StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS, Json(body)).into_response()
        }
        Err(error) => kyc_error(error),
    }
}

#[derive(Deserialize)]
struct CheckQuery {
    timeout_ms: Option<String>,
    lpt: Option<String>,
}

/// The request's parts in the order the exchange checks them: path, signature, query.
fn check_request(
    h_payto: &str,
    headers: &HeaderMap,
    query: &CheckQuery,
) -> Result<
    (
        NormalizedPaytoHash,
        EddsaSignature,
        Duration,
        LongPollTarget,
    ),
    TalerError,
> {
    let h_payto: NormalizedPaytoHash = h_payto.parse().map_err(|_| {
        TalerError::new(ErrorCode::GenericPathSegmentMalformed).with_detail("h_payto")
    })?;
    let malformed =
        |name: &str| TalerError::new(ErrorCode::GenericParameterMalformed).with_detail(name);
    let signature = headers.get(SIGNATURE_HEADER).ok_or_else(|| {
        TalerError::new(ErrorCode::GenericParameterMissing).with_detail(SIGNATURE_HEADER)
    })?;
    let signature: EddsaSignature = signature
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| malformed(SIGNATURE_HEADER))?;
    let number = |value: &Option<String>, name: &str| match value.as_deref() {
        None => Ok(0),
        Some(text) => text.parse::<u64>().map_err(|_| malformed(name)),
    };
    let timeout =
        Duration::from_millis(number(&query.timeout_ms, "timeout_ms")?).min(MAX_LONG_POLL);
    let target = LongPollTarget::from_number(number(&query.lpt, "lpt")?);
    Ok((h_payto, signature, timeout, target))
}

async fn kyc_check(
    State(kyc): State<KycHttp>,
    Path(h_payto): Path<String>,
    Query(query): Query<CheckQuery>,
    headers: HeaderMap,
) -> Response {
    let (h_payto, signature, timeout, target) = match check_request(&h_payto, &headers, &query) {
        Ok(parts) => parts,
        Err(error) => return kyc_error(error),
    };
    if !kyc.service.kyc_enabled() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut changes = kyc.changes.subscribe();
    loop {
        // Mark the current generation seen before reading, so no change slips between.
        changes.borrow_and_update();
        let check = match kyc
            .quick(move |service| service.kyc_check(&h_payto, &signature))
            .await
        {
            Ok(check) => check,
            Err(error) => return kyc_error(error),
        };
        if target.keeps_waiting(&check) {
            let _waiting = Waiting::start(&kyc.long_polls);
            let waited = tokio::time::timeout_at(deadline, changes.changed()).await;
            if matches!(waited, Ok(Ok(()))) {
                continue;
            }
        }
        return check_response(check);
    }
}

fn check_response(check: AccountCheck) -> Response {
    match check {
        AccountCheck::Unknown => {
            kyc_error(TalerError::new(ErrorCode::ExchangeKycCheckRequestUnknown))
        }
        AccountCheck::NoKey => kyc_error(TalerError::new(
            ErrorCode::ExchangeKycCheckAuthorizationKeyUnknown,
        )),
        AccountCheck::WrongKey { expected } => {
            let code = ErrorCode::ExchangeKycCheckAuthorizationFailed;
            let body = json!({
                "code": code.number(),
                "hint": code.short_name(),
                "expected_account_pub": expected,
            });
            (StatusCode::FORBIDDEN, Json(body)).into_response()
        }
        AccountCheck::Authorized(status) => {
            let code = if status.kyc_required {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            (code, Json(status)).into_response()
        }
    }
}

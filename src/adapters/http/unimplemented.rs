//! Exchange endpoints that the reported protocol version implies but talerbox does not serve
//! (coins, reserves, purses, wire transfers, key management, …). They answer 501 instead of
//! 404, so a client can tell "not here" from "wrong URL" (docs/api-coverage.md).

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{MethodFilter, on};

use super::error::ApiError;
use crate::domain::primitives::ErrorCode;

/// The hint of every 501 answer.
pub const NOT_IMPLEMENTED_HINT: &str = "not implemented by talerbox";

const GET: MethodFilter = MethodFilter::GET;
const POST: MethodFilter = MethodFilter::POST;
const DELETE: MethodFilter = MethodFilter::DELETE;

/// The routes of exchange protocol 23 that talerbox leaves out, relative to the exchange base
/// URL (the exchange's own dispatch table, plus `wads` from the API documentation).
pub const EXCHANGE_NOT_IMPLEMENTED: &[(MethodFilter, &str)] = &[
    (GET, "/seed"),
    (GET, "/terms"),
    (GET, "/privacy"),
    (GET, "/keys"),
    (GET, "/metrics"),
    (POST, "/batch-deposit"),
    (POST, "/csr-melt"),
    (POST, "/csr-withdraw"),
    (GET, "/reserves/{reserve_pub}"),
    (GET, "/reserves/{reserve_pub}/history"),
    (POST, "/reserves/{reserve_pub}/batch-withdraw"),
    (POST, "/reserves/{reserve_pub}/age-withdraw"),
    (POST, "/reserves/{reserve_pub}/purse"),
    (POST, "/reserves/{reserve_pub}/open"),
    (POST, "/reserves/{reserve_pub}/close"),
    (POST, "/age-withdraw/{commitment}/reveal"),
    (GET, "/reserves-attest/{reserve_pub}"),
    (POST, "/reserves-attest/{reserve_pub}"),
    (GET, "/coins/{coin_pub}/history"),
    (GET, "/coins/{coin_pub}/link"),
    (POST, "/coins/{coin_pub}/melt"),
    (POST, "/coins/{coin_pub}/recoup"),
    (POST, "/coins/{coin_pub}/recoup-refresh"),
    (POST, "/coins/{coin_pub}/refund"),
    (POST, "/refreshes/{commitment}/reveal"),
    (GET, "/transfers/{wtid}"),
    (
        GET,
        "/deposits/{h_wire}/{merchant_pub}/{h_contract_terms}/{coin_pub}",
    ),
    (POST, "/purses/{purse_pub}/create"),
    (POST, "/purses/{purse_pub}/deposit"),
    (POST, "/purses/{purse_pub}/merge"),
    (GET, "/purses/{purse_pub}/merge"),
    (GET, "/purses/{purse_pub}/deposit"),
    (DELETE, "/purses/{purse_pub}"),
    (GET, "/contracts/{contract_pub}"),
    (GET, "/wads/{wad_id}"),
    (GET, "/kyc-webhook/{*rest}"),
    (POST, "/kyc-webhook/{*rest}"),
    (GET, "/management/keys"),
    (POST, "/management/keys"),
    (POST, "/management/wire"),
    (POST, "/management/wire/disable"),
    (POST, "/management/wire-fee"),
    (POST, "/management/global-fee"),
    (POST, "/management/extensions"),
    (POST, "/management/drain"),
    (POST, "/management/partners"),
    (POST, "/management/auditors"),
    (POST, "/management/auditors/{auditor_pub}/disable"),
    (POST, "/management/denominations/{h_denom_pub}/revoke"),
    (POST, "/management/signkeys/{exchange_pub}/revoke"),
    (POST, "/auditors/{auditor_pub}/{h_denom_pub}"),
];

/// 501 with code 21: the registry has no "not implemented" code, and 21
/// (`GENERIC_ENDPOINT_UNKNOWN`) is what a client would get from a server without the route.
async fn not_implemented() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        ErrorCode::GenericEndpointUnknown,
    )
    .with_hint(NOT_IMPLEMENTED_HINT)
}

/// The routes of `table`, each answering 501 for its methods.
pub fn routes<S: Clone + Send + Sync + 'static>(table: &[(MethodFilter, &str)]) -> Router<S> {
    let mut merged: Vec<(&str, MethodFilter)> = Vec::new();
    for (method, path) in table {
        match merged.iter_mut().find(|(p, _)| p == path) {
            Some((_, methods)) => *methods = methods.or(*method),
            None => merged.push((path, *method)),
        }
    }
    merged
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, on(methods, not_implemented))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_builds_one_route_per_path() {
        // axum panics on a path routed twice; merging the methods per path avoids it.
        let _router: Router = routes(EXCHANGE_NOT_IMPLEMENTED);
        let paths: std::collections::BTreeSet<_> =
            EXCHANGE_NOT_IMPLEMENTED.iter().map(|(_, p)| *p).collect();
        assert!(paths.contains("/keys") && paths.contains("/kyc-webhook/{*rest}"));
    }
}

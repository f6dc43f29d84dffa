//! The bank's Corebank routes (mounted under the bank prefix).

use axum::Router;

/// Corebank protocol version (libeufin 0.11.1's, until the v10 2FA gate exists).
pub const BANK_VERSION: &str = "4:8:0";

/// Request bodies of the bank are limited to 4 KiB, as in libeufin.
pub const BANK_BODY_LIMIT: usize = 4 * 1024;

#[derive(Clone)]
pub struct BankHttp {
    pub config: serde_json::Value,
}

impl BankHttp {
    pub fn new(
        config: &crate::config::BankConfig,
        base_url: &str,
        specification: &crate::config::CurrencySpecification,
    ) -> Self {
        let body = serde_json::json!({
            "name": "taler-corebank",
            "version": BANK_VERSION,
            "base_url": base_url,
            "currency": config.currency,
            "currency_specification": specification,
        });
        BankHttp { config: body }
    }
}

pub fn router(state: BankHttp) -> Router {
    let routes = Router::new().route("/config", super::static_json(&state.config));
    super::limit_bodies(routes, BANK_BODY_LIMIT)
}

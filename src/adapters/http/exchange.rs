//! The exchange's routes (mounted under the exchange prefix).

use axum::Router;

/// Protocol version of the exchange (the Dec 2024 C snapshot the spec follows).
pub const EXCHANGE_VERSION: &str = "23:0:6";

#[derive(Clone)]
pub struct ExchangeHttp {
    /// The `/config` body, fixed at startup.
    pub config: serde_json::Value,
    pub aml: super::aml::AmlHttp,
}

impl ExchangeHttp {
    pub fn new(
        currency: &str,
        specification: &crate::config::CurrencySpecification,
        aml: super::aml::AmlHttp,
    ) -> Self {
        // The exchange's specification names its currency (the bank's does not).
        let mut currency_specification = serde_json::json!(specification);
        if let Some(fields) = currency_specification.as_object_mut() {
            fields.insert("currency".to_owned(), currency.into());
        }
        let config = serde_json::json!({
            "name": "taler-exchange",
            "version": EXCHANGE_VERSION,
            "currency": currency,
            "currency_specification": currency_specification,
            "supported_kyc_requirements": [],
            "implementation": "urn:net:taler:specs:taler-exchange:talerbox",
        });
        ExchangeHttp { config, aml }
    }
}

pub fn router(state: ExchangeHttp) -> Router {
    Router::new()
        .route("/config", super::static_json(&state.config))
        .merge(super::aml::routes(state.aml))
        .merge(super::unimplemented::routes(
            super::unimplemented::EXCHANGE_NOT_IMPLEMENTED,
        ))
}

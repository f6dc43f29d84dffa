//! The challenger's routes (mounted under the challenger prefix).

use axum::Router;

/// Challenger protocol version: implements v1 to v6, all additive.
pub const CHALLENGER_VERSION: &str = "6:0:5";

/// Request bodies of the challenger are limited to 64 KiB.
pub const CHALLENGER_BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct ChallengerHttp {
    pub config: serde_json::Value,
}

impl ChallengerHttp {
    pub fn new(config: &crate::config::ChallengerConfig) -> Self {
        let body = serde_json::json!({
            "name": "challenger",
            "version": CHALLENGER_VERSION,
            "implementation": "urn:net:taler:specs:challenger:talerbox",
            "restrictions": config.restrictions,
            "address_type": config.address_type,
            "address_hint": config.address_hint,
        });
        ChallengerHttp { config: body }
    }
}

pub fn router(state: ChallengerHttp) -> Router {
    let routes = Router::new().route("/config", super::static_json(&state.config));
    super::limit_bodies(routes, CHALLENGER_BODY_LIMIT)
}

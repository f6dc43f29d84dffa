//! The browser pages (the customer's KYC page, the officer's back office) and their shared
//! files: every file is embedded in the binary and listed once in `FILES`, served under the
//! exchange's prefix with a Content-Security-Policy that allows the server alone.
//!
//! URLs: `kyc-spa/{token}` is the customer's page (the page reads the token from its
//! location), `kyc-spa/{asset}` its files; `aml-spa` the officer's page, `aml-spa/{asset}` its
//! files; `web/common/{asset}` the shared ones. An asset name always has an extension, a token
//! never does. HTML files may write `{{exchange}}` for the exchange's mount path (`/exchange/`),
//! so that their links hold with or without a trailing slash in the page's address.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Only this server: no inline script or style, nothing from another host, no framing.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; img-src 'self' data: blob:; \
     object-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every served file: its path below the exchange's prefix, its bytes and content type.
/// The officer's files are listed with theirs; the pages' entry points end in `/`.
const FILES: &[(&str, &[u8], &str)] = &[
    (
        "web/common/style.css",
        include_bytes!("../../../web/common/style.css"),
        CSS,
    ),
    (
        "web/common/api.js",
        include_bytes!("../../../web/common/api.js"),
        JS,
    ),
    (
        "web/common/base32.js",
        include_bytes!("../../../web/common/base32.js"),
        JS,
    ),
    (
        "kyc-spa/",
        include_bytes!("../../../web/kyc-spa/index.html"),
        HTML,
    ),
    (
        "kyc-spa/app.js",
        include_bytes!("../../../web/kyc-spa/app.js"),
        JS,
    ),
    (
        "kyc-spa/logic.js",
        include_bytes!("../../../web/kyc-spa/logic.js"),
        JS,
    ),
    (
        "aml-spa/",
        include_bytes!("../../../web/aml-spa/index.html"),
        HTML,
    ),
    (
        "aml-spa/app.js",
        include_bytes!("../../../web/aml-spa/app.js"),
        JS,
    ),
    (
        "aml-spa/api.js",
        include_bytes!("../../../web/aml-spa/api.js"),
        JS,
    ),
    (
        "aml-spa/chart.js",
        include_bytes!("../../../web/aml-spa/chart.js"),
        JS,
    ),
    (
        "aml-spa/crypto.js",
        include_bytes!("../../../web/aml-spa/crypto.js"),
        JS,
    ),
    (
        "aml-spa/decide.js",
        include_bytes!("../../../web/aml-spa/decide.js"),
        JS,
    ),
    (
        "aml-spa/dom.js",
        include_bytes!("../../../web/aml-spa/dom.js"),
        JS,
    ),
    (
        "aml-spa/keystore.js",
        include_bytes!("../../../web/aml-spa/keystore.js"),
        JS,
    ),
    (
        "aml-spa/aml.css",
        include_bytes!("../../../web/aml-spa/aml.css"),
        CSS,
    ),
];

/// A file ready to serve: bytes with the prefix filled in, and their ETag.
struct Asset {
    path: &'static str,
    body: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

#[derive(Clone)]
struct Assets(Arc<Vec<Asset>>);

impl Assets {
    fn new(exchange_mount: &str) -> Assets {
        let mount = format!("{}/", exchange_mount.trim_end_matches('/'));
        let assets = FILES
            .iter()
            .map(|&(path, bytes, content_type)| {
                let body = if content_type == HTML {
                    Bytes::from(String::from_utf8_lossy(bytes).replace("{{exchange}}", &mount))
                } else {
                    Bytes::from_static(bytes)
                };
                let digest = Sha256::digest(&body);
                let tag = data_encoding::HEXLOWER.encode(&digest[..16]);
                let etag = HeaderValue::try_from(format!("\"{tag}\""))
                    .unwrap_or(HeaderValue::from_static("\"0\""));
                Asset {
                    path,
                    body,
                    content_type,
                    etag,
                }
            })
            .collect();
        Assets(Arc::new(assets))
    }

    fn serve(&self, path: &str, headers: &HeaderMap) -> Response {
        let Some(asset) = self.0.iter().find(|asset| asset.path == path) else {
            return not_found();
        };
        let fresh = headers
            .get(IF_NONE_MATCH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|tags| {
                tags.split(',')
                    .any(|tag| tag.trim() == "*" || tag.trim().as_bytes() == asset.etag.as_bytes())
            });
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (
                [(CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
                asset.body.clone(),
            )
                .into_response()
        };
        let headers = response.headers_mut();
        headers.insert(ETAG, asset.etag.clone());
        // Revalidate on every load: a new binary must never run with an old script.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        secure(headers);
        response
    }
}

/// The headers every page and asset carries, error pages included.
fn secure(headers: &mut HeaderMap) {
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// A plain page for a browser that asked for a file that does not exist.
fn not_found() -> Response {
    let page = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>Not found</title></head><body><h1>Not found</h1>\
        <p>There is no such page or file here. Error code 21.</p></body></html>\n";
    let mut response = (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, HeaderValue::from_static(HTML))],
        page,
    )
        .into_response();
    secure(response.headers_mut());
    response
}

/// The pages' routes, to be nested at `exchange_mount` (e.g. `/exchange`). GET and HEAD.
pub fn router(exchange_mount: &str) -> Router {
    Router::new()
        .route("/kyc-spa/{name}", get(customer))
        .route("/aml-spa", get(officer_page))
        .route("/aml-spa/{name}", get(officer_asset))
        .route("/web/common/{name}", get(common))
        .with_state(Assets::new(exchange_mount))
}

/// The customer's page for any token-like name, else one of its files.
async fn customer(
    State(assets): State<Assets>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if name.contains('.') {
        assets.serve(&format!("kyc-spa/{name}"), &headers)
    } else {
        assets.serve("kyc-spa/", &headers)
    }
}

async fn officer_page(State(assets): State<Assets>, headers: HeaderMap) -> Response {
    assets.serve("aml-spa/", &headers)
}

async fn officer_asset(
    State(assets): State<Assets>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    assets.serve(&format!("aml-spa/{name}"), &headers)
}

async fn common(
    State(assets): State<Assets>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    assets.serve(&format!("web/common/{name}"), &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_gets_the_mount_and_every_file_an_etag() {
        let assets = Assets::new("/exchange");
        let page = assets.0.iter().find(|a| a.path == "kyc-spa/").unwrap();
        let text = std::str::from_utf8(&page.body).unwrap();
        assert!(!text.contains("{{exchange}}"), "{text}");
        assert!(text.contains("/exchange/web/common/style.css"), "{text}");
        let mut tags: Vec<_> = assets.0.iter().map(|a| a.etag.clone()).collect();
        tags.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        tags.dedup();
        assert_eq!(tags.len(), FILES.len(), "every file has its own ETag");
    }

    #[test]
    fn a_matching_etag_is_not_modified() {
        let assets = Assets::new("/exchange/");
        let etag = assets.0[0].etag.clone();
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, etag);
        let response = assets.serve(assets.0[0].path, &headers);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert!(response.headers().contains_key(CONTENT_SECURITY_POLICY));
        let missing = assets.serve("kyc-spa/nope.js", &HeaderMap::new());
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}

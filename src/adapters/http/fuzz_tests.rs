//! Property-based fuzzing of the HTTP body decoders: deflate, url-encoded forms and query
//! strings, the challenger's JSON-or-form bodies and the KYC upload's JSON, form and
//! multipart bodies. Same rules and case counts as the domain's fuzz targets.

use std::io::Write;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::body::inflate;
use super::challenger::request;
use super::kyc::upload_attributes;
use crate::domain::fuzz_tests::{fuzz_config, near};

fn headers(content_type: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers
}

fn form_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => near("([a-z_]{0,8}=[-0-9A-Za-z%+.@]{0,16}&?){0,5}").prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

/// A multipart body with `boundary` around parts whose headers and contents are generated.
fn multipart_body() -> impl Strategy<Value = Vec<u8>> {
    let part = (
        near("[a-zA-Z_]{0,10}"),
        proptest::option::of(near("[a-z.]{0,10}")),
        near("[ -~]{0,24}"),
        any::<bool>(),
    );
    (prop::collection::vec(part, 0..4), any::<bool>(), ".{0,8}").prop_map(
        |(parts, closed, junk)| {
            let mut body = Vec::new();
            for (name, filename, content, quoted) in parts {
                body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=");
                if quoted {
                    body.extend_from_slice(format!("\"{name}\"").as_bytes());
                } else {
                    body.extend_from_slice(name.as_bytes());
                }
                if let Some(filename) = filename {
                    body.extend_from_slice(format!("; filename=\"{filename}\"").as_bytes());
                    body.extend_from_slice(b"\r\nContent-Type: application/octet-stream");
                }
                body.extend_from_slice(b"\r\n\r\n");
                body.extend_from_slice(content.as_bytes());
                body.extend_from_slice(b"\r\n");
            }
            if closed {
                body.extend_from_slice(b"--XyZ--\r\n");
            }
            body.extend_from_slice(junk.as_bytes());
            body
        },
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"))
}

proptest! {
    #![proptest_config(fuzz_config())]

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_deflate_bodies(data in prop::collection::vec(any::<u8>(), 0..256), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let compressed = deflate(&data);
        prop_assert_eq!(inflate(&compressed, data.len()).ok().map(|b| b.to_vec()), Some(data.clone()));
        if !data.is_empty() {
            prop_assert!(inflate(&compressed, data.len() - 1).is_err());
        }
        // Truncated or corrupted streams are refused, never a panic.
        let mut broken = compressed.clone();
        broken.truncate(cut.index(compressed.len() + 1));
        let _ = inflate(&broken, 1024);
        if let Some(byte) = broken.get_mut(cut.index(compressed.len().max(1))) {
            *byte ^= flip;
        }
        let _ = inflate(&broken, 1024);
        let _ = inflate(&data, 1024);
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_urlencoded_bodies(body in form_bytes()) {
        let pairs = request::pairs(&body);
        let _ = request::params(&body);
        let form = headers("application/x-www-form-urlencoded");
        if let Ok(object) = request::object_body(&form, &body) {
            prop_assert!(object.len() <= pairs.len());
        }
        let _ = request::param_body(&form, &body);
        let _ = request::setup_body(&form, &body, 64 * 1024);
        let _ = request::setup_body(&HeaderMap::new(), &deflate(&body), 64 * 1024);
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_challenger_json_bodies(body in near(r#"\{("[a-z_]{0,8}": ?("[^"]{0,8}"|[0-9]{1,3}|true|null|\[\]|\{\}),? ?){0,4}\}"#)) {
        let json = headers("application/json");
        if let Ok(object) = request::object_body(&json, body.as_bytes()) {
            prop_assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok() || body.trim().is_empty());
            drop(object);
        }
        let _ = request::param_body(&json, body.as_bytes());
        let _ = request::setup_body(&json, body.as_bytes(), 64 * 1024);
    }

    #[test]
    #[ignore = "fuzzing: run with --ignored fuzz_"]
    fn fuzz_upload_bodies(form in form_bytes(), multipart in multipart_body(), json in near(r#"\{("[A-Z_]{0,12}": ?"[^"]{0,8}",? ?){0,4}\}"#)) {
        thread_local! {
            static RUNTIME: tokio::runtime::Runtime = runtime();
        }
        RUNTIME.with(|rt| {
            rt.block_on(async {
                let _ = upload_attributes(&headers("application/x-www-form-urlencoded"), Bytes::from(form)).await;
                let _ = upload_attributes(&headers("multipart/form-data; boundary=XyZ"), Bytes::from(multipart.clone())).await;
                let _ = upload_attributes(&headers("multipart/form-data"), Bytes::from(multipart)).await;
                if let Ok(attributes) = upload_attributes(&headers("application/json"), Bytes::from(json.clone())).await {
                    prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok_and(|v| v.is_object()));
                    drop(attributes);
                }
                Ok(())
            })
        })?;
    }
}

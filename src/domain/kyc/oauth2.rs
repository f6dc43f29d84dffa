//! The exchange's `oauth2` KYC logic, as pure computations (exchange-kyc spec §6): the URLs of
//! the hand-off, the token request, and what the provider's answers must look like.

use serde::Deserialize;

use super::model::OAuth2Provider;
use crate::domain::primitives::{NormalizedPaytoHash, RelativeTime, Timestamp, percent_encode};

/// Where the provider sends the browser back: `<exchange base>kyc-proof/<provider>`.
pub fn redirect_uri(exchange_base_url: &str, provider: &str) -> String {
    format!("{exchange_base_url}kyc-proof/{provider}")
}

/// How the hand-off starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initiation {
    /// Plain OAuth2: send the browser to this URL.
    Redirect(String),
    /// Challenger: POST `setup_url` first, then send the browser to
    /// `authorize_base/<nonce>?<query>`.
    Setup {
        setup_url: String,
        authorize_base: String,
        query: String,
    },
}

impl OAuth2Provider {
    /// The query of the authorization URL; `client_id` goes in unescaped, as upstream does.
    fn authorize_query(&self, exchange_base_url: &str, h_payto: &NormalizedPaytoHash) -> String {
        format!(
            "response_type=code&client_id={}&redirect_uri={}&state={h_payto}",
            self.client_id,
            percent_encode(&redirect_uri(exchange_base_url, &self.name)),
        )
    }

    pub fn initiation(&self, exchange_base_url: &str, h_payto: &NormalizedPaytoHash) -> Initiation {
        let query = self.authorize_query(exchange_base_url, h_payto);
        match self.authorize_url.strip_suffix("#setup") {
            None => Initiation::Redirect(format!("{}?{query}", self.authorize_url)),
            Some(authorize_base) => {
                let stem = authorize_base
                    .rsplit_once('/')
                    .map_or(authorize_base, |(stem, _)| stem);
                Initiation::Setup {
                    setup_url: format!("{stem}/setup/{}", self.client_id),
                    authorize_base: authorize_base.to_owned(),
                    query,
                }
            }
        }
    }

    /// The form fields of the code-for-token request.
    pub fn token_request(
        &self,
        exchange_base_url: &str,
        h_payto: &NormalizedPaytoHash,
        code: &str,
    ) -> Vec<(String, String)> {
        [
            ("client_id", self.client_id.clone()),
            ("redirect_uri", redirect_uri(exchange_base_url, &self.name)),
            ("state", h_payto.to_string()),
            ("client_secret", self.client_secret.clone()),
            ("code", code.to_owned()),
            ("grant_type", "authorization_code".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// The URL the browser goes to after the challenger's `/setup` answered `nonce`.
pub fn authorize_url_with_nonce(authorize_base: &str, nonce: &str, query: &str) -> String {
    format!("{authorize_base}/{nonce}?{query}")
}

/// A usable token answer: `access_token` and `token_type` = bearer, and a token that can be
/// put in a header as is.
pub fn access_token(answer: &serde_json::Value) -> Option<String> {
    let token = answer.get("access_token")?.as_str()?;
    let token_type = answer.get("token_type")?.as_str()?;
    let clean = !token.is_empty() && !token.contains(['\n', '\r', ' ', ';']);
    (token_type.eq_ignore_ascii_case("bearer") && clean).then(|| token.to_owned())
}

/// An OAuth2 error answer worth recording as a KYC failure: both `error` and
/// `error_description` as strings.
pub fn provider_refusal(answer: &serde_json::Value) -> Option<(String, String)> {
    let error = answer.get("error")?.as_str()?;
    let description = answer.get("error_description")?.as_str()?;
    Some((error.to_owned(), description.to_owned()))
}

/// The challenger's `/info` answer.
#[derive(Debug, Deserialize)]
struct ChallengerInfo {
    id: serde_json::Value,
    address: serde_json::Map<String, serde_json::Value>,
    address_type: String,
    #[serde(default)]
    expires: Option<Timestamp>,
}

/// Attributes from a provider, with the provider's user id and when they expire.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertedAttributes {
    pub provider_user_id: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub expiration: Timestamp,
}

/// The built-in `challenger` converter (spec §6.3): `id` as a decimal string, `FORM_ID` =
/// `challenger-<address_type>`, every address field; expires at the earlier of the address's
/// expiry and `now + validity`.
pub fn convert_challenger_info(
    info: &serde_json::Value,
    now: Timestamp,
    validity: RelativeTime,
) -> Option<ConvertedAttributes> {
    let info: ChallengerInfo = serde_json::from_value(info.clone()).ok()?;
    let provider_user_id = match &info.id {
        serde_json::Value::Number(n) => n.as_u64()?.to_string(),
        serde_json::Value::String(s) if !s.is_empty() => s.clone(),
        _ => return None,
    };
    let mut attributes = info.address;
    attributes.insert("id".into(), provider_user_id.clone().into());
    attributes.insert(
        "FORM_ID".into(),
        format!("challenger-{}", info.address_type).into(),
    );
    let limit = now.saturating_add(validity);
    let expiration = info.expires.map_or(limit, |expires| expires.min(limit));
    Some(ConvertedAttributes {
        provider_user_id,
        attributes,
        expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(authorize_url: &str) -> OAuth2Provider {
        OAuth2Provider {
            name: "challenger".into(),
            authorize_url: authorize_url.into(),
            token_url: "http://c/token".into(),
            info_url: "http://c/info".into(),
            client_id: "7".into(),
            client_secret: "secret-token:x".into(),
            post_url: "http://ex/kyc-done".into(),
            converter: "challenger".into(),
            validity: RelativeTime::from_seconds(3600),
        }
    }

    fn h_payto() -> NormalizedPaytoHash {
        "4KBYV44XYHA6CAF2CMNHQ990RPT9H6YXVM3DT4BPKH46B8EJQ4D0"
            .parse()
            .unwrap()
    }

    #[test]
    fn plain_oauth2_redirects_with_the_encoded_callback() {
        let url = match provider("https://idp/authorize")
            .initiation("http://ex:8080/exchange/", &h_payto())
        {
            Initiation::Redirect(url) => url,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            url,
            "https://idp/authorize?response_type=code&client_id=7&redirect_uri=http%3A%2F%2Fex%3A8080%2Fexchange%2Fkyc-proof%2Fchallenger&state=4KBYV44XYHA6CAF2CMNHQ990RPT9H6YXVM3DT4BPKH46B8EJQ4D0"
        );
    }

    #[test]
    fn challenger_setup_urls() {
        match provider("http://c/challenger/authorize#setup").initiation("http://ex/", &h_payto()) {
            Initiation::Setup {
                setup_url,
                authorize_base,
                query,
            } => {
                assert_eq!(setup_url, "http://c/challenger/setup/7");
                assert_eq!(
                    authorize_url_with_nonce(&authorize_base, "N0NCE", &query)
                        .split('?')
                        .next(),
                    Some("http://c/challenger/authorize/N0NCE")
                );
                assert!(query.starts_with("response_type=code&client_id=7&redirect_uri=http%3A%2F%2Fex%2Fkyc-proof%2Fchallenger"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn token_answers() {
        assert_eq!(
            access_token(&json!({"access_token": "abc", "token_type": "Bearer"})),
            Some("abc".into())
        );
        for bad in [
            json!({"access_token": "abc"}),
            json!({"access_token": "a b", "token_type": "bearer"}),
            json!({"access_token": "abc", "token_type": "mac"}),
            json!({"access_token": 5, "token_type": "bearer"}),
        ] {
            assert_eq!(access_token(&bad), None, "{bad}");
        }
        assert_eq!(
            provider_refusal(&json!({"error": "invalid_grant", "error_description": "used"})),
            Some(("invalid_grant".into(), "used".into()))
        );
        assert_eq!(provider_refusal(&json!({"error": "invalid_grant"})), None);
    }

    #[test]
    fn the_challenger_converter() {
        let now = Timestamp::from_seconds(1_000).unwrap();
        let info = json!({"id": 12, "address": {"CONTACT_EMAIL": "a@example.com"}, "address_type": "email", "expires": {"t_s": 2_000}});
        let converted =
            convert_challenger_info(&info, now, RelativeTime::from_seconds(500)).unwrap();
        assert_eq!(converted.provider_user_id, "12");
        assert_eq!(converted.attributes["CONTACT_EMAIL"], "a@example.com");
        assert_eq!(converted.attributes["FORM_ID"], "challenger-email");
        assert_eq!(converted.expiration.as_seconds(), Some(1_500));
        let later = convert_challenger_info(&info, now, RelativeTime::forever()).unwrap();
        assert_eq!(later.expiration.as_seconds(), Some(2_000));
        assert!(
            convert_challenger_info(
                &json!({"address": {}, "address_type": "email"}),
                now,
                RelativeTime::forever()
            )
            .is_none()
        );
    }
}

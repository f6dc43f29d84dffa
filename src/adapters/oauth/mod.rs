//! The KYC logic's HTTP client (blocking; it runs where domain calls run, off the async
//! workers). Also used for the built-in challenger, which is reached over real HTTP.

use std::time::Duration;

use crate::ports::provider_http::{HttpAnswer, ProviderHttp, TransportError};

/// How long a provider may take to answer one request.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed on the challenger's `/setup` (as the exchange does).
const MAX_REDIRECTS: u32 = 5;

pub struct UreqProviderHttp {
    agent: ureq::Agent,
}

impl Default for UreqProviderHttp {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .max_redirects(MAX_REDIRECTS)
            // Non-2xx answers are data for the OAuth2 logic, not transport errors.
            .http_status_as_error(false)
            .build();
        UreqProviderHttp {
            agent: config.into(),
        }
    }
}

fn answer(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<HttpAnswer, TransportError> {
    let mut response = response.map_err(|e| TransportError(e.to_string()))?;
    let status = response.status().as_u16();
    let json = response.body_mut().read_json::<serde_json::Value>().ok();
    Ok(HttpAnswer { status, json })
}

impl ProviderHttp for UreqProviderHttp {
    fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<HttpAnswer, TransportError> {
        let mut request = self.agent.post(url);
        if let Some(bearer) = bearer {
            request = request.header("Authorization", &format!("Bearer {bearer}"));
        }
        answer(match body {
            Some(body) => request.send_json(body),
            None => request.send_empty(),
        })
    }

    fn post_form(
        &self,
        url: &str,
        form: &[(String, String)],
    ) -> Result<HttpAnswer, TransportError> {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        answer(self.agent.post(url).send_form(pairs))
    }

    fn get(&self, url: &str, bearer: &str) -> Result<HttpAnswer, TransportError> {
        answer(
            self.agent
                .get(url)
                .header("Authorization", &format!("Bearer {bearer}"))
                .call(),
        )
    }
}

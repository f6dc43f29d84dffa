//! HTTP as the KYC logic needs it to talk to an OAuth2 provider (the built-in challenger, or
//! an external one). The OAuth2 rules live in the domain; this port only moves requests.

use std::collections::VecDeque;
use std::sync::Mutex;

/// A provider's answer: its status and, when the body was JSON, the parsed body.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    pub status: u16,
    pub json: Option<serde_json::Value>,
}

/// The provider could not be reached or did not answer in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider unreachable: {0}")]
pub struct TransportError(pub String);

pub trait ProviderHttp: Send + Sync {
    /// POST with an optional bearer secret and an optional JSON body (following redirects).
    fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<HttpAnswer, TransportError>;
    /// POST `application/x-www-form-urlencoded`.
    fn post_form(&self, url: &str, form: &[(String, String)])
    -> Result<HttpAnswer, TransportError>;
    /// GET with a bearer token.
    fn get(&self, url: &str, bearer: &str) -> Result<HttpAnswer, TransportError>;
}

/// A request as the scripted fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum SeenRequest {
    PostJson {
        url: String,
        bearer: Option<String>,
        body: Option<serde_json::Value>,
    },
    PostForm {
        url: String,
        form: Vec<(String, String)>,
    },
    Get {
        url: String,
        bearer: String,
    },
}

/// A fake provider for unit tests: answers from a script, in order, and records requests.
#[derive(Debug, Default)]
pub struct ScriptedProviderHttp {
    answers: Mutex<VecDeque<Result<HttpAnswer, TransportError>>>,
    seen: Mutex<Vec<SeenRequest>>,
}

impl ScriptedProviderHttp {
    pub fn answer(&self, status: u16, json: serde_json::Value) -> &Self {
        self.push(Ok(HttpAnswer {
            status,
            json: Some(json),
        }))
    }

    pub fn fail(&self, cause: &str) -> &Self {
        self.push(Err(TransportError(cause.to_owned())))
    }

    fn push(&self, answer: Result<HttpAnswer, TransportError>) -> &Self {
        if let Ok(mut answers) = self.answers.lock() {
            answers.push_back(answer);
        }
        self
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn next(&self, request: SeenRequest) -> Result<HttpAnswer, TransportError> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(request);
        }
        let answer = self.answers.lock().ok().and_then(|mut a| a.pop_front());
        answer.unwrap_or_else(|| Err(TransportError("no scripted answer left".into())))
    }
}

impl ProviderHttp for ScriptedProviderHttp {
    fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<HttpAnswer, TransportError> {
        self.next(SeenRequest::PostJson {
            url: url.to_owned(),
            bearer: bearer.map(str::to_owned),
            body: body.cloned(),
        })
    }

    fn post_form(
        &self,
        url: &str,
        form: &[(String, String)],
    ) -> Result<HttpAnswer, TransportError> {
        self.next(SeenRequest::PostForm {
            url: url.to_owned(),
            form: form.to_vec(),
        })
    }

    fn get(&self, url: &str, bearer: &str) -> Result<HttpAnswer, TransportError> {
        self.next(SeenRequest::Get {
            url: url.to_owned(),
            bearer: bearer.to_owned(),
        })
    }
}

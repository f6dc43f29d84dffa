//! `GET`/`POST /authorize/$NONCE` (spec §5): binds the OAuth parameters to the validation and
//! reports its status.

use crate::domain::primitives::{ErrorCode, TalerError};

use super::address::{malformed, missing};
use super::api::ChallengeStatus;
use super::model::{CodeChallenge, OAuthBinding, PkceMethod, Validation};
use super::service::{ChallengeService, Step, error, parse_client_id, unknown_validation};

/// Longest accepted `state`, `scope` or `redirect_uri`, in bytes.
const MAX_PARAM_LEN: usize = 4096;

/// Decoded query or form parameters; the first occurrence of a name counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// RFC 7636: 43 to 128 characters of `[A-Za-z0-9-._~]` (challenges and verifiers alike).
pub(super) fn is_pkce_text(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn bounded(params: &Params, name: &str) -> Result<Option<String>, TalerError> {
    match params.get(name) {
        Some(value) if value.len() > MAX_PARAM_LEN => Err(malformed(name)),
        other => Ok(other.map(str::to_owned)),
    }
}

/// The query's syntax (400s), before any client is looked at.
fn parse_query(params: &Params) -> Result<(i64, OAuthBinding), TalerError> {
    match params.get("response_type") {
        None => return Err(missing("response_type")),
        Some("code") => {}
        Some(_) => return Err(malformed("response_type").with_hint("only 'code' is supported")),
    }
    let client_id = params
        .get("client_id")
        .ok_or_else(|| missing("client_id"))?;
    let client_id = parse_client_id(client_id).ok_or_else(|| malformed("client_id"))?;
    let challenge = params.get("code_challenge");
    let method = params.get("code_challenge_method");
    let code_challenge = match (challenge, method) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(malformed("code_challenge_method").with_hint("method without challenge"));
        }
        (Some(challenge), method) => {
            if !is_pkce_text(challenge) {
                return Err(malformed("code_challenge"));
            }
            let method = match method {
                None => PkceMethod::Plain,
                Some(text) => {
                    PkceMethod::parse(text).ok_or_else(|| malformed("code_challenge_method"))?
                }
            };
            Some(CodeChallenge {
                challenge: challenge.to_owned(),
                method,
            })
        }
    };
    let binding = OAuthBinding {
        state: bounded(params, "state")?,
        scope: bounded(params, "scope")?,
        redirect_uri: bounded(params, "redirect_uri")?,
        code_challenge,
    };
    Ok((client_id, binding))
}

/// The status a user-agent sees.
pub(super) fn status_of(validation: &Validation) -> ChallengeStatus {
    ChallengeStatus {
        fix_address: validation.fix_address,
        last_address: validation.address.clone(),
        changes_left: validation.changes_left,
        retransmission_time: validation.retransmission_time,
        pin_transmissions_left: validation.pin_transmissions_left,
        auth_attempts_left: validation.auth_attempts_left,
        solved: validation.is_solved(),
    }
}

impl ChallengeService {
    /// Checks in the order of spec §5, then binds the parameters unless already solved.
    pub fn authorize(&self, nonce: &str, params: &Params) -> Result<ChallengeStatus, TalerError> {
        let nonce = Self::parse_nonce(nonce)?;
        let current = self.live_validation(&nonce)?;
        let (client_id, binding) = parse_query(params)?;
        let client = self
            .store
            .client(client_id)?
            .ok_or_else(|| error(ErrorCode::ChallengerGenericClientUnknown, "unknown client"))?;
        if current.client_id != client.id {
            return Err(unknown_validation());
        }
        if binding
            .redirect_uri
            .as_ref()
            .is_some_and(|uri| uri != &client.redirect_uri)
        {
            return Err(error(
                ErrorCode::ChallengerGenericClientForbiddenBadRedirectUri,
                "redirect_uri differs from the registered one",
            ));
        }
        let now = self.now();
        let (status, _) = self.transition(&nonce, |mut validation| {
            if validation.is_expired(now) {
                return Err(unknown_validation());
            }
            if validation.is_solved() || validation.oauth == binding {
                return Ok(Step::Keep(status_of(&validation)));
            }
            validation.oauth = binding.clone();
            let status = status_of(&validation);
            Ok(Step::Write(Box::new(validation), None, status))
        })?;
        Ok(status)
    }

    /// The status of a validation, for pages that show it.
    pub fn status(&self, nonce: &str) -> Result<ChallengeStatus, TalerError> {
        let nonce = Self::parse_nonce(nonce)?;
        Ok(status_of(&self.live_validation(&nonce)?))
    }
}

//! `POST /solve/$NONCE` (spec §7): the user enters the PIN; the right one solves the
//! validation and issues a single-use authorization code. The PIN stays checked once solved:
//! the right one again (a reloaded page) issues a fresh code, a wrong one is refused.

use crate::domain::primitives::{ErrorCode, TalerError, Timestamp, constant_time_eq};

use super::address::{malformed, missing};
use super::api::{InvalidPinResponse, SolveOutcome};
use super::model::{IssuedCode, Validation};
use super::service::{ChallengeService, Step, unknown_validation};

/// Longest accepted PIN input (digits only).
const MAX_PIN_LEN: usize = 64;

/// `redirect_uri` with `code` and `state` added to its query (before any fragment).
pub fn redirect_url(redirect_uri: &str, code: &str, state: Option<&str>) -> String {
    let (base, fragment) = match redirect_uri.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (redirect_uri, None),
    };
    let mut pairs = vec![("code", code)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut url = format!("{base}{separator}{query}");
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

/// The PIN as entered, without the spaces people type to group digits; only digits.
fn parse_pin(pin: Option<&str>) -> Result<String, TalerError> {
    let pin: String = pin
        .ok_or_else(|| missing("pin"))?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if pin.is_empty() {
        return Err(missing("pin"));
    }
    if pin.len() > MAX_PIN_LEN || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("pin").with_hint("the PIN consists of digits"));
    }
    Ok(pin)
}

fn refused(validation: &Validation, code: ErrorCode, exhausted: bool) -> InvalidPinResponse {
    let no_challenge = validation.pin.is_none();
    let hint = if exhausted {
        "no attempts left"
    } else if no_challenge {
        "no PIN was sent yet"
    } else {
        "wrong PIN"
    };
    InvalidPinResponse {
        kind: "pending",
        ec: code,
        code,
        hint,
        addresses_left: validation.changes_left,
        pin_transmissions_left: validation.pin_transmissions_left,
        auth_attempts_left: validation.auth_attempts_left,
        exhausted,
        no_challenge,
    }
}

impl ChallengeService {
    /// Issues a fresh authorization code into `validation` (replacing any earlier one) and
    /// answers the redirect URL that carries it.
    pub(super) fn issue_code(
        &self,
        validation: &mut Validation,
        registered_uri: &str,
        now: Timestamp,
    ) -> String {
        let code = self.fresh_secret();
        validation.code = Some(IssuedCode {
            hash: code.hash(),
            expires_at: now.saturating_add(self.settings.code_lifetime),
            used: false,
        });
        redirect_url(
            registered_uri,
            &code.encode(),
            validation.oauth.state.as_deref(),
        )
    }

    pub fn solve(&self, nonce: &str, pin: Option<&str>) -> Result<SolveOutcome, TalerError> {
        let nonce = Self::parse_nonce(nonce)?;
        let validation = self.live_validation(&nonce)?;
        let pin = parse_pin(pin)?;
        let pin = pin.as_str();
        let client = self.client_of(&validation)?;
        let now = self.now();
        let (outcome, _) = self.transition(&nonce, |mut validation| {
            if validation.is_expired(now) {
                return Err(unknown_validation());
            }
            let Some(expected) = &validation.pin else {
                let response = refused(&validation, ErrorCode::ChallengerInvalidPin, false);
                return Ok(Step::Keep(SolveOutcome::Refused(response)));
            };
            if validation.auth_attempts_left == 0 {
                let response = refused(&validation, ErrorCode::ChallengerTooManyAttempts, true);
                return Ok(Step::Keep(SolveOutcome::Refused(response)));
            }
            if !constant_time_eq(expected.as_bytes(), pin.as_bytes()) {
                validation.auth_attempts_left -= 1;
                let response = refused(&validation, ErrorCode::ChallengerInvalidPin, false);
                return Ok(Step::Write(
                    Box::new(validation),
                    None,
                    SolveOutcome::Refused(response),
                ));
            }
            if !validation.is_solved() {
                validation.solved_at = Some(now);
            }
            let redirect_url = self.issue_code(&mut validation, &client.redirect_uri, now);
            Ok(Step::Write(
                Box::new(validation),
                None,
                SolveOutcome::Solved { redirect_url },
            ))
        })?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_urls_keep_the_query_and_fragment_of_the_registered_uri() {
        assert_eq!(
            redirect_url("https://c.example/cb", "ABC", Some("x y&z")),
            "https://c.example/cb?code=ABC&state=x+y%26z"
        );
        assert_eq!(
            redirect_url("https://c.example/cb?a=1#f", "ABC", None),
            "https://c.example/cb?a=1&code=ABC#f"
        );
    }

    #[test]
    fn pins_are_trimmed_digits() {
        assert_eq!(parse_pin(Some(" 0012 ")).unwrap(), "0012");
        assert_eq!(parse_pin(None).unwrap_err().code.number(), 25);
        assert_eq!(parse_pin(Some("  ")).unwrap_err().code.number(), 25);
        assert_eq!(parse_pin(Some("12a4")).unwrap_err().code.number(), 26);
        assert_eq!(
            parse_pin(Some(&"1".repeat(65))).unwrap_err().code.number(),
            26
        );
    }
}

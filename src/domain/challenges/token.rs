//! `POST /token` (spec §8): the client redeems its single-use code for an access token;
//! `GET /info` (§9): the token reveals the validated address.

use sha2::{Digest, Sha256};

use crate::domain::primitives::{ErrorCode, RelativeTime, TalerError, constant_time_eq};

use super::address::{malformed, missing};
use super::api::{InfoResponse, TokenFailure, TokenResponse};
use super::authorize::Params;
use super::model::{CodeChallenge, NewGrant, PkceMethod, Secret32, Validation};
use super::service::{ChallengeService, Step, bearer_token, parse_client_id};

fn invalid_grant(code: ErrorCode) -> TalerError {
    TalerError::new(code)
}

/// Whether `verifier` answers `challenge` (RFC 7636 §4.6), in constant time.
fn pkce_matches(challenge: &CodeChallenge, verifier: &str) -> bool {
    let derived = match challenge.method {
        PkceMethod::S256 => data_encoding::BASE64URL_NOPAD.encode(&Sha256::digest(verifier)),
        PkceMethod::Plain => verifier.to_owned(),
    };
    constant_time_eq(derived.as_bytes(), challenge.challenge.as_bytes())
}

/// Whole seconds of a lifetime ("forever" as the largest whole-second count there is).
fn seconds(duration: RelativeTime) -> u64 {
    duration.as_micros() / 1_000_000
}

/// The form's required fields, in the order they are checked.
const REQUIRED: [&str; 4] = ["grant_type", "client_id", "client_secret", "code"];

impl ChallengeService {
    /// Redeems a code, checking in the order of spec §8.
    pub fn token(&self, params: &Params) -> Result<TokenResponse, TokenFailure> {
        for field in REQUIRED {
            if params.get(field).is_none_or(str::is_empty) {
                return Err(TokenFailure::InvalidRequest(missing(field)));
            }
        }
        let field = |name| params.get(name).unwrap_or_default();
        let client_id = parse_client_id(field("client_id"))
            .ok_or_else(|| TokenFailure::InvalidRequest(malformed("client_id")))?;
        if field("grant_type") != "authorization_code" {
            return Err(TokenFailure::UnsupportedGrantType);
        }
        let client = self
            .store
            .client(client_id)?
            .ok_or(TokenFailure::UnknownClient)?;
        if !client.secret_matches(field("client_secret")) {
            return Err(TokenFailure::BadClientSecret);
        }
        let code = Secret32::parse(field("code")).ok_or(TokenFailure::InvalidGrant(
            ErrorCode::ChallengerClientForbiddenBadCode,
        ))?;
        let code_hash = code.hash();
        let Some(found) = self.store.validation_by_code(&code_hash)? else {
            return Err(TokenFailure::InvalidGrant(
                ErrorCode::ChallengerGenericValidationUnknown,
            ));
        };
        let now = self.now();
        let token = self.fresh_secret();
        let redirect_uri = params.get("redirect_uri");
        let verifier = params.get("code_verifier");
        let outcome = self.transition(&found.nonce, |mut validation: Validation| {
            let current = validation.code.as_ref().filter(|c| c.hash == code_hash);
            let Some(current) = current.cloned() else {
                // Replaced by a newer code meanwhile.
                return Err(invalid_grant(ErrorCode::ChallengerGenericValidationUnknown));
            };
            if validation.is_expired(now) {
                return Err(invalid_grant(ErrorCode::ChallengerGenericValidationUnknown));
            }
            if validation.client_id != client.id {
                return Err(invalid_grant(ErrorCode::ChallengerClientForbiddenBadCode));
            }
            if current.used || now >= current.expires_at {
                return Err(invalid_grant(ErrorCode::ChallengerGrantUnknown)
                    .with_detail(if current.used { "used" } else { "expired" }));
            }
            let bound = validation.oauth.redirect_uri.as_deref();
            let redirect_ok = match (redirect_uri, bound) {
                (Some(given), Some(bound)) => given == bound && given == client.redirect_uri,
                (Some(given), None) => given == client.redirect_uri,
                (None, Some(_)) => false,
                (None, None) => true,
            };
            if !redirect_ok {
                return Err(invalid_grant(
                    ErrorCode::ChallengerGenericClientForbiddenBadRedirectUri,
                ));
            }
            if let Some(challenge) = &validation.oauth.code_challenge
                && !verifier.is_some_and(|v| pkce_matches(challenge, v))
            {
                return Err(invalid_grant(ErrorCode::ChallengerClientForbiddenBadCode));
            }
            let Some(address) = validation.address.clone() else {
                return Err(invalid_grant(ErrorCode::ChallengerMissingAddress));
            };
            let solved_at = validation.solved_at.unwrap_or(now);
            let grant = NewGrant {
                token_hash: token.hash(),
                code_hash,
                address,
                address_type: self.settings.address_type.as_str().to_owned(),
                address_expires: solved_at.saturating_add(self.settings.validation_expiration),
                token_expires: now.saturating_add(self.settings.token_lifetime),
            };
            if let Some(code) = validation.code.as_mut() {
                code.used = true;
            }
            Ok(Step::Write(Box::new(validation), Some(grant), ()))
        });
        match outcome {
            Ok(_) => Ok(TokenResponse {
                access_token: token.encode(),
                token_type: "Bearer",
                expires_in: seconds(self.settings.token_lifetime),
            }),
            Err(error) => Err(self.token_failure(error, &code_hash)),
        }
    }

    /// Maps a refusal to its OAuth form; a replayed code revokes what it was redeemed for
    /// (RFC 6749 §4.1.2).
    fn token_failure(&self, error: TalerError, code_hash: &[u8; 32]) -> TokenFailure {
        use ErrorCode as C;
        match error.code {
            C::ChallengerGrantUnknown => {
                if error.detail.as_deref() == Some("used")
                    && let Err(e) = self.store.revoke_grants(code_hash)
                {
                    tracing::warn!(error = %e, "could not revoke the grants of a replayed code");
                }
                TokenFailure::InvalidGrant(C::ChallengerGrantUnknown)
            }
            C::ChallengerGenericValidationUnknown
            | C::ChallengerClientForbiddenBadCode
            | C::ChallengerGenericClientForbiddenBadRedirectUri => {
                TokenFailure::InvalidGrant(error.code)
            }
            C::ChallengerMissingAddress => TokenFailure::MissingAddress,
            _ => TokenFailure::Server(error),
        }
    }

    /// The validated address behind a bearer access token.
    pub fn info(&self, authorization: Option<&str>) -> Result<InfoResponse, TalerError> {
        let header = authorization.ok_or_else(|| missing("Authorization"))?;
        let token = bearer_token(header)
            .and_then(Secret32::parse)
            .ok_or_else(|| malformed("Authorization").with_hint("expected a bearer token"))?;
        let unknown = || {
            TalerError::new(ErrorCode::ChallengerGrantUnknown)
                .with_hint("unknown or expired access token")
        };
        let grant = self.store.grant(&token.hash())?.ok_or_else(unknown)?;
        if self.now() >= grant.token_expires {
            return Err(unknown());
        }
        Ok(InfoResponse {
            id: grant.id,
            address: grant.address,
            address_type: grant.address_type,
            expires: grant.address_expires,
            address_expiration: grant.address_expires,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_is_base64url_of_sha256() {
        let challenge = CodeChallenge {
            challenge: "qUyZDhNkq5Dh2c61N0TJUbT2uepXnj3V5UFKRo1XhCI".into(),
            method: PkceMethod::S256,
        };
        assert!(pkce_matches(
            &challenge,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gXFG2CJ0k"
        ));
        assert!(!pkce_matches(
            &challenge,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gXFG2CJ0K"
        ));
        let plain = CodeChallenge {
            challenge: "x".repeat(43),
            method: PkceMethod::Plain,
        };
        assert!(pkce_matches(&plain, &"x".repeat(43)));
    }
}

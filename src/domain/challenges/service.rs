//! `ChallengeService`: one challenger instance's rules over its ports (store, sender, clock,
//! random). Every validation change is computed here from the stored state and applied by
//! compare-and-swap. Changes of one validation by this service take turns (a lock per
//! validation), so parallel requests each get their proper answer; the compare-and-swap and
//! its retries remain for changes made by other processes on the same database.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::domain::primitives::{ErrorCode, RelativeTime, TalerError, Timestamp};
use crate::ports::challenges::{ChallengeStore, Purged, UpdateOutcome};
use crate::ports::clock::Clock;
use crate::ports::random::{Random, random_bytes};
use crate::ports::sender::Sender;

use super::address::{Restriction, malformed, missing, setup_address};
use super::api::SetupResponse;
use super::model::{AddressType, Client, NewGrant, OAuthBinding, Secret32, Validation};

/// How often a change is retried after losing a race before the request gives up (503).
const MAX_RETRIES: usize = 16;
/// Locks that serialize the changes of validations; a validation takes the one its nonce
/// picks, so unrelated validations rarely wait for each other.
const TURN_LOCKS: usize = 256;

/// One instance's configuration as the rules need it (`[challenger]`, spec §11).
#[derive(Debug, Clone)]
pub struct ChallengerSettings {
    pub address_type: AddressType,
    pub restrictions: Vec<Restriction>,
    /// Lifetime of a nonce from `/setup`.
    pub validation_duration: RelativeTime,
    /// How long a validated address counts as valid (`/info.expires`).
    pub validation_expiration: RelativeTime,
    pub retransmission_frequency: RelativeTime,
    pub max_address_changes: u32,
    pub max_pin_transmissions: u32,
    pub max_auth_attempts: u32,
    pub code_lifetime: RelativeTime,
    pub token_lifetime: RelativeTime,
}

impl ChallengerSettings {
    /// The defaults of spec §11 for an address type (restrictions: none).
    pub fn defaults(address_type: AddressType) -> ChallengerSettings {
        ChallengerSettings {
            address_type,
            restrictions: Vec::new(),
            validation_duration: RelativeTime::from_seconds(24 * 3600),
            validation_expiration: RelativeTime::from_seconds(365 * 24 * 3600),
            retransmission_frequency: RelativeTime::from_seconds(5 * 60),
            max_address_changes: 3,
            max_pin_transmissions: 3,
            max_auth_attempts: 3,
            code_lifetime: RelativeTime::from_seconds(10 * 60),
            token_lifetime: RelativeTime::from_seconds(3600),
        }
    }
}

pub struct ChallengeService {
    pub(super) store: Arc<dyn ChallengeStore>,
    pub(super) sender: Arc<dyn Sender>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) random: Arc<dyn Random>,
    pub(super) settings: ChallengerSettings,
    turns: Box<[Mutex<()>]>,
}

/// What a transition does with the validation it was given.
pub(super) enum Step<T> {
    /// Nothing to store; answer `T`.
    Keep(T),
    /// Store this state (and grant), then answer `T`.
    Write(Box<Validation>, Option<NewGrant>, T),
}

pub(super) fn error(code: ErrorCode, hint: &'static str) -> TalerError {
    TalerError::new(code).with_hint(hint)
}

pub(super) fn unknown_validation() -> TalerError {
    error(
        ErrorCode::ChallengerGenericValidationUnknown,
        "unknown or expired validation",
    )
}

fn unknown_client() -> TalerError {
    error(ErrorCode::ChallengerGenericClientUnknown, "unknown client")
}

/// A positive decimal client id (no sign, no spaces).
pub(super) fn parse_client_id(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|id| *id > 0)
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive); `None` otherwise.
pub(super) fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl ChallengeService {
    pub fn new(
        store: Arc<dyn ChallengeStore>,
        sender: Arc<dyn Sender>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        settings: ChallengerSettings,
    ) -> ChallengeService {
        ChallengeService {
            store,
            sender,
            clock,
            random,
            settings,
            turns: (0..TURN_LOCKS).map(|_| Mutex::new(())).collect(),
        }
    }

    pub fn settings(&self) -> &ChallengerSettings {
        &self.settings
    }

    /// The current time of the service's clock (pages show times relative to it).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// 32 fresh random bytes (nonces, codes, tokens).
    pub(super) fn fresh_secret(&self) -> Secret32 {
        Secret32(random_bytes(self.random.as_ref()))
    }

    // ---- clients (challenger-admin) ----

    /// Registers a client: any non-empty secret, one http(s) redirect URI.
    pub fn add_client(&self, secret: &str, redirect_uri: &str) -> Result<Client, TalerError> {
        if secret.is_empty() {
            return Err(malformed("secret").with_hint("the client secret must not be empty"));
        }
        if !valid_redirect_uri(redirect_uri) {
            return Err(malformed("redirect_uri")
                .with_hint("the redirect URI must start with http:// or https://"));
        }
        let hash = crate::domain::primitives::secret_hash(secret.as_bytes());
        Ok(self.store.add_client(redirect_uri, hash)?)
    }

    /// Points a client at a new redirect URI (checked as in `add_client`); `false` if there
    /// is no such client.
    pub fn set_redirect_uri(&self, id: i64, redirect_uri: &str) -> Result<bool, TalerError> {
        if !valid_redirect_uri(redirect_uri) {
            return Err(malformed("redirect_uri")
                .with_hint("the redirect URI must start with http:// or https://"));
        }
        Ok(self.store.set_redirect_uri(id, redirect_uri)?)
    }

    pub fn clients(&self) -> Result<Vec<Client>, TalerError> {
        Ok(self.store.clients()?)
    }

    /// Deletes a client with its validations and grants; `false` if there was none.
    pub fn delete_client(&self, id: i64) -> Result<bool, TalerError> {
        Ok(self.store.delete_client(id)?)
    }

    /// Removes expired validations and grants (the periodic job).
    pub fn purge_expired(&self) -> Result<Purged, TalerError> {
        Ok(self.store.purge_expired(self.now())?)
    }

    // ---- POST /setup/$CLIENT_ID (spec §4) ----

    /// Starts a validation for an authenticated client. `body` is the decoded request body
    /// (`None`: empty); it is looked at only after the client has been authenticated.
    pub fn setup(
        &self,
        client_id: &str,
        authorization: Option<&str>,
        body: Result<Option<Value>, TalerError>,
    ) -> Result<SetupResponse, TalerError> {
        let id = parse_client_id(client_id).ok_or_else(|| malformed("CLIENT_ID"))?;
        let header = authorization.ok_or_else(|| missing("Authorization"))?;
        let secret = bearer_token(header).ok_or_else(|| {
            malformed("Authorization").with_hint("expected Authorization: Bearer <secret>")
        })?;
        let client = self.store.client(id)?.ok_or_else(unknown_client)?;
        if !client.secret_matches(secret) {
            return Err(unknown_client());
        }
        let (read_only, address) = match body? {
            None => (false, None),
            Some(Value::Object(fields)) => {
                let read_only = match fields.get("read_only") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(flag)) => *flag,
                    Some(_) => return Err(malformed("read_only")),
                };
                (
                    read_only,
                    setup_address(self.settings.address_type, &fields)?,
                )
            }
            Some(_) => return Err(malformed("body").with_hint("expected a JSON object")),
        };
        let now = self.now();
        let nonce = self.fresh_secret();
        let s = &self.settings;
        let validation = Validation {
            nonce: nonce.0,
            client_id: id,
            version: 0,
            created_at: now,
            expires_at: now.saturating_add(s.validation_duration),
            fix_address: read_only && address.is_some(),
            address,
            changes_left: s.max_address_changes,
            pin: None,
            pin_transmissions_left: s.max_pin_transmissions,
            auth_attempts_left: s.max_auth_attempts,
            last_tx_time: None,
            retransmission_time: Timestamp::EPOCH,
            oauth: OAuthBinding::default(),
            solved_at: None,
            code: None,
        };
        if !self.store.create_validation(&validation)? {
            // The client was deleted in the meantime.
            return Err(unknown_client());
        }
        Ok(SetupResponse {
            nonce: nonce.encode(),
        })
    }

    // ---- shared by the nonce endpoints ----

    /// The nonce of a URL; one that cannot be ours is unknown (404), like a missing one.
    pub(super) fn parse_nonce(text: &str) -> Result<[u8; 32], TalerError> {
        Secret32::parse(text)
            .map(|n| n.0)
            .ok_or_else(unknown_validation)
    }

    /// The unexpired validation of a nonce.
    pub(super) fn live_validation(&self, nonce: &[u8; 32]) -> Result<Validation, TalerError> {
        let validation = self
            .store
            .validation(nonce)?
            .ok_or_else(unknown_validation)?;
        if validation.is_expired(self.now()) {
            return Err(unknown_validation());
        }
        Ok(validation)
    }

    pub(super) fn client_of(&self, validation: &Validation) -> Result<Client, TalerError> {
        // A client's validations go with it, so a missing client means a vanished validation.
        self.store
            .client(validation.client_id)?
            .ok_or_else(unknown_validation)
    }

    /// Reads the validation, lets `step` decide, and stores its decision if the validation did
    /// not change meanwhile; otherwise starts over with the new state. Answers `step`'s value
    /// and the id of a grant stored with it. Transitions of one validation take turns.
    pub(super) fn transition<T>(
        &self,
        nonce: &[u8; 32],
        mut step: impl FnMut(Validation) -> Result<Step<T>, TalerError>,
    ) -> Result<(T, Option<i64>), TalerError> {
        let turn = usize::from(nonce[0]) << 8 | usize::from(nonce[1]);
        let _turn = self.turns[turn % self.turns.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for _ in 0..MAX_RETRIES {
            let current = self
                .store
                .validation(nonce)?
                .ok_or_else(unknown_validation)?;
            let expected = current.version;
            match step(current)? {
                Step::Keep(value) => return Ok((value, None)),
                Step::Write(mut next, grant, value) => {
                    next.version = expected + 1;
                    match self
                        .store
                        .update_validation(expected, &next, grant.as_ref())?
                    {
                        UpdateOutcome::Updated { grant_id } => return Ok((value, grant_id)),
                        UpdateOutcome::Conflict => continue,
                    }
                }
            }
        }
        Err(error(
            ErrorCode::GenericDbSoftFailure,
            "too many concurrent changes of this validation",
        ))
    }
}

/// A redirect URI a client may have: http(s), without whitespace.
fn valid_redirect_uri(uri: &str) -> bool {
    (uri.starts_with("http://") || uri.starts_with("https://"))
        && !uri.chars().any(char::is_whitespace)
}

//! `POST /challenge/$NONCE` (spec §6): the user submits an address; a PIN goes out within the
//! limits on address changes, transmissions and retransmission spacing.
//!
//! A transmission is first reserved (stored), then sent; when the sender fails, the
//! reservation is undone, so that a failed delivery counts for nothing.

use serde_json::{Map, Value};

use crate::domain::primitives::{ErrorCode, TalerError, Timestamp};
use crate::ports::random::random_bytes;

use super::address::{helper_argument, validate_address};
use super::api::ChallengeResponse;
use super::model::{Address, Validation};
use super::service::{ChallengeService, Step, error, unknown_validation};

/// PINs are 8 decimal digits.
pub const PIN_DIGITS: usize = 8;

/// The decision of one `/challenge` call.
enum Plan {
    /// Solved before: a fresh code, so the user-agent can go on to the client.
    Completed(String),
    /// Nothing to send now (same address, too early for a re-send).
    Wait(Box<Validation>),
    /// Send `pin` to the stored address; `before` is the state to restore if that fails.
    Send {
        before: Box<Validation>,
        after: Box<Validation>,
    },
}

pub(super) fn too_many_attempts(hint: &'static str) -> TalerError {
    error(ErrorCode::ChallengerTooManyAttempts, hint)
}

/// The message that carries a PIN: the PIN is its only run of digits longer than six; the
/// nonce prefix lets the user tell which page the PIN belongs to.
pub fn pin_message(pin: &str, nonce_prefix: &str) -> String {
    format!(
        "Your PIN is {pin}.\n\nEnter it on the page of validation {nonce_prefix} to confirm \
         your address. If you did not ask for this, ignore this message.\n"
    )
}

/// The first six characters of a nonce, shown on the pages and in messages.
pub fn nonce_prefix(nonce: &[u8; 32]) -> String {
    super::model::Secret32(*nonce).encode()[..6].to_owned()
}

impl ChallengeService {
    /// 8 uniformly random decimal digits (rejection sampling avoids a modulo bias).
    fn fresh_pin(&self) -> String {
        loop {
            let value = u32::from_be_bytes(random_bytes(self.random.as_ref()));
            if value < 4_200_000_000 {
                return format!("{:0width$}", value % 100_000_000, width = PIN_DIGITS);
            }
        }
    }

    /// `input` is the decoded form or JSON body; it is looked at after the nonce.
    pub fn challenge(
        &self,
        nonce: &str,
        input: Result<Map<String, Value>, TalerError>,
    ) -> Result<ChallengeResponse, TalerError> {
        let nonce = Self::parse_nonce(nonce)?;
        let validation = self.live_validation(&nonce)?;
        let client = self.client_of(&validation)?;
        let mut submitted: Option<Address> = None;
        let now = self.now();
        let (plan, _) = self.transition(&nonce, |validation| {
            if validation.is_expired(now) {
                return Err(unknown_validation());
            }
            if validation.is_solved() {
                let mut next = validation;
                let redirect_url = self.issue_code(&mut next, &client.redirect_uri, now);
                return Ok(Step::Write(
                    Box::new(next),
                    None,
                    Plan::Completed(redirect_url),
                ));
            }
            let address = match &submitted {
                Some(address) => address.clone(),
                None => {
                    let fields = input.as_ref().map_err(Clone::clone)?;
                    let s = &self.settings;
                    let address = validate_address(s.address_type, &s.restrictions, fields)?;
                    submitted = Some(address.clone());
                    address
                }
            };
            self.plan(validation, address, now)
        })?;
        match plan {
            Plan::Completed(redirect_url) => Ok(ChallengeResponse::Completed { redirect_url }),
            Plan::Wait(validation) => Ok(created(&validation, false)),
            Plan::Send { before, after } => {
                self.deliver(&before, &after)?;
                Ok(created(&after, true))
            }
        }
    }

    /// Steps 3 to 6 of the algorithm.
    fn plan(
        &self,
        validation: Validation,
        address: Address,
        now: Timestamp,
    ) -> Result<Step<Plan>, TalerError> {
        let s = &self.settings;
        let same_address = validation.address.as_ref() == Some(&address);
        if validation.fix_address && !same_address {
            return Err(error(
                ErrorCode::ChallengerClientForbiddenReadOnly,
                "this address cannot be changed",
            ));
        }
        let mut next = validation.clone();
        if !same_address || validation.pin.is_none() {
            if validation.changes_left == 0 {
                return Err(too_many_attempts("no address changes left"));
            }
            next.changes_left -= 1;
            next.address = Some(address);
            next.pin = Some(self.fresh_pin());
            next.pin_transmissions_left = s.max_pin_transmissions;
            next.auth_attempts_left = s.max_auth_attempts;
        } else if now < validation.retransmission_time {
            return Ok(Step::Keep(Plan::Wait(Box::new(validation))));
        }
        if next.pin_transmissions_left == 0 {
            return Err(too_many_attempts("no PIN transmissions left"));
        }
        next.pin_transmissions_left -= 1;
        next.last_tx_time = Some(now);
        next.retransmission_time = now.saturating_add(s.retransmission_frequency);
        let plan = Plan::Send {
            before: Box::new(validation),
            after: Box::new(next.clone()),
        };
        Ok(Step::Write(Box::new(next), None, plan))
    }

    /// Sends the reserved PIN; on failure restores the state before the reservation, unless
    /// another request has changed the validation since (it then built on the reservation).
    fn deliver(&self, before: &Validation, after: &Validation) -> Result<(), TalerError> {
        let (Some(address), Some(pin)) = (&after.address, &after.pin) else {
            return Err(TalerError::new(ErrorCode::GenericInternalInvariantFailure));
        };
        let argument = helper_argument(self.settings.address_type, address);
        let message = pin_message(pin, &nonce_prefix(&after.nonce));
        let Err(failure) = self.sender.send(&argument, &message) else {
            return Ok(());
        };
        // The reservation was stored as the version after `before`.
        let reserved = before.version + 1;
        let undo = self.transition(&after.nonce, |current| {
            if current.version != reserved {
                return Ok(Step::Keep(()));
            }
            Ok(Step::Write(Box::new(before.clone()), None, ()))
        });
        if let Err(e) = undo {
            tracing::warn!(error = %e, "could not undo a failed PIN transmission");
        }
        Err(error(
            ErrorCode::ChallengerHelperExecFailed,
            "the PIN could not be sent",
        )
        .with_detail(failure.0))
    }
}

fn created(validation: &Validation, transmitted: bool) -> ChallengeResponse {
    ChallengeResponse::Created {
        attempts_left: validation.auth_attempts_left,
        address: validation.address.clone().unwrap_or_default(),
        transmitted,
        retransmission_time: validation.retransmission_time,
        pin_transmissions_left: validation.pin_transmissions_left,
        changes_left: validation.changes_left,
        fix_address: validation.fix_address,
    }
}

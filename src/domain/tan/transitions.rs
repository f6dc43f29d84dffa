//! Sending and solving a challenge (corebank-tan.md §5, §6) as pure state transitions over
//! the challenge record; the store runs each in one write transaction.

use super::model::{Challenge, ChallengeState, TanSettings, generate_code, normalise_tan};
use crate::domain::primitives::{ErrorCode, TalerError, Timestamp, constant_time_eq};
use crate::ports::random::Random;

/// Why a send is refused (§5 steps 2–5), with the status the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// 404/5144: the challenge was invalidated.
    Dead,
    /// 410/9999: already solved or used.
    Solved,
    /// 429/5131: inside the retransmission period.
    TooEarly,
    /// 409/5132: the channel's script is no longer configured.
    ChannelUnsupported,
}

impl SendRefusal {
    pub fn status(self) -> u16 {
        match self {
            SendRefusal::Dead => 404,
            SendRefusal::Solved => 410,
            SendRefusal::TooEarly => 429,
            SendRefusal::ChannelUnsupported => 409,
        }
    }

    pub fn error(self) -> TalerError {
        TalerError::new(match self {
            SendRefusal::Dead => ErrorCode::BankTanChallengeExpired,
            SendRefusal::Solved => ErrorCode::End,
            SendRefusal::TooEarly => ErrorCode::BankTanRateLimited,
            SendRefusal::ChannelUnsupported => ErrorCode::BankTanChannelNotSupported,
        })
    }
}

/// A reserved send: what to deliver, and how to undo the retransmission period if the
/// delivery fails (§5 step 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTicket {
    pub code: String,
    pub previous_next_send_at: Option<Timestamp>,
    /// `solve_expiration` of the 200 answer.
    pub solve_expiration: Timestamp,
    /// `earliest_retransmission` of the 200 answer.
    pub earliest_retransmission: Timestamp,
}

/// §5 steps 2–6: refuses or reserves a send, issuing a new code when there is none, it
/// expired or its attempts are used up; a retransmission repeats the live code.
pub fn reserve_send(
    challenge: &mut Challenge,
    channel_supported: bool,
    random: &dyn Random,
    settings: &TanSettings,
    now: Timestamp,
) -> Result<SendTicket, SendRefusal> {
    match challenge.state() {
        ChallengeState::Dead => return Err(SendRefusal::Dead),
        ChallengeState::Solved | ChallengeState::Used => return Err(SendRefusal::Solved),
        ChallengeState::Pending => {}
    }
    if challenge.next_send_at.is_some_and(|next| now < next) {
        return Err(SendRefusal::TooEarly);
    }
    if !channel_supported {
        return Err(SendRefusal::ChannelUnsupported);
    }
    let live_code = match (&challenge.code, challenge.code_expires_at) {
        (Some(code), Some(expires)) if now < expires && challenge.attempts_left > 0 => {
            Some((code.clone(), expires))
        }
        _ => None,
    };
    let (code, expires) = match live_code {
        Some(live) => live,
        None => {
            let code = generate_code(random);
            let expires = now.saturating_add(settings.validity);
            challenge.code = Some(code.clone());
            challenge.code_expires_at = Some(expires);
            challenge.attempts_left = settings.retry_counter;
            (code, expires)
        }
    };
    let previous = challenge.next_send_at;
    let next = now.saturating_add(settings.retransmission);
    challenge.next_send_at = Some(next);
    Ok(SendTicket {
        code,
        previous_next_send_at: previous,
        solve_expiration: expires,
        earliest_retransmission: next,
    })
}

/// §5 step 7: a failed delivery does not start the retransmission period; the code stays.
pub fn undo_failed_send(challenge: &mut Challenge, ticket: &SendTicket) {
    challenge.next_send_at = ticket.previous_next_send_at;
}

/// The outcome of a confirm (§6 steps 3–7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// 204: solved now.
    Solved,
    /// 204: it was solved or used before; nothing changed.
    AlreadySolved,
    /// 404/5144: the challenge was invalidated.
    Dead,
    /// 429/5131: no attempts left; a new code must be sent.
    Exhausted,
    /// 409/5144: no code sent yet, or the code expired.
    CodeExpired,
    /// 409/5134: wrong code, attempts remain.
    Wrong,
}

impl ConfirmOutcome {
    pub fn status(self) -> u16 {
        match self {
            ConfirmOutcome::Solved | ConfirmOutcome::AlreadySolved => 204,
            ConfirmOutcome::Dead => 404,
            ConfirmOutcome::Exhausted => 429,
            ConfirmOutcome::CodeExpired | ConfirmOutcome::Wrong => 409,
        }
    }

    /// The error body, `None` for the 204 outcomes.
    pub fn error(self) -> Option<TalerError> {
        let code = match self {
            ConfirmOutcome::Solved | ConfirmOutcome::AlreadySolved => return None,
            ConfirmOutcome::Dead | ConfirmOutcome::CodeExpired => {
                ErrorCode::BankTanChallengeExpired
            }
            ConfirmOutcome::Exhausted => ErrorCode::BankTanRateLimited,
            ConfirmOutcome::Wrong => ErrorCode::BankTanChallengeFailed,
        };
        Some(TalerError::new(code))
    }
}

/// §6 steps 3–7: checks `tan` against the challenge's code, counting down wrong tries.
/// Expired or exhausted codes are not counted down further.
pub fn confirm(challenge: &mut Challenge, tan: &str, now: Timestamp) -> ConfirmOutcome {
    match challenge.state() {
        ChallengeState::Dead => return ConfirmOutcome::Dead,
        ChallengeState::Solved | ChallengeState::Used => return ConfirmOutcome::AlreadySolved,
        ChallengeState::Pending => {}
    }
    if challenge.attempts_left == 0 {
        return ConfirmOutcome::Exhausted;
    }
    let Some(code) = &challenge.code else {
        return ConfirmOutcome::CodeExpired;
    };
    if challenge
        .code_expires_at
        .is_none_or(|expires| now >= expires)
    {
        return ConfirmOutcome::CodeExpired;
    }
    if constant_time_eq(normalise_tan(tan).as_bytes(), code.as_bytes()) {
        challenge.solved_at = Some(now);
        return ConfirmOutcome::Solved;
    }
    challenge.attempts_left -= 1;
    if challenge.attempts_left == 0 {
        ConfirmOutcome::Exhausted
    } else {
        ConfirmOutcome::Wrong
    }
}

/// Marks a challenge used by a successful protected request (§4.4); its hash is erased.
pub fn mark_used(challenge: &mut Challenge, now: Timestamp) {
    challenge.used_at = Some(now);
    challenge.body_hash = None;
}

/// Kills a pending or solved-but-unused challenge after a change of the factor set (§8.3).
/// Returns whether it changed.
pub fn invalidate(challenge: &mut Challenge, now: Timestamp) -> bool {
    match challenge.state() {
        ChallengeState::Pending | ChallengeState::Solved => {
            challenge.invalidated_at = Some(now);
            challenge.body_hash = None;
            true
        }
        ChallengeState::Used | ChallengeState::Dead => false,
    }
}

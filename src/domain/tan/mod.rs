//! Bank two-factor authentication (corebank-tan.md): which requests need a solved
//! challenge, the challenge record and its send/confirm transitions, and the gate that
//! decides between running a protected request and answering 202. Pure rules: time,
//! randomness and the body key come in as arguments.

mod gate;
mod model;
mod service;
mod transitions;

pub use gate::{Decision, decide};
pub use model::{
    BodyKey, CODE_DIGITS, CanonicalBody, Challenge, ChallengeId, ChallengeState, Factor, Operation,
    RequestBinding, Role, TanSettings, canonical_channels, code_message, factor_set,
    factors_differ, generate_code, new_factors, normalise_tan, presented_ids,
};
pub use service::{
    ChallengeEntry, ChallengeResponse, GateOutcome, SendAnswer, TanFailure, TanRequest, TanSenders,
    TanService,
};
pub use transitions::{
    ConfirmOutcome, SendRefusal, SendTicket, confirm, invalidate, mark_used, reserve_send,
    undo_failed_send,
};

#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod tests;

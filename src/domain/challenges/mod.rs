//! Challenger: proves that a user receives messages at an address and hands the validated
//! address to a registered OAuth 2.0 client (spec challenger.md). The validation state machine
//! nonce → address → PIN → code → token lives here, over the `ChallengeStore` and `Sender`
//! ports; time and randomness come through their ports.

mod address;
pub mod api;
mod authorize;
mod challenge;
mod model;
mod service;
mod solve;
mod token;

pub use address::{MAX_FIELD_LEN, Restriction, helper_argument, setup_address, validate_address};
pub use api::*;
pub use authorize::Params;
pub use challenge::{PIN_DIGITS, nonce_prefix, pin_message};
pub use model::{
    Address, AddressType, Client, CodeChallenge, Grant, IssuedCode, NewGrant, OAuthBinding,
    PkceMethod, Secret32, Validation,
};
pub use service::{ChallengeService, ChallengerSettings};
pub use solve::redirect_url;

#[cfg(test)]
mod tests;

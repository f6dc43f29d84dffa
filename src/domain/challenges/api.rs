//! Wire shapes of the Challenger API (spec §4–§9) as the domain answers them.

use serde::Serialize;

use crate::domain::primitives::{ErrorCode, TalerError, Timestamp};

use super::model::Address;

/// `POST /setup` success.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SetupResponse {
    pub nonce: String,
}

/// `ChallengeStatus` of `/authorize` (§5).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChallengeStatus {
    pub fix_address: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_address: Option<Address>,
    pub changes_left: u32,
    pub retransmission_time: Timestamp,
    pub pin_transmissions_left: u32,
    pub auth_attempts_left: u32,
    pub solved: bool,
}

/// `ChallengeResponse` of `/challenge` (§6). Fields marked `skip` are not on the wire but
/// shown on the HTML page.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChallengeResponse {
    /// Already solved: the user-agent goes on to the client.
    Completed { redirect_url: String },
    /// A PIN is (or was) on its way to `address`.
    Created {
        attempts_left: u32,
        address: Address,
        transmitted: bool,
        retransmission_time: Timestamp,
        #[serde(skip)]
        pin_transmissions_left: u32,
        #[serde(skip)]
        changes_left: u32,
        #[serde(skip)]
        fix_address: bool,
    },
}

/// `InvalidPinResponse` of `/solve` (§7), also the body of its 429 (with `exhausted`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InvalidPinResponse {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ec: ErrorCode,
    pub code: ErrorCode,
    pub hint: &'static str,
    pub addresses_left: u32,
    pub pin_transmissions_left: u32,
    pub auth_attempts_left: u32,
    pub exhausted: bool,
    pub no_challenge: bool,
}

/// What `/solve` answers when the nonce is known and the PIN well-formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SolveOutcome {
    /// Right PIN (or solved before): the client's redirect URI with a fresh code.
    Solved { redirect_url: String },
    /// Wrong PIN, no PIN sent yet, or attempts used up (`exhausted`).
    Refused(InvalidPinResponse),
}

/// `POST /token` success (§8).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// Why `/token` refused; each maps to an OAuth `error` and a status (§8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// A field is missing (25) or malformed (26).
    InvalidRequest(TalerError),
    UnsupportedGrantType,
    UnknownClient,
    BadClientSecret,
    /// The code cannot be redeemed: 9751, 9753, 9754 or 9755.
    InvalidGrant(ErrorCode),
    MissingAddress,
    Server(TalerError),
}

impl From<crate::ports::StoreError> for TokenFailure {
    fn from(error: crate::ports::StoreError) -> Self {
        TokenFailure::Server(error.into())
    }
}

/// `ChallengerInfoResponse` of `/info` (§9); `address_expiration` duplicates `expires` for
/// the exchange's converter script.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InfoResponse {
    pub id: i64,
    pub address: Address,
    pub address_type: String,
    pub expires: Timestamp,
    pub address_expiration: Timestamp,
}

//! What the challenger keeps: clients, validations (one per nonce) and grants (one per
//! redeemed authorization code).

use std::collections::BTreeMap;

use crate::domain::primitives::{Timestamp, base32, constant_time_eq, secret_hash};

/// 32 random bytes, Taler base32 on the wire (52 characters): nonces, authorization codes and
/// access tokens. Only nonces are stored as they are; codes and tokens are stored hashed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret32(pub [u8; 32]);

impl Secret32 {
    /// Decodes the wire form; anything but 32 bytes of base32 is `None`.
    pub fn parse(text: &str) -> Option<Secret32> {
        base32::decode_array::<32>(text).ok().map(Secret32)
    }

    pub fn encode(&self) -> String {
        base32::encode(&self.0)
    }

    /// The SHA-256 under which codes and tokens are stored and looked up.
    pub fn hash(&self) -> [u8; 32] {
        secret_hash(&self.0)
    }
}

impl std::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret32(<redacted>)")
    }
}

/// A registered OAuth client. Its secret is kept as a SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: i64,
    pub redirect_uri: String,
    pub secret_hash: [u8; 32],
    /// Validations started by this client (`/setup` calls).
    pub validation_counter: u64,
}

impl Client {
    /// Whether `secret` is this client's secret (constant time).
    pub fn secret_matches(&self, secret: &str) -> bool {
        constant_time_eq(&secret_hash(secret.as_bytes()), &self.secret_hash)
    }
}

/// The kind of address one challenger instance validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressType {
    Email,
    Phone,
    Postal,
    PostalCh,
}

impl AddressType {
    pub fn parse(text: &str) -> Option<AddressType> {
        [Self::Email, Self::Phone, Self::Postal, Self::PostalCh]
            .into_iter()
            .find(|t| t.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Postal => "postal",
            Self::PostalCh => "postal-ch",
        }
    }

    /// The form fields of an address of this type (GANA form attributes), all required.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Email => &["CONTACT_EMAIL"],
            Self::Phone => &["CONTACT_PHONE"],
            Self::Postal => &["CONTACT_NAME", "ADDRESS_LINES", "ADDRESS_COUNTRY"],
            Self::PostalCh => &["CONTACT_NAME", "ADDRESS_LINES"],
        }
    }
}

/// An address: the string fields of its type, by field name.
pub type Address = BTreeMap<String, String>;

/// How a PKCE code challenge was derived from the verifier (RFC 7636).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceMethod {
    S256,
    Plain,
}

impl PkceMethod {
    pub fn parse(text: &str) -> Option<PkceMethod> {
        match text {
            "S256" => Some(Self::S256),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge {
    pub challenge: String,
    pub method: PkceMethod,
}

/// What the last `/authorize` call bound to the validation (frozen once solved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuthBinding {
    pub state: Option<String>,
    pub scope: Option<String>,
    /// As given at `/authorize`; `None` when it was left to default to the registered one.
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<CodeChallenge>,
}

/// The current authorization code of a solved validation (only its hash is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCode {
    pub hash: [u8; 32],
    pub expires_at: Timestamp,
    pub used: bool,
}

/// One address validation, from `/setup` to its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    pub nonce: [u8; 32],
    pub client_id: i64,
    /// Bumped by every change; a change applies only to the version it was computed from.
    pub version: u64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The address was given at `/setup` with `read_only` and cannot be changed.
    pub fix_address: bool,
    pub address: Option<Address>,
    pub changes_left: u32,
    /// The PIN sent to `address`; kept, because a re-send repeats it and, once solved, only it
    /// re-issues a code.
    pub pin: Option<String>,
    pub pin_transmissions_left: u32,
    pub auth_attempts_left: u32,
    pub last_tx_time: Option<Timestamp>,
    pub retransmission_time: Timestamp,
    pub oauth: OAuthBinding,
    pub solved_at: Option<Timestamp>,
    pub code: Option<IssuedCode>,
}

impl Validation {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    pub fn is_solved(&self) -> bool {
        self.solved_at.is_some()
    }
}

/// A redeemed code: the access token (stored hashed) and the address it reveals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The `id` of `/info`.
    pub id: i64,
    pub nonce: [u8; 32],
    pub token_hash: [u8; 32],
    pub code_hash: [u8; 32],
    pub address: Address,
    pub address_type: String,
    pub address_expires: Timestamp,
    pub token_expires: Timestamp,
}

/// A grant to be stored together with the redemption of its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    pub token_hash: [u8; 32],
    pub code_hash: [u8; 32],
    pub address: Address,
    pub address_type: String,
    pub address_expires: Timestamp,
    pub token_expires: Timestamp,
}

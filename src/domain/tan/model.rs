//! The TAN challenge model (corebank-tan.md §3): operations, factors, the challenge record,
//! codes, messages and the salted body hash a replay is matched against.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::accounts::{ContactData, TanChannel};
use crate::domain::primitives::{RelativeTime, Timestamp, base32, constant_time_eq};
use crate::ports::random::{Random, random_bytes};

/// The kinds of request a challenge can authorise (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    AccountReconfig,
    AccountAuthReconfig,
    AccountDelete,
    TokenCreate,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::AccountReconfig => "account_reconfig",
            Operation::AccountAuthReconfig => "account_auth_reconfig",
            Operation::AccountDelete => "account_delete",
            Operation::TokenCreate => "token_create",
        }
    }

    pub fn parse(text: &str) -> Option<Operation> {
        [
            Operation::AccountReconfig,
            Operation::AccountAuthReconfig,
            Operation::AccountDelete,
            Operation::TokenCreate,
        ]
        .into_iter()
        .find(|op| op.as_str() == text)
    }
}

/// Whether a code went to a current address or to one a PATCH introduces (§3.4, §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Auth,
    Address,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Auth => "auth",
            Role::Address => "address",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "auth" => Some(Role::Auth),
            "address" => Some(Role::Address),
            _ => None,
        }
    }
}

/// One (channel, address) pair of a factor set (§3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    pub channel: TanChannel,
    pub address: String,
}

/// Canonical channel order: `sms` before `email`.
fn rank(channel: TanChannel) -> u8 {
    match channel {
        TanChannel::Sms => 0,
        TanChannel::Email => 1,
    }
}

/// The channels of `channels` without duplicates, in canonical order.
pub fn canonical_channels(channels: &[TanChannel]) -> Vec<TanChannel> {
    let mut out: Vec<TanChannel> = Vec::with_capacity(2);
    for channel in channels {
        if !out.contains(channel) {
            out.push(*channel);
        }
    }
    out.sort_by_key(|channel| rank(*channel));
    out
}

/// The factor set of an account: its channels paired with their addresses, in canonical
/// order. A channel without its address contributes nothing (registration and PATCH refuse
/// that state with 409/5129, so it only arises in stored data older than that rule).
pub fn factor_set(channels: &[TanChannel], contact: &ContactData) -> Vec<Factor> {
    canonical_channels(channels)
        .into_iter()
        .filter_map(|channel| {
            let address = match channel {
                TanChannel::Sms => contact.phone.as_ref(),
                TanChannel::Email => contact.email.as_ref(),
            }?;
            Some(Factor {
                channel,
                address: address.clone(),
            })
        })
        .collect()
}

/// The pairs of `after` that `before` lacks (N = F′ \ F), in canonical order.
pub fn new_factors(before: &[Factor], after: &[Factor]) -> Vec<Factor> {
    after
        .iter()
        .filter(|factor| !before.contains(factor))
        .cloned()
        .collect()
}

/// Whether two factor sets differ as sets (§8.3).
pub fn factors_differ(before: &[Factor], after: &[Factor]) -> bool {
    !new_factors(before, after).is_empty() || !new_factors(after, before).is_empty()
}

/// A challenge id: 16 random bytes, 26 Crockford base32 characters on the wire (§3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChallengeId([u8; 16]);

impl ChallengeId {
    pub fn generate(random: &dyn Random) -> Self {
        ChallengeId(random_bytes(random))
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        ChallengeId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// `None` for anything that is not exactly the 26-character encoding of 16 bytes.
    pub fn parse(text: &str) -> Option<Self> {
        base32::decode_array::<16>(text).ok().map(ChallengeId)
    }

    pub fn encode(&self) -> String {
        base32::encode(&self.0)
    }
}

/// The ids a request presents in `Taler-Challenge-Ids` (§4.1): the header lines joined
/// with `,`, split at `,`, trimmed of spaces and tabs, empty items dropped, duplicates
/// collapsed. Malformed ids are dropped too: they could never count.
pub fn presented_ids<'a>(header_lines: impl IntoIterator<Item = &'a str>) -> Vec<ChallengeId> {
    let mut ids = Vec::new();
    for line in header_lines {
        for item in line.split(',') {
            let item = item.trim_matches([' ', '\t']);
            if item.is_empty() {
                continue;
            }
            if let Some(id) = ChallengeId::parse(item)
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
    }
    ids
}

/// The secret key of the body hash; kept in a key file, never in the database (§3.4).
#[derive(Clone)]
pub struct BodyKey([u8; 32]);

impl BodyKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        BodyKey(bytes)
    }

    /// Names the key without revealing it: SHA-256 of a label and the key. Instances that
    /// share a database compare it, since a body hashed on one is checked on another.
    pub fn fingerprint(&self) -> [u8; 32] {
        use sha2::Digest as _;
        let mut digest = Sha256::new();
        digest.update(b"talerbox tan body key\0");
        digest.update(self.0);
        digest.finalize().into()
    }

    /// HMAC-SHA-256 over `salt` ‖ the canonical text of `body`.
    pub fn hash(&self, salt: &[u8; 16], body: &CanonicalBody) -> [u8; 32] {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0);
        // HMAC accepts keys of any length, so the error branch cannot be taken.
        let Ok(mut mac) = mac else {
            return [0; 32];
        };
        mac.update(salt);
        mac.update(body.0.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for BodyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyKey(..)")
    }
}

/// The canonical text of a protected request's body (§3.4): the JSON value with object
/// members sorted by key and no whitespace; the empty string for DELETE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalBody(String);

impl CanonicalBody {
    /// `serde_json::Value` keeps object members in a sorted map (the `preserve_order`
    /// feature is off), so its compact serialisation is canonical.
    pub fn of_json(value: &serde_json::Value) -> Self {
        CanonicalBody(value.to_string())
    }

    /// The body of a request whose body is ignored (DELETE).
    pub fn empty() -> Self {
        CanonicalBody(String::new())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a protected request is: the account, the operation and its canonical body.
#[derive(Debug, Clone)]
pub struct RequestBinding {
    pub account_id: i64,
    pub operation: Operation,
    pub body: CanonicalBody,
}

/// Timing and counter options of `[libeufin-bank]` (§2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TanSettings {
    pub validity: RelativeTime,
    pub retransmission: RelativeTime,
    pub retry_counter: u32,
    /// `GC_CLEAN_AFTER`: challenges whose last event is older are deleted (§3.5).
    pub clean_after: RelativeTime,
}

impl Default for TanSettings {
    fn default() -> Self {
        TanSettings {
            validity: RelativeTime::from_seconds(3600),
            retransmission: RelativeTime::from_seconds(60),
            retry_counter: 3,
            clean_after: RelativeTime::from_seconds(14 * 24 * 3600),
        }
    }
}

/// A stored challenge (§3.4). `body_hash` is `None` once the challenge is used or dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub id: ChallengeId,
    pub account_id: i64,
    pub operation: Operation,
    pub role: Role,
    pub channel: TanChannel,
    pub address: String,
    pub body_salt: [u8; 16],
    pub body_hash: Option<[u8; 32]>,
    pub code: Option<String>,
    pub code_expires_at: Option<Timestamp>,
    pub attempts_left: u32,
    pub next_send_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub solved_at: Option<Timestamp>,
    pub used_at: Option<Timestamp>,
    pub invalidated_at: Option<Timestamp>,
}

/// The state of a challenge (§3.5); dead wins over everything, used over solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeState {
    Pending,
    Solved,
    Used,
    Dead,
}

impl Challenge {
    /// A fresh challenge for `binding`, sent to `factor` in `role`: no code, a full attempt
    /// counter, a new salt.
    pub fn new(
        random: &dyn Random,
        key: &BodyKey,
        binding: &RequestBinding,
        role: Role,
        factor: &Factor,
        settings: &TanSettings,
        now: Timestamp,
    ) -> Self {
        let body_salt: [u8; 16] = random_bytes(random);
        Challenge {
            id: ChallengeId::generate(random),
            account_id: binding.account_id,
            operation: binding.operation,
            role,
            channel: factor.channel,
            address: factor.address.clone(),
            body_salt,
            body_hash: Some(key.hash(&body_salt, &binding.body)),
            code: None,
            code_expires_at: None,
            attempts_left: settings.retry_counter,
            next_send_at: None,
            created_at: now,
            solved_at: None,
            used_at: None,
            invalidated_at: None,
        }
    }

    pub fn state(&self) -> ChallengeState {
        if self.invalidated_at.is_some() {
            ChallengeState::Dead
        } else if self.used_at.is_some() {
            ChallengeState::Used
        } else if self.solved_at.is_some() {
            ChallengeState::Solved
        } else {
            ChallengeState::Pending
        }
    }

    pub fn factor(&self) -> Factor {
        Factor {
            channel: self.channel,
            address: self.address.clone(),
        }
    }

    /// Whether this challenge authorises `binding` at `now` (§4.1): same account and
    /// operation, equal body hash, solved, unused, alive and inside the replay window.
    pub fn counts_for(
        &self,
        key: &BodyKey,
        binding: &RequestBinding,
        settings: &TanSettings,
        now: Timestamp,
    ) -> bool {
        let Some(stored) = self.body_hash else {
            return false;
        };
        let Some(solved_at) = self.solved_at else {
            return false;
        };
        self.state() == ChallengeState::Solved
            && self.account_id == binding.account_id
            && self.operation == binding.operation
            && now < solved_at.saturating_add(settings.validity)
            && constant_time_eq(&stored, &key.hash(&self.body_salt, &binding.body))
    }
}

/// Number of decimal digits of a code (§3.6).
pub const CODE_DIGITS: usize = 8;

/// A uniform 8-digit code from the `Random` port: rejection sampling over 32-bit words keeps
/// every value equally likely.
pub fn generate_code(random: &dyn Random) -> String {
    const RANGE: u32 = 100_000_000;
    // The largest multiple of RANGE that fits in u32; words at or above it are redrawn.
    const LIMIT: u32 = u32::MAX - (u32::MAX % RANGE);
    loop {
        let word = u32::from_be_bytes(random_bytes(random));
        if word < LIMIT {
            return format!("{:0width$}", word % RANGE, width = CODE_DIGITS);
        }
    }
}

/// The text sent to the address (§3.6), UTF-8 without a trailing newline.
pub fn code_message(code: &str, bank_name: &str) -> String {
    format!("T-{code} is your {bank_name} verification code")
}

/// What the user typed, as compared with the code (§6 step 7): surrounding ASCII
/// whitespace trimmed, then one leading `T-` removed.
pub fn normalise_tan(input: &str) -> &str {
    let trimmed = input.trim_ascii();
    trimmed.strip_prefix("T-").unwrap_or(trimmed)
}

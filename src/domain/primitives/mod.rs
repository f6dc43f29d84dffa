//! Pure Taler building blocks shared by every talerbox part
//! (taler-primitives.md): encodings, hashes, signatures, amounts, time
//! and payto URIs. No I/O, no clock.

pub mod amount;
pub mod attributes;
pub mod base32;
pub mod canonical_json;
pub mod crypto;
mod error;
pub mod iban;
pub mod json_body;
pub mod payto;
mod secret;
pub mod time;
mod url;

pub use amount::{Amount, AmountError, Currency};
pub use attributes::{AttributeCryptoError, AttributeKey, open_attributes, seal_attributes};
pub use base32::Base32Error;
pub use crypto::{
    EddsaPrivateKey, EddsaPublicKey, EddsaSignature, HashCode, SignatureError, officer_status_body,
    purpose, sha512, sha512_with_nul, sign_purpose, verify_purpose,
};
pub use error::{ErrorCode, TalerError};
pub use iban::{Iban, IbanError, iban_is_valid};
pub use payto::{NormalizedPaytoHash, Payto, PaytoError, PaytoTarget};
pub use secret::{constant_time_eq, secret_hash};
pub use time::{RelativeTime, Timestamp};
pub use url::percent_encode;

//! Hashes and EdDSA purpose signatures (taler-primitives.md §2–§5).
//!
//! Every signature covers a purpose block `u32 size ‖ u32 purpose ‖ body`;
//! [`sign_purpose`] and [`verify_purpose`] are the only entry points so the
//! header can never be forgotten.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha512};

use super::base32::{self, Base32Error, base32_bytes_newtype};
use super::time::Timestamp;

base32_bytes_newtype!(
    /// A SHA-512 digest (GNUnet `HashCode`), 103 base32 characters.
    HashCode,
    64
);

base32_bytes_newtype!(
    /// An Ed25519 public key, 52 base32 characters. Not checked to be a
    /// curve point until used for verification.
    EddsaPublicKey,
    32
);

base32_bytes_newtype!(
    /// An Ed25519 signature `R‖S`, 103 base32 characters.
    EddsaSignature,
    64
);

impl HashCode {
    /// The first 32 bytes (the "short hash" used for payto hashes).
    pub fn truncated(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0[..32]);
        out
    }
}

/// SHA-512 of `bytes`.
pub fn sha512(bytes: &[u8]) -> HashCode {
    HashCode(Sha512::digest(bytes).into())
}

/// SHA-512 of `text` plus a trailing NUL, as GNUnet hashes C strings
/// (officer names, payto URIs).
pub fn sha512_with_nul(text: &str) -> HashCode {
    let mut hasher = Sha512::new();
    hasher.update(text.as_bytes());
    hasher.update([0u8]);
    HashCode(hasher.finalize().into())
}

/// Purpose numbers from the GANA registry used by talerbox.
pub mod purpose {
    /// Exchange master key enabling/disabling an AML officer.
    pub const MASTER_AML_KEY: u32 = 1017;
    /// AML officer signing a decision.
    pub const AML_DECISION: u32 = 1350;
    /// AML officer authenticating a query (`Taler-AML-Officer-Signature`).
    pub const AML_QUERY: u32 = 1351;
    /// Wallet registering its reserve key with its balance (`POST /kyc-wallet`).
    pub const WALLET_ACCOUNT_SETUP: u32 = 1205;
    /// Account owner authenticating `GET /kyc-check` (`Account-Owner-Signature`).
    /// UNVERIFIED: this number could not be checked against the registry (see
    /// docs/api-coverage.md); correcting it is a change of this line alone.
    pub const KYC_AUTH: u32 = 1221;
}

/// An Ed25519 private key (32-byte seed). Deliberately has no `Display` or
/// `Serialize`, and `Debug` hides the secret, so it cannot leak into logs.
#[derive(Clone)]
pub struct EddsaPrivateKey(SigningKey);

impl EddsaPrivateKey {
    /// The key for a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        EddsaPrivateKey(SigningKey::from_bytes(&seed))
    }

    /// A fresh random key.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        EddsaPrivateKey(SigningKey::generate(rng))
    }

    /// The matching public key.
    pub fn public_key(&self) -> EddsaPublicKey {
        EddsaPublicKey(self.0.verifying_key().to_bytes())
    }

    /// The seed as base32 (52 characters), for storing the key on purpose.
    pub fn to_base32_secret(&self) -> String {
        base32::encode(self.0.as_bytes())
    }
}

impl FromStr for EddsaPrivateKey {
    type Err = Base32Error;

    /// Parses a base32 seed.
    fn from_str(text: &str) -> Result<Self, Base32Error> {
        base32::decode_array(text).map(Self::from_seed)
    }
}

impl fmt::Debug for EddsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EddsaPrivateKey(public: {}, secret: <redacted>)",
            self.public_key()
        )
    }
}

/// Why a signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key is not a canonical point of the curve.
    #[error("malformed public key")]
    MalformedPublicKey,
    /// The body is too large for the 32-bit size field.
    #[error("signed body too large")]
    BodyTooLarge,
    /// The signature does not verify (or is not canonical).
    #[error("invalid signature")]
    Invalid,
}

/// Size of the purpose header (`u32 size ‖ u32 purpose`).
const HEADER_LEN: usize = 8;

/// `u32 size ‖ u32 purpose ‖ body`. Bodies are small fixed layouts; the size
/// of one beyond 4 GiB saturates, and [`verify_purpose`] refuses such bodies.
fn purpose_block(purpose: u32, body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len().saturating_add(HEADER_LEN)).unwrap_or(u32::MAX);
    let mut block = Vec::with_capacity(body.len().saturating_add(HEADER_LEN));
    block.extend_from_slice(&size.to_be_bytes());
    block.extend_from_slice(&purpose.to_be_bytes());
    block.extend_from_slice(body);
    block
}

/// Signs `body` under `purpose` (pure Ed25519 over the purpose block).
pub fn sign_purpose(key: &EddsaPrivateKey, purpose: u32, body: &[u8]) -> EddsaSignature {
    EddsaSignature(key.0.sign(&purpose_block(purpose, body)).to_bytes())
}

/// Verifies strictly (libsodium rules: canonical S and A, no small-order R
/// or A) that `sig` signs `body` under `purpose` with `key`.
pub fn verify_purpose(
    key: &EddsaPublicKey,
    purpose: u32,
    body: &[u8],
    sig: &EddsaSignature,
) -> Result<(), SignatureError> {
    if u32::try_from(body.len().saturating_add(HEADER_LEN)).is_err() {
        return Err(SignatureError::BodyTooLarge);
    }
    let block = purpose_block(purpose, body);
    let verifying =
        VerifyingKey::from_bytes(&key.0).map_err(|_| SignatureError::MalformedPublicKey)?;
    // dalek accepts non-canonical y encodings; libsodium does not.
    if verifying.to_edwards().compress().to_bytes() != key.0 {
        return Err(SignatureError::MalformedPublicKey);
    }
    verifying
        .verify_strict(&block, &Signature::from_bytes(&sig.0))
        .map_err(|_| SignatureError::Invalid)
}

/// Body (after the header) of the master key's officer status signature,
/// purpose [`purpose::MASTER_AML_KEY`] (§5): `u64 change_date_µs ‖
/// officer_pub ‖ SHA-512(name ‖ NUL) ‖ u32 flags` with flags = 1·active +
/// 2·read_only.
pub fn officer_status_body(
    change_date: Timestamp,
    officer_pub: &EddsaPublicKey,
    officer_name: &str,
    is_active: bool,
    read_only: bool,
) -> [u8; 108] {
    let flags = u32::from(is_active) | (u32::from(read_only) << 1);
    let mut body = [0u8; 108];
    body[..8].copy_from_slice(&change_date.as_micros().to_be_bytes());
    body[8..40].copy_from_slice(&officer_pub.0);
    body[40..104].copy_from_slice(&sha512_with_nul(officer_name).0);
    body[104..].copy_from_slice(&flags.to_be_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn seed(start: u8) -> EddsaPrivateKey {
        let mut seed = [0u8; 32];
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = start + i as u8;
        }
        EddsaPrivateKey::from_seed(seed)
    }

    fn officer_a() -> EddsaPrivateKey {
        seed(0x00)
    }
    fn master() -> EddsaPrivateKey {
        seed(0x20)
    }
    fn officer_b() -> EddsaPrivateKey {
        seed(0x40)
    }

    fn sig(text: &str) -> EddsaSignature {
        text.parse().unwrap()
    }

    #[test]
    fn hash_vectors() {
        assert_eq!(
            sha512(b"").to_string(),
            "SY1Y2DBYXYWBVWAM518DCVC00ZB21S051DBHBQ43YJMJ3MVCX774FM6H7HERBWNGZY1HHMM7FVP2YRXS66YMEGBTG6JKGCKTZ4KXMFG"
        );
        assert_eq!(
            sha512(b"abc").to_string(),
            "VPQKB8CKC5XBNK21ED4TW821649EDYJEH6MQX8GAKVQECJTNTED234MS58KMZGD86TX3R8X3ZVNVTHAD8GHP8F781RN9NJAFMN6A97R"
        );
        assert_eq!(sha512_with_nul("abc"), sha512(b"abc\0"));
        let parsed: HashCode = sha512(b"abc").to_string().parse().unwrap();
        assert_eq!(parsed, sha512(b"abc"));
    }

    #[test]
    fn rfc8032_test_1() {
        let mut seed = [0u8; 32];
        let seed_hex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&seed_hex[2 * i..2 * i + 2], 16).unwrap();
        }
        let key = EddsaPrivateKey::from_seed(seed);
        assert_eq!(
            hex(key.public_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        // Raw message (no purpose header): the library sanity check.
        let raw = key.0.sign(b"").to_bytes();
        assert!(hex(&raw).starts_with("e5564300c360ac72"));
    }

    #[test]
    fn test_key_public_keys() {
        assert_eq!(
            officer_a().public_key().to_string(),
            "0EGGFFZKSR8BW7BGVMCEEJY0K5KY9NHGKEJGTQRXVJ3684JN66W0"
        );
        assert_eq!(
            master().public_key().to_string(),
            "56PBNRA1QK5F1CHE3AAD6K8BRWV1WMKD1FZ15J4QJJY968MPDQBG"
        );
        assert_eq!(
            officer_b().public_key().to_string(),
            "4N1VJBZH15AH2HVAVJ1PKPVDVJ9KCSD135WDV8A09VGGCV59APEG"
        );
    }

    #[test]
    fn officer_query_signatures() {
        assert_eq!(
            purpose_block(purpose::AML_QUERY, &[]),
            [0, 0, 0, 8, 0, 0, 5, 0x47]
        );
        let a_query = sig(
            "6Z4JPM58WFZ8AHWSM9K5DCNXG537ZYB8Q4D7WXHA3JDP6SHECV9SZGKJ0TZRS80KT8PRT7223SGMJDKKG7SJJM31WZCK5FN4ZATCA20",
        );
        let b_query = sig(
            "0GZVFEHZR6XV173F0Q8EJPBKN2ZH8K9PC4Y6N75C094Q36J0SJ2J7BH4P012E581TPQH4ANFAJFHVS25WSWSAJ0EC0QDJP0R1MV4408",
        );
        let a_decision = sig(
            "4R0EP3ERCM2FVXV9C0JWT1DYZ02GPWJWSN64N8PG0V5XJX0NVKDX8DBCTE4QGX4MQV004BCDW0C5QAHXPJCDAD4BC9Q3HXWYS2CN238",
        );

        assert_eq!(sign_purpose(&officer_a(), purpose::AML_QUERY, &[]), a_query);
        assert_eq!(sign_purpose(&officer_b(), purpose::AML_QUERY, &[]), b_query);
        assert_eq!(
            sign_purpose(&officer_a(), purpose::AML_DECISION, &[]),
            a_decision
        );

        let a_pub = officer_a().public_key();
        let b_pub = officer_b().public_key();
        assert_eq!(
            verify_purpose(&a_pub, purpose::AML_QUERY, &[], &a_query),
            Ok(())
        );
        assert_eq!(
            verify_purpose(&b_pub, purpose::AML_QUERY, &[], &b_query),
            Ok(())
        );
        assert_eq!(
            verify_purpose(&a_pub, purpose::AML_QUERY, &[], &a_decision),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify_purpose(&a_pub, purpose::AML_DECISION, &[], &a_decision),
            Ok(())
        );
        assert_eq!(
            verify_purpose(&b_pub, purpose::AML_QUERY, &[], &a_query),
            Err(SignatureError::Invalid)
        );
    }

    fn status_body(t_s: u64, name: &str, active: bool, read_only: bool) -> [u8; 108] {
        officer_status_body(
            Timestamp::from_seconds(t_s).unwrap(),
            &officer_a().public_key(),
            name,
            active,
            read_only,
        )
    }

    #[test]
    fn officer_status_block_layout() {
        let block = purpose_block(
            purpose::MASTER_AML_KEY,
            &status_body(1_700_000_000, "Olivia Officer", true, false),
        );
        assert_eq!(block.len(), 116);
        assert_eq!(
            hex(&block),
            concat!(
                "00000074000003f9",
                "00060a24181e4000",
                "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
                "b20eae073255e564f3b9269375f3a959b3b8f25d88b2c4b8eb2104af98b4207a",
                "f226dd6f3d32a3851f29e94e0ffb5fdf4633ca63f0cef053243c2ed950bb0f3c",
                "00000001",
            )
        );
    }

    #[test]
    fn officer_status_signatures() {
        let master_pub = master().public_key();
        let rows = [
            (
                1_700_000_000,
                true,
                false,
                "MMNQR19C887Y6XR63RFF0Q2SH4JTY9JQSNDSPAQ10WZPX0FD2651FDNJBESXAHZJ3KNSE1XFY4HFZZA9KRVK8247BWTX1RJ96FCXG00",
            ),
            (
                1_700_000_100,
                false,
                false,
                "XTAJ76J70671991VQEP38NWF5W9M4N1EWFFAY5KNT7NYEG9YAPKEBCMVD7QQTYC7T1WYVP8BZNRT49K424VSVYXCBWQK2GWSHWK102R",
            ),
            (
                1_700_000_200,
                true,
                true,
                "MDJ2HRVFGM54S9EFFK4184K9MFXK006D78WNJ2H1CBEX71GRFRG7HXDR3FSKM85H665X6BZ9CH5X84HNF5ANXQ4YWFT0GGGKE89R02G",
            ),
        ];
        for (t_s, active, read_only, expected) in rows {
            let body = status_body(t_s, "Olivia Officer", active, read_only);
            assert_eq!(
                sign_purpose(&master(), purpose::MASTER_AML_KEY, &body),
                sig(expected)
            );
            assert_eq!(
                verify_purpose(&master_pub, purpose::MASTER_AML_KEY, &body, &sig(expected)),
                Ok(())
            );
        }

        let b_body = officer_status_body(
            Timestamp::from_seconds(1_700_000_000).unwrap(),
            &officer_b().public_key(),
            "Oscar Other",
            true,
            false,
        );
        let b_sig = sig(
            "SBJR01TCSKHCDYBX01T7ENK0RZ8FFJ1Q86567TAM6A1000FC8YXRC15JCKTKN5SV02H418AVVQKN3TYJHJB2C7YFN01FDVWQDSH9J0G",
        );
        assert_eq!(
            sign_purpose(&master(), purpose::MASTER_AML_KEY, &b_body),
            b_sig
        );
        assert_eq!(
            verify_purpose(&master_pub, purpose::MASTER_AML_KEY, &b_body, &b_sig),
            Ok(())
        );
    }

    #[test]
    fn officer_status_must_reject() {
        let master_pub = master().public_key();
        let body = status_body(1_700_000_000, "Olivia Officer", true, false);
        let signed_by_officer = sig(
            "6FC5JGSW3ZADR74C4SB5AVKR505CVEMTVCG0D6Y9N1X881PPPZ8HB8VKTCYD1M0J8EYQBY8QQZ82T0TWS6BV2GT6NERZHHTNDEEZM20",
        );
        let name_without_nul = sig(
            "JZ6RAWW1XYB4HQTW02S3YRSP49SQG79CBHFGAMNPKHPBGDWE7ZKPWBCW6MQZSGGYFXTAAB6MGKDNNQBMMX00XVB7ZWGK29HSDKGKA2G",
        );
        for bad in [signed_by_officer, name_without_nul] {
            assert_eq!(
                verify_purpose(&master_pub, purpose::MASTER_AML_KEY, &body, &bad),
                Err(SignatureError::Invalid)
            );
        }
        // The rejected values are what the two mistakes really produce.
        assert_eq!(
            sign_purpose(&officer_a(), purpose::MASTER_AML_KEY, &body),
            signed_by_officer
        );
        let mut wrong_body = body;
        wrong_body[40..104].copy_from_slice(&sha512(b"Olivia Officer").0);
        assert_eq!(
            sign_purpose(&master(), purpose::MASTER_AML_KEY, &wrong_body),
            name_without_nul
        );
    }

    #[test]
    fn strict_verification_rejects_weak_and_non_canonical() {
        let key = officer_a();
        let good = sign_purpose(&key, purpose::AML_QUERY, &[]);
        // S + L (group order) is the same scalar mod L but non-canonical.
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut non_canonical = good;
        let mut carry = 0u16;
        for (byte, add) in non_canonical.0[32..].iter_mut().zip(order) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(
            verify_purpose(&key.public_key(), purpose::AML_QUERY, &[], &non_canonical),
            Err(SignatureError::Invalid)
        );
        // The identity point is a small-order public key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(verify_purpose(&EddsaPublicKey(identity), purpose::AML_QUERY, &[], &good).is_err());
        // y = p + 1 is a non-canonical encoding of the identity's y = 1.
        let mut non_canonical_key = [0xffu8; 32];
        non_canonical_key[0] = 0xee;
        non_canonical_key[31] = 0x7f;
        assert!(
            verify_purpose(
                &EddsaPublicKey(non_canonical_key),
                purpose::AML_QUERY,
                &[],
                &good
            )
            .is_err()
        );
    }

    #[test]
    fn private_key_text_and_debug() {
        let key = officer_a();
        let text = key.to_base32_secret();
        assert_eq!(text, "000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG");
        let parsed: EddsaPrivateKey = text.parse().unwrap();
        assert_eq!(parsed.public_key(), key.public_key());
        let debug = format!("{key:?}");
        assert!(!debug.contains(&text));
        assert!(debug.contains("redacted"));
        assert!("short".parse::<EddsaPrivateKey>().is_err());
    }

    #[test]
    fn generated_keys_sign_and_verify() {
        let key = EddsaPrivateKey::generate(&mut rand_core::OsRng);
        let sig = sign_purpose(&key, purpose::AML_DECISION, b"body");
        assert_eq!(
            verify_purpose(&key.public_key(), purpose::AML_DECISION, b"body", &sig),
            Ok(())
        );
        assert_eq!(
            verify_purpose(&key.public_key(), purpose::AML_DECISION, b"bodY", &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn serde_as_base32_strings() {
        let public = officer_a().public_key();
        let json = serde_json::to_string(&public).unwrap();
        assert_eq!(
            json,
            "\"0EGGFFZKSR8BW7BGVMCEEJY0K5KY9NHGKEJGTQRXVJ3684JN66W0\""
        );
        assert_eq!(
            serde_json::from_str::<EddsaPublicKey>(&json).unwrap(),
            public
        );
        assert!(serde_json::from_str::<EddsaSignature>(&json).is_err());
    }
}

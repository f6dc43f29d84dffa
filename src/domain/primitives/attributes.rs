//! KYC attribute encryption in the exchange's storage format (taler-primitives.md §9).
//!
//! Blob = nonce (24) ‖ tag (16) ‖ XSalsa20(S, nonce, u32 len(J) ‖ zlib(J)), with the row key
//! S = HMAC-SHA256(HMAC-SHA512(nonce, K), "kyc-attributes" ‖ 0x01)[..32] (GNUnet's KDF) and
//! K = SHA-512 of the configured secret text. Pure computation: the nonce comes from the
//! caller, which draws it from the Random port.

use std::fmt;
use std::io::Write as _;

use crypto_secretbox::aead::AeadInPlace;
use crypto_secretbox::{KeyInit, Nonce, Tag, XSalsa20Poly1305};
use hmac::digest::Key;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Length of the per-row nonce.
pub const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const LENGTH_PREFIX: usize = 4;
/// KDF context of the row key (no NUL).
const KDF_INFO: &[u8] = b"kyc-attributes";
/// Refuse to inflate beyond this, whatever a blob declares (attribute sets are small).
const MAX_PLAINTEXT: usize = 64 * 1024 * 1024;

/// The attribute key K (64 bytes). `Debug` hides it, and it has no `Display`.
#[derive(Clone)]
pub struct AttributeKey([u8; 64]);

impl AttributeKey {
    /// K = SHA-512 of the secret text (the `[exchange] ATTRIBUTE_ENCRYPTION_KEY` value or the
    /// key file's trimmed text), without a NUL.
    pub fn from_secret_text(text: &str) -> Self {
        AttributeKey(Sha512::digest(text.as_bytes()).into())
    }

    /// SHA-256(K): stored to notice a changed key at startup; reveals nothing of K.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }

    /// The row key S for one nonce.
    fn row_key(&self, nonce: &[u8; NONCE_LEN]) -> [u8; 32] {
        // HMAC pads a short key with zeros to the block size, so the padded nonce is the
        // same key; the fixed-size constructor cannot fail.
        let mut padded = [0u8; 128];
        padded[..NONCE_LEN].copy_from_slice(nonce);
        let mut extract = <Hmac<Sha512> as KeyInit>::new(Key::<Hmac<Sha512>>::from_slice(&padded));
        extract.update(&self.0);
        let prk = extract.finalize().into_bytes();
        // The PRK is 64 bytes, exactly SHA-256's block size.
        let mut expand = <Hmac<Sha256> as KeyInit>::new(Key::<Hmac<Sha256>>::from_slice(&prk));
        expand.update(KDF_INFO);
        expand.update(&[1]);
        expand.finalize().into_bytes().into()
    }
}

impl fmt::Debug for AttributeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AttributeKey(<redacted>)")
    }
}

/// Why a blob could not be opened. Callers treat every case alike ("undecryptable").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttributeCryptoError {
    #[error("blob too short")]
    TooShort,
    #[error("authentication failed (wrong key or corrupt blob)")]
    Authentication,
    #[error("plaintext malformed (length or zlib stream)")]
    Plaintext,
    #[error("attributes too large")]
    TooLarge,
}

/// Encrypts the serialized attribute object `json` under `key` with `nonce`.
pub fn seal_attributes(
    key: &AttributeKey,
    nonce: &[u8; NONCE_LEN],
    json: &[u8],
) -> Result<Vec<u8>, AttributeCryptoError> {
    let length = u32::try_from(json.len()).map_err(|_| AttributeCryptoError::TooLarge)?;
    let mut plaintext = Vec::with_capacity(json.len() / 2 + 64);
    plaintext.extend_from_slice(&length.to_be_bytes());
    let mut encoder = flate2::write::ZlibEncoder::new(plaintext, flate2::Compression::default());
    encoder
        .write_all(json)
        .map_err(|_| AttributeCryptoError::Plaintext)?;
    let mut buffer = encoder
        .finish()
        .map_err(|_| AttributeCryptoError::Plaintext)?;
    let cipher = XSalsa20Poly1305::new(&key.row_key(nonce).into());
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(nonce), b"", &mut buffer)
        .map_err(|_| AttributeCryptoError::TooLarge)?;
    // libsodium's crypto_secretbox_easy layout: the tag precedes the ciphertext.
    let mut blob = Vec::with_capacity(NONCE_LEN + TAG_LEN + buffer.len());
    blob.extend_from_slice(nonce);
    blob.extend_from_slice(&tag);
    blob.extend_from_slice(&buffer);
    Ok(blob)
}

/// Decrypts a blob and returns the serialized attribute object (not yet parsed).
pub fn open_attributes(key: &AttributeKey, blob: &[u8]) -> Result<Vec<u8>, AttributeCryptoError> {
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(AttributeCryptoError::TooShort);
    }
    let (nonce, rest) = blob.split_at(NONCE_LEN);
    let (tag, ciphertext) = rest.split_at(TAG_LEN);
    let mut nonce_bytes = [0u8; NONCE_LEN];
    nonce_bytes.copy_from_slice(nonce);
    let cipher = XSalsa20Poly1305::new(&key.row_key(&nonce_bytes).into());
    let mut buffer = ciphertext.to_vec();
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(nonce),
            b"",
            &mut buffer,
            Tag::from_slice(tag),
        )
        .map_err(|_| AttributeCryptoError::Authentication)?;
    inflate_plaintext(&buffer)
}

/// `u32 length ‖ zlib(J)` → J, insisting that J has exactly the declared length.
fn inflate_plaintext(plaintext: &[u8]) -> Result<Vec<u8>, AttributeCryptoError> {
    let Some((prefix, compressed)) = plaintext.split_first_chunk::<LENGTH_PREFIX>() else {
        return Err(AttributeCryptoError::Plaintext);
    };
    let declared =
        usize::try_from(u32::from_be_bytes(*prefix)).map_err(|_| AttributeCryptoError::TooLarge)?;
    if declared > MAX_PLAINTEXT {
        return Err(AttributeCryptoError::TooLarge);
    }
    // One more byte than declared, so that a longer stream is noticed.
    let mut json = Vec::with_capacity(declared.saturating_add(1));
    let status = INFLATER.with(|inflater| {
        let mut inflater = inflater.borrow_mut();
        inflater.reset(true);
        inflater.decompress_vec(compressed, &mut json, flate2::FlushDecompress::Finish)
    });
    if !matches!(status, Ok(flate2::Status::StreamEnd)) || json.len() != declared {
        return Err(AttributeCryptoError::Plaintext);
    }
    Ok(json)
}

thread_local! {
    /// A zlib inflater per thread, reset for each row: allocating and clearing its ~40 KiB
    /// of state for every row cost more than the decryption itself.
    static INFLATER: std::cell::RefCell<flate2::Decompress> =
        std::cell::RefCell::new(flate2::Decompress::new(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        data_encoding::HEXLOWER.decode(text.as_bytes()).unwrap()
    }

    fn vector_nonce() -> [u8; NONCE_LEN] {
        std::array::from_fn(|i| i as u8)
    }

    const VECTOR_BLOB: &str = concat!(
        "000102030405060708090a0b0c0d0e0f10111213141516176da33ebce571162c",
        "5e7582101ef7f573eb18a3c572aa6854d4951d2412a4d7122b1710cf13f9610b",
        "3fbad9255b9e92d08555f184355499f41b93c7a1a111ee79d625fb31719be1c7",
        "8c",
    );
    const VECTOR_JSON: &str = r#"{"FORM_ID":"test","FULL_NAME":"Alice Example"}"#;

    #[test]
    fn row_key_vector() {
        let key = AttributeKey::from_secret_text("talerbox-test-key-A");
        assert_eq!(
            data_encoding::HEXLOWER.encode(&key.row_key(&vector_nonce())),
            "25a97c85da4c6556a6beb917b5dec0cb95887bda73ca260d63c9143cb0c4b64e"
        );
    }

    #[test]
    fn the_vector_blob_decrypts() {
        let key = AttributeKey::from_secret_text("talerbox-test-key-A");
        let json = open_attributes(&key, &unhex(VECTOR_BLOB)).unwrap();
        assert_eq!(json, VECTOR_JSON.as_bytes());
    }

    #[test]
    fn round_trip_and_failures() {
        let key = AttributeKey::from_secret_text("k");
        let blob = seal_attributes(&key, &[7; NONCE_LEN], VECTOR_JSON.as_bytes()).unwrap();
        assert_eq!(&blob[..NONCE_LEN], &[7; NONCE_LEN]);
        assert_eq!(
            open_attributes(&key, &blob).unwrap(),
            VECTOR_JSON.as_bytes()
        );

        let other = AttributeKey::from_secret_text("other");
        assert_eq!(
            open_attributes(&other, &blob),
            Err(AttributeCryptoError::Authentication)
        );
        let mut flipped = blob.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            open_attributes(&key, &flipped),
            Err(AttributeCryptoError::Authentication)
        );
        assert_eq!(
            open_attributes(&key, &blob[..39]),
            Err(AttributeCryptoError::TooShort)
        );
        assert_eq!(
            open_attributes(&key, &[]),
            Err(AttributeCryptoError::TooShort)
        );
    }

    /// An authentic box whose plaintext is `declared` ‖ `zlib`.
    fn sealed_plaintext(key: &AttributeKey, declared: u32, zlib: &[u8]) -> Vec<u8> {
        let nonce = [1; NONCE_LEN];
        let mut plaintext = declared.to_be_bytes().to_vec();
        plaintext.extend_from_slice(zlib);
        let cipher = XSalsa20Poly1305::new(&key.row_key(&nonce).into());
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut plaintext)
            .unwrap();
        [&nonce[..], &tag[..], &plaintext[..]].concat()
    }

    #[test]
    fn a_wrong_declared_length_or_stream_is_refused() {
        let key = AttributeKey::from_secret_text("k");
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(b"{}").unwrap();
        let zlib = encoder.finish().unwrap();
        assert_eq!(
            open_attributes(&key, &sealed_plaintext(&key, 2, &zlib)).unwrap(),
            b"{}"
        );
        for (declared, stream) in [
            (99, &zlib[..]),
            (1, &zlib[..]),
            (2, &zlib[..zlib.len() - 3]),
            (2, b"not zlib"),
            (0, b""),
        ] {
            assert_eq!(
                open_attributes(&key, &sealed_plaintext(&key, declared, stream)),
                Err(AttributeCryptoError::Plaintext),
                "{declared}"
            );
        }
        // No room even for the length.
        let short = sealed_plaintext(&key, 0, b"");
        assert_eq!(
            open_attributes(&key, &short[..short.len() - 2]),
            Err(AttributeCryptoError::Authentication)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_blob_opens_or_fails_cleanly(blob in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let key = AttributeKey::from_secret_text("k");
            proptest::prop_assert!(open_attributes(&key, &blob).is_err());
        }

        #[test]
        fn round_trips(json in proptest::collection::vec(proptest::num::u8::ANY, 0..2000), nonce: [u8; 24]) {
            let key = AttributeKey::from_secret_text("k");
            let blob = seal_attributes(&key, &nonce, &json).unwrap();
            proptest::prop_assert_eq!(open_attributes(&key, &blob).unwrap(), json);
        }
    }

    #[test]
    fn fingerprint_is_sha256_of_k_and_debug_hides_k() {
        let key = AttributeKey::from_secret_text("abc");
        let k = Sha512::digest(b"abc");
        assert_eq!(key.fingerprint(), <[u8; 32]>::from(Sha256::digest(k)));
        assert_eq!(format!("{key:?}"), "AttributeKey(<redacted>)");
    }
}

//! Encryption of KYC attribute rows at rest. The one implementation is the exchange's own
//! storage format (taler-primitives.md §9), pure computation over a key fixed at startup.

use crate::domain::aml::AttributeMap;
use crate::domain::primitives::attributes::{self, AttributeCryptoError, AttributeKey};

pub use crate::domain::primitives::attributes::NONCE_LEN;

pub trait AttributeCipher: Send + Sync {
    /// Encrypts `attributes` (serialized compactly, keys sorted) with a fresh `nonce`.
    fn seal(
        &self,
        attributes: &AttributeMap,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>, AttributeCryptoError>;
    /// The attribute object of a blob; `None` when it cannot be decrypted, decompressed or
    /// parsed as a JSON object (e.g. it was written under another key).
    fn open(&self, blob: &[u8]) -> Option<AttributeMap>;
}

/// The upstream format under one attribute key.
#[derive(Debug, Clone)]
pub struct TalerAttributeCipher {
    key: AttributeKey,
}

impl TalerAttributeCipher {
    pub fn new(key: AttributeKey) -> Self {
        TalerAttributeCipher { key }
    }
}

impl AttributeCipher for TalerAttributeCipher {
    fn seal(
        &self,
        attributes: &AttributeMap,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>, AttributeCryptoError> {
        // serde_json's map is ordered by key, so this is the sorted compact form.
        let json = serde_json::to_vec(attributes).map_err(|_| AttributeCryptoError::Plaintext)?;
        attributes::seal_attributes(&self.key, &nonce, &json)
    }

    fn open(&self, blob: &[u8]) -> Option<AttributeMap> {
        let json = attributes::open_attributes(&self.key, blob).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_objects_are_sorted_and_open_again() {
        let cipher = TalerAttributeCipher::new(AttributeKey::from_secret_text("k"));
        let attributes: AttributeMap =
            serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":1},"FORM_ID":"f"}"#).unwrap();
        let blob = cipher.seal(&attributes, [3; NONCE_LEN]).unwrap();
        let json =
            attributes::open_attributes(&AttributeKey::from_secret_text("k"), &blob).unwrap();
        assert_eq!(json, br#"{"FORM_ID":"f","a":{"x":1,"y":2},"b":1}"#);
        assert_eq!(cipher.open(&blob), Some(attributes));
    }

    #[test]
    fn other_keys_and_non_objects_do_not_open() {
        let cipher = TalerAttributeCipher::new(AttributeKey::from_secret_text("k"));
        let other = TalerAttributeCipher::new(AttributeKey::from_secret_text("other"));
        let blob = cipher.seal(&AttributeMap::new(), [0; NONCE_LEN]).unwrap();
        assert_eq!(other.open(&blob), None);
        let array = attributes::seal_attributes(
            &AttributeKey::from_secret_text("k"),
            &[0; NONCE_LEN],
            b"[1,2]",
        )
        .unwrap();
        assert_eq!(cipher.open(&array), None);
        assert_eq!(cipher.open(b"garbage"), None);
    }
}

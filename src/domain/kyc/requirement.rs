//! Requirement ids: `$ID` of kyc-start and kyc-upload = base32(shv) `-` index `-` serial, where
//! shv is the measure authorization hash (exchange-kyc spec §1).

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

use crate::domain::primitives::{base32, constant_time_eq};

/// The raw 32 bytes of an account's KYC access token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(pub [u8; 32]);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl AccessToken {
    pub fn to_base32(&self) -> String {
        base32::encode(&self.0)
    }

    pub fn parse(text: &str) -> Option<AccessToken> {
        base32::decode_array::<32>(text).ok().map(AccessToken)
    }
}

/// GNUnet's KDF for 32 bytes: HMAC-SHA512 extract (salt = serial), SHA-256 expand
/// (info = index), keyed with the access token.
pub fn measure_authorization_hash(token: &AccessToken, serial: u64, index: u32) -> [u8; 32] {
    MeasureAuthorization::new(token, serial).hash(index)
}

/// The extract step of `measure_authorization_hash` for one token and measure row, done once
/// for all the measures of the row (it costs more than an expand).
pub struct MeasureAuthorization(Option<Hkdf<Sha256>>);

impl MeasureAuthorization {
    pub fn new(token: &AccessToken, serial: u64) -> MeasureAuthorization {
        let Ok(mut extract) = <Hmac<Sha512> as Mac>::new_from_slice(&serial.to_be_bytes()) else {
            return MeasureAuthorization(None);
        };
        extract.update(&token.0);
        let prk = extract.finalize().into_bytes();
        MeasureAuthorization(Hkdf::<Sha256>::from_prk(&prk).ok())
    }

    /// The hash of measure `index` of the row.
    pub fn hash(&self, index: u32) -> [u8; 32] {
        let mut out = [0u8; 32];
        if let Some(expand) = &self.0 {
            // 32 bytes are always within HKDF-SHA256's output limit.
            let _ = expand.expand(&index.to_be_bytes(), &mut out);
        }
        out
    }
}

/// A parsed `$ID`, not yet checked against the stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementId {
    pub hash: [u8; 32],
    pub index: u32,
    pub serial: u64,
}

/// Why an `$ID` was refused, in the order kyc-start checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequirementIdError {
    /// No `-` at all (the endpoint answers 404).
    NoDash,
    /// The hash or the `<index>-<serial>` part is malformed (400).
    Malformed,
}

impl RequirementId {
    /// The id of measure `index` of measure row `serial` for the holder of `token`.
    pub fn new(token: &AccessToken, serial: u64, index: u32) -> RequirementId {
        RequirementId::of_row(&MeasureAuthorization::new(token, serial), serial, index)
    }

    /// The id of measure `index` of measure row `serial`, whose extract step `row` is.
    pub fn of_row(row: &MeasureAuthorization, serial: u64, index: u32) -> RequirementId {
        RequirementId {
            hash: row.hash(index),
            index,
            serial,
        }
    }

    pub fn parse(text: &str) -> Result<RequirementId, RequirementIdError> {
        let (hash, rest) = text.split_once('-').ok_or(RequirementIdError::NoDash)?;
        let hash = base32::decode_array::<32>(hash).map_err(|_| RequirementIdError::Malformed)?;
        let (index, serial) = rest.split_once('-').ok_or(RequirementIdError::Malformed)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(index) || !digits(serial) {
            return Err(RequirementIdError::Malformed);
        }
        let index = index.parse().map_err(|_| RequirementIdError::Malformed)?;
        let serial = serial.parse().map_err(|_| RequirementIdError::Malformed)?;
        Ok(RequirementId {
            hash,
            index,
            serial,
        })
    }

    /// Whether this id was made with `token` (constant-time).
    pub fn authorizes(&self, token: &AccessToken) -> bool {
        let expected = measure_authorization_hash(token, self.serial, self.index);
        constant_time_eq(&expected, &self.hash)
    }
}

impl std::fmt::Display for RequirementId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            base32::encode(&self.hash),
            self.index,
            self.serial
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> AccessToken {
        AccessToken(std::array::from_fn(|i| i as u8))
    }

    #[test]
    fn spec_vectors() {
        assert_eq!(
            token().to_base32(),
            "000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG"
        );
        let hash =
            |serial, index| base32::encode(&measure_authorization_hash(&token(), serial, index));
        assert_eq!(
            hash(1, 0),
            "FJ3EGDF0Z42ZQPRCBZAZ8402Q99HTQK00SRVR2XKPXV9D5SKRX40"
        );
        assert_eq!(
            hash(1, 1),
            "CNKZX2W0RNQEMMH9PC880BNBGCC6FWQV6YE04CTBHGZ5M048TB5G"
        );
        assert_eq!(
            hash(42, 0),
            "Y9EG1ZT225EY57BVZRC3QSY9NCYVYDTJGK43SVG4Y4ASKWDCN700"
        );
        // One extract step serves every measure of the row.
        let row = MeasureAuthorization::new(&token(), 1);
        assert_eq!(
            base32::encode(&row.hash(1)),
            "CNKZX2W0RNQEMMH9PC880BNBGCC6FWQV6YE04CTBHGZ5M048TB5G"
        );
        assert_eq!(
            base32::encode(&row.hash(0)),
            "FJ3EGDF0Z42ZQPRCBZAZ8402Q99HTQK00SRVR2XKPXV9D5SKRX40"
        );
    }

    #[test]
    fn ids_put_the_index_before_the_serial() {
        let id = RequirementId::new(&token(), 1, 0);
        assert_eq!(
            id.to_string(),
            "FJ3EGDF0Z42ZQPRCBZAZ8402Q99HTQK00SRVR2XKPXV9D5SKRX40-0-1"
        );
        let parsed = RequirementId::parse(&id.to_string()).unwrap();
        assert_eq!(parsed, id);
        assert!(parsed.authorizes(&token()));
        assert!(!parsed.authorizes(&AccessToken([9; 32])));
    }

    #[test]
    fn malformed_ids() {
        assert_eq!(
            RequirementId::parse("nodash"),
            Err(RequirementIdError::NoDash)
        );
        let hash = "FJ3EGDF0Z42ZQPRCBZAZ8402Q99HTQK00SRVR2XKPXV9D5SKRX40";
        for bad in [
            "SHORT-0-1".to_owned(),
            format!("{hash}-0"),
            format!("{hash}-0-"),
            format!("{hash}--1"),
            format!("{hash}-+0-1"),
            format!("{hash}-0- 1"),
            format!("{hash}-4294967296-1"),
            format!("{hash}-0-18446744073709551616"),
            format!("{hash}-0-1-2"),
        ] {
            assert_eq!(
                RequirementId::parse(&bad),
                Err(RequirementIdError::Malformed),
                "{bad}"
            );
        }
        assert!(RequirementId::parse(&format!("{hash}-007-0042")).is_ok());
    }
}

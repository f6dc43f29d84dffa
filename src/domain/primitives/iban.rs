//! IBAN checking (corebank.md §1.5): upper-case, drop spaces and `-`,
//! rotate the first four characters to the end, letters → 10..35, and the
//! number mod 97 must be 1. No per-country length table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest IBAN allowed by ISO 13616.
const MAX_LEN: usize = 34;

/// Why an IBAN was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IbanError {
    /// Not two letters, two digits, then letters/digits, 5 to 34 in all.
    #[error("malformed IBAN")]
    Malformed,
    /// The mod-97 check failed.
    #[error("IBAN checksum is wrong")]
    Checksum,
}

/// A checked IBAN in compact upper-case form (no separators).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iban(String);

impl Iban {
    /// Parses user input, tolerating lower case, spaces and `-`.
    pub fn parse(text: &str) -> Result<Self, IbanError> {
        let compact: String = text
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = compact.as_bytes();
        let shape_ok = (5..=MAX_LEN).contains(&bytes.len())
            && bytes.iter().all(u8::is_ascii_alphanumeric)
            && bytes.iter().take(2).all(u8::is_ascii_uppercase)
            && bytes.iter().skip(2).take(2).all(u8::is_ascii_digit);
        if !shape_ok {
            return Err(IbanError::Malformed);
        }
        if mod97(bytes) != 1 {
            return Err(IbanError::Checksum);
        }
        Ok(Iban(compact))
    }

    /// The compact upper-case IBAN.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True if `text` is a valid IBAN by the rules of [`Iban::parse`].
pub fn iban_is_valid(text: &str) -> bool {
    Iban::parse(text).is_ok()
}

/// The ISO 7064 remainder of the rotated IBAN (upper-case alphanumerics).
fn mod97(iban: &[u8]) -> u32 {
    let (head, tail) = iban.split_at(iban.len().min(4));
    tail.iter().chain(head).fold(0u32, |rem, &c| match c {
        b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
        // Letters become two digits, 10..=35.
        _ => (rem * 100 + u32::from(c.wrapping_sub(b'A')) + 10) % 97,
    })
}

impl FromStr for Iban {
    type Err = IbanError;

    fn from_str(text: &str) -> Result<Self, IbanError> {
        Iban::parse(text)
    }
}

impl fmt::Display for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Iban {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Iban {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Iban::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_ibans() {
        for ok in [
            "DE89370400440532013000",
            "de89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "DE89-3704-0044-0532-0130-00",
            "CH9300762011623852957",
            "GB82WEST12345698765432",
        ] {
            assert!(iban_is_valid(ok), "{ok}");
        }
        assert_eq!(
            Iban::parse("de89 3704 0044 0532 0130 00").unwrap().as_str(),
            "DE89370400440532013000"
        );
    }

    #[test]
    fn invalid_ibans() {
        assert_eq!(
            Iban::parse("DE88370400440532013000"),
            Err(IbanError::Checksum)
        );
        assert_eq!(
            Iban::parse("GB82WEST12345698765433"),
            Err(IbanError::Checksum)
        );
        for bad in [
            "",
            "DE89",
            "DE8937040044053201300000000000000000",
            "8989370400440532013000",
            "DEXX370400440532013000",
            "DE89370400440532013000!",
            "DE89.370400440532013000",
            "DÉ89370400440532013000",
        ] {
            assert_eq!(Iban::parse(bad), Err(IbanError::Malformed), "{bad}");
        }
    }

    #[test]
    fn serde_as_string() {
        let iban = Iban::parse("CH9300762011623852957").unwrap();
        let json = serde_json::to_string(&iban).unwrap();
        assert_eq!(json, "\"CH9300762011623852957\"");
        assert_eq!(serde_json::from_str::<Iban>(&json).unwrap(), iban);
        assert!(serde_json::from_str::<Iban>("\"CH9300762011623852958\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = Iban::parse(&text);
        }
    }
}

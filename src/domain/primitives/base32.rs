//! Taler/GNUnet "Crockford" base32 (taler-primitives.md §1).
//!
//! Decoding always targets a known output size: the text length must be
//! exactly `ceil(8·n/5)`. Letters are case-insensitive, `O`→0, `I`/`L`→1,
//! `U`→V, and the unused low bits of the last symbol are ignored (as GNUnet).

use std::sync::LazyLock;

use data_encoding::{Encoding, Specification, SpecificationError};

/// Upper-case symbols for the values 0..=31.
const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Why a base32 text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base32Error {
    /// The text does not have exactly the length the field size requires.
    #[error("base32 text has length {actual}, expected {expected}")]
    WrongLength { expected: usize, actual: usize },
    /// A character outside the alphabet and its aliases.
    #[error("invalid base32 character at position {position}")]
    InvalidSymbol { position: usize },
    /// The codec could not be built (a programming error; see the tests).
    #[error("base32 codec unavailable")]
    CodecUnavailable,
}

/// The codec, built once. Building a constant specification either always or
/// never fails, and the `specification_builds` test proves it does not.
static CODEC: LazyLock<Result<Encoding, SpecificationError>> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str(ALPHABET);
    spec.check_trailing_bits = false;
    // Lower-case letters of the alphabet, then the GNUnet aliases.
    spec.translate
        .from
        .push_str("abcdefghjkmnpqrstvwxyzOoIiLlUu");
    spec.translate.to.push_str("ABCDEFGHJKMNPQRSTVWXYZ001111VV");
    spec.encoding()
});

/// Encodes bytes as upper-case base32 without padding.
pub fn encode(bytes: &[u8]) -> String {
    match &*CODEC {
        Ok(codec) => codec.encode(bytes),
        // Unreachable (see `CODEC`); an empty string beats a panic.
        Err(_) => String::new(),
    }
}

/// Length of the base32 text for `len` bytes, `None` if it overflows.
pub fn encoded_len(len: usize) -> Option<usize> {
    len.checked_mul(8)?.checked_add(4).map(|bits| bits / 5)
}

/// Decodes `text` into exactly `len` bytes.
pub fn decode(text: &str, len: usize) -> Result<Vec<u8>, Base32Error> {
    let actual = text.len();
    // A length that overflows can never match a real text.
    let expected = encoded_len(len).unwrap_or(usize::MAX);
    if actual != expected {
        return Err(Base32Error::WrongLength { expected, actual });
    }
    let codec = CODEC.as_ref().map_err(|_| Base32Error::CodecUnavailable)?;
    let bytes = codec
        .decode(text.as_bytes())
        .map_err(|err| match err.kind {
            data_encoding::DecodeKind::Length => Base32Error::WrongLength { expected, actual },
            _ => Base32Error::InvalidSymbol {
                position: err.position,
            },
        })?;
    if bytes.len() == len {
        Ok(bytes)
    } else {
        Err(Base32Error::WrongLength { expected, actual })
    }
}

/// Decodes `text` into a fixed-size array (the usual case for keys and hashes).
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], Base32Error> {
    let bytes = decode(text, N)?;
    let actual = text.len();
    <[u8; N]>::try_from(bytes).map_err(|_| Base32Error::WrongLength {
        expected: encoded_len(N).unwrap_or(usize::MAX),
        actual,
    })
}

/// Defines a fixed-size byte newtype shown and parsed as base32, with serde
/// as a base32 string.
macro_rules! base32_bytes_newtype {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Size in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&$crate::domain::primitives::base32::encode(&self.0))
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::primitives::base32::Base32Error;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $crate::domain::primitives::base32::decode_array(text).map(Self)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use base32_bytes_newtype;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn specification_builds() {
        assert!(CODEC.is_ok());
    }

    #[test]
    fn encode_vectors() {
        let cases: [(&[u8], &str); 9] = [
            (b"", ""),
            (&[0x00], "00"),
            (&[0xff], "ZW"),
            (b"f", "CR"),
            (b"fo", "CSQG"),
            (b"foo", "CSQPY"),
            (b"foob", "CSQPYRG"),
            (b"fooba", "CSQPYRK1"),
            (b"foobar", "CSQPYRK1E8"),
        ];
        for (bytes, text) in cases {
            assert_eq!(encode(bytes), text);
            assert_eq!(decode(text, bytes.len()).unwrap(), bytes);
        }
        let seq: Vec<u8> = (0u8..32).collect();
        let text = "000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG";
        assert_eq!(encode(&seq), text);
        assert_eq!(decode_array::<32>(text).unwrap().to_vec(), seq);
    }

    #[test]
    fn encoded_lengths() {
        assert_eq!(encode(&[0u8; 32]).len(), 52);
        assert_eq!(encode(&[0u8; 64]).len(), 103);
        assert_eq!(encode(&[0u8; 24]).len(), 39);
    }

    #[test]
    fn decode_vectors() {
        assert_eq!(decode("csqpyrk1e8", 6).unwrap(), b"foobar");
        assert_eq!(decode("CSQPYRKLE8", 6).unwrap(), b"foobar");
        assert_eq!(
            decode("oOiIlLuU", 5).unwrap(),
            decode("001111VV", 5).unwrap()
        );
        assert_eq!(decode("zz", 1).unwrap(), [0xff]);
        assert_eq!(decode("ZZ", 1).unwrap(), [0xff]);
        assert_eq!(decode("ZW", 1).unwrap(), [0xff]);
        assert_eq!(decode("", 0).unwrap(), b"");
    }

    #[test]
    fn decode_rejects() {
        assert_eq!(
            decode("ZW0", 1),
            Err(Base32Error::WrongLength {
                expected: 2,
                actual: 3
            })
        );
        assert_eq!(
            decode("Z*", 1),
            Err(Base32Error::InvalidSymbol { position: 1 })
        );
        for bad in ["Z ", "Z-", "Z=", "Zé"] {
            assert!(decode(bad, 1).is_err(), "{bad}");
        }
        assert!(matches!(
            decode("", 1),
            Err(Base32Error::WrongLength { .. })
        ));
        assert!(matches!(
            decode("00", 0),
            Err(Base32Error::WrongLength { .. })
        ));
        assert!(decode("00", usize::MAX).is_err());
        assert!(decode_array::<2>("ZW").is_err());
    }

    base32_bytes_newtype!(
        /// Test-only newtype exercising the macro.
        Sample,
        6
    );

    #[test]
    fn newtype_text_and_serde() {
        let sample: Sample = "csqpyrk1e8".parse().unwrap();
        assert_eq!(sample.as_bytes(), b"foobar");
        assert_eq!(Sample::LEN, 6);
        assert_eq!(sample.to_string(), "CSQPYRK1E8");
        assert_eq!(format!("{sample:?}"), "Sample(CSQPYRK1E8)");
        let json = serde_json::to_string(&sample).unwrap();
        assert_eq!(json, "\"CSQPYRK1E8\"");
        assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), sample);
        assert!(serde_json::from_str::<Sample>("\"CSQPYRK1E\"").is_err());
        assert!(serde_json::from_str::<Sample>("42").is_err());
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = encode(&bytes);
            prop_assert_eq!(Some(text.len()), encoded_len(bytes.len()));
            prop_assert_eq!(decode(&text, bytes.len()).unwrap(), bytes.clone());
            prop_assert_eq!(decode(&text.to_lowercase(), bytes.len()).unwrap(), bytes);
        }

        #[test]
        fn decode_never_panics(text in ".{0,120}", len in any::<usize>(), small in 0usize..80) {
            let _ = decode(&text, len);
            let _ = decode(&text, small);
            let _ = decode_array::<32>(&text);
        }

        #[test]
        fn decode_alphabet_strings(text in "[0-9A-Za-z]{0,110}") {
            // Every text of a valid length decodes, and re-encoding is canonical.
            let len = text.len() * 5 / 8;
            if encoded_len(len) == Some(text.len()) {
                let bytes = decode(&text, len);
                if let Ok(bytes) = bytes {
                    let canonical = encode(&bytes);
                    prop_assert_eq!(decode(&canonical, len).unwrap(), bytes);
                }
            }
        }
    }
}

//! Taler amounts (taler-primitives.md §7, corebank.md §1.2).
//!
//! Text form `CUR:VALUE[.FRACTION]`, accepted exactly when it matches
//! `^[A-Z]{1,11}:[0-9]+(\.[0-9]{1,8})?$` and VALUE ≤ 2^52.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest allowed integer part, 2^52 (inclusive).
pub const MAX_VALUE: u64 = 1 << 52;
/// Fraction units per 1 (the fraction counts 10^-8).
pub const FRACTION_BASE: u32 = 100_000_000;
/// Maximum number of fraction digits in the text form.
const FRACTION_DIGITS: usize = 8;
/// Maximum currency length; the signed form has a 12-byte NUL-padded field.
const MAX_CURRENCY_LEN: usize = 11;

/// Why an amount was rejected or an operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not of the form `CUR:VALUE[.FRACTION]` (bank code 5108).
    #[error("malformed amount")]
    Malformed,
    /// Well-formed but the value exceeds 2^52 (bank code 5104).
    #[error("amount value exceeds 2^52")]
    TooBig,
    /// Operands in different currencies.
    #[error("currency mismatch")]
    CurrencyMismatch,
    /// An arithmetic result exceeds 2^52.
    #[error("amount overflow")]
    Overflow,
    /// A subtraction result would be below zero.
    #[error("amount would be negative")]
    Negative,
}

/// A currency code: 1–11 upper-case ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(String);

impl Currency {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Currency {
    type Err = AmountError;

    fn from_str(text: &str) -> Result<Self, AmountError> {
        let valid = (1..=MAX_CURRENCY_LEN).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_uppercase());
        if valid {
            Ok(Currency(text.to_owned()))
        } else {
            Err(AmountError::Malformed)
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A non-negative amount of one currency: `value + fraction · 10^-8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Amount {
    currency: Currency,
    value: u64,
    fraction: u32,
}

impl Amount {
    /// Builds an amount; `value` ≤ 2^52 and `fraction` < 10^8.
    pub fn new(currency: Currency, value: u64, fraction: u32) -> Result<Self, AmountError> {
        if fraction >= FRACTION_BASE {
            return Err(AmountError::Malformed);
        }
        if value > MAX_VALUE {
            return Err(AmountError::TooBig);
        }
        Ok(Amount {
            currency,
            value,
            fraction,
        })
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Amount {
            currency,
            value: 0,
            fraction: 0,
        }
    }

    /// The currency.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// The integer part.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// The fractional part in units of 10^-8.
    pub fn fraction(&self) -> u32 {
        self.fraction
    }

    /// True when the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.value == 0 && self.fraction == 0
    }

    fn same_currency(&self, other: &Amount) -> Result<(), AmountError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(AmountError::CurrencyMismatch)
        }
    }

    /// `self + other`; the result must stay ≤ 2^52.
    pub fn checked_add(&self, other: &Amount) -> Result<Amount, AmountError> {
        self.same_currency(other)?;
        // Both fractions are < 10^8, so the sum fits in u32 with one carry.
        let mut fraction = self.fraction + other.fraction;
        let mut carry = 0;
        if fraction >= FRACTION_BASE {
            fraction -= FRACTION_BASE;
            carry = 1;
        }
        let value = self
            .value
            .checked_add(other.value)
            .and_then(|v| v.checked_add(carry))
            .filter(|v| *v <= MAX_VALUE)
            .ok_or(AmountError::Overflow)?;
        Ok(Amount {
            currency: self.currency.clone(),
            value,
            fraction,
        })
    }

    /// `self - other`; fails with `Negative` if `other` is larger.
    pub fn checked_sub(&self, other: &Amount) -> Result<Amount, AmountError> {
        if self.cmp_same_currency(other)? == Ordering::Less {
            return Err(AmountError::Negative);
        }
        // self ≥ other, so the borrow and the subtraction cannot underflow;
        // checked forms keep that reasoning out of the panic paths.
        let (fraction, borrow) = match self.fraction.checked_sub(other.fraction) {
            Some(fraction) => (fraction, 0),
            None => (self.fraction + FRACTION_BASE - other.fraction, 1),
        };
        let value = self
            .value
            .checked_sub(other.value)
            .and_then(|v| v.checked_sub(borrow))
            .ok_or(AmountError::Negative)?;
        Ok(Amount {
            currency: self.currency.clone(),
            value,
            fraction,
        })
    }

    /// Orders two amounts of the same currency.
    pub fn cmp_same_currency(&self, other: &Amount) -> Result<Ordering, AmountError> {
        self.same_currency(other)?;
        Ok((self.value, self.fraction).cmp(&(other.value, other.fraction)))
    }

    /// The 24-byte AmountNBO used inside signed blocks: u64 BE value ‖
    /// u32 BE fraction ‖ currency NUL-padded to 12 bytes.
    pub fn to_nbo(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.value.to_be_bytes());
        out[8..12].copy_from_slice(&self.fraction.to_be_bytes());
        // The currency has at most 11 bytes, so at least one NUL remains.
        for (slot, byte) in out[12..23].iter_mut().zip(self.currency.0.bytes()) {
            *slot = byte;
        }
        out
    }
}

/// Parses the digits after `.` (1 to 8 of them) into units of 10^-8.
fn parse_fraction(digits: &str) -> Option<u32> {
    if digits.is_empty() || digits.len() > FRACTION_DIGITS {
        return None;
    }
    let mut fraction: u32 = 0;
    let mut scale = FRACTION_BASE;
    for byte in digits.bytes() {
        let digit = u32::from(byte.wrapping_sub(b'0'));
        if digit > 9 {
            return None;
        }
        scale /= 10;
        fraction += digit * scale;
    }
    Some(fraction)
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(text: &str) -> Result<Self, AmountError> {
        let (currency, number) = text.split_once(':').ok_or(AmountError::Malformed)?;
        let currency: Currency = currency.parse()?;
        let (integer, fraction) = match number.split_once('.') {
            Some((integer, fraction)) => (integer, parse_fraction(fraction)),
            None => (number, Some(0)),
        };
        let fraction = fraction.ok_or(AmountError::Malformed)?;
        if integer.is_empty() || !integer.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::Malformed);
        }
        // The syntax is valid now; any overflow means the value is too big.
        let value = integer.bytes().try_fold(0u64, |acc, b| {
            acc.checked_mul(10)?
                .checked_add(u64::from(b.wrapping_sub(b'0')))
                .filter(|v| *v <= MAX_VALUE)
        });
        let value = value.ok_or(AmountError::TooBig)?;
        Amount::new(currency, value, fraction)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.currency, self.value)?;
        if self.fraction != 0 {
            let digits = format!("{:08}", self.fraction);
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn amount(text: &str) -> Amount {
        text.parse().unwrap()
    }

    #[test]
    fn spec_table_valid() {
        assert_eq!(amount("EUR:1.50").to_string(), "EUR:1.5");
        let smallest = amount("KUDOS:0.00000001");
        assert_eq!((smallest.value(), smallest.fraction()), (0, 1));
        assert_eq!(smallest.to_string(), "KUDOS:0.00000001");
        let max = amount("EUR:4503599627370496");
        assert_eq!(max.value(), MAX_VALUE);
        assert_eq!(
            amount("EUR:4503599627370496.99999999").to_string(),
            "EUR:4503599627370496.99999999"
        );
        assert_eq!(amount("ABCDEFGHIJK:1").currency().as_str(), "ABCDEFGHIJK");
        assert_eq!(amount("KUDOS:0").to_string(), "KUDOS:0");
        assert_eq!(amount("KUDOS:100.00").to_string(), "KUDOS:100");
        assert_eq!(amount("KUDOS:0.01").to_string(), "KUDOS:0.01");
        assert_eq!(amount("KUDOS:007").to_string(), "KUDOS:7");
    }

    #[test]
    fn spec_table_invalid() {
        for bad in [
            "KUDOS:0.000000001",
            "ABCDEFGHIJKL:1",
            "eur:1",
            "EUR:1.",
            "EUR:.5",
            "EUR:",
            ":1",
            "EUR:-1",
            "EUR: 1",
            "EUR:1,5",
            "EUR:+1",
            "EUR:1.5.",
            "EUR1",
            "",
            "EUR:1:2",
            "EÜR:1",
            "EUR:１",
            "EUR:99999999999999999999999.123456789",
        ] {
            assert_eq!(bad.parse::<Amount>(), Err(AmountError::Malformed), "{bad}");
        }
        for too_big in [
            "EUR:4503599627370497",
            "EUR:18446744073709551616",
            "EUR:99999999999999999999999999999999.5",
        ] {
            assert_eq!(
                too_big.parse::<Amount>(),
                Err(AmountError::TooBig),
                "{too_big}"
            );
        }
    }

    #[test]
    fn arithmetic() {
        let sum = amount("EUR:1.6").checked_add(&amount("EUR:2.5")).unwrap();
        assert_eq!(sum.to_string(), "EUR:4.1");
        assert_eq!(
            amount("EUR:4503599627370496").checked_add(&amount("EUR:0.99999999")),
            Ok(amount("EUR:4503599627370496.99999999"))
        );
        assert_eq!(
            amount("EUR:4503599627370496.5").checked_add(&amount("EUR:0.5")),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            amount("EUR:4503599627370495.5").checked_add(&amount("EUR:0.5")),
            Ok(amount("EUR:4503599627370496"))
        );
        assert_eq!(
            amount("EUR:1").checked_add(&amount("KUDOS:1")),
            Err(AmountError::CurrencyMismatch)
        );
        let diff = amount("EUR:4.1").checked_sub(&amount("EUR:2.5")).unwrap();
        assert_eq!(diff.to_string(), "EUR:1.6");
        assert!(
            amount("EUR:1")
                .checked_sub(&amount("EUR:1"))
                .unwrap()
                .is_zero()
        );
        assert_eq!(
            amount("EUR:1").checked_sub(&amount("EUR:1.00000001")),
            Err(AmountError::Negative)
        );
        assert_eq!(
            amount("EUR:1").checked_sub(&amount("KUDOS:0")),
            Err(AmountError::CurrencyMismatch)
        );
        assert_eq!(
            amount("EUR:1.5").cmp_same_currency(&amount("EUR:1.25")),
            Ok(Ordering::Greater)
        );
        assert_eq!(
            amount("EUR:1").cmp_same_currency(&amount("KUDOS:1")),
            Err(AmountError::CurrencyMismatch)
        );
        let zero = Amount::zero("EUR".parse().unwrap());
        assert!(zero.is_zero());
        assert_eq!(zero.to_string(), "EUR:0");
    }

    #[test]
    fn constructor_limits() {
        let eur: Currency = "EUR".parse().unwrap();
        assert_eq!(
            Amount::new(eur.clone(), 0, FRACTION_BASE),
            Err(AmountError::Malformed)
        );
        assert_eq!(
            Amount::new(eur.clone(), MAX_VALUE + 1, 0),
            Err(AmountError::TooBig)
        );
        assert!(Amount::new(eur, MAX_VALUE, FRACTION_BASE - 1).is_ok());
        assert!("".parse::<Currency>().is_err());
        assert!("ABCDEFGHIJKL".parse::<Currency>().is_err());
    }

    #[test]
    fn nbo_layout() {
        let nbo = amount("KUDOS:258.00000003").to_nbo();
        let mut expected = Vec::new();
        expected.extend_from_slice(&258u64.to_be_bytes());
        expected.extend_from_slice(&3u32.to_be_bytes());
        expected.extend_from_slice(b"KUDOS\0\0\0\0\0\0\0");
        assert_eq!(nbo.to_vec(), expected);
        let long = amount("ABCDEFGHIJK:0").to_nbo();
        assert_eq!(&long[12..], b"ABCDEFGHIJK\0");
    }

    #[test]
    fn serde_as_string() {
        let a = amount("EUR:1.50");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"EUR:1.5\"");
        assert_eq!(serde_json::from_str::<Amount>("\"EUR:1.5\"").unwrap(), a);
        for bad in [
            "\"EUR:1.\"",
            "1.5",
            "null",
            "{}",
            "\"EUR:4503599627370497\"",
        ] {
            assert!(serde_json::from_str::<Amount>(bad).is_err(), "{bad}");
        }
    }

    fn any_amount() -> impl Strategy<Value = Amount> {
        ("[A-Z]{1,11}", 0..=MAX_VALUE, 0..FRACTION_BASE).prop_map(|(cur, value, fraction)| {
            Amount::new(cur.parse().unwrap(), value, fraction).unwrap()
        })
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(a in any_amount()) {
            let text = a.to_string();
            prop_assert_eq!(text.parse::<Amount>().unwrap(), a);
        }

        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = text.parse::<Amount>();
        }

        #[test]
        fn parse_never_panics_on_near_misses(text in "[A-Za-z]{0,13}:[-0-9.,]{0,30}") {
            if let Ok(a) = text.parse::<Amount>() {
                prop_assert_eq!(a.to_string().parse::<Amount>().unwrap(), a);
            }
        }

        #[test]
        fn add_then_sub(a in any_amount(), value in 0..=MAX_VALUE, fraction in 0..FRACTION_BASE) {
            let b = Amount::new(a.currency().clone(), value, fraction).unwrap();
            if let Ok(sum) = a.checked_add(&b) {
                prop_assert_eq!(sum.checked_sub(&b).unwrap(), a);
            }
        }
    }
}

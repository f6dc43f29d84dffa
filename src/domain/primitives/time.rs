//! Taler time types (taler-primitives.md §10).
//!
//! Both keep microseconds in a `u64`; `u64::MAX` means "never" / "forever".
//! JSON is `{"t_s": N | "never"}` and `{"d_us": N | "forever"}` with
//! 0 ≤ N ≤ 2^53−1. No clock here: the current time comes from a port.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

const MICROS_PER_SECOND: u64 = 1_000_000;
/// Largest integer accepted in JSON (the exact range of an IEEE double).
const MAX_JSON_INTEGER: u64 = (1 << 53) - 1;

/// An absolute time in whole seconds since the Unix epoch, or "never".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    micros: u64,
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp { micros: 0 };

    /// The time that never comes (sorts after every other timestamp).
    pub const fn never() -> Self {
        Timestamp { micros: u64::MAX }
    }

    /// Whole seconds since the epoch; `None` if not representable in µs.
    pub fn from_seconds(seconds: u64) -> Option<Self> {
        // u64::MAX is not a multiple of 10^6, so this never produces "never".
        seconds
            .checked_mul(MICROS_PER_SECOND)
            .map(|micros| Timestamp { micros })
    }

    /// Microseconds since the epoch, rounded down to whole seconds;
    /// `u64::MAX` gives "never" (the value stored in signed blocks).
    pub fn from_micros(micros: u64) -> Self {
        if micros == u64::MAX {
            Self::never()
        } else {
            Timestamp {
                micros: micros - micros % MICROS_PER_SECOND,
            }
        }
    }

    /// True for "never".
    pub fn is_never(self) -> bool {
        self.micros == u64::MAX
    }

    /// Microseconds since the epoch (`u64::MAX` for "never"), as signed.
    pub fn as_micros(self) -> u64 {
        self.micros
    }

    /// Whole seconds since the epoch, `None` for "never".
    pub fn as_seconds(self) -> Option<u64> {
        (!self.is_never()).then_some(self.micros / MICROS_PER_SECOND)
    }

    /// `self + duration`, rounded down to seconds; "never" if either side is
    /// infinite or the sum does not fit.
    pub fn saturating_add(self, duration: RelativeTime) -> Self {
        if self.is_never() || duration.is_forever() {
            return Self::never();
        }
        match self.micros.checked_add(duration.micros) {
            Some(micros) => Self::from_micros(micros),
            None => Self::never(),
        }
    }
}

/// A duration in microseconds, or "forever".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelativeTime {
    micros: u64,
}

impl RelativeTime {
    /// The empty duration.
    pub const ZERO: RelativeTime = RelativeTime { micros: 0 };

    /// The infinite duration.
    pub const fn forever() -> Self {
        RelativeTime { micros: u64::MAX }
    }

    /// A duration in microseconds (`u64::MAX` is "forever").
    pub const fn from_micros(micros: u64) -> Self {
        RelativeTime { micros }
    }

    /// A duration in whole seconds, "forever" if it does not fit.
    pub fn from_seconds(seconds: u64) -> Self {
        Self::from_micros(seconds.saturating_mul(MICROS_PER_SECOND))
    }

    /// True for "forever".
    pub fn is_forever(self) -> bool {
        self.micros == u64::MAX
    }

    /// Microseconds (`u64::MAX` for "forever").
    pub fn as_micros(self) -> u64 {
        self.micros
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object = serializer.serialize_struct("Timestamp", 1)?;
        match self.as_seconds() {
            Some(seconds) => object.serialize_field("t_s", &seconds)?,
            None => object.serialize_field("t_s", "never")?,
        }
        object.end()
    }
}

impl Serialize for RelativeTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object = serializer.serialize_struct("RelativeTime", 1)?;
        if self.is_forever() {
            object.serialize_field("d_us", "forever")?;
        } else {
            object.serialize_field("d_us", &self.micros)?;
        }
        object.end()
    }
}

/// A JSON time field: an integer in 0..=2^53−1, or the one infinity word.
enum WireValue {
    Finite(u64),
    Infinite,
}

/// Visitor for [`WireValue`]; `infinity` is `"never"` or `"forever"`.
struct WireValueVisitor {
    infinity: &'static str,
}

impl Visitor<'_> for WireValueVisitor {
    type Value = WireValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an integer between 0 and 2^53-1 or \"{}\"",
            self.infinity
        )
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<WireValue, E> {
        if value <= MAX_JSON_INTEGER {
            Ok(WireValue::Finite(value))
        } else {
            Err(E::invalid_value(de::Unexpected::Unsigned(value), &self))
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<WireValue, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::invalid_value(de::Unexpected::Signed(value), &self)),
        }
    }

    // Floats, even `1.0`, are rejected: the wire form is an integer.
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<WireValue, E> {
        Err(E::invalid_type(de::Unexpected::Float(value), &self))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<WireValue, E> {
        if value == self.infinity {
            Ok(WireValue::Infinite)
        } else {
            Err(E::invalid_value(de::Unexpected::Str(value), &self))
        }
    }
}

/// Wire object `{"t_s": ...}`; other keys are ignored like any unknown field.
#[derive(Deserialize)]
struct TimestampWire {
    t_s: NeverOrSeconds,
}

/// Wire object `{"d_us": ...}`.
#[derive(Deserialize)]
struct RelativeTimeWire {
    d_us: ForeverOrMicros,
}

struct NeverOrSeconds(WireValue);
struct ForeverOrMicros(WireValue);

impl<'de> Deserialize<'de> for NeverOrSeconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(WireValueVisitor { infinity: "never" })
            .map(NeverOrSeconds)
    }
}

impl<'de> Deserialize<'de> for ForeverOrMicros {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(WireValueVisitor {
                infinity: "forever",
            })
            .map(ForeverOrMicros)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match TimestampWire::deserialize(deserializer)?.t_s.0 {
            WireValue::Infinite => Ok(Timestamp::never()),
            // Seconds above u64::MAX / 10^6 (year ~586 000) do not fit in µs.
            WireValue::Finite(seconds) => Timestamp::from_seconds(seconds)
                .ok_or_else(|| de::Error::custom(format!("timestamp {seconds} s is out of range"))),
        }
    }
}

impl<'de> Deserialize<'de> for RelativeTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match RelativeTimeWire::deserialize(deserializer)?.d_us.0 {
            WireValue::Infinite => RelativeTime::forever(),
            WireValue::Finite(micros) => RelativeTime::from_micros(micros),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(json: &str) -> Result<Timestamp, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn rel(json: &str) -> Result<RelativeTime, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn timestamp_json_round_trip() {
        let t = Timestamp::from_seconds(1_700_000_000).unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"t_s":1700000000}"#);
        assert_eq!(ts(r#"{"t_s":1700000000}"#).unwrap(), t);
        assert_eq!(
            serde_json::to_string(&Timestamp::never()).unwrap(),
            r#"{"t_s":"never"}"#
        );
        assert!(ts(r#"{"t_s":"never"}"#).unwrap().is_never());
        assert_eq!(ts(r#"{"t_s":0}"#).unwrap(), Timestamp::EPOCH);
        assert_eq!(
            ts(r#"{"t_s":1,"extra":true}"#).unwrap(),
            Timestamp::from_seconds(1).unwrap()
        );
    }

    #[test]
    fn timestamp_json_limits() {
        // 2^53−1 is inside the JSON range but does not fit in µs: rejected.
        assert!(ts(r#"{"t_s":9007199254740991}"#).is_err());
        let max_fitting = u64::MAX / MICROS_PER_SECOND;
        assert_eq!(
            ts(&format!(r#"{{"t_s":{max_fitting}}}"#))
                .unwrap()
                .as_seconds(),
            Some(max_fitting)
        );
        assert!(ts(&format!(r#"{{"t_s":{}}}"#, max_fitting + 1)).is_err());
    }

    #[test]
    fn timestamp_json_rejects() {
        for bad in [
            r#"{"t_s":-1}"#,
            r#"{"t_s":1.5}"#,
            r#"{"t_s":1.0}"#,
            r#"{"t_s":1e3}"#,
            r#"{"t_s":"forever"}"#,
            r#"{"t_s":"Never"}"#,
            r#"{"t_s":"1"}"#,
            r#"{"t_s":null}"#,
            r#"{"t_s":9007199254740992}"#,
            r#"{"t_s":18446744073709551616}"#,
            r#"{}"#,
            r#"{"d_us":1}"#,
            "1700000000",
            r#""never""#,
        ] {
            assert!(ts(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_time_json() {
        let d = RelativeTime::from_micros(1_500_000);
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"d_us":1500000}"#);
        assert_eq!(rel(r#"{"d_us":1500000}"#).unwrap(), d);
        assert_eq!(
            serde_json::to_string(&RelativeTime::forever()).unwrap(),
            r#"{"d_us":"forever"}"#
        );
        assert!(rel(r#"{"d_us":"forever"}"#).unwrap().is_forever());
        assert_eq!(
            rel(r#"{"d_us":9007199254740991}"#).unwrap().as_micros(),
            (1 << 53) - 1
        );
        for bad in [
            r#"{"d_us":9007199254740992}"#,
            r#"{"d_us":-1}"#,
            r#"{"d_us":1.0}"#,
            r#"{"d_us":"never"}"#,
            r#"{"d_us":"5 s"}"#,
            r#"{"t_s":1}"#,
            r#"{}"#,
            "[]",
        ] {
            assert!(rel(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rounding_and_arithmetic() {
        assert_eq!(
            Timestamp::from_micros(1_700_000_000_999_999),
            Timestamp::from_seconds(1_700_000_000).unwrap()
        );
        assert!(Timestamp::from_micros(u64::MAX).is_never());
        assert_eq!(Timestamp::never().as_micros(), u64::MAX);
        assert_eq!(Timestamp::never().as_seconds(), None);
        assert!(Timestamp::from_seconds(u64::MAX).is_none());

        let t = Timestamp::from_seconds(10).unwrap();
        assert_eq!(
            t.saturating_add(RelativeTime::from_micros(2_500_000)),
            Timestamp::from_seconds(12).unwrap()
        );
        assert!(t.saturating_add(RelativeTime::forever()).is_never());
        assert!(
            Timestamp::never()
                .saturating_add(RelativeTime::ZERO)
                .is_never()
        );
        assert!(
            t.saturating_add(RelativeTime::from_micros(u64::MAX - 1))
                .is_never()
        );
        assert!(RelativeTime::from_seconds(u64::MAX).is_forever());
        assert!(Timestamp::from_seconds(1).unwrap() < Timestamp::never());
    }
}

//! Conversions between talerbox values and database columns, shared by the SQLite and
//! PostgreSQL stores (both keep times as signed µs and serials as 64-bit integers).
//!
//! Times are signed µs; every finite timestamp up to i64::MAX µs (year 294 247) converts
//! exactly, and an expiry of "never" is NULL. Serials are INTEGER; everything read back is
//! validated, so a corrupt row is `StoreError::Internal`, never a panic.

use crate::domain::primitives::Timestamp;
use crate::ports::StoreError;

pub fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Internal(format!("corrupt {what} in the database: {value:?}"))
}

pub fn bytes<const N: usize>(value: &[u8], what: &str) -> Result<[u8; N], StoreError> {
    value
        .try_into()
        .map_err(|_| corrupt(what, &format!("{} bytes", value.len())))
}

pub fn id_to_sql(id: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::Internal(format!("{what} {id} out of range")))
}

pub fn id_from_sql(id: i64) -> Result<u64, StoreError> {
    u64::try_from(id).map_err(|_| corrupt("serial", &id.to_string()))
}

pub fn micros_to_sql(time: Timestamp) -> Result<i64, StoreError> {
    i64::try_from(time.as_micros())
        .map_err(|_| StoreError::Internal(format!("time {} µs out of range", time.as_micros())))
}

pub fn micros_from_sql(micros: i64) -> Result<Timestamp, StoreError> {
    let time = u64::try_from(micros).map(Timestamp::from_micros);
    // Timestamps hold whole seconds; any other value was not written by us.
    match time {
        Ok(time) if i64::try_from(time.as_micros()) == Ok(micros) => Ok(time),
        _ => Err(corrupt("time", &micros.to_string())),
    }
}

/// NULL is "never" (u64::MAX µs does not fit an i64).
pub fn expiry_to_sql(time: Timestamp) -> Result<Option<i64>, StoreError> {
    if time.is_never() {
        Ok(None)
    } else {
        micros_to_sql(time).map(Some)
    }
}

pub fn expiry_from_sql(micros: Option<i64>) -> Result<Timestamp, StoreError> {
    micros.map_or(Ok(Timestamp::never()), micros_from_sql)
}

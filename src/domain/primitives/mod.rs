//! Taler's shared value types and encodings (taler-primitives spec).

mod error;

pub use error::{ErrorCode, TalerError};

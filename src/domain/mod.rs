//! The domain: pure Rust rules over ports; no I/O, no async runtime, no storage engine.

pub mod accounts;
pub mod aml;
pub mod challenges;
pub mod evidence;
pub mod kyc;
pub mod primitives;
pub mod tan;

#[cfg(test)]
pub(crate) mod fuzz_tests;

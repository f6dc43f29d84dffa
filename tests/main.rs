//! Black-box tests against a real server on a temporary data directory; one test binary so
//! that everything links once.

// Test helpers fail loudly: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod aml;
mod aml_decisions;
mod bank;
mod bank_tan;
mod browser_aml;
mod browser_kyc;
mod challenger;
mod cli;
mod connections;
mod durability;
mod evidence;
mod footprint;
mod http_basics;
mod kyc;
mod kyc_wallet;
mod offline_flow;
mod operations;
mod operator;
mod postgres_instances;

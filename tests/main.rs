//! Black-box tests against a real server on a temporary data directory; one test binary so
//! that everything links once.

// Test helpers fail loudly: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod aml;
mod aml_decisions;
mod bank;
mod bank_tan;
mod challenger;
mod cli;
mod connections;
mod evidence;
mod http_basics;
mod kyc;
mod offline_flow;
mod operator;

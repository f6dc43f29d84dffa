//! Larger admin commands, kept out of `main.rs` (which only parses and dispatches).

pub mod audit;
pub mod backup;
pub mod kyc;
pub mod payto;
pub mod retention;
pub mod secret;

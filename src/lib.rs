//! talerbox: GNU Taler's compliance services (bank accounts, challenger, KYC, AML) in one
//! binary on an embedded SQLite database.
//!
//! Hexagonal layout: `domain` decides, `ports` describe what the domain needs, `adapters`
//! provide it, and `app` wires them together at startup.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod ports;

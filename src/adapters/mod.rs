//! Adapters: the outside world behind the ports (SQLite, PostgreSQL, HTTP, message delivery).

pub mod account_rows;
pub mod challenger_rows;
pub mod convert;
pub mod delivery;
pub mod http;
pub mod keys;
pub mod logging;
pub mod oauth;
pub mod password;
pub mod pdf;
pub mod postgres;
pub mod private_files;
pub mod process;
pub mod programs;
pub mod sqlite;
pub mod system;

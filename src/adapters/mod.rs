//! Adapters: the outside world behind the ports (SQLite, HTTP).

pub mod http;
pub mod sqlite;
pub mod system;

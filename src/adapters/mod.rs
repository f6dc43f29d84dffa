//! Adapters: the outside world behind the ports (SQLite, HTTP).

pub mod http;
pub mod keys;
pub mod password;
pub mod pdf;
pub mod sqlite;
pub mod system;

//! PIN/TAN delivery behind the `Sender` port: an external helper command, an outbox directory
//! (offline demos) and the log (development).

mod command;
mod log;
mod outbox;

pub use command::{CommandSender, HELPER_TIMEOUT};
pub use log::LogSender;
pub use outbox::{OutboxMessage, OutboxSender};

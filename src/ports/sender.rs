//! Delivery of PINs and TANs to an address (e-mail, phone, postal): the domain hands over the
//! address and the finished message; an adapter delivers it (helper command, outbox, log).

use std::sync::Mutex;

/// The message could not be handed over for delivery; nothing was sent. The text is for the
/// log and never contains the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delivery failed: {0}")]
pub struct SendError(pub String);

pub trait Sender: Send + Sync {
    /// Delivers `message` to `address`; blocks until the delivery is accepted or refused.
    fn send(&self, address: &str, message: &str) -> Result<(), SendError>;
}

/// A sender that records every message, and fails while told to (for tests and embedders).
#[derive(Debug, Default)]
pub struct RecordingSender {
    state: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    messages: Vec<(String, String)>,
    failing: bool,
}

impl RecordingSender {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Every delivered (address, message), oldest first.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.lock().messages.clone()
    }

    /// The last delivered message, if any.
    pub fn last(&self) -> Option<(String, String)> {
        self.lock().messages.last().cloned()
    }

    /// While `true`, every delivery fails and nothing is recorded.
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }
}

impl Sender for RecordingSender {
    fn send(&self, address: &str, message: &str) -> Result<(), SendError> {
        let mut state = self.lock();
        if state.failing {
            return Err(SendError("told to fail".into()));
        }
        state
            .messages
            .push((address.to_owned(), message.to_owned()));
        Ok(())
    }
}

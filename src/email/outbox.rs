use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{Email, EmailSender, SendError};

/// Keeps sent emails in memory, for tests: clones share one outbox.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    sent: Arc<Mutex<Vec<Email>>>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every email sent so far, oldest first.
    pub fn sent(&self) -> Vec<Email> {
        self.sent.lock().clone()
    }

    /// The newest email sent to `to`, if any.
    pub fn last_to(&self, to: &str) -> Option<Email> {
        self.sent
            .lock()
            .iter()
            .rev()
            .find(|e| e.to.eq_ignore_ascii_case(to))
            .cloned()
    }

    /// Empties the outbox.
    pub fn clear(&self) {
        self.sent.lock().clear();
    }
}

#[async_trait]
impl EmailSender for Outbox {
    async fn send(&self, email: Email) -> Result<(), SendError> {
        self.sent.lock().push(email);
        Ok(())
    }
}

use async_trait::async_trait;

use super::{Email, EmailSender, SendError};

/// Writes emails to the log (`tracing`, target `portcullis::email`) instead
/// of sending them: the demo server's default. Links in the body are
/// printed, so a developer can click through flows without a mail server.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSender;

#[async_trait]
impl EmailSender for LogSender {
    async fn send(&self, email: Email) -> Result<(), SendError> {
        tracing::info!(
            target: "portcullis::email",
            to = %email.to,
            subject = %email.subject,
            "email (not sent, LogSender):\n{}",
            email.text
        );
        Ok(())
    }
}

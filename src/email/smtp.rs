use async_trait::async_trait;
use lettre::{
    message::{Mailbox, MultiPart},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use super::{Email, EmailSender, SendError};

/// Sends email over SMTP with lettre.
#[derive(Debug, Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    /// A sender for an SMTP URL, e.g. `smtp://127.0.0.1:2525` (plain),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host` (implicit TLS); see lettre's
    /// `AsyncSmtpTransport::from_url`.
    ///
    /// # Errors
    ///
    /// [`SendError`] when the URL or the from address is invalid.
    pub fn from_url(url: &str, from: &str) -> Result<Self, SendError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| SendError(Box::new(e)))?
            .build();
        let from = from.parse().map_err(|e| SendError(Box::new(e)))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl EmailSender for SmtpSender {
    async fn send(&self, email: Email) -> Result<(), SendError> {
        let to: Mailbox = email.to.parse().map_err(|e| SendError(Box::new(e)))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject);
        let message = match email.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text, html)),
            None => builder.body(email.text),
        }
        .map_err(|e| SendError(Box::new(e)))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| SendError(Box::new(e)))?;
        Ok(())
    }
}

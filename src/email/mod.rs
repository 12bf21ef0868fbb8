//! Outgoing email: the [`EmailSender`] trait and its transports.

mod log;
mod outbox;
#[cfg(feature = "smtp")]
mod smtp;
mod templates;

use async_trait::async_trait;

pub use self::log::LogSender;
pub use outbox::Outbox;
#[cfg(feature = "smtp")]
pub use smtp::SmtpSender;
pub use templates::{DefaultTemplates, EmailTemplates, Message, MessageContext};

/// An email message: plain text and optional HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Email {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body, sent as an alternative to the text.
    pub html: Option<String>,
}

impl Email {
    /// A plain-text email.
    pub fn new(to: impl Into<String>, subject: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            subject: subject.into(),
            text: text.into(),
            html: None,
        }
    }

    /// Adds an HTML alternative.
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }
}

/// Error from an [`EmailSender`].
#[derive(Debug, thiserror::Error)]
#[error("sending email failed: {0}")]
pub struct SendError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Delivers email. Transports implement it; templates live elsewhere.
///
/// # Errors
///
/// [`SendError`] when the message could not be handed to the transport.
///
/// # Example
///
/// ```
/// use async_trait::async_trait;
/// use portcullis::{Email, EmailSender, SendError};
///
/// #[derive(Debug)]
/// struct Discard;
///
/// #[async_trait]
/// impl EmailSender for Discard {
///     async fn send(&self, _email: Email) -> Result<(), SendError> {
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait EmailSender: Send + Sync + std::fmt::Debug + 'static {
    /// Sends one message.
    async fn send(&self, email: Email) -> Result<(), SendError>;
}

//! One-time tokens and mail delivery shared by the account flows.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use chrono::Duration;
use tokio::sync::Notify;

use super::AuthManager;
use crate::{
    email::{Message, MessageContext},
    error::{Error, Result},
    store::OneTimeToken,
    token::{OpaqueToken, TokenHash},
    user::User,
};

/// Purposes of the one-time tokens the core issues.
pub(crate) mod purpose {
    pub(crate) const VERIFY_EMAIL: &str = "verify_email";
    pub(crate) const RESET_PASSWORD: &str = "reset_password";
    pub(crate) const CHANGE_EMAIL: &str = "change_email";
    pub(crate) const DELETE_ACCOUNT: &str = "delete_account";
    /// The code mailed to the current address that confirms an email
    /// change (re-authentication).
    pub(crate) const CHANGE_EMAIL_CODE: &str = "change_email_code";
    /// The second step of a sign-in (`manager/mfa.rs`).
    pub(crate) const MFA_CHALLENGE: &str = "mfa_challenge";
    /// A sign-in waiting for the second factor config requires to be
    /// enrolled (`mfa.required`).
    pub(crate) const MFA_SETUP: &str = "mfa_setup";
    /// A passkey registration ceremony, bound to the session that began it.
    pub(crate) const PASSKEY_REGISTER: &str = "passkey_register";
    /// A passkey sign-in ceremony (discoverable: no user yet).
    pub(crate) const PASSKEY_SIGN_IN: &str = "passkey_sign_in";
    /// A passkey answering a sign-in's MFA challenge.
    pub(crate) const PASSKEY_MFA: &str = "passkey_mfa";
}

/// Mails in flight: delivery runs in the background so that no response
/// waits for (or reveals the timing of) an SMTP conversation.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    pending: AtomicUsize,
    idle: Notify,
}

impl Deliveries {
    fn spawn(self: &Arc<Self>, job: impl std::future::Future<Output = ()> + Send + 'static) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        let this = self.clone();
        tokio::spawn(async move {
            job.await;
            if this.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                this.idle.notify_waiters();
            }
        });
    }

    async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl AuthManager {
    /// Waits until every email handed to the background sender so far has
    /// been delivered (or failed and been logged). Flows answer before their
    /// mail is sent; call this in tests before reading an outbox, and at
    /// shutdown so no mail is lost.
    pub async fn wait_for_deliveries(&self) {
        self.inner.deliveries.wait_idle().await;
    }

    /// Fails with [`Error::EmailNotConfigured`] when no sender is set.
    pub(crate) fn require_email(&self) -> Result<()> {
        match self.inner.email {
            Some(_) => Ok(()),
            None => Err(Error::EmailNotConfigured),
        }
    }

    /// `public_url` + `path` + `?token=` + `token`.
    pub(crate) fn link(&self, path: &str, token: &OpaqueToken) -> String {
        let base = self
            .inner
            .config
            .public_url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/');
        format!("{base}{path}?token={}", token.expose())
    }

    /// `page` (a configured front-end page) + `?token=` (or `&token=`), or
    /// without one [`link`](Self::link)`(path, token)`.
    pub(crate) fn page_link(&self, page: Option<&str>, path: &str, token: &OpaqueToken) -> String {
        match page {
            Some(page) => {
                let sep = if page.contains('?') { '&' } else { '?' };
                format!("{page}{sep}token={}", token.expose())
            }
            None => self.link(path, token),
        }
    }

    /// Stores a new one-time token for `user` (after deleting the user's
    /// earlier tokens of the same purpose: a new request invalidates the
    /// previous one) and returns its raw value. Account-changing tokens are
    /// bound to the user's credential epoch ([`super::epoch`]).
    pub(crate) async fn issue_one_time(
        &self,
        purpose: &str,
        user: &User,
        email: &str,
        ttl_secs: u64,
        data: serde_json::Value,
    ) -> Result<OpaqueToken> {
        let store = &self.inner.store;
        store.delete_one_time_tokens(&user.id, purpose).await?;
        let token = OpaqueToken::generate();
        let ttl = Duration::seconds(i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2));
        let mut record = OneTimeToken::new(token.hash(), purpose, self.now(), ttl)
            .for_user(user.id.clone())
            .for_email(email)
            .with_data(data);
        if super::epoch::binds_epoch(purpose) {
            record = record.at_epoch(user.token_version);
        }
        store.insert_one_time_token(&record).await?;
        Ok(token)
    }

    /// The live one-time token `raw` of `purpose`, without consuming it
    /// (so a flow can validate its input first), and its owner.
    pub(crate) async fn peek_one_time(
        &self,
        raw: &str,
        purpose: &str,
    ) -> Result<(OneTimeToken, User)> {
        let token = self
            .inner
            .store
            .find_one_time_token(&TokenHash::of(raw), purpose, self.now())
            .await?
            .ok_or(Error::TokenGone)?;
        let user_id = token.user_id.clone().ok_or(Error::TokenGone)?;
        let user = self
            .inner
            .store
            .find_user(&user_id)
            .await?
            .ok_or(Error::TokenGone)?;
        Ok((token, user))
    }

    /// Consumes `token` (atomic single use); [`Error::TokenGone`] when a
    /// concurrent request used it first or it expired meanwhile.
    pub(crate) async fn consume_one_time(&self, token: &OneTimeToken) -> Result<()> {
        self.inner
            .store
            .consume_one_time_token(&token.hash, &token.purpose, self.now())
            .await?
            .map(|_| ())
            .ok_or(Error::TokenGone)
    }

    /// Renders `message` for `to` and sends it in the background; failures
    /// are logged. Does nothing without an email sender.
    pub(crate) fn deliver(&self, to: &str, name: Option<&str>, message: Message) {
        let Some(sender) = self.inner.email.clone() else {
            return;
        };
        let config = &self.inner.config;
        let public_url = config
            .public_url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/');
        let cx = MessageContext::new(to, &config.email.app_name, public_url).with_name(name);
        let email = self.inner.templates.render(&message, &cx);
        let kind = message.name();
        self.inner.deliveries.spawn(async move {
            if let Err(err) = sender.send(email).await {
                tracing::error!(error = %err, message = kind, "email delivery failed");
            }
        });
    }

    /// Runs `job` in the background, tracked like a delivery (used where
    /// even storing the token must not show in the response time).
    pub(crate) fn in_background(
        &self,
        job: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.inner.deliveries.spawn(job);
    }
}

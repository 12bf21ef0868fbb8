//! Forgotten, reset, changed and first passwords.

use super::{
    epoch::AccountToken, mail::purpose::RESET_PASSWORD, reauth::wrong_password, AuthManager,
    Principal, RateRule, SignIn,
};
use crate::{
    email::Message,
    error::{Error, Result},
    hooks::{Action, Event},
    store::{ClientInfo, PasswordGuard},
    token::Secret,
    user::{normalize_email, User},
};

impl AuthManager {
    /// Starts a password reset for `email`. Known, unknown and inactive
    /// emails get the same answer in the same time: the answer comes before
    /// the user is looked up; the lookup, the address's mail budget
    /// (`email_per_address`: over it nothing new is sent), the token and
    /// the mail all happen in the background. `client` is counted against
    /// `email_per_ip`. Emits `password_reset_requested` (known active users
    /// only).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (422) for a malformed email,
    /// [`Error::Vetoed`] (403), [`Error::RateLimited`] (429),
    /// [`Error::EmailNotConfigured`] and [`Error::Unavailable`] (503).
    pub async fn forgot_password(&self, email: &str, client: &ClientInfo) -> Result<()> {
        let normalized = normalize_email(email)?;
        self.require_email()?;
        self.rate_limit(RateRule::EmailPerIp, client).await?;
        self.inner
            .hooks
            .before(Action::RequestPasswordReset {
                email: normalized.clone(),
            })
            .await?;
        let this = self.clone();
        self.in_background(async move {
            if let Err(err) = this.forgot_password_job(&normalized).await {
                tracing::error!(error = %err, "password reset mail failed");
            }
        });
        Ok(())
    }

    /// The background half of [`forgot_password`](Self::forgot_password).
    async fn forgot_password_job(&self, normalized: &str) -> Result<()> {
        if !self.mail_budget(normalized).await? {
            return Ok(());
        }
        let Some(user) = self.inner.store.find_user_by_email(normalized).await? else {
            return Ok(());
        };
        if !user.is_active {
            return Ok(());
        }
        self.send_password_reset(&user).await
    }

    /// Issues a reset token for `user` and mails the link.
    pub(crate) async fn send_password_reset(&self, user: &User) -> Result<()> {
        let ttl = self.inner.config.email.reset_password_ttl_secs;
        let token = self
            .issue_one_time(
                RESET_PASSWORD,
                user,
                &user.email_normalized,
                ttl,
                serde_json::Value::Null,
            )
            .await?;
        self.deliver(
            &user.email,
            user.name.as_deref(),
            Message::ResetPassword {
                link: self.page_link(
                    self.inner.config.email.reset_password_url.as_deref(),
                    "/auth/reset-password",
                    &token,
                ),
                expires_in_secs: ttl,
            },
        );
        self.emit(Event::PasswordResetRequested {
            user_id: user.id.clone(),
        })
        .await;
        Ok(())
    }

    /// Sets a new password with a reset token. The policy applies; the token
    /// works once; the new hash and a `token_version` bump are one write, so
    /// every access token and session of the user dies with the old
    /// password. Does not sign in. Mails a notice. `client` is counted
    /// against `token_per_ip`. Emits `password_reset`.
    ///
    /// # Errors
    ///
    /// [`Error::TokenGone`] (410: unknown, used, expired, or issued before
    /// the credential epoch moved or the account was deactivated),
    /// [`Error::Vetoed`] (403), [`Error::Validation`] (422),
    /// [`Error::RateLimited`] (429), [`Error::Unavailable`] (503).
    pub async fn reset_password(
        &self,
        token: &str,
        password: &Secret,
        client: &ClientInfo,
    ) -> Result<()> {
        self.rate_limit(RateRule::TokenPerIp, client).await?;
        // Bound to the address it was mailed to, to the credential epoch
        // (a later reset or change, a deactivation kills it) and to an
        // active account.
        let AccountToken { record, user } = self.peek_account_token(token, RESET_PASSWORD).await?;
        self.inner
            .policy
            .check(password.expose(), Some(&user.email))?;
        self.inner
            .hooks
            .before(Action::ResetPassword {
                user: Box::new(user.clone()),
            })
            .await?;
        let hash = self.inner.hasher.hash(password.expose()).await?;
        self.consume_one_time(&record).await?;
        self.email_proven(&user, &user.email).await?;
        let now = self.now();
        let updated = self
            .inner
            .store
            .set_password_hash(&user.id, PasswordGuard::Any, &hash, true, now)
            .await?
            .ok_or(Error::TokenGone)?;
        let store = &self.inner.store;
        store.revoke_user_sessions(&user.id, None, now).await?;
        store
            .delete_one_time_tokens(&user.id, RESET_PASSWORD)
            .await?;
        self.deliver(
            &updated.email,
            updated.name.as_deref(),
            Message::PasswordChanged,
        );
        self.emit(Event::PasswordReset {
            user_id: user.id.clone(),
        })
        .await;
        Ok(())
    }

    /// Changes the password of a signed-in user who proves the current one.
    /// The new hash and a `token_version` bump are one compare-and-set
    /// write; every session ends, and the caller gets a fresh session and
    /// token pair so this device stays signed in. Mails a notice. Emits
    /// `password_changed`.
    ///
    /// # Errors
    ///
    /// [`Error::PasswordNotSet`] (409), [`Error::Validation`] (422:
    /// `WRONG_PASSWORD`, policy), [`Error::Vetoed`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn change_password(
        &self,
        user: &User,
        current: &Secret,
        new: &Secret,
        provider: &str,
        client: ClientInfo,
    ) -> Result<SignIn> {
        let Some(old_hash) = user.password_hash.as_deref() else {
            return Err(Error::PasswordNotSet);
        };
        self.confirm_password(user, Some(current), "current_password", &client)
            .await?;
        self.inner
            .policy
            .check(new.expose(), Some(&user.email))
            .map_err(|err| match err {
                Error::Validation { code, message, .. } => Error::Validation {
                    field: Some("new_password".into()),
                    code,
                    message,
                },
                other => other,
            })?;
        self.inner
            .hooks
            .before(Action::ChangePassword {
                user: Box::new(user.clone()),
            })
            .await?;
        let hash = self.inner.hasher.hash(new.expose()).await?;
        let now = self.now();
        let updated = self
            .inner
            .store
            .set_password_hash(&user.id, PasswordGuard::Equals(old_hash), &hash, true, now)
            .await?
            // Changed concurrently: the current password is no longer it.
            .ok_or_else(|| wrong_password("current_password"))?;
        self.inner
            .store
            .revoke_user_sessions(&user.id, None, now)
            .await?;
        let (session, tokens) = self.open_session(&updated, provider, client).await?;
        self.deliver(
            &updated.email,
            updated.name.as_deref(),
            Message::PasswordChanged,
        );
        self.emit(Event::PasswordChanged {
            user_id: user.id.clone(),
        })
        .await;
        Ok(SignIn {
            user: updated,
            session,
            tokens,
        })
    }

    /// Gives a password to the signed-in user of `principal` when they have
    /// none (signed up by magic link, email code or OAuth). The session's
    /// sign-in must be recent (`accounts.recent_sign_in_secs`, 15 minutes by
    /// default), since this adds a credential without asking for one. The
    /// store writes it only if no password exists (compare-and-set).
    /// Sessions stay. Mails a notice. Emits `password_set`.
    ///
    /// # Errors
    ///
    /// [`Error::PasswordAlreadySet`] (409),
    /// [`Error::ReauthenticationRequired`] (403), [`Error::Validation`]
    /// (422), [`Error::Vetoed`] (403), [`Error::Unavailable`] (503).
    pub async fn set_password(&self, principal: &Principal, password: &Secret) -> Result<User> {
        let user = &principal.user;
        if user.has_password() {
            return Err(Error::PasswordAlreadySet);
        }
        self.require_recent_sign_in(principal)?;
        self.inner
            .policy
            .check(password.expose(), Some(&user.email))?;
        self.inner
            .hooks
            .before(Action::SetPassword {
                user: Box::new(user.clone()),
            })
            .await?;
        let hash = self.inner.hasher.hash(password.expose()).await?;
        let updated = self
            .inner
            .store
            .set_password_hash(&user.id, PasswordGuard::Unset, &hash, false, self.now())
            .await?
            .ok_or(Error::PasswordAlreadySet)?;
        self.deliver(
            &updated.email,
            updated.name.as_deref(),
            Message::PasswordChanged,
        );
        self.emit(Event::PasswordSet {
            user_id: user.id.clone(),
        })
        .await;
        Ok(updated)
    }
}

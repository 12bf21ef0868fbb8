//! Email verification and email change.

use serde_json::json;

use super::{
    epoch::AccountToken,
    mail::purpose::{CHANGE_EMAIL, VERIFY_EMAIL},
    AuthManager, Principal, RateRule, Reauthentication, SensitiveAction,
};
use crate::{
    email::Message,
    error::{Error, Result},
    hooks::{Action, Event},
    store::{ClientInfo, StoreError, UserPatch},
    user::{normalize_email, User, UserId},
};

impl AuthManager {
    /// Mails `user` a new verification link (the previous one stops
    /// working), within the mail limits: `client` is counted against
    /// `email_per_ip`, and over the address's `email_per_address` budget
    /// nothing new is sent. Emits `email_verification_requested`.
    ///
    /// # Errors
    ///
    /// [`Error::EmailAlreadyVerified`] (409), [`Error::RateLimited`] (429),
    /// [`Error::EmailNotConfigured`] and [`Error::Unavailable`] (503).
    pub async fn request_email_verification(&self, user: &User, client: &ClientInfo) -> Result<()> {
        if user.email_verified {
            return Err(Error::EmailAlreadyVerified);
        }
        self.require_email()?;
        self.rate_limit(RateRule::EmailPerIp, client).await?;
        self.inner
            .hooks
            .before(Action::RequestEmailVerification {
                email: user.email_normalized.clone(),
            })
            .await?;
        if !self.mail_budget(&user.email_normalized).await? {
            return Ok(());
        }
        self.send_verification(user).await
    }

    /// Mails a new verification link to the user with `email`, without a
    /// session: the way out for a user who lost the first link while
    /// `require_verified_email` refuses their sign-in. Known, unknown,
    /// verified and inactive addresses get the same answer; only an
    /// active, unverified user gets a mail. The answer comes before the
    /// user is looked up: the lookup, the address's mail budget and the
    /// mail all happen in the background, so neither the outcome nor its
    /// timing depends on the address. `client` is counted against
    /// `email_per_ip`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (422) for a malformed email,
    /// [`Error::RateLimited`] (429), [`Error::EmailNotConfigured`] and
    /// [`Error::Unavailable`] (503).
    pub async fn resend_email_verification(&self, email: &str, client: &ClientInfo) -> Result<()> {
        let normalized = normalize_email(email)?;
        self.require_email()?;
        self.rate_limit(RateRule::EmailPerIp, client).await?;
        self.inner
            .hooks
            .before(Action::RequestEmailVerification {
                email: normalized.clone(),
            })
            .await?;
        let this = self.clone();
        self.in_background(async move {
            if let Err(err) = this.resend_verification_job(&normalized).await {
                tracing::error!(error = %err, "verification mail failed");
            }
        });
        Ok(())
    }

    /// The background half of
    /// [`resend_email_verification`](Self::resend_email_verification).
    async fn resend_verification_job(&self, normalized: &str) -> Result<()> {
        if !self.mail_budget(normalized).await? {
            return Ok(());
        }
        let Some(user) = self.inner.store.find_user_by_email(normalized).await? else {
            return Ok(());
        };
        if user.email_verified || !user.is_active {
            return Ok(());
        }
        self.send_verification(&user).await
    }

    /// Issues and mails a verification link.
    pub(crate) async fn send_verification(&self, user: &User) -> Result<()> {
        let ttl = self.inner.config.email.verify_email_ttl_secs;
        let token = self
            .issue_one_time(
                VERIFY_EMAIL,
                user,
                &user.email_normalized,
                ttl,
                serde_json::Value::Null,
            )
            .await?;
        self.deliver(
            &user.email,
            user.name.as_deref(),
            Message::VerifyEmail {
                link: self.link("/auth/verify-email", &token),
                expires_in_secs: ttl,
            },
        );
        self.emit(Event::EmailVerificationRequested {
            user_id: user.id.clone(),
        })
        .await;
        Ok(())
    }

    /// Marks the email of the token's user verified. The token works once,
    /// and only while the user still has the address it was mailed to.
    /// `client` is counted against `token_per_ip`. Emits `email_verified`.
    ///
    /// # Errors
    ///
    /// [`Error::TokenGone`] (410) for an unknown, used or expired token,
    /// [`Error::Vetoed`] (403), [`Error::RateLimited`] (429),
    /// [`Error::Unavailable`] (503).
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> Result<User> {
        self.rate_limit(RateRule::TokenPerIp, client).await?;
        let (record, user) = self.peek_one_time(token, VERIFY_EMAIL).await?;
        if record.email.as_deref() != Some(user.email_normalized.as_str()) {
            return Err(Error::TokenGone);
        }
        self.inner
            .hooks
            .before(Action::VerifyEmail {
                user: Box::new(user.clone()),
            })
            .await?;
        self.consume_one_time(&record).await?;
        self.email_proven(&user, &user.email).await?;
        let user = self
            .inner
            .store
            .patch_user(&user.id, &UserPatch::new().email_verified(true), self.now())
            .await?
            .ok_or(Error::TokenGone)?;
        self.emit(Event::EmailVerified {
            user_id: user.id.clone(),
        })
        .await;
        Ok(user)
    }

    /// Starts moving the caller of `principal` to `new_email`, after the
    /// re-authentication rule ([`Reauthentication`]: the password, a code
    /// mailed to the current address, or — users without a password — a
    /// recent sign-in): mails a confirmation link to the new address and a
    /// notice to the old one. Nothing changes until
    /// [`confirm_email_change`](Self::confirm_email_change); a password
    /// reset or change, or a deactivation, meanwhile kills the link.
    /// `client` is counted against `email_per_ip` (and, for the password,
    /// like a sign-in); over the new address's `email_per_address` budget
    /// nothing is sent. Emits `email_change_requested`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (422: bad or unchanged email, missing or wrong
    /// password), [`Error::ReauthenticationRequired`] (403),
    /// [`Error::TokenGone`] (410: a wrong code), [`Error::EmailTaken`]
    /// (409), [`Error::Vetoed`] (403), [`Error::RateLimited`] (429),
    /// [`Error::EmailNotConfigured`] and
    /// [`Error::Unavailable`] (503).
    pub async fn request_email_change(
        &self,
        principal: &Principal,
        new_email: &str,
        proof: &Reauthentication,
        client: &ClientInfo,
    ) -> Result<()> {
        let user = &principal.user;
        let new_email = new_email.trim();
        let normalized = normalize_email(new_email)?;
        if normalized == user.email_normalized {
            return Err(Error::validation(
                "new_email",
                "SAME_EMAIL",
                "the new email is the current one",
            ));
        }
        self.rate_limit(RateRule::EmailPerIp, client).await?;
        let proven = self
            .reauthenticate(
                principal,
                SensitiveAction::ChangeEmail,
                proof,
                "password",
                client,
            )
            .await?;
        self.require_email()?;
        if self
            .inner
            .store
            .find_user_by_email(&normalized)
            .await?
            .is_some()
        {
            return Err(Error::EmailTaken);
        }
        self.inner
            .hooks
            .before(Action::ChangeEmail {
                user: Box::new(user.clone()),
                new_email: new_email.to_owned(),
            })
            .await?;
        // Counted per recipient like every other mail: over the budget the
        // answer is the same and nothing is sent (a mailed code stays
        // unused).
        if !self.mail_budget(&normalized).await? {
            return Ok(());
        }
        proven.commit(self).await?;
        let ttl = self.inner.config.email.change_email_ttl_secs;
        let token = self
            .issue_one_time(
                CHANGE_EMAIL,
                user,
                &normalized,
                ttl,
                json!({ "new_email": new_email, "old_email": user.email_normalized }),
            )
            .await?;
        self.deliver(
            new_email,
            user.name.as_deref(),
            Message::ConfirmEmailChange {
                link: self.link("/auth/account/confirm-email-change", &token),
                new_email: new_email.to_owned(),
                expires_in_secs: ttl,
            },
        );
        self.deliver(
            &user.email,
            user.name.as_deref(),
            Message::EmailChangeRequested {
                new_email: new_email.to_owned(),
            },
        );
        self.emit(Event::EmailChangeRequested {
            user_id: user.id.clone(),
            new_email: new_email.to_owned(),
        })
        .await;
        Ok(())
    }

    /// Confirms an email change: the user's email becomes the new, verified
    /// address (the store's unique index refuses it if it was taken
    /// meanwhile), `token_version` is bumped in the same write so every
    /// session signs in again, and the old address no longer signs in. The
    /// link is dead once the credential epoch moved (a password reset or
    /// change, a deactivation) or the account is inactive. `client` is
    /// counted against `token_per_ip`. Emits `email_changed`.
    ///
    /// # Errors
    ///
    /// [`Error::TokenGone`] (410), [`Error::EmailTaken`] (409),
    /// [`Error::RateLimited`] (429), [`Error::Unavailable`] (503).
    pub async fn confirm_email_change(&self, token: &str, client: &ClientInfo) -> Result<User> {
        self.rate_limit(RateRule::TokenPerIp, client).await?;
        // Bound to the old address and to the credential epoch: a change
        // confirmed after another change, a password reset or change, or a
        // deactivation is stale.
        let AccountToken { record, user } = self.peek_account_token(token, CHANGE_EMAIL).await?;
        let new_email = record.data["new_email"].as_str().unwrap_or_default();
        if new_email.is_empty() {
            return Err(Error::TokenGone);
        }
        let patch = UserPatch::new()
            .email(new_email)?
            .email_verified(true)
            .bump_token_version();
        self.consume_one_time(&record).await?;
        self.email_proven(&user, new_email).await?;
        let now = self.now();
        let updated = match self.inner.store.patch_user(&user.id, &patch, now).await {
            Ok(Some(updated)) => updated,
            Ok(None) => return Err(Error::TokenGone),
            Err(StoreError::Conflict(_)) => return Err(Error::EmailTaken),
            Err(err) => return Err(err.into()),
        };
        self.inner
            .store
            .revoke_user_sessions(&user.id, None, now)
            .await?;
        self.emit(Event::EmailChanged {
            user_id: user.id.clone(),
            old_email: user.email.clone(),
            new_email: updated.email.clone(),
        })
        .await;
        Ok(updated)
    }

    /// The user with `id`, for flows started by id.
    pub(crate) async fn load_user(&self, id: &UserId) -> Result<User> {
        self.inner
            .store
            .find_user(id)
            .await?
            .ok_or(Error::NotFound("user"))
    }
}

//! Deleting one's account, and the session list.

use super::{admin::guard_self_lockout, AuthManager, Principal, Reauthentication, SensitiveAction};
use crate::{
    error::{Error, Result},
    hooks::{Action, Event, UnlinkReason},
    store::{ClientInfo, LinkedAccount, Session, UserPatch},
    user::{SessionId, User, UserId},
};

impl AuthManager {
    /// Mails `user` a single-use code that confirms deleting their account
    /// (the re-authentication for users without a password);
    /// [`request_reauthentication_code`](Self::request_reauthentication_code)
    /// for [`SensitiveAction::DeleteAccount`], within its mail limits.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] (429), [`Error::EmailNotConfigured`] and
    /// [`Error::Unavailable`] (503).
    pub async fn request_account_deletion_code(
        &self,
        user: &User,
        client: &ClientInfo,
    ) -> Result<()> {
        self.request_reauthentication_code(user, SensitiveAction::DeleteAccount, client)
            .await
    }

    /// Deletes the caller's own account after re-authentication (the
    /// password, or the code mailed by
    /// [`request_account_deletion_code`](Self::request_account_deletion_code);
    /// a session alone never). A superuser cannot delete themselves (422
    /// `SELF_LOCKOUT`, as on the `/users` routes): another superuser must
    /// demote them first, so the last superuser is never lost. By default
    /// a soft delete: `is_active=false` and a `token_version` bump in one
    /// write, then every session is revoked; the record (and so the email)
    /// stays. With `accounts.hard_delete` the user and everything linked to
    /// them are removed. Emits `user_deleted`.
    ///
    /// A password guess counts like a sign-in for `client` and the account
    /// (see the limits table).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (422: missing confirmation, `WRONG_PASSWORD`,
    /// `SELF_LOCKOUT`), [`Error::TokenGone`] (410: bad code),
    /// [`Error::LastOwner`] (409: the only owner of an organization),
    /// [`Error::Vetoed`] (403), [`Error::RateLimited`] (429),
    /// [`Error::Unavailable`] (503).
    pub async fn delete_account(
        &self,
        principal: &Principal,
        proof: &Reauthentication,
        client: &ClientInfo,
    ) -> Result<()> {
        let user = &principal.user;
        let proven = self
            .reauthenticate(
                principal,
                SensitiveAction::DeleteAccount,
                proof,
                "password",
                client,
            )
            .await?;
        guard_self_lockout(user, &user.id, "password")?;
        self.guard_last_owner(&user.id).await?;
        self.check_delete_hooks(user).await?;
        proven.commit(self).await?;
        self.remove_user(user, self.inner.config.accounts.hard_delete, &user.id)
            .await
    }

    async fn check_delete_hooks(&self, user: &User) -> Result<()> {
        self.inner
            .hooks
            .before(Action::DeleteAccount {
                user: Box::new(user.clone()),
                hard: self.inner.config.accounts.hard_delete,
            })
            .await?;
        Ok(())
    }

    /// Soft- or hard-deletes `user` and emits `user_deleted`.
    pub(crate) async fn remove_user(&self, user: &User, hard: bool, by: &UserId) -> Result<()> {
        let store = &self.inner.store;
        let now = self.now();
        if hard {
            store.delete_user(&user.id).await?;
        } else {
            store
                .patch_user(
                    &user.id,
                    &UserPatch::new().is_active(false).bump_token_version(),
                    now,
                )
                .await?
                .ok_or(Error::NotFound("user"))?;
            store.revoke_user_sessions(&user.id, None, now).await?;
        }
        self.emit(Event::UserDeleted {
            user_id: user.id.clone(),
            email: user.email.clone(),
            hard,
            by: by.clone(),
        })
        .await;
        Ok(())
    }

    /// The provider identities linked to `user`, by provider id.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] (503).
    pub async fn linked_accounts(&self, user: &User) -> Result<Vec<LinkedAccount>> {
        Ok(self.inner.store.list_linked_accounts(&user.id).await?)
    }

    /// The one "never the last way in" rule: whether `user` can still sign
    /// in without the link to `except` (or, with `None`, without their
    /// passkeys): a password, another linked provider, a passkey (when
    /// `except` is a provider), or a provider that signs in by email with
    /// the user's email verified (such providers refuse an account with an
    /// unverified email, 409 `ACCOUNT_EXISTS`).
    pub(crate) async fn has_other_way_in(&self, user: &User, except: Option<&str>) -> Result<bool> {
        if user.has_password() {
            return Ok(true);
        }
        let by_email = user.email_verified
            && self
                .providers()
                .iter()
                .any(|p| p.capabilities.signs_in_by_email);
        if by_email {
            return Ok(true);
        }
        let store = &self.inner.store;
        let accounts = store.list_linked_accounts(&user.id).await?;
        if accounts.iter().any(|a| Some(a.provider.as_str()) != except) {
            return Ok(true);
        }
        Ok(except.is_some() && self.inner.webauthn.is_some() && self.has_passkeys(user).await?)
    }

    /// Unlinks `provider` from `user` (checked again after the delete, so a
    /// parallel removal cannot take the last way in), unless that would leave no way to
    /// sign in: the user keeps a password, another linked provider, or a
    /// provider that [signs in by email](crate::Capabilities::signs_in_by_email)
    /// is enabled and the user's email is verified (such providers refuse
    /// an account with an unverified email). Emits `account_unlinked`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404) when not linked, [`Error::LastSignInMethod`]
    /// (409), [`Error::Unavailable`] (503).
    pub async fn unlink_account(&self, user: &User, provider: &str) -> Result<()> {
        let accounts = self.inner.store.list_linked_accounts(&user.id).await?;
        if !accounts.iter().any(|a| a.provider == provider) {
            return Err(Error::NotFound("linked account"));
        }
        if !self.has_other_way_in(user, Some(provider)).await? {
            return Err(Error::LastSignInMethod);
        }
        self.inner
            .hooks
            .before(Action::UnlinkAccount {
                user: Box::new(user.clone()),
                provider: provider.to_owned(),
            })
            .await?;
        if !self
            .inner
            .store
            .delete_linked_account(&user.id, provider)
            .await?
        {
            return Err(Error::NotFound("linked account"));
        }
        // Checked again after the delete: a removal of the user's last
        // passkey (or another unlink) running alongside may have taken the
        // way in this unlink counted on. Then the identity comes back.
        if !self.has_other_way_in(user, Some(provider)).await? {
            if let Some(account) = accounts.iter().find(|a| a.provider == provider) {
                self.inner.store.insert_linked_account(account).await?;
            }
            return Err(Error::LastSignInMethod);
        }
        let subject = accounts
            .iter()
            .find(|a| a.provider == provider)
            .map(|a| a.subject.clone())
            .unwrap_or_default();
        self.emit(Event::AccountUnlinked {
            user_id: user.id.clone(),
            provider: provider.to_owned(),
            subject,
            reason: UnlinkReason::UserRequest,
        })
        .await;
        Ok(())
    }

    /// The caller's signed-in devices: live sessions of the current
    /// `token_version`, most recently used first.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] (503).
    pub async fn list_sessions(&self, user: &User) -> Result<Vec<Session>> {
        let mut sessions = self
            .inner
            .store
            .list_user_sessions(&user.id, self.now())
            .await?;
        sessions.retain(|s| s.token_version == user.token_version);
        Ok(sessions)
    }

    /// Ends one of the caller's sessions (its tokens stop working at once).
    /// Emits `session_revoked`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404) when the session is not the caller's or
    /// already ended; [`Error::Unavailable`] (503).
    pub async fn revoke_session(&self, user: &User, session_id: &SessionId) -> Result<()> {
        let store = &self.inner.store;
        let session = store
            .find_session(session_id)
            .await?
            .filter(|s| s.user_id == user.id && s.is_alive(self.now()))
            .ok_or(Error::NotFound("session"))?;
        self.inner
            .hooks
            .before(Action::RevokeSessions {
                user: Box::new(user.clone()),
                session_id: Some(session.id.clone()),
            })
            .await?;
        if !store.revoke_session(&session.id, self.now()).await? {
            return Err(Error::NotFound("session"));
        }
        self.emit(Event::SessionRevoked {
            user_id: user.id.clone(),
            session_id: session.id,
        })
        .await;
        Ok(())
    }

    /// Ends every session of the caller except the current one. Emits
    /// `sessions_revoked`. Returns how many ended.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] (503).
    pub async fn revoke_other_sessions(&self, principal: &Principal) -> Result<u64> {
        self.inner
            .hooks
            .before(Action::RevokeSessions {
                user: Box::new(principal.user.clone()),
                session_id: None,
            })
            .await?;
        let count = self
            .inner
            .store
            .revoke_user_sessions(&principal.user.id, Some(&principal.session.id), self.now())
            .await?;
        self.emit(Event::SessionsRevoked {
            user_id: principal.user.id.clone(),
            count,
        })
        .await;
        Ok(count)
    }
}

//! The link rule: which user a proven identity signs into, and when an
//! identity may be linked to (or create) an account. Every sign-in path
//! (password, magic link, email code, OAuth, an integrator's provider)
//! goes through [`AuthManager::resolve_identity`]; the flows in which the
//! owner proves the address (password reset, email verification, email
//! change) call [`AuthManager::email_proven`].
//!
//! | The identity… | The user it signs into |
//! |---|---|
//! | names a local user ([`Identity::local`]) | that user |
//! | is linked (provider, subject) | the linked user |
//! | has an email of an existing user, both sides verified it, and linking by email is on (or the provider [signs in by email](crate::Capabilities::signs_in_by_email)) | that user (linked, unless the provider signs in by email) |
//! | has an email of an existing user otherwise | none: 409 `ACCOUNT_EXISTS` |
//! | has an unknown email the provider verified | a new, verified user (when provider sign-up is on) |
//! | has an unknown email the provider did **not** verify | none: 403 `PROVIDER_EMAIL_UNVERIFIED`, unless `accounts.allow_unverified_provider_sign_up` (then a new unverified user, linked as unverified) |

use super::{register::validate_name, AuthManager};
use crate::{
    email::Message,
    error::{Error, Result},
    hooks::{Action, Event, UnlinkReason},
    provider::{Capabilities, Identity},
    store::{LinkedAccount, StoreError, UserPatch},
    user::{normalize_email, User},
};

impl AuthManager {
    /// Maps a proven identity to a user by the link rule (see the module
    /// docs), linking or creating as the rule says.
    pub(super) async fn resolve_identity(
        &self,
        identity: &Identity,
        capabilities: Capabilities,
    ) -> Result<User> {
        let store = &self.inner.store;
        if let Some(user) = identity.local_user() {
            return Ok(user.clone());
        }
        // An email proof is the current address: never stored as a link.
        let link = identity.link && !capabilities.signs_in_by_email;
        if link {
            if let Some(linked) = store
                .find_linked_account(&identity.provider, &identity.subject)
                .await?
            {
                return store
                    .find_user(&linked.user_id)
                    .await?
                    .ok_or(Error::InvalidCredentials);
            }
        }
        let email = identity.email.as_deref().ok_or_else(|| {
            Error::validation(
                "email",
                "EMAIL_REQUIRED",
                "the provider did not return an email",
            )
        })?;
        let accounts = &self.inner.config.accounts;
        let user = match store.find_user_by_email(&normalize_email(email)?).await? {
            Some(user) => {
                let by_email = accounts.link_verified_emails || capabilities.signs_in_by_email;
                // Both sides vouch for the address, or the identity is not
                // the owner's: someone registered it without proving it, or
                // the provider never checked it (account pre-hijacking).
                if !(by_email && identity.email_verified && user.email_verified) {
                    return Err(Error::AccountExists);
                }
                user
            }
            None => {
                if !accounts.allow_provider_sign_up {
                    return Err(Error::SignUpDisabled);
                }
                if !identity.email_verified && !accounts.allow_unverified_provider_sign_up {
                    return Err(Error::ProviderEmailUnverified);
                }
                self.create_provider_user(identity, email).await?
            }
        };
        if link {
            self.link_identity(&user, identity).await?;
        }
        Ok(user)
    }

    async fn create_provider_user(&self, identity: &Identity, email: &str) -> Result<User> {
        let mut user = User::new(email, self.now())?;
        user.name = validate_name(identity.name.clone())?;
        user.email_verified = identity.email_verified;
        self.inner
            .hooks
            .before(Action::Register {
                email: user.email.clone(),
                name: user.name.clone(),
                provider: identity.provider.clone(),
                metadata: user.metadata.clone(),
            })
            .await?;
        match self.inner.store.insert_user(&user).await {
            Ok(()) => {}
            // Created concurrently: the other request links it.
            Err(StoreError::Conflict(_)) => return Err(Error::AccountExists),
            Err(err) => return Err(err.into()),
        }
        self.emit(Event::UserRegistered {
            user: user.clone(),
            provider: identity.provider.clone(),
        })
        .await;
        Ok(user)
    }

    /// Records (provider, subject) → `user`, with whether the provider had
    /// verified the email.
    async fn link_identity(&self, user: &User, identity: &Identity) -> Result<()> {
        let link = LinkedAccount::new(
            &identity.provider,
            &identity.subject,
            user.id.clone(),
            identity.email.clone(),
            self.now(),
        )
        .with_email_verified(identity.email_verified);
        match self.inner.store.insert_linked_account(&link).await {
            Ok(()) => {
                self.emit(Event::AccountLinked {
                    user_id: user.id.clone(),
                    provider: identity.provider.clone(),
                    subject: identity.subject.clone(),
                })
                .await;
                Ok(())
            }
            Err(StoreError::Conflict(_)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// The owner of `user`'s account just proved the address `proven` (a
    /// password reset or an email verification: the current address; a
    /// confirmed email change: the new one): every identity linked from an
    /// email its provider had not verified is removed, since whoever linked
    /// it may not be the owner (account pre-hijacking), and when there was
    /// any, `token_version` moves and every session of the user ends.
    /// `proven` is mailed which ones; each emits `account_unlinked` with
    /// reason `email_proven`.
    /// Returns how many were removed.
    ///
    /// Call it once the proof is consumed and before the flow's own write:
    /// a request cut in between leaves the links removed (safe), never the
    /// flow done and the links kept.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] (503).
    pub(crate) async fn email_proven(&self, user: &User, proven: &str) -> Result<usize> {
        let removed = self
            .inner
            .store
            .delete_unverified_linked_accounts(&user.id)
            .await?;
        if removed.is_empty() {
            return Ok(0);
        }
        // Whoever signed in through those identities is signed out: the
        // credential epoch moves (an access token, or a sign-in through a
        // removed link still in flight, of the old epoch is dead) and every
        // session of the user ends (the owner signs in again).
        let now = self.now();
        self.inner
            .store
            .patch_user(&user.id, &UserPatch::new().bump_token_version(), now)
            .await?;
        self.inner
            .store
            .revoke_user_sessions(&user.id, None, now)
            .await?;
        let mut providers: Vec<String> = removed.iter().map(|l| l.provider.clone()).collect();
        providers.dedup();
        self.deliver(
            proven,
            user.name.as_deref(),
            Message::AccountsUnlinked { providers },
        );
        for link in &removed {
            self.emit(Event::AccountUnlinked {
                user_id: user.id.clone(),
                provider: link.provider.clone(),
                subject: link.subject.clone(),
                reason: UnlinkReason::EmailProven,
            })
            .await;
        }
        Ok(removed.len())
    }
}

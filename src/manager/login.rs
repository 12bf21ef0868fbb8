use super::{limits::AttemptOutcome, register::validate_name, AuthManager, RateRule, SignIn};
use crate::{
    error::{Error, Result},
    hooks::{Action, Event},
    provider::{Identity, ProviderCx, ProviderRequest},
    store::{ClientInfo, LinkedAccount, PasswordGuard, StoreError},
    user::{normalize_email, User},
};

impl AuthManager {
    /// Signs in through the provider `provider_id`: the provider proves an
    /// identity, the manager maps it to a user (see [`Identity`]), checks that
    /// the user is active (and verified, when required), asks the
    /// before-hooks, opens a session and emits `login_succeeded`. Every
    /// failure emits `login_failed`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown provider (404),
    /// [`Error::InvalidCredentials`] (401), [`Error::InactiveUser`] and
    /// [`Error::EmailNotVerified`] (403, only after the credentials were
    /// proven), [`Error::Vetoed`] (403), [`Error::Validation`] (422),
    /// [`Error::Unavailable`] (503).
    pub async fn sign_in(&self, provider_id: &str, request: ProviderRequest) -> Result<SignIn> {
        let provider = self
            .inner
            .providers
            .get(provider_id)
            .ok_or(Error::NotFound("provider"))?;
        let client = request.client.clone();
        // The limits (see `limits.rs`): a named email is validated first (it
        // becomes a counter key), then the client's budget, then the
        // account's failure slot is reserved before anything is checked.
        let email_hint = match request.email_hint().as_deref().map(normalize_email) {
            Some(Err(err)) => {
                self.emit(Event::LoginFailed {
                    provider: provider_id.to_owned(),
                    email: None,
                    code: err.code(),
                    client,
                })
                .await;
                return Err(err);
            }
            hint => hint.transpose()?,
        };
        self.rate_limit(RateRule::SignInPerIp, &client).await?;
        let slot = match &email_hint {
            Some(email) => self.reserve_attempt(email).await?,
            None => None,
        };
        let result = async {
            let identity = provider
                .authenticate(&ProviderCx::new(self), request)
                .await?;
            let user = self.resolve_identity(&identity).await?;
            self.admit(user, provider_id, client.clone()).await
        }
        .await;
        self.settle_attempt(slot, AttemptOutcome::of(&result))
            .await?;
        if let Err(err) = &result {
            self.emit(Event::LoginFailed {
                provider: provider_id.to_owned(),
                email: email_hint,
                code: err.code(),
                client,
            })
            .await;
        }
        result
    }

    /// Checks that `user` may sign in, asks the hooks, opens the session.
    async fn admit(&self, user: User, provider: &str, client: ClientInfo) -> Result<SignIn> {
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        if self.inner.config.accounts.require_verified_email && !user.email_verified {
            return Err(Error::EmailNotVerified);
        }
        self.inner
            .hooks
            .before(Action::Login {
                user: Box::new(user.clone()),
                provider: provider.to_owned(),
                client: client.clone(),
            })
            .await?;
        let (session, tokens) = self.open_session(&user, provider, client.clone()).await?;
        self.emit(Event::LoginSucceeded {
            user: user.clone(),
            provider: provider.to_owned(),
            session_id: session.id.clone(),
            client,
        })
        .await;
        Ok(SignIn {
            user,
            session,
            tokens,
        })
    }

    /// Maps an identity to a user: the local user it names; else the user
    /// linked to (provider, subject); else, when both the provider and the
    /// local user vouch for the email, the user with that email (linking
    /// it); else a new user (when provider sign-up is allowed).
    async fn resolve_identity(&self, identity: &Identity) -> Result<User> {
        let store = &self.inner.store;
        if let Some(user) = identity
            .user
            .as_deref()
            .filter(|u| identity.user_id.as_ref() == Some(&u.id))
        {
            return Ok(user.clone());
        }
        if let Some(user_id) = &identity.user_id {
            return store
                .find_user(user_id)
                .await?
                .ok_or(Error::InvalidCredentials);
        }
        let linked = if identity.link {
            store
                .find_linked_account(&identity.provider, &identity.subject)
                .await?
        } else {
            None
        };
        if let Some(link) = linked {
            return store
                .find_user(&link.user_id)
                .await?
                .ok_or(Error::InvalidCredentials);
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
                if !(accounts.link_verified_emails
                    && identity.email_verified
                    && user.email_verified)
                {
                    return Err(Error::AccountExists);
                }
                user
            }
            None => {
                if !accounts.allow_provider_sign_up {
                    return Err(Error::SignUpDisabled);
                }
                self.create_provider_user(identity, email).await?
            }
        };
        if identity.link {
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

    async fn link_identity(&self, user: &User, identity: &Identity) -> Result<()> {
        let link = LinkedAccount::new(
            &identity.provider,
            &identity.subject,
            user.id.clone(),
            identity.email.clone(),
            self.now(),
        );
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

    /// Verifies a password for a (possibly unknown) user in constant time
    /// and upgrades legacy hashes. See [`ProviderCx::verify_password`].
    pub(crate) async fn verify_user_password(
        &self,
        user: Option<&User>,
        password: &str,
    ) -> Result<bool> {
        let hash = user.and_then(|u| u.password_hash.as_deref());
        let verification = self.inner.hasher.verify(password, hash).await?;
        if let (Some(user), Some(old), true) = (user, hash, verification.needs_rehash) {
            let new = self.inner.hasher.hash(password).await?;
            // Compare-and-set: never overwrite a password changed meanwhile.
            if self
                .inner
                .store
                .set_password_hash(
                    &user.id,
                    PasswordGuard::Equals(old),
                    &new,
                    false,
                    self.now(),
                )
                .await?
                .is_some()
            {
                self.emit(Event::PasswordRehashed {
                    user_id: user.id.clone(),
                })
                .await;
            }
        }
        Ok(verification.valid)
    }
}

use super::{limits::AttemptOutcome, AuthManager, RateRule, SignIn};
use crate::{
    error::{Error, Result},
    hooks::{Action, Event},
    provider::{Proof, Provider, ProviderCx, ProviderRequest},
    store::{ClientInfo, PasswordGuard},
    user::{normalize_email, User},
};

/// A JSON request for a registered provider, as a [`Proof`].
struct JsonProof<'a> {
    provider: &'a dyn Provider,
    request: ProviderRequest,
}

#[async_trait::async_trait]
impl Proof for JsonProof<'_> {
    fn email_hint(&self) -> Option<String> {
        self.request.email_hint()
    }

    async fn prove(&self, cx: &ProviderCx<'_>) -> Result<crate::provider::Identity> {
        self.provider.authenticate(cx, self.request.clone()).await
    }
}

impl AuthManager {
    /// Signs in through the provider `provider_id` with a JSON request:
    /// the provider parses it and proves an identity, then the one sign-in
    /// pipeline of [`sign_in_with`](Self::sign_in_with) runs.
    ///
    /// # Errors
    ///
    /// As [`sign_in_with`](Self::sign_in_with).
    pub async fn sign_in(&self, provider_id: &str, request: ProviderRequest) -> Result<SignIn> {
        let provider = self
            .inner
            .providers
            .get(provider_id)
            .ok_or(Error::NotFound("provider"))?
            .clone();
        let client = request.client.clone();
        let proof = JsonProof {
            provider: provider.as_ref(),
            request,
        };
        self.sign_in_with(provider_id, client, &proof).await
    }

    /// The one sign-in pipeline, for a typed `proof` of the registered
    /// provider `provider_id` (a provider crate's route parsed its input
    /// and hands the proof over: no JSON round trip). Counts the client's
    /// sign-ins, applies the per-address delay after failures, runs the
    /// proof, stamps `provider_id` on the identity (a provider cannot claim
    /// another's id), maps it to a user by the link rule (see
    /// `manager/link.rs`), checks that the user is active (and verified,
    /// when required), asks the before-hooks, opens a session and emits
    /// `login_succeeded`. Every failure emits `login_failed`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown provider (404),
    /// [`Error::InvalidCredentials`] (401), [`Error::InactiveUser`],
    /// [`Error::EmailNotVerified`] (403, only after the credentials were
    /// proven), [`Error::ProviderEmailUnverified`], [`Error::SignUpDisabled`]
    /// and [`Error::Vetoed`] (403), [`Error::AccountExists`] (409),
    /// [`Error::Validation`] (422), [`Error::Unavailable`] (503).
    pub async fn sign_in_with(
        &self,
        provider_id: &str,
        client: ClientInfo,
        proof: &dyn Proof,
    ) -> Result<SignIn> {
        let capabilities = self
            .inner
            .providers
            .info(provider_id)
            .ok_or(Error::NotFound("provider"))?
            .capabilities;
        // The limits (see `limits.rs`): a named email is validated first (it
        // becomes a counter key), then the client's budget, then the
        // account's failure slot is reserved before anything is checked.
        let email_hint = match proof.email_hint().as_deref().map(normalize_email) {
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
            let mut identity = proof.prove(&ProviderCx::new(self)).await?;
            provider_id.clone_into(&mut identity.provider);
            let user = self.resolve_identity(&identity, capabilities).await?;
            self.admit(user, provider_id, client.clone()).await
        }
        .await;
        self.settle_attempt(slot, AttemptOutcome::of(&result))
            .await?;
        // A challenge is not a failure: `mfa_challenged` was emitted.
        if let Some(err) = result
            .as_ref()
            .err()
            .filter(|e| !matches!(e, Error::MfaRequired(_) | Error::MfaSetupRequired(_)))
        {
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
        self.may_sign_in(&user, provider, &client).await?;
        // A second factor on: no tokens yet, a challenge (`manager/mfa.rs`).
        if let Some(challenge) = self.mfa_challenge(&user, provider, &client).await? {
            return Err(Error::MfaRequired(Box::new(challenge)));
        }
        // None, and config requires one: enrol first.
        if let Some(challenge) = self.mfa_setup_challenge(&user, provider, &client).await? {
            return Err(Error::MfaSetupRequired(Box::new(challenge)));
        }
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

    /// Whether `user` may sign in at all: active, verified when config
    /// says so, and the `login` before-hooks agree.
    async fn may_sign_in(&self, user: &User, provider: &str, client: &ClientInfo) -> Result<()> {
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
        Ok(())
    }

    /// Admits `user` whose sign-in proved every factor at once (a passkey
    /// with user verification): the checks and hooks of
    /// [`admit`](Self::admit), no MFA challenge, a session proven by `amr`.
    pub(crate) async fn admit_proven(
        &self,
        user: User,
        provider: &str,
        client: ClientInfo,
        amr: Vec<String>,
    ) -> Result<SignIn> {
        self.may_sign_in(&user, provider, &client).await?;
        let (session, tokens) = self
            .open_session_with(&user, provider, client.clone(), amr)
            .await?;
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

//! The second step of a sign-in: the MFA challenge.
//!
//! The one sign-in pipeline (`manager/login.rs`) ends, for a user with a
//! second factor on (TOTP or a passkey), in [`Error::MfaRequired`] instead
//! of tokens — whichever provider
//! proved the first factor (password, `/auth/token`, magic link, email
//! code, OAuth, an integrator's own). The challenge is a one-time token:
//!
//! - single use, expiring after `mfa.challenge_ttl_secs` (300 s); a new
//!   sign-in leaves other pending challenges alone (two devices);
//! - bound to the user's credential epoch (a password reset or change, a
//!   deactivation kills it), to the account being active, and to the client
//!   (IP and user agent) that proved the first factor;
//! - wrong answers are counted on the challenge (at most
//!   `mfa.challenge_max_attempts`, then it dies) *and* on the account's
//!   failure counter, the one sign-in uses, reserved before the check
//!   (`manager/limits.rs`), and counted even with rate limits off: new
//!   challenges do not buy new guesses;
//! - a TOTP code is accepted at ±1 time step and each step once per user
//!   (atomic in the store), a recovery code once (atomic), with a notice
//!   mail when one is used; the codes answer for whichever factor is on
//!   (a passkey-only user's too), and `recovery_code` is offered while
//!   any are left.
//!
//! Passing it opens the session with the first factor's provider. A
//! signed-in user with TOTP renews an old session with a fresh code
//! ([`AuthManager::step_up`]): the re-authentication rule's recent sign-in
//! through the second factor alone.

use serde_json::json;

use super::{
    factors::{canonical_recovery_code, invalid_code, RecoveryCodes, TotpSetup},
    limits::AttemptOutcome,
    mail::purpose,
    AuthManager, Principal, RateRule, SignIn,
};
use crate::{
    config::MfaRequirement,
    email::Message,
    error::{Error, MfaChallenge, Result},
    hooks::Event,
    store::{ClientInfo, Factor, FactorKind, OneTimeToken},
    token::{OpaqueToken, Secret, TokenHash},
    user::User,
};

/// How long a sign-in's setup challenge (403 `MFA_SETUP_REQUIRED`) lives:
/// long enough to install an authenticator app.
pub const SETUP_TTL_SECS: u64 = 15 * 60;

/// An answer to an MFA challenge.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MfaAnswer {
    /// A code from the authenticator app.
    Totp(Secret),
    /// One of the recovery codes.
    RecoveryCode(Secret),
    /// A passkey: the ceremony begun with this challenge
    /// ([`AuthManager::begin_passkey_sign_in`]) and the authenticator's
    /// answer (`PublicKeyCredential` JSON).
    Passkey {
        /// The ceremony id.
        ceremony_id: Secret,
        /// The assertion.
        credential: serde_json::Value,
    },
}

impl MfaAnswer {
    fn method(&self) -> &'static str {
        match self {
            MfaAnswer::Totp(_) => "totp",
            MfaAnswer::RecoveryCode(_) => "recovery_code",
            MfaAnswer::Passkey { .. } => "passkey",
        }
    }

    /// The RFC 8176 method a right answer adds to the session's `amr`.
    fn amr(&self) -> &'static str {
        match self {
            MfaAnswer::Totp(_) | MfaAnswer::RecoveryCode(_) => "otp",
            MfaAnswer::Passkey { .. } => "hwk",
        }
    }
}

impl AuthManager {
    /// The challenge that stands between a proven first factor and a
    /// session, or `None` when `user` has no second factor on.
    pub(crate) async fn mfa_challenge(
        &self,
        user: &User,
        provider: &str,
        client: &ClientInfo,
    ) -> Result<Option<MfaChallenge>> {
        // Both in one read (one query on MongoStore). Passkeys are read
        // even without a relying party configured, so a user who has some
        // is refused (fail closed) rather than let in on the first factor.
        let (factors, passkeys) = self.inner.store.list_second_factors(&user.id).await?;
        let passkeys = !passkeys.is_empty();
        let totp = factors
            .iter()
            .find(|f| f.kind == FactorKind::Totp && f.is_confirmed());
        if totp.is_none() && !passkeys {
            return Ok(None);
        }
        let mut methods = Vec::new();
        if totp.is_some_and(|totp| self.totp_opens(totp)) {
            methods.push("totp".to_owned());
        }
        if passkeys && self.inner.webauthn.is_some() {
            methods.push("passkey".to_owned());
        }
        if factors
            .iter()
            .any(|f| f.kind == FactorKind::RecoveryCodes && !f.codes.is_empty())
        {
            methods.push("recovery_code".to_owned());
        }
        if methods.is_empty() {
            // A factor is on but nothing can check it (the sealing keys or
            // the relying party were removed from the config) and no
            // recovery code is left: fail closed.
            return Err(Error::MfaNotConfigured);
        }
        let ttl = self.inner.config.mfa.challenge_ttl_secs;
        let token = self
            .store_challenge(purpose::MFA_CHALLENGE, user, provider, client, ttl)
            .await?;
        self.emit(Event::MfaChallenged {
            user_id: user.id.clone(),
            provider: provider.to_owned(),
            client: client.clone(),
        })
        .await;
        Ok(Some(MfaChallenge {
            token: token.expose().to_owned(),
            methods,
            expires_in: ttl,
        }))
    }

    /// Answers the MFA challenge `mfa_token` of a sign-in: with a right
    /// TOTP code or recovery code, the session opens (provider: the first
    /// factor's) and `login_succeeded` is emitted. Counted against
    /// `sign_in_per_ip`; every answer reserves one of the account's
    /// failure slots first (429 while its delay runs). Emits
    /// `mfa_challenge_passed` / `mfa_challenge_failed`, and
    /// `recovery_code_used` with a notice mail.
    ///
    /// # Errors
    ///
    /// [`Error::TokenGone`] (410) for an unknown, used, expired or
    /// exhausted challenge, one from another client, or one whose user's
    /// credentials changed since; 422 `INVALID_MFA_CODE`;
    /// [`Error::RateLimited`] (429); [`Error::MfaNotConfigured`] (503) for
    /// a TOTP answer without sealing keys; [`Error::Unavailable`] (503).
    pub async fn verify_mfa(
        &self,
        mfa_token: &str,
        answer: MfaAnswer,
        client: ClientInfo,
    ) -> Result<SignIn> {
        self.rate_limit(RateRule::SignInPerIp, &client).await?;
        let (record, user, provider) = self
            .live_challenge(mfa_token, purpose::MFA_CHALLENGE, &client)
            .await?;
        let max = self.inner.config.mfa.challenge_max_attempts;
        let attempt = self.count_challenge_attempt(&record, max).await?;
        let slot = self
            .reserve_second_factor_attempt(&user.email_normalized)
            .await?;
        let result = self.check_answer(&user, &record, &answer).await;
        self.settle_attempt(Some(slot), AttemptOutcome::of(&result))
            .await?;
        let remaining = match result {
            Ok(remaining) => remaining,
            Err(err) => {
                if attempt >= max {
                    self.consume_one_time(&record).await.ok();
                }
                self.emit(Event::MfaChallengeFailed {
                    user_id: user.id.clone(),
                    method: answer.method().to_owned(),
                    client,
                })
                .await;
                return Err(err);
            }
        };
        self.consume_one_time(&record).await?;
        let amr = vec![
            self.first_factor_amr(&provider),
            answer.amr().to_owned(),
            "mfa".to_owned(),
        ];
        let (session, tokens) = self
            .open_session_with(&user, &provider, client.clone(), amr)
            .await?;
        self.emit(Event::MfaChallengePassed {
            user_id: user.id.clone(),
            method: answer.method().to_owned(),
        })
        .await;
        if let Some(remaining) = remaining {
            self.deliver(
                &user.email,
                user.name.as_deref(),
                Message::RecoveryCodeUsed { remaining },
            );
            self.emit(Event::RecoveryCodeUsed {
                user_id: user.id.clone(),
                remaining,
            })
            .await;
        }
        self.emit(Event::LoginSucceeded {
            user: user.clone(),
            provider,
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

    /// The live challenge `raw` of `purpose` presented by `client`: bound
    /// to the owner's epoch, an active owner, and the client that proved
    /// the first factor; with its owner and the first factor's provider.
    pub(crate) async fn live_challenge(
        &self,
        raw: &str,
        purpose: &str,
        client: &ClientInfo,
    ) -> Result<(OneTimeToken, User, String)> {
        let challenge = self.peek_account_token(raw, purpose).await?;
        let data = &challenge.record.data;
        let same_client = data["ip"].as_str() == client.ip.as_deref()
            && data["user_agent"].as_str() == client.user_agent.as_deref();
        if !same_client {
            return Err(Error::TokenGone);
        }
        let provider = data["provider"].as_str().unwrap_or_default().to_owned();
        Ok((challenge.record, challenge.user, provider))
    }

    /// Counts one answer on `record` (atomic); past `max` the challenge
    /// dies.
    async fn count_challenge_attempt(&self, record: &OneTimeToken, max: u32) -> Result<u32> {
        let attempt = self
            .inner
            .store
            .count_one_time_token_attempt(&record.hash, &record.purpose, self.now())
            .await?
            .ok_or(Error::TokenGone)?;
        if attempt > max {
            self.consume_one_time(record).await.ok();
            return Err(Error::TokenGone);
        }
        Ok(attempt)
    }

    /// Stores a challenge of `purpose` for `user`, bound to `client`, and
    /// returns its raw token. Not `issue_one_time`: a new sign-in leaves
    /// the user's other pending challenges alone (two devices).
    async fn store_challenge(
        &self,
        purpose: &str,
        user: &User,
        provider: &str,
        client: &ClientInfo,
        ttl_secs: u64,
    ) -> Result<OpaqueToken> {
        let token = OpaqueToken::generate();
        let record = OneTimeToken::new(
            token.hash(),
            purpose,
            self.now(),
            chrono::Duration::seconds(i64::try_from(ttl_secs).unwrap_or(300)),
        )
        .for_user(user.id.clone())
        .for_email(user.email_normalized.clone())
        .at_epoch(user.token_version)
        .with_data(json!({
            "provider": provider,
            "ip": client.ip,
            "user_agent": client.user_agent,
        }));
        self.inner.store.insert_one_time_token(&record).await?;
        Ok(token)
    }

    /// Whether config requires a second factor of `user`
    /// (`mfa.required`).
    fn mfa_required_of(&self, user: &User) -> bool {
        match self.inner.config.mfa.required {
            MfaRequirement::Everyone => true,
            MfaRequirement::Superusers => user.is_superuser,
            _ => false,
        }
    }

    /// For a user without a second factor whom config requires to have
    /// one: the setup challenge a sign-in answers instead of tokens.
    pub(crate) async fn mfa_setup_challenge(
        &self,
        user: &User,
        provider: &str,
        client: &ClientInfo,
    ) -> Result<Option<MfaChallenge>> {
        if !self.mfa_required_of(user) {
            return Ok(None);
        }
        let token = self
            .store_challenge(purpose::MFA_SETUP, user, provider, client, SETUP_TTL_SECS)
            .await?;
        self.emit(Event::MfaChallenged {
            user_id: user.id.clone(),
            provider: provider.to_owned(),
            client: client.clone(),
        })
        .await;
        Ok(Some(MfaChallenge {
            token: token.expose().to_owned(),
            methods: vec!["totp_setup".to_owned()],
            expires_in: SETUP_TTL_SECS,
        }))
    }

    /// Starts the TOTP setup that a sign-in's setup challenge
    /// (403 `MFA_SETUP_REQUIRED`) asks for: as
    /// [`begin_totp_setup`](Self::begin_totp_setup), vouched for by the
    /// challenge instead of a session.
    ///
    /// # Errors
    ///
    /// [`Error::TokenGone`] (410) for a dead challenge or one from another
    /// client; otherwise as [`begin_totp_setup`](Self::begin_totp_setup).
    pub async fn begin_required_totp_setup(
        &self,
        mfa_token: &str,
        client: &ClientInfo,
    ) -> Result<TotpSetup> {
        self.sealer()?;
        let (_, user, _) = self
            .live_challenge(mfa_token, purpose::MFA_SETUP, client)
            .await?;
        self.start_totp_setup(&user).await
    }

    /// Confirms the setup a sign-in's setup challenge asked for: TOTP is
    /// on, the challenge is used, and the sign-in finishes with a session
    /// (`amr` with `otp` and `mfa`) and the ten recovery codes. Wrong codes
    /// count on the challenge (`mfa.challenge_max_attempts`).
    ///
    /// # Errors
    ///
    /// [`Error::TokenGone`] (410) for a dead challenge; otherwise as
    /// [`confirm_totp`](Self::confirm_totp).
    pub async fn confirm_required_totp_setup(
        &self,
        mfa_token: &str,
        code: &Secret,
        client: ClientInfo,
    ) -> Result<(RecoveryCodes, SignIn)> {
        self.sealer()?;
        let (record, user, provider) = self
            .live_challenge(mfa_token, purpose::MFA_SETUP, &client)
            .await?;
        let max = self.inner.config.mfa.challenge_max_attempts;
        let attempt = self.count_challenge_attempt(&record, max).await?;
        let codes = match self.finish_totp_setup(&user, code, &client).await {
            Ok(codes) => codes,
            Err(err) => {
                if attempt >= max {
                    self.consume_one_time(&record).await.ok();
                }
                return Err(err);
            }
        };
        self.consume_one_time(&record).await?;
        let amr = vec![
            self.first_factor_amr(&provider),
            "otp".to_owned(),
            "mfa".to_owned(),
        ];
        let (session, tokens) = self
            .open_session_with(&user, &provider, client.clone(), amr)
            .await?;
        self.emit(Event::LoginSucceeded {
            user: user.clone(),
            provider,
            session_id: session.id.clone(),
            client,
        })
        .await;
        Ok((
            codes,
            SignIn {
                user,
                session,
                tokens,
            },
        ))
    }

    /// Whether a configured key opens the secret of this TOTP factor.
    fn totp_opens(&self, factor: &Factor) -> bool {
        match (&self.inner.sealer, &factor.secret) {
            (Some(sealer), Some(sealed)) => sealer.has_key_of(sealed),
            _ => false,
        }
    }

    /// Checks a TOTP `code` of `user` and spends its time step (a step at
    /// or before the last accepted one is a replay). 410 without confirmed
    /// TOTP, 503 when no configured key opens the secret.
    async fn check_totp_code(&self, user: &User, code: &Secret) -> Result<()> {
        let store = &self.inner.store;
        let factor = store
            .list_factors(&user.id)
            .await?
            .into_iter()
            .find(|f| f.kind == FactorKind::Totp && f.is_confirmed())
            .ok_or(Error::TokenGone)?;
        if !self.totp_opens(&factor) {
            return Err(Error::MfaNotConfigured);
        }
        let sealed = factor.secret.ok_or(Error::TokenGone)?;
        let totp = self.open_totp(user, &sealed)?;
        let step = totp
            .matching_step(code.expose(), self.unix_now(), 1)
            .ok_or_else(invalid_code)?;
        if !store.use_totp_step(&user.id, step, self.now()).await? {
            return Err(invalid_code());
        }
        Ok(())
    }

    /// Step-up: a fresh TOTP code from the caller renews the session's
    /// proof without a new first factor. The session is replaced by a new
    /// one (signed in now, so it counts as a recent sign-in; `amr` the old
    /// session's first factor, `otp`, `mfa`); the old one and its refresh
    /// tokens end. The code counts like a second-factor answer: against
    /// `sign_in_per_ip` and the account's delay (also with rate limits
    /// off). A passkey user steps up by signing in with the passkey.
    /// Emits `mfa_challenge_passed` or `mfa_challenge_failed`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404) without TOTP on, 422 `INVALID_MFA_CODE`,
    /// [`Error::RateLimited`] (429), [`Error::MfaNotConfigured`] and
    /// [`Error::Unavailable`] (503).
    pub async fn step_up(
        &self,
        principal: &Principal,
        code: &Secret,
        client: ClientInfo,
    ) -> Result<SignIn> {
        self.rate_limit(RateRule::SignInPerIp, &client).await?;
        let user = &principal.user;
        let has_totp = self
            .inner
            .store
            .list_factors(&user.id)
            .await?
            .iter()
            .any(|f| f.kind == FactorKind::Totp && f.is_confirmed());
        if !has_totp {
            return Err(Error::NotFound("TOTP"));
        }
        let slot = self
            .reserve_second_factor_attempt(&user.email_normalized)
            .await?;
        let result = self.check_totp_code(user, code).await;
        self.settle_attempt(Some(slot), AttemptOutcome::of(&result))
            .await?;
        if let Err(err) = result {
            self.emit(Event::MfaChallengeFailed {
                user_id: user.id.clone(),
                method: "totp".to_owned(),
                client,
            })
            .await;
            return Err(err);
        }
        let old = &principal.session;
        let mut amr: Vec<String> = old
            .amr
            .iter()
            .filter(|m| !matches!(m.as_str(), "otp" | "mfa"))
            .cloned()
            .collect();
        if amr.is_empty() {
            amr.push(self.first_factor_amr(&old.provider));
        }
        amr.extend(["otp".to_owned(), "mfa".to_owned()]);
        let (session, tokens) = self
            .open_session_with(user, &old.provider, client, amr)
            .await?;
        self.inner.store.revoke_session(&old.id, self.now()).await?;
        self.emit(Event::MfaChallengePassed {
            user_id: user.id.clone(),
            method: "totp".to_owned(),
        })
        .await;
        Ok(SignIn {
            user: user.clone(),
            session,
            tokens,
        })
    }

    /// Checks `answer` for `user` and spends it (a TOTP step, a recovery
    /// code: atomic single use). `Some(left)` for a recovery code.
    async fn check_answer(
        &self,
        user: &User,
        challenge: &OneTimeToken,
        answer: &MfaAnswer,
    ) -> Result<Option<usize>> {
        let store = &self.inner.store;
        let now = self.now();
        match answer {
            MfaAnswer::Totp(code) => {
                self.check_totp_code(user, code).await?;
                Ok(None)
            }
            MfaAnswer::Passkey {
                ceremony_id,
                credential,
            } => {
                self.check_passkey_answer(user, challenge, ceremony_id.expose(), credential)
                    .await?;
                Ok(None)
            }
            MfaAnswer::RecoveryCode(code) => {
                let hash = TokenHash::of(&canonical_recovery_code(code.expose()));
                match store.use_recovery_code(&user.id, &hash, now).await? {
                    Some(left) => Ok(Some(left)),
                    None => Err(invalid_code()),
                }
            }
        }
    }
}

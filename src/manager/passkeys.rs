//! Passkeys (WebAuthn, `webauthn-rs`): registration, management, sign-in
//! with a passkey alone, and a passkey answering a sign-in's challenge.
//!
//! | Flow | Needs | Then |
//! |---|---|---|
//! | [`begin_passkey_registration`](AuthManager::begin_passkey_registration) | a recent sign-in; with a second factor on, a session that passed it; the `enroll_factor` hooks | creation options and a ceremony bound to this session |
//! | [`finish_passkey_registration`](AuthManager::finish_passkey_registration) | the same session, the ceremony (single use, `mfa.passkeys.ceremony_ttl_secs`), an attestation `webauthn-rs` accepts with user verification | the passkey is registered; every sign-in with a first factor now asks for a second one; ten recovery codes, shown once, when the account had none |
//! | [`remove_passkey`](AuthManager::remove_passkey) | as registration, and never the last way in | gone; the last second factor takes the recovery codes with it |
//! | [`begin_passkey_sign_in`](AuthManager::begin_passkey_sign_in) / [`finish_passkey_sign_in`](AuthManager::finish_passkey_sign_in) | a discoverable passkey with user verification; the signature, the origin, the RP id, and a signature counter greater than the last one | a session (`amr` `hwk`, `user`, `mfa`): the passkey is both factors |
//! | the MFA challenge ([`MfaAnswer::Passkey`]) | a ceremony begun with the challenge, an assertion from one of the user's passkeys | the session of the first factor, `amr` + `hwk`, `mfa` |
//!
//! A ceremony is a one-time token holding `webauthn-rs`'s state: it never
//! leaves the server, and it is consumed before the answer is checked, so
//! an assertion works once. Every change mails the owner a notice.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::json;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

use super::{mail::purpose, AuthManager, Principal, RateRule, RecoveryCodes, SignIn};
use crate::{
    config::AuthConfig,
    email::Message,
    error::{Error, Result},
    hooks::{Action, Event},
    store::{ClientInfo, OneTimeToken, PasskeyRecord, StoreError},
    token::{OpaqueToken, TokenHash},
    user::{User, UserId},
};

/// The longest passkey name, in characters.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;

/// A started ceremony: the options for `navigator.credentials.create` /
/// `.get` (as `webauthn-rs` serialises them: `{"publicKey": …}`) and the
/// id to send back with the authenticator's answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PasskeyCeremony {
    /// Sent back with the answer; single use.
    pub ceremony_id: String,
    /// The options for the browser's WebAuthn call.
    pub options: serde_json::Value,
    /// Seconds the ceremony stays open.
    pub expires_in: u64,
}

/// The relying party built from `mfa.passkeys`; `None` when `rp_id` is
/// not set.
///
/// # Errors
///
/// [`Error::Config`] for an origin that is not a URL or not under
/// `rp_id`.
pub(crate) fn relying_party(config: &AuthConfig) -> Result<Option<Webauthn>> {
    let passkeys = &config.mfa.passkeys;
    let Some(rp_id) = passkeys.rp_id.as_deref() else {
        return Ok(None);
    };
    let mut origins = passkeys.origins.clone();
    if origins.is_empty() {
        origins.extend(config.public_url.clone());
    }
    let parse = |origin: &str| {
        url::Url::parse(origin).map_err(|err| {
            Error::Config(format!("mfa.passkeys.origins: `{origin}` is not a URL: {err}").into())
        })
    };
    let Some(first) = origins.first() else {
        return Err(Error::Config(
            "mfa.passkeys.rp_id needs mfa.passkeys.origins (or public_url)".into(),
        ));
    };
    let invalid =
        |err| Error::Config(format!("mfa.passkeys: {err} (is every origin under rp_id?)").into());
    let first = parse(first)?;
    let rp_name = passkeys
        .rp_name
        .as_deref()
        .unwrap_or(&config.email.app_name);
    let mut builder = WebauthnBuilder::new(rp_id, &first)
        .map_err(invalid)?
        .rp_name(rp_name)
        .timeout(std::time::Duration::from_secs(passkeys.ceremony_ttl_secs));
    for origin in &origins[1..] {
        builder = builder.append_allowed_origin(&parse(origin)?);
    }
    builder.build().map(Some).map_err(invalid)
}

/// The WebAuthn user handle of `id`: the id itself when it is a UUID (as
/// ids the core generates are), else a UUID v5 of it.
fn user_handle(id: &UserId) -> Uuid {
    Uuid::parse_str(id.as_str())
        .unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_OID, id.as_str().as_bytes()))
}

/// 422 `INVALID_PASSKEY` on `credential`.
fn invalid_passkey() -> Error {
    Error::validation(
        "credential",
        "INVALID_PASSKEY",
        "the passkey's answer is not valid",
    )
}

/// The stored passkey of `record` as `webauthn-rs` needs it.
fn passkey_of(record: &PasskeyRecord) -> Result<Passkey> {
    serde_json::from_value(record.credential.clone())
        .map_err(|err| Error::Internal(format!("a stored passkey does not parse: {err}").into()))
}

/// A name as given, trimmed: 1 to 64 characters, no control characters.
fn passkey_name(name: Option<&str>) -> Result<String> {
    let name = name.map(str::trim).unwrap_or("Passkey");
    if name.is_empty()
        || name.chars().count() > MAX_PASSKEY_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Error::validation(
            "name",
            "INVALID_NAME",
            "a passkey name has 1 to 64 characters, none of them control characters",
        ));
    }
    Ok(name.to_owned())
}

impl AuthManager {
    fn webauthn(&self) -> Result<&Webauthn> {
        self.inner
            .webauthn
            .as_ref()
            .ok_or(Error::PasskeysNotConfigured)
    }

    fn ceremony_ttl(&self) -> u64 {
        self.inner.config.mfa.passkeys.ceremony_ttl_secs
    }

    /// Stores a ceremony of `purpose` holding `state` and `data`.
    async fn store_ceremony(
        &self,
        purpose: &str,
        user: Option<&User>,
        state: serde_json::Value,
        mut data: serde_json::Value,
    ) -> Result<OpaqueToken> {
        let token = OpaqueToken::generate();
        data["state"] = state;
        let ttl = i64::try_from(self.ceremony_ttl()).unwrap_or(300);
        let mut record = OneTimeToken::new(
            token.hash(),
            purpose,
            self.now(),
            chrono::Duration::seconds(ttl),
        )
        .with_data(data);
        if let Some(user) = user {
            record = record
                .for_user(user.id.clone())
                .at_epoch(user.token_version);
        }
        self.inner.store.insert_one_time_token(&record).await?;
        Ok(token)
    }

    /// Consumes the ceremony `raw` of `purpose` (atomic single use).
    async fn take_ceremony(&self, raw: &str, purpose: &str) -> Result<OneTimeToken> {
        self.inner
            .store
            .consume_one_time_token(&TokenHash::of(raw), purpose, self.now())
            .await?
            .ok_or(Error::TokenGone)
    }

    /// Whether `user` has registered a passkey.
    pub(crate) async fn has_passkeys(&self, user: &User) -> Result<bool> {
        Ok(!self.inner.store.list_passkeys(&user.id).await?.is_empty())
    }

    /// Starts registering a passkey for the caller: creation options (a
    /// discoverable credential with user verification, the caller's other
    /// passkeys excluded) and a ceremony bound to this session. Asks the
    /// before-hooks (`enroll_factor`, factor `passkey`).
    ///
    /// The account's address must be verified: a passkey is a way in that
    /// a password reset keeps, so one added to an account whose address
    /// nobody proved (an attacker registering the victim's address first)
    /// would survive the owner's recovery of it and sign the attacker in.
    ///
    /// # Errors
    ///
    /// [`Error::EmailNotVerified`], [`Error::ReauthenticationRequired`] and
    /// [`Error::SecondFactorRequired`] (403), [`Error::Vetoed`] (403),
    /// [`Error::PasskeysNotConfigured`] and [`Error::Unavailable`] (503).
    pub async fn begin_passkey_registration(
        &self,
        principal: &Principal,
    ) -> Result<PasskeyCeremony> {
        let webauthn = self.webauthn()?;
        if !principal.user.email_verified {
            return Err(Error::EmailNotVerified);
        }
        self.require_recent_sign_in(principal)?;
        self.require_factor_proof(principal).await?;
        let user = &principal.user;
        self.inner
            .hooks
            .before(Action::EnrollFactor {
                user: Box::new(user.clone()),
                factor: "passkey".to_owned(),
            })
            .await?;
        let exclude = self
            .inner
            .store
            .list_passkeys(&user.id)
            .await?
            .iter()
            .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.id).ok())
            .collect::<Vec<_>>();
        let display = user.name.as_deref().unwrap_or(&user.email);
        let (options, state) = webauthn
            .start_passkey_registration(user_handle(&user.id), &user.email, display, Some(exclude))
            .map_err(|err| Error::Internal(format!("passkey registration: {err}").into()))?;
        let mut options =
            serde_json::to_value(options).map_err(|err| Error::Internal(Box::new(err)))?;
        // A passkey signs in without an email typed: the credential must
        // be discoverable (resident).
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = json!("required");
        selection["requireResidentKey"] = json!(true);
        let state = serde_json::to_value(&state).map_err(|err| Error::Internal(Box::new(err)))?;
        let token = self
            .store_ceremony(
                purpose::PASSKEY_REGISTER,
                Some(user),
                state,
                json!({ "session_id": principal.session.id.as_str() }),
            )
            .await?;
        Ok(PasskeyCeremony {
            ceremony_id: token.expose().to_owned(),
            options,
            expires_in: self.ceremony_ttl(),
        })
    }

    /// Finishes a registration with the authenticator's answer
    /// (`credential`, the `PublicKeyCredential` of
    /// `navigator.credentials.create` as JSON). The ceremony is used up
    /// whatever the outcome. Emits `passkey_registered`; mails a notice.
    ///
    /// With the passkey, the answer holds ten new recovery codes (shown
    /// once) when the account has no set yet — its first passkey, TOTP
    /// off: losing the authenticator must not lock the owner out of the
    /// challenge every password sign-in now ends in. An account with a set
    /// (TOTP's, an earlier passkey's) keeps it and gets `None`; of parallel
    /// registrations one gets the codes. A store failure after the passkey
    /// is stored is logged and answers `None`: the passkey is registered,
    /// and the owner can ask for codes
    /// ([`regenerate_recovery_codes`](Self::regenerate_recovery_codes)).
    ///
    /// # Errors
    ///
    /// [`Error::EmailNotVerified`] and [`Error::ReauthenticationRequired`]
    /// (403), [`Error::TokenGone`] (410) for an unknown, used or expired ceremony or one begun by
    /// another session, [`Error::PasskeyAlreadyRegistered`] (409), 422
    /// `INVALID_PASSKEY` (an answer `webauthn-rs` refuses: another
    /// challenge, origin or RP id, no user verification …) or
    /// `INVALID_NAME`, [`Error::PasskeysNotConfigured`] and
    /// [`Error::Unavailable`] (503).
    pub async fn finish_passkey_registration(
        &self,
        principal: &Principal,
        ceremony_id: &str,
        name: Option<&str>,
        credential: serde_json::Value,
    ) -> Result<(PasskeyRecord, Option<RecoveryCodes>)> {
        let webauthn = self.webauthn()?;
        if !principal.user.email_verified {
            return Err(Error::EmailNotVerified);
        }
        self.require_recent_sign_in(principal)?;
        let name = passkey_name(name)?;
        let user = &principal.user;
        let record = self
            .take_ceremony(ceremony_id, purpose::PASSKEY_REGISTER)
            .await?;
        let ours = record.user_id.as_ref() == Some(&user.id)
            && record.epoch == Some(user.token_version)
            && record.data["session_id"].as_str() == Some(principal.session.id.as_str());
        if !ours {
            return Err(Error::TokenGone);
        }
        let state: PasskeyRegistration = serde_json::from_value(record.data["state"].clone())
            .map_err(|err| Error::Internal(Box::new(err)))?;
        // The browser reports whether the key is discoverable (`credProps`):
        // one that is not cannot sign in alone, so it is not a passkey.
        if credential.pointer("/extensions/credProps/rk") == Some(&json!(false)) {
            return Err(invalid_passkey());
        }
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(credential).map_err(|_| invalid_passkey())?;
        let passkey = webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|err| {
                tracing::info!(error = %err, "a passkey registration was refused");
                invalid_passkey()
            })?;
        let stored = PasskeyRecord::new(
            URL_SAFE_NO_PAD.encode(passkey.cred_id()),
            user.id.clone(),
            name,
            serde_json::to_value(&passkey).map_err(|err| Error::Internal(Box::new(err)))?,
            0,
            self.now(),
        );
        match self.inner.store.insert_passkey(&stored).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::PasskeyAlreadyRegistered),
            Err(err) => return Err(err.into()),
        }
        let codes = self
            .issue_first_recovery_codes(user)
            .await
            .unwrap_or_else(|err| {
                tracing::error!(error = %err, user = %user.id, "a passkey was registered without its recovery codes");
                None
            });
        self.deliver(
            &user.email,
            user.name.as_deref(),
            Message::PasskeyChanged {
                passkey: stored.name.clone(),
                added: true,
            },
        );
        self.emit(Event::PasskeyRegistered {
            user_id: user.id.clone(),
            passkey_id: stored.id.clone(),
            name: stored.name.clone(),
        })
        .await;
        Ok((stored, codes))
    }

    /// The caller's passkeys, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] (503).
    pub async fn list_passkeys(&self, user: &User) -> Result<Vec<PasskeyRecord>> {
        Ok(self.inner.store.list_passkeys(&user.id).await?)
    }

    /// Renames the caller's passkey `id`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), 422 `INVALID_NAME`,
    /// [`Error::Unavailable`] (503).
    pub async fn rename_passkey(&self, user: &User, id: &str, name: &str) -> Result<PasskeyRecord> {
        let name = passkey_name(Some(name))?;
        let store = &self.inner.store;
        if !store.rename_passkey(&user.id, id, &name).await? {
            return Err(Error::NotFound("passkey"));
        }
        store
            .find_passkey(id)
            .await?
            .filter(|p| p.user_id == user.id)
            .ok_or(Error::NotFound("passkey"))
    }

    /// Removes the caller's passkey `id`, unless it is the last way in
    /// (checked before and after the delete, so parallel removals cannot
    /// remove every way in). The last second factor (no other passkey,
    /// TOTP off) takes the recovery codes with it. Emits
    /// `passkey_removed`; mails a notice.
    ///
    /// # Errors
    ///
    /// [`Error::ReauthenticationRequired`] and
    /// [`Error::SecondFactorRequired`] (403), [`Error::NotFound`] (404),
    /// [`Error::LastSignInMethod`] (409), [`Error::Unavailable`] (503).
    pub async fn remove_passkey(&self, principal: &Principal, id: &str) -> Result<()> {
        self.require_recent_sign_in(principal)?;
        self.require_factor_proof(principal).await?;
        let user = &principal.user;
        let store = &self.inner.store;
        let passkeys = store.list_passkeys(&user.id).await?;
        let Some(passkey) = passkeys.iter().find(|p| p.id == id) else {
            return Err(Error::NotFound("passkey"));
        };
        let others = passkeys.len() > 1;
        if !others && !self.has_other_way_in(user, None).await? {
            return Err(Error::LastSignInMethod);
        }
        if !store.delete_passkey(&user.id, id).await? {
            return Err(Error::NotFound("passkey"));
        }
        // Checked again after the delete: a removal of the other passkey
        // running alongside may have taken the way in this one counted on.
        // Then this one comes back and the removal is refused.
        if store.list_passkeys(&user.id).await?.is_empty()
            && !self.has_other_way_in(user, None).await?
        {
            store.insert_passkey(passkey).await?;
            return Err(Error::LastSignInMethod);
        }
        // After the delete, as the check above: a TOTP removal alongside
        // sees this passkey gone.
        self.drop_orphan_recovery_codes(user).await?;
        self.deliver(
            &user.email,
            user.name.as_deref(),
            Message::PasskeyChanged {
                passkey: passkey.name.clone(),
                added: false,
            },
        );
        self.emit(Event::PasskeyRemoved {
            user_id: user.id.clone(),
            passkey_id: id.to_owned(),
        })
        .await;
        Ok(())
    }

    /// Starts a passkey ceremony: without `mfa_token`, a sign-in with a
    /// discoverable passkey (no email typed; the authenticator names the
    /// account); with one, a passkey answering that sign-in's challenge
    /// (the user's passkeys allowed). Counted against `sign_in_per_ip`.
    ///
    /// # Errors
    ///
    /// [`Error::TokenGone`] (410) for a dead challenge,
    /// [`Error::NotFound`] (404) when the challenge's user has no passkey,
    /// [`Error::RateLimited`] (429), [`Error::PasskeysNotConfigured`] and
    /// [`Error::Unavailable`] (503).
    pub async fn begin_passkey_sign_in(
        &self,
        mfa_token: Option<&str>,
        client: &ClientInfo,
    ) -> Result<PasskeyCeremony> {
        let webauthn = self.webauthn()?;
        self.rate_limit(RateRule::SignInPerIp, client).await?;
        let internal = |err: webauthn_rs::prelude::WebauthnError| {
            Error::Internal(format!("passkey sign-in: {err}").into())
        };
        let token = match mfa_token {
            None => {
                let (mut options, state) = webauthn
                    .start_discoverable_authentication()
                    .map_err(internal)?;
                // A button, not the autofill prompt: the page asks.
                options.mediation = None;
                let state =
                    serde_json::to_value(&state).map_err(|err| Error::Internal(Box::new(err)))?;
                let data = json!({ "ip": client.ip, "user_agent": client.user_agent });
                let token = self
                    .store_ceremony(purpose::PASSKEY_SIGN_IN, None, state, data)
                    .await?;
                (token, options)
            }
            Some(mfa_token) => {
                let (challenge, user, _) = self
                    .live_challenge(mfa_token, purpose::MFA_CHALLENGE, client)
                    .await?;
                // A record that does not parse (a custom store's) is left
                // out, logged: the user's other passkeys still answer.
                let passkeys = self
                    .inner
                    .store
                    .list_passkeys(&user.id)
                    .await?
                    .iter()
                    .filter_map(|record| {
                        passkey_of(record)
                            .inspect_err(|err| tracing::error!(passkey = %record.id, error = %err, "a stored passkey is unusable"))
                            .ok()
                    })
                    .collect::<Vec<_>>();
                if passkeys.is_empty() {
                    return Err(Error::NotFound("passkey"));
                }
                let (options, state) = webauthn
                    .start_passkey_authentication(&passkeys)
                    .map_err(internal)?;
                let state =
                    serde_json::to_value(&state).map_err(|err| Error::Internal(Box::new(err)))?;
                let data = json!({ "challenge": challenge.hash.as_str() });
                let token = self
                    .store_ceremony(purpose::PASSKEY_MFA, Some(&user), state, data)
                    .await?;
                (token, options)
            }
        };
        let (token, options) = token;
        Ok(PasskeyCeremony {
            ceremony_id: token.expose().to_owned(),
            options: serde_json::to_value(options).map_err(|err| Error::Internal(Box::new(err)))?,
            expires_in: self.ceremony_ttl(),
        })
    }

    /// Finishes a sign-in with a discoverable passkey: the ceremony (single
    /// use, from the client that began it), the credential the
    /// authenticator names, its signature over the challenge with user
    /// verification, and a signature counter greater than the last one (a
    /// cloned authenticator is refused). The session's `amr` is `hwk`,
    /// `user`, `mfa`: no other factor is asked. Emits `login_succeeded`,
    /// or `login_failed` for any refusal after the rate limit.
    ///
    /// # Errors
    ///
    /// [`Error::InactiveUser`] and [`Error::EmailNotVerified`] (403) as any
    /// sign-in, [`Error::Vetoed`] (403), [`Error::TokenGone`] (410), 422
    /// `INVALID_PASSKEY`, [`Error::RateLimited`] (429),
    /// [`Error::PasskeysNotConfigured`] and [`Error::Unavailable`] (503).
    pub async fn finish_passkey_sign_in(
        &self,
        ceremony_id: &str,
        credential: serde_json::Value,
        client: ClientInfo,
    ) -> Result<SignIn> {
        let webauthn = self.webauthn()?;
        self.rate_limit(RateRule::SignInPerIp, &client).await?;
        let result = self
            .passkey_sign_in(webauthn, ceremony_id, credential, client.clone())
            .await;
        if let Err(err) = &result {
            self.emit(Event::LoginFailed {
                provider: "passkey".to_owned(),
                email: None,
                code: err.code(),
                client,
            })
            .await;
        }
        result
    }

    /// [`finish_passkey_sign_in`](Self::finish_passkey_sign_in) after the
    /// limit, before the failure event.
    async fn passkey_sign_in(
        &self,
        webauthn: &Webauthn,
        ceremony_id: &str,
        credential: serde_json::Value,
        client: ClientInfo,
    ) -> Result<SignIn> {
        let record = self
            .take_ceremony(ceremony_id, purpose::PASSKEY_SIGN_IN)
            .await?;
        let same_client = record.data["ip"].as_str() == client.ip.as_deref()
            && record.data["user_agent"].as_str() == client.user_agent.as_deref();
        if !same_client {
            return Err(Error::TokenGone);
        }
        let state: DiscoverableAuthentication =
            serde_json::from_value(record.data["state"].clone())
                .map_err(|err| Error::Internal(Box::new(err)))?;
        let credential: PublicKeyCredential =
            serde_json::from_value(credential).map_err(|_| invalid_passkey())?;
        let user = self
            .check_discoverable(webauthn, &credential, state)
            .await?;
        self.admit_proven(
            user,
            "passkey",
            client,
            vec!["hwk".to_owned(), "user".to_owned(), "mfa".to_owned()],
        )
        .await
    }

    /// The owner of a discoverable passkey's valid assertion; its use is
    /// recorded (counter compare-and-set).
    async fn check_discoverable(
        &self,
        webauthn: &Webauthn,
        credential: &PublicKeyCredential,
        state: DiscoverableAuthentication,
    ) -> Result<User> {
        let (handle, credential_id) = webauthn
            .identify_discoverable_authentication(credential)
            .map_err(|_| invalid_passkey())?;
        let store = &self.inner.store;
        let record = store
            .find_passkey(&URL_SAFE_NO_PAD.encode(credential_id))
            .await?
            .ok_or_else(invalid_passkey)?;
        // The authenticator's user handle must name the credential's owner.
        if user_handle(&record.user_id) != handle {
            return Err(invalid_passkey());
        }
        let passkey = passkey_of(&record)?;
        let result = webauthn
            .finish_discoverable_authentication_v2(credential, state, &passkey)
            .map_err(|err| {
                tracing::warn!(error = %err, passkey = %record.id, "a passkey assertion was refused");
                invalid_passkey()
            })?;
        self.record_passkey_use(&record, passkey, &result).await?;
        store
            .find_user(&record.user_id)
            .await?
            .ok_or_else(invalid_passkey)
    }

    /// Stores the counter of an accepted assertion, if the stored one is
    /// still the one it was checked against (else a parallel use of a
    /// cloned authenticator won: refused).
    async fn record_passkey_use(
        &self,
        record: &PasskeyRecord,
        mut passkey: Passkey,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<()> {
        // An authenticator that counts must count up: a counter at or
        // below the stored one is a clone (or a replayed signature).
        let counter = result.counter();
        if counter != 0 && counter <= record.counter {
            tracing::warn!(passkey = %record.id, counter, stored = record.counter, "a passkey's signature counter went back: refused as a possible clone");
            return Err(invalid_passkey());
        }
        passkey.update_credential(result);
        let credential =
            serde_json::to_value(&passkey).map_err(|err| Error::Internal(Box::new(err)))?;
        let counter = counter.max(record.counter);
        if !self
            .inner
            .store
            .use_passkey(&record.id, record.counter, &credential, counter, self.now())
            .await?
        {
            return Err(invalid_passkey());
        }
        Ok(())
    }

    /// Checks a passkey answer to the MFA challenge `challenge` of `user`:
    /// the ceremony begun with that challenge (used up here), an assertion
    /// of one of the user's passkeys.
    pub(crate) async fn check_passkey_answer(
        &self,
        user: &User,
        challenge: &OneTimeToken,
        ceremony_id: &str,
        credential: &serde_json::Value,
    ) -> Result<()> {
        let webauthn = self.webauthn()?;
        let record = self
            .take_ceremony(ceremony_id, purpose::PASSKEY_MFA)
            .await?;
        let ours = record.user_id.as_ref() == Some(&user.id)
            && record.data["challenge"].as_str() == Some(challenge.hash.as_str());
        if !ours {
            return Err(Error::TokenGone);
        }
        let state: PasskeyAuthentication = serde_json::from_value(record.data["state"].clone())
            .map_err(|err| Error::Internal(Box::new(err)))?;
        let credential: PublicKeyCredential =
            serde_json::from_value(credential.clone()).map_err(|_| invalid_passkey())?;
        let result = webauthn
            .finish_passkey_authentication(&credential, &state)
            .map_err(|err| {
                tracing::warn!(error = %err, "a passkey second factor was refused");
                invalid_passkey()
            })?;
        let stored = self
            .inner
            .store
            .find_passkey(&URL_SAFE_NO_PAD.encode(result.cred_id()))
            .await?
            .filter(|p| p.user_id == user.id)
            .ok_or_else(invalid_passkey)?;
        let passkey = passkey_of(&stored)?;
        self.record_passkey_use(&stored, passkey, &result).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_handles_are_the_uuid_or_a_stable_v5() {
        let id = UserId::generate();
        assert_eq!(user_handle(&id).to_string(), id.as_str());
        let custom = UserId::new("user-42");
        assert_eq!(user_handle(&custom), user_handle(&UserId::new("user-42")));
        assert_ne!(user_handle(&custom), user_handle(&UserId::new("user-43")));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(passkey_name(None).unwrap(), "Passkey");
        assert_eq!(passkey_name(Some("  Laptop ")).unwrap(), "Laptop");
        assert!(passkey_name(Some("   ")).is_err());
        assert!(passkey_name(Some(&"x".repeat(65))).is_err());
        assert!(passkey_name(Some("a\u{0}b")).is_err());
    }
}

//! Enrolling second factors: TOTP setup and confirmation, recovery codes,
//! removal, and what a user has enrolled.
//!
//! | Flow | Needs | Then |
//! |---|---|---|
//! | [`begin_totp_setup`](AuthManager::begin_totp_setup) | a recent sign-in; the `enroll_factor` hooks | a pending TOTP factor, its secret sealed ([`crate::factor::Sealer`]); a new setup replaces a pending one |
//! | [`confirm_totp`](AuthManager::confirm_totp) | a recent sign-in and a right code of the pending secret | the factor is on; ten recovery codes, shown once |
//! | [`regenerate_recovery_codes`](AuthManager::regenerate_recovery_codes) | a recent sign-in, a second factor on (TOTP or a passkey) | a new set; the old set dies in the same write |
//! | [`remove_totp`](AuthManager::remove_totp) | a recent sign-in | TOTP is gone; the recovery codes too unless a passkey is left |
//!
//! Recovery codes belong to the account's second factors, not to one of
//! them: TOTP's confirmation answers a new set, the first passkey of an
//! account without a set gets one (`manager/passkeys.rs`), and the set
//! dies only with the last second factor (checked after each removal's
//! delete).
//! Every change mails the owner a notice. Sign-in with a factor on is
//! `manager/mfa.rs`.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::Rng;

use super::{AuthManager, Principal, RateRule};
use crate::{
    email::Message,
    error::{Error, Result},
    factor::{Sealed, Sealer, Totp},
    hooks::{Action, Event},
    store::{ClientInfo, Factor, FactorKind, StoreError},
    token::{Secret, TokenHash},
    user::User,
};

/// How many recovery codes a set holds.
pub const RECOVERY_CODES: usize = 10;

/// Characters of a recovery code (base32, no padding: 80 bits).
const RECOVERY_CODE_CHARS: usize = 16;

/// The alphabet of recovery codes: RFC 4648 base32, what users can read
/// aloud and type without confusing `0`/`O` or `1`/`l`.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A started TOTP setup: what the user's authenticator app needs. Shown
/// once; its `Debug` never prints the secret.
#[derive(Clone)]
#[non_exhaustive]
pub struct TotpSetup {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://totp/…` URI, for a QR code.
    pub uri: String,
}

impl fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpSetup").finish_non_exhaustive()
    }
}

/// A fresh set of recovery codes, shown once (the store keeps their
/// SHA-256 only); its `Debug` prints how many, never the codes.
#[derive(Clone)]
pub struct RecoveryCodes(pub Vec<String>);

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} codes)", self.0.len())
    }
}

/// What a user has enrolled (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FactorStatus {
    /// TOTP is on: every sign-in asks for a second factor.
    pub totp: bool,
    /// A TOTP setup is started and not confirmed yet.
    pub totp_pending: bool,
    /// When TOTP was confirmed.
    pub totp_enrolled_at: Option<DateTime<Utc>>,
    /// The last sign-in with a TOTP code.
    pub totp_last_used_at: Option<DateTime<Utc>>,
    /// Unused recovery codes.
    pub recovery_codes_left: usize,
}

/// What sealed secrets are bound to: the factor and its owner, so a sealed
/// secret copied onto another user's record does not open.
pub(crate) fn seal_context(user: &User) -> Vec<u8> {
    format!("totp:{}", user.id.as_str()).into_bytes()
}

/// A recovery code as typed, in its canonical form: upper case, without
/// spaces or dashes.
pub(crate) fn canonical_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A new set of recovery codes and their hashes.
fn new_recovery_codes() -> (RecoveryCodes, Vec<TokenHash>) {
    let mut rng = rand::rngs::OsRng;
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            (0..RECOVERY_CODE_CHARS)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect()
        })
        .collect();
    let hashes = codes.iter().map(|c| TokenHash::of(c)).collect();
    (RecoveryCodes(codes), hashes)
}

/// 422 `INVALID_MFA_CODE` on `code`.
pub(crate) fn invalid_code() -> Error {
    Error::validation("code", "INVALID_MFA_CODE", "the code is not right")
}

impl AuthManager {
    /// The sealer, or 503 `MFA_NOT_CONFIGURED`.
    pub(crate) fn sealer(&self) -> Result<&Sealer> {
        self.inner.sealer.as_ref().ok_or(Error::MfaNotConfigured)
    }

    /// The TOTP generator of `user` over `secret`.
    pub(crate) fn totp(&self, user: &User, secret: Vec<u8>) -> Result<Totp> {
        let config = &self.inner.config;
        let issuer = config
            .mfa
            .issuer
            .as_deref()
            .unwrap_or(&config.email.app_name);
        Totp::new(secret, issuer, &user.email)
    }

    /// Opens the sealed TOTP secret of `user`.
    ///
    /// # Errors
    ///
    /// [`Error::MfaNotConfigured`] (503) when no configured key opens it:
    /// its key was removed, or its id now names other material. That is
    /// the operator's to fix, so it is logged, not blamed on the user.
    pub(crate) fn open_totp(&self, user: &User, sealed: &Sealed) -> Result<Totp> {
        let secret = self
            .sealer()?
            .open(sealed, &seal_context(user))
            .map_err(|err| {
                tracing::error!(
                    key_id = %sealed.key_id,
                    error = %err,
                    "a TOTP secret does not open: was its sealing key changed?"
                );
                Error::MfaNotConfigured
            })?;
        self.totp(user, secret)
    }

    /// The current Unix time, in seconds, from the injected clock.
    pub(crate) fn unix_now(&self) -> u64 {
        u64::try_from(self.now().timestamp()).unwrap_or(0)
    }

    /// The factor-management rule: a caller with TOTP or a passkey manages factors
    /// only from a session whose sign-in passed the second factor (a
    /// password alone — e.g. the session a password change opens — does
    /// not remove TOTP or mint recovery codes).
    ///
    /// # Errors
    ///
    /// [`Error::SecondFactorRequired`] (403), [`Error::Unavailable`] (503).
    pub(crate) async fn require_factor_proof(&self, principal: &Principal) -> Result<()> {
        if principal.session.has_second_factor() {
            return Ok(());
        }
        if self.has_second_factor(&principal.user).await? {
            return Err(Error::SecondFactorRequired);
        }
        Ok(())
    }

    /// Whether `user` has a second factor on: confirmed TOTP or a passkey
    /// (one read of both). What recovery codes belong to.
    pub(crate) async fn has_second_factor(&self, user: &User) -> Result<bool> {
        let (factors, passkeys) = self.inner.store.list_second_factors(&user.id).await?;
        Ok(!passkeys.is_empty()
            || factors
                .iter()
                .any(|f| f.kind == FactorKind::Totp && f.is_confirmed()))
    }

    /// Deletes the recovery codes of `user` when no second factor is left
    /// to back them. Called after a factor's delete (never before), so of
    /// parallel removals of the last two factors the later one sees both
    /// gone and the set dies with them. Returns whether it deleted a set.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] (503).
    pub(crate) async fn drop_orphan_recovery_codes(&self, user: &User) -> Result<bool> {
        if self.has_second_factor(user).await? {
            return Ok(false);
        }
        Ok(self
            .inner
            .store
            .delete_factor(&user.id, FactorKind::RecoveryCodes)
            .await?)
    }

    /// The first set of recovery codes of `user`, who just enrolled a
    /// second factor: ten new codes when the account has no set (an atomic
    /// insert, so of parallel enrolments one answers the codes), `None`
    /// when it has one (TOTP's, or an earlier passkey's; empty or not).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] (503).
    pub(crate) async fn issue_first_recovery_codes(
        &self,
        user: &User,
    ) -> Result<Option<RecoveryCodes>> {
        let (codes, hashes) = new_recovery_codes();
        let set = Factor::recovery_codes(user.id.clone(), hashes, self.now());
        match self.inner.store.insert_recovery_codes(&set).await {
            Ok(()) => Ok(Some(codes)),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// What the caller has enrolled.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] (503).
    pub async fn factor_status(&self, principal: &Principal) -> Result<FactorStatus> {
        let factors = self.inner.store.list_factors(&principal.user.id).await?;
        let totp = factors.iter().find(|f| f.kind == FactorKind::Totp);
        Ok(FactorStatus {
            totp: totp.is_some_and(Factor::is_confirmed),
            totp_pending: totp.is_some_and(|f| !f.is_confirmed()),
            totp_enrolled_at: totp.and_then(|f| f.confirmed_at),
            totp_last_used_at: totp
                .filter(|f| f.is_confirmed())
                .and_then(|f| f.last_used_at),
            recovery_codes_left: factors
                .iter()
                .find(|f| f.kind == FactorKind::RecoveryCodes)
                .map_or(0, |f| f.codes.len()),
        })
    }

    /// Starts a TOTP enrolment: a new secret, sealed and stored as pending
    /// (replacing a pending one), answered once for the user's app. TOTP
    /// is not on until [`confirm_totp`](Self::confirm_totp). Asks the
    /// before-hooks (`enroll_factor`).
    ///
    /// # Errors
    ///
    /// [`Error::EmailNotVerified`] (403) until the address is verified,
    /// [`Error::ReauthenticationRequired`] (403) for a sign-in that is not
    /// recent, [`Error::SecondFactorRequired`] (403) when a passkey is on
    /// and this session did not pass it, [`Error::Vetoed`] (403),
    /// [`Error::FactorAlreadyEnrolled`] (409) when TOTP is on,
    /// [`Error::MfaNotConfigured`] and [`Error::Unavailable`] (503).
    pub async fn begin_totp_setup(&self, principal: &Principal) -> Result<TotpSetup> {
        self.sealer()?;
        self.require_recent_sign_in(principal)?;
        // With a passkey on, adding TOTP is factor management too: its
        // confirmation replaces the recovery codes.
        self.require_factor_proof(principal).await?;
        self.start_totp_setup(&principal.user).await
    }

    /// A TOTP setup for `user`, whoever vouched for them (a recent
    /// session, or a sign-in's setup challenge).
    ///
    /// The address must be verified, as for a passkey: a second factor
    /// survives a password reset, so one enrolled on an address nobody
    /// proved (an attacker registering the victim's address first) would
    /// lock the owner out of the account they recover by mail.
    pub(crate) async fn start_totp_setup(&self, user: &User) -> Result<TotpSetup> {
        let sealer = self.sealer()?;
        if !user.email_verified {
            return Err(Error::EmailNotVerified);
        }
        self.inner
            .hooks
            .before(Action::EnrollFactor {
                user: Box::new(user.clone()),
                factor: FactorKind::Totp.as_str().to_owned(),
            })
            .await?;
        let secret = Totp::generate_secret();
        let totp = self.totp(user, secret.clone())?;
        let sealed = sealer.seal(&secret, &seal_context(user))?;
        let pending = Factor::pending_totp(user.id.clone(), sealed, self.now());
        match self.inner.store.put_pending_factor(&pending).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::FactorAlreadyEnrolled),
            Err(err) => return Err(err.into()),
        }
        Ok(TotpSetup {
            secret: totp.secret_base32(),
            uri: totp.uri(),
        })
    }

    /// Confirms the pending TOTP enrolment with a code from the app (±1
    /// time step): TOTP is on from now, every sign-in asks for it, and the
    /// answer is ten new recovery codes, shown once (they replace a set an
    /// earlier passkey brought: one set per account). Counted against
    /// `sign_in_per_ip`. Emits `factor_enrolled`; mails a notice.
    ///
    /// # Errors
    ///
    /// [`Error::ReauthenticationRequired`] (403), [`Error::NotFound`]
    /// (404) without a pending setup, [`Error::FactorAlreadyEnrolled`]
    /// (409), [`Error::TokenGone`] (410) when another setup replaced this
    /// one meanwhile, 422 `INVALID_MFA_CODE`, [`Error::RateLimited`]
    /// (429), [`Error::MfaNotConfigured`] and [`Error::Unavailable`] (503).
    pub async fn confirm_totp(
        &self,
        principal: &Principal,
        code: &Secret,
        client: &ClientInfo,
    ) -> Result<RecoveryCodes> {
        self.sealer()?;
        self.require_recent_sign_in(principal)?;
        self.require_factor_proof(principal).await?;
        self.finish_totp_setup(&principal.user, code, client).await
    }

    /// Confirms `user`'s pending TOTP setup with `code` (see
    /// [`confirm_totp`](Self::confirm_totp)).
    pub(crate) async fn finish_totp_setup(
        &self,
        user: &User,
        code: &Secret,
        client: &ClientInfo,
    ) -> Result<RecoveryCodes> {
        self.sealer()?;
        self.rate_limit(RateRule::SignInPerIp, client).await?;
        let factors = self.inner.store.list_factors(&user.id).await?;
        let pending = match factors.into_iter().find(|f| f.kind == FactorKind::Totp) {
            Some(factor) if factor.is_confirmed() => return Err(Error::FactorAlreadyEnrolled),
            Some(factor) => factor,
            None => return Err(Error::NotFound("pending TOTP setup")),
        };
        let sealed = pending
            .secret
            .ok_or(Error::NotFound("pending TOTP setup"))?;
        let totp = self.open_totp(user, &sealed)?;
        let step = totp
            .matching_step(code.expose(), self.unix_now(), 1)
            .ok_or_else(invalid_code)?;
        let now = self.now();
        if !self
            .inner
            .store
            .confirm_factor(&user.id, FactorKind::Totp, &sealed, step, now)
            .await?
        {
            return Err(Error::TokenGone);
        }
        let (codes, hashes) = new_recovery_codes();
        self.inner
            .store
            .put_recovery_codes(&Factor::recovery_codes(user.id.clone(), hashes, now))
            .await?;
        self.deliver(
            &user.email,
            user.name.as_deref(),
            Message::SecondFactorChanged { enrolled: true },
        );
        self.emit(Event::FactorEnrolled {
            user_id: user.id.clone(),
            factor: FactorKind::Totp.as_str().to_owned(),
        })
        .await;
        Ok(codes)
    }

    /// A new set of ten recovery codes, shown once; the old set dies in the
    /// same write. Needs a second factor on: TOTP or a passkey. Emits
    /// `recovery_codes_regenerated`.
    ///
    /// # Errors
    ///
    /// [`Error::ReauthenticationRequired`] and
    /// [`Error::SecondFactorRequired`] (403), [`Error::NotFound`] (404)
    /// without TOTP or a passkey, [`Error::Unavailable`] (503).
    pub async fn regenerate_recovery_codes(&self, principal: &Principal) -> Result<RecoveryCodes> {
        self.require_recent_sign_in(principal)?;
        self.require_factor_proof(principal).await?;
        let user = &principal.user;
        if !self.has_second_factor(user).await? {
            return Err(Error::NotFound("second factor"));
        }
        let (codes, hashes) = new_recovery_codes();
        self.inner
            .store
            .put_recovery_codes(&Factor::recovery_codes(user.id.clone(), hashes, self.now()))
            .await?;
        self.deliver(
            &user.email,
            user.name.as_deref(),
            Message::RecoveryCodesRegenerated,
        );
        self.emit(Event::RecoveryCodesRegenerated {
            user_id: user.id.clone(),
        })
        .await;
        Ok(codes)
    }

    /// Turns TOTP off: the factor (pending or confirmed) is deleted, and
    /// so are the recovery codes unless a passkey is left to back them
    /// (then sign-in still asks for the passkey or a code; else the first
    /// factor only). Emits `factor_removed` and mails a notice when a
    /// confirmed factor went.
    ///
    /// # Errors
    ///
    /// [`Error::ReauthenticationRequired`] (403), [`Error::NotFound`]
    /// (404) when there is nothing to remove, [`Error::Unavailable`] (503).
    pub async fn remove_totp(&self, principal: &Principal) -> Result<()> {
        self.require_recent_sign_in(principal)?;
        self.require_factor_proof(principal).await?;
        let user = &principal.user;
        let was_on = self.factor_status(principal).await?.totp;
        let removed = self
            .inner
            .store
            .delete_factor(&user.id, FactorKind::Totp)
            .await?;
        // After the delete: a passkey removed alongside sees TOTP gone.
        self.drop_orphan_recovery_codes(user).await?;
        if !removed {
            return Err(Error::NotFound("second factor"));
        }
        if was_on {
            self.deliver(
                &user.email,
                user.name.as_deref(),
                Message::SecondFactorChanged { enrolled: false },
            );
            self.emit(Event::FactorRemoved {
                user_id: user.id.clone(),
                factor: FactorKind::Totp.as_str().to_owned(),
            })
            .await;
        }
        Ok(())
    }
}

impl AuthManager {
    /// A superuser turns off every second factor of user `id` (a lost
    /// phone and lost recovery codes): TOTP, the recovery codes and the
    /// passkeys are deleted, the user is mailed a notice, and their sessions stay. The
    /// superuser's own sign-in must be recent: a stolen admin token alone
    /// does not strip anyone's second factor. Emits `factors_reset`.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403) for a non-superuser,
    /// [`Error::ReauthenticationRequired`] (403), [`Error::NotFound`] (404)
    /// for an unknown user or one without factors, [`Error::Unavailable`]
    /// (503).
    pub async fn admin_reset_factors(&self, actor: &Principal, id: &crate::UserId) -> Result<()> {
        super::require_superuser(&actor.user)?;
        self.require_recent_sign_in(actor)?;
        self.require_factor_proof(actor).await?;
        let user = self
            .inner
            .store
            .find_user(id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let removed = self.inner.store.delete_factors(&user.id).await?
            + self.inner.store.delete_passkeys(&user.id).await?;
        if removed == 0 {
            return Err(Error::NotFound("second factor"));
        }
        self.deliver(
            &user.email,
            user.name.as_deref(),
            Message::SecondFactorChanged { enrolled: false },
        );
        self.emit(Event::FactorsReset {
            user_id: user.id.clone(),
            by: actor.user.id.clone(),
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_distinct_base32_and_hashed() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.0.len(), RECOVERY_CODES);
        let mut unique = codes.0.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        for (code, hash) in codes.0.iter().zip(&hashes) {
            assert_eq!(code.len(), RECOVERY_CODE_CHARS);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            assert_eq!(*hash, TokenHash::of(code));
        }
        assert!(!format!("{codes:?}").contains(&codes.0[0]));
    }

    #[test]
    fn recovery_codes_are_typed_loosely() {
        assert_eq!(
            canonical_recovery_code(" abcd-efgh ijkl-mnop "),
            "ABCDEFGHIJKLMNOP"
        );
    }
}

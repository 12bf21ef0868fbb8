//! The re-authentication rule: the one answer to "has the caller proven,
//! recently enough, that they own this account?" for every
//! account-changing flow.
//!
//! | Flow | Proof it takes |
//! |---|---|
//! | change email | the password (users who have one), or a code mailed to the *current* address, or — users without a password — a sign-in within `accounts.recent_sign_in_secs` |
//! | delete account | the password (users who have one), or a code mailed to the *current* address (a session alone never: it cannot be undone) |
//! | change password | the current password (the flow needs it anyway) |
//! | set password | a sign-in within `accounts.recent_sign_in_secs` (there is no password to ask for) |
//!
//! An access token alone, however old, never moves the recovery address,
//! adds a credential or deletes the account: a stolen token is not a
//! proof. Refreshing keeps a session's sign-in time (only a sign-in opens
//! a new session), so a refreshed old session is not recent. The mailed
//! codes are single use, bound to their action, to the address they were
//! mailed to and to the credential epoch ([`super::epoch`]).

use super::{mail::purpose, AuthManager, Principal};
use crate::{
    email::Message,
    error::{Error, Result},
    hooks::{Action, Event},
    store::OneTimeToken,
    token::Secret,
    user::User,
};

/// What a caller presents to confirm an account-changing flow
/// ([`AuthManager::request_email_change`], [`AuthManager::delete_account`]):
/// the current password, or the code mailed by
/// [`AuthManager::request_reauthentication_code`]. Users without a
/// password may also present nothing, when their session's sign-in is
/// recent.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Reauthentication {
    /// The current password.
    pub password: Option<Secret>,
    /// The code mailed to the current address.
    pub code: Option<Secret>,
}

impl Reauthentication {
    /// Confirm with the password.
    pub fn password(password: impl Into<Secret>) -> Self {
        Self {
            password: Some(password.into()),
            code: None,
        }
    }

    /// Confirm with the mailed code.
    pub fn code(code: impl Into<Secret>) -> Self {
        Self {
            password: None,
            code: Some(code.into()),
        }
    }

    /// No proof beyond the session (enough only for a user without a
    /// password whose sign-in is recent).
    pub fn session() -> Self {
        Self::default()
    }
}

/// The account-changing actions a mailed re-authentication code confirms;
/// a code works only for the action it was mailed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SensitiveAction {
    /// `POST /auth/account/change-email`.
    ChangeEmail,
    /// `DELETE /auth/account`.
    DeleteAccount,
}

impl SensitiveAction {
    /// The snake_case name, as hooks and events carry it.
    pub fn name(self) -> &'static str {
        match self {
            SensitiveAction::ChangeEmail => "change_email",
            SensitiveAction::DeleteAccount => "delete_account",
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            SensitiveAction::ChangeEmail => purpose::CHANGE_EMAIL_CODE,
            SensitiveAction::DeleteAccount => purpose::DELETE_ACCOUNT,
        }
    }

    fn ttl_secs(self, manager: &AuthManager) -> u64 {
        let email = &manager.inner.config.email;
        match self {
            SensitiveAction::ChangeEmail => email.change_email_ttl_secs.min(15 * 60),
            SensitiveAction::DeleteAccount => email.delete_account_ttl_secs,
        }
    }
}

/// A re-authentication that passed: the mailed code (if one was used) is
/// consumed only by [`Reauthenticated::commit`], after the flow's own
/// checks and hooks, so a refused request does not burn it.
#[derive(Debug)]
#[must_use]
pub(crate) struct Reauthenticated {
    code: Option<OneTimeToken>,
}

impl Reauthenticated {
    /// Consumes the mailed code, if any (atomic single use).
    pub(crate) async fn commit(self, manager: &AuthManager) -> Result<()> {
        match self.code {
            Some(record) => manager.consume_one_time(&record).await,
            None => Ok(()),
        }
    }
}

impl AuthManager {
    /// Mails the user of `principal` a single-use code that confirms
    /// `action` (valid 15 minutes): the re-authentication for users without
    /// a password whose sign-in is no longer recent, and an alternative to
    /// the password for everyone. It goes to the *current* address; a new
    /// request replaces the previous code.
    ///
    /// Asks the before-hooks (`request_reauthentication_code`); emits
    /// `reauthentication_code_requested`.
    ///
    /// # Errors
    ///
    /// [`Error::Vetoed`] (403), [`Error::EmailNotConfigured`] and
    /// [`Error::Unavailable`] (503).
    pub async fn request_reauthentication_code(
        &self,
        user: &User,
        action: SensitiveAction,
    ) -> Result<()> {
        self.require_email()?;
        self.inner
            .hooks
            .before(Action::RequestReauthenticationCode {
                user: Box::new(user.clone()),
                confirms: action.name().to_owned(),
            })
            .await?;
        let ttl = action.ttl_secs(self);
        let token = self
            .issue_one_time(
                action.purpose(),
                user,
                &user.email_normalized,
                ttl,
                serde_json::Value::Null,
            )
            .await?;
        let code = token.expose().to_owned();
        let message = match action {
            SensitiveAction::ChangeEmail => Message::ConfirmEmailChangeCode {
                code,
                expires_in_secs: ttl,
            },
            SensitiveAction::DeleteAccount => Message::ConfirmAccountDeletion {
                code,
                expires_in_secs: ttl,
            },
        };
        self.deliver(&user.email, user.name.as_deref(), message);
        self.emit(Event::ReauthenticationCodeRequested {
            user_id: user.id.clone(),
            confirms: action.name().to_owned(),
        })
        .await;
        Ok(())
    }

    /// The re-authentication rule (see the module docs): `proof` must show
    /// that the caller of `principal` owns the account, for `action`.
    /// `field` names the password field in a 422.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] 422 `PASSWORD_REQUIRED` / `WRONG_PASSWORD` on
    /// `field`, or `CONFIRMATION_REQUIRED`;
    /// [`Error::ReauthenticationRequired`] (403) for a user without a
    /// password whose sign-in is not recent and who sent no code;
    /// [`Error::TokenGone`] (410) for a wrong, used or expired code.
    pub(crate) async fn reauthenticate(
        &self,
        principal: &Principal,
        action: SensitiveAction,
        proof: &Reauthentication,
        field: &'static str,
    ) -> Result<Reauthenticated> {
        let user = &principal.user;
        if let Some(code) = &proof.code {
            let token = self
                .peek_account_token(code.expose(), action.purpose())
                .await?;
            if token.user.id != user.id {
                return Err(Error::TokenGone);
            }
            return Ok(Reauthenticated {
                code: Some(token.record),
            });
        }
        if user.has_password() {
            if proof.password.is_none() && action == SensitiveAction::DeleteAccount {
                return Err(Error::validation(
                    "password",
                    "CONFIRMATION_REQUIRED",
                    "confirm with your password or a mailed code",
                ));
            }
            self.confirm_password(user, proof.password.as_ref(), field)
                .await?;
            return Ok(Reauthenticated { code: None });
        }
        if action == SensitiveAction::DeleteAccount {
            // Deleting cannot be undone: a session alone never confirms it.
            return Err(Error::validation(
                "code",
                "CONFIRMATION_REQUIRED",
                "confirm with the code from POST /auth/account/delete-code",
            ));
        }
        self.require_recent_sign_in(principal)?;
        Ok(Reauthenticated { code: None })
    }

    /// Refuses a session whose sign-in is older than
    /// `accounts.recent_sign_in_secs` (0 turns the check off).
    ///
    /// # Errors
    ///
    /// [`Error::ReauthenticationRequired`] (403).
    pub(crate) fn require_recent_sign_in(&self, principal: &Principal) -> Result<()> {
        let recent = self.inner.config.accounts.recent_sign_in_secs;
        let age = (self.now() - principal.session.created_at).num_seconds();
        if recent > 0 && age > i64::try_from(recent).unwrap_or(i64::MAX) {
            return Err(Error::ReauthenticationRequired);
        }
        Ok(())
    }
}

//! The credential epoch: a user's `token_version`.
//!
//! It moves (one `UserPatch::bump_token_version` in the same write as the
//! change) on a password reset, a password change, a deactivation or soft
//! delete, an admin's deactivation, and a confirmed email change. Every
//! access token carries it and dies with it ([`AuthManager::authenticate`]),
//! every session of an older epoch is dead, and every outstanding
//! *account-changing* one-time token is bound to it here: a pending email
//! change, a password-reset link and a deletion or re-authentication code
//! issued before the epoch moved (or for an account deactivated since) are
//! gone, so "change your password at once" really stops an email change
//! someone else started.

use super::{mail::purpose, AuthManager};
use crate::{
    error::{Error, Result},
    store::OneTimeToken,
    user::User,
};

/// The one-time tokens bound to the epoch: every token that changes the
/// account (its recovery address, its password, its existence).
pub(crate) fn binds_epoch(purpose: &str) -> bool {
    [
        purpose::RESET_PASSWORD,
        purpose::CHANGE_EMAIL,
        purpose::CHANGE_EMAIL_CODE,
        purpose::DELETE_ACCOUNT,
        // Not account-changing, but it stands for a proven first factor:
        // a password reset or change must end a sign-in half done.
        purpose::MFA_CHALLENGE,
        purpose::MFA_SETUP,
    ]
    .contains(&purpose)
}

/// A live account-changing token and its owner, checked against the
/// owner's current state.
#[derive(Debug)]
pub(crate) struct AccountToken {
    /// The stored token.
    pub(crate) record: OneTimeToken,
    /// Its owner, as the store has them now.
    pub(crate) user: User,
}

impl AuthManager {
    /// The live account-changing token `raw` of `purpose`, without
    /// consuming it: it must be bound to its owner's current epoch, the
    /// owner must be active, and (for tokens bound to an address) the
    /// owner must still have the address it was mailed for.
    ///
    /// # Errors
    ///
    /// [`Error::TokenGone`] (410) otherwise; [`Error::Unavailable`] (503).
    pub(crate) async fn peek_account_token(
        &self,
        raw: &str,
        purpose: &str,
    ) -> Result<AccountToken> {
        let (record, user) = self.peek_one_time(raw, purpose).await?;
        let current = record.epoch == Some(user.token_version);
        let same_address = match purpose {
            // Bound to the *old* address, in its data (the token's own
            // email is the new one).
            purpose::CHANGE_EMAIL => {
                record.data["old_email"].as_str() == Some(user.email_normalized.as_str())
            }
            _ => record.email.as_deref() == Some(user.email_normalized.as_str()),
        };
        if !(binds_epoch(purpose) && current && user.is_active && same_address) {
            return Err(Error::TokenGone);
        }
        Ok(AccountToken { record, user })
    }
}

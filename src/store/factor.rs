//! Second factors as a store keeps them: one record per (user, kind).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{PasskeyRecord, StoreResult};
use crate::{factor::Sealed, token::TokenHash, user::UserId};

/// Which second factor a [`Factor`] record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FactorKind {
    /// An RFC 6238 authenticator app (one per user).
    Totp,
    /// The set of single-use recovery codes (one set per user).
    RecoveryCodes,
}

impl FactorKind {
    /// The snake_case name, as records, events and the API carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::RecoveryCodes => "recovery_codes",
        }
    }
}

/// A user's second factor of one [`FactorKind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Factor {
    /// The owner.
    pub user_id: UserId,
    /// What it is.
    pub kind: FactorKind,
    /// The TOTP secret, sealed ([`crate::factor::Sealer`]); `None` for
    /// recovery codes.
    pub secret: Option<Sealed>,
    /// SHA-256 of each unused recovery code; empty for TOTP.
    pub codes: Vec<TokenHash>,
    /// The last TOTP time step accepted: a step is accepted once, and
    /// never one at or before it.
    pub last_step: Option<u64>,
    /// Enrolment start.
    pub created_at: DateTime<Utc>,
    /// Set when the enrolment was confirmed (a TOTP code was right); a
    /// factor without it protects nothing yet.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The last successful use.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl Factor {
    /// A pending (unconfirmed) TOTP factor with this sealed secret.
    pub fn pending_totp(user_id: UserId, secret: Sealed, now: DateTime<Utc>) -> Self {
        Self {
            user_id,
            kind: FactorKind::Totp,
            secret: Some(secret),
            codes: Vec::new(),
            last_step: None,
            created_at: millis(now),
            confirmed_at: None,
            last_used_at: None,
        }
    }

    /// A confirmed set of recovery codes (their hashes).
    pub fn recovery_codes(user_id: UserId, codes: Vec<TokenHash>, now: DateTime<Utc>) -> Self {
        let now = millis(now);
        Self {
            user_id,
            kind: FactorKind::RecoveryCodes,
            secret: None,
            codes,
            last_step: None,
            created_at: now,
            confirmed_at: Some(now),
            last_used_at: None,
        }
    }

    /// Whether the enrolment was confirmed.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

/// Millisecond precision, what every store keeps.
fn millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// Second factors. Every use is a single atomic compare-and-set, so of
/// concurrent callers presenting the same TOTP step or recovery code only
/// one succeeds.
///
/// # Errors
///
/// As [`UserStore`](super::UserStore).
#[async_trait]
pub trait FactorStore: Send + Sync + 'static {
    /// Stores `factor` as the user's pending factor of its kind, replacing
    /// a pending one; [`StoreError::Conflict`](super::StoreError::Conflict)
    /// when a confirmed one exists (one factor of a kind per user).
    async fn put_pending_factor(&self, factor: &Factor) -> StoreResult<()>;

    /// Confirms the user's pending factor of `kind` if it still holds
    /// exactly `secret` (a setup started meanwhile replaced it), recording
    /// `step` as its last accepted TOTP step. Returns whether it did.
    async fn confirm_factor(
        &self,
        user_id: &UserId,
        kind: FactorKind,
        secret: &Sealed,
        step: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Replaces the user's recovery codes with `factor` (a
    /// [`Factor::recovery_codes`]): the old set dies in the same write.
    async fn put_recovery_codes(&self, factor: &Factor) -> StoreResult<()>;

    /// Stores `factor` (a [`Factor::recovery_codes`]) as the user's
    /// recovery codes only if the user has no set yet (even an empty one):
    /// [`StoreError::Conflict`](super::StoreError::Conflict) otherwise. Of
    /// concurrent inserts for one user exactly one succeeds, so a set
    /// handed out once is never replaced behind its owner's back.
    async fn insert_recovery_codes(&self, factor: &Factor) -> StoreResult<()>;

    /// The user's factors, pending ones included, ordered by kind.
    async fn list_factors(&self, user_id: &UserId) -> StoreResult<Vec<Factor>>;

    /// The user's factors (as [`list_factors`](Self::list_factors)) and
    /// passkeys (as
    /// [`PasskeyStore::list_passkeys`](super::PasskeyStore::list_passkeys))
    /// in one read: what every sign-in needs to choose between a session
    /// and an MFA challenge, so a store should answer it with one query
    /// (MongoStore: one `aggregate` with `$unionWith`).
    async fn list_second_factors(
        &self,
        user_id: &UserId,
    ) -> StoreResult<(Vec<Factor>, Vec<PasskeyRecord>)>;

    /// Accepts TOTP `step` for the user if their TOTP is confirmed and its
    /// last accepted step is before `step`; returns whether it did.
    async fn use_totp_step(
        &self,
        user_id: &UserId,
        step: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Removes the recovery code with this hash from the user's set and
    /// returns how many are left; `None` when the set does not hold it
    /// (unknown, or used already).
    async fn use_recovery_code(
        &self,
        user_id: &UserId,
        code: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<usize>>;

    /// Deletes the user's factor of `kind`. Returns whether it existed.
    async fn delete_factor(&self, user_id: &UserId, kind: FactorKind) -> StoreResult<bool>;

    /// Deletes every factor of the user. Returns how many.
    async fn delete_factors(&self, user_id: &UserId) -> StoreResult<u64>;
}

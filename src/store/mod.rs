//! Storage: one narrow trait per aggregate, and [`Store`] for all of them.
//!
//! The traits state what they guarantee: `find_*` returns an `Option`;
//! `insert_*` fails with [`StoreError::Conflict`] on a duplicate; `consume_*`
//! and `rotate_*` are atomic, so two concurrent callers can never both
//! succeed. The manager never reads-then-writes to enforce uniqueness or
//! single use: the store does it in one operation.

mod memory;
#[cfg(feature = "mongodb")]
mod mongo;

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;
#[cfg(feature = "mongodb")]
pub use mongo::{MongoConfig, MongoStore};

use crate::{
    token::TokenHash,
    user::{SessionId, User, UserId},
};

/// Result of a store call.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// Backend-neutral store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. the email is taken).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The backend cannot be reached (connection refused, timeout, …).
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Any other backend failure.
    #[error("store backend error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Metadata about the client that started a session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientInfo {
    /// Client IP address, as the HTTP adapter determined it.
    pub ip: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// Client metadata from an IP and user agent.
    pub fn new(ip: Option<String>, user_agent: Option<String>) -> Self {
        Self { ip, user_agent }
    }
}

/// A session: one refresh-token family, one signed-in device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// Family id; access tokens carry it as `sid`.
    pub id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// Provider that signed the user in.
    pub provider: String,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Absolute end of the session; rotation never extends it.
    pub expires_at: DateTime<Utc>,
    /// Last rotation.
    pub last_used_at: DateTime<Utc>,
    /// Set when the session ends (logout, reuse detected, password change).
    pub revoked_at: Option<DateTime<Utc>>,
    /// The user's `token_version` at sign-in; a session whose version is
    /// behind the user's is dead (one bump ends every session).
    pub token_version: u64,
    /// Who signed in.
    pub client: ClientInfo,
}

impl Session {
    /// A new session for `user` lasting `ttl` from `now`.
    pub fn new(
        user: &User,
        provider: impl Into<String>,
        now: DateTime<Utc>,
        ttl: Duration,
        client: ClientInfo,
    ) -> Self {
        Self {
            id: SessionId::generate(),
            user_id: user.id.clone(),
            token_version: user.token_version,
            provider: provider.into(),
            created_at: now,
            expires_at: now + ttl,
            last_used_at: now,
            revoked_at: None,
            client,
        }
    }

    /// Not revoked and not expired at `now`.
    pub fn is_alive(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// One refresh token of a family, stored by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefreshToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// The family.
    pub session_id: SessionId,
    /// The family's owner.
    pub user_id: UserId,
    /// Issue time.
    pub issued_at: DateTime<Utc>,
    /// Set when the token is rotated; a used token presented again is reuse.
    pub used_at: Option<DateTime<Utc>>,
    /// The token that replaced this one at rotation.
    pub replaced_by: Option<TokenHash>,
}

impl RefreshToken {
    /// A new, unused token of `session`.
    pub fn new(hash: TokenHash, session: &Session, now: DateTime<Utc>) -> Self {
        Self {
            hash,
            session_id: session.id.clone(),
            user_id: session.user_id.clone(),
            issued_at: now,
            used_at: None,
            replaced_by: None,
        }
    }
}

/// What [`SessionStore::rotate_refresh_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// The token was current (or reused inside the grace window); the new
    /// token is stored and belongs to this live session.
    Rotated(Session),
    /// The token had already been used: the whole family is now revoked.
    Reused(Session),
    /// Unknown token, or its session is revoked or expired. Nothing changed.
    Invalid,
}

/// A one-time token (email verification, password reset, magic link, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OneTimeToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it is for, e.g. `verify_email`; consuming checks it.
    pub purpose: String,
    /// The user it is bound to, if any.
    pub user_id: Option<UserId>,
    /// The normalised email it is bound to, if any.
    pub email: Option<String>,
    /// Flow-specific data (e.g. the new email of an email change).
    pub data: serde_json::Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// After this it cannot be consumed.
    pub expires_at: DateTime<Utc>,
}

impl OneTimeToken {
    /// A token for `purpose` valid for `ttl` from `now`.
    pub fn new(
        hash: TokenHash,
        purpose: impl Into<String>,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Self {
        Self {
            hash,
            purpose: purpose.into(),
            user_id: None,
            email: None,
            data: serde_json::Value::Null,
            created_at: now,
            expires_at: now + ttl,
        }
    }

    /// Binds the token to a user.
    pub fn for_user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// Binds the token to a normalised email.
    pub fn for_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Attaches flow data.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// A provider identity linked to a user: (provider, subject) is unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkedAccount {
    /// Provider id, e.g. `github`.
    pub provider: String,
    /// The provider's stable id for the user.
    pub subject: String,
    /// The local user.
    pub user_id: UserId,
    /// Email the provider reported when linking.
    pub email: Option<String>,
    /// Link time.
    pub created_at: DateTime<Utc>,
}

impl LinkedAccount {
    /// A link of (`provider`, `subject`) to `user_id`.
    pub fn new(
        provider: impl Into<String>,
        subject: impl Into<String>,
        user_id: UserId,
        email: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            provider: provider.into(),
            subject: subject.into(),
            user_id,
            email,
            created_at: now,
        }
    }
}

/// Users.
///
/// # Errors
///
/// Every method fails with [`StoreError::Unavailable`] when the backend is
/// unreachable and [`StoreError::Backend`] on other backend failures.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a new user. [`StoreError::Conflict`] when the normalised
    /// email (or id) exists, enforced atomically (unique index / one lock).
    async fn insert_user(&self, user: &User) -> StoreResult<()>;

    /// The user with this id.
    async fn find_user(&self, id: &UserId) -> StoreResult<Option<User>>;

    /// The user with this normalised email.
    async fn find_user_by_email(&self, email_normalized: &str) -> StoreResult<Option<User>>;

    /// Replaces a user's document. `Ok(false)` when the user does not exist;
    /// [`StoreError::Conflict`] when the new normalised email is taken.
    async fn update_user(&self, user: &User) -> StoreResult<bool>;

    /// Sets the password hash only if the current one equals `expected`
    /// (compare-and-set, so a rehash never overwrites a concurrent change).
    /// Returns whether it was written.
    async fn replace_password_hash(
        &self,
        id: &UserId,
        expected: Option<&str>,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Atomically increments `token_version` (every access token issued
    /// before dies) and returns the updated user.
    async fn bump_token_version(
        &self,
        id: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;

    /// Deletes a user. Returns whether it existed.
    async fn delete_user(&self, id: &UserId) -> StoreResult<bool>;

    /// Users ordered by creation, `offset`/`limit` paginated, and the total.
    async fn list_users(&self, offset: u64, limit: u64) -> StoreResult<(Vec<User>, u64)>;
}

/// Sessions (refresh-token families) and their refresh tokens.
///
/// # Errors
///
/// As [`UserStore`].
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session with its first refresh token.
    async fn insert_session(&self, session: &Session, first: &RefreshToken) -> StoreResult<()>;

    /// Atomically rotates `presented` to `next`:
    /// - unused token of a live session → marked used, `next` stored,
    ///   [`Rotation::Rotated`];
    /// - token used less than `grace` ago whose replacement is still unused
    ///   (the client lost the answer) → `next` stored, the earlier
    ///   replacement superseded (presenting it later is reuse), `Rotated`;
    ///   with a zero grace, never;
    /// - any other used token → the session is revoked, [`Rotation::Reused`];
    /// - unknown token, or session revoked or past `expires_at` →
    ///   [`Rotation::Invalid`], nothing written.
    ///
    /// The new token joins the presented token's family.
    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        next: &TokenHash,
        now: DateTime<Utc>,
        grace: Duration,
    ) -> StoreResult<Rotation>;

    /// The session with this id.
    async fn find_session(&self, id: &SessionId) -> StoreResult<Option<Session>>;

    /// The user and their session, read together (one round trip) so that
    /// checking an access token costs one store read. `None` when either is
    /// missing or the session belongs to another user.
    async fn find_session_user(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
    ) -> StoreResult<Option<(User, Session)>>;

    /// Revokes one session. Returns whether a live session was revoked.
    async fn revoke_session(&self, id: &SessionId, now: DateTime<Utc>) -> StoreResult<bool>;

    /// Revokes every live session of a user, except `keep` when given.
    /// Returns how many were revoked.
    async fn revoke_user_sessions(
        &self,
        user_id: &UserId,
        keep: Option<&SessionId>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
}

/// One-time tokens.
///
/// # Errors
///
/// As [`UserStore`]; `insert_one_time_token` → [`StoreError::Conflict`] on a
/// duplicate hash.
#[async_trait]
pub trait OneTimeTokenStore: Send + Sync + 'static {
    /// Stores a token.
    async fn insert_one_time_token(&self, token: &OneTimeToken) -> StoreResult<()>;

    /// Atomically removes and returns the token with this hash if it has
    /// this purpose and is not expired at `now`. A second call for the same
    /// token returns `None`.
    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OneTimeToken>>;

    /// Deletes every token of `purpose` bound to `user_id` (a new request
    /// invalidates the previous ones). Returns how many.
    async fn delete_one_time_tokens(&self, user_id: &UserId, purpose: &str) -> StoreResult<u64>;
}

/// Provider identities linked to users.
///
/// # Errors
///
/// As [`UserStore`]; `insert_linked_account` → [`StoreError::Conflict`] when
/// (provider, subject) is already linked.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Links an identity.
    async fn insert_linked_account(&self, account: &LinkedAccount) -> StoreResult<()>;

    /// The link for (provider, subject).
    async fn find_linked_account(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<LinkedAccount>>;

    /// Every link of a user.
    async fn list_linked_accounts(&self, user_id: &UserId) -> StoreResult<Vec<LinkedAccount>>;

    /// Removes the link of `user_id` with `provider`. Returns whether it existed.
    async fn delete_linked_account(&self, user_id: &UserId, provider: &str) -> StoreResult<bool>;
}

/// Everything the manager needs: implemented for any type that implements
/// the four aggregate traits.
pub trait Store: UserStore + SessionStore + OneTimeTokenStore + AccountStore + fmt::Debug {}

impl<T> Store for T where T: UserStore + SessionStore + OneTimeTokenStore + AccountStore + fmt::Debug
{}

//! Storage: one narrow trait per aggregate, and [`Store`] for all of them.
//!
//! The traits state what they guarantee: `find_*` returns an `Option`;
//! `insert_*` fails with [`StoreError::Conflict`] on a duplicate; `consume_*`
//! and `rotate_*` are atomic, so two concurrent callers can never both
//! succeed. The manager never reads-then-writes to enforce uniqueness or
//! single use: the store does it in one operation.

mod factor;
mod memory;
#[cfg(feature = "mongodb")]
mod mongo;
mod org;
mod passkey;
mod role;

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub use factor::{Factor, FactorKind, FactorStore};
pub use memory::MemoryStore;
#[cfg(feature = "mongodb")]
pub use mongo::{MongoConfig, MongoStore};
pub use org::{
    Invitation, InvitationState, MemberChange, Membership, OrgRole, OrgStore, Organization, OWNER,
};
pub use passkey::{PasskeyRecord, PasskeyStore};
pub use role::{Role, RoleStore};

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
    /// How the sign-in was proven (RFC 8176 "Authentication Method
    /// Reference" values): `pwd` for a password, the provider's kind
    /// (`passwordless`, `oauth`, …) for other first factors, then `otp` and
    /// `mfa` when a second factor passed. Access tokens carry it as `amr`.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The active organization's id, when the user switched to one: access
    /// tokens carry it as `org` with the caller's roles in it as
    /// `org_roles`, and org-scoped permission checks use it.
    #[serde(default)]
    pub org: Option<String>,
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
        // Millisecond precision, what every store keeps (as for users).
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
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
            amr: Vec::new(),
            org: None,
        }
    }

    /// The session with these authentication methods (see [`Session::amr`]).
    pub fn with_amr(mut self, amr: Vec<String>) -> Self {
        self.amr = amr;
        self
    }

    /// Whether a second factor was proven at this session's sign-in.
    pub fn has_second_factor(&self) -> bool {
        self.amr.iter().any(|m| m == "mfa")
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
    /// Attempts counted by [`OneTimeTokenStore::count_one_time_token_attempt`]
    /// (e.g. codes typed), for flows that limit guesses.
    #[serde(default)]
    pub attempts: u32,
    /// The owner's `token_version` (credential epoch) when the token was
    /// issued, for account-changing tokens (reset, email change, deletion):
    /// the manager refuses such a token once the epoch moved on (a password
    /// reset or change, a deactivation, a confirmed email change).
    #[serde(default)]
    pub epoch: Option<u64>,
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
            attempts: 0,
            epoch: None,
        }
    }

    /// Binds the token to its owner's credential epoch (`token_version`).
    pub fn at_epoch(mut self, token_version: u64) -> Self {
        self.epoch = Some(token_version);
        self
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
    /// Whether the provider had verified that email when the identity was
    /// linked. An identity linked without that proof is removed when the
    /// owner proves the address (see
    /// [`AccountStore::delete_unverified_linked_accounts`]). Links stored
    /// before this field existed read as `false`.
    pub email_verified: bool,
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
            email_verified: false,
            created_at: now,
        }
    }

    /// Records whether the provider had verified the email.
    pub fn with_email_verified(mut self, verified: bool) -> Self {
        self.email_verified = verified;
        self
    }
}

/// A partial, atomic change to a user: only the fields set are written.
///
/// ```
/// use portcullis::UserPatch;
///
/// let patch = UserPatch::new().is_active(false).bump_token_version();
/// assert!(!patch.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UserPatch {
    /// New email as typed and its normalised form (set together by
    /// [`UserPatch::email`]).
    pub email: Option<(String, String)>,
    /// New display name (`Some(None)` clears it).
    pub name: Option<Option<String>>,
    /// New profile metadata (replaces the whole map).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// New server-only metadata (replaces the whole map).
    pub app_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// New `email_verified`.
    pub email_verified: Option<bool>,
    /// New `is_active`.
    pub is_active: Option<bool>,
    /// New `is_superuser`.
    pub is_superuser: Option<bool>,
    /// Increment `token_version` in the same write.
    pub bump_token_version: bool,
}

impl UserPatch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the email (validated and normalised).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Validation`] `INVALID_EMAIL`.
    pub fn email(mut self, email: &str) -> crate::Result<Self> {
        let normalized = crate::user::normalize_email(email)?;
        self.email = Some((email.trim().to_owned(), normalized));
        Ok(self)
    }

    /// Sets (or with `None` clears) the display name.
    pub fn name(mut self, name: Option<String>) -> Self {
        self.name = Some(name);
        self
    }

    /// Replaces the profile metadata.
    pub fn metadata(mut self, metadata: serde_json::Map<String, serde_json::Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Replaces the server-only metadata.
    pub fn app_metadata(
        mut self,
        app_metadata: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        self.app_metadata = Some(app_metadata);
        self
    }

    /// Sets `email_verified`.
    pub fn email_verified(mut self, value: bool) -> Self {
        self.email_verified = Some(value);
        self
    }

    /// Sets `is_active`.
    pub fn is_active(mut self, value: bool) -> Self {
        self.is_active = Some(value);
        self
    }

    /// Sets `is_superuser`.
    pub fn is_superuser(mut self, value: bool) -> Self {
        self.is_superuser = Some(value);
        self
    }

    /// Also increments `token_version` (every access token and session of
    /// the user dies).
    pub fn bump_token_version(mut self) -> Self {
        self.bump_token_version = true;
        self
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Applies the patch to `user` in memory (what a store does atomically).
    pub fn apply(&self, user: &mut User, now: DateTime<Utc>) {
        if let Some((email, normalized)) = &self.email {
            user.email.clone_from(email);
            user.email_normalized.clone_from(normalized);
        }
        if let Some(name) = &self.name {
            user.name.clone_from(name);
        }
        if let Some(metadata) = &self.metadata {
            user.metadata.clone_from(metadata);
        }
        if let Some(app_metadata) = &self.app_metadata {
            user.app_metadata.clone_from(app_metadata);
        }
        if let Some(value) = self.email_verified {
            user.email_verified = value;
        }
        if let Some(value) = self.is_active {
            user.is_active = value;
        }
        if let Some(value) = self.is_superuser {
            user.is_superuser = value;
        }
        if self.bump_token_version {
            user.token_version += 1;
        }
        user.updated_at = now;
    }
}

/// The condition [`UserStore::set_password_hash`] checks on the current
/// hash before writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordGuard<'a> {
    /// Write whatever the current hash is (password reset).
    Any,
    /// Write only when the user has no password (set-password).
    Unset,
    /// Write only when the current hash is exactly this (rehash, change).
    Equals(&'a str),
}

impl PasswordGuard<'_> {
    /// Whether `current` passes the guard.
    pub fn allows(&self, current: Option<&str>) -> bool {
        match self {
            PasswordGuard::Any => true,
            PasswordGuard::Unset => current.is_none(),
            PasswordGuard::Equals(expected) => current == Some(*expected),
        }
    }
}

/// Where a page of [`UserStore::list_users`] starts: the sort key of the
/// last user of the page before (creation time, then id). Users are listed
/// in this order, so a page after a cursor is a range seek on an ordered
/// index, whatever the depth; users inserted between pages are never
/// skipped or repeated (a new user sorts after every existing one unless
/// its clock is behind).
///
/// Clients see it as an opaque string ([`encode`](Self::encode) /
/// [`parse`](Self::parse)): URL-safe base64 of
/// `{seconds}.{nanoseconds}.{id}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserCursor {
    /// Creation time of the last user seen.
    pub created_at: DateTime<Utc>,
    /// Id of the last user seen.
    pub id: UserId,
}

/// Longest cursor [`UserCursor::parse`] reads.
const MAX_CURSOR_LEN: usize = 512;

impl UserCursor {
    /// The cursor just after `user`.
    pub fn after(user: &User) -> Self {
        Self {
            created_at: user.created_at,
            id: user.id.clone(),
        }
    }

    /// The opaque text form.
    pub fn encode(&self) -> String {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        URL_SAFE_NO_PAD.encode(format!(
            "{}.{}.{}",
            self.created_at.timestamp(),
            self.created_at.timestamp_subsec_nanos(),
            self.id
        ))
    }

    /// Reads a cursor written by [`encode`](Self::encode); `None` for any
    /// other text (only the canonical form is accepted, so one position has
    /// one cursor).
    pub fn parse(text: &str) -> Option<Self> {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        if text.len() > MAX_CURSOR_LEN {
            return None;
        }
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let mut parts = raw.splitn(3, '.');
        let (secs, nanos, id) = (parts.next()?, parts.next()?, parts.next()?);
        if id.is_empty() {
            return None;
        }
        let created_at = DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)?;
        let cursor = Self {
            created_at,
            id: UserId::new(id),
        };
        (cursor.encode() == text).then_some(cursor)
    }
}

/// Which users [`UserStore::list_users`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserQuery {
    /// Users to skip (after [`after`](Self::after), if set). Kept for
    /// compatibility: skipping costs time proportional to the offset on
    /// every store; page with `after` instead.
    pub offset: u64,
    /// Largest page.
    pub limit: u64,
    /// Only users whose normalised email starts with this (lower-case).
    pub email_prefix: Option<String>,
    /// Only users sorting after this cursor.
    pub after: Option<UserCursor>,
    /// Whether to count every matching user (the second value of
    /// [`UserStore::list_users`]); `None` is answered when not asked.
    pub count: bool,
}

impl UserQuery {
    /// A page of every user, counted.
    pub fn page(offset: u64, limit: u64) -> Self {
        Self {
            offset,
            limit,
            email_prefix: None,
            after: None,
            count: true,
        }
    }

    /// Only users whose email starts with `prefix` (case-insensitive).
    pub fn email_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.email_prefix = Some(prefix.into().trim().to_lowercase());
        self
    }

    /// Only users after `cursor` (the next page).
    pub fn after(mut self, cursor: UserCursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Whether to count the matching users.
    pub fn count(mut self, count: bool) -> Self {
        self.count = count;
        self
    }

    /// Whether `user` matches the filter and sorts after the cursor.
    pub fn matches(&self, user: &User) -> bool {
        self.email_prefix
            .as_deref()
            .is_none_or(|p| user.email_normalized.starts_with(p))
            && self
                .after
                .as_ref()
                .is_none_or(|c| (&user.created_at, &user.id) > (&c.created_at, &c.id))
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

    /// Replaces a user's whole document (imports, tests). Flows never use
    /// it: they change users with [`patch_user`](Self::patch_user), which
    /// cannot undo a concurrent `token_version` bump. `Ok(false)` when the
    /// user does not exist; [`StoreError::Conflict`] when the new normalised
    /// email is taken.
    async fn update_user(&self, user: &User) -> StoreResult<bool>;

    /// Atomically applies `patch` (only the fields it sets, `updated_at` =
    /// `now`, and a `token_version` increment when asked) and returns the
    /// updated user; `None` when the user does not exist.
    /// [`StoreError::Conflict`] when the patch's email is taken, checked by
    /// the same unique constraint as inserts.
    async fn patch_user(
        &self,
        id: &UserId,
        patch: &UserPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;

    /// Sets the password hash if the current one passes `guard`
    /// (compare-and-set: a rehash never overwrites a concurrent change, and
    /// set-password never overwrites an existing password), bumping
    /// `token_version` in the same write when `bump_token_version`. Returns
    /// the updated user, or `None` when the user does not exist or the guard
    /// failed.
    async fn set_password_hash(
        &self,
        id: &UserId,
        guard: PasswordGuard<'_>,
        new_hash: &str,
        bump_token_version: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;

    /// Atomically increments `token_version` (every access token issued
    /// before dies) and returns the updated user.
    async fn bump_token_version(
        &self,
        id: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;

    /// Deletes a user with their sessions, links, one-time tokens, second
    /// factors and organization memberships. Returns whether it existed.
    async fn delete_user(&self, id: &UserId) -> StoreResult<bool>;

    /// The users matching `query` (email prefix, after the cursor),
    /// ordered by creation then id, skipping `offset`, at most `limit` of
    /// them; and, when `query.count`, how many match the email prefix in
    /// total (ignoring the cursor and offset), else `None`. A page after a
    /// cursor must be a seek on an ordered index, not a scan from the
    /// start.
    async fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, Option<u64>)>;
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
    ///   once per token: presenting it a third time is reuse, however soon;
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

    /// The user's sessions that are neither revoked nor expired at `now`,
    /// most recently used first.
    async fn list_user_sessions(
        &self,
        user_id: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Session>>;

    /// Revokes one session. Returns whether a live session was revoked.
    async fn revoke_session(&self, id: &SessionId, now: DateTime<Utc>) -> StoreResult<bool>;

    /// Revokes every live (unrevoked, unexpired at `now`) session of a
    /// user, except `keep` when given. Returns how many were revoked.
    async fn revoke_user_sessions(
        &self,
        user_id: &UserId,
        keep: Option<&SessionId>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Sets (or, with `None`, clears) the session's active organization
    /// ([`Session::org`]); `false` when no session has the id.
    async fn set_session_org(&self, id: &SessionId, org: Option<&str>) -> StoreResult<bool>;
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

    /// The token with this hash if it has this purpose and is not expired
    /// at `now`, left in place (flows validate their input before they
    /// consume it).
    async fn find_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OneTimeToken>>;

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

    /// Deletes every token of `purpose` bound to the normalised `email`
    /// (for flows that start before a user exists). Returns how many.
    async fn delete_one_time_tokens_for_email(
        &self,
        email: &str,
        purpose: &str,
    ) -> StoreResult<u64>;

    /// Atomically increments the `attempts` of the live token with this
    /// hash and purpose and returns the new count; `None` when there is no
    /// such live token. Flows count an attempt *before* checking a guess, so
    /// concurrent guesses can never exceed the limit.
    async fn count_one_time_token_attempt(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<u32>>;
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

    /// Removes every link of `user_id` recorded with `email_verified`
    /// false (or, for links stored before that field, without it) and
    /// returns the links it removed; each is returned by at most one of
    /// concurrent callers.
    async fn delete_unverified_linked_accounts(
        &self,
        user_id: &UserId,
    ) -> StoreResult<Vec<LinkedAccount>>;
}

/// A counter after [`RateLimitStore::hit_counter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CounterHit {
    /// Hits in the window, this one included.
    pub count: u32,
}

/// The progressive delay of a reserved counter (see
/// [`RateLimitStore::reserve_counter`]): `free` failures pass at once, then
/// each further attempt must come 1 s, 2 s, 4 s … (at most `max_delay`)
/// after the last failure. An attempt in flight holds its slot for at most
/// `lease` (a node that dies mid-check cannot hold it longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// Failures in a window that need no wait.
    pub free: u32,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// How long an unsettled reservation holds its slot (default 30 s).
    pub lease: Duration,
}

impl Backoff {
    /// `free` failures, then waits doubling from one second up to
    /// `max_delay`; reservations held at most 30 s.
    pub fn new(free: u32, max_delay: Duration) -> Self {
        Self {
            free,
            max_delay,
            lease: Duration::seconds(30),
        }
    }

    /// How long after the `count`-th failure of a window the next attempt
    /// must wait: nothing while `count < free`, then 2^(count − free)
    /// seconds, capped at `max_delay`.
    pub fn delay_after(&self, count: u32) -> Duration {
        if count < self.free {
            return Duration::zero();
        }
        let exponent = (count - self.free).min(20);
        Duration::seconds(1_i64 << exponent).min(self.max_delay)
    }

    /// The decision of [`RateLimitStore::reserve_counter`] for a window
    /// with `failures` settled failures, `in_flight` live reservations and
    /// the next allowed time `next_at`, at `now` (shared by the stores so
    /// they decide alike).
    pub fn decide(
        &self,
        failures: u32,
        in_flight: u32,
        next_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Reservation {
        if let Some(retry_at) = next_at.filter(|at| *at > now) {
            return Reservation::Refused { retry_at };
        }
        let total = failures.saturating_add(in_flight);
        if total < self.free || (failures >= self.free && in_flight == 0) {
            Reservation::Reserved {
                count: total.saturating_add(1),
            }
        } else {
            Reservation::Busy
        }
    }
}

/// The answer of [`RateLimitStore::reserve_counter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reservation {
    /// A slot is held for this attempt: settle it with
    /// [`RateLimitStore::settle_counter`].
    Reserved {
        /// Settled failures plus attempts in flight, this one included.
        count: u32,
    },
    /// Every slot the backoff allows now is held by an attempt in flight:
    /// try again when one settles. Nothing was counted.
    Busy,
    /// Too early after the last failure: nothing was counted; the next
    /// attempt may come at `retry_at`.
    Refused {
        /// When the next attempt may be reserved.
        retry_at: DateTime<Utc>,
    },
}

/// Fixed-window hit counters for rate limits, shared by every app node.
///
/// # Errors
///
/// As [`UserStore`].
#[async_trait]
pub trait RateLimitStore: Send + Sync + 'static {
    /// Atomically adds one hit to the window of `key` that starts at
    /// `window_start` (the counter may be dropped after `expires_at`) and
    /// records `now` as its last hit.
    async fn hit_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<CounterHit>;

    /// The hits of that window and the time of the last one, without
    /// counting; `None` when there were none.
    async fn read_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
    ) -> StoreResult<Option<(u32, DateTime<Utc>)>>;

    /// Drops every window of `key` (e.g. failed sign-ins after a success).
    async fn reset_counter(&self, key: &str) -> StoreResult<()>;

    /// Reserves an attempt slot in the window of `key` that starts at
    /// `window_start`, in one atomic step, before a password or code is
    /// checked: drops reservations older than `backoff.lease`, then decides
    /// with [`Backoff::decide`] from the settled failures, the reservations
    /// in flight and the next allowed time. `Reserved` holds a slot under
    /// the caller's random `lease` id (until settled with the same id, or
    /// for `backoff.lease`); `Busy` and `Refused` hold and count nothing.
    /// Of any number of concurrent callers only as many are reserved as
    /// the backoff allows.
    async fn reserve_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        backoff: Backoff,
        lease: u64,
    ) -> StoreResult<Reservation>;

    /// Settles the reservation `lease` of that window: frees its slot
    /// (nothing when it expired or a reset dropped it; never another
    /// caller's), and when `failed` counts a failure (recording `now` as the
    /// last one and `now + backoff.delay_after(failures)` as the next allowed
    /// time; a window dropped meanwhile, e.g. by a reset, starts again).
    #[allow(
        clippy::too_many_arguments,
        reason = "the window, the clock, the backoff and the attempt: each a plain value the store needs"
    )]
    async fn settle_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        backoff: Backoff,
        failed: bool,
        lease: u64,
    ) -> StoreResult<()>;
}

/// Everything the manager needs: implemented for any type that implements
/// the aggregate traits.
pub trait Store:
    UserStore
    + SessionStore
    + OneTimeTokenStore
    + AccountStore
    + FactorStore
    + PasskeyStore
    + RoleStore
    + OrgStore
    + RateLimitStore
    + fmt::Debug
{
}

impl<T> Store for T where
    T: UserStore
        + SessionStore
        + OneTimeTokenStore
        + AccountStore
        + FactorStore
        + PasskeyStore
        + RoleStore
        + OrgStore
        + RateLimitStore
        + fmt::Debug
{
}

//! The production store on the official `mongodb` driver.
//!
//! # Schema
//!
//! Ids are strings everywhere (`_id` of users and sessions is the same UUID
//! v7 text the API shows), so they round-trip unchanged; dates are BSON
//! dates (millisecond precision). Collections, named `{prefix}{name}`:
//!
//! | Collection | Document | Indexes |
//! |---|---|---|
//! | `users` | `_id`, `email`, `email_normalized`, `name`, `email_verified`, `is_active`, `is_superuser`, `password_hash`, `token_version`, `created_at`, `updated_at`, `metadata`, `app_metadata` (absent in documents written before it existed: read as empty), `roles` (names; absent when none) | unique `email_normalized`; `created_at`; sparse `roles` |
//! | `sessions` | one refresh-token family: `_id` (session id), `user_id`, `provider`, `created_at`, `expires_at`, `last_used_at`, `revoked_at`, `token_version`, `client`, `current: {hash, issued_at}`, `used: [{hash, used_at, replaced_by}]` (last 64) | unique `current.hash`; `used.hash`; `user_id`; TTL on `expires_at` |
//! | `one_time_tokens` | `_id` (token hash), `purpose`, `user_id`, `email`, `data`, `created_at`, `expires_at`, `attempts`, `epoch` | `(user_id, purpose)`; TTL on `expires_at` |
//! | `linked_accounts` | `provider`, `subject`, `user_id`, `email`, `created_at` | unique `(provider, subject)`; `user_id` |
//! | `factors` | one second factor: `_id` (`{user_id}:{kind}`), `user_id`, `kind` (`totp`, `recovery_codes`), `secret: {key_id, nonce, ciphertext}` (TOTP, AES-256-GCM sealed), `codes` (SHA-256 hex of each unused recovery code), `last_step`, `created_at`, `confirmed_at`, `last_used_at` | `user_id` |
//! | `roles` | one run-time role: `_id` (its name), `description`, `permissions`, `created_at`, `updated_at` | – (`_id`) |
//! | `orgs` | one organization: `_id`, `name`, `created_at`, `updated_at`, `owners` (the owner guard, see `store/mongo/orgs.rs`) | `owners` |
//! | `org_members` | one membership: `_id` (`{org_id}:{user_id}`, one per user and organization), `org_id`, `user_id`, `roles`, `joined_at` | `(user_id, joined_at)`; `(org_id, joined_at)` |
//! | `org_invitations` | one invitation: `_id`, `org_id`, `email` (normalised), `roles`, `inviter`, `token_hash`, `created_at`, `expires_at`, `state` (`pending`, `accepted`, `revoked`), `pending_key` (`{org_id}:{email}`, only while pending) | unique `token_hash`; unique sparse `pending_key` (one pending invitation per address and organization); `(org_id, created_at)` |
//! | `org_roles` | one custom organization role: `_id` (`{org_id}:{name}`), `org_id`, `name`, `description`, `permissions`, `created_at`, `updated_at` | `(org_id, name)` |
//! | `passkeys` | one WebAuthn credential: `_id` (credential id, URL-safe base64), `user_id`, `name`, `credential` (the public key credential as `webauthn-rs` serialises it, JSON text), `counter`, `created_at`, `last_used_at` | `(user_id, created_at)` |
//! | `rate_limits` | one counter window: `_id` (`{key}\|{window start ms}`), `key`, `count` (hits, or settled failures), `last_at`, `leases: [{until, n}]` (reservations in flight, oldest first), `expires_at` | `key`; TTL on `expires_at` |
//!
//! A sign-in reads the user's factors and passkeys with one `aggregate`
//! (`$match` on `factors.user_id`, `$unionWith` the `passkeys` match), and
//! reserves its failure slot with one `findAndModify` (`$push` a lease,
//! upsert) that returns the window as it stood right after: the live
//! leases before its own are the attempts in flight, so the decision needs
//! no second read and no compare-and-set loop.
//!
//! Every guarantee is a single-document atomic operation, so no
//! transactions are needed (a standalone server works): uniqueness is a
//! unique index; rotation and single use are `findAndModify` with the
//! expected state in the filter; expiry is always part of the query (TTL
//! deletion is lazy and only reclaims space).
//!
//! # Queries and their indexes
//!
//! Every query is served by an index; `tests/mongo/indexes.rs` runs the
//! conformance suite under command monitoring and checks each filter sent
//! against the indexes created (and the server's `explain`).
//!
//! | Method | Collection: filter (sort) | Index |
//! |---|---|---|
//! | `find_user`, `update_user`, `patch_user`, `set_password_hash`, `bump_token_version`, `delete_user` | `users`: `_id` (+ `password_hash` guard) | `_id_` |
//! | `find_user_by_email` | `users`: `email_normalized` | `email_unique` |
//! | `list_users` | `users`: none, or `email_normalized` in [prefix, successor) (an index range, not a regex); after a cursor also `created_at ≥ t` and (`created_at > t` or `_id > id`) (sort `created_at, _id`) | `created` (a seek, never `skip` when paging with the cursor); with a prefix `email_unique` + a top-k sort, or `created` |
//! | `list_users` count | `users`: none / the prefix range | `created` / `email_unique` (hinted: counts index entries, never documents) |
//! | `insert_session` | — | unique `current_hash_unique` enforced |
//! | `rotate_refresh_token` | `sessions`: `current.hash`, `revoked_at`, `expires_at`; then `used.hash`, …; then `_id` (+ `current.hash`, `revoked_at`) | `current_hash_unique`; `used_hash`; `_id_` |
//! | `find_session` | `sessions`: `_id` | `_id_` |
//! | `find_session_user` | `sessions`: `_id`, `user_id`; `$lookup` `users._id` | `_id_`; `users._id_` |
//! | `list_user_sessions`, `revoke_user_sessions` | `sessions`: `user_id`, `revoked_at`, `expires_at` (sort `last_used_at` desc) | `user` (one user's sessions, sorted in memory) |
//! | `revoke_session` | `sessions`: `_id`, `revoked_at` | `_id_` |
//! | `find_one_time_token`, `consume_one_time_token`, `count_one_time_token_attempt` | `one_time_tokens`: `_id`, `purpose`, `expires_at` | `_id_` |
//! | `delete_one_time_tokens` | `one_time_tokens`: `user_id`, `purpose` | `user_purpose` |
//! | `delete_one_time_tokens_for_email` | `one_time_tokens`: `email`, `purpose` | `email_purpose` |
//! | `hit_counter`, `read_counter`, `reserve_counter`, `settle_counter` | `rate_limits`: `_id` | `_id_` |
//! | `reset_counter` | `rate_limits`: `key` | `key` |
//! | `find_linked_account` | `linked_accounts`: `provider`, `subject` | `provider_subject_unique` |
//! | `list_linked_accounts`, `delete_linked_account`, `delete_unverified_linked_accounts` | `linked_accounts`: `user_id` (+ `provider`, `email_verified`) (sort `provider`) | `user` (the single-link delete: `provider_subject_unique`) |
//! | factor writes (`put_pending_factor`, `confirm_factor`, `use_totp_step`, `use_recovery_code`, `delete_factor`) | `factors`: `_id` (+ state guards) | `_id_` |
//! | `list_factors`, `delete_factors`, `list_second_factors` | `factors`: `user_id`; `$unionWith` `passkeys`: `user_id` | `user`; `passkeys.user` |
//! | `find_passkey`, `rename_passkey`, `use_passkey`, `delete_passkey` | `passkeys`: `_id` (+ `user_id` / `counter`) | `_id_` |
//! | `list_passkeys`, `delete_passkeys` | `passkeys`: `user_id` (sort `created_at`, `_id`) | `user` (`user_id`, `created_at`) |
//! | `insert_role`, `find_roles`, `update_role`, `delete_role` | `roles`: `_id` (one name, or `$in` names) | `_id_` |
//! | `list_roles` | `roles`: none (sort `_id`) | `_id_` (hinted: every role in name order) |
//! | `add_user_role`, `remove_user_role` | `users`: `_id` | `_id_` |
//! | `remove_role_from_users` | `users`: `roles` | sparse `roles` (only the holders) |
//! | `find_org`, `rename_org`, `delete_org`; owner guard (`release_owner`) | `orgs`: `_id` (+ `owners`) | `_id_` |
//! | `find_membership`, `set_member_roles`, `remove_membership` | `org_members`: `_id` (`{org}:{user}`) | `_id_` |
//! | `list_user_memberships` | `org_members`: `user_id` (sort `joined_at`, `_id`) | `user` |
//! | `list_members`, `delete_org` clean-up | `org_members`, `org_invitations`, `org_roles`: `org_id` | each `org` |
//! | `insert_invitation` (expired slot release) | `org_invitations`: `pending_key`, `expires_at` | `pending_unique` |
//! | `find_invitation_by_token`, `accept_invitation` | `org_invitations`: `token_hash` (+ `state`, `expires_at`) | `token_unique` |
//! | `list_invitations` | `org_invitations`: `org_id`, `state`, `expires_at` (sort `created_at`, `_id`) | `org` |
//! | `revoke_invitation` | `org_invitations`: `_id`, `org_id`, `state` | `_id_` |
//! | `insert_org_role`, `update_org_role`, `delete_org_role` | `org_roles`: `_id` (`{org}:{name}`); holders: `org_members`: `org_id`, `roles` | `_id_`; `org` |
//! | `list_org_roles` | `org_roles`: `org_id` (sort `name`) | `org` (`org_id`, `name`) |
//! | `delete_user` owner lists | `orgs`: `owners` | `owners` |
//! | `delete_user` clean-up | `sessions`, `linked_accounts`, `factors`, `passkeys`, `one_time_tokens`: `user_id` | each `user` / `user_purpose` |
//!
//! SecantusDB, the wire-compatible test server, answers `explain` with
//! its real plans but uses an index only for a filter on one field (or a
//! compound equality): the multi-field filters above (`_id` plus a guard)
//! are collection scans there and index lookups on mongod.
//!
//! A session document keeps its current token hash and the last 64 used
//! ones, so reuse detection covers 64 rotations back; an older token is
//! answered as unknown.
//!
//! # Sharding
//!
//! Shard `users` on `email_normalized` (its unique index then starts with
//! the shard key), `sessions` on `_id` hashed or `user_id`, and
//! `one_time_tokens` on `_id`, `factors` on `_id`, `passkeys` on `_id`, `roles` on `_id` (or leave it unsharded: it is small),
//! `orgs` on `_id`, `org_members` on `_id` (an organization's member list
//! and a user's memberships are then broadcasts; shard on `org_id` instead,
//! with `_id` unchanged, if listing members dominates), `org_invitations` on
//! `pending_key` is impossible (sparse): leave it unsharded or shard on
//! `_id` and accept that the two unique indexes then need a single shard,
//! `org_roles` on `_id`
//! (sign-in finds a passkey by credential id; listing one user's is a
//! broadcast, rare and small). `find_user` by `_id` on a sharded `users`
//! collection is a broadcast query; shard on `_id` instead and keep email
//! uniqueness in a separate collection if that matters at your scale.

mod factors;
mod orgs;
mod passkeys;
mod roles;

use std::{fmt, time::Duration as StdDuration};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures_util::TryStreamExt;
use mongodb::{
    bson::{self, doc, Bson, Document},
    error::{ErrorKind, WriteFailure},
    options::{ClientOptions, Hint, IndexOptions, ReturnDocument},
    Client, Collection, Database, IndexModel,
};
use serde::{Deserialize, Serialize};

use super::{
    AccountStore, Backoff, ClientInfo, CounterHit, LinkedAccount, OneTimeToken, OneTimeTokenStore,
    PasswordGuard, RateLimitStore, RefreshToken, Reservation, Rotation, Session, SessionStore,
    StoreError, StoreResult, UserPatch, UserQuery, UserStore,
};
use crate::{
    token::TokenHash,
    user::{SessionId, User, UserId},
};

/// Used token hashes kept per session for reuse detection.
const USED_TOKENS_KEPT: i32 = 64;

/// Where and how to connect.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MongoConfig {
    /// Connection string, e.g. `mongodb://127.0.0.1:27017/?directConnection=true`.
    pub uri: String,
    /// Database name (default `portcullis`).
    pub database: String,
    /// Prefix of every collection name (default `portcullis_`).
    pub collection_prefix: String,
    /// Server selection and connect timeout in milliseconds (default
    /// 5000): how long a request waits for an unreachable server before it
    /// gets a 503.
    pub timeout_ms: u64,
}

impl Default for MongoConfig {
    fn default() -> Self {
        Self {
            uri: "mongodb://127.0.0.1:27017/?directConnection=true".into(),
            database: "portcullis".into(),
            collection_prefix: "portcullis_".into(),
            timeout_ms: 5000,
        }
    }
}

impl MongoConfig {
    /// Defaults with this connection string.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            ..Self::default()
        }
    }

    /// Sets the database name.
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }
}

/// The MongoDB store (feature `mongodb`).
#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    users: Collection<UserDoc>,
    sessions: Collection<SessionDoc>,
    one_time: Collection<OneTimeDoc>,
    accounts: Collection<AccountDoc>,
    counters: Collection<CounterDoc>,
    factors: Collection<factors::FactorDoc>,
    passkeys: Collection<passkeys::PasskeyDoc>,
    roles: Collection<roles::RoleDoc>,
    orgs: Collection<orgs::OrgDoc>,
    org_members: Collection<orgs::MemberDoc>,
    org_invitations: Collection<orgs::InvitationDoc>,
    org_roles: Collection<orgs::OrgRoleDoc>,
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("database", &self.db.name())
            .finish_non_exhaustive()
    }
}

impl MongoStore {
    /// Connects, checks the server answers (`ping`) and creates the indexes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached within
    /// the timeout; [`StoreError::Backend`] for a malformed URI or a refused
    /// index.
    pub async fn connect(config: &MongoConfig) -> StoreResult<Self> {
        let options = ClientOptions::parse(&config.uri).await.map_err(backend)?;
        Self::connect_with_options(options, config).await
    }

    /// As [`connect`](Self::connect), with driver options prepared by the
    /// caller (e.g. a command-event handler). The timeouts of `config` are
    /// applied on top.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn connect_with_options(
        mut options: ClientOptions,
        config: &MongoConfig,
    ) -> StoreResult<Self> {
        let timeout = StdDuration::from_millis(config.timeout_ms.max(1));
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        options.app_name.get_or_insert_with(|| "portcullis".into());
        let client = Client::with_options(options).map_err(backend)?;
        let store = Self::from_client(client, config);
        store
            .db
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(map_err)?;
        store.ensure_indexes().await?;
        Ok(store)
    }

    /// A store over an existing client (no I/O; call
    /// [`ensure_indexes`](Self::ensure_indexes) once at start).
    pub fn from_client(client: Client, config: &MongoConfig) -> Self {
        let db = client.database(&config.database);
        let name = |n: &str| format!("{}{n}", config.collection_prefix);
        Self {
            users: db.collection(&name("users")),
            sessions: db.collection(&name("sessions")),
            one_time: db.collection(&name("one_time_tokens")),
            accounts: db.collection(&name("linked_accounts")),
            counters: db.collection(&name("rate_limits")),
            factors: db.collection(&name("factors")),
            passkeys: db.collection(&name("passkeys")),
            roles: db.collection(&name("roles")),
            orgs: db.collection(&name("orgs")),
            org_members: db.collection(&name("org_members")),
            org_invitations: db.collection(&name("org_invitations")),
            org_roles: db.collection(&name("org_roles")),
            db,
            client,
        }
    }

    /// The driver client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Creates every index; idempotent.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] / [`StoreError::Backend`].
    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name(name.to_owned())
                        .build(),
                )
                .build()
        };
        let plain = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        };
        let ttl = |name: &str| {
            IndexModel::builder()
                .keys(doc! { "expires_at": 1 })
                .options(
                    IndexOptions::builder()
                        .name(name.to_owned())
                        .expire_after(StdDuration::ZERO)
                        .build(),
                )
                .build()
        };
        self.users
            .create_indexes([
                unique(doc! { "email_normalized": 1 }, "email_unique"),
                plain(doc! { "created_at": 1, "_id": 1 }, "created"),
            ])
            .await
            .map_err(map_err)?;
        self.sessions
            .create_indexes([
                unique(doc! { "current.hash": 1 }, "current_hash_unique"),
                plain(doc! { "used.hash": 1 }, "used_hash"),
                plain(doc! { "user_id": 1 }, "user"),
                ttl("expiry"),
            ])
            .await
            .map_err(map_err)?;
        self.one_time
            .create_indexes([
                plain(doc! { "user_id": 1, "purpose": 1 }, "user_purpose"),
                plain(doc! { "email": 1, "purpose": 1 }, "email_purpose"),
                ttl("expiry"),
            ])
            .await
            .map_err(map_err)?;
        self.counters
            .create_indexes([plain(doc! { "key": 1 }, "key"), ttl("expiry")])
            .await
            .map_err(map_err)?;
        self.accounts
            .create_indexes([
                unique(
                    doc! { "provider": 1, "subject": 1 },
                    "provider_subject_unique",
                ),
                plain(doc! { "user_id": 1 }, "user"),
            ])
            .await
            .map_err(map_err)?;
        self.factors
            .create_indexes([plain(doc! { "user_id": 1 }, "user")])
            .await
            .map_err(map_err)?;
        self.passkeys
            .create_indexes([plain(doc! { "user_id": 1, "created_at": 1 }, "user")])
            .await
            .map_err(map_err)?;
        roles::ensure_indexes(&self.users).await?;
        orgs::ensure_indexes(self).await?;
        Ok(())
    }
}

// ---- errors --------------------------------------------------------------

fn backend(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(err))
}

/// Driver error → store error: duplicate key → `Conflict`; unreachable
/// server → `Unavailable`; anything else → `Backend`.
fn map_err(err: mongodb::error::Error) -> StoreError {
    let duplicate = match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::Command(e) => e.code == 11000,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().any(|e| e.code == 11000)),
        _ => false,
    };
    if duplicate {
        return StoreError::Conflict("duplicate key");
    }
    // Server codes meaning "the server cannot serve this right now":
    // unreachable or shutting down (6, 7, 89, 91, 9001, 11600, 11602),
    // not primary (189, 10107, 13435, 13436), time limits and lock
    // contention (24, 46, 50, 262), write conflicts (112), and the server's
    // own internal failure (1), e.g. a storage-engine panic.
    const TRANSIENT: [i32; 18] = [
        1, 6, 7, 24, 46, 50, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 134,
    ];
    let unavailable = matches!(
        err.kind.as_ref(),
        ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::InvalidResponse { .. }
            | ErrorKind::DnsResolve { .. }
    ) || matches!(err.kind.as_ref(), ErrorKind::Command(e) if TRANSIENT.contains(&e.code))
        || err.contains_label("RetryableWriteError")
        || err.contains_label("TransientTransactionError");
    if unavailable {
        StoreError::Unavailable(Box::new(err))
    } else {
        StoreError::Backend(Box::new(err))
    }
}

/// The least string greater than every string starting with `prefix`:
/// `prefix` with its last character incremented (characters compare by
/// code point, as UTF-8 bytes do), dropping trailing `char::MAX`; `None`
/// when there is none (every character is `char::MAX`).
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

// ---- documents -----------------------------------------------------------

fn date(dt: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(dt.timestamp_millis())
}

fn chrono(dt: bson::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(dt.timestamp_millis()).unwrap_or(DateTime::UNIX_EPOCH)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserDoc {
    #[serde(rename = "_id")]
    id: String,
    email: String,
    email_normalized: String,
    name: Option<String>,
    email_verified: bool,
    is_active: bool,
    is_superuser: bool,
    password_hash: Option<String>,
    token_version: i64,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
    #[serde(default)]
    metadata: Document,
    /// Absent in documents written before server-only metadata existed.
    #[serde(default)]
    app_metadata: Document,
    /// Absent in documents written before roles existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
}

impl UserDoc {
    fn from_user(user: &User) -> StoreResult<Self> {
        Ok(Self {
            id: user.id.to_string(),
            email: user.email.clone(),
            email_normalized: user.email_normalized.clone(),
            name: user.name.clone(),
            email_verified: user.email_verified,
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            password_hash: user.password_hash.clone(),
            token_version: i64::try_from(user.token_version).map_err(backend)?,
            created_at: date(user.created_at),
            updated_at: date(user.updated_at),
            metadata: bson::to_document(&user.metadata).map_err(backend)?,
            app_metadata: bson::to_document(&user.app_metadata).map_err(backend)?,
            roles: user.roles.clone(),
        })
    }

    fn into_user(self) -> StoreResult<User> {
        let map = |doc: Document| -> StoreResult<serde_json::Map<String, serde_json::Value>> {
            Ok(
                match bson::from_document::<serde_json::Value>(doc).map_err(backend)? {
                    serde_json::Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                },
            )
        };
        let metadata = map(self.metadata)?;
        let app_metadata = map(self.app_metadata)?;
        Ok(User {
            id: UserId::new(self.id),
            email: self.email,
            email_normalized: self.email_normalized,
            name: self.name,
            email_verified: self.email_verified,
            is_active: self.is_active,
            is_superuser: self.is_superuser,
            password_hash: self.password_hash,
            token_version: u64::try_from(self.token_version).unwrap_or_default(),
            created_at: chrono(self.created_at),
            updated_at: chrono(self.updated_at),
            metadata,
            app_metadata,
            roles: self.roles,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CurrentToken {
    hash: String,
    issued_at: bson::DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UsedToken {
    hash: String,
    used_at: bson::DateTime,
    replaced_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionDoc {
    #[serde(rename = "_id")]
    id: String,
    user_id: String,
    provider: String,
    created_at: bson::DateTime,
    expires_at: bson::DateTime,
    last_used_at: bson::DateTime,
    revoked_at: Option<bson::DateTime>,
    token_version: i64,
    client: ClientInfo,
    current: CurrentToken,
    #[serde(default)]
    used: Vec<UsedToken>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org: Option<String>,
}

impl SessionDoc {
    fn into_session(self) -> Session {
        Session {
            id: SessionId::new(self.id),
            user_id: UserId::new(self.user_id),
            provider: self.provider,
            created_at: chrono(self.created_at),
            expires_at: chrono(self.expires_at),
            last_used_at: chrono(self.last_used_at),
            revoked_at: self.revoked_at.map(chrono),
            token_version: u64::try_from(self.token_version).unwrap_or_default(),
            client: self.client,
            amr: self.amr,
            org: self.org,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OneTimeDoc {
    #[serde(rename = "_id")]
    hash: String,
    purpose: String,
    user_id: Option<String>,
    email: Option<String>,
    data: Bson,
    created_at: bson::DateTime,
    expires_at: bson::DateTime,
    #[serde(default)]
    attempts: i64,
    /// The owner's `token_version` when issued (account-changing tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch: Option<i64>,
}

impl OneTimeDoc {
    fn into_token(self) -> StoreResult<OneTimeToken> {
        let created = chrono(self.created_at);
        let mut token = OneTimeToken::new(
            TokenHash::from_hex(self.hash),
            self.purpose,
            created,
            chrono(self.expires_at) - created,
        );
        token.user_id = self.user_id.map(UserId::new);
        token.email = self.email;
        token.data = bson::from_bson(self.data).map_err(backend)?;
        token.attempts = u32::try_from(self.attempts).unwrap_or(u32::MAX);
        token.epoch = self.epoch.map(|e| u64::try_from(e).unwrap_or(u64::MAX));
        Ok(token)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CounterDoc {
    /// `key|window start in ms`.
    #[serde(rename = "_id")]
    id: String,
    key: String,
    /// Hits ([`RateLimitStore::hit_counter`]) or settled failures
    /// ([`RateLimitStore::settle_counter`]).
    count: i64,
    /// The last hit, or the last failure.
    last_at: bson::DateTime,
    /// Written by windows stored before the next allowed time was derived
    /// from `count` and `last_at`; still honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_at: Option<bson::DateTime>,
    /// The reservations in flight, oldest first: `{ "until": <date>,
    /// "n": <nonce> }`, until when each holds its slot (windows stored
    /// before the nonce hold bare dates; both are read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    leases: Vec<Bson>,
    expires_at: bson::DateTime,
}

impl CounterDoc {
    /// Whether a lease expired before `now` (its caller never settled).
    fn has_expired_leases(&self, now: DateTime<Utc>) -> bool {
        self.leases
            .iter()
            .any(|lease| lease_until(lease).is_some_and(|until| until <= now))
    }

    /// The reservations in flight that are still live at `now` before the
    /// one with `nonce` (all of them when it is not there).
    fn in_flight_before(&self, nonce: i64, now: DateTime<Utc>) -> u32 {
        let live = self
            .leases
            .iter()
            .take_while(|lease| lease_nonce(lease) != Some(nonce))
            .filter(|lease| lease_until(lease).is_some_and(|until| until > now))
            .count();
        u32::try_from(live).unwrap_or(u32::MAX)
    }

    /// No attempt is reserved before this: the last failure plus the
    /// backoff's delay after `count` failures (none before the first).
    fn next_allowed(&self, backoff: &Backoff) -> Option<DateTime<Utc>> {
        let failures = u32::try_from(self.count).unwrap_or(u32::MAX);
        let derived = (failures > 0).then(|| chrono(self.last_at) + backoff.delay_after(failures));
        derived.max(self.next_at.map(chrono))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccountDoc {
    provider: String,
    subject: String,
    user_id: String,
    email: Option<String>,
    /// Absent in links stored before it existed: read as unverified.
    #[serde(default)]
    email_verified: bool,
    created_at: bson::DateTime,
}

impl AccountDoc {
    fn into_account(self) -> LinkedAccount {
        LinkedAccount::new(
            self.provider,
            self.subject,
            UserId::new(self.user_id),
            self.email,
            chrono(self.created_at),
        )
        .with_email_verified(self.email_verified)
    }
}

// ---- users ---------------------------------------------------------------

#[async_trait]
impl UserStore for MongoStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        self.users
            .insert_one(UserDoc::from_user(user)?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn find_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        self.users
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?
            .map(UserDoc::into_user)
            .transpose()
    }

    async fn find_user_by_email(&self, email_normalized: &str) -> StoreResult<Option<User>> {
        self.users
            .find_one(doc! { "email_normalized": email_normalized })
            .await
            .map_err(map_err)?
            .map(UserDoc::into_user)
            .transpose()
    }

    async fn update_user(&self, user: &User) -> StoreResult<bool> {
        let result = self
            .users
            .replace_one(doc! { "_id": user.id.as_str() }, UserDoc::from_user(user)?)
            .await
            .map_err(map_err)?;
        Ok(result.matched_count == 1)
    }

    async fn patch_user(
        &self,
        id: &UserId,
        patch: &UserPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let mut set = doc! { "updated_at": date(now) };
        if let Some((email, normalized)) = &patch.email {
            set.insert("email", email.as_str());
            set.insert("email_normalized", normalized.as_str());
        }
        if let Some(name) = &patch.name {
            set.insert("name", name.as_deref());
        }
        if let Some(metadata) = &patch.metadata {
            set.insert("metadata", bson::to_document(metadata).map_err(backend)?);
        }
        if let Some(app_metadata) = &patch.app_metadata {
            set.insert(
                "app_metadata",
                bson::to_document(app_metadata).map_err(backend)?,
            );
        }
        if let Some(value) = patch.email_verified {
            set.insert("email_verified", value);
        }
        if let Some(value) = patch.is_active {
            set.insert("is_active", value);
        }
        if let Some(value) = patch.is_superuser {
            set.insert("is_superuser", value);
        }
        let mut update = doc! { "$set": set };
        if patch.bump_token_version {
            update.insert("$inc", doc! { "token_version": 1_i64 });
        }
        self.users
            .find_one_and_update(doc! { "_id": id.as_str() }, update)
            .return_document(ReturnDocument::After)
            .await
            // `_id` never changes, so the only unique index a patch can
            // collide on is the email's.
            .map_err(|err| match map_err(err) {
                StoreError::Conflict(_) => StoreError::Conflict("email"),
                other => other,
            })?
            .map(UserDoc::into_user)
            .transpose()
    }

    async fn set_password_hash(
        &self,
        id: &UserId,
        guard: PasswordGuard<'_>,
        new_hash: &str,
        bump_token_version: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let mut filter = doc! { "_id": id.as_str() };
        match guard {
            PasswordGuard::Any => {}
            // Matches a null and a missing field alike.
            PasswordGuard::Unset => {
                filter.insert("password_hash", Bson::Null);
            }
            PasswordGuard::Equals(expected) => {
                filter.insert("password_hash", expected);
            }
        }
        let mut update = doc! { "$set": { "password_hash": new_hash, "updated_at": date(now) } };
        if bump_token_version {
            update.insert("$inc", doc! { "token_version": 1_i64 });
        }
        self.users
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_err)?
            .map(UserDoc::into_user)
            .transpose()
    }

    async fn bump_token_version(
        &self,
        id: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        self.users
            .find_one_and_update(
                doc! { "_id": id.as_str() },
                doc! { "$inc": { "token_version": 1_i64 }, "$set": { "updated_at": date(now) } },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_err)?
            .map(UserDoc::into_user)
            .transpose()
    }

    async fn delete_user(&self, id: &UserId) -> StoreResult<bool> {
        // The user goes first: with it gone, every session and link is
        // unusable even if the clean-up below is cut off.
        let deleted = self
            .users
            .delete_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?
            .deleted_count
            == 1;
        let user = doc! { "user_id": id.as_str() };
        self.sessions
            .delete_many(user.clone())
            .await
            .map_err(map_err)?;
        self.accounts
            .delete_many(user.clone())
            .await
            .map_err(map_err)?;
        self.factors
            .delete_many(user.clone())
            .await
            .map_err(map_err)?;
        self.passkeys
            .delete_many(user.clone())
            .await
            .map_err(map_err)?;
        self.one_time
            .delete_many(user.clone())
            .await
            .map_err(map_err)?;
        self.org_members.delete_many(user).await.map_err(map_err)?;
        self.orgs
            .update_many(
                doc! { "owners": id.as_str() },
                doc! { "$pull": { "owners": id.as_str() } },
            )
            .await
            .map_err(map_err)?;
        Ok(deleted)
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, Option<u64>)> {
        let mut filter = doc! {};
        if let Some(prefix) = query.email_prefix.as_deref().filter(|p| !p.is_empty()) {
            // The strings starting with `prefix` are exactly those in
            // [prefix, successor): a range scan of the unique
            // `email_normalized` index on any planner (an anchored regex
            // is one on mongod, a collection scan on simpler servers).
            let mut range = doc! { "$gte": prefix };
            if let Some(end) = prefix_successor(prefix) {
                range.insert("$lt", end);
            }
            filter.insert("email_normalized", range);
        }
        let total = if query.count {
            // Counted on an index (`email_unique` for a prefix, else
            // `created`), never by scanning the documents.
            let hint = if filter.is_empty() {
                "created"
            } else {
                "email_unique"
            };
            Some(
                self.users
                    .count_documents(filter.clone())
                    .hint(Hint::Name(hint.into()))
                    .await
                    .map_err(map_err)?,
            )
        } else {
            None
        };
        if let Some(after) = &query.after {
            // A seek on the `created` index: later creation time, or the
            // same time and a greater id.
            let at = date(after.created_at);
            filter.insert("created_at", doc! { "$gte": at });
            filter.insert(
                "$or",
                vec![
                    doc! { "created_at": { "$gt": at } },
                    doc! { "_id": { "$gt": after.id.as_str() } },
                ],
            );
        }
        let docs: Vec<UserDoc> = self
            .users
            .find(filter)
            .sort(doc! { "created_at": 1, "_id": 1 })
            .skip(query.offset)
            .limit(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let users = docs
            .into_iter()
            .map(UserDoc::into_user)
            .collect::<StoreResult<_>>()?;
        Ok((users, total))
    }
}

// ---- sessions ------------------------------------------------------------

#[async_trait]
impl SessionStore for MongoStore {
    async fn insert_session(&self, session: &Session, first: &RefreshToken) -> StoreResult<()> {
        let doc = SessionDoc {
            id: session.id.to_string(),
            user_id: session.user_id.to_string(),
            provider: session.provider.clone(),
            created_at: date(session.created_at),
            expires_at: date(session.expires_at),
            last_used_at: date(session.last_used_at),
            revoked_at: session.revoked_at.map(date),
            token_version: i64::try_from(session.token_version).map_err(backend)?,
            client: session.client.clone(),
            current: CurrentToken {
                hash: first.hash.as_str().to_owned(),
                issued_at: date(first.issued_at),
            },
            used: Vec::new(),
            amr: session.amr.clone(),
            org: session.org.clone(),
        };
        self.sessions.insert_one(doc).await.map_err(map_err)?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        next: &TokenHash,
        now: DateTime<Utc>,
        grace: Duration,
    ) -> StoreResult<Rotation> {
        let now_b = date(now);
        // The common case, one round trip: the presented token is current.
        let rotated = self
            .sessions
            .find_one_and_update(
                doc! {
                    "current.hash": presented.as_str(),
                    "revoked_at": Bson::Null,
                    "expires_at": { "$gt": now_b },
                },
                doc! {
                    "$set": {
                        "current": { "hash": next.as_str(), "issued_at": now_b },
                        "last_used_at": now_b,
                    },
                    "$push": { "used": {
                        "$each": [{ "hash": presented.as_str(), "used_at": now_b, "replaced_by": next.as_str() }],
                        "$slice": -USED_TOKENS_KEPT,
                    }},
                },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_err)?;
        if let Some(doc) = rotated {
            return Ok(Rotation::Rotated(doc.into_session()));
        }
        // Not current: a used token (reuse, or a retry inside the grace
        // window), or unknown / dead.
        let Some(doc) = self
            .sessions
            .find_one(doc! {
                "used.hash": presented.as_str(),
                "revoked_at": Bson::Null,
                "expires_at": { "$gt": now_b },
            })
            .await
            .map_err(map_err)?
        else {
            return Ok(Rotation::Invalid);
        };
        let used = doc.used.iter().rev().find(|u| u.hash == presented.as_str());
        let retry_of_lost_answer = used.is_some_and(|u| {
            now - chrono(u.used_at) < grace
                && u.replaced_by.as_deref() == Some(doc.current.hash.as_str())
        });
        if retry_of_lost_answer {
            // Supersede the unused replacement (its reuse now revokes) and
            // make `next` current, only if nothing moved meanwhile.
            let superseded = doc.current.hash.clone();
            let forked = self
                .sessions
                .find_one_and_update(
                    doc! { "_id": &doc.id, "current.hash": &superseded, "revoked_at": Bson::Null },
                    doc! {
                        "$set": {
                            "current": { "hash": next.as_str(), "issued_at": now_b },
                            "last_used_at": now_b,
                        },
                        "$push": { "used": {
                            "$each": [{ "hash": &superseded, "used_at": bson::DateTime::from_millis(0), "replaced_by": Bson::Null }],
                            "$slice": -USED_TOKENS_KEPT,
                        }},
                    },
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(map_err)?;
            if let Some(doc) = forked {
                return Ok(Rotation::Rotated(doc.into_session()));
            }
        }
        let revoked = self
            .sessions
            .find_one_and_update(
                doc! { "_id": &doc.id, "revoked_at": Bson::Null },
                doc! { "$set": { "revoked_at": now_b } },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_err)?;
        Ok(match revoked {
            Some(doc) => Rotation::Reused(doc.into_session()),
            None => Rotation::Invalid,
        })
    }

    async fn find_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        Ok(self
            .sessions
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?
            .map(SessionDoc::into_session))
    }

    async fn find_session_user(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
    ) -> StoreResult<Option<(User, Session)>> {
        // One round trip: the session with its user joined in.
        let pipeline = [
            doc! { "$match": { "_id": session_id.as_str(), "user_id": user_id.as_str() } },
            doc! { "$project": { "used": 0 } },
            doc! { "$lookup": {
                "from": self.users.name(),
                "localField": "user_id",
                "foreignField": "_id",
                "as": "user",
            }},
        ];
        let mut cursor = self.sessions.aggregate(pipeline).await.map_err(map_err)?;
        let Some(mut joined) = cursor.try_next().await.map_err(map_err)? else {
            return Ok(None);
        };
        let user = match joined.remove("user") {
            Some(Bson::Array(mut users)) if !users.is_empty() => users.swap_remove(0),
            _ => return Ok(None),
        };
        let user: UserDoc = bson::from_bson(user).map_err(backend)?;
        let session: SessionDoc = bson::from_document(joined).map_err(backend)?;
        Ok(Some((user.into_user()?, session.into_session())))
    }

    async fn list_user_sessions(
        &self,
        user_id: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Session>> {
        let docs: Vec<SessionDoc> = self
            .sessions
            .find(doc! {
                "user_id": user_id.as_str(),
                "revoked_at": Bson::Null,
                "expires_at": { "$gt": date(now) },
            })
            .projection(doc! { "used": 0 })
            .sort(doc! { "last_used_at": -1, "_id": -1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        Ok(docs.into_iter().map(SessionDoc::into_session).collect())
    }

    async fn revoke_session(&self, id: &SessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        let result = self
            .sessions
            .update_one(
                doc! { "_id": id.as_str(), "revoked_at": Bson::Null },
                doc! { "$set": { "revoked_at": date(now) } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.modified_count == 1)
    }

    async fn set_session_org(&self, id: &SessionId, org: Option<&str>) -> StoreResult<bool> {
        let result = self
            .sessions
            .update_one(
                doc! { "_id": id.as_str() },
                doc! { "$set": { "org": org.map_or(Bson::Null, Bson::from) } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.matched_count == 1)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &UserId,
        keep: Option<&SessionId>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut filter = doc! {
            "user_id": user_id.as_str(),
            "revoked_at": Bson::Null,
            "expires_at": { "$gt": date(now) },
        };
        if let Some(keep) = keep {
            filter.insert("_id", doc! { "$ne": keep.as_str() });
        }
        let result = self
            .sessions
            .update_many(filter, doc! { "$set": { "revoked_at": date(now) } })
            .await
            .map_err(map_err)?;
        Ok(result.modified_count)
    }
}

// ---- rate limits ---------------------------------------------------------

/// How often an upsert that lost a race on a new window's `_id` tries
/// again (the window exists then, so once is enough on a real server).
const UPSERT_RETRIES: u32 = 4;

fn lease_until(lease: &Bson) -> Option<DateTime<Utc>> {
    match lease {
        Bson::DateTime(until) => Some(chrono(*until)),
        Bson::Document(lease) => lease.get_datetime("until").ok().map(|until| chrono(*until)),
        _ => None,
    }
}

/// A caller's lease id as BSON stores it (the same 64 bits).
fn lease_nonce_of(lease: u64) -> i64 {
    i64::from_ne_bytes(lease.to_ne_bytes())
}

fn lease_nonce(lease: &Bson) -> Option<i64> {
    match lease {
        Bson::Document(lease) => lease.get_i64("n").ok(),
        _ => None,
    }
}

fn counter_id(key: &str, window_start: DateTime<Utc>) -> String {
    format!("{key}|{}", window_start.timestamp_millis())
}

#[async_trait]
impl RateLimitStore for MongoStore {
    async fn hit_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<CounterHit> {
        // An atomic increment of an existing window; the first hit inserts
        // it, and a racing first hit that loses on the unique `_id` goes back
        // to incrementing.
        let id = counter_id(key, window_start);
        for _ in 0..4 {
            let updated = self
                .counters
                .find_one_and_update(
                    doc! { "_id": &id },
                    doc! { "$inc": { "count": 1_i64 }, "$set": { "last_at": date(now) } },
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(map_err)?;
            if let Some(doc) = updated {
                return Ok(CounterHit {
                    count: u32::try_from(doc.count).unwrap_or(u32::MAX),
                });
            }
            let fresh = CounterDoc {
                id: id.clone(),
                key: key.to_owned(),
                count: 1,
                last_at: date(now),
                next_at: None,
                leases: Vec::new(),
                expires_at: date(expires_at),
            };
            match self.counters.insert_one(fresh).await.map_err(map_err) {
                Ok(_) => return Ok(CounterHit { count: 1 }),
                Err(StoreError::Conflict(_)) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Backend("rate-limit counter contention".into()))
    }

    async fn read_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
    ) -> StoreResult<Option<(u32, DateTime<Utc>)>> {
        Ok(self
            .counters
            .find_one(doc! { "_id": counter_id(key, window_start) })
            .await
            .map_err(map_err)?
            .map(|doc| {
                (
                    u32::try_from(doc.count).unwrap_or(u32::MAX),
                    chrono(doc.last_at),
                )
            }))
    }

    async fn reset_counter(&self, key: &str) -> StoreResult<()> {
        self.counters
            .delete_many(doc! { "key": key })
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn reserve_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        backoff: Backoff,
        lease: u64,
    ) -> StoreResult<Reservation> {
        // One command on the way in (issue 14): push our lease and read the
        // window as it stood right after, atomically. Leases leave the array
        // only as their own caller's (settled, or refused) or once expired,
        // so the live leases before ours are exactly the attempts in flight
        // that came first, and of any number of concurrent callers only as
        // many decide `Reserved` as the backoff allows. A refused caller
        // pulls its own lease back (a second command, on that path only).
        let id = counter_id(key, window_start);
        let nonce = lease_nonce_of(lease);
        let pushed = doc! { "until": date(now + backoff.lease), "n": nonce };
        let mut tries = 0;
        let window = loop {
            let answer = self
                .counters
                .find_one_and_update(
                    doc! { "_id": &id },
                    doc! {
                        "$push": { "leases": &pushed },
                        "$setOnInsert": {
                            "key": key,
                            "count": 0_i64,
                            "last_at": date(now),
                            "expires_at": date(expires_at),
                        },
                    },
                )
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await
                .map_err(map_err);
            match answer {
                Ok(Some(window)) => break window,
                // A wire server (SecantusDB) answers no document when an
                // upsert found none but then updated the one a racing first
                // attempt inserted: the push landed, so read the window and
                // find our lease by its nonce.
                Ok(None) => {
                    if let Some(window) = self
                        .counters
                        .find_one(doc! { "_id": &id })
                        .await
                        .map_err(map_err)?
                    {
                        break window;
                    }
                    // Dropped meanwhile (a reset), our lease with it.
                    if tries >= UPSERT_RETRIES {
                        return Err(StoreError::Backend("rate-limit window contention".into()));
                    }
                    tries += 1;
                }
                // Two first attempts raced on the window's `_id` and this
                // one lost (nothing written): push to the winner's window.
                Err(StoreError::Conflict(_)) if tries < UPSERT_RETRIES => tries += 1,
                Err(err) => return Err(err),
            }
        };
        if window.has_expired_leases(now) {
            // A node died mid-check: its lease no longer counts; drop it so
            // the array stays small (rare, so a command of its own).
            self.counters
                .update_one(
                    doc! { "_id": &id },
                    doc! { "$pull": { "leases": { "until": { "$lte": date(now) } } } },
                )
                .await
                .map_err(map_err)?;
            // Bare-date leases of windows stored before the nonce.
            self.counters
                .update_one(
                    doc! { "_id": &id },
                    doc! { "$pull": { "leases": { "$lte": date(now) } } },
                )
                .await
                .map_err(map_err)?;
        }
        let decision = backoff.decide(
            u32::try_from(window.count).unwrap_or(u32::MAX),
            window.in_flight_before(nonce, now),
            window.next_allowed(&backoff),
            now,
        );
        if !matches!(decision, Reservation::Reserved { .. }) {
            self.release_lease(&id, nonce, None).await?;
        }
        Ok(decision)
    }

    async fn settle_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        _backoff: Backoff,
        failed: bool,
        lease: u64,
    ) -> StoreResult<()> {
        let id = counter_id(key, window_start);
        let nonce = lease_nonce_of(lease);
        if !failed {
            return self.release_lease(&id, nonce, None).await;
        }
        // The next allowed time follows from the failures and the last one
        // (`CounterDoc::next_allowed`), so one write settles; a window
        // dropped meanwhile (a reset) starts again.
        self.release_lease(
            &id,
            nonce,
            Some(doc! {
                "$inc": { "count": 1_i64 },
                "$max": { "last_at": date(now) },
                "$setOnInsert": { "key": key, "expires_at": date(expires_at) },
            }),
        )
        .await
    }
}

impl MongoStore {
    /// Pulls the lease `nonce` out of the window `id` in one write (only
    /// that caller's own); with `failure` (the `$inc` / `$max` /
    /// `$setOnInsert` of a failed attempt) it also counts the failure,
    /// inserting the window if a reset dropped it.
    async fn release_lease(
        &self,
        id: &str,
        nonce: i64,
        failure: Option<Document>,
    ) -> StoreResult<()> {
        let upsert = failure.is_some();
        let mut update = failure.unwrap_or_default();
        update.insert("$pull", doc! { "leases": { "n": nonce } });
        let mut tries = 0;
        loop {
            match self
                .counters
                .update_one(doc! { "_id": id }, update.clone())
                .upsert(upsert)
                .await
                .map_err(map_err)
            {
                Ok(_) => return Ok(()),
                // A racing upsert of the same dropped window won: update it.
                Err(StoreError::Conflict(_)) if tries < UPSERT_RETRIES => tries += 1,
                Err(err) => return Err(err),
            }
        }
    }
}

// ---- one-time tokens -----------------------------------------------------

#[async_trait]
impl OneTimeTokenStore for MongoStore {
    async fn insert_one_time_token(&self, token: &OneTimeToken) -> StoreResult<()> {
        let doc = OneTimeDoc {
            hash: token.hash.as_str().to_owned(),
            purpose: token.purpose.clone(),
            user_id: token.user_id.as_ref().map(ToString::to_string),
            email: token.email.clone(),
            data: bson::to_bson(&token.data).map_err(backend)?,
            created_at: date(token.created_at),
            expires_at: date(token.expires_at),
            attempts: i64::from(token.attempts),
            epoch: token.epoch.map(|e| i64::try_from(e).unwrap_or(i64::MAX)),
        };
        self.one_time.insert_one(doc).await.map_err(map_err)?;
        Ok(())
    }

    async fn find_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OneTimeToken>> {
        self.one_time
            .find_one(doc! {
                "_id": hash.as_str(),
                "purpose": purpose,
                "expires_at": { "$gt": date(now) },
            })
            .await
            .map_err(map_err)?
            .map(OneTimeDoc::into_token)
            .transpose()
    }

    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OneTimeToken>> {
        self.one_time
            .find_one_and_delete(doc! {
                "_id": hash.as_str(),
                "purpose": purpose,
                "expires_at": { "$gt": date(now) },
            })
            .await
            .map_err(map_err)?
            .map(OneTimeDoc::into_token)
            .transpose()
    }

    async fn delete_one_time_tokens_for_email(
        &self,
        email: &str,
        purpose: &str,
    ) -> StoreResult<u64> {
        let result = self
            .one_time
            .delete_many(doc! { "email": email, "purpose": purpose })
            .await
            .map_err(map_err)?;
        Ok(result.deleted_count)
    }

    async fn count_one_time_token_attempt(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<u32>> {
        Ok(self
            .one_time
            .find_one_and_update(
                doc! {
                    "_id": hash.as_str(),
                    "purpose": purpose,
                    "expires_at": { "$gt": date(now) },
                },
                doc! { "$inc": { "attempts": 1_i64 } },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_err)?
            .map(|doc| u32::try_from(doc.attempts).unwrap_or(u32::MAX)))
    }

    async fn delete_one_time_tokens(&self, user_id: &UserId, purpose: &str) -> StoreResult<u64> {
        let result = self
            .one_time
            .delete_many(doc! { "user_id": user_id.as_str(), "purpose": purpose })
            .await
            .map_err(map_err)?;
        Ok(result.deleted_count)
    }
}

// ---- linked accounts -----------------------------------------------------

#[async_trait]
impl AccountStore for MongoStore {
    async fn insert_linked_account(&self, account: &LinkedAccount) -> StoreResult<()> {
        let doc = AccountDoc {
            provider: account.provider.clone(),
            subject: account.subject.clone(),
            user_id: account.user_id.to_string(),
            email: account.email.clone(),
            email_verified: account.email_verified,
            created_at: date(account.created_at),
        };
        self.accounts.insert_one(doc).await.map_err(map_err)?;
        Ok(())
    }

    async fn find_linked_account(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<LinkedAccount>> {
        Ok(self
            .accounts
            .find_one(doc! { "provider": provider, "subject": subject })
            .await
            .map_err(map_err)?
            .map(AccountDoc::into_account))
    }

    async fn list_linked_accounts(&self, user_id: &UserId) -> StoreResult<Vec<LinkedAccount>> {
        let docs: Vec<AccountDoc> = self
            .accounts
            .find(doc! { "user_id": user_id.as_str() })
            .sort(doc! { "provider": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        Ok(docs.into_iter().map(AccountDoc::into_account).collect())
    }

    async fn delete_linked_account(&self, user_id: &UserId, provider: &str) -> StoreResult<bool> {
        let result = self
            .accounts
            .delete_one(doc! { "user_id": user_id.as_str(), "provider": provider })
            .await
            .map_err(map_err)?;
        Ok(result.deleted_count == 1)
    }
    async fn delete_unverified_linked_accounts(
        &self,
        user_id: &UserId,
    ) -> StoreResult<Vec<LinkedAccount>> {
        // `$ne: true` also matches links stored without the field.
        let unverified = doc! { "user_id": user_id.as_str(), "email_verified": { "$ne": true } };
        let docs: Vec<AccountDoc> = self
            .accounts
            .find(unverified)
            .sort(doc! { "provider": 1, "subject": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let mut removed = Vec::new();
        for link in docs {
            // One delete per link: of concurrent callers, only the one whose
            // delete removed it reports it.
            let result = self
                .accounts
                .delete_one(doc! {
                    "provider": link.provider.as_str(),
                    "subject": link.subject.as_str(),
                    "user_id": user_id.as_str(),
                    "email_verified": { "$ne": true },
                })
                .await
                .map_err(map_err)?;
            if result.deleted_count == 1 {
                removed.push(link.into_account());
            }
        }
        Ok(removed)
    }
}

//! Passkeys (WebAuthn credentials) as a store keeps them: one record per
//! credential, many per user.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::user::UserId;

/// One registered passkey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PasskeyRecord {
    /// The credential id (URL-safe base64, no padding), unique across the
    /// store: one credential belongs to one account.
    pub id: String,
    /// The owner.
    pub user_id: UserId,
    /// What the owner calls it ("Laptop", "YubiKey").
    pub name: String,
    /// The public key credential as `webauthn-rs` serialises it: public
    /// key, algorithm, signature counter, flags. Nothing secret.
    pub credential: serde_json::Value,
    /// The authenticator's signature counter as last accepted: an
    /// assertion must carry a greater one (a lower or equal one from a
    /// counting authenticator means a clone), both 0 for authenticators
    /// that do not count.
    pub counter: u32,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// The last successful use.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl PasskeyRecord {
    /// A freshly registered passkey.
    pub fn new(
        id: String,
        user_id: UserId,
        name: String,
        credential: serde_json::Value,
        counter: u32,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            user_id,
            name,
            credential,
            counter,
            created_at: DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now),
            last_used_at: None,
        }
    }
}

/// Passkeys. A use is one compare-and-set on the signature counter, so of
/// two assertions carrying the same counter (a cloned authenticator, or a
/// race) only one is accepted.
///
/// # Errors
///
/// As [`UserStore`](super::UserStore).
#[async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
    /// Stores a new passkey; [`StoreError::Conflict`](super::StoreError::Conflict)
    /// when its credential id is registered already (to anyone).
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()>;

    /// The passkey with this credential id.
    async fn find_passkey(&self, id: &str) -> StoreResult<Option<PasskeyRecord>>;

    /// The user's passkeys, oldest first.
    async fn list_passkeys(&self, user_id: &UserId) -> StoreResult<Vec<PasskeyRecord>>;

    /// Renames the user's passkey `id`. Returns whether it exists.
    async fn rename_passkey(&self, user_id: &UserId, id: &str, name: &str) -> StoreResult<bool>;

    /// Records a use of passkey `id` if its stored counter is still
    /// `seen_counter` (the one the assertion was checked against): stores
    /// `credential` and `counter` and the time. Returns whether it did.
    async fn use_passkey(
        &self,
        id: &str,
        seen_counter: u32,
        credential: &serde_json::Value,
        counter: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Deletes the user's passkey `id`. Returns whether it existed.
    async fn delete_passkey(&self, user_id: &UserId, id: &str) -> StoreResult<bool>;

    /// Deletes every passkey of the user. Returns how many.
    async fn delete_passkeys(&self, user_id: &UserId) -> StoreResult<u64>;
}

//! Roles as a store keeps them: the definitions created at run time, and
//! the role names on each user.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::{authz::Permission, user::UserId};

/// A role: a named set of permissions.
///
/// Roles from config ([`AuthConfig::roles`](crate::AuthConfig::roles)) live
/// in the manager and are read-only; roles created at run time live in the
/// store. A name is one or the other, never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Role {
    /// Unique name ([`check_role_name`](crate::authz::check_role_name)).
    pub name: String,
    /// What it is for, shown to administrators.
    pub description: Option<String>,
    /// What it grants.
    pub permissions: Vec<Permission>,
    /// Creation time (config roles: when the manager was built).
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Role {
    /// A role created at `now`.
    pub fn new(
        name: impl Into<String>,
        description: Option<String>,
        permissions: Vec<Permission>,
        now: DateTime<Utc>,
    ) -> Self {
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        Self {
            name: name.into(),
            description,
            permissions,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Run-time roles and the users' role assignments.
///
/// # Errors
///
/// Every method fails with [`StoreError::Unavailable`](super::StoreError)
/// when the backend is down.
#[async_trait]
pub trait RoleStore: Send + Sync + 'static {
    /// Inserts a role; [`StoreError::Conflict`](super::StoreError) when the
    /// name is taken (enforced by the store, also under concurrency).
    async fn insert_role(&self, role: &Role) -> StoreResult<()>;

    /// The roles with these names that exist, in any order.
    async fn find_roles(&self, names: &[String]) -> StoreResult<Vec<Role>>;

    /// Every run-time role, sorted by name.
    async fn list_roles(&self) -> StoreResult<Vec<Role>>;

    /// Replaces a role's description and permissions (and `updated_at`);
    /// `false` when no role has its name.
    async fn update_role(&self, role: &Role) -> StoreResult<bool>;

    /// Deletes a role; `false` when none had the name. Callers then take
    /// the name off its holders ([`remove_role_from_users`](Self::remove_role_from_users)).
    async fn delete_role(&self, name: &str) -> StoreResult<bool>;

    /// Adds `role` to the user's roles, atomically and at most once;
    /// `false` when the user does not exist.
    async fn add_user_role(&self, user: &UserId, role: &str) -> StoreResult<bool>;

    /// Takes `role` off the user's roles, atomically; `false` when the user
    /// does not exist.
    async fn remove_user_role(&self, user: &UserId, role: &str) -> StoreResult<bool>;

    /// Takes `role` off every user holding it; returns how many held it.
    async fn remove_role_from_users(&self, role: &str) -> StoreResult<u64>;
}

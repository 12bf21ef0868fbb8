//! Who may do what: a caller's roles and permissions, resolved on every
//! request, never cached across requests.
//!
//! - **Roles** are on the user document, which every authenticated request
//!   reads anyway ([`AuthManager::authenticate`]), so assigning or removing
//!   one applies to the very next request.
//! - **Permissions** resolve from the roles' definitions: config roles from
//!   memory, run-time roles with one store read, made only when the user
//!   holds a run-time role, so editing or deleting a role applies at once
//!   too. A role name with no definition (deleted meanwhile) grants nothing.
//! - **Organization roles** resolve from the membership of the session's
//!   active organization, read on every request that has one: a removed
//!   member loses them at once.
//!
//! The access token's `roles`, `org` and `org_roles` claims are a snapshot
//! for services that verify tokens from the JWKS alone; they catch up at the
//! next refresh (or sooner, after an organization switch).

use chrono::{DateTime, Utc};

use super::AuthManager;
use crate::{
    authz::PermissionSet,
    error::Result,
    store::{Role, Session},
    user::User,
};

/// The session's active organization, as the caller's request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActiveOrg {
    /// The organization's id.
    pub id: String,
    /// The caller's roles in it (`owner`, `admin`, `member`, or custom).
    pub roles: Vec<String>,
    /// What those roles grant in it.
    pub permissions: PermissionSet,
}

impl AuthManager {
    /// A role from config, by name.
    pub(crate) fn config_role(&self, name: &str) -> Option<&Role> {
        self.inner.config_roles.get(name)
    }

    /// The permissions `user`'s roles grant: config roles from memory,
    /// run-time roles with one store read (none when the user holds only
    /// config roles, or none at all).
    pub(crate) async fn user_permissions(&self, user: &User) -> Result<PermissionSet> {
        let mut permissions = PermissionSet::default();
        let mut stored = Vec::new();
        for name in &user.roles {
            match self.config_role(name) {
                Some(role) => permissions.extend(role.permissions.iter().cloned()),
                None => stored.push(name.clone()),
            }
        }
        if !stored.is_empty() {
            for role in self.inner.store.find_roles(&stored).await? {
                permissions.extend(role.permissions);
            }
        }
        Ok(permissions)
    }

    /// The session's active organization with the user's roles in it;
    /// `None` without one, or when the user is no longer a member.
    pub(crate) async fn active_org(
        &self,
        user: &User,
        session: &Session,
    ) -> Result<Option<ActiveOrg>> {
        let Some(org) = &session.org else {
            return Ok(None);
        };
        self.resolve_active_org(&user.id, org).await
    }

    /// The access token for `user` in `session`: roles, and the active
    /// organization with the user's roles in it.
    pub(crate) async fn access_token(
        &self,
        user: &User,
        session: &Session,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let org_roles = match &session.org {
            Some(_) => self
                .active_org(user, session)
                .await?
                .map(|org| org.roles)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        self.inner
            .jwt
            .issue_for_session(user, session, &org_roles, now)
    }
}

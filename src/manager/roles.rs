//! Roles: definitions (config and run time) and their assignment to users.
//! Every change is a superuser's, asks the before-hooks and emits an event;
//! permissions resolve per request ([`super::access`]), so each change
//! applies to the very next request.

use super::{admin::require_superuser, AuthManager};
use crate::{
    authz::{check_role_name, Permission, MAX_ROLE_PERMISSIONS},
    error::{Error, Result},
    hooks::{Action, Event},
    store::{Role, StoreError},
    user::{User, UserId},
};

/// Longest role description, in characters.
pub const MAX_ROLE_DESCRIPTION_CHARS: usize = 256;

/// A role as administrators see it: its definition and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefinedRole {
    /// The definition.
    pub role: Role,
    /// Defined in config: read-only at run time.
    pub from_config: bool,
}

/// A change to a run-time role: each field set replaces the old value.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RoleUpdate {
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New permissions, replacing the old.
    pub permissions: Option<Vec<String>>,
}

impl RoleUpdate {
    /// Changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or clears) the description.
    pub fn description(mut self, description: Option<String>) -> Self {
        self.description = Some(description);
        self
    }

    /// Replaces the permissions.
    pub fn permissions<P: Into<String>>(
        mut self,
        permissions: impl IntoIterator<Item = P>,
    ) -> Self {
        self.permissions = Some(permissions.into_iter().map(Into::into).collect());
        self
    }
}

pub(super) fn check_description(description: &Option<String>) -> Result<()> {
    match description {
        Some(d) if d.chars().count() > MAX_ROLE_DESCRIPTION_CHARS => Err(Error::validation(
            "description",
            "INVALID_DESCRIPTION",
            format!("a description has at most {MAX_ROLE_DESCRIPTION_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

/// Parses a role's permissions (at most `MAX_ROLE_PERMISSIONS`), each
/// error naming its index; deduplicated and sorted.
pub(super) fn parse_permissions(permissions: &[String]) -> Result<Vec<Permission>> {
    if permissions.len() > MAX_ROLE_PERMISSIONS {
        return Err(Error::validation(
            "permissions",
            "INVALID_PERMISSION",
            format!("a role grants at most {MAX_ROLE_PERMISSIONS} permissions"),
        ));
    }
    let mut parsed = Vec::with_capacity(permissions.len());
    for (i, name) in permissions.iter().enumerate() {
        let permission = Permission::parse(name).map_err(|e| {
            Error::validation(
                format!("permissions[{i}]"),
                "INVALID_PERMISSION",
                e.reason(),
            )
        })?;
        if !parsed.contains(&permission) {
            parsed.push(permission);
        }
    }
    parsed.sort();
    Ok(parsed)
}

impl AuthManager {
    /// Every role: config roles, then run-time roles, each by name.
    /// `actor` must be an active superuser.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::Unavailable`] (503).
    pub async fn list_roles(&self, actor: &User) -> Result<Vec<DefinedRole>> {
        require_superuser(actor)?;
        let mut roles: Vec<DefinedRole> = self
            .inner
            .config_roles
            .values()
            .map(|role| DefinedRole {
                role: role.clone(),
                from_config: true,
            })
            .collect();
        roles.extend(
            self.inner
                .store
                .list_roles()
                .await?
                .into_iter()
                .filter(|role| self.config_role(&role.name).is_none())
                .map(|role| DefinedRole {
                    role,
                    from_config: false,
                }),
        );
        Ok(roles)
    }

    /// One role by name. `actor` must be an active superuser.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::NotFound`] (404),
    /// [`Error::Unavailable`] (503).
    pub async fn get_role(&self, actor: &User, name: &str) -> Result<DefinedRole> {
        require_superuser(actor)?;
        self.find_role(name).await?.ok_or(Error::NotFound("role"))
    }

    async fn find_role(&self, name: &str) -> Result<Option<DefinedRole>> {
        if let Some(role) = self.config_role(name) {
            return Ok(Some(DefinedRole {
                role: role.clone(),
                from_config: true,
            }));
        }
        Ok(self
            .inner
            .store
            .find_roles(&[name.to_owned()])
            .await?
            .into_iter()
            .next()
            .map(|role| DefinedRole {
                role,
                from_config: false,
            }))
    }

    /// Creates a run-time role. A name that a config role or a run-time
    /// role has is refused. Users who still held a role of this name from
    /// an earlier one (an assignment a deletion did not reach) lose it
    /// first: a new role never re-grants anything to its old holders.
    /// Asks the `define_role` before-hooks; emits `role_created`.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::Validation`] (422
    /// `INVALID_ROLE_NAME`, `INVALID_PERMISSION`, `INVALID_DESCRIPTION`),
    /// [`Error::RoleExists`] (409), [`Error::Vetoed`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn create_role(
        &self,
        actor: &User,
        name: &str,
        description: Option<String>,
        permissions: &[String],
    ) -> Result<Role> {
        require_superuser(actor)?;
        check_role_name(name)
            .map_err(|e| Error::validation("name", "INVALID_ROLE_NAME", e.reason()))?;
        check_description(&description)?;
        let permissions = parse_permissions(permissions)?;
        if self.find_role(name).await?.is_some() {
            return Err(Error::RoleExists);
        }
        let role = Role::new(name, description, permissions, self.now());
        self.inner
            .hooks
            .before(Action::DefineRole {
                role: Box::new(role.clone()),
                by: actor.id.clone(),
            })
            .await?;
        self.inner.store.remove_role_from_users(name).await?;
        match self.inner.store.insert_role(&role).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::RoleExists),
            Err(e) => return Err(e.into()),
        }
        self.emit(Event::RoleCreated {
            role: role.clone(),
            by: actor.id.clone(),
        })
        .await;
        Ok(role)
    }

    /// Changes a run-time role's description or permissions; its holders'
    /// next requests see the change. Config roles are read-only. Asks the
    /// `define_role` before-hooks; emits `role_updated`.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::NotFound`] (404),
    /// [`Error::RoleReadOnly`] (409), [`Error::Validation`] (422),
    /// [`Error::Vetoed`] (403), [`Error::Unavailable`] (503).
    pub async fn update_role(&self, actor: &User, name: &str, update: RoleUpdate) -> Result<Role> {
        require_superuser(actor)?;
        let found = self.find_role(name).await?.ok_or(Error::NotFound("role"))?;
        if found.from_config {
            return Err(Error::RoleReadOnly);
        }
        let mut role = found.role;
        if let Some(description) = update.description {
            check_description(&description)?;
            role.description = description;
        }
        if let Some(permissions) = update.permissions {
            role.permissions = parse_permissions(&permissions)?;
        }
        let now = self.now();
        role.updated_at =
            chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        self.inner
            .hooks
            .before(Action::DefineRole {
                role: Box::new(role.clone()),
                by: actor.id.clone(),
            })
            .await?;
        if !self.inner.store.update_role(&role).await? {
            return Err(Error::NotFound("role"));
        }
        self.emit(Event::RoleUpdated {
            role: role.clone(),
            by: actor.id.clone(),
        })
        .await;
        Ok(role)
    }

    /// Deletes a run-time role and takes it off every user holding it. It
    /// grants nothing from the moment the definition is gone, even to a
    /// holder the clean-up has not reached yet. Config roles are read-only.
    /// Asks the `delete_role` before-hooks; emits `role_deleted` with how
    /// many users held it.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::NotFound`] (404),
    /// [`Error::RoleReadOnly`] (409), [`Error::Vetoed`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn delete_role(&self, actor: &User, name: &str) -> Result<()> {
        require_superuser(actor)?;
        let found = self.find_role(name).await?.ok_or(Error::NotFound("role"))?;
        if found.from_config {
            return Err(Error::RoleReadOnly);
        }
        self.inner
            .hooks
            .before(Action::DeleteRole {
                name: name.to_owned(),
                by: actor.id.clone(),
            })
            .await?;
        if !self.inner.store.delete_role(name).await? {
            return Err(Error::NotFound("role"));
        }
        let holders = self.inner.store.remove_role_from_users(name).await?;
        self.emit(Event::RoleDeleted {
            name: name.to_owned(),
            holders,
            by: actor.id.clone(),
        })
        .await;
        Ok(())
    }

    /// Gives a user a role (config or run-time); giving one they hold
    /// changes nothing. Asks the `assign_role` before-hooks; emits
    /// `role_assigned` when the user did not hold it.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::NotFound`] (404: the user or
    /// the role), [`Error::Vetoed`] (403), [`Error::Unavailable`] (503).
    pub async fn assign_role(&self, actor: &User, id: &UserId, role: &str) -> Result<User> {
        require_superuser(actor)?;
        let user = self.load_user(id).await?;
        if self.find_role(role).await?.is_none() {
            return Err(Error::NotFound("role"));
        }
        if user.roles.iter().any(|r| r == role) {
            return Ok(user);
        }
        self.inner
            .hooks
            .before(Action::AssignRole {
                user: Box::new(user.clone()),
                role: role.to_owned(),
                by: actor.id.clone(),
            })
            .await?;
        if !self.inner.store.add_user_role(id, role).await? {
            return Err(Error::NotFound("user"));
        }
        let updated = self.load_user(id).await?;
        self.emit(Event::RoleAssigned {
            user_id: id.clone(),
            role: role.to_owned(),
            by: actor.id.clone(),
        })
        .await;
        Ok(updated)
    }

    /// Takes a role off a user; taking one they do not hold changes
    /// nothing (a role deleted meanwhile can still be taken off). Asks the
    /// `unassign_role` before-hooks; emits `role_unassigned` when the user
    /// held it.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::NotFound`] (404: the user),
    /// [`Error::Vetoed`] (403), [`Error::Unavailable`] (503).
    pub async fn unassign_role(&self, actor: &User, id: &UserId, role: &str) -> Result<User> {
        require_superuser(actor)?;
        let user = self.load_user(id).await?;
        if !user.roles.iter().any(|r| r == role) {
            return Ok(user);
        }
        self.inner
            .hooks
            .before(Action::UnassignRole {
                user: Box::new(user.clone()),
                role: role.to_owned(),
                by: actor.id.clone(),
            })
            .await?;
        if !self.inner.store.remove_user_role(id, role).await? {
            return Err(Error::NotFound("user"));
        }
        let updated = self.load_user(id).await?;
        self.emit(Event::RoleUnassigned {
            user_id: id.clone(),
            role: role.to_owned(),
            by: actor.id.clone(),
        })
        .await;
        Ok(updated)
    }
}

//! `/auth/roles` and `/users/{id}/roles`: roles and their assignment,
//! for superusers.

use chrono::{DateTime, Utc};
use poem_openapi::{
    param::Path, payload::Json, types::MaybeUndefined, ApiResponse, Object, OpenApi,
};

use super::{
    account::NoContentResponse, caller::Superuser, error_set::*, ApiErrors, ApiTags, StrictString,
};
use crate::{
    manager::{AuthManager, DefinedRole, RoleUpdate},
    user::{User, UserId},
};

/// A role: a named set of permissions.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct RoleBody {
    /// Unique name (1–64 of `a-z`, `0-9`, `_`, `-`, `.`).
    pub name: String,
    /// What it is for.
    #[oai(nullable)]
    pub description: Option<String>,
    /// What it grants: permissions (`notes:read`) and patterns
    /// (`billing:*`, `*`), sorted.
    pub permissions: Vec<String>,
    /// Defined in the server's config: it cannot be changed or deleted here.
    pub read_only: bool,
    /// Creation time (RFC 3339; for config roles, when the server started).
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339).
    pub updated_at: DateTime<Utc>,
}

impl From<DefinedRole> for RoleBody {
    fn from(defined: DefinedRole) -> Self {
        let DefinedRole { role, from_config } = defined;
        Self {
            name: role.name,
            description: role.description,
            permissions: role.permissions.iter().map(|p| p.to_string()).collect(),
            read_only: from_config,
            created_at: role.created_at,
            updated_at: role.updated_at,
        }
    }
}

/// Every role.
#[derive(Debug, Clone, Object)]
pub struct RoleList {
    /// Config roles, then run-time roles, each by name.
    pub items: Vec<RoleBody>,
}

/// Body of `POST /auth/roles`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateRoleRequest {
    /// Unique name (1–64 of `a-z`, `0-9`, `_`, `-`, `.`); not a config
    /// role's.
    pub name: StrictString,
    /// What it is for (at most 256 characters).
    #[oai(default)]
    pub description: Option<StrictString>,
    /// What it grants (at most 128): permissions of one to eight segments
    /// joined by `:` (`notes:read`), optionally ending in `*` (`notes:*`
    /// grants everything under `notes:`; `*` grants everything).
    pub permissions: Vec<StrictString>,
}

/// Body of `PATCH /auth/roles/{name}`: each field set replaces the old.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateRoleRequest {
    /// New description; `null` clears it; absent leaves it.
    pub description: MaybeUndefined<StrictString>,
    /// New permissions, replacing the old; absent leaves them.
    pub permissions: Option<Vec<StrictString>>,
}

/// A user's roles.
#[derive(Debug, Clone, Object)]
pub struct UserRoles {
    /// The user's id.
    pub user_id: String,
    /// The roles' names, as assigned.
    pub roles: Vec<String>,
}

/// Answer of the role routes that show one role.
#[derive(Debug, ApiResponse)]
pub enum RoleResponse {
    /// The role.
    #[oai(status = 200)]
    Ok(Json<RoleBody>),
    /// The role was created.
    #[oai(status = 201)]
    Created(Json<RoleBody>),
}

/// Answer of `GET /auth/roles`.
#[derive(Debug, ApiResponse)]
pub enum RoleListResponse {
    /// Every role.
    #[oai(status = 200)]
    Ok(Json<RoleList>),
}

/// Answer of the `/users/{id}/roles` routes.
#[derive(Debug, ApiResponse)]
pub enum UserRolesResponse {
    /// The user's roles (after the change).
    #[oai(status = 200)]
    Ok(Json<UserRoles>),
}

fn user_roles(user: &User) -> UserRolesResponse {
    UserRolesResponse::Ok(Json(UserRoles {
        user_id: user.id.to_string(),
        roles: user.roles.clone(),
    }))
}

fn strings(values: Vec<StrictString>) -> Vec<String> {
    values.into_iter().map(StrictString::into_inner).collect()
}

/// The roles API, mounted by [`super::routes`].
#[derive(Debug, Clone)]
pub struct RolesApi {
    manager: AuthManager,
}

impl RolesApi {
    /// The roles API over `manager`.
    pub fn new(manager: &AuthManager) -> Self {
        Self {
            manager: manager.clone(),
        }
    }
}

#[OpenApi(tag = "ApiTags::Roles")]
impl RolesApi {
    /// List roles (superuser)
    ///
    /// Config roles (`read_only`), then roles created at run time.
    #[oai(path = "/auth/roles", method = "get", operation_id = "listRoles")]
    async fn list(&self, admin: Superuser) -> Result<RoleListResponse, ApiErrors<{ AUTHED }>> {
        let roles = self.manager.list_roles(&admin.user).await?;
        Ok(RoleListResponse::Ok(Json(RoleList {
            items: roles.into_iter().map(RoleBody::from).collect(),
        })))
    }

    /// Create a role (superuser)
    ///
    /// 409 `ROLE_EXISTS` when a config or run-time role has the name; 422
    /// `INVALID_ROLE_NAME`, `INVALID_PERMISSION` (with `field`, e.g.
    /// `permissions[2]`) or `INVALID_DESCRIPTION`. Nobody holds a new role:
    /// an assignment left over from a deleted role of the same name is
    /// cleared first.
    #[oai(path = "/auth/roles", method = "post", operation_id = "createRole")]
    async fn create(
        &self,
        admin: Superuser,
        body: Json<CreateRoleRequest>,
    ) -> Result<RoleResponse, ApiErrors<{ AUTHED | CONFLICT | BODY }>> {
        let Json(body) = body;
        let role = self
            .manager
            .create_role(
                &admin.user,
                &body.name,
                body.description.map(StrictString::into_inner),
                &strings(body.permissions),
            )
            .await?;
        Ok(RoleResponse::Created(Json(RoleBody::from(DefinedRole {
            role,
            from_config: false,
        }))))
    }

    /// Get a role (superuser)
    ///
    /// A config or run-time role by name, with what it grants.
    #[oai(path = "/auth/roles/:name", method = "get", operation_id = "getRole")]
    async fn get(
        &self,
        admin: Superuser,
        /// The role's name.
        name: Path<String>,
    ) -> Result<RoleResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        let role = self.manager.get_role(&admin.user, &name.0).await?;
        Ok(RoleResponse::Ok(Json(role.into())))
    }

    /// Change a role (superuser)
    ///
    /// Its holders' next requests see the change. 409 `ROLE_READ_ONLY` for
    /// a config role.
    #[oai(
        path = "/auth/roles/:name",
        method = "patch",
        operation_id = "updateRole"
    )]
    async fn update(
        &self,
        admin: Superuser,
        /// The role's name.
        name: Path<String>,
        body: Json<UpdateRoleRequest>,
    ) -> Result<RoleResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT | BODY }>> {
        let Json(body) = body;
        let mut update = RoleUpdate::new();
        match body.description {
            MaybeUndefined::Value(d) => update = update.description(Some(d.into_inner())),
            MaybeUndefined::Null => update = update.description(None),
            MaybeUndefined::Undefined => {}
        }
        if let Some(permissions) = body.permissions {
            update = update.permissions(strings(permissions));
        }
        let role = self
            .manager
            .update_role(&admin.user, &name.0, update)
            .await?;
        Ok(RoleResponse::Ok(Json(RoleBody::from(DefinedRole {
            role,
            from_config: false,
        }))))
    }

    /// Delete a role (superuser)
    ///
    /// It grants nothing from this answer on, and is taken off every user
    /// holding it. 409 `ROLE_READ_ONLY` for a config role.
    #[oai(
        path = "/auth/roles/:name",
        method = "delete",
        operation_id = "deleteRole"
    )]
    async fn delete(
        &self,
        admin: Superuser,
        /// The role's name.
        name: Path<String>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT }>> {
        self.manager.delete_role(&admin.user, &name.0).await?;
        Ok(NoContentResponse::Done)
    }

    /// A user's roles (superuser)
    ///
    /// The names of the roles the user holds, as assigned.
    #[oai(
        path = "/users/:id/roles",
        method = "get",
        operation_id = "getUserRoles"
    )]
    async fn user_roles(
        &self,
        admin: Superuser,
        /// The user's id.
        id: Path<String>,
    ) -> Result<UserRolesResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        let user = self
            .manager
            .get_user(&admin.user, &UserId::new(id.0))
            .await?;
        Ok(user_roles(&user))
    }

    /// Give a user a role (superuser)
    ///
    /// Applies to the user's next request (their access token's `roles`
    /// claim catches up at the next refresh). Giving a role they hold
    /// changes nothing. 404 for an unknown user or role.
    #[oai(
        path = "/users/:id/roles/:role",
        method = "put",
        operation_id = "assignRole"
    )]
    async fn assign(
        &self,
        admin: Superuser,
        /// The user's id.
        id: Path<String>,
        /// The role's name.
        role: Path<String>,
    ) -> Result<UserRolesResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        let user = self
            .manager
            .assign_role(&admin.user, &UserId::new(id.0), &role.0)
            .await?;
        Ok(user_roles(&user))
    }

    /// Take a role off a user (superuser)
    ///
    /// Applies to the user's next request. Taking a role they do not hold
    /// changes nothing.
    #[oai(
        path = "/users/:id/roles/:role",
        method = "delete",
        operation_id = "unassignRole"
    )]
    async fn unassign(
        &self,
        admin: Superuser,
        /// The user's id.
        id: Path<String>,
        /// The role's name.
        role: Path<String>,
    ) -> Result<UserRolesResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        let user = self
            .manager
            .unassign_role(&admin.user, &UserId::new(id.0), &role.0)
            .await?;
        Ok(user_roles(&user))
    }
}

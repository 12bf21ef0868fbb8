//! `/users`: the caller's profile, and administration for superusers.

use std::collections::BTreeMap;

use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    types::MaybeUndefined,
    ApiResponse, Object, OpenApi,
};
use serde_json::Value;

use super::{
    account::{AcceptedResponse, NoContentResponse, UserResponse},
    caller::{Authenticated, Superuser},
    error_set::*,
    ApiErrors, ApiTags, EmailPrefix, PageLimit, PublicUser, StrictString,
};
use crate::{
    error::Error,
    manager::{AdminUpdate, AuthManager, ProfileUpdate},
    store::{UserCursor, UserQuery},
    user::{UserId, MAX_EMAIL_LEN},
};

/// Body of `PATCH /users/me`: only these fields; any other (email,
/// password, `app_metadata`, is_active, is_superuser, email_verified, …) is
/// refused with 422 and nothing is written.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ProfileUpdateRequest {
    /// New display name; `null` clears it; absent leaves it.
    pub name: MaybeUndefined<StrictString>,
    /// New profile metadata, replacing the old object (at most 16 KiB as
    /// JSON; keys without `.` and not starting with `$`); `null` empties it.
    /// The server-only `app_metadata` is not writable here.
    pub metadata: MaybeUndefined<BTreeMap<String, Value>>,
}

/// Body of `PATCH /users/{id}`: profile and flags, never email or password
/// (an admin can only trigger a reset mail); other fields are refused.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct AdminUserUpdate {
    /// New display name; `null` clears it.
    pub name: MaybeUndefined<StrictString>,
    /// New profile metadata, replacing the old; `null` empties it.
    pub metadata: MaybeUndefined<BTreeMap<String, Value>>,
    /// New server-only metadata, replacing the old (same limits as
    /// `metadata`); `null` empties it.
    pub app_metadata: MaybeUndefined<BTreeMap<String, Value>>,
    /// `false` deactivates the user and ends every session.
    pub is_active: Option<bool>,
    /// Grant or remove superuser rights.
    pub is_superuser: Option<bool>,
    /// Mark the email verified or not.
    pub email_verified: Option<bool>,
}

/// One page of users.
#[derive(Debug, Clone, Object)]
pub struct UserPage {
    /// The users, oldest first (creation time, then id).
    pub items: Vec<PublicUser>,
    /// How many users match the `email` filter in total; `null` when not
    /// counted (see the `total` parameter).
    pub total: Option<u64>,
    /// Users skipped (`0` when paging with `after`).
    pub offset: u64,
    /// Page size asked for.
    pub limit: u64,
    /// Pass as `after` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Answer of `GET /users`.
#[derive(Debug, ApiResponse)]
pub enum UserPageResponse {
    /// A page of users.
    #[oai(status = 200)]
    Ok(
        Json<UserPage>,
        /// `private, no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

fn profile(
    name: MaybeUndefined<StrictString>,
    metadata: MaybeUndefined<BTreeMap<String, Value>>,
) -> ProfileUpdate {
    let mut update = ProfileUpdate::new();
    match name {
        MaybeUndefined::Value(name) => update = update.name(Some(name.into_inner())),
        MaybeUndefined::Null => update = update.name(None),
        MaybeUndefined::Undefined => {}
    }
    match metadata {
        MaybeUndefined::Value(map) => update = update.metadata(map.into_iter().collect()),
        MaybeUndefined::Null => update = update.metadata(serde_json::Map::new()),
        MaybeUndefined::Undefined => {}
    }
    update
}

/// The users API, mounted by [`super::routes`].
#[derive(Debug, Clone)]
pub struct UsersApi {
    manager: AuthManager,
}

impl UsersApi {
    /// The users API over `manager`.
    pub fn new(manager: &AuthManager) -> Self {
        Self {
            manager: manager.clone(),
        }
    }
}

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// My profile
    ///
    /// The signed-in user, with their profile metadata and the server-only
    /// `app_metadata` (readable, not writable, by the user).
    #[oai(path = "/users/me", method = "get", operation_id = "getMe")]
    async fn me(&self, caller: Authenticated) -> Result<UserResponse, ApiErrors<{ AUTHED }>> {
        Ok(UserResponse::new(&caller.user))
    }

    /// Update my profile
    ///
    /// Changes the name and profile metadata only. Email, password, flags
    /// and the server-only `app_metadata` are not the user's to write here;
    /// sending them is a 422 and nothing is written.
    #[oai(path = "/users/me", method = "patch", operation_id = "updateMe")]
    async fn update_me(
        &self,
        caller: Authenticated,
        body: Json<ProfileUpdateRequest>,
    ) -> Result<UserResponse, ApiErrors<{ AUTHED | BODY }>> {
        let Json(body) = body;
        let user = self
            .manager
            .update_profile(&caller.user, profile(body.name, body.metadata))
            .await?;
        Ok(UserResponse::new(&user))
    }

    /// List users (superuser)
    ///
    /// Oldest first (creation time, then id), `limit` 1–100 (default 50),
    /// optionally only emails starting with `email` (case-insensitive).
    /// Page with `after`: each page's `next_cursor` (`null` on the last
    /// page) fetches the next one, with a seek on an index, so a page deep
    /// into a million users costs what the first one does, and users
    /// created meanwhile are neither skipped nor repeated. `offset` is kept
    /// for compatibility: the store still walks past every skipped user.
    #[oai(path = "/users", method = "get", operation_id = "listUsers")]
    async fn list(
        &self,
        admin: Superuser,
        /// Users to skip (default 0, at most 10^15: every JSON client reads
        /// it exactly). Slower the larger it is; prefer `after`. Not with
        /// `after`.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000000000")))]
        offset: Query<Option<u64>>,
        /// Page size, 1–100 (default 50).
        limit: Query<Option<PageLimit>>,
        /// Email prefix filter.
        email: Query<Option<EmailPrefix>>,
        /// The previous page's `next_cursor`: list the users after it. A
        /// cursor is opaque; a malformed one is a 422 `INVALID_CURSOR`.
        after: Query<Option<String>>,
        /// Whether to count every matching user in `total` (default: yes
        /// without `after`, no with it: the count walks an index entry per
        /// matching user, so a client paging through a large set gets it
        /// once, with the first page).
        total: Query<Option<bool>>,
    ) -> Result<UserPageResponse, ApiErrors<{ AUTHED | UNPROCESSABLE }>> {
        let offset = offset.0.unwrap_or(0);
        let limit = limit.0.map_or(50, |l| l.0);
        let mut query = UserQuery::page(offset, limit);
        if let Some(text) = after.0 {
            let Some(cursor) = UserCursor::parse(&text) else {
                return Err(Error::validation(
                    "after",
                    "INVALID_CURSOR",
                    "after is not a cursor this API returned",
                )
                .into());
            };
            if offset != 0 {
                return Err(Error::validation(
                    "after",
                    "INVALID_CURSOR",
                    "use after or offset, not both",
                )
                .into());
            }
            query = query.after(cursor).count(false);
        }
        if let Some(count) = total.0 {
            query = query.count(count);
        }
        if let Some(prefix) = email.0.filter(|p| !p.trim().is_empty()) {
            // Characters, as the schema's `maxLength` counts them.
            if prefix.chars().count() > MAX_EMAIL_LEN {
                return Err(Error::validation(
                    "email",
                    "INVALID_EMAIL_PREFIX",
                    "the email prefix is longer than any email",
                )
                .into());
            }
            query = query.email_prefix(prefix.into_inner());
        }
        let list = self.manager.list_users(&admin.user, &query).await?;
        Ok(UserPageResponse::Ok(
            Json(UserPage {
                items: list.users.iter().map(PublicUser::from).collect(),
                total: list.total,
                offset,
                limit,
                next_cursor: list.next.as_ref().map(UserCursor::encode),
            }),
            "private, no-store".into(),
        ))
    }

    /// Get a user (superuser)
    ///
    /// Any user by id, including deactivated ones.
    #[oai(path = "/users/:id", method = "get", operation_id = "getUser")]
    async fn get(
        &self,
        admin: Superuser,
        /// The user's id.
        id: Path<String>,
    ) -> Result<UserResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        let user = self
            .manager
            .get_user(&admin.user, &UserId::new(id.0))
            .await?;
        Ok(UserResponse::new(&user))
    }

    /// Update a user (superuser)
    ///
    /// Name, profile `metadata`, server-only `app_metadata`, `is_active` (deactivating ends every session),
    /// `is_superuser`, `email_verified`. Never the email or password. A
    /// superuser cannot deactivate or demote themselves (422
    /// `SELF_LOCKOUT`).
    #[oai(path = "/users/:id", method = "patch", operation_id = "updateUser")]
    async fn update(
        &self,
        admin: Superuser,
        /// The user's id.
        id: Path<String>,
        body: Json<AdminUserUpdate>,
    ) -> Result<UserResponse, ApiErrors<{ AUTHED | NOT_FOUND | BODY }>> {
        let Json(body) = body;
        let mut update = AdminUpdate::new().profile(profile(body.name, body.metadata));
        match body.app_metadata {
            MaybeUndefined::Value(map) => update = update.app_metadata(map.into_iter().collect()),
            MaybeUndefined::Null => update = update.app_metadata(serde_json::Map::new()),
            MaybeUndefined::Undefined => {}
        }
        update.is_active = body.is_active;
        update.is_superuser = body.is_superuser;
        update.email_verified = body.email_verified;
        let user = self
            .manager
            .admin_update_user(&admin.user, &UserId::new(id.0), update)
            .await?;
        Ok(UserResponse::new(&user))
    }

    /// Delete a user (superuser)
    ///
    /// Removes the user with their linked accounts, sessions and tokens;
    /// the email becomes free. To keep the record, deactivate instead. 409
    /// `LAST_OWNER` when the user is the only owner of an organization.
    #[oai(path = "/users/:id", method = "delete", operation_id = "deleteUser")]
    async fn delete(
        &self,
        admin: Superuser,
        /// The user's id.
        id: Path<String>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT | UNPROCESSABLE }>>
    {
        self.manager
            .admin_delete_user(&admin.user, &UserId::new(id.0))
            .await?;
        Ok(NoContentResponse::Done)
    }

    /// Turn off a user's second factors (superuser)
    ///
    /// For a user who lost their authenticator app and their recovery
    /// codes: TOTP and the codes are deleted and the user is mailed a
    /// notice; sign-in is one step again until they enrol anew. The
    /// superuser's own sign-in must be recent (403
    /// `REAUTHENTICATION_REQUIRED`); 404 when the user has none.
    #[oai(
        path = "/users/:id/mfa",
        method = "delete",
        operation_id = "resetUserFactors"
    )]
    async fn reset_factors(
        &self,
        admin: Superuser,
        /// The user's id.
        id: Path<String>,
    ) -> Result<super::NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        self.manager
            .admin_reset_factors(&admin, &UserId::new(id.0))
            .await?;
        Ok(super::NoContentResponse::Done)
    }

    /// Send a password-reset link to a user (superuser)
    ///
    /// An admin never sets a password; this mails the user a reset link.
    #[oai(
        path = "/users/:id/reset-password",
        method = "post",
        operation_id = "sendUserPasswordReset"
    )]
    async fn send_reset(
        &self,
        admin: Superuser,
        /// The user's id.
        id: Path<String>,
    ) -> Result<AcceptedResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        self.manager
            .admin_send_password_reset(&admin.user, &UserId::new(id.0))
            .await?;
        Ok(AcceptedResponse::Accepted(Json(super::AcceptedBody {
            message: "a reset link is on its way to the user".into(),
        })))
    }
}

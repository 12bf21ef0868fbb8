//! Profiles and user administration.

use serde_json::{Map, Value};

use super::{register::validate_name, AuthManager};
use crate::{
    error::{Error, Result},
    hooks::{Action, Event},
    store::{UserCursor, UserPatch, UserQuery},
    token::Secret,
    user::{User, UserId},
};

/// Largest accepted metadata object (profile or server-only, each),
/// serialized, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Largest page of [`AuthManager::list_users`].
pub const MAX_PAGE: u64 = 100;

/// One page of [`AuthManager::list_users`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UserList {
    /// The users, in list order (creation time, then id).
    pub users: Vec<User>,
    /// How many users match the filter, when the query asked.
    pub total: Option<u64>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<UserCursor>,
}

/// What a user may change about themselves: never email, password or flags.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ProfileUpdate {
    /// New display name (`Some(None)` clears it).
    pub name: Option<Option<String>>,
    /// New profile metadata, replacing the old.
    pub metadata: Option<Map<String, Value>>,
}

impl ProfileUpdate {
    /// Changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or clears) the name.
    pub fn name(mut self, name: Option<String>) -> Self {
        self.name = Some(name);
        self
    }

    /// Replaces the profile metadata.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// What a superuser may change about any user. Not the email and not the
/// password: an admin can only trigger a reset mail.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AdminUpdate {
    /// Name and profile metadata.
    pub profile: ProfileUpdate,
    /// New server-only metadata, replacing the old.
    pub app_metadata: Option<Map<String, Value>>,
    /// Activate or deactivate (deactivating ends every session).
    pub is_active: Option<bool>,
    /// Grant or remove superuser rights.
    pub is_superuser: Option<bool>,
    /// Mark the email verified or not.
    pub email_verified: Option<bool>,
}

impl AdminUpdate {
    /// Changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the profile part.
    pub fn profile(mut self, profile: ProfileUpdate) -> Self {
        self.profile = profile;
        self
    }

    /// Replaces the server-only metadata.
    pub fn app_metadata(mut self, app_metadata: Map<String, Value>) -> Self {
        self.app_metadata = Some(app_metadata);
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

    /// Sets `email_verified`.
    pub fn email_verified(mut self, value: bool) -> Self {
        self.email_verified = Some(value);
        self
    }
}

impl AuthManager {
    /// Replaces a user's server-only metadata
    /// ([`User::app_metadata`]): the app's own write (from its handlers,
    /// jobs or hooks), with no acting user to check. The user can read it
    /// but never write it. Same limits as profile metadata (16 KiB as JSON,
    /// portable keys). Asks the `update_user` before-hooks and emits
    /// `user_updated`, each with `by: None` (no acting user).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::Validation`] (422
    /// `METADATA_TOO_LARGE`, `INVALID_METADATA` on `app_metadata`),
    /// [`Error::Vetoed`] (403), [`Error::Unavailable`] (503).
    pub async fn set_app_metadata(
        &self,
        id: &UserId,
        app_metadata: Map<String, Value>,
    ) -> Result<User> {
        check_metadata("app_metadata", &app_metadata)?;
        let user = self.load_user(id).await?;
        let patch = UserPatch::new().app_metadata(app_metadata);
        self.apply_patch(&user, patch, None).await
    }

    /// Updates the caller's own name and metadata. Emits `user_updated`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (422), [`Error::Vetoed`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn update_profile(&self, user: &User, update: ProfileUpdate) -> Result<User> {
        let patch = self.profile_patch(user, update)?;
        self.apply_patch(user, patch, Some(&user.id)).await
    }

    /// A page of users, optionally only those whose email starts with a
    /// prefix, with the cursor of the next page (`None` on the last).
    /// `actor` must be an active superuser.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::Validation`] (422: `limit` not
    /// in 1..=100), [`Error::Unavailable`] (503).
    pub async fn list_users(&self, actor: &User, query: &UserQuery) -> Result<UserList> {
        require_superuser(actor)?;
        if query.limit == 0 || query.limit > MAX_PAGE {
            return Err(Error::validation(
                "limit",
                "INVALID_LIMIT",
                format!("limit must be between 1 and {MAX_PAGE}"),
            ));
        }
        // One more than the page: whether it exists says if there is a
        // next page, so the last page never hands out a cursor to nothing.
        let mut probe = query.clone();
        probe.limit = query.limit + 1;
        let (mut users, total) = self.inner.store.list_users(&probe).await?;
        let more = users.len() as u64 > query.limit;
        users.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let next = users.last().filter(|_| more).map(UserCursor::after);
        Ok(UserList { users, total, next })
    }

    /// Any user by id. `actor` must be an active superuser.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::NotFound`] (404),
    /// [`Error::Unavailable`] (503).
    pub async fn get_user(&self, actor: &User, id: &UserId) -> Result<User> {
        require_superuser(actor)?;
        self.load_user(id).await
    }

    /// Changes any user's profile, server-only metadata and flags. Deactivating bumps
    /// `token_version` in the same write and revokes every session. A
    /// superuser cannot deactivate or demote themselves (no lock-out).
    /// Emits `user_updated`.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::NotFound`] (404),
    /// [`Error::Validation`] (422), [`Error::Vetoed`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn admin_update_user(
        &self,
        actor: &User,
        id: &UserId,
        update: AdminUpdate,
    ) -> Result<User> {
        require_superuser(actor)?;
        if update.is_active == Some(false) {
            guard_self_lockout(actor, id, "is_active")?;
        }
        if update.is_superuser == Some(false) {
            guard_self_lockout(actor, id, "is_superuser")?;
        }
        let user = self.load_user(id).await?;
        let mut patch = self.profile_patch(&user, update.profile)?;
        if let Some(app_metadata) = update.app_metadata {
            check_metadata("app_metadata", &app_metadata)?;
            patch.app_metadata = Some(app_metadata);
        }
        patch.is_active = update.is_active;
        patch.is_superuser = update.is_superuser;
        patch.email_verified = update.email_verified;
        let deactivating = update.is_active == Some(false) && user.is_active;
        if deactivating {
            patch.bump_token_version = true;
        }
        let updated = self.apply_patch(&user, patch, Some(&actor.id)).await?;
        if deactivating {
            self.inner
                .store
                .revoke_user_sessions(&user.id, None, self.now())
                .await?;
        }
        Ok(updated)
    }

    /// Removes any user with their linked accounts, sessions and tokens
    /// (a hard delete; to keep the record, deactivate instead). A superuser
    /// cannot delete themselves here. Emits `user_deleted`.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::NotFound`] (404),
    /// [`Error::Validation`] (422 `SELF_LOCKOUT`), [`Error::LastOwner`] (409:
    /// the only owner of an organization), [`Error::Unavailable`] (503).
    pub async fn admin_delete_user(&self, actor: &User, id: &UserId) -> Result<()> {
        require_superuser(actor)?;
        guard_self_lockout(actor, id, "id")?;
        let user = self.load_user(id).await?;
        self.guard_last_owner(id).await?;
        self.inner
            .hooks
            .before(Action::DeleteUser {
                user: Box::new(user.clone()),
                by: actor.id.clone(),
            })
            .await?;
        self.remove_user(&user, true, &actor.id).await
    }

    /// Mails any active user a password-reset link (an admin never sets a
    /// password). Emits `password_reset_requested`.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (403), [`Error::NotFound`] (404),
    /// [`Error::InactiveUser`] (403), [`Error::EmailNotConfigured`] and
    /// [`Error::Unavailable`] (503).
    pub async fn admin_send_password_reset(&self, actor: &User, id: &UserId) -> Result<()> {
        require_superuser(actor)?;
        self.require_email()?;
        let user = self.load_user(id).await?;
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        self.inner
            .hooks
            .before(Action::AdminPasswordReset {
                user: Box::new(user.clone()),
                by: actor.id.clone(),
            })
            .await?;
        self.send_password_reset(&user).await
    }

    /// Makes sure a superuser with `email` exists, for bootstrapping a
    /// deployment without touching the database: an existing user whose
    /// email is verified is promoted (and activated; their password is left
    /// alone: they proved they own the address), otherwise one is created
    /// with `password` (policy applies) and a verified email.
    ///
    /// An existing user whose email is **not** verified is refused
    /// ([`Error::EmailNotVerified`]) and left as it is: anyone can register
    /// an address they do not own, and promoting that account would make
    /// whoever registered it first superuser, with their own password. Have
    /// the address verified (the owner follows a verification link), or
    /// remove that user, and call again.
    ///
    /// # Errors
    ///
    /// [`Error::EmailNotVerified`] (403), [`Error::Validation`] (422),
    /// [`Error::Unavailable`] (503).
    pub async fn ensure_superuser(&self, email: &str, password: &Secret) -> Result<User> {
        let normalized = crate::user::normalize_email(email)?;
        let store = &self.inner.store;
        if let Some(user) = store.find_user_by_email(&normalized).await? {
            if !user.email_verified {
                return Err(Error::EmailNotVerified);
            }
            let patch = UserPatch::new().is_superuser(true).is_active(true);
            return store
                .patch_user(&user.id, &patch, self.now())
                .await?
                .ok_or(Error::NotFound("user"));
        }
        let mut user = User::new(email, self.now())?;
        self.inner
            .policy
            .check(password.expose(), Some(&user.email))?;
        user.password_hash = Some(self.inner.hasher.hash(password.expose()).await?);
        user.is_superuser = true;
        user.email_verified = true;
        match store.insert_user(&user).await {
            Ok(()) => {}
            // Created concurrently by another node: promote that one.
            Err(crate::store::StoreError::Conflict(_)) => {
                return Box::pin(self.ensure_superuser(email, password)).await;
            }
            Err(err) => return Err(err.into()),
        }
        self.emit(Event::UserRegistered {
            user: user.clone(),
            provider: "bootstrap".into(),
        })
        .await;
        Ok(user)
    }

    /// Asks the hooks, applies `patch` atomically, emits `user_updated`.
    async fn apply_patch(
        &self,
        user: &User,
        patch: UserPatch,
        by: Option<&UserId>,
    ) -> Result<User> {
        if patch.is_empty() {
            return Ok(user.clone());
        }
        self.inner
            .hooks
            .before(Action::UpdateUser {
                user: Box::new(user.clone()),
                patch: Box::new(patch.clone()),
                by: by.cloned(),
            })
            .await?;
        let updated = self
            .inner
            .store
            .patch_user(&user.id, &patch, self.now())
            .await?
            .ok_or(Error::NotFound("user"))?;
        self.emit(Event::UserUpdated {
            user: updated.clone(),
            by: by.cloned(),
        })
        .await;
        Ok(updated)
    }
}

/// The one lock-out rule: a superuser never deactivates, demotes or
/// deletes their own account, by any route (`/users/{id}` or
/// `DELETE /auth/account`); another superuser must demote them first. So
/// an acting superuser always remains, and the last one is never lost.
///
/// # Errors
///
/// [`Error::Validation`] 422 `SELF_LOCKOUT` on `field`.
pub(crate) fn guard_self_lockout(actor: &User, target: &UserId, field: &'static str) -> Result<()> {
    if actor.is_superuser && actor.id == *target {
        return Err(Error::validation(
            field,
            "SELF_LOCKOUT",
            "a superuser cannot deactivate, demote or delete their own account; \
             another superuser must demote them first",
        ));
    }
    Ok(())
}

/// The one superuser rule: an active superuser. The administration
/// methods check it, and so does the `api::Superuser` extractor.
pub(crate) fn require_superuser(actor: &User) -> Result<()> {
    if actor.is_superuser && actor.is_active {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// Keys every store can keep as they are (MongoDB reserves `$` and `.`),
/// checked at every depth.
fn keys_are_portable(map: &Map<String, Value>) -> bool {
    fn value_ok(value: &Value) -> bool {
        match value {
            Value::Object(map) => keys_are_portable(map),
            Value::Array(items) => items.iter().all(value_ok),
            _ => true,
        }
    }
    map.iter().all(|(key, value)| {
        !key.is_empty() && !key.starts_with('$') && !key.contains('.') && value_ok(value)
    })
}

impl AuthManager {
    /// The patch of a profile update of `user`: the name's rule, the
    /// metadata's limits, and the declared registration fields' rules.
    fn profile_patch(&self, user: &User, update: ProfileUpdate) -> Result<UserPatch> {
        let mut patch = UserPatch::new();
        if let Some(name) = update.name {
            patch = patch.name(validate_name(name)?);
        }
        if let Some(metadata) = update.metadata {
            let metadata = super::register::validate_metadata_update(
                &self.inner.registration_fields,
                &user.metadata,
                metadata,
            )?;
            check_metadata("metadata", &metadata)?;
            patch = patch.metadata(metadata);
        }
        Ok(patch)
    }
}

/// The limits of either metadata object: at most
/// [`MAX_METADATA_BYTES`] as JSON, keys every store keeps.
pub(crate) fn check_metadata(field: &str, metadata: &Map<String, Value>) -> Result<()> {
    let size = serde_json::to_vec(metadata).map_err(Error::internal)?.len();
    if size > MAX_METADATA_BYTES {
        return Err(Error::validation(
            field.to_owned(),
            "METADATA_TOO_LARGE",
            format!("{field} must be at most {MAX_METADATA_BYTES} bytes as JSON"),
        ));
    }
    if !keys_are_portable(metadata) {
        return Err(Error::validation(
            field.to_owned(),
            "INVALID_METADATA",
            format!("{field} keys must be non-empty, without `.` and not start with `$`"),
        ));
    }
    Ok(())
}

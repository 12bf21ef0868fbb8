//! Run-time roles on MongoDB: collection `roles`, one document per role
//! with the name as `_id` (so the name is unique by the primary key), and
//! the assignments as the `roles` array on each user document, changed with
//! `$addToSet` / `$pull` (atomic, never a read-modify-write).

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::{
    bson::{self, doc},
    options::{FindOptions, Hint},
    Collection, IndexModel,
};
use serde::{Deserialize, Serialize};

use super::{chrono, date, map_err, MongoStore};
use crate::{
    authz::Permission,
    store::{Role, RoleStore, StoreResult},
    user::UserId,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RoleDoc {
    /// The role's name.
    #[serde(rename = "_id")]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    permissions: Vec<Permission>,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
}

impl RoleDoc {
    fn of(role: &Role) -> Self {
        Self {
            name: role.name.clone(),
            description: role.description.clone(),
            permissions: role.permissions.clone(),
            created_at: date(role.created_at),
            updated_at: date(role.updated_at),
        }
    }

    fn into_role(self) -> Role {
        let mut role = Role::new(
            self.name,
            self.description,
            self.permissions,
            chrono(self.created_at),
        );
        role.updated_at = chrono(self.updated_at);
        role
    }
}

/// The index `remove_role_from_users` uses (multikey on `users.roles`).
pub(super) async fn ensure_indexes(users: &Collection<super::UserDoc>) -> StoreResult<()> {
    users
        .create_index(
            IndexModel::builder()
                .keys(doc! { "roles": 1 })
                .options(
                    mongodb::options::IndexOptions::builder()
                        .name("roles".to_owned())
                        .sparse(true)
                        .build(),
                )
                .build(),
        )
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl RoleStore for MongoStore {
    async fn insert_role(&self, role: &Role) -> StoreResult<()> {
        self.roles
            .insert_one(RoleDoc::of(role))
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn find_roles(&self, names: &[String]) -> StoreResult<Vec<Role>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let docs: Vec<RoleDoc> = self
            .roles
            .find(doc! { "_id": { "$in": names } })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        Ok(docs.into_iter().map(RoleDoc::into_role).collect())
    }

    async fn list_roles(&self) -> StoreResult<Vec<Role>> {
        let docs: Vec<RoleDoc> = self
            .roles
            .find(doc! {})
            .with_options(
                FindOptions::builder()
                    .sort(doc! { "_id": 1 })
                    // Every role, in name order: walk the `_id` index (a
                    // planner may otherwise scan and sort).
                    .hint(Hint::Name("_id_".into()))
                    .build(),
            )
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        Ok(docs.into_iter().map(RoleDoc::into_role).collect())
    }

    async fn update_role(&self, role: &Role) -> StoreResult<bool> {
        let doc = RoleDoc::of(role);
        let permissions = bson::to_bson(&doc.permissions).map_err(super::backend)?;
        let result = self
            .roles
            .update_one(
                doc! { "_id": &doc.name },
                doc! { "$set": {
                    "description": doc.description.as_deref(),
                    "permissions": permissions,
                    "updated_at": doc.updated_at,
                } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.matched_count == 1)
    }

    async fn delete_role(&self, name: &str) -> StoreResult<bool> {
        let result = self
            .roles
            .delete_one(doc! { "_id": name })
            .await
            .map_err(map_err)?;
        Ok(result.deleted_count == 1)
    }

    async fn add_user_role(&self, user: &UserId, role: &str) -> StoreResult<bool> {
        let result = self
            .users
            .update_one(
                doc! { "_id": user.as_str() },
                doc! { "$addToSet": { "roles": role } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.matched_count == 1)
    }

    async fn remove_user_role(&self, user: &UserId, role: &str) -> StoreResult<bool> {
        let result = self
            .users
            .update_one(
                doc! { "_id": user.as_str() },
                doc! { "$pull": { "roles": role } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.matched_count == 1)
    }

    async fn remove_role_from_users(&self, role: &str) -> StoreResult<u64> {
        let result = self
            .users
            .update_many(doc! { "roles": role }, doc! { "$pull": { "roles": role } })
            .await
            .map_err(map_err)?;
        Ok(result.modified_count)
    }
}

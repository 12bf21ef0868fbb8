//! Organizations on MongoDB. Collections:
//!
//! - `orgs`: `_id`, `name`, `created_at`, `updated_at`, `owners` (the
//!   owners' user ids: the guard "an organization always has an owner"
//!   checks, see below);
//! - `org_members`: `_id` `{org_id}:{user_id}` (one membership per user
//!   and organization by the primary key), `org_id`, `user_id`, `roles`,
//!   `joined_at`;
//! - `org_invitations`: `_id`, `org_id`, `email`, `roles`, `inviter`,
//!   `token_hash` (unique), `created_at`, `expires_at`, `state`, and
//!   `pending_key` `{org_id}:{email}` while pending (unique, sparse: one
//!   pending invitation per address and organization);
//! - `org_roles`: `_id` `{org_id}:{name}`, `org_id`, `name`,
//!   `description`, `permissions`, `created_at`, `updated_at`.
//!
//! A membership's `roles` say who is an owner; the organization's `owners`
//! list is the guard. Taking `owner` away pulls the user from `owners`
//! first, with one conditional update that matches only while another
//! owner is listed, then changes the membership; granting it changes the
//! membership first, then adds to `owners`. A cut between the two writes
//! leaves an owner the guard does not count, never a counted one who is
//! not: the guard's owners are always real owners, and it never lets the
//! last one go. Two owners removing each other both hit the same document:
//! one update wins, the other finds a single owner listed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::{
    bson::{self, doc, Bson},
    options::{FindOptions, IndexOptions, ReturnDocument},
    Collection, IndexModel,
};
use serde::{Deserialize, Serialize};

use super::{backend, chrono, date, map_err, MongoStore};
use crate::{
    authz::Permission,
    store::{
        Invitation, InvitationState, MemberChange, Membership, OrgRole, OrgStore, Organization,
        StoreResult, OWNER,
    },
    token::TokenHash,
    user::UserId,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OrgDoc {
    #[serde(rename = "_id")]
    id: String,
    name: String,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
    #[serde(default)]
    owners: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct MemberDoc {
    #[serde(rename = "_id")]
    id: String,
    org_id: String,
    user_id: String,
    roles: Vec<String>,
    joined_at: bson::DateTime,
}

impl MemberDoc {
    fn of(m: &Membership) -> Self {
        Self {
            id: member_id(&m.org_id, &m.user_id),
            org_id: m.org_id.clone(),
            user_id: m.user_id.as_str().to_owned(),
            roles: m.roles.clone(),
            joined_at: date(m.joined_at),
        }
    }

    fn into_membership(self) -> Membership {
        Membership::new(
            self.org_id,
            UserId::new(self.user_id),
            self.roles,
            chrono(self.joined_at),
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct InvitationDoc {
    #[serde(rename = "_id")]
    id: String,
    org_id: String,
    email: String,
    roles: Vec<String>,
    inviter: String,
    token_hash: String,
    created_at: bson::DateTime,
    expires_at: bson::DateTime,
    state: InvitationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_key: Option<String>,
}

impl InvitationDoc {
    fn of(i: &Invitation) -> Self {
        Self {
            id: i.id.clone(),
            org_id: i.org_id.clone(),
            email: i.email.clone(),
            roles: i.roles.clone(),
            inviter: i.inviter.as_str().to_owned(),
            token_hash: i.token_hash.as_str().to_owned(),
            created_at: date(i.created_at),
            expires_at: date(i.expires_at),
            state: i.state,
            pending_key: (i.state == InvitationState::Pending)
                .then(|| pending_key(&i.org_id, &i.email)),
        }
    }

    fn into_invitation(self) -> Invitation {
        let mut invitation = Invitation::new(
            self.org_id,
            self.email,
            self.roles,
            UserId::new(self.inviter),
            TokenHash::from_hex(self.token_hash),
            chrono(self.created_at),
            chrono(self.expires_at),
        );
        invitation.id = self.id;
        invitation.state = self.state;
        invitation
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OrgRoleDoc {
    #[serde(rename = "_id")]
    id: String,
    org_id: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    permissions: Vec<Permission>,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
}

impl OrgRoleDoc {
    fn of(r: &OrgRole) -> Self {
        Self {
            id: format!("{}:{}", r.org_id, r.name),
            org_id: r.org_id.clone(),
            name: r.name.clone(),
            description: r.description.clone(),
            permissions: r.permissions.clone(),
            created_at: date(r.created_at),
            updated_at: date(r.updated_at),
        }
    }

    fn into_role(self) -> OrgRole {
        let mut role = OrgRole::new(
            self.org_id,
            self.name,
            self.description,
            self.permissions,
            chrono(self.created_at),
        );
        role.updated_at = chrono(self.updated_at);
        role
    }
}

fn member_id(org_id: &str, user: &UserId) -> String {
    format!("{org_id}:{}", user.as_str())
}

fn pending_key(org_id: &str, email: &str) -> String {
    format!("{org_id}:{email}")
}

/// The organization collections' indexes.
pub(super) async fn ensure_indexes(store: &MongoStore) -> StoreResult<()> {
    let plain = |keys: bson::Document, name: &str| {
        IndexModel::builder()
            .keys(keys)
            .options(IndexOptions::builder().name(name.to_owned()).build())
            .build()
    };
    store
        .orgs
        // `delete_user` takes a deleted user off every owner list.
        .create_indexes([plain(doc! { "owners": 1 }, "owners")])
        .await
        .map_err(map_err)?;
    store
        .org_members
        .create_indexes([
            plain(doc! { "user_id": 1, "joined_at": 1 }, "user"),
            plain(doc! { "org_id": 1, "joined_at": 1 }, "org"),
        ])
        .await
        .map_err(map_err)?;
    store
        .org_invitations
        .create_indexes([
            IndexModel::builder()
                .keys(doc! { "token_hash": 1 })
                .options(
                    IndexOptions::builder()
                        .name("token_unique".to_owned())
                        .unique(true)
                        .build(),
                )
                .build(),
            IndexModel::builder()
                .keys(doc! { "pending_key": 1 })
                .options(
                    IndexOptions::builder()
                        .name("pending_unique".to_owned())
                        .unique(true)
                        .sparse(true)
                        .build(),
                )
                .build(),
            plain(doc! { "org_id": 1, "created_at": 1 }, "org"),
        ])
        .await
        .map_err(map_err)?;
    store
        .org_roles
        .create_indexes([plain(doc! { "org_id": 1, "name": 1 }, "org")])
        .await
        .map_err(map_err)?;
    Ok(())
}

async fn collect<T>(cursor: mongodb::Cursor<T>) -> StoreResult<Vec<T>>
where
    T: serde::de::DeserializeOwned + Send + Sync + Unpin,
{
    cursor.try_collect().await.map_err(map_err)
}

impl MongoStore {
    /// Takes `user` off the organization's owner guard, unless they are the
    /// last owner listed. `Ok(false)` means the last owner.
    async fn release_owner(&self, org_id: &str, user: &UserId) -> StoreResult<bool> {
        let pulled = self
            .orgs
            .update_one(
                doc! { "_id": org_id, "owners": user.as_str(), "owners.1": { "$exists": true } },
                doc! { "$pull": { "owners": user.as_str() } },
            )
            .await
            .map_err(map_err)?;
        if pulled.modified_count == 1 {
            return Ok(true);
        }
        // Not pulled: either the last owner listed, or not listed at all.
        let listed = self
            .orgs
            .count_documents(doc! { "_id": org_id, "owners": user.as_str() })
            .await
            .map_err(map_err)?;
        Ok(listed == 0)
    }

    /// Collections used by the organization code are created on first use.
    fn members(&self) -> &Collection<MemberDoc> {
        &self.org_members
    }
}

#[async_trait]
impl OrgStore for MongoStore {
    async fn insert_org(&self, org: &Organization, owner: &Membership) -> StoreResult<()> {
        // The membership first: an organization is never visible without
        // its owner.
        self.members()
            .insert_one(MemberDoc::of(owner))
            .await
            .map_err(map_err)?;
        self.orgs
            .insert_one(OrgDoc {
                id: org.id.clone(),
                name: org.name.clone(),
                created_at: date(org.created_at),
                updated_at: date(org.updated_at),
                owners: vec![owner.user_id.as_str().to_owned()],
            })
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn find_org(&self, id: &str) -> StoreResult<Option<Organization>> {
        let doc = self
            .orgs
            .find_one(doc! { "_id": id })
            .await
            .map_err(map_err)?;
        Ok(doc.map(|d| {
            let mut org = Organization::new(d.name, chrono(d.created_at));
            org.id = d.id;
            org.updated_at = chrono(d.updated_at);
            org
        }))
    }

    async fn rename_org(&self, id: &str, name: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let result = self
            .orgs
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "name": name, "updated_at": date(now) } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.matched_count == 1)
    }

    async fn delete_org(&self, id: &str) -> StoreResult<bool> {
        // The organization first: with it gone nothing below is reachable.
        let deleted = self
            .orgs
            .delete_one(doc! { "_id": id })
            .await
            .map_err(map_err)?
            .deleted_count
            == 1;
        let of_org = doc! { "org_id": id };
        self.members()
            .delete_many(of_org.clone())
            .await
            .map_err(map_err)?;
        self.org_invitations
            .delete_many(of_org.clone())
            .await
            .map_err(map_err)?;
        self.org_roles.delete_many(of_org).await.map_err(map_err)?;
        Ok(deleted)
    }

    async fn find_membership(
        &self,
        org_id: &str,
        user: &UserId,
    ) -> StoreResult<Option<Membership>> {
        let doc = self
            .members()
            .find_one(doc! { "_id": member_id(org_id, user) })
            .await
            .map_err(map_err)?;
        Ok(doc.map(MemberDoc::into_membership))
    }

    async fn list_user_memberships(&self, user: &UserId) -> StoreResult<Vec<Membership>> {
        let cursor = self
            .members()
            .find(doc! { "user_id": user.as_str() })
            .with_options(
                FindOptions::builder()
                    .sort(doc! { "joined_at": 1, "_id": 1 })
                    .build(),
            )
            .await
            .map_err(map_err)?;
        Ok(collect(cursor)
            .await?
            .into_iter()
            .map(MemberDoc::into_membership)
            .collect())
    }

    async fn list_members(&self, org_id: &str) -> StoreResult<Vec<Membership>> {
        let cursor = self
            .members()
            .find(doc! { "org_id": org_id })
            .with_options(
                FindOptions::builder()
                    .sort(doc! { "joined_at": 1, "_id": 1 })
                    .build(),
            )
            .await
            .map_err(map_err)?;
        Ok(collect(cursor)
            .await?
            .into_iter()
            .map(MemberDoc::into_membership)
            .collect())
    }

    async fn insert_membership(&self, membership: &Membership) -> StoreResult<()> {
        self.members()
            .insert_one(MemberDoc::of(membership))
            .await
            .map_err(map_err)?;
        if membership.is_owner() {
            self.orgs
                .update_one(
                    doc! { "_id": &membership.org_id },
                    doc! { "$addToSet": { "owners": membership.user_id.as_str() } },
                )
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn set_member_roles(
        &self,
        org_id: &str,
        user: &UserId,
        roles: &[String],
    ) -> StoreResult<MemberChange> {
        let id = member_id(org_id, user);
        let exists = self
            .members()
            .count_documents(doc! { "_id": &id })
            .await
            .map_err(map_err)?;
        if exists == 0 {
            return Ok(MemberChange::NotFound);
        }
        let owner = roles.iter().any(|r| r == OWNER);
        if !owner && !self.release_owner(org_id, user).await? {
            return Ok(MemberChange::LastOwner);
        }
        let updated = self
            .members()
            .update_one(doc! { "_id": &id }, doc! { "$set": { "roles": roles } })
            .await
            .map_err(map_err)?;
        if updated.matched_count == 0 {
            return Ok(MemberChange::NotFound);
        }
        if owner {
            self.orgs
                .update_one(
                    doc! { "_id": org_id },
                    doc! { "$addToSet": { "owners": user.as_str() } },
                )
                .await
                .map_err(map_err)?;
        }
        Ok(MemberChange::Done)
    }

    async fn remove_membership(&self, org_id: &str, user: &UserId) -> StoreResult<MemberChange> {
        if !self.release_owner(org_id, user).await? {
            return Ok(MemberChange::LastOwner);
        }
        let deleted = self
            .members()
            .delete_one(doc! { "_id": member_id(org_id, user) })
            .await
            .map_err(map_err)?;
        Ok(if deleted.deleted_count == 1 {
            MemberChange::Done
        } else {
            MemberChange::NotFound
        })
    }

    async fn insert_invitation(
        &self,
        invitation: &Invitation,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        // An expired invitation no longer holds the address's slot.
        self.org_invitations
            .update_many(
                doc! {
                    "pending_key": pending_key(&invitation.org_id, &invitation.email),
                    "expires_at": { "$lte": date(now) },
                },
                doc! { "$unset": { "pending_key": "" } },
            )
            .await
            .map_err(map_err)?;
        self.org_invitations
            .insert_one(InvitationDoc::of(invitation))
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn find_invitation_by_token(&self, hash: &TokenHash) -> StoreResult<Option<Invitation>> {
        let doc = self
            .org_invitations
            .find_one(doc! { "token_hash": hash.as_str() })
            .await
            .map_err(map_err)?;
        Ok(doc.map(InvitationDoc::into_invitation))
    }

    async fn list_invitations(
        &self,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Invitation>> {
        let cursor = self
            .org_invitations
            .find(doc! {
                "org_id": org_id,
                "state": "pending",
                "expires_at": { "$gt": date(now) },
            })
            .with_options(
                FindOptions::builder()
                    .sort(doc! { "created_at": 1, "_id": 1 })
                    .build(),
            )
            .await
            .map_err(map_err)?;
        Ok(collect(cursor)
            .await?
            .into_iter()
            .map(InvitationDoc::into_invitation)
            .collect())
    }

    async fn revoke_invitation(&self, org_id: &str, id: &str) -> StoreResult<bool> {
        let result = self
            .org_invitations
            .update_one(
                doc! { "_id": id, "org_id": org_id, "state": "pending" },
                doc! { "$set": { "state": "revoked" }, "$unset": { "pending_key": "" } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.modified_count == 1)
    }

    async fn accept_invitation(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Invitation>> {
        let doc = self
            .org_invitations
            .find_one_and_update(
                doc! {
                    "token_hash": hash.as_str(),
                    "state": "pending",
                    "expires_at": { "$gt": date(now) },
                },
                doc! { "$set": { "state": "accepted" }, "$unset": { "pending_key": "" } },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_err)?;
        Ok(doc.map(InvitationDoc::into_invitation))
    }

    async fn insert_org_role(&self, role: &OrgRole) -> StoreResult<()> {
        self.org_roles
            .insert_one(OrgRoleDoc::of(role))
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_org_roles(&self, org_id: &str) -> StoreResult<Vec<OrgRole>> {
        let cursor = self
            .org_roles
            .find(doc! { "org_id": org_id })
            .with_options(FindOptions::builder().sort(doc! { "name": 1 }).build())
            .await
            .map_err(map_err)?;
        Ok(collect(cursor)
            .await?
            .into_iter()
            .map(OrgRoleDoc::into_role)
            .collect())
    }

    async fn update_org_role(&self, role: &OrgRole) -> StoreResult<bool> {
        let doc = OrgRoleDoc::of(role);
        let permissions = bson::to_bson(&doc.permissions).map_err(backend)?;
        let result = self
            .org_roles
            .update_one(
                doc! { "_id": &doc.id },
                doc! { "$set": {
                    "description": doc.description.as_deref().map_or(Bson::Null, Bson::from),
                    "permissions": permissions,
                    "updated_at": doc.updated_at,
                } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.matched_count == 1)
    }

    async fn delete_org_role(&self, org_id: &str, name: &str) -> StoreResult<bool> {
        let deleted = self
            .org_roles
            .delete_one(doc! { "_id": format!("{org_id}:{name}") })
            .await
            .map_err(map_err)?
            .deleted_count
            == 1;
        if deleted {
            self.members()
                .update_many(
                    doc! { "org_id": org_id, "roles": name },
                    doc! { "$pull": { "roles": name } },
                )
                .await
                .map_err(map_err)?;
        }
        Ok(deleted)
    }
}

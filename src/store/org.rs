//! Organizations as a store keeps them: the organizations, their members
//! with organization roles, invitations and custom organization roles.
//!
//! The store enforces the rules that must hold under concurrency: one
//! membership per user and organization, one pending invitation per address
//! and organization, single-use acceptance, and "an organization always has
//! an owner" ([`MemberChange::LastOwner`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::{authz::Permission, token::TokenHash, user::UserId};

/// The built-in role every organization has at least one holder of.
pub const OWNER: &str = "owner";

fn millis(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Organization {
    /// Id (UUID v7 text).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last rename.
    pub updated_at: DateTime<Utc>,
}

impl Organization {
    /// A new organization named `name`, created at `now`.
    pub fn new(name: impl Into<String>, now: DateTime<Utc>) -> Self {
        let now = millis(now);
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.into(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// A user's membership of an organization, with their roles in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Membership {
    /// The organization's id.
    pub org_id: String,
    /// The member.
    pub user_id: UserId,
    /// Organization roles: `owner`, `admin`, `member`, or custom.
    pub roles: Vec<String>,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

impl Membership {
    /// `user` joins `org` with `roles` at `now`.
    pub fn new(
        org_id: impl Into<String>,
        user_id: UserId,
        roles: Vec<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            org_id: org_id.into(),
            user_id,
            roles,
            joined_at: millis(now),
        }
    }

    /// Whether the member holds `owner`.
    pub fn is_owner(&self) -> bool {
        self.roles.iter().any(|r| r == OWNER)
    }
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InvitationState {
    /// Waiting for the invited address to accept (until `expires_at`).
    Pending,
    /// Accepted (single use).
    Accepted,
    /// Revoked by an admin of the organization.
    Revoked,
}

/// An invitation to one email address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Invitation {
    /// Id (UUID v7 text), for listing and revoking.
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// The invited address, normalised.
    pub email: String,
    /// The organization roles the invitee gets.
    pub roles: Vec<String>,
    /// Who invited.
    pub inviter: UserId,
    /// Hash of the mailed token (the token itself is never stored).
    pub token_hash: TokenHash,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// End of validity.
    pub expires_at: DateTime<Utc>,
    /// Pending, accepted or revoked.
    pub state: InvitationState,
}

impl Invitation {
    /// A pending invitation of `email` to `org_id` valid until `expires_at`.
    pub fn new(
        org_id: impl Into<String>,
        email: impl Into<String>,
        roles: Vec<String>,
        inviter: UserId,
        token_hash: TokenHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: org_id.into(),
            email: email.into(),
            roles,
            inviter,
            token_hash,
            created_at: millis(now),
            expires_at: millis(expires_at),
            state: InvitationState::Pending,
        }
    }

    /// Pending and unexpired at `now`.
    pub fn is_pending(&self, now: DateTime<Utc>) -> bool {
        self.state == InvitationState::Pending && self.expires_at > now
    }
}

/// A custom organization role: a named set of permissions within one
/// organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OrgRole {
    /// The organization.
    pub org_id: String,
    /// Name, unique in the organization; never `owner`, `admin`, `member`.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// What it grants in the organization.
    pub permissions: Vec<Permission>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl OrgRole {
    /// A custom role of `org_id` created at `now`.
    pub fn new(
        org_id: impl Into<String>,
        name: impl Into<String>,
        description: Option<String>,
        permissions: Vec<Permission>,
        now: DateTime<Utc>,
    ) -> Self {
        let now = millis(now);
        Self {
            org_id: org_id.into(),
            name: name.into(),
            description,
            permissions,
            created_at: now,
            updated_at: now,
        }
    }
}

/// The outcome of a membership change that could take away an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberChange {
    /// Applied.
    Done,
    /// No such membership.
    NotFound,
    /// Refused: the member is the organization's last owner.
    LastOwner,
}

/// Organizations, memberships, invitations and custom organization roles.
///
/// # Errors
///
/// Every method fails with [`StoreError::Unavailable`](super::StoreError)
/// when the backend is down; `insert_*` with
/// [`StoreError::Conflict`](super::StoreError) on a duplicate.
#[async_trait]
pub trait OrgStore: Send + Sync + 'static {
    /// Inserts an organization with its first member (its owner).
    async fn insert_org(&self, org: &Organization, owner: &Membership) -> StoreResult<()>;

    /// The organization with this id.
    async fn find_org(&self, id: &str) -> StoreResult<Option<Organization>>;

    /// Renames an organization; `false` when none has the id.
    async fn rename_org(&self, id: &str, name: &str, now: DateTime<Utc>) -> StoreResult<bool>;

    /// Deletes an organization with its memberships, invitations and
    /// custom roles; `false` when none had the id.
    async fn delete_org(&self, id: &str) -> StoreResult<bool>;

    /// The user's membership of `org_id`.
    async fn find_membership(&self, org_id: &str, user: &UserId)
        -> StoreResult<Option<Membership>>;

    /// The user's memberships, oldest first.
    async fn list_user_memberships(&self, user: &UserId) -> StoreResult<Vec<Membership>>;

    /// The organization's members, oldest first.
    async fn list_members(&self, org_id: &str) -> StoreResult<Vec<Membership>>;

    /// Adds a member; [`StoreError::Conflict`](super::StoreError) when the
    /// user is a member already (one membership per user and organization,
    /// enforced by the store, also under concurrency).
    async fn insert_membership(&self, membership: &Membership) -> StoreResult<()>;

    /// Replaces a member's roles, atomically refusing
    /// ([`MemberChange::LastOwner`]) to take `owner` from the last owner:
    /// two concurrent demotions of the last two owners never both apply.
    async fn set_member_roles(
        &self,
        org_id: &str,
        user: &UserId,
        roles: &[String],
    ) -> StoreResult<MemberChange>;

    /// Removes a member, atomically refusing to remove the last owner.
    async fn remove_membership(&self, org_id: &str, user: &UserId) -> StoreResult<MemberChange>;

    /// Stores a pending invitation; [`StoreError::Conflict`](super::StoreError)
    /// when a pending, unexpired invitation of the same address to the same
    /// organization exists (enforced by the store, also under concurrency;
    /// an expired one no longer counts).
    async fn insert_invitation(
        &self,
        invitation: &Invitation,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// The invitation with this token hash, in any state.
    async fn find_invitation_by_token(&self, hash: &TokenHash) -> StoreResult<Option<Invitation>>;

    /// The organization's pending, unexpired invitations, oldest first.
    async fn list_invitations(
        &self,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Invitation>>;

    /// Revokes a pending invitation of `org_id`; `false` when none is
    /// pending with this id.
    async fn revoke_invitation(&self, org_id: &str, id: &str) -> StoreResult<bool>;

    /// Atomically marks the pending, unexpired invitation with this hash
    /// accepted and returns it; `None` when it is unknown, used, revoked or
    /// expired. Of concurrent calls, exactly one gets it.
    async fn accept_invitation(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Invitation>>;

    /// Inserts a custom role; [`StoreError::Conflict`](super::StoreError)
    /// when the organization has one of that name.
    async fn insert_org_role(&self, role: &OrgRole) -> StoreResult<()>;

    /// The organization's custom roles, sorted by name.
    async fn list_org_roles(&self, org_id: &str) -> StoreResult<Vec<OrgRole>>;

    /// Replaces a custom role's description and permissions; `false` when
    /// the organization has none of that name.
    async fn update_org_role(&self, role: &OrgRole) -> StoreResult<bool>;

    /// Deletes a custom role and takes it off the members holding it;
    /// `false` when the organization had none of that name.
    async fn delete_org_role(&self, org_id: &str, name: &str) -> StoreResult<bool>;
}

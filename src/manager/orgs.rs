//! Organizations: members with organization roles, invitations to one
//! verified address, custom organization roles, and the active
//! organization of a session.
//!
//! One rule decides who may change what: a member acts on an organization
//! only through the permissions their organization roles grant there
//! ([`BUILT_IN_ROLES`] and custom roles), and grants only what they hold
//! themself: giving a role, inviting with it, defining it, or changing or
//! removing a member whose roles grant more than the caller's is refused
//! (403 `FORBIDDEN` naming the missing permission). The owner role grants
//! `*`, so only an owner makes, unmakes or removes an owner. Non-members
//! get 404 (an organization's existence is not shown to outsiders). The
//! store keeps "an organization always has an owner" under concurrency
//! ([`MemberChange::LastOwner`]): 409 `LAST_OWNER`.

use super::{
    access::ActiveOrg,
    roles::{check_description, parse_permissions},
    AuthManager, Principal,
};
use crate::{
    authz::{check_role_name, Permission, PermissionSet},
    email::Message,
    error::{Error, Result},
    hooks::{Action, Event},
    store::{
        ClientInfo, Invitation, MemberChange, Membership, OrgRole, Organization, StoreError, OWNER,
    },
    token::{OpaqueToken, TokenHash},
    user::{normalize_email, UserId},
};

/// The organization roles every organization has, with what they grant
/// there: `owner` everything, `admin` everything but deleting the
/// organization and managing owners (which `*` alone covers), `member`
/// reading it.
pub const BUILT_IN_ROLES: [(&str, &[&str]); 3] = [
    (OWNER, &["*"]),
    (
        "admin",
        &[
            "org:read",
            "org:update",
            "org:members:manage",
            "org:invitations:manage",
            "org:roles:manage",
        ],
    ),
    ("member", &["org:read"]),
];

/// Longest organization name, in characters.
pub const MAX_ORG_NAME_CHARS: usize = 100;

/// Most custom roles one organization defines.
pub const MAX_ORG_ROLES: usize = 64;

/// Most members one invitation or role change gives roles to at once.
const MAX_MEMBER_ROLES: usize = 16;

/// The permissions an organization's routes check.
pub mod org_permission {
    /// See the organization, its members and its roles.
    pub const READ: &str = "org:read";
    /// Rename the organization.
    pub const UPDATE: &str = "org:update";
    /// Delete the organization (owners: only `*` grants it).
    pub const DELETE: &str = "org:delete";
    /// Change members' roles and remove members.
    pub const MEMBERS: &str = "org:members:manage";
    /// Invite, list and revoke invitations.
    pub const INVITATIONS: &str = "org:invitations:manage";
    /// Define custom organization roles.
    pub const ROLES: &str = "org:roles:manage";
    /// Transfer ownership (owners: only `*` grants it).
    pub const OWNERS: &str = "org:owners:manage";
}

use org_permission as perm;

fn built_in(name: &str) -> Option<&'static [&'static str]> {
    BUILT_IN_ROLES
        .iter()
        .find(|(role, _)| *role == name)
        .map(|(_, grants)| *grants)
}

fn check_org_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_ORG_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Error::validation(
            "name",
            "INVALID_NAME",
            format!(
                "an organization name has 1–{MAX_ORG_NAME_CHARS} characters, no control characters"
            ),
        ));
    }
    Ok(name.to_owned())
}

/// A member's view of one organization: the organization and their
/// membership of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrgMembership {
    /// The organization.
    pub org: Organization,
    /// The caller's membership.
    pub membership: Membership,
}

/// A new invitation: its record, and the token mailed in its link (shown
/// here once, for apps that deliver it themselves; the store keeps only its
/// hash).
#[derive(Debug)]
#[non_exhaustive]
pub struct NewInvitation {
    /// The stored invitation.
    pub invitation: Invitation,
    /// The raw token.
    pub token: OpaqueToken,
}

/// The caller's standing in one organization, resolved for one request.
struct Standing {
    org: Organization,
    membership: Membership,
    permissions: PermissionSet,
    custom: Vec<OrgRole>,
}

impl Standing {
    fn require(&self, permission: &str) -> Result<()> {
        if self.permissions.grants(permission) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(permission.to_owned()))
        }
    }

    /// What `roles` grant in this organization; `Err` names the first role
    /// that does not exist here.
    fn grants_of(&self, roles: &[String]) -> Result<Vec<Permission>> {
        let mut grants = Vec::new();
        for (i, role) in roles.iter().enumerate() {
            if let Some(names) = built_in(role) {
                grants.extend(names.iter().filter_map(|n| Permission::parse(n).ok()));
            } else if let Some(custom) = self.custom.iter().find(|c| &c.name == role) {
                grants.extend(custom.permissions.iter().cloned());
            } else {
                return Err(Error::validation(
                    format!("roles[{i}]"),
                    "INVALID_ROLES",
                    "no such role in this organization",
                ));
            }
        }
        Ok(grants)
    }

    /// What `roles` grant here, skipping a name with no definition (it
    /// grants nothing).
    fn held_grants(&self, roles: &[String]) -> Vec<Permission> {
        roles
            .iter()
            .filter_map(|role| self.grants_of(std::slice::from_ref(role)).ok())
            .flatten()
            .collect()
    }

    /// Refuses unless the caller holds every permission in `grants` (the
    /// "grant only what you hold" rule).
    fn require_covers(&self, grants: &[Permission]) -> Result<()> {
        match grants.iter().find(|g| !self.permissions.covers(g)) {
            None => Ok(()),
            Some(missing) => Err(Error::PermissionDenied(missing.to_string())),
        }
    }
}

/// What `roles` grant, given the organization's custom roles; a name with
/// no definition grants nothing.
fn permissions_of(roles: &[String], custom: &[OrgRole]) -> PermissionSet {
    let mut permissions = PermissionSet::default();
    for role in roles {
        if let Some(names) = built_in(role) {
            permissions.extend(names.iter().filter_map(|n| Permission::parse(n).ok()));
        } else if let Some(defined) = custom.iter().find(|c| &c.name == role) {
            permissions.extend(defined.permissions.iter().cloned());
        }
    }
    permissions
}

fn check_roles(roles: &[String]) -> Result<Vec<String>> {
    if roles.is_empty() || roles.len() > MAX_MEMBER_ROLES {
        return Err(Error::validation(
            "roles",
            "INVALID_ROLES",
            format!("give 1–{MAX_MEMBER_ROLES} roles"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for role in roles {
        if !out.contains(role) {
            out.push(role.clone());
        }
    }
    Ok(out)
}

impl AuthManager {
    /// What `roles` grant in `org_id`: built-in roles from memory, custom
    /// roles with one store read (only when one is held).
    pub(crate) async fn org_permissions(
        &self,
        org_id: &str,
        roles: &[String],
    ) -> Result<PermissionSet> {
        let custom = if roles.iter().all(|r| built_in(r).is_some()) {
            Vec::new()
        } else {
            self.inner.store.list_org_roles(org_id).await?
        };
        Ok(permissions_of(roles, &custom))
    }

    /// The caller's membership of `org_id`, read for this request; 404 for
    /// a non-member (and for an unknown organization).
    async fn standing(&self, principal: &Principal, org_id: &str) -> Result<Standing> {
        let store = &self.inner.store;
        let membership = store
            .find_membership(org_id, &principal.user.id)
            .await?
            .ok_or(Error::NotFound("organization"))?;
        let org = store
            .find_org(org_id)
            .await?
            .ok_or(Error::NotFound("organization"))?;
        let custom = store.list_org_roles(org_id).await?;
        let permissions = permissions_of(&membership.roles, &custom);
        Ok(Standing {
            org,
            membership,
            permissions,
            custom,
        })
    }

    /// The session's active organization with the user's roles in it, read
    /// on every request that has one; `None` once the user is no longer a
    /// member (so a removed member loses the roles at once).
    pub(crate) async fn resolve_active_org(
        &self,
        user: &UserId,
        org_id: &str,
    ) -> Result<Option<ActiveOrg>> {
        let Some(membership) = self.inner.store.find_membership(org_id, user).await? else {
            return Ok(None);
        };
        let permissions = self.org_permissions(org_id, &membership.roles).await?;
        Ok(Some(ActiveOrg {
            id: org_id.to_owned(),
            roles: membership.roles,
            permissions,
        }))
    }

    /// Creates an organization; the caller is its owner. Asks the
    /// `create_org` before-hooks; emits `org_created`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (422 `INVALID_NAME`), [`Error::Vetoed`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn create_org(&self, principal: &Principal, name: &str) -> Result<OrgMembership> {
        let name = check_org_name(name)?;
        let by = principal.user.id.clone();
        self.inner
            .hooks
            .before(Action::CreateOrg {
                name: name.clone(),
                by: by.clone(),
            })
            .await?;
        let now = self.now();
        let org = Organization::new(name, now);
        let membership = Membership::new(&org.id, by.clone(), vec![OWNER.to_owned()], now);
        self.inner.store.insert_org(&org, &membership).await?;
        self.emit(Event::OrgCreated {
            org: org.clone(),
            by,
        })
        .await;
        Ok(OrgMembership { org, membership })
    }

    /// The caller's organizations with their membership, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] (503).
    pub async fn list_my_orgs(&self, principal: &Principal) -> Result<Vec<OrgMembership>> {
        let store = &self.inner.store;
        let mut out = Vec::new();
        for membership in store.list_user_memberships(&principal.user.id).await? {
            if let Some(org) = store.find_org(&membership.org_id).await? {
                out.push(OrgMembership { org, membership });
            }
        }
        Ok(out)
    }

    /// One organization of the caller's, with their membership.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404: not a member), [`Error::Unavailable`] (503).
    pub async fn get_org(&self, principal: &Principal, org_id: &str) -> Result<OrgMembership> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::READ)?;
        Ok(OrgMembership {
            org: standing.org,
            membership: standing.membership,
        })
    }

    /// Renames an organization (`org:update`). Asks the `rename_org`
    /// before-hooks; emits `org_renamed`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::PermissionDenied`] (403),
    /// [`Error::Validation`] (422), [`Error::Vetoed`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn rename_org(
        &self,
        principal: &Principal,
        org_id: &str,
        name: &str,
    ) -> Result<Organization> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::UPDATE)?;
        let name = check_org_name(name)?;
        let by = principal.user.id.clone();
        self.inner
            .hooks
            .before(Action::RenameOrg {
                org_id: org_id.to_owned(),
                name: name.clone(),
                by: by.clone(),
            })
            .await?;
        if !self
            .inner
            .store
            .rename_org(org_id, &name, self.now())
            .await?
        {
            return Err(Error::NotFound("organization"));
        }
        let org = self
            .inner
            .store
            .find_org(org_id)
            .await?
            .ok_or(Error::NotFound("organization"))?;
        self.emit(Event::OrgRenamed {
            org: org.clone(),
            by,
        })
        .await;
        Ok(org)
    }

    /// Deletes an organization with its memberships, invitations and
    /// custom roles: owners only (`org:delete`, which only `*` grants), with
    /// a recent sign-in. Sessions that had it active lose it at once. Asks
    /// the `delete_org` before-hooks; emits `org_deleted`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::PermissionDenied`] (403),
    /// [`Error::ReauthenticationRequired`] (403), [`Error::Vetoed`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn delete_org(&self, principal: &Principal, org_id: &str) -> Result<()> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::DELETE)?;
        self.require_recent_sign_in(principal)?;
        let by = principal.user.id.clone();
        self.inner
            .hooks
            .before(Action::DeleteOrg {
                org_id: org_id.to_owned(),
                by: by.clone(),
            })
            .await?;
        if !self.inner.store.delete_org(org_id).await? {
            return Err(Error::NotFound("organization"));
        }
        self.emit(Event::OrgDeleted {
            org_id: org_id.to_owned(),
            by,
        })
        .await;
        Ok(())
    }

    /// The organization's members, oldest first (`org:read`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::PermissionDenied`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn list_members(
        &self,
        principal: &Principal,
        org_id: &str,
    ) -> Result<Vec<Membership>> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::READ)?;
        Ok(self.inner.store.list_members(org_id).await?)
    }

    /// Replaces a member's organization roles (`org:members:manage`). The
    /// caller must hold everything both the member's current roles and the
    /// new ones grant (so only an owner makes or unmakes an owner); the
    /// last owner keeps `owner` (409 `LAST_OWNER`). The change applies to
    /// the member's next request. Asks the `set_member_roles` before-hooks;
    /// emits `member_roles_changed`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404: organization or member),
    /// [`Error::PermissionDenied`] (403), [`Error::Validation`] (422
    /// `INVALID_ROLES`), [`Error::LastOwner`] (409), [`Error::Vetoed`]
    /// (403), [`Error::Unavailable`] (503).
    pub async fn set_member_roles(
        &self,
        principal: &Principal,
        org_id: &str,
        member: &UserId,
        roles: &[String],
    ) -> Result<Membership> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::MEMBERS)?;
        let roles = check_roles(roles)?;
        let target = self
            .inner
            .store
            .find_membership(org_id, member)
            .await?
            .ok_or(Error::NotFound("member"))?;
        standing.require_covers(&standing.held_grants(&target.roles))?;
        standing.require_covers(&standing.grants_of(&roles)?)?;
        self.apply_member_roles(org_id, member, roles, &principal.user.id)
            .await
    }

    async fn apply_member_roles(
        &self,
        org_id: &str,
        member: &UserId,
        roles: Vec<String>,
        by: &UserId,
    ) -> Result<Membership> {
        self.inner
            .hooks
            .before(Action::SetMemberRoles {
                org_id: org_id.to_owned(),
                user_id: member.clone(),
                roles: roles.clone(),
                by: by.clone(),
            })
            .await?;
        match self
            .inner
            .store
            .set_member_roles(org_id, member, &roles)
            .await?
        {
            MemberChange::Done => {}
            MemberChange::NotFound => return Err(Error::NotFound("member")),
            MemberChange::LastOwner => return Err(Error::LastOwner),
        }
        self.emit(Event::MemberRolesChanged {
            org_id: org_id.to_owned(),
            user_id: member.clone(),
            roles: roles.clone(),
            by: by.clone(),
        })
        .await;
        self.inner
            .store
            .find_membership(org_id, member)
            .await?
            .ok_or(Error::NotFound("member"))
    }

    /// Removes a member (`org:members:manage`, and the caller must hold
    /// everything the member's roles grant); the last owner is never
    /// removed (409 `LAST_OWNER`). The member's token loses the
    /// organization's roles on its next request. Asks the `remove_member`
    /// before-hooks; emits `member_removed`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::PermissionDenied`] (403),
    /// [`Error::LastOwner`] (409), [`Error::Vetoed`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn remove_member(
        &self,
        principal: &Principal,
        org_id: &str,
        member: &UserId,
    ) -> Result<()> {
        let standing = self.standing(principal, org_id).await?;
        if member != &principal.user.id {
            standing.require(perm::MEMBERS)?;
            let target = self
                .inner
                .store
                .find_membership(org_id, member)
                .await?
                .ok_or(Error::NotFound("member"))?;
            standing.require_covers(&standing.held_grants(&target.roles))?;
        }
        self.drop_member(org_id, member, &principal.user.id).await
    }

    /// The caller leaves the organization; the last owner cannot (409
    /// `LAST_OWNER`: transfer ownership or delete the organization).
    ///
    /// # Errors
    ///
    /// As [`remove_member`](Self::remove_member).
    pub async fn leave_org(&self, principal: &Principal, org_id: &str) -> Result<()> {
        self.remove_member(principal, org_id, &principal.user.id)
            .await
    }

    async fn drop_member(&self, org_id: &str, member: &UserId, by: &UserId) -> Result<()> {
        self.inner
            .hooks
            .before(Action::RemoveMember {
                org_id: org_id.to_owned(),
                user_id: member.clone(),
                by: by.clone(),
            })
            .await?;
        match self.inner.store.remove_membership(org_id, member).await? {
            MemberChange::Done => {}
            MemberChange::NotFound => return Err(Error::NotFound("member")),
            MemberChange::LastOwner => return Err(Error::LastOwner),
        }
        self.emit(Event::MemberRemoved {
            org_id: org_id.to_owned(),
            user_id: member.clone(),
            by: by.clone(),
        })
        .await;
        Ok(())
    }

    /// Makes another member the owner and the caller (an owner) an
    /// `admin`: the new owner gets `owner` first, so the organization is
    /// never without one. Emits `ownership_transferred`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::PermissionDenied`] (403:
    /// `org:owners:manage`, only owners), [`Error::Validation`] (422:
    /// `INVALID_ROLES`, to oneself), [`Error::Vetoed`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn transfer_ownership(
        &self,
        principal: &Principal,
        org_id: &str,
        to: &UserId,
    ) -> Result<Membership> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::OWNERS)?;
        let me = &principal.user.id;
        if to == me {
            return Err(Error::validation(
                "user_id",
                "INVALID_ROLES",
                "you are an owner already: name another member",
            ));
        }
        let target = self
            .inner
            .store
            .find_membership(org_id, to)
            .await?
            .ok_or(Error::NotFound("member"))?;
        let mut new_roles = target.roles.clone();
        if !new_roles.iter().any(|r| r == OWNER) {
            new_roles.insert(0, OWNER.to_owned());
        }
        let promoted = self.apply_member_roles(org_id, to, new_roles, me).await?;
        let mut mine: Vec<String> = standing
            .membership
            .roles
            .into_iter()
            .filter(|r| r != OWNER)
            .collect();
        if !mine.iter().any(|r| r == "admin") {
            mine.insert(0, "admin".to_owned());
        }
        self.apply_member_roles(org_id, me, mine, me).await?;
        self.emit(Event::OwnershipTransferred {
            org_id: org_id.to_owned(),
            from: me.clone(),
            to: to.clone(),
        })
        .await;
        Ok(promoted)
    }

    /// Invites `email` with `roles` (`org:invitations:manage`; the caller
    /// must hold what the roles grant) and mails the link. One pending
    /// invitation per address and organization (409 `INVITATION_PENDING`);
    /// a member already is 409 `ALREADY_MEMBER`. The request counts
    /// against the client's `email_per_ip` limit and the mail against the
    /// address's budget. Asks the `invite_member` before-hooks; emits
    /// `invitation_created`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::PermissionDenied`] (403),
    /// [`Error::Validation`] (422 `INVALID_EMAIL`, `INVALID_ROLES`),
    /// [`Error::InvitationPending`], [`Error::AlreadyMember`] (409),
    /// [`Error::Vetoed`] (403), [`Error::RateLimited`] (429),
    /// [`Error::EmailNotConfigured`], [`Error::Unavailable`] (503).
    pub async fn invite_member(
        &self,
        principal: &Principal,
        org_id: &str,
        email: &str,
        roles: &[String],
        client: &ClientInfo,
    ) -> Result<NewInvitation> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::INVITATIONS)?;
        let email = normalize_email(email)?;
        let roles = check_roles(roles)?;
        standing.require_covers(&standing.grants_of(&roles)?)?;
        self.require_email()?;
        self.rate_limit(super::RateRule::EmailPerIp, client).await?;
        let store = &self.inner.store;
        if let Some(user) = store.find_user_by_email(&email).await? {
            if store.find_membership(org_id, &user.id).await?.is_some() {
                return Err(Error::AlreadyMember);
            }
        }
        let by = principal.user.id.clone();
        self.inner
            .hooks
            .before(Action::InviteMember {
                org_id: org_id.to_owned(),
                email: email.clone(),
                roles: roles.clone(),
                by: by.clone(),
            })
            .await?;
        let ttl = self.inner.config.email.invitation_ttl_secs;
        let now = self.now();
        let expires = now + chrono::Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX / 2));
        let token = OpaqueToken::generate();
        let invitation = Invitation::new(
            org_id,
            email.clone(),
            roles.clone(),
            by.clone(),
            token.hash(),
            now,
            expires,
        );
        match store.insert_invitation(&invitation, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::InvitationPending),
            Err(e) => return Err(e.into()),
        }
        if self.mail_budget(&email).await? {
            self.deliver(
                &email,
                None,
                Message::OrgInvitation {
                    link: self.page_link(
                        self.inner.config.email.invitation_url.as_deref(),
                        "/orgs/invitations/accept",
                        &token,
                    ),
                    org_name: standing.org.name.clone(),
                    inviter: principal.user.email.clone(),
                    expires_in_secs: ttl,
                },
            );
        }
        self.emit(Event::InvitationCreated {
            org_id: org_id.to_owned(),
            invitation_id: invitation.id.clone(),
            email,
            roles,
            by,
        })
        .await;
        Ok(NewInvitation { invitation, token })
    }

    /// The organization's pending invitations (`org:invitations:manage`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::PermissionDenied`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn list_invitations(
        &self,
        principal: &Principal,
        org_id: &str,
    ) -> Result<Vec<Invitation>> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::INVITATIONS)?;
        Ok(self
            .inner
            .store
            .list_invitations(org_id, self.now())
            .await?)
    }

    /// Revokes a pending invitation (`org:invitations:manage`): its link
    /// stops working at once. Asks the `revoke_invitation` before-hooks;
    /// emits `invitation_revoked`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404: organization, or no pending invitation
    /// with this id), [`Error::PermissionDenied`] (403), [`Error::Vetoed`]
    /// (403), [`Error::Unavailable`] (503).
    pub async fn revoke_invitation(
        &self,
        principal: &Principal,
        org_id: &str,
        invitation_id: &str,
    ) -> Result<()> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::INVITATIONS)?;
        let by = principal.user.id.clone();
        self.inner
            .hooks
            .before(Action::RevokeInvitation {
                org_id: org_id.to_owned(),
                invitation_id: invitation_id.to_owned(),
                by: by.clone(),
            })
            .await?;
        if !self
            .inner
            .store
            .revoke_invitation(org_id, invitation_id)
            .await?
        {
            return Err(Error::NotFound("invitation"));
        }
        self.emit(Event::InvitationRevoked {
            org_id: org_id.to_owned(),
            invitation_id: invitation_id.to_owned(),
            by,
        })
        .await;
        Ok(())
    }

    /// Accepts an invitation: only a signed-in user whose *verified* email
    /// is the invited address (403 `INVITATION_NOT_FOR_YOU` otherwise, and
    /// the invitation stays usable by its addressee). Single use: of
    /// concurrent accepts one wins, the others get 410 `TOKEN_GONE`, as do
    /// revoked, expired and unknown tokens. Asks the `accept_invitation`
    /// before-hooks; emits `invitation_accepted`.
    ///
    /// # Errors
    ///
    /// [`Error::TokenGone`] (410), [`Error::InvitationNotForYou`] (403),
    /// [`Error::AlreadyMember`] (409), [`Error::Vetoed`] (403),
    /// [`Error::RateLimited`] (429), [`Error::Unavailable`] (503).
    pub async fn accept_invitation(
        &self,
        principal: &Principal,
        token: &str,
        client: &ClientInfo,
    ) -> Result<OrgMembership> {
        self.rate_limit(super::RateRule::TokenPerIp, client).await?;
        let store = &self.inner.store;
        let now = self.now();
        let hash = TokenHash::of(token);
        let invitation = store
            .find_invitation_by_token(&hash)
            .await?
            .filter(|i| i.is_pending(now))
            .ok_or(Error::TokenGone)?;
        let user = &principal.user;
        if !user.email_verified || user.email_normalized != invitation.email {
            return Err(Error::InvitationNotForYou);
        }
        if store
            .find_membership(&invitation.org_id, &user.id)
            .await?
            .is_some()
        {
            return Err(Error::AlreadyMember);
        }
        self.inner
            .hooks
            .before(Action::AcceptInvitation {
                org_id: invitation.org_id.clone(),
                invitation_id: invitation.id.clone(),
                user: Box::new(user.clone()),
            })
            .await?;
        let invitation = store
            .accept_invitation(&hash, now)
            .await?
            .ok_or(Error::TokenGone)?;
        let org = store
            .find_org(&invitation.org_id)
            .await?
            .ok_or(Error::TokenGone)?;
        let membership = Membership::new(&org.id, user.id.clone(), invitation.roles.clone(), now);
        match store.insert_membership(&membership).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::AlreadyMember),
            Err(e) => return Err(e.into()),
        }
        self.emit(Event::InvitationAccepted {
            org_id: org.id.clone(),
            invitation_id: invitation.id.clone(),
            user_id: user.id.clone(),
            roles: invitation.roles.clone(),
        })
        .await;
        Ok(OrgMembership { org, membership })
    }

    /// The organization's custom roles, by name (`org:read`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::PermissionDenied`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn list_org_roles(
        &self,
        principal: &Principal,
        org_id: &str,
    ) -> Result<Vec<OrgRole>> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::READ)?;
        Ok(standing.custom)
    }

    /// Defines a custom organization role (`org:roles:manage`; the caller
    /// must hold what it grants). Names of built-in roles and existing
    /// custom roles are refused (409 `ROLE_EXISTS`). Asks the
    /// `define_org_role` before-hooks; emits `org_role_created`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::PermissionDenied`] (403),
    /// [`Error::Validation`] (422), [`Error::RoleExists`] (409),
    /// [`Error::Vetoed`] (403), [`Error::Unavailable`] (503).
    pub async fn create_org_role(
        &self,
        principal: &Principal,
        org_id: &str,
        name: &str,
        description: Option<String>,
        permissions: &[String],
    ) -> Result<OrgRole> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::ROLES)?;
        check_role_name(name)
            .map_err(|e| Error::validation("name", "INVALID_ROLE_NAME", e.reason()))?;
        check_description(&description)?;
        let permissions = parse_permissions(permissions)?;
        standing.require_covers(&permissions)?;
        if built_in(name).is_some() || standing.custom.iter().any(|c| c.name == name) {
            return Err(Error::RoleExists);
        }
        if standing.custom.len() >= MAX_ORG_ROLES {
            return Err(Error::validation(
                "name",
                "INVALID_ROLE_NAME",
                format!("an organization defines at most {MAX_ORG_ROLES} roles"),
            ));
        }
        let role = OrgRole::new(org_id, name, description, permissions, self.now());
        let by = principal.user.id.clone();
        self.inner
            .hooks
            .before(Action::DefineOrgRole {
                role: Box::new(role.clone()),
                by: by.clone(),
            })
            .await?;
        match self.inner.store.insert_org_role(&role).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::RoleExists),
            Err(e) => return Err(e.into()),
        }
        self.emit(Event::OrgRoleCreated {
            role: role.clone(),
            by,
        })
        .await;
        Ok(role)
    }

    /// Replaces a custom organization role's description and permissions
    /// (`org:roles:manage`; the caller must hold what it grants before and
    /// after). Its holders' next requests see the change. Asks the
    /// `define_org_role` before-hooks; emits `org_role_updated`.
    ///
    /// # Errors
    ///
    /// As [`create_org_role`](Self::create_org_role), with 404 for an
    /// unknown role.
    pub async fn update_org_role(
        &self,
        principal: &Principal,
        org_id: &str,
        name: &str,
        description: Option<Option<String>>,
        permissions: Option<&[String]>,
    ) -> Result<OrgRole> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::ROLES)?;
        let mut role = standing
            .custom
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .ok_or(Error::NotFound("role"))?;
        standing.require_covers(&role.permissions)?;
        if let Some(description) = description {
            check_description(&description)?;
            role.description = description;
        }
        if let Some(permissions) = permissions {
            role.permissions = parse_permissions(permissions)?;
            standing.require_covers(&role.permissions)?;
        }
        let now = self.now();
        role.updated_at =
            chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let by = principal.user.id.clone();
        self.inner
            .hooks
            .before(Action::DefineOrgRole {
                role: Box::new(role.clone()),
                by: by.clone(),
            })
            .await?;
        if !self.inner.store.update_org_role(&role).await? {
            return Err(Error::NotFound("role"));
        }
        self.emit(Event::OrgRoleUpdated {
            role: role.clone(),
            by,
        })
        .await;
        Ok(role)
    }

    /// Deletes a custom organization role and takes it off its holders
    /// (`org:roles:manage`; the caller must hold what it grants). Asks the
    /// `delete_org_role` before-hooks; emits `org_role_deleted`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::PermissionDenied`] (403),
    /// [`Error::Vetoed`] (403), [`Error::Unavailable`] (503).
    pub async fn delete_org_role(
        &self,
        principal: &Principal,
        org_id: &str,
        name: &str,
    ) -> Result<()> {
        let standing = self.standing(principal, org_id).await?;
        standing.require(perm::ROLES)?;
        let role = standing
            .custom
            .iter()
            .find(|c| c.name == name)
            .ok_or(Error::NotFound("role"))?;
        standing.require_covers(&role.permissions)?;
        let by = principal.user.id.clone();
        self.inner
            .hooks
            .before(Action::DeleteOrgRole {
                org_id: org_id.to_owned(),
                name: name.to_owned(),
                by: by.clone(),
            })
            .await?;
        if !self.inner.store.delete_org_role(org_id, name).await? {
            return Err(Error::NotFound("role"));
        }
        self.emit(Event::OrgRoleDeleted {
            org_id: org_id.to_owned(),
            name: name.to_owned(),
            by,
        })
        .await;
        Ok(())
    }

    /// Makes `org_id` the session's active organization (a membership is
    /// required), or clears it with `None`, and issues a new access token
    /// carrying `org` and the caller's roles there. The refresh token is
    /// unchanged; later refreshes keep the organization. Emits
    /// `org_switched`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404: not a member), [`Error::Unauthenticated`]
    /// (401: the session ended meanwhile), [`Error::Unavailable`] (503).
    pub async fn switch_org(
        &self,
        principal: &Principal,
        org_id: Option<&str>,
    ) -> Result<(String, i64)> {
        if let Some(org_id) = org_id {
            self.standing(principal, org_id).await?;
        }
        let store = &self.inner.store;
        if !store.set_session_org(&principal.session.id, org_id).await? {
            return Err(Error::Unauthenticated);
        }
        let mut session = principal.session.clone();
        session.org = org_id.map(str::to_owned);
        let token = self
            .access_token(&principal.user, &session, self.now())
            .await?;
        self.emit(Event::OrgSwitched {
            user_id: principal.user.id.clone(),
            session_id: session.id.clone(),
            org_id: session.org.clone(),
        })
        .await;
        Ok((token, self.inner.jwt.ttl_secs()))
    }

    /// Refuses (409 `LAST_OWNER`) when `user` is the only owner of an
    /// organization: deleting their account would leave it ownerless.
    pub(crate) async fn guard_last_owner(&self, user: &UserId) -> Result<()> {
        let store = &self.inner.store;
        for membership in store.list_user_memberships(user).await? {
            if !membership.is_owner() {
                continue;
            }
            let owners = store
                .list_members(&membership.org_id)
                .await?
                .iter()
                .filter(|m| m.is_owner())
                .count();
            if owners <= 1 {
                return Err(Error::LastOwner);
            }
        }
        Ok(())
    }
}

//! `/orgs…`: organizations, their members, invitations and custom roles;
//! `PUT /auth/session/org`: the session's active organization.
//!
//! Every route acts as the caller, through the permissions their
//! organization roles grant there (see `manager/orgs.rs`); a non-member
//! gets 404.

use chrono::{DateTime, Utc};
use poem::{web::cookie::CookieJar, Request};
use poem_openapi::{
    param::Path, payload::Json, types::MaybeUndefined, ApiResponse, Object, OpenApi,
};

use super::{
    account::NoContentResponse, auth::client_info, caller::Authenticated, error_set::*, ApiErrors,
    ApiTags, EmailString, StrictString, TokenResponse,
};
use crate::{
    manager::{AuthManager, OrgMembership},
    store::{Invitation, Membership, OrgRole, Organization},
    user::UserId,
};

/// An organization, with the caller's roles in it.
#[derive(Debug, Clone, Object)]
pub struct OrgBody {
    /// Id (UUID v7 text).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The caller's organization roles (`owner`, `admin`, `member`, or
    /// custom).
    pub roles: Vec<String>,
    /// Creation time (RFC 3339).
    pub created_at: DateTime<Utc>,
    /// Last rename (RFC 3339).
    pub updated_at: DateTime<Utc>,
}

impl OrgBody {
    fn new(org: Organization, roles: Vec<String>) -> Self {
        Self {
            id: org.id,
            name: org.name,
            roles,
            created_at: org.created_at,
            updated_at: org.updated_at,
        }
    }
}

impl From<OrgMembership> for OrgBody {
    fn from(m: OrgMembership) -> Self {
        Self::new(m.org, m.membership.roles)
    }
}

/// The caller's organizations.
#[derive(Debug, Clone, Object)]
pub struct OrgList {
    /// Oldest membership first.
    pub items: Vec<OrgBody>,
}

/// A member of an organization.
#[derive(Debug, Clone, Object)]
pub struct MemberBody {
    /// The member's user id.
    pub user_id: String,
    /// Their organization roles.
    pub roles: Vec<String>,
    /// When they joined (RFC 3339).
    pub joined_at: DateTime<Utc>,
}

impl From<Membership> for MemberBody {
    fn from(m: Membership) -> Self {
        Self {
            user_id: m.user_id.to_string(),
            roles: m.roles,
            joined_at: m.joined_at,
        }
    }
}

/// An organization's members.
#[derive(Debug, Clone, Object)]
pub struct MemberList {
    /// Oldest first.
    pub items: Vec<MemberBody>,
}

/// A pending invitation (its token is only in the mailed link).
#[derive(Debug, Clone, Object)]
pub struct InvitationBody {
    /// Id, to revoke it.
    pub id: String,
    /// The invited address, normalised.
    pub email: String,
    /// The roles the invitee gets.
    pub roles: Vec<String>,
    /// The inviter's user id.
    pub inviter: String,
    /// Creation time (RFC 3339).
    pub created_at: DateTime<Utc>,
    /// End of validity (RFC 3339).
    pub expires_at: DateTime<Utc>,
}

impl From<Invitation> for InvitationBody {
    fn from(i: Invitation) -> Self {
        Self {
            id: i.id,
            email: i.email,
            roles: i.roles,
            inviter: i.inviter.to_string(),
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// An organization's pending invitations.
#[derive(Debug, Clone, Object)]
pub struct InvitationList {
    /// Oldest first.
    pub items: Vec<InvitationBody>,
}

/// A custom organization role.
#[derive(Debug, Clone, Object)]
pub struct OrgRoleBody {
    /// Name, unique in the organization.
    pub name: String,
    /// What it is for.
    #[oai(nullable)]
    pub description: Option<String>,
    /// What it grants in the organization, sorted.
    pub permissions: Vec<String>,
    /// Creation time (RFC 3339).
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339).
    pub updated_at: DateTime<Utc>,
}

impl From<OrgRole> for OrgRoleBody {
    fn from(r: OrgRole) -> Self {
        Self {
            name: r.name,
            description: r.description,
            permissions: r.permissions.iter().map(|p| p.to_string()).collect(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// An organization's custom roles (the built-in `owner`, `admin` and
/// `member` are not listed).
#[derive(Debug, Clone, Object)]
pub struct OrgRoleList {
    /// By name.
    pub items: Vec<OrgRoleBody>,
}

/// Body of `POST /orgs` and `PATCH /orgs/{id}`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct OrgNameRequest {
    /// Display name (1–100 characters, trimmed).
    pub name: StrictString,
}

/// Body of `PUT /orgs/{id}/members/{user_id}`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct MemberRolesRequest {
    /// The member's new roles (1–16), replacing the old.
    pub roles: Vec<StrictString>,
}

/// Body of `POST /orgs/{id}/transfer`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct TransferRequest {
    /// The member who becomes owner.
    pub user_id: StrictString,
}

/// Body of `POST /orgs/{id}/invitations`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct InviteRequest {
    /// The address to invite.
    pub email: EmailString,
    /// The roles the invitee gets (1–16; default `member`).
    #[oai(default = "default_roles")]
    pub roles: Vec<StrictString>,
}

fn default_roles() -> Vec<StrictString> {
    vec![StrictString::from("member")]
}

/// Body of `POST /orgs/invitations/accept`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// The token from the invitation link.
    pub token: StrictString,
}

/// Body of `POST /orgs/{id}/roles`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateOrgRoleRequest {
    /// Name (1–64 of `a-z`, `0-9`, `_`, `-`, `.`); not `owner`, `admin`,
    /// `member`.
    pub name: StrictString,
    /// What it is for (at most 256 characters).
    #[oai(default)]
    pub description: Option<StrictString>,
    /// What it grants in the organization (as `/auth/roles`).
    pub permissions: Vec<StrictString>,
}

/// Body of `PATCH /orgs/{id}/roles/{name}`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateOrgRoleRequest {
    /// New description; `null` clears it; absent leaves it.
    pub description: MaybeUndefined<StrictString>,
    /// New permissions, replacing the old; absent leaves them.
    pub permissions: Option<Vec<StrictString>>,
}

/// Body of `PUT /auth/session/org`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct SwitchOrgRequest {
    /// The organization to make active (the caller must be a member), or
    /// `null` for none.
    pub org_id: MaybeUndefined<StrictString>,
}

/// Answer of the routes that show one organization.
#[derive(Debug, ApiResponse)]
pub enum OrgResponse {
    /// The organization.
    #[oai(status = 200)]
    Ok(Json<OrgBody>),
    /// Created; the caller is its owner.
    #[oai(status = 201)]
    Created(Json<OrgBody>),
}

/// Answer of `GET /orgs`.
#[derive(Debug, ApiResponse)]
pub enum OrgListResponse {
    /// The caller's organizations.
    #[oai(status = 200)]
    Ok(Json<OrgList>),
}

/// Answer of the member routes.
#[derive(Debug, ApiResponse)]
pub enum MemberResponse {
    /// The member after the change.
    #[oai(status = 200)]
    Ok(Json<MemberBody>),
}

/// Answer of `GET /orgs/{id}/members`.
#[derive(Debug, ApiResponse)]
pub enum MemberListResponse {
    /// The members.
    #[oai(status = 200)]
    Ok(Json<MemberList>),
}

/// Answer of the invitation routes.
#[derive(Debug, ApiResponse)]
pub enum InvitationResponse {
    /// Created and mailed to the address.
    #[oai(status = 201)]
    Created(Json<InvitationBody>),
}

/// Answer of `GET /orgs/{id}/invitations`.
#[derive(Debug, ApiResponse)]
pub enum InvitationListResponse {
    /// The pending invitations.
    #[oai(status = 200)]
    Ok(Json<InvitationList>),
}

/// Answer of the custom role routes.
#[derive(Debug, ApiResponse)]
pub enum OrgRoleResponse {
    /// The role.
    #[oai(status = 200)]
    Ok(Json<OrgRoleBody>),
    /// Created.
    #[oai(status = 201)]
    Created(Json<OrgRoleBody>),
}

/// Answer of `GET /orgs/{id}/roles`.
#[derive(Debug, ApiResponse)]
pub enum OrgRoleListResponse {
    /// The custom roles.
    #[oai(status = 200)]
    Ok(Json<OrgRoleList>),
}

fn strings(values: Vec<StrictString>) -> Vec<String> {
    values.into_iter().map(StrictString::into_inner).collect()
}

/// The organizations API, mounted by [`super::routes`].
#[derive(Debug, Clone)]
pub struct OrgsApi {
    manager: AuthManager,
}

impl OrgsApi {
    /// The organizations API over `manager`.
    pub fn new(manager: &AuthManager) -> Self {
        Self {
            manager: manager.clone(),
        }
    }
}

#[OpenApi(tag = "ApiTags::Organizations")]
impl OrgsApi {
    /// My organizations
    ///
    /// Every organization the caller is a member of, with their roles.
    #[oai(path = "/orgs", method = "get", operation_id = "listMyOrgs")]
    async fn list(&self, caller: Authenticated) -> Result<OrgListResponse, ApiErrors<{ AUTHED }>> {
        let orgs = self.manager.list_my_orgs(&caller).await?;
        Ok(OrgListResponse::Ok(Json(OrgList {
            items: orgs.into_iter().map(OrgBody::from).collect(),
        })))
    }

    /// Create an organization
    ///
    /// The caller becomes its owner. 422 `INVALID_NAME`.
    #[oai(path = "/orgs", method = "post", operation_id = "createOrg")]
    async fn create(
        &self,
        caller: Authenticated,
        body: Json<OrgNameRequest>,
    ) -> Result<OrgResponse, ApiErrors<{ AUTHED | BODY }>> {
        let created = self.manager.create_org(&caller, &body.0.name).await?;
        Ok(OrgResponse::Created(Json(created.into())))
    }

    /// Get an organization
    ///
    /// Members only (`org:read`); 404 for anyone else.
    #[oai(path = "/orgs/:id", method = "get", operation_id = "getOrg")]
    async fn get(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
    ) -> Result<OrgResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        let org = self.manager.get_org(&caller, &id.0).await?;
        Ok(OrgResponse::Ok(Json(org.into())))
    }

    /// Rename an organization
    ///
    /// Needs `org:update` (owners, admins).
    #[oai(path = "/orgs/:id", method = "patch", operation_id = "renameOrg")]
    async fn rename(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
        body: Json<OrgNameRequest>,
    ) -> Result<OrgResponse, ApiErrors<{ AUTHED | NOT_FOUND | BODY }>> {
        let org = self
            .manager
            .rename_org(&caller, &id.0, &body.0.name)
            .await?;
        let mine = self.manager.get_org(&caller, &org.id).await?;
        Ok(OrgResponse::Ok(Json(OrgBody::new(
            org,
            mine.membership.roles,
        ))))
    }

    /// Delete an organization
    ///
    /// Owners only (`org:delete`), with a recent sign-in (403
    /// `REAUTHENTICATION_REQUIRED`). Removes its memberships, invitations
    /// and custom roles; sessions that had it active lose it at once.
    #[oai(path = "/orgs/:id", method = "delete", operation_id = "deleteOrg")]
    async fn delete(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        self.manager.delete_org(&caller, &id.0).await?;
        Ok(NoContentResponse::Done)
    }

    /// List members
    ///
    /// Members only (`org:read`).
    #[oai(
        path = "/orgs/:id/members",
        method = "get",
        operation_id = "listMembers"
    )]
    async fn members(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
    ) -> Result<MemberListResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        let members = self.manager.list_members(&caller, &id.0).await?;
        Ok(MemberListResponse::Ok(Json(MemberList {
            items: members.into_iter().map(MemberBody::from).collect(),
        })))
    }

    /// Set a member's roles
    ///
    /// Needs `org:members:manage`, and the caller must hold everything both
    /// the member's current and new roles grant (403 `FORBIDDEN` naming the
    /// missing permission): only an owner makes or unmakes an owner. 409
    /// `LAST_OWNER` when it would take `owner` from the last owner; 422
    /// `INVALID_ROLES` for an unknown role. Applies to the member's next
    /// request.
    #[oai(
        path = "/orgs/:id/members/:user_id",
        method = "put",
        operation_id = "setMemberRoles"
    )]
    async fn set_roles(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
        /// The member's user id.
        user_id: Path<String>,
        body: Json<MemberRolesRequest>,
    ) -> Result<MemberResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT | BODY }>> {
        let member = self
            .manager
            .set_member_roles(
                &caller,
                &id.0,
                &UserId::new(user_id.0),
                &strings(body.0.roles),
            )
            .await?;
        Ok(MemberResponse::Ok(Json(member.into())))
    }

    /// Remove a member
    ///
    /// Needs `org:members:manage` and everything the member's roles grant
    /// (a member removes themself with `POST /orgs/{id}/leave`). 409
    /// `LAST_OWNER` for the last owner. The member's token loses the
    /// organization's roles on its next request.
    #[oai(
        path = "/orgs/:id/members/:user_id",
        method = "delete",
        operation_id = "removeMember"
    )]
    async fn remove(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
        /// The member's user id.
        user_id: Path<String>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT }>> {
        self.manager
            .remove_member(&caller, &id.0, &UserId::new(user_id.0))
            .await?;
        Ok(NoContentResponse::Done)
    }

    /// Leave an organization
    ///
    /// 409 `LAST_OWNER` for the last owner: transfer ownership or delete
    /// the organization first.
    #[oai(path = "/orgs/:id/leave", method = "post", operation_id = "leaveOrg")]
    async fn leave(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT }>> {
        self.manager.leave_org(&caller, &id.0).await?;
        Ok(NoContentResponse::Done)
    }

    /// Transfer ownership
    ///
    /// An owner makes another member owner and becomes `admin`
    /// (`org:owners:manage`, which only owners hold). The new owner gets
    /// the role first, so the organization always has one.
    #[oai(
        path = "/orgs/:id/transfer",
        method = "post",
        operation_id = "transferOwnership"
    )]
    async fn transfer(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
        body: Json<TransferRequest>,
    ) -> Result<MemberResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT | BODY }>> {
        let member = self
            .manager
            .transfer_ownership(&caller, &id.0, &UserId::new(body.0.user_id.into_inner()))
            .await?;
        Ok(MemberResponse::Ok(Json(member.into())))
    }

    /// List pending invitations
    ///
    /// Needs `org:invitations:manage`.
    #[oai(
        path = "/orgs/:id/invitations",
        method = "get",
        operation_id = "listInvitations"
    )]
    async fn invitations(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
    ) -> Result<InvitationListResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        let invitations = self.manager.list_invitations(&caller, &id.0).await?;
        Ok(InvitationListResponse::Ok(Json(InvitationList {
            items: invitations.into_iter().map(InvitationBody::from).collect(),
        })))
    }

    /// Invite an address
    ///
    /// Needs `org:invitations:manage` and everything the roles grant. Mails
    /// a single-use link, valid `email.invitation_ttl_secs` (7 days), that
    /// only a signed-in user whose verified email is this address can
    /// accept. 409 `INVITATION_PENDING` (one pending invitation per address
    /// and organization; revoke it first), 409 `ALREADY_MEMBER`; 429 under
    /// the client's mail limit.
    #[oai(
        path = "/orgs/:id/invitations",
        method = "post",
        operation_id = "inviteMember"
    )]
    async fn invite(
        &self,
        req: &Request,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
        body: Json<InviteRequest>,
    ) -> Result<InvitationResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT | BODY | TOO_MANY }>>
    {
        let Json(body) = body;
        let created = self
            .manager
            .invite_member(
                &caller,
                &id.0,
                &body.email,
                &strings(body.roles),
                &client_info(req),
            )
            .await?;
        Ok(InvitationResponse::Created(Json(created.invitation.into())))
    }

    /// Revoke an invitation
    ///
    /// Needs `org:invitations:manage`; its link stops working at once. 404
    /// when no pending invitation has this id.
    #[oai(
        path = "/orgs/:id/invitations/:invitation_id",
        method = "delete",
        operation_id = "revokeInvitation"
    )]
    async fn revoke(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
        /// The invitation's id.
        invitation_id: Path<String>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        self.manager
            .revoke_invitation(&caller, &id.0, &invitation_id.0)
            .await?;
        Ok(NoContentResponse::Done)
    }

    /// Accept an invitation
    ///
    /// The caller joins with the invitation's roles. Only the invited
    /// address, verified (403 `INVITATION_NOT_FOR_YOU`; the invitation
    /// stays usable by its addressee); single use (410 `TOKEN_GONE` once
    /// used, revoked or expired); 409 `ALREADY_MEMBER`.
    #[oai(
        path = "/orgs/invitations/accept",
        method = "post",
        operation_id = "acceptInvitation"
    )]
    async fn accept(
        &self,
        req: &Request,
        caller: Authenticated,
        body: Json<AcceptInvitationRequest>,
    ) -> Result<OrgResponse, ApiErrors<{ AUTHED | CONFLICT | GONE | BODY | TOO_MANY }>> {
        let joined = self
            .manager
            .accept_invitation(&caller, &body.0.token, &client_info(req))
            .await?;
        Ok(OrgResponse::Ok(Json(joined.into())))
    }

    /// List custom roles
    ///
    /// Members only (`org:read`). The built-in roles: `owner` grants `*`;
    /// `admin` grants `org:read`, `org:update`, `org:members:manage`,
    /// `org:invitations:manage`, `org:roles:manage`; `member` grants
    /// `org:read`.
    #[oai(
        path = "/orgs/:id/roles",
        method = "get",
        operation_id = "listOrgRoles"
    )]
    async fn roles(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
    ) -> Result<OrgRoleListResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        let roles = self.manager.list_org_roles(&caller, &id.0).await?;
        Ok(OrgRoleListResponse::Ok(Json(OrgRoleList {
            items: roles.into_iter().map(OrgRoleBody::from).collect(),
        })))
    }

    /// Create a custom role
    ///
    /// Needs `org:roles:manage` and everything the role grants. 409
    /// `ROLE_EXISTS` (also for `owner`, `admin`, `member`); 422
    /// `INVALID_ROLE_NAME`, `INVALID_PERMISSION`, `INVALID_DESCRIPTION`.
    #[oai(
        path = "/orgs/:id/roles",
        method = "post",
        operation_id = "createOrgRole"
    )]
    async fn create_role(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
        body: Json<CreateOrgRoleRequest>,
    ) -> Result<OrgRoleResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT | BODY }>> {
        let Json(body) = body;
        let role = self
            .manager
            .create_org_role(
                &caller,
                &id.0,
                &body.name,
                body.description.map(StrictString::into_inner),
                &strings(body.permissions),
            )
            .await?;
        Ok(OrgRoleResponse::Created(Json(role.into())))
    }

    /// Change a custom role
    ///
    /// Needs `org:roles:manage` and everything the role grants before and
    /// after; its holders' next requests see the change.
    #[oai(
        path = "/orgs/:id/roles/:name",
        method = "patch",
        operation_id = "updateOrgRole"
    )]
    async fn update_role(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
        /// The role's name.
        name: Path<String>,
        body: Json<UpdateOrgRoleRequest>,
    ) -> Result<OrgRoleResponse, ApiErrors<{ AUTHED | NOT_FOUND | BODY }>> {
        let Json(body) = body;
        let description = match body.description {
            MaybeUndefined::Value(d) => Some(Some(d.into_inner())),
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Undefined => None,
        };
        let permissions = body.permissions.map(strings);
        let role = self
            .manager
            .update_org_role(&caller, &id.0, &name.0, description, permissions.as_deref())
            .await?;
        Ok(OrgRoleResponse::Ok(Json(role.into())))
    }

    /// Delete a custom role
    ///
    /// Needs `org:roles:manage` and everything the role grants; it is taken
    /// off its holders at once.
    #[oai(
        path = "/orgs/:id/roles/:name",
        method = "delete",
        operation_id = "deleteOrgRole"
    )]
    async fn delete_role(
        &self,
        caller: Authenticated,
        /// The organization's id.
        id: Path<String>,
        /// The role's name.
        name: Path<String>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        self.manager
            .delete_org_role(&caller, &id.0, &name.0)
            .await?;
        Ok(NoContentResponse::Done)
    }

    /// Switch the active organization
    ///
    /// Makes an organization the caller's session's active one (a
    /// membership is required; 404 otherwise), or none with `null`, and
    /// answers a new access token whose `org` and `org_roles` claims say
    /// so (also as the access cookie, with cookie transport). The refresh
    /// token is unchanged; later refreshes keep the organization.
    /// Organization-scoped checks always read the membership, so a member
    /// removed meanwhile has no organization roles whatever the token says.
    #[oai(path = "/auth/session/org", method = "put", operation_id = "switchOrg")]
    async fn switch(
        &self,
        jar: &CookieJar,
        caller: Authenticated,
        body: Json<SwitchOrgRequest>,
    ) -> Result<TokenResponse, ApiErrors<{ AUTHED | NOT_FOUND | BODY }>> {
        let org = match body.0.org_id {
            MaybeUndefined::Value(id) => Some(id.into_inner()),
            MaybeUndefined::Null | MaybeUndefined::Undefined => None,
        };
        let (token, expires_in) = self.manager.switch_org(&caller, org.as_deref()).await?;
        Ok(TokenResponse::access_only(
            &self.manager,
            jar,
            token,
            expires_in,
        ))
    }
}

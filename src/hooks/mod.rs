//! Hooks: observe every flow, and veto it before it commits.
//!
//! Each flow asks every hook's [`Hook::before`] with an [`Action`] (what is
//! about to happen); any hook can refuse with a [`Veto`] carrying its own code
//! and message, and the flow stops with nothing written. After the flow has
//! committed, every hook's [`Hook::after`] sees an [`Event`] (what happened).
//! An after-hook error is logged and never undoes the flow.

use std::{fmt, future::Future, sync::Arc};

use async_trait::async_trait;
use serde::Serialize;

use crate::{
    store::{ClientInfo, OrgRole, Organization, Role, UserPatch},
    user::{SessionId, User, UserId},
};

/// What a flow is about to do; passed to [`Hook::before`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// A user is about to be created.
    Register {
        /// Email as given.
        email: String,
        /// Display name, if given.
        name: Option<String>,
        /// Provider creating the user (`credentials` for sign-up forms).
        provider: String,
        /// The profile metadata the user registers with, already checked
        /// against the app's registration fields (an empty object when
        /// none was given, e.g. for a provider sign-up).
        metadata: serde_json::Map<String, serde_json::Value>,
    },
    /// A user proved their identity and is about to get a session.
    Login {
        /// The user.
        user: Box<User>,
        /// Provider that proved the identity.
        provider: String,
        /// Who is signing in.
        client: ClientInfo,
    },
    /// A user proved they own their email and is about to be marked verified.
    VerifyEmail {
        /// The user.
        user: Box<User>,
    },
    /// Someone asked for a password-reset link for an email (known or not).
    RequestPasswordReset {
        /// The normalised email given.
        email: String,
    },
    /// A reset token was presented and the password is about to be replaced.
    ResetPassword {
        /// The user.
        user: Box<User>,
    },
    /// A signed-in user is about to change their password.
    ChangePassword {
        /// The user.
        user: Box<User>,
    },
    /// A user without a password is about to set one.
    SetPassword {
        /// The user.
        user: Box<User>,
    },
    /// A user asked to move their account to another email.
    ChangeEmail {
        /// The user.
        user: Box<User>,
        /// The requested address.
        new_email: String,
    },
    /// A user is about to delete their own account.
    DeleteAccount {
        /// The user.
        user: Box<User>,
        /// Whether the record is removed (else deactivated).
        hard: bool,
    },
    /// A session's refresh token was presented and rotated; the session is
    /// about to get a new token pair. A veto ends the session (its family
    /// is revoked; the client signs in again).
    Refresh {
        /// The user.
        user: Box<User>,
        /// The session being refreshed.
        session_id: SessionId,
    },
    /// A signed-in user is about to end their session.
    Logout {
        /// The user.
        user: Box<User>,
        /// The session ending.
        session_id: SessionId,
    },
    /// A user is about to end one of their sessions, or all but the
    /// current one (`session_id: None`).
    RevokeSessions {
        /// The user.
        user: Box<User>,
        /// The session to end; `None` for every other session.
        session_id: Option<SessionId>,
    },
    /// A user is about to unlink a provider identity.
    UnlinkAccount {
        /// The user.
        user: Box<User>,
        /// The provider id being unlinked.
        provider: String,
    },
    /// Someone asked for a verification link for an address: signed in,
    /// or through the signed-out resend (where the address may be unknown,
    /// and nothing is sent for it whatever the hooks say).
    RequestEmailVerification {
        /// The normalised address.
        email: String,
    },
    /// Someone asked a provider to mail a sign-in proof (a magic link, an
    /// email code, or a custom provider's) to an address. Asked for known
    /// *and* unknown addresses alike, so a veto must not depend on whether
    /// the account exists; a veto answers its refusal and mails nothing.
    RequestSignInMail {
        /// The provider that mails it (e.g. `magic-link`, `email-code`).
        provider: String,
        /// The normalised address.
        email: String,
    },
    /// A code confirming an account-changing action (email change,
    /// deletion) is about to be mailed to the user's current address.
    RequestReauthenticationCode {
        /// The user.
        user: Box<User>,
        /// What the code will confirm: `change_email` or `delete_account`.
        confirms: String,
    },
    /// A user is about to enrol a second factor (`totp`): a veto stops
    /// the setup before a secret is made.
    EnrollFactor {
        /// The user.
        user: Box<User>,
        /// The factor kind: `totp` or `passkey`.
        factor: String,
    },
    /// A superuser is about to delete another user's account.
    DeleteUser {
        /// The user to delete.
        user: Box<User>,
        /// The superuser.
        by: UserId,
    },
    /// A superuser is about to mail another user a password-reset link.
    AdminPasswordReset {
        /// The user.
        user: Box<User>,
        /// The superuser.
        by: UserId,
    },
    /// A superuser creates or changes a run-time role.
    DefineRole {
        /// The role as it would be after the change.
        role: Box<Role>,
        /// The superuser.
        by: UserId,
    },
    /// A superuser deletes a run-time role.
    DeleteRole {
        /// The role's name.
        name: String,
        /// The superuser.
        by: UserId,
    },
    /// A superuser gives a user a role.
    AssignRole {
        /// The user before the change.
        user: Box<User>,
        /// The role's name.
        role: String,
        /// The superuser.
        by: UserId,
    },
    /// A superuser takes a role off a user.
    UnassignRole {
        /// The user before the change.
        user: Box<User>,
        /// The role's name.
        role: String,
        /// The superuser.
        by: UserId,
    },
    /// A user creates an organization (they become its owner).
    CreateOrg {
        /// The organization's name.
        name: String,
        /// The creator.
        by: UserId,
    },
    /// A member renames an organization.
    RenameOrg {
        /// The organization's id.
        org_id: String,
        /// The new name.
        name: String,
        /// The member.
        by: UserId,
    },
    /// An owner deletes an organization.
    DeleteOrg {
        /// The organization's id.
        org_id: String,
        /// The owner.
        by: UserId,
    },
    /// A member invites an address (veto e.g. "only company addresses").
    InviteMember {
        /// The organization's id.
        org_id: String,
        /// The invited address, normalised.
        email: String,
        /// The organization roles the invitee would get.
        roles: Vec<String>,
        /// The inviter.
        by: UserId,
    },
    /// A member revokes a pending invitation.
    RevokeInvitation {
        /// The organization's id.
        org_id: String,
        /// The invitation's id.
        invitation_id: String,
        /// The member.
        by: UserId,
    },
    /// A user accepts an invitation (they become a member).
    AcceptInvitation {
        /// The organization's id.
        org_id: String,
        /// The invitation's id.
        invitation_id: String,
        /// The user joining.
        user: Box<User>,
    },
    /// A member's organization roles are about to be replaced (also the
    /// two halves of an ownership transfer).
    SetMemberRoles {
        /// The organization's id.
        org_id: String,
        /// The member.
        user_id: UserId,
        /// The new roles.
        roles: Vec<String>,
        /// Who changes them.
        by: UserId,
    },
    /// A member is about to leave or be removed (`by` is the member
    /// themself when they leave).
    RemoveMember {
        /// The organization's id.
        org_id: String,
        /// The member.
        user_id: UserId,
        /// Who removes them.
        by: UserId,
    },
    /// A member creates or changes a custom organization role.
    DefineOrgRole {
        /// The role as it would be after the change.
        role: Box<OrgRole>,
        /// The member.
        by: UserId,
    },
    /// A member deletes a custom organization role.
    DeleteOrgRole {
        /// The organization's id.
        org_id: String,
        /// The role's name.
        name: String,
        /// The member.
        by: UserId,
    },
    /// A user's profile or flags are about to change (by themselves or a
    /// superuser).
    UpdateUser {
        /// The user before the change.
        user: Box<User>,
        /// The change.
        patch: Box<UserPatch>,
        /// Who makes the change: the acting user (the user themself, or a
        /// superuser), or `None` for the app's own write
        /// ([`AuthManager::set_app_metadata`](crate::AuthManager::set_app_metadata)).
        by: Option<UserId>,
    },
}

impl Action {
    /// The snake_case name of the action.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Register { .. } => "register",
            Action::Login { .. } => "login",
            Action::VerifyEmail { .. } => "verify_email",
            Action::RequestPasswordReset { .. } => "request_password_reset",
            Action::ResetPassword { .. } => "reset_password",
            Action::ChangePassword { .. } => "change_password",
            Action::SetPassword { .. } => "set_password",
            Action::ChangeEmail { .. } => "change_email",
            Action::DeleteAccount { .. } => "delete_account",
            Action::UpdateUser { .. } => "update_user",
            Action::DefineRole { .. } => "define_role",
            Action::DeleteRole { .. } => "delete_role",
            Action::AssignRole { .. } => "assign_role",
            Action::UnassignRole { .. } => "unassign_role",
            Action::CreateOrg { .. } => "create_org",
            Action::RenameOrg { .. } => "rename_org",
            Action::DeleteOrg { .. } => "delete_org",
            Action::InviteMember { .. } => "invite_member",
            Action::RevokeInvitation { .. } => "revoke_invitation",
            Action::AcceptInvitation { .. } => "accept_invitation",
            Action::SetMemberRoles { .. } => "set_member_roles",
            Action::RemoveMember { .. } => "remove_member",
            Action::DefineOrgRole { .. } => "define_org_role",
            Action::DeleteOrgRole { .. } => "delete_org_role",
            Action::Refresh { .. } => "refresh",
            Action::Logout { .. } => "logout",
            Action::RevokeSessions { .. } => "revoke_sessions",
            Action::UnlinkAccount { .. } => "unlink_account",
            Action::RequestEmailVerification { .. } => "request_email_verification",
            Action::RequestReauthenticationCode { .. } => "request_reauthentication_code",
            Action::RequestSignInMail { .. } => "request_sign_in_mail",
            Action::DeleteUser { .. } => "delete_user",
            Action::AdminPasswordReset { .. } => "admin_password_reset",
            Action::EnrollFactor { .. } => "enroll_factor",
        }
    }
}

/// What a flow did; passed to [`Hook::after`]. Serialized with an `event`
/// tag in snake_case (e.g. `{"event":"user_registered",…}`), never with a
/// password hash.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A user was created.
    UserRegistered {
        /// The new user.
        user: User,
        /// Provider that created it.
        provider: String,
    },
    /// A user signed in and got a session.
    LoginSucceeded {
        /// The user.
        user: User,
        /// Provider used.
        provider: String,
        /// The new session.
        session_id: SessionId,
        /// Who signed in.
        client: ClientInfo,
    },
    /// A sign-in was refused.
    LoginFailed {
        /// Provider tried.
        provider: String,
        /// Email given, when the provider takes one.
        email: Option<String>,
        /// The error code answered.
        code: &'static str,
        /// Who tried.
        client: ClientInfo,
    },
    /// A refresh token was rotated.
    TokenRefreshed {
        /// Owner.
        user_id: UserId,
        /// The session.
        session_id: SessionId,
    },
    /// A code confirming an account-changing action was mailed to the
    /// user's current address.
    ReauthenticationCodeRequested {
        /// The user.
        user_id: UserId,
        /// What the code confirms: `change_email` or `delete_account`.
        confirms: String,
    },
    /// An already-used refresh token was presented: the session is revoked.
    RefreshTokenReused {
        /// Owner.
        user_id: UserId,
        /// The revoked session.
        session_id: SessionId,
    },
    /// A session ended at the user's request.
    #[serde(rename = "logout")]
    LoggedOut {
        /// Owner.
        user_id: UserId,
        /// The ended session.
        session_id: SessionId,
    },
    /// Every session of a user was ended (`token_version` bumped).
    SessionsRevoked {
        /// The user.
        user_id: UserId,
        /// Sessions revoked.
        count: u64,
    },
    /// A legacy or outdated password hash was replaced with Argon2id.
    PasswordRehashed {
        /// The user.
        user_id: UserId,
    },
    /// A provider identity was linked to a user.
    AccountLinked {
        /// The user.
        user_id: UserId,
        /// Provider id.
        provider: String,
        /// Provider's subject.
        subject: String,
    },
    /// A provider identity was unlinked from a user.
    AccountUnlinked {
        /// The user.
        user_id: UserId,
        /// Provider id.
        provider: String,
        /// Provider's subject.
        subject: String,
        /// Why.
        reason: UnlinkReason,
    },
    /// A verification link was mailed.
    EmailVerificationRequested {
        /// The user.
        user_id: UserId,
    },
    /// A user verified their email.
    EmailVerified {
        /// The user.
        user_id: UserId,
    },
    /// A password-reset link was mailed to a known, active user.
    PasswordResetRequested {
        /// The user.
        user_id: UserId,
    },
    /// A password was reset with a mailed token; every session ended.
    PasswordReset {
        /// The user.
        user_id: UserId,
    },
    /// A signed-in user changed their password; their other sessions ended.
    PasswordChanged {
        /// The user.
        user_id: UserId,
    },
    /// A user without a password set one.
    PasswordSet {
        /// The user.
        user_id: UserId,
    },
    /// A confirmation link for a new email was mailed.
    EmailChangeRequested {
        /// The user.
        user_id: UserId,
        /// The requested address.
        new_email: String,
    },
    /// A user's email changed; every session ended.
    EmailChanged {
        /// The user.
        user_id: UserId,
        /// The previous address.
        old_email: String,
        /// The new address.
        new_email: String,
    },
    /// A run-time role was created.
    RoleCreated {
        /// The role.
        role: Role,
        /// The superuser.
        by: UserId,
    },
    /// A run-time role's description or permissions changed.
    RoleUpdated {
        /// The role after the change.
        role: Role,
        /// The superuser.
        by: UserId,
    },
    /// A run-time role was deleted and taken off its holders.
    RoleDeleted {
        /// The role's name.
        name: String,
        /// How many users held it.
        holders: u64,
        /// The superuser.
        by: UserId,
    },
    /// A user was given a role.
    RoleAssigned {
        /// The user.
        user_id: UserId,
        /// The role's name.
        role: String,
        /// The superuser.
        by: UserId,
    },
    /// A role was taken off a user.
    RoleUnassigned {
        /// The user.
        user_id: UserId,
        /// The role's name.
        role: String,
        /// The superuser.
        by: UserId,
    },
    /// An organization was created; its creator is its owner.
    OrgCreated {
        /// The organization.
        org: Organization,
        /// The creator (owner).
        by: UserId,
    },
    /// An organization was renamed.
    OrgRenamed {
        /// The organization after the change.
        org: Organization,
        /// The member.
        by: UserId,
    },
    /// An organization was deleted with its memberships, invitations and
    /// custom roles.
    OrgDeleted {
        /// The organization's id.
        org_id: String,
        /// The owner.
        by: UserId,
    },
    /// An invitation was created and mailed.
    InvitationCreated {
        /// The organization's id.
        org_id: String,
        /// The invitation's id.
        invitation_id: String,
        /// The invited address, normalised.
        email: String,
        /// The roles it gives.
        roles: Vec<String>,
        /// The inviter.
        by: UserId,
    },
    /// A pending invitation was revoked.
    InvitationRevoked {
        /// The organization's id.
        org_id: String,
        /// The invitation's id.
        invitation_id: String,
        /// The member.
        by: UserId,
    },
    /// An invitation was accepted: the user is a member.
    InvitationAccepted {
        /// The organization's id.
        org_id: String,
        /// The invitation's id.
        invitation_id: String,
        /// The new member.
        user_id: UserId,
        /// Their roles.
        roles: Vec<String>,
    },
    /// A member's organization roles were replaced.
    MemberRolesChanged {
        /// The organization's id.
        org_id: String,
        /// The member.
        user_id: UserId,
        /// The roles now.
        roles: Vec<String>,
        /// Who changed them.
        by: UserId,
    },
    /// A member left or was removed.
    MemberRemoved {
        /// The organization's id.
        org_id: String,
        /// The former member.
        user_id: UserId,
        /// Who removed them (themself when they left).
        by: UserId,
    },
    /// Ownership moved from one member to another.
    OwnershipTransferred {
        /// The organization's id.
        org_id: String,
        /// The former owner (now `admin`).
        from: UserId,
        /// The new owner.
        to: UserId,
    },
    /// A custom organization role was created.
    OrgRoleCreated {
        /// The role.
        role: OrgRole,
        /// The member.
        by: UserId,
    },
    /// A custom organization role was changed.
    OrgRoleUpdated {
        /// The role after the change.
        role: OrgRole,
        /// The member.
        by: UserId,
    },
    /// A custom organization role was deleted and taken off its holders.
    OrgRoleDeleted {
        /// The organization's id.
        org_id: String,
        /// The role's name.
        name: String,
        /// The member.
        by: UserId,
    },
    /// A session's active organization changed (`None`: no organization).
    OrgSwitched {
        /// The user.
        user_id: UserId,
        /// The session.
        session_id: SessionId,
        /// The active organization now.
        org_id: Option<String>,
    },
    /// A user's profile or flags changed.
    UserUpdated {
        /// The user after the change.
        user: User,
        /// Who made the change: the acting user, or `None` for the app's
        /// own write ([`AuthManager::set_app_metadata`](crate::AuthManager::set_app_metadata)).
        by: Option<UserId>,
    },
    /// A user was deleted (deactivated, or removed when `hard`).
    UserDeleted {
        /// The user.
        user_id: UserId,
        /// Their email.
        email: String,
        /// Whether the record was removed.
        hard: bool,
        /// Who deleted it (the user themselves or a superuser).
        by: UserId,
    },
    /// A request was refused by a rate limit.
    RateLimited {
        /// The rule, e.g. `sign_in_per_ip`, `failed_sign_in`.
        rule: String,
        /// What was counted: an IP, an email or a user id.
        subject: String,
        /// Seconds the client was told to wait.
        retry_after_secs: u64,
    },
    /// A second factor was enrolled (a TOTP setup was confirmed).
    FactorEnrolled {
        /// The user.
        user_id: UserId,
        /// The factor kind: `totp`.
        factor: String,
    },
    /// A second factor was removed (with the recovery codes when it was
    /// the last one).
    FactorRemoved {
        /// The user.
        user_id: UserId,
        /// The factor kind: `totp`.
        factor: String,
    },
    /// A passkey was registered (a notice is mailed).
    PasskeyRegistered {
        /// The user.
        user_id: UserId,
        /// The credential id.
        passkey_id: String,
        /// Its name.
        name: String,
    },
    /// A passkey was removed (a notice is mailed).
    PasskeyRemoved {
        /// The user.
        user_id: UserId,
        /// The credential id.
        passkey_id: String,
    },
    /// A superuser turned off every second factor of a user (a notice is
    /// mailed to the user).
    FactorsReset {
        /// The user.
        user_id: UserId,
        /// The superuser.
        by: UserId,
    },
    /// A new set of recovery codes replaced the old one.
    RecoveryCodesRegenerated {
        /// The user.
        user_id: UserId,
    },
    /// A first factor was proven and the sign-in now waits for the second
    /// (an MFA challenge was issued instead of tokens).
    MfaChallenged {
        /// The user.
        user_id: UserId,
        /// The provider of the first factor.
        provider: String,
        /// The client.
        client: ClientInfo,
    },
    /// A challenge was answered with a right second factor (a
    /// `login_succeeded` follows).
    MfaChallengePassed {
        /// The user.
        user_id: UserId,
        /// `totp` or `recovery_code`.
        method: String,
    },
    /// A challenge was answered with a wrong code.
    MfaChallengeFailed {
        /// The user.
        user_id: UserId,
        /// `totp` or `recovery_code`.
        method: String,
        /// The client.
        client: ClientInfo,
    },
    /// A recovery code was spent (a notice is mailed to the user).
    RecoveryCodeUsed {
        /// The user.
        user_id: UserId,
        /// Codes left.
        remaining: usize,
    },
    /// One session was ended from the session list.
    SessionRevoked {
        /// Owner.
        user_id: UserId,
        /// The ended session.
        session_id: SessionId,
    },
    /// A provider's own event ([`ProviderCx::emit`](crate::ProviderCx::emit)),
    /// serialized with its own name as the `event` tag.
    #[serde(untagged)]
    Provider(ProviderEvent),
}

/// Why a linked account was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnlinkReason {
    /// The user unlinked it (`DELETE /auth/account/linked/{provider}`).
    UserRequest,
    /// The owner proved the address (password reset, email verification,
    /// email change) and the identity had been linked from an email its
    /// provider did not verify: whoever linked it may not be the owner.
    EmailProven,
}

/// An event a provider emits through
/// [`ProviderCx::emit`](crate::ProviderCx::emit), e.g.
/// `magic_link_requested`. Serialized as
/// `{"event": name, "provider": …, "user_id": …, "email": …}`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProviderEvent {
    /// The event's snake_case name (past tense), e.g. `magic_link_requested`.
    pub name: &'static str,
    /// The provider's id.
    pub provider: String,
    /// The user concerned, when there is one.
    pub user_id: Option<UserId>,
    /// The address concerned, normalised, when there is one.
    pub email: Option<String>,
}

impl ProviderEvent {
    /// The event `name` of `provider`.
    pub fn new(provider: impl Into<String>, name: &'static str) -> Self {
        Self {
            name,
            provider: provider.into(),
            user_id: None,
            email: None,
        }
    }

    /// Names the user concerned.
    pub fn with_user(mut self, user_id: Option<UserId>) -> Self {
        self.user_id = user_id;
        self
    }

    /// Names the address concerned.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
}

impl Serialize for ProviderEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("event", self.name)?;
        map.serialize_entry("provider", &self.provider)?;
        map.serialize_entry("user_id", &self.user_id)?;
        map.serialize_entry("email", &self.email)?;
        map.end()
    }
}

impl Event {
    /// The snake_case name of the event, as serialized.
    pub fn name(&self) -> &'static str {
        match self {
            Event::UserRegistered { .. } => "user_registered",
            Event::LoginSucceeded { .. } => "login_succeeded",
            Event::LoginFailed { .. } => "login_failed",
            Event::TokenRefreshed { .. } => "token_refreshed",
            Event::RefreshTokenReused { .. } => "refresh_token_reused",
            Event::LoggedOut { .. } => "logout",
            Event::SessionsRevoked { .. } => "sessions_revoked",
            Event::PasswordRehashed { .. } => "password_rehashed",
            Event::AccountLinked { .. } => "account_linked",
            Event::AccountUnlinked { .. } => "account_unlinked",
            Event::EmailVerificationRequested { .. } => "email_verification_requested",
            Event::EmailVerified { .. } => "email_verified",
            Event::PasswordResetRequested { .. } => "password_reset_requested",
            Event::PasswordReset { .. } => "password_reset",
            Event::PasswordChanged { .. } => "password_changed",
            Event::PasswordSet { .. } => "password_set",
            Event::EmailChangeRequested { .. } => "email_change_requested",
            Event::EmailChanged { .. } => "email_changed",
            Event::UserUpdated { .. } => "user_updated",
            Event::RoleCreated { .. } => "role_created",
            Event::RoleUpdated { .. } => "role_updated",
            Event::RoleDeleted { .. } => "role_deleted",
            Event::RoleAssigned { .. } => "role_assigned",
            Event::RoleUnassigned { .. } => "role_unassigned",
            Event::OrgCreated { .. } => "org_created",
            Event::OrgRenamed { .. } => "org_renamed",
            Event::OrgDeleted { .. } => "org_deleted",
            Event::InvitationCreated { .. } => "invitation_created",
            Event::InvitationRevoked { .. } => "invitation_revoked",
            Event::InvitationAccepted { .. } => "invitation_accepted",
            Event::MemberRolesChanged { .. } => "member_roles_changed",
            Event::MemberRemoved { .. } => "member_removed",
            Event::OwnershipTransferred { .. } => "ownership_transferred",
            Event::OrgRoleCreated { .. } => "org_role_created",
            Event::OrgRoleUpdated { .. } => "org_role_updated",
            Event::OrgRoleDeleted { .. } => "org_role_deleted",
            Event::OrgSwitched { .. } => "org_switched",
            Event::UserDeleted { .. } => "user_deleted",
            Event::SessionRevoked { .. } => "session_revoked",
            Event::FactorEnrolled { .. } => "factor_enrolled",
            Event::FactorRemoved { .. } => "factor_removed",
            Event::FactorsReset { .. } => "factors_reset",
            Event::PasskeyRegistered { .. } => "passkey_registered",
            Event::PasskeyRemoved { .. } => "passkey_removed",
            Event::RecoveryCodesRegenerated { .. } => "recovery_codes_regenerated",
            Event::MfaChallenged { .. } => "mfa_challenged",
            Event::MfaChallengePassed { .. } => "mfa_challenge_passed",
            Event::MfaChallengeFailed { .. } => "mfa_challenge_failed",
            Event::RecoveryCodeUsed { .. } => "recovery_code_used",
            Event::RateLimited { .. } => "rate_limited",
            Event::ReauthenticationCodeRequested { .. } => "reauthentication_code_requested",
            Event::Provider(event) => event.name,
        }
    }
}

/// A before-hook's refusal: the flow fails with this code and message
/// (HTTP 403, `{"code": code, "message": message}`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Veto {
    /// Stable machine-readable code, e.g. `EMAIL_DOMAIN_NOT_ALLOWED`.
    pub code: &'static str,
    /// Message shown to the client.
    pub message: String,
}

impl Veto {
    /// A refusal with a code and a client-facing message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Error returned by an after-hook; it is logged, nothing else.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// Observes flows and can veto them.
///
/// Both methods default to doing nothing, so a hook implements only what it
/// needs.
///
/// # Errors
///
/// `before` returns a [`Veto`] to stop the flow; `after` returns a
/// [`HookError`], which is logged and never undoes the committed flow.
///
/// # Example
///
/// ```
/// use async_trait::async_trait;
/// use portcullis::{Action, Event, Hook, HookError, Veto};
///
/// /// Allows sign-up only for one company's addresses, and logs every event.
/// #[derive(Debug)]
/// struct CompanyOnly;
///
/// #[async_trait]
/// impl Hook for CompanyOnly {
///     async fn before(&self, action: &Action) -> Result<(), Veto> {
///         match action {
///             Action::Register { email, .. } if !email.ends_with("@example.com") => Err(
///                 Veto::new("EMAIL_DOMAIN_NOT_ALLOWED", "use your example.com address"),
///             ),
///             _ => Ok(()),
///         }
///     }
///
///     async fn after(&self, event: &Event) -> Result<(), HookError> {
///         tracing::info!(event = event.name(), "audit");
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Hook: Send + Sync + fmt::Debug + 'static {
    /// Called before a flow commits; a [`Veto`] stops it.
    async fn before(&self, action: &Action) -> Result<(), Veto> {
        let _ = action;
        Ok(())
    }

    /// Called after a flow committed.
    async fn after(&self, event: &Event) -> Result<(), HookError> {
        let _ = event;
        Ok(())
    }
}

/// An after-hook from an async closure.
///
/// ```
/// use portcullis::{hook_fn, Event};
///
/// let hook = hook_fn(|event: Event| async move {
///     tracing::info!(event = event.name(), "seen");
///     Ok(())
/// });
/// # let _ = hook;
/// ```
pub fn hook_fn<F, Fut>(f: F) -> HookFn<F>
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HookError>> + Send + 'static,
{
    HookFn(f)
}

/// A before-hook from an async closure.
///
/// ```
/// use portcullis::{veto_fn, Action, Veto};
///
/// let hook = veto_fn(|action: Action| async move {
///     match action {
///         Action::Register { email, .. } if email.ends_with("@spam.test") => {
///             Err(Veto::new("SPAM", "no"))
///         }
///         _ => Ok(()),
///     }
/// });
/// # let _ = hook;
/// ```
pub fn veto_fn<F, Fut>(f: F) -> VetoFn<F>
where
    F: Fn(Action) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Veto>> + Send + 'static,
{
    VetoFn(f)
}

/// The hook made by [`hook_fn`].
pub struct HookFn<F>(F);

impl<F> fmt::Debug for HookFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HookFn")
    }
}

#[async_trait]
impl<F, Fut> Hook for HookFn<F>
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HookError>> + Send + 'static,
{
    async fn after(&self, event: &Event) -> Result<(), HookError> {
        (self.0)(event.clone()).await
    }
}

/// The hook made by [`veto_fn`].
pub struct VetoFn<F>(F);

impl<F> fmt::Debug for VetoFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VetoFn")
    }
}

#[async_trait]
impl<F, Fut> Hook for VetoFn<F>
where
    F: Fn(Action) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Veto>> + Send + 'static,
{
    async fn before(&self, action: &Action) -> Result<(), Veto> {
        (self.0)(action.clone()).await
    }
}

/// The ordered hooks of a manager.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hooks(Vec<Arc<dyn Hook>>);

impl Hooks {
    pub(crate) fn push(&mut self, hook: Arc<dyn Hook>) {
        self.0.push(hook);
    }

    /// Asks every hook in order; the first veto wins.
    pub(crate) async fn before(&self, action: Action) -> Result<(), Veto> {
        for hook in &self.0 {
            hook.before(&action).await?;
        }
        Ok(())
    }

    /// Tells every hook; errors are logged.
    pub(crate) async fn after(&self, event: Event) {
        for hook in &self.0 {
            if let Err(err) = hook.after(&event).await {
                tracing::warn!(event = event.name(), error = %err, hook = ?hook, "after-hook failed");
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

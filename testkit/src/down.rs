//! A store whose backend is down, for the 503 paths of every flow.

use async_trait::async_trait;
use chrono::Utc;

/// A store whose backend is down: every call fails with `Unavailable`.
#[derive(Debug)]
pub struct DownStore;

fn down() -> portcullis::store::StoreError {
    portcullis::store::StoreError::Unavailable("connection refused".into())
}

#[async_trait]
impl portcullis::store::UserStore for DownStore {
    async fn insert_user(&self, _: &portcullis::User) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_user(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        Err(down())
    }
    async fn find_user_by_email(
        &self,
        _: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        Err(down())
    }
    async fn update_user(&self, _: &portcullis::User) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn patch_user(
        &self,
        _: &portcullis::UserId,
        _: &portcullis::UserPatch,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        Err(down())
    }
    async fn set_password_hash(
        &self,
        _: &portcullis::UserId,
        _: portcullis::store::PasswordGuard<'_>,
        _: &str,
        _: bool,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        Err(down())
    }
    async fn bump_token_version(
        &self,
        _: &portcullis::UserId,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        Err(down())
    }
    async fn delete_user(&self, _: &portcullis::UserId) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn list_users(
        &self,
        _: &portcullis::store::UserQuery,
    ) -> portcullis::store::StoreResult<(Vec<portcullis::User>, Option<u64>)> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::RateLimitStore for DownStore {
    async fn hit_counter(
        &self,
        _: &str,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<portcullis::store::CounterHit> {
        Err(down())
    }
    async fn read_counter(
        &self,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<(u32, chrono::DateTime<Utc>)>> {
        Err(down())
    }
    async fn reset_counter(&self, _: &str) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn reserve_counter(
        &self,
        _: &str,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: portcullis::store::Backoff,
        _: u64,
    ) -> portcullis::store::StoreResult<portcullis::store::Reservation> {
        Err(down())
    }
    async fn settle_counter(
        &self,
        _: &str,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: portcullis::store::Backoff,
        _: bool,
        _: u64,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::SessionStore for DownStore {
    async fn insert_session(
        &self,
        _: &portcullis::Session,
        _: &portcullis::store::RefreshToken,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn rotate_refresh_token(
        &self,
        _: &portcullis::TokenHash,
        _: &portcullis::TokenHash,
        _: chrono::DateTime<Utc>,
        _: chrono::Duration,
    ) -> portcullis::store::StoreResult<portcullis::store::Rotation> {
        Err(down())
    }
    async fn find_session(
        &self,
        _: &portcullis::SessionId,
    ) -> portcullis::store::StoreResult<Option<portcullis::Session>> {
        Err(down())
    }
    async fn list_user_sessions(
        &self,
        _: &portcullis::UserId,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Vec<portcullis::Session>> {
        Err(down())
    }
    async fn find_session_user(
        &self,
        _: &portcullis::UserId,
        _: &portcullis::SessionId,
    ) -> portcullis::store::StoreResult<Option<(portcullis::User, portcullis::Session)>> {
        Err(down())
    }
    async fn revoke_session(
        &self,
        _: &portcullis::SessionId,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn revoke_user_sessions(
        &self,
        _: &portcullis::UserId,
        _: Option<&portcullis::SessionId>,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
    async fn set_session_org(
        &self,
        _: &portcullis::SessionId,
        _: Option<&str>,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::OneTimeTokenStore for DownStore {
    async fn insert_one_time_token(
        &self,
        _: &portcullis::OneTimeToken,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_one_time_token(
        &self,
        _: &portcullis::TokenHash,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::OneTimeToken>> {
        Err(down())
    }
    async fn delete_one_time_tokens_for_email(
        &self,
        _: &str,
        _: &str,
    ) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
    async fn count_one_time_token_attempt(
        &self,
        _: &portcullis::TokenHash,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<u32>> {
        Err(down())
    }
    async fn consume_one_time_token(
        &self,
        _: &portcullis::TokenHash,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::OneTimeToken>> {
        Err(down())
    }
    async fn delete_one_time_tokens(
        &self,
        _: &portcullis::UserId,
        _: &str,
    ) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::AccountStore for DownStore {
    async fn insert_linked_account(
        &self,
        _: &portcullis::LinkedAccount,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_linked_account(
        &self,
        _: &str,
        _: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::LinkedAccount>> {
        Err(down())
    }
    async fn list_linked_accounts(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::LinkedAccount>> {
        Err(down())
    }
    async fn delete_linked_account(
        &self,
        _: &portcullis::UserId,
        _: &str,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_unverified_linked_accounts(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::LinkedAccount>> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::FactorStore for DownStore {
    async fn insert_recovery_codes(
        &self,
        _: &portcullis::store::Factor,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn list_second_factors(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<(
        Vec<portcullis::store::Factor>,
        Vec<portcullis::store::PasskeyRecord>,
    )> {
        Err(down())
    }
    async fn put_pending_factor(
        &self,
        _: &portcullis::store::Factor,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn confirm_factor(
        &self,
        _: &portcullis::UserId,
        _: portcullis::store::FactorKind,
        _: &portcullis::factor::Sealed,
        _: u64,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn put_recovery_codes(
        &self,
        _: &portcullis::store::Factor,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn list_factors(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Factor>> {
        Err(down())
    }
    async fn use_totp_step(
        &self,
        _: &portcullis::UserId,
        _: u64,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn use_recovery_code(
        &self,
        _: &portcullis::UserId,
        _: &portcullis::TokenHash,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<usize>> {
        Err(down())
    }
    async fn delete_factor(
        &self,
        _: &portcullis::UserId,
        _: portcullis::store::FactorKind,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_factors(&self, _: &portcullis::UserId) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::PasskeyStore for DownStore {
    async fn insert_passkey(
        &self,
        _: &portcullis::store::PasskeyRecord,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_passkey(
        &self,
        _: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::PasskeyRecord>> {
        Err(down())
    }
    async fn list_passkeys(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::PasskeyRecord>> {
        Err(down())
    }
    async fn rename_passkey(
        &self,
        _: &portcullis::UserId,
        _: &str,
        _: &str,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn use_passkey(
        &self,
        _: &str,
        _: u32,
        _: &serde_json::Value,
        _: u32,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_passkey(
        &self,
        _: &portcullis::UserId,
        _: &str,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_passkeys(&self, _: &portcullis::UserId) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::RoleStore for DownStore {
    async fn insert_role(&self, _: &portcullis::store::Role) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_roles(
        &self,
        _: &[String],
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Role>> {
        Err(down())
    }
    async fn list_roles(&self) -> portcullis::store::StoreResult<Vec<portcullis::store::Role>> {
        Err(down())
    }
    async fn update_role(
        &self,
        _: &portcullis::store::Role,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_role(&self, _: &str) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn add_user_role(
        &self,
        _: &portcullis::UserId,
        _: &str,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn remove_user_role(
        &self,
        _: &portcullis::UserId,
        _: &str,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn remove_role_from_users(&self, _: &str) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::OrgStore for DownStore {
    async fn insert_org(
        &self,
        _: &portcullis::store::Organization,
        _: &portcullis::store::Membership,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_org(
        &self,
        _: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::Organization>> {
        Err(down())
    }
    async fn rename_org(
        &self,
        _: &str,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_org(&self, _: &str) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn find_membership(
        &self,
        _: &str,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::Membership>> {
        Err(down())
    }
    async fn list_user_memberships(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Membership>> {
        Err(down())
    }
    async fn list_members(
        &self,
        _: &str,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Membership>> {
        Err(down())
    }
    async fn insert_membership(
        &self,
        _: &portcullis::store::Membership,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn set_member_roles(
        &self,
        _: &str,
        _: &portcullis::UserId,
        _: &[String],
    ) -> portcullis::store::StoreResult<portcullis::store::MemberChange> {
        Err(down())
    }
    async fn remove_membership(
        &self,
        _: &str,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<portcullis::store::MemberChange> {
        Err(down())
    }
    async fn insert_invitation(
        &self,
        _: &portcullis::store::Invitation,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_invitation_by_token(
        &self,
        _: &portcullis::TokenHash,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::Invitation>> {
        Err(down())
    }
    async fn list_invitations(
        &self,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Invitation>> {
        Err(down())
    }
    async fn revoke_invitation(&self, _: &str, _: &str) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn accept_invitation(
        &self,
        _: &portcullis::TokenHash,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::Invitation>> {
        Err(down())
    }
    async fn insert_org_role(
        &self,
        _: &portcullis::store::OrgRole,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn list_org_roles(
        &self,
        _: &str,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::OrgRole>> {
        Err(down())
    }
    async fn update_org_role(
        &self,
        _: &portcullis::store::OrgRole,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_org_role(&self, _: &str, _: &str) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
}

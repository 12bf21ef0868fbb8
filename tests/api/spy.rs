//! A store that wraps the test store and records what flows ask of it:
//! the counter keys they hit and the email lookups they make (which can be
//! held back, to show that a flow answers before it looks a user up).

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use async_trait::async_trait;
use chrono::Utc;
use parking_lot::Mutex;
use portcullis::Store;

/// Delegates to `inner`, recording counter keys and email lookups.
#[derive(Debug)]
pub struct SpyStore {
    inner: Arc<dyn Store>,
    /// Every key passed to `hit_counter` or `reserve_counter`.
    pub counter_keys: Mutex<Vec<String>>,
    /// Calls of `find_user_by_email` so far (counted when they start).
    pub email_lookups: AtomicUsize,
    /// While `false`, `find_user_by_email` waits.
    pub lookups_open: tokio::sync::watch::Sender<bool>,
    /// When set, each `delete_passkey` and `delete_linked_account` waits
    /// here first (to line up parallel removals after their checks).
    pub passkey_deletes: Mutex<Option<Arc<tokio::sync::Barrier>>>,
}

impl SpyStore {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            counter_keys: Mutex::default(),
            email_lookups: AtomicUsize::new(0),
            lookups_open: tokio::sync::watch::Sender::new(true),
            passkey_deletes: Mutex::default(),
        })
    }

    /// Holds back (`false`) or lets through (`true`) email lookups.
    pub fn open_lookups(&self, open: bool) {
        self.lookups_open.send_replace(open);
    }

    pub fn lookups(&self) -> usize {
        self.email_lookups.load(Ordering::SeqCst)
    }

    pub fn keys(&self) -> Vec<String> {
        self.counter_keys.lock().clone()
    }
}

#[async_trait]
impl portcullis::store::UserStore for SpyStore {
    async fn insert_user(&self, a0: &portcullis::User) -> portcullis::store::StoreResult<()> {
        self.inner.insert_user(a0).await
    }
    async fn find_user(
        &self,
        a0: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        self.inner.find_user(a0).await
    }
    async fn find_user_by_email(
        &self,
        a0: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        self.email_lookups.fetch_add(1, Ordering::SeqCst);
        let mut open = self.lookups_open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        self.inner.find_user_by_email(a0).await
    }
    async fn update_user(&self, a0: &portcullis::User) -> portcullis::store::StoreResult<bool> {
        self.inner.update_user(a0).await
    }
    async fn patch_user(
        &self,
        a0: &portcullis::UserId,
        a1: &portcullis::UserPatch,
        a2: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        self.inner.patch_user(a0, a1, a2).await
    }
    async fn set_password_hash(
        &self,
        a0: &portcullis::UserId,
        a1: portcullis::store::PasswordGuard<'_>,
        a2: &str,
        a3: bool,
        a4: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        self.inner.set_password_hash(a0, a1, a2, a3, a4).await
    }
    async fn bump_token_version(
        &self,
        a0: &portcullis::UserId,
        a1: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        self.inner.bump_token_version(a0, a1).await
    }
    async fn delete_user(&self, a0: &portcullis::UserId) -> portcullis::store::StoreResult<bool> {
        self.inner.delete_user(a0).await
    }
    async fn list_users(
        &self,
        a0: &portcullis::store::UserQuery,
    ) -> portcullis::store::StoreResult<(Vec<portcullis::User>, Option<u64>)> {
        self.inner.list_users(a0).await
    }
}

#[async_trait]
impl portcullis::store::RateLimitStore for SpyStore {
    async fn hit_counter(
        &self,
        a0: &str,
        a1: chrono::DateTime<Utc>,
        a2: chrono::DateTime<Utc>,
        a3: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<portcullis::store::CounterHit> {
        self.counter_keys.lock().push(a0.to_owned());
        self.inner.hit_counter(a0, a1, a2, a3).await
    }
    async fn read_counter(
        &self,
        a0: &str,
        a1: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<(u32, chrono::DateTime<Utc>)>> {
        self.inner.read_counter(a0, a1).await
    }
    async fn reset_counter(&self, a0: &str) -> portcullis::store::StoreResult<()> {
        self.inner.reset_counter(a0).await
    }
    async fn reserve_counter(
        &self,
        a0: &str,
        a1: chrono::DateTime<Utc>,
        a2: chrono::DateTime<Utc>,
        a3: chrono::DateTime<Utc>,
        a4: portcullis::store::Backoff,
        a5: u64,
    ) -> portcullis::store::StoreResult<portcullis::store::Reservation> {
        self.counter_keys.lock().push(a0.to_owned());
        self.inner.reserve_counter(a0, a1, a2, a3, a4, a5).await
    }
    async fn settle_counter(
        &self,
        a0: &str,
        a1: chrono::DateTime<Utc>,
        a2: chrono::DateTime<Utc>,
        a3: chrono::DateTime<Utc>,
        a4: portcullis::store::Backoff,
        a5: bool,
        a6: u64,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.settle_counter(a0, a1, a2, a3, a4, a5, a6).await
    }
}

#[async_trait]
impl portcullis::store::SessionStore for SpyStore {
    async fn insert_session(
        &self,
        a0: &portcullis::Session,
        a1: &portcullis::store::RefreshToken,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.insert_session(a0, a1).await
    }
    async fn rotate_refresh_token(
        &self,
        a0: &portcullis::TokenHash,
        a1: &portcullis::TokenHash,
        a2: chrono::DateTime<Utc>,
        a3: chrono::Duration,
    ) -> portcullis::store::StoreResult<portcullis::store::Rotation> {
        self.inner.rotate_refresh_token(a0, a1, a2, a3).await
    }
    async fn find_session(
        &self,
        a0: &portcullis::SessionId,
    ) -> portcullis::store::StoreResult<Option<portcullis::Session>> {
        self.inner.find_session(a0).await
    }
    async fn list_user_sessions(
        &self,
        a0: &portcullis::UserId,
        a1: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Vec<portcullis::Session>> {
        self.inner.list_user_sessions(a0, a1).await
    }
    async fn find_session_user(
        &self,
        a0: &portcullis::UserId,
        a1: &portcullis::SessionId,
    ) -> portcullis::store::StoreResult<Option<(portcullis::User, portcullis::Session)>> {
        self.inner.find_session_user(a0, a1).await
    }
    async fn revoke_session(
        &self,
        a0: &portcullis::SessionId,
        a1: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.revoke_session(a0, a1).await
    }
    async fn revoke_user_sessions(
        &self,
        a0: &portcullis::UserId,
        a1: Option<&portcullis::SessionId>,
        a2: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<u64> {
        self.inner.revoke_user_sessions(a0, a1, a2).await
    }
    async fn set_session_org(
        &self,
        a0: &portcullis::SessionId,
        a1: Option<&str>,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.set_session_org(a0, a1).await
    }
}

#[async_trait]
impl portcullis::store::OneTimeTokenStore for SpyStore {
    async fn insert_one_time_token(
        &self,
        a0: &portcullis::OneTimeToken,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.insert_one_time_token(a0).await
    }
    async fn find_one_time_token(
        &self,
        a0: &portcullis::TokenHash,
        a1: &str,
        a2: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::OneTimeToken>> {
        self.inner.find_one_time_token(a0, a1, a2).await
    }
    async fn delete_one_time_tokens_for_email(
        &self,
        a0: &str,
        a1: &str,
    ) -> portcullis::store::StoreResult<u64> {
        self.inner.delete_one_time_tokens_for_email(a0, a1).await
    }
    async fn count_one_time_token_attempt(
        &self,
        a0: &portcullis::TokenHash,
        a1: &str,
        a2: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<u32>> {
        self.inner.count_one_time_token_attempt(a0, a1, a2).await
    }
    async fn consume_one_time_token(
        &self,
        a0: &portcullis::TokenHash,
        a1: &str,
        a2: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::OneTimeToken>> {
        self.inner.consume_one_time_token(a0, a1, a2).await
    }
    async fn delete_one_time_tokens(
        &self,
        a0: &portcullis::UserId,
        a1: &str,
    ) -> portcullis::store::StoreResult<u64> {
        self.inner.delete_one_time_tokens(a0, a1).await
    }
}

#[async_trait]
impl portcullis::store::AccountStore for SpyStore {
    async fn insert_linked_account(
        &self,
        a0: &portcullis::LinkedAccount,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.insert_linked_account(a0).await
    }
    async fn find_linked_account(
        &self,
        a0: &str,
        a1: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::LinkedAccount>> {
        self.inner.find_linked_account(a0, a1).await
    }
    async fn list_linked_accounts(
        &self,
        a0: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::LinkedAccount>> {
        self.inner.list_linked_accounts(a0).await
    }
    async fn delete_linked_account(
        &self,
        a0: &portcullis::UserId,
        a1: &str,
    ) -> portcullis::store::StoreResult<bool> {
        let barrier = self.passkey_deletes.lock().clone();
        if let Some(barrier) = barrier {
            barrier.wait().await;
        }
        self.inner.delete_linked_account(a0, a1).await
    }
    async fn delete_unverified_linked_accounts(
        &self,
        a0: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::LinkedAccount>> {
        self.inner.delete_unverified_linked_accounts(a0).await
    }
}

#[async_trait]
impl portcullis::store::FactorStore for SpyStore {
    async fn list_second_factors(
        &self,
        a0: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<(
        Vec<portcullis::store::Factor>,
        Vec<portcullis::store::PasskeyRecord>,
    )> {
        self.inner.list_second_factors(a0).await
    }
    async fn put_pending_factor(
        &self,
        a0: &portcullis::store::Factor,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.put_pending_factor(a0).await
    }
    async fn confirm_factor(
        &self,
        a0: &portcullis::UserId,
        a1: portcullis::store::FactorKind,
        a2: &portcullis::factor::Sealed,
        a3: u64,
        a4: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.confirm_factor(a0, a1, a2, a3, a4).await
    }
    async fn put_recovery_codes(
        &self,
        a0: &portcullis::store::Factor,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.put_recovery_codes(a0).await
    }
    async fn insert_recovery_codes(
        &self,
        a0: &portcullis::store::Factor,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.insert_recovery_codes(a0).await
    }
    async fn list_factors(
        &self,
        a0: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Factor>> {
        self.inner.list_factors(a0).await
    }
    async fn use_totp_step(
        &self,
        a0: &portcullis::UserId,
        a1: u64,
        a2: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.use_totp_step(a0, a1, a2).await
    }
    async fn use_recovery_code(
        &self,
        a0: &portcullis::UserId,
        a1: &portcullis::TokenHash,
        a2: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<usize>> {
        self.inner.use_recovery_code(a0, a1, a2).await
    }
    async fn delete_factor(
        &self,
        a0: &portcullis::UserId,
        a1: portcullis::store::FactorKind,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.delete_factor(a0, a1).await
    }
    async fn delete_factors(&self, a0: &portcullis::UserId) -> portcullis::store::StoreResult<u64> {
        self.inner.delete_factors(a0).await
    }
}

#[async_trait]
impl portcullis::store::PasskeyStore for SpyStore {
    async fn insert_passkey(
        &self,
        a0: &portcullis::store::PasskeyRecord,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.insert_passkey(a0).await
    }
    async fn find_passkey(
        &self,
        a0: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::PasskeyRecord>> {
        self.inner.find_passkey(a0).await
    }
    async fn list_passkeys(
        &self,
        a0: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::PasskeyRecord>> {
        self.inner.list_passkeys(a0).await
    }
    async fn rename_passkey(
        &self,
        a0: &portcullis::UserId,
        a1: &str,
        a2: &str,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.rename_passkey(a0, a1, a2).await
    }
    async fn use_passkey(
        &self,
        a0: &str,
        a1: u32,
        a2: &serde_json::Value,
        a3: u32,
        a4: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.use_passkey(a0, a1, a2, a3, a4).await
    }
    async fn delete_passkey(
        &self,
        a0: &portcullis::UserId,
        a1: &str,
    ) -> portcullis::store::StoreResult<bool> {
        let barrier = self.passkey_deletes.lock().clone();
        if let Some(barrier) = barrier {
            barrier.wait().await;
        }
        self.inner.delete_passkey(a0, a1).await
    }
    async fn delete_passkeys(
        &self,
        a0: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<u64> {
        self.inner.delete_passkeys(a0).await
    }
}

#[async_trait]
impl portcullis::store::RoleStore for SpyStore {
    async fn insert_role(
        &self,
        a0: &portcullis::store::Role,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.insert_role(a0).await
    }
    async fn find_roles(
        &self,
        a0: &[String],
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Role>> {
        self.inner.find_roles(a0).await
    }
    async fn list_roles(&self) -> portcullis::store::StoreResult<Vec<portcullis::store::Role>> {
        self.inner.list_roles().await
    }
    async fn update_role(
        &self,
        a0: &portcullis::store::Role,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.update_role(a0).await
    }
    async fn delete_role(&self, a0: &str) -> portcullis::store::StoreResult<bool> {
        self.inner.delete_role(a0).await
    }
    async fn add_user_role(
        &self,
        a0: &portcullis::UserId,
        a1: &str,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.add_user_role(a0, a1).await
    }
    async fn remove_user_role(
        &self,
        a0: &portcullis::UserId,
        a1: &str,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.remove_user_role(a0, a1).await
    }
    async fn remove_role_from_users(&self, a0: &str) -> portcullis::store::StoreResult<u64> {
        self.inner.remove_role_from_users(a0).await
    }
}

#[async_trait]
impl portcullis::store::OrgStore for SpyStore {
    async fn insert_org(
        &self,
        a0: &portcullis::store::Organization,
        a1: &portcullis::store::Membership,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.insert_org(a0, a1).await
    }
    async fn find_org(
        &self,
        a0: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::Organization>> {
        self.inner.find_org(a0).await
    }
    async fn rename_org(
        &self,
        a0: &str,
        a1: &str,
        a2: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.rename_org(a0, a1, a2).await
    }
    async fn delete_org(&self, a0: &str) -> portcullis::store::StoreResult<bool> {
        self.inner.delete_org(a0).await
    }
    async fn find_membership(
        &self,
        a0: &str,
        a1: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::Membership>> {
        self.inner.find_membership(a0, a1).await
    }
    async fn list_user_memberships(
        &self,
        a0: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Membership>> {
        self.inner.list_user_memberships(a0).await
    }
    async fn list_members(
        &self,
        a0: &str,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Membership>> {
        self.inner.list_members(a0).await
    }
    async fn insert_membership(
        &self,
        a0: &portcullis::store::Membership,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.insert_membership(a0).await
    }
    async fn set_member_roles(
        &self,
        a0: &str,
        a1: &portcullis::UserId,
        a2: &[String],
    ) -> portcullis::store::StoreResult<portcullis::store::MemberChange> {
        self.inner.set_member_roles(a0, a1, a2).await
    }
    async fn remove_membership(
        &self,
        a0: &str,
        a1: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<portcullis::store::MemberChange> {
        self.inner.remove_membership(a0, a1).await
    }
    async fn insert_invitation(
        &self,
        a0: &portcullis::store::Invitation,
        a1: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.insert_invitation(a0, a1).await
    }
    async fn find_invitation_by_token(
        &self,
        a0: &portcullis::TokenHash,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::Invitation>> {
        self.inner.find_invitation_by_token(a0).await
    }
    async fn list_invitations(
        &self,
        a0: &str,
        a1: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Invitation>> {
        self.inner.list_invitations(a0, a1).await
    }
    async fn revoke_invitation(&self, a0: &str, a1: &str) -> portcullis::store::StoreResult<bool> {
        self.inner.revoke_invitation(a0, a1).await
    }
    async fn accept_invitation(
        &self,
        a0: &portcullis::TokenHash,
        a1: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::Invitation>> {
        self.inner.accept_invitation(a0, a1).await
    }
    async fn insert_org_role(
        &self,
        a0: &portcullis::store::OrgRole,
    ) -> portcullis::store::StoreResult<()> {
        self.inner.insert_org_role(a0).await
    }
    async fn list_org_roles(
        &self,
        a0: &str,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::OrgRole>> {
        self.inner.list_org_roles(a0).await
    }
    async fn update_org_role(
        &self,
        a0: &portcullis::store::OrgRole,
    ) -> portcullis::store::StoreResult<bool> {
        self.inner.update_org_role(a0).await
    }
    async fn delete_org_role(&self, a0: &str, a1: &str) -> portcullis::store::StoreResult<bool> {
        self.inner.delete_org_role(a0, a1).await
    }
}

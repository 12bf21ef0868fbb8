//! The embedded in-memory store.

mod orgs;
mod roles;

use std::{
    collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque},
    ops::Bound,
};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use parking_lot::RwLock;

use super::{
    AccountStore, Backoff, CounterHit, Factor, FactorKind, FactorStore, LinkedAccount,
    OneTimeToken, OneTimeTokenStore, PasskeyRecord, PasskeyStore, PasswordGuard, RateLimitStore,
    RefreshToken, Reservation, Rotation, Session, SessionStore, StoreError, StoreResult,
    UserCursor, UserPatch, UserQuery, UserStore,
};
use crate::{
    token::TokenHash,
    user::{SessionId, User, UserId},
};

/// An in-memory store: the embedded default, for development, tests and
/// single-process deployments. Data is lost when the process ends.
///
/// One lock guards all data, so every multi-step operation (uniqueness,
/// rotation, single use) is atomic. Expired sessions and tokens are swept
/// lazily as new ones are written, so memory stays bounded by live data.
///
/// Users are also kept in list order (an ordered set of creation time and
/// id) and by normalised email in an ordered map: a `list_users` page
/// after a cursor is a range of the set, an email prefix a range of the
/// map, whatever the number of users. `examples/scale.rs` measures a
/// million users and sessions: about 1.3 KB of resident memory per user
/// and 1.5 KB per session.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    /// Ids by normalised email, ordered: an email-prefix filter is a range.
    by_email: BTreeMap<String, UserId>,
    /// Every user's list order (creation time, id): a page after a cursor
    /// is a range of this set.
    by_created: BTreeSet<UserCursor>,
    sessions: HashMap<SessionId, Session>,
    refresh: HashMap<TokenHash, RefreshToken>,
    one_time: HashMap<TokenHash, OneTimeToken>,
    accounts: HashMap<(String, String), LinkedAccount>,
    factors: HashMap<(UserId, FactorKind), Factor>,
    /// Passkeys by credential id.
    passkeys: HashMap<String, PasskeyRecord>,
    /// Run-time roles by name.
    roles: BTreeMap<String, super::Role>,
    /// Organizations by id.
    orgs: HashMap<String, super::Organization>,
    /// Memberships by (organization, user): one per pair by the key.
    members: BTreeMap<(String, UserId), super::Membership>,
    /// Invitations by id.
    invitations: HashMap<String, super::Invitation>,
    /// Custom organization roles by (organization, name).
    org_roles: BTreeMap<(String, String), super::OrgRole>,
    /// Token hashes of each session, oldest first, at most
    /// [`TOKENS_PER_SESSION`].
    families: HashMap<SessionId, VecDeque<TokenHash>>,
    /// Rate-limit windows by (key, window start in ms).
    counters: HashMap<(String, i64), Counter>,
    /// Entry count at which the next sweep runs.
    sweep_at: usize,
}

/// One rate-limit window: hits, last hit, when it may be dropped.
#[derive(Debug, Clone)]
struct Counter {
    count: u32,
    last_at: DateTime<Utc>,
    /// Set by failed reservations: no attempt is reserved before it.
    next_at: Option<DateTime<Utc>>,
    /// Reservations in flight: until when each holds its slot, and the
    /// caller's lease id.
    leases: Vec<(DateTime<Utc>, u64)>,
    expires_at: DateTime<Utc>,
}

const MIN_SWEEP: usize = 1024;

/// Refresh tokens remembered per session for reuse detection. A token more
/// than this many rotations old is forgotten: presenting it is answered as
/// an unknown token (401) instead of revoking the session. This bounds
/// memory for a session that is refreshed in a tight loop.
pub(crate) const TOKENS_PER_SESSION: usize = 64;

/// Records `hash` as the newest token of `session`, forgetting the oldest
/// beyond [`TOKENS_PER_SESSION`].
fn remember(
    families: &mut HashMap<SessionId, VecDeque<TokenHash>>,
    refresh: &mut HashMap<TokenHash, RefreshToken>,
    session: &SessionId,
    hash: &TokenHash,
) {
    let family = families.entry(session.clone()).or_default();
    family.push_back(hash.clone());
    while family.len() > TOKENS_PER_SESSION {
        if let Some(old) = family.pop_front() {
            refresh.remove(&old);
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl State {
    /// The user's factors, ordered by kind.
    fn factors_of(&self, user_id: &UserId) -> Vec<Factor> {
        let mut factors: Vec<Factor> = self
            .factors
            .iter()
            .filter(|((user, _), _)| user == user_id)
            .map(|(_, f)| f.clone())
            .collect();
        factors.sort_by_key(|f| f.kind);
        factors
    }

    /// The user's passkeys, oldest first.
    fn passkeys_of(&self, user_id: &UserId) -> Vec<PasskeyRecord> {
        let mut passkeys: Vec<PasskeyRecord> = self
            .passkeys
            .values()
            .filter(|p| p.user_id == *user_id)
            .cloned()
            .collect();
        passkeys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        passkeys
    }

    /// Drops expired or revoked sessions with their tokens and expired
    /// one-time tokens once the number of entries has doubled since the last
    /// sweep (amortised O(1) per write).
    fn maybe_sweep(&mut self, now: DateTime<Utc>) {
        let size =
            self.sessions.len() + self.refresh.len() + self.one_time.len() + self.counters.len();
        if size < self.sweep_at.max(MIN_SWEEP) {
            return;
        }
        self.sessions.retain(|_, s| s.is_alive(now));
        let sessions = &self.sessions;
        self.refresh
            .retain(|_, t| sessions.contains_key(&t.session_id));
        self.families.retain(|id, _| sessions.contains_key(id));
        self.one_time.retain(|_, t| t.expires_at > now);
        self.counters.retain(|_, c| c.expires_at > now);
        self.sweep_at = 2
            * (self.sessions.len()
                + self.refresh.len()
                + self.one_time.len()
                + self.counters.len());
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let mut state = self.state.write();
        if state.by_email.contains_key(&user.email_normalized) {
            return Err(StoreError::Conflict("email"));
        }
        if state.users.contains_key(&user.id) {
            return Err(StoreError::Conflict("id"));
        }
        state
            .by_email
            .insert(user.email_normalized.clone(), user.id.clone());
        state.by_created.insert(UserCursor::after(user));
        state.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn find_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        Ok(self.state.read().users.get(id).cloned())
    }

    async fn find_user_by_email(&self, email_normalized: &str) -> StoreResult<Option<User>> {
        let state = self.state.read();
        Ok(state
            .by_email
            .get(email_normalized)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn update_user(&self, user: &User) -> StoreResult<bool> {
        let mut state = self.state.write();
        let Some((old_email, old_created)) = state
            .users
            .get(&user.id)
            .map(|u| (u.email_normalized.clone(), u.created_at))
        else {
            return Ok(false);
        };
        if old_email != user.email_normalized {
            if state.by_email.contains_key(&user.email_normalized) {
                return Err(StoreError::Conflict("email"));
            }
            state.by_email.remove(&old_email);
            state
                .by_email
                .insert(user.email_normalized.clone(), user.id.clone());
        }
        if old_created != user.created_at {
            state.by_created.remove(&UserCursor {
                created_at: old_created,
                id: user.id.clone(),
            });
            state.by_created.insert(UserCursor::after(user));
        }
        state.users.insert(user.id.clone(), user.clone());
        Ok(true)
    }

    async fn patch_user(
        &self,
        id: &UserId,
        patch: &UserPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let mut state = self.state.write();
        let Some(old_email) = state.users.get(id).map(|u| u.email_normalized.clone()) else {
            return Ok(None);
        };
        if let Some((_, new_email)) = &patch.email {
            if *new_email != old_email {
                if state.by_email.contains_key(new_email) {
                    return Err(StoreError::Conflict("email"));
                }
                state.by_email.remove(&old_email);
                state.by_email.insert(new_email.clone(), id.clone());
            }
        }
        Ok(state.users.get_mut(id).map(|user| {
            patch.apply(user, now);
            user.clone()
        }))
    }

    async fn set_password_hash(
        &self,
        id: &UserId,
        guard: PasswordGuard<'_>,
        new_hash: &str,
        bump_token_version: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let mut state = self.state.write();
        match state.users.get_mut(id) {
            Some(user) if guard.allows(user.password_hash.as_deref()) => {
                user.password_hash = Some(new_hash.to_owned());
                if bump_token_version {
                    user.token_version += 1;
                }
                user.updated_at = now;
                Ok(Some(user.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn bump_token_version(
        &self,
        id: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let mut state = self.state.write();
        Ok(state.users.get_mut(id).map(|user| {
            user.token_version += 1;
            user.updated_at = now;
            user.clone()
        }))
    }

    async fn delete_user(&self, id: &UserId) -> StoreResult<bool> {
        let mut state = self.state.write();
        let Some(user) = state.users.remove(id) else {
            return Ok(false);
        };
        state.by_email.remove(&user.email_normalized);
        state.by_created.remove(&UserCursor::after(&user));
        state.accounts.retain(|_, a| a.user_id != *id);
        state.factors.retain(|(user, _), _| user != id);
        state.passkeys.retain(|_, p| p.user_id != *id);
        state.sessions.retain(|_, s| s.user_id != *id);
        state.refresh.retain(|_, t| t.user_id != *id);
        let State {
            sessions, families, ..
        } = &mut *state;
        families.retain(|sid, _| sessions.contains_key(sid));
        state.one_time.retain(|_, t| t.user_id.as_ref() != Some(id));
        state.members.retain(|(_, user), _| user != id);
        Ok(true)
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, Option<u64>)> {
        let state = self.state.read();
        let skip = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let take = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let wanted = skip.saturating_add(take);
        let prefix = query.email_prefix.as_deref().filter(|p| !p.is_empty());
        let (keys, total) = match prefix {
            // Every user: a seek in the list order, then the page.
            None => {
                let from = match &query.after {
                    Some(cursor) => Bound::Excluded(cursor),
                    None => Bound::Unbounded,
                };
                let keys: Vec<&UserCursor> = state
                    .by_created
                    .range((from, Bound::Unbounded))
                    .skip(skip)
                    .take(take)
                    .collect();
                (keys, state.users.len() as u64)
            }
            // A prefix: the matches are a range of the email index; keep
            // the `offset + limit` first of them in list order (a bounded
            // heap: memory and time do not grow with the cursor's depth).
            Some(prefix) => {
                let mut total = 0u64;
                let mut best: BinaryHeap<&UserCursor> = BinaryHeap::new();
                for (_, id) in state
                    .by_email
                    .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                    .take_while(|(email, _)| email.starts_with(prefix))
                {
                    total += 1;
                    let Some(key) = state
                        .users
                        .get(id)
                        .and_then(|u| state.by_created.get(&UserCursor::after(u)))
                    else {
                        continue;
                    };
                    if query.after.as_ref().is_some_and(|after| key <= after) {
                        continue;
                    }
                    if best.len() < wanted {
                        best.push(key);
                    } else if best.peek().is_some_and(|worst| key < *worst) {
                        best.pop();
                        best.push(key);
                    }
                }
                let keys = best.into_sorted_vec().into_iter().skip(skip).collect();
                (keys, total)
            }
        };
        let page = keys
            .into_iter()
            .filter_map(|key| state.users.get(&key.id).cloned())
            .collect();
        Ok((page, query.count.then_some(total)))
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert_session(&self, session: &Session, first: &RefreshToken) -> StoreResult<()> {
        let mut state = self.state.write();
        state.maybe_sweep(session.created_at);
        if state.sessions.contains_key(&session.id) || state.refresh.contains_key(&first.hash) {
            return Err(StoreError::Conflict("session"));
        }
        state.sessions.insert(session.id.clone(), session.clone());
        let mut first = first.clone();
        first.session_id = session.id.clone();
        let State {
            refresh, families, ..
        } = &mut *state;
        refresh.insert(first.hash.clone(), first.clone());
        remember(families, refresh, &session.id, &first.hash);
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        next: &TokenHash,
        now: DateTime<Utc>,
        grace: Duration,
    ) -> StoreResult<Rotation> {
        let mut state = self.state.write();
        let State {
            sessions,
            refresh,
            families,
            ..
        } = &mut *state;
        if refresh.contains_key(next) {
            return Err(StoreError::Conflict("refresh token"));
        }
        let Some(token) = refresh.get(presented) else {
            return Ok(Rotation::Invalid);
        };
        let Some(session) = sessions.get_mut(&token.session_id) else {
            return Ok(Rotation::Invalid);
        };
        if !session.is_alive(now) {
            return Ok(Rotation::Invalid);
        }
        // Inside the grace window a used token may be presented again only
        // while its replacement is still unused (the client lost the
        // answer); the replacement is then superseded, so one chain lives.
        let superseded = match (token.used_at, &token.replaced_by) {
            (None, _) => None,
            (Some(used), Some(child))
                if now - used < grace
                    && refresh.get(child).is_some_and(|c| c.used_at.is_none()) =>
            {
                Some(child.clone())
            }
            (Some(_), _) => {
                session.revoked_at = Some(now);
                return Ok(Rotation::Reused(session.clone()));
            }
        };
        let retried = superseded.is_some();
        if let Some(child) = superseded.and_then(|c| refresh.get_mut(&c)) {
            // Presenting it from now on counts as reuse.
            child.used_at = Some(DateTime::UNIX_EPOCH);
        }
        if let Some(token) = refresh.get_mut(presented) {
            token.used_at.get_or_insert(now);
            // One retry per token, as on MongoStore: after a grace retry
            // the token has no live replacement, so presenting it again is
            // reuse.
            token.replaced_by = if retried { None } else { Some(next.clone()) };
        }
        session.last_used_at = now;
        let session = session.clone();
        refresh.insert(
            next.clone(),
            RefreshToken {
                hash: next.clone(),
                session_id: session.id.clone(),
                user_id: session.user_id.clone(),
                issued_at: now,
                used_at: None,
                replaced_by: None,
            },
        );
        remember(families, refresh, &session.id, next);
        Ok(Rotation::Rotated(session))
    }

    async fn find_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        Ok(self.state.read().sessions.get(id).cloned())
    }

    async fn find_session_user(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
    ) -> StoreResult<Option<(User, Session)>> {
        let state = self.state.read();
        let Some(session) = state.sessions.get(session_id) else {
            return Ok(None);
        };
        if session.user_id != *user_id {
            return Ok(None);
        }
        Ok(state
            .users
            .get(user_id)
            .map(|user| (user.clone(), session.clone())))
    }

    async fn list_user_sessions(
        &self,
        user_id: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Session>> {
        let state = self.state.read();
        let mut sessions: Vec<Session> = state
            .sessions
            .values()
            .filter(|s| s.user_id == *user_id && s.is_alive(now))
            .cloned()
            .collect();
        sessions.sort_by(|a, b| (b.last_used_at, &b.id).cmp(&(a.last_used_at, &a.id)));
        Ok(sessions)
    }

    async fn revoke_session(&self, id: &SessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut state = self.state.write();
        Ok(match state.sessions.get_mut(id) {
            Some(session) if session.revoked_at.is_none() => {
                session.revoked_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn set_session_org(&self, id: &SessionId, org: Option<&str>) -> StoreResult<bool> {
        let mut state = self.state.write();
        Ok(match state.sessions.get_mut(id) {
            Some(session) => {
                session.org = org.map(str::to_owned);
                true
            }
            None => false,
        })
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &UserId,
        keep: Option<&SessionId>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut state = self.state.write();
        let mut count = 0;
        for session in state.sessions.values_mut() {
            if session.user_id == *user_id && session.is_alive(now) && Some(&session.id) != keep {
                session.revoked_at = Some(now);
                count += 1;
            }
        }
        Ok(count)
    }
}

#[async_trait]
impl OneTimeTokenStore for MemoryStore {
    async fn insert_one_time_token(&self, token: &OneTimeToken) -> StoreResult<()> {
        let mut state = self.state.write();
        state.maybe_sweep(token.created_at);
        if state.one_time.contains_key(&token.hash) {
            return Err(StoreError::Conflict("one-time token"));
        }
        state.one_time.insert(token.hash.clone(), token.clone());
        Ok(())
    }

    async fn find_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OneTimeToken>> {
        Ok(self
            .state
            .read()
            .one_time
            .get(hash)
            .filter(|t| t.purpose == purpose && t.expires_at > now)
            .cloned())
    }

    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OneTimeToken>> {
        let mut state = self.state.write();
        match state.one_time.get(hash) {
            Some(token) if token.purpose == purpose && token.expires_at > now => {
                Ok(state.one_time.remove(hash))
            }
            _ => Ok(None),
        }
    }

    async fn delete_one_time_tokens_for_email(
        &self,
        email: &str,
        purpose: &str,
    ) -> StoreResult<u64> {
        let mut state = self.state.write();
        let before = state.one_time.len();
        state
            .one_time
            .retain(|_, t| !(t.purpose == purpose && t.email.as_deref() == Some(email)));
        Ok((before - state.one_time.len()) as u64)
    }

    async fn count_one_time_token_attempt(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<u32>> {
        let mut state = self.state.write();
        Ok(match state.one_time.get_mut(hash) {
            Some(token) if token.purpose == purpose && token.expires_at > now => {
                token.attempts = token.attempts.saturating_add(1);
                Some(token.attempts)
            }
            _ => None,
        })
    }

    async fn delete_one_time_tokens(&self, user_id: &UserId, purpose: &str) -> StoreResult<u64> {
        let mut state = self.state.write();
        let before = state.one_time.len();
        state
            .one_time
            .retain(|_, t| !(t.purpose == purpose && t.user_id.as_ref() == Some(user_id)));
        Ok((before - state.one_time.len()) as u64)
    }
}

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn hit_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<CounterHit> {
        let mut state = self.state.write();
        state.maybe_sweep(now);
        let entry = state
            .counters
            .entry((key.to_owned(), window_start.timestamp_millis()))
            .or_insert(Counter {
                count: 0,
                last_at: now,
                next_at: None,
                leases: Vec::new(),
                expires_at,
            });
        entry.count = entry.count.saturating_add(1);
        entry.last_at = now;
        Ok(CounterHit { count: entry.count })
    }

    async fn read_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
    ) -> StoreResult<Option<(u32, DateTime<Utc>)>> {
        Ok(self
            .state
            .read()
            .counters
            .get(&(key.to_owned(), window_start.timestamp_millis()))
            .map(|c| (c.count, c.last_at)))
    }

    async fn reset_counter(&self, key: &str) -> StoreResult<()> {
        self.state.write().counters.retain(|(k, _), _| k != key);
        Ok(())
    }

    async fn reserve_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        backoff: Backoff,
        lease: u64,
    ) -> StoreResult<Reservation> {
        let mut state = self.state.write();
        state.maybe_sweep(now);
        let entry = state
            .counters
            .entry((key.to_owned(), window_start.timestamp_millis()))
            .or_insert(Counter {
                count: 0,
                last_at: now,
                next_at: None,
                leases: Vec::new(),
                expires_at,
            });
        entry.leases.retain(|(until, _)| *until > now);
        let in_flight = u32::try_from(entry.leases.len()).unwrap_or(u32::MAX);
        let decision = backoff.decide(entry.count, in_flight, entry.next_at, now);
        if let Reservation::Reserved { .. } = decision {
            entry.leases.push((now + backoff.lease, lease));
        }
        Ok(decision)
    }

    async fn settle_counter(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        backoff: Backoff,
        failed: bool,
        lease: u64,
    ) -> StoreResult<()> {
        let mut state = self.state.write();
        let id = (key.to_owned(), window_start.timestamp_millis());
        if !failed && !state.counters.contains_key(&id) {
            return Ok(());
        }
        let entry = state.counters.entry(id).or_insert(Counter {
            count: 0,
            last_at: now,
            next_at: None,
            leases: Vec::new(),
            expires_at,
        });
        entry.leases.retain(|(_, id)| *id != lease);
        if failed {
            entry.count = entry.count.saturating_add(1);
            entry.last_at = now;
            entry.next_at = Some(now + backoff.delay_after(entry.count));
        }
        Ok(())
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn insert_linked_account(&self, account: &LinkedAccount) -> StoreResult<()> {
        let mut state = self.state.write();
        let key = (account.provider.clone(), account.subject.clone());
        if state.accounts.contains_key(&key) {
            return Err(StoreError::Conflict("linked account"));
        }
        state.accounts.insert(key, account.clone());
        Ok(())
    }

    async fn find_linked_account(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<LinkedAccount>> {
        Ok(self
            .state
            .read()
            .accounts
            .get(&(provider.to_owned(), subject.to_owned()))
            .cloned())
    }

    async fn list_linked_accounts(&self, user_id: &UserId) -> StoreResult<Vec<LinkedAccount>> {
        let state = self.state.read();
        let mut accounts: Vec<LinkedAccount> = state
            .accounts
            .values()
            .filter(|a| a.user_id == *user_id)
            .cloned()
            .collect();
        accounts.sort_by(|a, b| a.provider.cmp(&b.provider));
        Ok(accounts)
    }

    async fn delete_linked_account(&self, user_id: &UserId, provider: &str) -> StoreResult<bool> {
        let mut state = self.state.write();
        let before = state.accounts.len();
        state
            .accounts
            .retain(|_, a| !(a.user_id == *user_id && a.provider == provider));
        Ok(state.accounts.len() != before)
    }

    async fn delete_unverified_linked_accounts(
        &self,
        user_id: &UserId,
    ) -> StoreResult<Vec<LinkedAccount>> {
        let mut state = self.state.write();
        let mut removed = Vec::new();
        state.accounts.retain(|_, a| {
            let unverified = a.user_id == *user_id && !a.email_verified;
            if unverified {
                removed.push(a.clone());
            }
            !unverified
        });
        removed.sort_by(|a, b| (&a.provider, &a.subject).cmp(&(&b.provider, &b.subject)));
        Ok(removed)
    }
}

#[async_trait]
impl FactorStore for MemoryStore {
    async fn put_pending_factor(&self, factor: &Factor) -> StoreResult<()> {
        let mut state = self.state.write();
        let key = (factor.user_id.clone(), factor.kind);
        if state.factors.get(&key).is_some_and(Factor::is_confirmed) {
            return Err(StoreError::Conflict("factor"));
        }
        state.factors.insert(key, factor.clone());
        Ok(())
    }

    async fn confirm_factor(
        &self,
        user_id: &UserId,
        kind: FactorKind,
        secret: &crate::factor::Sealed,
        step: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut state = self.state.write();
        match state.factors.get_mut(&(user_id.clone(), kind)) {
            Some(factor) if !factor.is_confirmed() && factor.secret.as_ref() == Some(secret) => {
                factor.confirmed_at = Some(now);
                factor.last_used_at = Some(now);
                factor.last_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn put_recovery_codes(&self, factor: &Factor) -> StoreResult<()> {
        let mut state = self.state.write();
        state
            .factors
            .insert((factor.user_id.clone(), factor.kind), factor.clone());
        Ok(())
    }

    async fn insert_recovery_codes(&self, factor: &Factor) -> StoreResult<()> {
        let mut state = self.state.write();
        let key = (factor.user_id.clone(), FactorKind::RecoveryCodes);
        if state.factors.contains_key(&key) {
            return Err(StoreError::Conflict("recovery codes"));
        }
        state.factors.insert(key, factor.clone());
        Ok(())
    }

    async fn list_factors(&self, user_id: &UserId) -> StoreResult<Vec<Factor>> {
        Ok(self.state.read().factors_of(user_id))
    }

    async fn list_second_factors(
        &self,
        user_id: &UserId,
    ) -> StoreResult<(Vec<Factor>, Vec<PasskeyRecord>)> {
        // One lock: both lists from the same moment.
        let state = self.state.read();
        let (factors, passkeys) = (state.factors_of(user_id), state.passkeys_of(user_id));
        Ok((factors, passkeys))
    }

    async fn use_totp_step(
        &self,
        user_id: &UserId,
        step: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut state = self.state.write();
        match state.factors.get_mut(&(user_id.clone(), FactorKind::Totp)) {
            Some(factor) if factor.is_confirmed() && factor.last_step.is_none_or(|s| s < step) => {
                factor.last_step = Some(step);
                factor.last_used_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn use_recovery_code(
        &self,
        user_id: &UserId,
        code: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<usize>> {
        let mut state = self.state.write();
        let Some(factor) = state
            .factors
            .get_mut(&(user_id.clone(), FactorKind::RecoveryCodes))
        else {
            return Ok(None);
        };
        let Some(at) = factor.codes.iter().position(|c| c == code) else {
            return Ok(None);
        };
        factor.codes.remove(at);
        factor.last_used_at = Some(now);
        Ok(Some(factor.codes.len()))
    }

    async fn delete_factor(&self, user_id: &UserId, kind: FactorKind) -> StoreResult<bool> {
        Ok(self
            .state
            .write()
            .factors
            .remove(&(user_id.clone(), kind))
            .is_some())
    }

    async fn delete_factors(&self, user_id: &UserId) -> StoreResult<u64> {
        let mut state = self.state.write();
        let before = state.factors.len();
        state.factors.retain(|(user, _), _| user != user_id);
        Ok((before - state.factors.len()) as u64)
    }
}

#[async_trait]
impl PasskeyStore for MemoryStore {
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()> {
        let mut state = self.state.write();
        if state.passkeys.contains_key(&passkey.id) {
            return Err(StoreError::Conflict("passkey"));
        }
        state.passkeys.insert(passkey.id.clone(), passkey.clone());
        Ok(())
    }

    async fn find_passkey(&self, id: &str) -> StoreResult<Option<PasskeyRecord>> {
        Ok(self.state.read().passkeys.get(id).cloned())
    }

    async fn list_passkeys(&self, user_id: &UserId) -> StoreResult<Vec<PasskeyRecord>> {
        Ok(self.state.read().passkeys_of(user_id))
    }

    async fn rename_passkey(&self, user_id: &UserId, id: &str, name: &str) -> StoreResult<bool> {
        let mut state = self.state.write();
        match state.passkeys.get_mut(id) {
            Some(passkey) if passkey.user_id == *user_id => {
                name.clone_into(&mut passkey.name);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn use_passkey(
        &self,
        id: &str,
        seen_counter: u32,
        credential: &serde_json::Value,
        counter: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut state = self.state.write();
        match state.passkeys.get_mut(id) {
            Some(passkey) if passkey.counter == seen_counter => {
                passkey.credential = credential.clone();
                passkey.counter = counter;
                passkey.last_used_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_passkey(&self, user_id: &UserId, id: &str) -> StoreResult<bool> {
        let mut state = self.state.write();
        if state
            .passkeys
            .get(id)
            .is_some_and(|p| p.user_id == *user_id)
        {
            state.passkeys.remove(id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn delete_passkeys(&self, user_id: &UserId) -> StoreResult<u64> {
        let mut state = self.state.write();
        let before = state.passkeys.len();
        state.passkeys.retain(|_, p| p.user_id != *user_id);
        Ok((before - state.passkeys.len()) as u64)
    }
}

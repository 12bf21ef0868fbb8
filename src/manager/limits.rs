//! The limits table: every rate limit of every flow is decided here, once.
//!
//! Flows call these functions themselves, so an HTTP route, a provider's
//! route and a Rust caller without HTTP are all limited the same way.
//! Counters live in the store ([`RateLimitStore`](crate::RateLimitStore)),
//! fixed windows shared by every app node. Keys are canonical: a client IP
//! as resolved by the HTTP adapter, or the SHA-256 (hex) of a *normalised*
//! email: raw input never becomes a key, and an email is validated before
//! any counter is touched.
//!
//! | Flow | Rule | Key | Budget ([`RateLimitConfig`](crate::RateLimitConfig)) | Over budget |
//! |---|---|---|---|---|
//! | every sign-in ([`AuthManager::sign_in`], any provider), OAuth start | `sign_in_per_ip` | client IP | `sign_in_per_ip` (30/min) | 429 |
//! | a sign-in that names an email (password, email code) | `failed_sign_in` | digest of the email | `failed_sign_in_free` (5) failures per `failed_sign_in_window_secs`, then 1 s, 2 s, 4 s … ≤ `failed_sign_in_max_delay_secs` | 429 + `Retry-After` |
//! | a current-password check (change password, change email, delete account) | `sign_in_per_ip` and `failed_sign_in` | client IP; digest of the account's email | the same two budgets, shared with sign-in | 429 + `Retry-After` |
//! | registration | `sign_up_per_ip` | client IP | `sign_up_per_ip` (20/h) | 429 |
//! | a request that sends mail (forgot password, verification resend and request, change email, delete code, magic link, email code) | `email_per_ip` | client IP | `email_per_ip` (20/h) | 429 |
//! | the same, per recipient | `email_per_address` | digest of the recipient's address | `email_per_address` (5/h) | the same 202, nothing new sent |
//! | an answer to an MFA challenge (TOTP, recovery code) | `sign_in_per_ip` and `failed_sign_in` | client IP; digest of the account's email | the same two budgets, shared with sign-in (a first factor proven does not clear the failures; the answer that passes does) | 429 + `Retry-After` |
//! | confirming a TOTP setup | `sign_in_per_ip` | client IP | `sign_in_per_ip` | 429 |
//! | a use of an emailed token (verify email, reset password, confirm email change, magic link) | `token_per_ip` | client IP | `token_per_ip` (30/10 min) | 429 |
//!
//! The per-account failure counter is *reserved* atomically before the
//! password or code is checked ([`RateLimitStore::reserve_counter`](crate::RateLimitStore::reserve_counter)):
//! however many guesses arrive at once, only the free budget is checked
//! (requests beyond it wait for those in flight to settle, then are refused
//! when they failed); a success clears the counter, an attempt that proved
//! nothing either way gives its slot back.
//!
//! Over a recipient's mail budget the request is answered as usual and
//! nothing is sent, so nobody can lock an owner out of sign-in or reset by
//! requesting mail for their address; the sender is stopped by the per-IP
//! budget. The magic-link and email-code requests of
//! `portcullis-magic-link` and OAuth's start call
//! [`AuthManager::rate_limit`] and [`AuthManager::mail_budget`]
//! themselves, for the rows above.

use chrono::{DateTime, Duration, Utc};

use super::AuthManager;
use crate::{
    config::Limit,
    error::{Error, Result},
    hooks::Event,
    store::{Backoff, ClientInfo, Reservation},
    token::TokenHash,
};

/// Which limit a request counts against. The budgets are in
/// [`RateLimitConfig`](crate::RateLimitConfig); which flow counts against
/// which rule is one table, in `src/manager/limits.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateRule {
    /// Sign-in attempts per client IP (every provider, and current-password
    /// checks).
    SignInPerIp,
    /// Registrations per client IP.
    SignUpPerIp,
    /// Requests that send an email, per client IP.
    EmailPerIp,
    /// Emails per recipient address (see [`AuthManager::mail_budget`]).
    EmailPerAddress,
    /// Uses of emailed tokens per client IP.
    TokenPerIp,
}

impl RateRule {
    /// The snake_case name, used in counter keys and events.
    pub fn name(self) -> &'static str {
        match self {
            RateRule::SignInPerIp => "sign_in_per_ip",
            RateRule::SignUpPerIp => "sign_up_per_ip",
            RateRule::EmailPerIp => "email_per_ip",
            RateRule::EmailPerAddress => "email_per_address",
            RateRule::TokenPerIp => "token_per_ip",
        }
    }
}

/// The rule name of the per-account failure counter.
const FAILED_SIGN_IN: &str = "failed_sign_in";

/// The counter key of `rule` for an already canonical `subject`.
fn key(rule: &str, subject: &str) -> String {
    format!("{rule}:{subject}")
}

/// The canonical key part for a normalised email: its SHA-256 in hex, so
/// a key has a fixed size whatever the address.
fn email_digest(normalized: &str) -> String {
    TokenHash::of(normalized).as_str().to_owned()
}

/// The start of the fixed window of `length` containing `now`.
fn window_start(now: DateTime<Utc>, length: Duration) -> DateTime<Utc> {
    let len = length.num_milliseconds().max(1);
    let start = now.timestamp_millis().div_euclid(len) * len;
    DateTime::from_timestamp_millis(start).unwrap_or(now)
}

fn secs(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2_000))
}

/// Whole seconds from `now` until `at`, at least 1.
fn seconds_until(now: DateTime<Utc>, at: DateTime<Utc>) -> u64 {
    let millis = (at - now).num_milliseconds().max(0);
    u64::try_from((millis + 999) / 1000).unwrap_or(1).max(1)
}

/// A reserved per-account attempt slot (see
/// [`AuthManager::reserve_attempt`]). Settle it with
/// [`AuthManager::settle_attempt`]; a slot dropped unsettled (the request
/// was cut off mid-check) is given back in the background.
#[derive(Debug)]
pub(crate) struct AttemptSlot {
    manager: AuthManager,
    key: String,
    window_start: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// This attempt's random id in the store's reservation.
    lease: u64,
    settled: bool,
}

impl Drop for AttemptSlot {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (manager, key) = (self.manager.clone(), std::mem::take(&mut self.key));
        let (window_start, expires_at, lease) = (self.window_start, self.expires_at, self.lease);
        runtime.spawn(async move {
            let store = &manager.inner.store;
            let now = manager.now();
            let backoff = manager.backoff();
            if let Err(err) = store
                .settle_counter(&key, window_start, expires_at, now, backoff, false, lease)
                .await
            {
                tracing::warn!(error = %err, "an unsettled sign-in slot was not given back");
            }
        });
    }
}

/// How long a request waits for a slot held by attempts in flight before
/// it is answered 429.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often a waiting request asks again.
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// How a reserved attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptOutcome {
    /// The password or code was right: the failures are cleared.
    Proven,
    /// It was wrong: the slot stays counted.
    Failed,
    /// Nothing was checked (no live code, store error …): the slot is
    /// given back.
    Unproven,
}

impl AttemptOutcome {
    /// The outcome of a flow that ended in `result`.
    pub(crate) fn of<T>(result: &Result<T>) -> Self {
        match result {
            Ok(_) | Err(Error::InactiveUser | Error::EmailNotVerified) => AttemptOutcome::Proven,
            Err(Error::InvalidCredentials) => AttemptOutcome::Failed,
            Err(Error::Validation { code, .. })
                if matches!(
                    *code,
                    "WRONG_PASSWORD" | "INVALID_MFA_CODE" | "INVALID_PASSKEY"
                ) =>
            {
                AttemptOutcome::Failed
            }
            Err(_) => AttemptOutcome::Unproven,
        }
    }
}

impl AuthManager {
    fn budget(&self, rule: RateRule) -> Limit {
        let config = &self.inner.config.rate_limits;
        match rule {
            RateRule::SignInPerIp => config.sign_in_per_ip,
            RateRule::SignUpPerIp => config.sign_up_per_ip,
            RateRule::EmailPerIp => config.email_per_ip,
            RateRule::EmailPerAddress => config.email_per_address,
            RateRule::TokenPerIp => config.token_per_ip,
        }
    }

    /// Counts one hit of `rule` for the canonical `subject`; the wait in
    /// seconds when the window's budget is passed.
    async fn hit(&self, rule: RateRule, subject: &str) -> Result<Option<u64>> {
        let limit = self.budget(rule);
        let now = self.now();
        let length = secs(limit.window_secs);
        let start = window_start(now, length);
        let hit = self
            .inner
            .store
            .hit_counter(&key(rule.name(), subject), start, start + length, now)
            .await?;
        Ok((hit.count > limit.max).then(|| seconds_until(now, start + length)))
    }

    /// Counts one request of `client` against the per-client `rule` (the
    /// limits table); a client without a known IP
    /// is not counted. Does nothing when rate limits are off. Flows call it
    /// themselves; a provider's own route (e.g. OAuth's start) calls it for
    /// what only it knows.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] (429, with the seconds to wait) once the
    /// window's budget is passed; emits `rate_limited`.
    /// [`Error::Unavailable`] (503).
    pub async fn rate_limit(&self, rule: RateRule, client: &ClientInfo) -> Result<()> {
        if !self.inner.config.rate_limits.enabled {
            return Ok(());
        }
        // The per-recipient budget answers differently (see `mail_budget`).
        if rule == RateRule::EmailPerAddress {
            return Ok(());
        }
        let Some(ip) = client.ip.as_deref() else {
            return Ok(());
        };
        match self.hit(rule, ip).await? {
            Some(wait) => Err(self.limited(rule.name(), ip, wait).await),
            None => Ok(()),
        }
    }

    /// Counts one mail to `recipient` (a normalised address) against its
    /// per-recipient budget (`email_per_address`) and answers whether the
    /// mail may go. Over the budget a flow answers as usual and sends
    /// nothing new (links already sent stay valid), so requests for someone
    /// else's address never lock its owner out; emits `rate_limited`.
    /// Always `true` when rate limits are off.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] (503).
    pub async fn mail_budget(&self, recipient: &str) -> Result<bool> {
        if !self.inner.config.rate_limits.enabled {
            return Ok(true);
        }
        let rule = RateRule::EmailPerAddress;
        let digest = email_digest(recipient);
        match self.hit(rule, &digest).await? {
            Some(wait) => {
                // Only the digest: the event must not say which address.
                self.limited(rule.name(), &digest, wait).await;
                Ok(false)
            }
            None => Ok(true),
        }
    }

    /// Reserves one attempt of the account with the normalised `email`
    /// before its password or code is checked: refused while the account's
    /// progressive delay runs; while every free slot is held by attempts in
    /// flight it waits (up to 10 s) for one to settle. `None` when rate
    /// limits are off. Settle the slot with
    /// [`settle_attempt`](Self::settle_attempt).
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] (429, with the seconds to wait), emitting
    /// `rate_limited`; [`Error::Unavailable`] (503).
    pub(crate) async fn reserve_attempt(&self, email: &str) -> Result<Option<AttemptSlot>> {
        if !self.inner.config.rate_limits.enabled {
            return Ok(None);
        }
        self.reserve_slot(email).await.map(Some)
    }

    /// Reserves one attempt of the account with the normalised `email`
    /// before a second factor is checked, as
    /// [`reserve_attempt`](Self::reserve_attempt) but **also with rate
    /// limits off**: a second factor's code space is small (10^6 TOTP
    /// codes), and every new challenge bought with the password would
    /// otherwise bring fresh guesses. The delay still follows
    /// `failed_sign_in_free` and `failed_sign_in_max_delay_secs`.
    ///
    /// # Errors
    ///
    /// As [`reserve_attempt`](Self::reserve_attempt).
    pub(crate) async fn reserve_second_factor_attempt(&self, email: &str) -> Result<AttemptSlot> {
        self.reserve_slot(email).await
    }

    async fn reserve_slot(&self, email: &str) -> Result<AttemptSlot> {
        let config = &self.inner.config.rate_limits;
        let length = secs(config.failed_sign_in_window_secs);
        let key = key(FAILED_SIGN_IN, &email_digest(email));
        let waited_since = std::time::Instant::now();
        let lease = rand::random::<u64>();
        loop {
            let now = self.now();
            let start = window_start(now, length);
            match self
                .inner
                .store
                .reserve_counter(&key, start, start + length, now, self.backoff(), lease)
                .await?
            {
                Reservation::Reserved { .. } => {
                    return Ok(AttemptSlot {
                        manager: self.clone(),
                        key,
                        window_start: start,
                        expires_at: start + length,
                        lease,
                        settled: false,
                    })
                }
                Reservation::Refused { retry_at } => {
                    return Err(self
                        .limited(FAILED_SIGN_IN, email, seconds_until(now, retry_at))
                        .await)
                }
                _ if waited_since.elapsed() >= BUSY_WAIT => {
                    return Err(self.limited(FAILED_SIGN_IN, email, 1).await)
                }
                _ => tokio::time::sleep(BUSY_POLL).await,
            }
        }
    }

    /// Settles a reserved attempt: a proof clears the account's failures, a
    /// failure is counted (and starts the delay once the free ones are
    /// used), anything else gives the slot back.
    pub(crate) async fn settle_attempt(
        &self,
        slot: Option<AttemptSlot>,
        outcome: AttemptOutcome,
    ) -> Result<()> {
        let Some(mut slot) = slot else {
            return Ok(());
        };
        slot.settled = true;
        let store = &self.inner.store;
        match outcome {
            AttemptOutcome::Proven => store.reset_counter(&slot.key).await?,
            AttemptOutcome::Failed | AttemptOutcome::Unproven => {
                store
                    .settle_counter(
                        &slot.key,
                        slot.window_start,
                        slot.expires_at,
                        self.now(),
                        self.backoff(),
                        outcome == AttemptOutcome::Failed,
                        slot.lease,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    fn backoff(&self) -> Backoff {
        let config = &self.inner.config.rate_limits;
        Backoff::new(
            config.failed_sign_in_free,
            secs(config.failed_sign_in_max_delay_secs),
        )
    }

    async fn limited(&self, rule: &'static str, subject: &str, retry_after_secs: u64) -> Error {
        tracing::warn!(rule, subject, retry_after_secs, "rate limited");
        self.emit(Event::RateLimited {
            rule: rule.to_owned(),
            subject: subject.to_owned(),
            retry_after_secs,
        })
        .await;
        Error::RateLimited { retry_after_secs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_and_waits_round_up() {
        let now = DateTime::from_timestamp_millis(125_500).unwrap_or_default();
        assert_eq!(
            window_start(now, Duration::seconds(60)).timestamp_millis(),
            120_000
        );
        let later = DateTime::from_timestamp_millis(126_001).unwrap_or_default();
        assert_eq!(seconds_until(now, later), 1);
        assert_eq!(seconds_until(later, now), 1);
    }

    #[test]
    fn email_keys_have_a_fixed_size() {
        let long = format!("{}@example.com", "a".repeat(240));
        assert_eq!(email_digest(&long).len(), 64);
        assert_ne!(email_digest("a@example.com"), email_digest("b@example.com"));
    }

    #[test]
    fn backoff_doubles_after_the_free_budget() {
        let backoff = Backoff::new(5, Duration::seconds(60));
        assert_eq!(backoff.delay_after(4), Duration::zero());
        assert_eq!(backoff.delay_after(5), Duration::seconds(1));
        assert_eq!(backoff.delay_after(6), Duration::seconds(2));
        assert_eq!(backoff.delay_after(40), Duration::seconds(60));
    }
}

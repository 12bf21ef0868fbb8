//! Rate limits: fixed-window counters in the store, shared by every node.

use chrono::{DateTime, Duration, Utc};

use super::AuthManager;
use crate::{
    config::Limit,
    error::{Error, Result},
    hooks::Event,
};

/// Which limit a request counts against (see
/// [`RateLimitConfig`](crate::RateLimitConfig)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateRule {
    /// Sign-in attempts per client IP (every provider).
    SignInPerIp,
    /// Registrations per client IP.
    SignUpPerIp,
    /// Requests that send an email, per client IP.
    EmailPerIp,
    /// Requests that send an email, per target address.
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

impl AuthManager {
    /// Counts one request against `rule` for `subject` (an IP, an email, a
    /// user id). Does nothing when rate limits are off.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] (429, with the seconds to wait) once the
    /// window's limit is passed; emits `rate_limited`. [`Error::Unavailable`]
    /// (503).
    pub async fn rate_limit(&self, rule: RateRule, subject: &str) -> Result<()> {
        let config = &self.inner.config.rate_limits;
        if !config.enabled {
            return Ok(());
        }
        let limit: Limit = match rule {
            RateRule::SignInPerIp => config.sign_in_per_ip,
            RateRule::SignUpPerIp => config.sign_up_per_ip,
            RateRule::EmailPerIp => config.email_per_ip,
            RateRule::EmailPerAddress => config.email_per_address,
            RateRule::TokenPerIp => config.token_per_ip,
        };
        let now = self.now();
        let length = secs(limit.window_secs);
        let start = window_start(now, length);
        let key = format!("{}:{subject}", rule.name());
        let hit = self
            .inner
            .store
            .hit_counter(&key, start, start + length, now)
            .await?;
        if hit.count > limit.max {
            return Err(self
                .limited(rule.name(), subject, seconds_until(now, start + length))
                .await);
        }
        Ok(())
    }

    /// Refuses a sign-in for `email` while its progressive delay runs: after
    /// `failed_sign_in_free` failures in the window, the next attempt must
    /// wait 2^(failures − free) seconds (capped) after the last failure.
    /// Returns whether the window holds failures (only then does a success
    /// need to clear them).
    pub(crate) async fn check_sign_in_delay(&self, email: &str) -> Result<bool> {
        let config = &self.inner.config.rate_limits;
        if !config.enabled {
            return Ok(false);
        }
        let now = self.now();
        let start = window_start(now, secs(config.failed_sign_in_window_secs));
        let Some((failures, last)) = self
            .inner
            .store
            .read_counter(&failure_key(email), start)
            .await?
        else {
            return Ok(false);
        };
        if failures < config.failed_sign_in_free {
            return Ok(true);
        }
        let exponent = (failures - config.failed_sign_in_free).min(20);
        let delay = (1_u64 << exponent).min(config.failed_sign_in_max_delay_secs);
        let until = last + secs(delay);
        if now < until {
            return Err(self
                .limited("failed_sign_in", email, seconds_until(now, until))
                .await);
        }
        Ok(true)
    }

    /// Records a failed sign-in for `email`.
    pub(crate) async fn record_sign_in_failure(&self, email: &str) -> Result<()> {
        let config = &self.inner.config.rate_limits;
        if !config.enabled {
            return Ok(());
        }
        let now = self.now();
        let length = secs(config.failed_sign_in_window_secs);
        let start = window_start(now, length);
        self.inner
            .store
            .hit_counter(&failure_key(email), start, start + length, now)
            .await?;
        Ok(())
    }

    /// Clears the failures of `email` after a successful sign-in.
    pub(crate) async fn clear_sign_in_failures(&self, email: &str) -> Result<()> {
        if self.inner.config.rate_limits.enabled {
            self.inner.store.reset_counter(&failure_key(email)).await?;
        }
        Ok(())
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

fn failure_key(email: &str) -> String {
    format!("failed_sign_in:{}", email.trim().to_lowercase())
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
}

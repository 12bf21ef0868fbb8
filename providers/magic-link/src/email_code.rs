//! The email code: six mailed digits, a few guesses.

use std::time::Duration;

use async_trait::async_trait;
use portcullis::{
    normalize_email, Action, AuthManager, ClientInfo, Error, Identity, Message, OneTimeToken,
    Proof, Provider, ProviderCx, ProviderInfo, ProviderRequest, RateRule, Result, TokenHash,
};
use rand::{rngs::OsRng, Rng};
use serde::Deserialize;

use crate::{chrono_ttl, clamp_ttl, emit_requested, identity_for, recipient, require_provider};

/// Id of the email-code provider.
pub const EMAIL_CODE_ID: &str = "email-code";

/// The event emitted when a code is mailed.
pub const EMAIL_CODE_REQUESTED_EVENT: &str = "email_code_requested";

/// Purpose of the stored one-time tokens.
const PURPOSE: &str = "email_code";

/// Digits in a code.
const CODE_LEN: usize = 6;

/// Default lifetime of a code.
const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);

/// Default number of guesses a code survives.
const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Signs in with a 6-digit code mailed to the address.
///
/// [`request_code`](Self::request_code) mails a uniformly random code, valid
/// for [`ttl`](Self::ttl) (10 minutes by default). One code per address is
/// live: a new request replaces the previous code. The store keeps, under a
/// key derived from the address, only the SHA-256 of address and code.
///
/// `authenticate` takes `{"email": "…", "code": "123456"}`. Each guess is
/// counted atomically *before* it is checked, so however many arrive at
/// once, at most [`max_attempts`](Self::max_attempts) (5 by default) are
/// ever compared. A wrong code is [`Error::InvalidCredentials`] (401); the
/// last allowed wrong guess deletes the code. No live code (none requested,
/// expired, used, or dead after too many guesses) is [`Error::TokenGone`]
/// (410): request a new one. A right code works once and yields the
/// identity of the address (see the [crate docs](crate)).
#[derive(Debug, Clone)]
pub struct EmailCodeProvider {
    ttl: Duration,
    max_attempts: u32,
}

impl Default for EmailCodeProvider {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyInput {
    email: String,
    code: String,
}

impl EmailCodeProvider {
    /// The provider: codes valid 10 minutes, 5 guesses.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a code stays valid (whole seconds, between one second and
    /// 30 days; values outside are clamped).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = clamp_ttl(ttl);
        self
    }

    /// How many guesses a code survives (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The configured lifetime of a code.
    pub fn code_ttl(&self) -> Duration {
        self.ttl
    }

    /// The configured number of guesses per code.
    pub fn attempts_allowed(&self) -> u32 {
        self.max_attempts
    }

    /// Requests a code for `email`, replacing any earlier code.
    ///
    /// Checks the input and returns at once; whether the address belongs to
    /// a user, storing the code and mailing it happen in the background
    /// (see [`AuthManager::wait_for_deliveries`]), so the outcome and its
    /// timing are the same for every address. An inactive user, or an
    /// unknown address when provider sign-up is disabled, gets no mail.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (422) for a malformed email,
    /// [`Error::NotFound`] (404) when this provider is not registered with
    /// `manager`, [`Error::RateLimited`] (429) when `client` passed its
    /// `email_per_ip` budget, [`Error::EmailNotConfigured`] (503) without
    /// an email sender, [`Error::Vetoed`] when a before-hook refuses
    /// [`Action::RequestSignInMail`]. Over the address's `email_per_address` budget the
    /// answer is the same and nothing new is sent.
    pub async fn request_code(
        &self,
        manager: &AuthManager,
        email: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        require_provider(manager, EMAIL_CODE_ID)?;
        let email = normalize_email(email)?;
        let cx = manager.provider_cx();
        if !cx.can_send_email() {
            return Err(Error::EmailNotConfigured);
        }
        manager.rate_limit(RateRule::EmailPerIp, client).await?;
        cx.ask(Action::RequestSignInMail {
            provider: EMAIL_CODE_ID.into(),
            email: email.clone(),
        })
        .await?;
        let ttl = self.ttl;
        let manager = manager.clone();
        cx.in_background(async move {
            if let Err(err) = issue(&manager, ttl, &email).await {
                tracing::error!(error = %err, "email code not issued");
            }
        });
        Ok(())
    }
}

/// The store key of the code of `email` (normalised): deterministic, so
/// the code is found from the address alone.
fn key(email: &str) -> TokenHash {
    TokenHash::of(&format!("email-code:{email}"))
}

/// What the store keeps of `code`: bound to the address, so a code stored
/// for one address never matches for another.
fn code_hash(email: &str, code: &str) -> TokenHash {
    TokenHash::of(&format!("{email}:{code}"))
}

/// Six uniformly random digits from the OS random source.
fn generate_code() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000_u32))
}

/// The code as typed, without surrounding ASCII spaces, if it is six
/// digits (the spec's pattern says the same).
fn parse_code(code: &str) -> Result<&str> {
    let code = code.trim_matches(|c: char| c.is_ascii_whitespace());
    if code.len() == CODE_LEN && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(Error::validation(
            "code",
            "INVALID_CODE",
            "the code is the 6 digits from the email",
        ))
    }
}

/// Stores a new code for `email` (replacing the earlier one) and mails it,
/// when the address may sign in.
async fn issue(manager: &AuthManager, ttl: Duration, email: &str) -> Result<()> {
    // Over the address's mail budget nothing new is sent, and the live
    // link or code stays valid: nobody locks the owner out.
    if !manager.mail_budget(email).await? {
        return Ok(());
    }
    let cx = manager.provider_cx();
    let Some(recipient) = recipient(&cx, email).await? else {
        return Ok(());
    };
    let code = generate_code();
    let record = OneTimeToken::new(key(email), PURPOSE, cx.now(), chrono_ttl(ttl))
        .for_email(email)
        .with_data(serde_json::json!({ "code_hash": code_hash(email, &code).as_str() }));
    // Deletes the previous code, then inserts. `false`: a concurrent
    // request stored its code in between; that one is live and mailed,
    // this one would not work, so it is not mailed.
    if cx.store_token(&record, true).await? {
        cx.send(
            &recipient.to,
            recipient.name.as_deref(),
            Message::EmailCode {
                code,
                expires_in_secs: ttl.as_secs(),
            },
        );
        emit_requested(
            &cx,
            EMAIL_CODE_ID,
            EMAIL_CODE_REQUESTED_EVENT,
            email,
            recipient,
        )
        .await;
    }
    Ok(())
}

/// Deletes the code that `counted` attempts were counted on. A live code
/// with fewer attempts is a newer one that replaced it meanwhile: it is put
/// back untouched.
async fn discard(cx: &ProviderCx<'_>, key: &TokenHash, counted: u32) -> Result<()> {
    if let Some(token) = cx.consume_token(key, PURPOSE).await? {
        if token.attempts < counted {
            cx.store_token(&token, false).await?;
        }
    }
    Ok(())
}

#[async_trait]
impl Provider for EmailCodeProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo::new(EMAIL_CODE_ID, "passwordless").signs_in_by_email()
    }

    async fn authenticate(
        &self,
        cx: &ProviderCx<'_>,
        request: ProviderRequest,
    ) -> Result<Identity> {
        let input: VerifyInput = request.body_as()?;
        self.verify(cx, &input.email, &input.code).await
    }
}

/// A typed code as the route read it, for [`AuthManager::sign_in_with`].
pub(crate) struct CodeProof<'a> {
    pub(crate) provider: &'a EmailCodeProvider,
    pub(crate) email: String,
    pub(crate) code: String,
}

#[async_trait]
impl Proof for CodeProof<'_> {
    fn email_hint(&self) -> Option<String> {
        Some(self.email.clone())
    }

    async fn prove(&self, cx: &ProviderCx<'_>) -> Result<Identity> {
        self.provider.verify(cx, &self.email, &self.code).await
    }
}

impl EmailCodeProvider {
    /// Checks `code` for `email`: counts the guess, compares, consumes.
    async fn verify(&self, cx: &ProviderCx<'_>, email: &str, code: &str) -> Result<Identity> {
        let email = normalize_email(email)?;
        let code = parse_code(code)?;
        let key = key(&email);

        // Count first: concurrent guesses each get their own number, and
        // only the first `max_attempts` are ever compared.
        let attempt = cx
            .count_attempt(&key, PURPOSE)
            .await?
            .ok_or(Error::TokenGone)?;
        if attempt > self.max_attempts {
            discard(cx, &key, attempt).await?;
            return Err(Error::TokenGone);
        }
        let token = cx
            .find_token(&key, PURPOSE)
            .await?
            .ok_or(Error::TokenGone)?;
        if token.attempts < attempt {
            // A new request replaced the code this guess was counted on.
            return Err(Error::TokenGone);
        }
        let expected = token
            .data
            .get("code_hash")
            .and_then(|v| v.as_str())
            .map(TokenHash::from_hex)
            .ok_or(Error::TokenGone)?;
        if !code_hash(&email, code).matches(&expected) {
            if attempt >= self.max_attempts {
                discard(cx, &key, attempt).await?;
            }
            return Err(Error::InvalidCredentials);
        }
        let used = cx
            .consume_token(&key, PURPOSE)
            .await?
            .ok_or(Error::TokenGone)?;
        if used.data != token.data {
            // Replaced by a new request between the check and now: the
            // typed code is dead, the new one stays live.
            cx.store_token(&used, false).await?;
            return Err(Error::TokenGone);
        }
        Ok(identity_for(EMAIL_CODE_ID, &email))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let code = generate_code();
            assert_eq!(code.len(), 6);
            assert!(parse_code(&code).is_ok());
        }
    }

    #[test]
    fn only_six_digits_parse() {
        assert_eq!(parse_code(" 012345 ").ok(), Some("012345"));
        for bad in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "12 345"] {
            assert!(parse_code(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_hash_binds_the_code_to_the_address() {
        assert!(code_hash("a@example.com", "123456").matches(&code_hash("a@example.com", "123456")));
        assert!(
            !code_hash("a@example.com", "123456").matches(&code_hash("b@example.com", "123456"))
        );
        assert_ne!(key("a@example.com"), key("b@example.com"));
    }
}

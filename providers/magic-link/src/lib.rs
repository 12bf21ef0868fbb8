//! # portcullis-magic-link
//!
//! Passwordless sign-in for [Portcullis](portcullis), by proof of control of
//! an email address:
//!
//! - [`MagicLinkProvider`] (id `magic-link`): a mailed link
//!   `PUBLIC_URL/auth/magic-link/verify?token=…` carrying a 256-bit,
//!   single-use token (stored only as its SHA-256, valid 15 minutes by
//!   default);
//! - [`EmailCodeProvider`] (id `email-code`): a mailed 6-digit code, bound to
//!   the address, stored hashed, valid 10 minutes by default, dead after 5
//!   wrong guesses; a new request replaces the previous code.
//!
//! [`MagicLinkApi`] adds the HTTP routes of both: `POST /auth/magic-link`,
//! `GET`/`POST /auth/magic-link/verify`, `POST /auth/email-code` and
//! `POST /auth/email-code/verify`. Every sign-in goes through
//! [`AuthManager::sign_in`], so hooks, `is_active` and
//! `require_verified_email` apply as for any provider.
//!
//! Uses only the public API of `portcullis`.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use portcullis::{api, AuthConfig, AuthManager};
//! use portcullis_magic_link::{EmailCodeProvider, MagicLinkApi, MagicLinkProvider};
//!
//! # fn build(config: AuthConfig) -> portcullis::Result<()> {
//! // Customised providers, given once: the API serves the ones registered.
//! let manager = AuthManager::builder(config)
//!     .provider(MagicLinkProvider::new().ttl(Duration::from_secs(10 * 60)))
//!     .provider(EmailCodeProvider::new().max_attempts(3))
//!     .build()?;
//! let passwordless = MagicLinkApi::new(&manager);
//! // Mount next to your other provider APIs, e.g. `(CredentialsApi::new(&manager), passwordless)`.
//! let app = api::routes(&manager, passwordless);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! The same flows work from Rust without HTTP:
//! [`MagicLinkProvider::request_link`] and [`EmailCodeProvider::request_code`]
//! mail the proof (emitting `magic_link_requested` / `email_code_requested`
//! when a mail goes out), and `manager.sign_in("magic-link", ProviderRequest::new(json!({"token": …})))`
//! or `manager.sign_in("email-code", ProviderRequest::new(json!({"email": …, "code": …})))`
//! signs in.
//!
//! ## Who is signed in
//!
//! Both providers prove the address, nothing else: they declare the
//! [`signs_in_by_email`](portcullis::Capabilities::signs_in_by_email)
//! capability, the identity is the address itself and no linked account is
//! recorded: after an email change, the new address signs in to the
//! account. Which user the address signs into is the manager's one link
//! rule (the same for every provider):
//!
//! | The address belongs to… | The sign-in… |
//! |---|---|
//! | a user whose email is verified | signs that user in |
//! | a user whose email is **not** verified | fails with 409 `ACCOUNT_EXISTS` |
//! | nobody | creates a user with `email_verified = true` and no password (who can later `POST /auth/account/set-password`), or fails with 403 `SIGN_UP_DISABLED` when `accounts.allow_provider_sign_up` is off |
//!
//! The 409 blocks account pre-hijacking: someone registered the address
//! with a password without ever proving they own it, and still knows that
//! password. Signing the owner in would hand the attacker a foothold in the
//! owner's account; the owner resets the password with `forgot-password`
//! instead (which proves the address and removes the attacker's password).
//!
//! ## Security notes
//!
//! - The request endpoints answer the same 202 for every address: whether
//!   it belongs to a user, whether a mail goes out (none for an unknown
//!   address when sign-up is disabled, none for an inactive user) and how
//!   long the store and SMTP take all happen in the background.
//! - A magic link is a bearer credential: whoever opens it signs in, in the
//!   browser that opens it. Mail scanners that open links consume them;
//!   such users can use the email code.
//! - `redirect_to` must be the configured front-end URL or one of
//!   `redirects.allowed` (exact match), checked when the link is requested
//!   and again when it is opened: no open redirect.
//! - Requests for a link or code count against the manager's limits table:
//!   the client's `rate_limits.email_per_ip` (429), and the address's
//!   `email_per_address` budget, shared with every mail the core sends (a
//!   link and a code to the same address draw on the same budget). Over the
//!   address's budget the answer is the same 202 and nothing new is sent,
//!   so requests for someone else's address never lock its owner out.
//!   Link uses count against `token_per_ip`; every sign-in also gets the
//!   manager's per-IP limit and, for codes, the account's failure slots,
//!   reserved before the code is checked (429 with `Retry-After`).
//! - A code has 20 bits: it is protected by its 5-guess limit and its short
//!   life (guesses are counted atomically before they are checked, so
//!   concurrent guesses cannot exceed the limit), not by its hash. The
//!   stored SHA-256 only keeps it out of plain sight.

mod api;
mod email_code;
mod magic_link;

use std::time::Duration;

use portcullis::{AuthManager, Error, Identity, ProviderCx, ProviderEvent, Result, UserId};

pub use api::{EmailCodeRequest, EmailCodeVerifyRequest, MagicLinkApi, MagicLinkRequest};
pub use email_code::{EmailCodeProvider, EMAIL_CODE_ID, EMAIL_CODE_REQUESTED_EVENT};
pub use magic_link::{MagicLinkProvider, MAGIC_LINK_ID, MAGIC_LINK_REQUESTED_EVENT};

/// The identity a proven `email` (normalised) stands for: the address
/// itself, verified, never linked. Which user it signs into is the
/// manager's link rule (see the crate docs for the three cases).
fn identity_for(provider: &str, email: &str) -> Identity {
    Identity::new(provider, email)
        .with_email(email, true)
        .without_link()
}

/// Whom a request for `email` (normalised) mails: an active user (with
/// their id), or the bare address when provider sign-up may create its
/// user; `None` (no mail) for an inactive user, or an unknown address when
/// sign-up is disabled.
async fn recipient(cx: &ProviderCx<'_>, email: &str) -> Result<Option<Recipient>> {
    Ok(match cx.find_user_by_email(email).await? {
        Some(user) if user.is_active => Some(Recipient {
            to: user.email,
            name: user.name,
            user_id: Some(user.id),
        }),
        Some(_) => None,
        None if cx.sign_up_allowed() => Some(Recipient {
            to: email.to_owned(),
            name: None,
            user_id: None,
        }),
        None => None,
    })
}

/// Where a link or code goes.
struct Recipient {
    to: String,
    name: Option<String>,
    user_id: Option<UserId>,
}

/// Emits the provider's `event` for a link or code mailed to `email`.
async fn emit_requested(
    cx: &ProviderCx<'_>,
    provider: &str,
    event: &'static str,
    email: &str,
    recipient: Recipient,
) {
    cx.emit(
        ProviderEvent::new(provider, event)
            .with_user(recipient.user_id)
            .with_email(email),
    )
    .await;
}

/// Fails with 404 when `id` is not a provider of `manager`: a link or code
/// it could not verify is not worth mailing.
fn require_provider(manager: &AuthManager, id: &str) -> Result<()> {
    if manager.providers().iter().any(|p| p.id == id) {
        Ok(())
    } else {
        Err(Error::NotFound("provider"))
    }
}

/// Longest lifetime a link or code may be given.
const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// `ttl` kept between one second and [`MAX_TTL`], whole seconds.
fn clamp_ttl(ttl: Duration) -> Duration {
    Duration::from_secs(ttl.as_secs().clamp(1, MAX_TTL.as_secs()))
}

/// A (clamped) lifetime as chrono wants it.
fn chrono_ttl(ttl: Duration) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(1))
}

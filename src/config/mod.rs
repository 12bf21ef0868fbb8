//! Configuration: one [`AuthConfig`] with nested sections.
//!
//! Every section has safe defaults and deserializes from any serde format with
//! missing fields filled from the defaults. The builder validates the whole
//! configuration once at start ([`AuthManager::builder`](crate::AuthManager::builder)).
//! [`AuthConfig::from_env`] builds one from `PORTCULLIS_*` environment
//! variables ([`env`]).

pub mod env;

use serde::Deserialize;

use crate::token::Secret;

/// The whole configuration of an [`AuthManager`](crate::AuthManager).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthConfig {
    /// Public base URL of the API (e.g. `https://api.example.com`), used for
    /// links in emails and as the default allowed origin for CSRF checks.
    pub public_url: Option<String>,
    /// Access tokens (JWT).
    pub jwt: JwtConfig,
    /// Refresh tokens and sessions.
    pub refresh: RefreshConfig,
    /// Password hashing and policy.
    pub password: PasswordConfig,
    /// How tokens travel: bearer header, cookies or both.
    pub transport: TransportConfig,
    /// Sign-up and sign-in rules.
    pub accounts: AccountsConfig,
    /// Emails and the one-time links they carry.
    pub email: EmailConfig,
    /// Where browsers may be sent after a sign-in (magic link, OAuth).
    pub redirects: RedirectConfig,
    /// Abuse limits, counted in the store so every node shares them.
    pub rate_limits: RateLimitConfig,
    /// HTTP limits.
    pub http: HttpConfig,
    /// Second factors (TOTP, recovery codes).
    pub mfa: MfaConfig,
    /// Roles seeded from config: read-only at run time, the same on every
    /// node. Superusers create more at run time (`POST /auth/roles`).
    pub roles: Vec<RoleConfig>,
}

/// A role defined in config ([`AuthConfig::roles`]).
///
/// ```
/// use portcullis::{AuthConfig, RoleConfig};
///
/// let mut config = AuthConfig::default();
/// config.roles.push(RoleConfig::new("editor", ["notes:read", "notes:write"]));
/// config.roles.push(RoleConfig::new("billing-admin", ["billing:*"]));
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RoleConfig {
    /// Unique name ([`check_role_name`](crate::authz::check_role_name)).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// What it grants ([`Permission`](crate::authz::Permission) names and
    /// patterns).
    pub permissions: Vec<String>,
}

impl RoleConfig {
    /// A role granting `permissions`.
    pub fn new<P: Into<String>>(
        name: impl Into<String>,
        permissions: impl IntoIterator<Item = P>,
    ) -> Self {
        Self {
            name: name.into(),
            description: None,
            permissions: permissions.into_iter().map(Into::into).collect(),
        }
    }
}

/// Access-token settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct JwtConfig {
    /// HS256 signing secret; at least 32 bytes. Required unless
    /// [`keys`](Self::keys) is set; with `keys` set it only verifies
    /// (HS256 tokens issued before a switch to asymmetric keys stay valid
    /// until they expire), and signs nothing.
    pub secret: Option<Secret>,
    /// Asymmetric signing keys (RS256 or EdDSA), newest first: the first
    /// signs, every key verifies (tokens carry the key's `kid`), and all of
    /// them are published at `GET /.well-known/jwks.json` so other services
    /// verify access tokens without calling this one. Rotate by putting a
    /// new key first and keeping the old one (its public key is enough)
    /// until the longest access-token lifetime has passed. Empty (the
    /// default): HS256 with [`secret`](Self::secret).
    pub keys: Vec<JwtKeyConfig>,
    /// `iss` claim written and required.
    pub issuer: String,
    /// `aud` claim written and required.
    pub audience: String,
    /// Access-token lifetime in seconds (default 1800 = 30 minutes).
    pub access_ttl_secs: u64,
    /// Clock skew tolerated when checking `exp`, in seconds (default 0).
    pub leeway_secs: u64,
    /// How many verified access tokens to remember, so a reused token skips
    /// signature and JSON work (default 4096; 0 turns it off). `exp`, the
    /// session and `token_version` are checked on every request regardless.
    pub verified_cache_size: usize,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            secret: None,
            keys: Vec::new(),
            issuer: "portcullis".into(),
            audience: "portcullis".into(),
            access_ttl_secs: 30 * 60,
            leeway_secs: 0,
            verified_cache_size: 4096,
        }
    }
}

/// An asymmetric access-token key: exactly one of a private key (the key
/// can sign) or a public key (verify only, e.g. a retired key during a
/// rotation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JwtKeyConfig {
    /// Key id, written as the token header's `kid` and published in the
    /// JWKS. Default: the key's RFC 7638 thumbprint (SHA-256, base64url),
    /// so every node loading the same key agrees on it.
    #[serde(default)]
    pub kid: Option<String>,
    /// The signature algorithm.
    pub algorithm: JwtAlgorithm,
    /// PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) for both algorithms,
    /// or PKCS#1 (`BEGIN RSA PRIVATE KEY`) for RS256. RSA keys need at
    /// least 2048 bits.
    #[serde(default)]
    pub private_key_pem: Option<Secret>,
    /// PEM public key: SPKI (`BEGIN PUBLIC KEY`), or PKCS#1
    /// (`BEGIN RSA PUBLIC KEY`) for RS256.
    #[serde(default)]
    pub public_key_pem: Option<String>,
}

impl JwtKeyConfig {
    /// A signing key from a PEM private key, with the default `kid`.
    pub fn private(algorithm: JwtAlgorithm, pem: impl Into<String>) -> Self {
        Self {
            kid: None,
            algorithm,
            private_key_pem: Some(Secret::new(pem)),
            public_key_pem: None,
        }
    }

    /// A verify-only key from a PEM public key, with the default `kid`.
    pub fn public(algorithm: JwtAlgorithm, pem: impl Into<String>) -> Self {
        Self {
            kid: None,
            algorithm,
            private_key_pem: None,
            public_key_pem: Some(pem.into()),
        }
    }

    /// The same key with an explicit `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }
}

/// Asymmetric access-token signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA keys of 2048 bits or more): the
    /// most widely supported.
    RS256,
    /// Ed25519 signatures: small keys and tokens, fast signing.
    EdDSA,
}

/// Refresh-token and session settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RefreshConfig {
    /// Absolute lifetime of a session (refresh-token family), in seconds
    /// (default 30 days). Rotation never extends it.
    pub session_ttl_secs: u64,
    /// How long after a rotation the previous token may be presented again
    /// without being treated as theft, in seconds (default 0: any reuse
    /// revokes the whole family).
    pub reuse_grace_secs: u64,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 30 * 24 * 3600,
            reuse_grace_secs: 0,
        }
    }
}

/// Password hashing parameters and policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PasswordConfig {
    /// Argon2id memory cost in KiB (default 19456 = 19 MiB, OWASP).
    pub memory_kib: u32,
    /// Argon2id iterations (default 2, OWASP).
    pub iterations: u32,
    /// Argon2id lanes (default 1, OWASP).
    pub parallelism: u32,
    /// Minimum length in characters (default 8).
    pub min_chars: usize,
    /// Maximum length in bytes (default 1024); longer passwords are refused,
    /// never truncated.
    pub max_bytes: usize,
    /// Refuse passwords from the bundled common-password list (default true).
    pub refuse_common: bool,
    /// Hashes computed at once; 0 means one per CPU core (default 0).
    pub max_concurrent_hashes: usize,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            min_chars: 8,
            max_bytes: 1024,
            refuse_common: true,
            max_concurrent_hashes: 0,
        }
    }
}

/// How tokens travel between client and server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TransportConfig {
    /// Accept `Authorization: Bearer` access tokens (default true).
    pub bearer: bool,
    /// Set and accept HttpOnly cookies (default false).
    pub cookies: bool,
    /// Cookie-only mode (default false; needs `cookies`): no token ever
    /// appears in a response body or a redirect URL, so page scripts never
    /// see one; the HttpOnly cookies carry the session. Off, every sign-in
    /// and refresh also returns the pair as JSON (for bearer clients).
    pub cookie_only: bool,
    /// Cookie settings, used when `cookies` is on.
    pub cookie: CookieConfig,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            bearer: true,
            cookies: false,
            cookie_only: false,
            cookie: CookieConfig::default(),
        }
    }
}

/// Cookie transport settings. The cookie names are fixed
/// (`portcullis_access`, `portcullis_refresh`) so that the OpenAPI spec
/// names them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CookieConfig {
    /// Path the refresh cookie is scoped to (default `/auth/refresh`), so
    /// browsers send it to the refresh endpoint only.
    pub refresh_path: String,
    /// `Secure` flag (default true). Turn off only for local plain-http use.
    pub secure: bool,
    /// `Domain` attribute; host-only when unset.
    pub domain: Option<String>,
    /// Origins allowed to make cookie-authenticated state-changing requests
    /// (CSRF defence). When empty, the origin of `public_url` is allowed.
    pub allowed_origins: Vec<String>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            refresh_path: "/auth/refresh".into(),
            secure: true,
            domain: None,
            allowed_origins: Vec::new(),
        }
    }
}

/// Sign-up and sign-in rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AccountsConfig {
    /// Refuse sign-in (403 `EMAIL_NOT_VERIFIED`) until the email is verified.
    pub require_verified_email: bool,
    /// Let providers other than credentials create users on first sign-in.
    pub allow_provider_sign_up: bool,
    /// Let a provider create a user from an email it did not verify
    /// (default `false`: such a sign-in is refused with 403
    /// `PROVIDER_EMAIL_UNVERIFIED` and creates nothing). Turning it on lets
    /// anyone whose identity provider does not check addresses reserve an
    /// address they do not own ("pre-hijacking"); the identity is then
    /// linked as unverified and removed, with a notice to the owner, as
    /// soon as the owner proves the address (password reset, email
    /// verification, email change).
    pub allow_unverified_provider_sign_up: bool,
    /// Link a provider identity to an existing user with the same email when
    /// both the provider and the local user say the email is verified.
    pub link_verified_emails: bool,
    /// What deleting one's own account does. `false` (default): a soft
    /// delete — the user is deactivated (`is_active=false`), every session
    /// ends, and the record stays, so the email stays reserved and an admin
    /// can restore the account. `true`: the user, their linked accounts,
    /// sessions and one-time tokens are removed and the email is free again.
    pub hard_delete: bool,
    /// How recent the sign-in behind a session must be, in seconds, for
    /// `set-password`, and for an email change by a user without a password
    /// who sends no mailed code (default 900 = 15 minutes; 0 turns the
    /// check off). These flows add a credential or move the recovery
    /// address without asking for a password, so an old or stolen session
    /// must not be able to: the user signs in again (or confirms with a
    /// mailed code) first (403 `REAUTHENTICATION_REQUIRED`). Refreshing does
    /// not make a session recent; only a sign-in does.
    pub recent_sign_in_secs: u64,
    /// Enumeration-safe registration (default off): `POST /auth/register`
    /// answers the same 202 whether or not the address has an account; a
    /// new account is created and mailed its verification link, the owner
    /// of a taken address is mailed a notice instead of the caller getting
    /// 409 `EMAIL_TAKEN`. Both answers take the same path (hash, insert,
    /// background mail).
    pub enumeration_safe_registration: bool,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            require_verified_email: false,
            allow_provider_sign_up: true,
            allow_unverified_provider_sign_up: false,
            link_verified_emails: true,
            hard_delete: false,
            recent_sign_in_secs: 15 * 60,
            enumeration_safe_registration: false,
        }
    }
}

/// Emails and the one-time links they carry. Links are built from
/// `public_url`, never from a request's `Host` header.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EmailConfig {
    /// Product name used in subjects and bodies (default `Portcullis`).
    pub app_name: String,
    /// Mail a verification link when a user registers with a password
    /// (default true; needs an email sender).
    pub verify_on_register: bool,
    /// Lifetime of an email-verification link, in seconds (default 24 h).
    pub verify_email_ttl_secs: u64,
    /// Lifetime of a password-reset link, in seconds (default 1 h).
    pub reset_password_ttl_secs: u64,
    /// Lifetime of an email-change confirmation link, in seconds
    /// (default 30 minutes).
    pub change_email_ttl_secs: u64,
    /// Lifetime of an account-deletion confirmation code, in seconds
    /// (default 15 minutes).
    pub delete_account_ttl_secs: u64,
    /// Lifetime of an organization invitation, in seconds (default 7 days).
    pub invitation_ttl_secs: u64,
    /// The front-end page reset links open, with `?token=…` appended; it
    /// posts the token and the new password to `/auth/reset-password`.
    /// Unset (default): `public_url/auth/reset-password`, where `GET`
    /// serves a minimal built-in form.
    pub reset_password_url: Option<String>,
    /// The front-end page invitation links open, with `?token=…` appended;
    /// it signs the invitee in and posts the token to
    /// `POST /orgs/invitations/accept`. Unset (default):
    /// `public_url/orgs/invitations/accept`, the API route itself, which
    /// answers only `POST`: set this when invitees open the link in a
    /// browser.
    pub invitation_url: Option<String>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            app_name: "Portcullis".into(),
            verify_on_register: true,
            verify_email_ttl_secs: 24 * 3600,
            reset_password_ttl_secs: 3600,
            change_email_ttl_secs: 30 * 60,
            delete_account_ttl_secs: 15 * 60,
            invitation_ttl_secs: 7 * 86400,
            reset_password_url: None,
            invitation_url: None,
        }
    }
}

/// Where browsers may land after a sign-in that ends in a redirect (a
/// magic link opened in the browser, an OAuth callback). Targets are
/// compared exactly, never by prefix: no open redirect.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedirectConfig {
    /// The default landing page of the front-end.
    pub frontend_url: Option<String>,
    /// Other allowed targets a request may name (`redirect_to`).
    pub allowed: Vec<String>,
}

/// At most `max` hits per `window_secs` for one key (an IP, an email).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Limit {
    /// Hits allowed in a window.
    pub max: u32,
    /// Window length in seconds.
    pub window_secs: u64,
}

impl Limit {
    /// `max` hits per `window_secs`.
    pub const fn new(max: u32, window_secs: u64) -> Self {
        Self { max, window_secs }
    }
}

/// Rate limits. Counters live in the store (fixed windows), so every app
/// node behind a load balancer shares them. A limited request gets 429
/// `RATE_LIMITED` with `Retry-After`.
///
/// Per-account sign-in failures (wrong current passwords on change
/// password, change email and delete included) are answered with a
/// *progressive delay*, never a lock-out: after `failed_sign_in_free`
/// failures the next attempt must wait 1 s, then 2 s, 4 s … up to
/// `failed_sign_in_max_delay_secs`, so an attacker cannot lock the owner
/// out for long, and a success clears it. Each attempt reserves its slot
/// before the password or code is checked. Which flow counts against which
/// limit is one table, in `src/manager/limits.rs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Master switch (default true). Turn off only for load tests. The
    /// per-account delay on wrong second-factor answers stays on (with
    /// `failed_sign_in_free` and `failed_sign_in_max_delay_secs`): a
    /// 6-digit code must never be guessable without limit.
    pub enabled: bool,
    /// Proxy IPs whose `X-Forwarded-For` is believed; the client IP is the
    /// right-most address not in this list. Empty (default): the socket
    /// address, headers ignored.
    pub trusted_proxies: Vec<String>,
    /// Sign-in attempts per client IP, every provider (default 30/minute).
    pub sign_in_per_ip: Limit,
    /// Registrations per client IP (default 20/hour).
    pub sign_up_per_ip: Limit,
    /// Requests that send an email (reset, magic link, code, verification)
    /// per client IP (default 20/hour).
    pub email_per_ip: Limit,
    /// Mails per recipient address (default 5/hour). Over it a request
    /// gets its usual answer and nothing new is sent, so requests for
    /// someone else's address never lock its owner out.
    pub email_per_address: Limit,
    /// Uses of emailed tokens (verify, reset, confirm) per client IP
    /// (default 30/10 minutes).
    pub token_per_ip: Limit,
    /// Failed sign-ins per email before delays start (default 5).
    pub failed_sign_in_free: u32,
    /// Window in which failures count (default 15 minutes).
    pub failed_sign_in_window_secs: u64,
    /// Longest delay between attempts for one email (default 60 s).
    pub failed_sign_in_max_delay_secs: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            trusted_proxies: Vec::new(),
            sign_in_per_ip: Limit::new(30, 60),
            sign_up_per_ip: Limit::new(20, 3600),
            email_per_ip: Limit::new(20, 3600),
            email_per_address: Limit::new(5, 3600),
            token_per_ip: Limit::new(30, 600),
            failed_sign_in_free: 5,
            failed_sign_in_window_secs: 900,
            failed_sign_in_max_delay_secs: 60,
        }
    }
}

/// HTTP limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Largest accepted request body in bytes (default 64 KiB); larger → 413.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
        }
    }
}

/// One key that seals second-factor secrets at rest (AES-256-GCM).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SealingKeyConfig {
    /// The key's id, stored next to every secret it sealed.
    pub id: String,
    /// 32 random bytes in URL-safe base64
    /// ([`Sealer::generate_key`](crate::factor::Sealer::generate_key)).
    pub key: Secret,
}

impl SealingKeyConfig {
    /// The key `key` under `id`.
    pub fn new(id: impl Into<String>, key: impl Into<Secret>) -> Self {
        Self {
            id: id.into(),
            key: key.into(),
        }
    }
}

/// Second factors: TOTP authenticator apps and recovery codes. Without
/// sealing keys the factor routes answer 503 `MFA_NOT_CONFIGURED` and no
/// user can enrol.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MfaConfig {
    /// The keys that seal TOTP secrets, newest first: the first seals,
    /// every one opens, so a rotation prepends a new key and keeps the old
    /// ones until every secret was resealed.
    pub sealing_keys: Vec<SealingKeyConfig>,
    /// The issuer authenticator apps show (default: `email.app_name`).
    pub issuer: Option<String>,
    /// How long a sign-in's second step may take, in seconds (default 300).
    pub challenge_ttl_secs: u64,
    /// Wrong codes one challenge takes before it dies (default 5); the
    /// account's sign-in delay counts them too.
    pub challenge_max_attempts: u32,
    /// Who must have a second factor (default `off`): with `superusers`
    /// or `everyone`, a sign-in of such a user without one answers 403
    /// `MFA_SETUP_REQUIRED` with a setup challenge instead of tokens, and
    /// the sign-in finishes by enrolling TOTP. Needs `sealing_keys`.
    pub required: MfaRequirement,
    /// Passkeys (WebAuthn). Off until `rp_id` and `origins` are set; then
    /// users register passkeys, sign in with one alone, or answer a
    /// sign-in's challenge with one.
    pub passkeys: PasskeyConfig,
}

/// The WebAuthn relying party ([`MfaConfig::passkeys`]). A passkey is
/// bound to `rp_id`: changing it later orphans every registered passkey.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PasskeyConfig {
    /// The relying party id: the site's domain (`example.com`, or
    /// `localhost` in development). `None` (default): passkeys are off and
    /// their routes answer 503 `PASSKEYS_NOT_CONFIGURED`.
    pub rp_id: Option<String>,
    /// The origins the browser may run the ceremonies from
    /// (`https://app.example.com`); each must be `rp_id` or a subdomain of
    /// it. Empty: `base_url`.
    pub origins: Vec<String>,
    /// The name authenticators show (default: `email.app_name`).
    pub rp_name: Option<String>,
    /// How long a ceremony (options, then the authenticator's answer) may
    /// take, in seconds (default 300).
    pub ceremony_ttl_secs: u64,
}

impl Default for PasskeyConfig {
    fn default() -> Self {
        Self {
            rp_id: None,
            origins: Vec::new(),
            rp_name: None,
            ceremony_ttl_secs: 300,
        }
    }
}

/// Who must enrol a second factor ([`MfaConfig::required`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MfaRequirement {
    /// Nobody: second factors are the users' choice.
    #[default]
    Off,
    /// Superusers.
    Superusers,
    /// Every user.
    Everyone,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            sealing_keys: Vec::new(),
            issuer: None,
            challenge_ttl_secs: 300,
            challenge_max_attempts: 5,
            required: MfaRequirement::Off,
            passkeys: PasskeyConfig::default(),
        }
    }
}

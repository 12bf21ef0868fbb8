//! # portcullis-oauth
//!
//! OAuth 2.0 and OpenID Connect sign-in for [Portcullis](portcullis), on
//! the [`oauth2`] crate: the authorization-code flow with PKCE (S256),
//! `state` and, for OpenID Connect, `nonce`.
//!
//! - [`OAuthProvider`]: the GitHub and Google presets, or any OpenID Connect
//!   issuer found by discovery; each with its client id and secret, and
//!   overridable endpoints. It is a [`Provider`](portcullis::Provider):
//!   register it with the manager.
//! - [`OAuthApi`]: `GET /auth/oauth/{provider}/authorize` (redirect to the
//!   provider) and `GET /auth/oauth/{provider}/callback` (sign in, then
//!   redirect to the front-end, or the token pair as JSON).
//! - [`providers_from_env`]: providers from `PORTCULLIS_OAUTH_*` variables.
//!
//! Uses only the public API of `portcullis`.
//!
//! ```
//! use portcullis::{api, AuthConfig, AuthManager, Secret};
//! use portcullis_oauth::{OAuthApi, OAuthProvider};
//!
//! # fn main() -> portcullis::Result<()> {
//! let mut config = AuthConfig::default();
//! config.jwt.secret = Some(Secret::new("replace-me-with-32+-random-bytes!!"));
//! // Callbacks are public_url + /auth/oauth/{id}/callback.
//! config.public_url = Some("https://api.example.com".into());
//! config.redirects.frontend_url = Some("https://app.example.com/signed-in".into());
//!
//! let manager = AuthManager::builder(config)
//!     .provider(OAuthProvider::github("github-client-id", "github-client-secret"))
//!     .provider(OAuthProvider::google("google-client-id", "google-client-secret"))
//!     .provider(OAuthProvider::oidc("acme", "https://login.acme.test", "acme-client-id", "acme-secret"))
//!     .build()?;
//! // The routes serve every OAuth provider registered above. With other
//! // APIs, pass a tuple: (CredentialsApi::new(&manager), OAuthApi::new(&manager)?).
//! let app = api::routes(&manager, OAuthApi::new(&manager)?);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! ## Security
//!
//! | What | How |
//! |---|---|
//! | CSRF / login CSRF | `state`: 256 random bits, stored only as SHA-256 in the store, single use (atomic consume), 10 minutes, bound to the provider and to the browser that started the flow by the HttpOnly, `SameSite=Lax` cookie `portcullis_oauth` (its hash is compared in constant time) |
//! | Code interception | PKCE S256; the verifier never leaves the server |
//! | Mix-up | one callback URL per provider, state bound to the provider, RFC 9207 `iss` checked when sent (required when the issuer announces it), ID-token `iss` |
//! | ID token | signature from the issuer's JWKS (asymmetric algorithms only, as discovery announces; keys fetched again on an unknown `kid`), `iss`, `aud` (+ `azp`), `exp` / `nbf` on the manager's clock, `nonce` |
//! | Account pre-hijacking | an identity is linked to an existing user by email only when the provider and the local account both verified it; else 409 `ACCOUNT_EXISTS` |
//! | SSRF | the HTTP client never follows redirects; endpoints must be `https` (plain `http` only to loopback); bodies capped at 1 MiB; 10 s timeouts |
//! | Open redirect | the landing page is the configured front-end URL or an allowed redirect (exact match) |
//! | Provider trouble | `error=access_denied` → 422 `OAUTH_ACCESS_DENIED`; a rejected code → 422 `OAUTH_CODE_REJECTED`; an unreachable or failing provider → 503; never a 500 |

mod api;
mod env;
mod github;
mod http;
mod oidc;
mod provider;

pub use api::{AuthorizeResponse, OAuthApi, BINDING_COOKIE};
pub use env::{providers_from_env, providers_from_vars, PROVIDERS_VAR};
pub use provider::{OAuthProvider, STATE_PURPOSE, STATE_TTL_SECS};

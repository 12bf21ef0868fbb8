//! The two routes: `GET /auth/oauth/{provider}/authorize` and
//! `GET /auth/oauth/{provider}/callback`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use poem::{
    web::cookie::{Cookie, CookieJar, SameSite},
    Request,
};
use poem_openapi::{
    param::{Path, Query},
    ApiResponse, OpenApi,
};
use portcullis::{
    api::{
        browser_mfa_step, client_info, error_set, finish_browser_sign_in, ApiErrors, ApiTags,
        BrowserSignInResponse, ErrorSet,
    },
    AuthManager, Error, OpaqueToken, RateRule, Result,
};

use crate::provider::{Callback, CallbackProof, OAuthProvider, STATE_TTL_SECS};

/// Name of the cookie that binds a sign-in to the browser that started it:
/// 256 random bits, HttpOnly, `SameSite=Lax`, scoped to `/auth/oauth`.
pub const BINDING_COOKIE: &str = "portcullis_oauth";

/// What the authorize route can answer: unknown provider (404), a
/// `redirect_to` that is not allowed (422), too many sign-ins from this
/// client (429), store or provider down (503).
const AUTHORIZE_ERRORS: ErrorSet =
    error_set::NOT_FOUND | error_set::UNPROCESSABLE | error_set::TOO_MANY | error_set::UNAVAILABLE;

/// What the callback can answer: see [`OAuthApi`].
const CALLBACK_ERRORS: ErrorSet = error_set::UNAUTHORIZED
    | error_set::FORBIDDEN
    | error_set::NOT_FOUND
    | error_set::CONFLICT
    | error_set::GONE
    | error_set::UNPROCESSABLE
    | error_set::TOO_MANY
    | error_set::UNAVAILABLE;

/// Answer of `GET /auth/oauth/{provider}/authorize`.
#[derive(Debug, ApiResponse)]
pub enum AuthorizeResponse {
    /// Go to the provider to sign in. The `portcullis_oauth` cookie binds
    /// the sign-in to this browser.
    #[oai(status = 303)]
    SeeOther(
        /// The provider's authorization URL, with `state`, the PKCE S256
        /// challenge and, for OpenID Connect, a `nonce`.
        #[oai(header = "Location")]
        String,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// The OAuth routes, for every [`OAuthProvider`] registered with the
/// manager (given once, on the builder).
///
/// Callback errors, all in the JSON error shape: 404 unknown provider;
/// 403 `CSRF_REJECTED` when the browser did not start this sign-in (no or
/// another binding cookie); 410 `TOKEN_GONE` for an unknown, used or
/// expired state; 422 `OAUTH_STATE_MISMATCH` (state of another provider),
/// `OAUTH_ISSUER_MISMATCH` (RFC 9207 `iss`), `OAUTH_ACCESS_DENIED`,
/// `OAUTH_PROVIDER_ERROR`, `OAUTH_CODE_REJECTED`, `OAUTH_ID_TOKEN_INVALID`
/// (signature, `iss`, `aud`, `exp` or nonce), `OAUTH_CALLBACK_INVALID`,
/// `EMAIL_REQUIRED`; 409 `ACCOUNT_EXISTS` when the email belongs to a user
/// and is not verified on both sides; 403 for an inactive user, a veto or
/// disabled sign-up; 429 for too many sign-ins from the client; 503 when
/// the store or the provider is unreachable.
#[derive(Debug, Clone)]
pub struct OAuthApi {
    manager: AuthManager,
    providers: Arc<HashMap<String, OAuthProvider>>,
    cookie_path: String,
}

impl OAuthApi {
    /// The routes for every [`OAuthProvider`] registered with `manager`
    /// (`AuthManagerBuilder::provider`), the very values registered: one
    /// discovery cache and one configuration per provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without `public_url` (the base of the callback
    /// URLs), or for an invalid provider.
    pub fn new(manager: &AuthManager) -> Result<Self> {
        let public_url = manager.config().public_url.as_deref().ok_or_else(|| {
            Error::Config(
                "OAuth sign-in needs `public_url`: callbacks are `public_url/auth/oauth/{id}/callback`"
                    .into(),
            )
        })?;
        let mut by_id = HashMap::new();
        for provider in manager.registered_providers::<OAuthProvider>() {
            provider.validate()?;
            by_id.insert(provider.id().to_owned(), OAuthProvider::clone(&provider));
        }
        let base_path = url::Url::parse(public_url)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(Self {
            manager: manager.clone(),
            providers: Arc::new(by_id),
            cookie_path: format!("{base_path}/auth/oauth"),
        })
    }

    fn provider(&self, id: &str) -> Result<&OAuthProvider> {
        self.providers.get(id).ok_or(Error::NotFound("provider"))
    }

    fn binding_cookie(&self, value: &str, max_age: Duration) -> Cookie {
        let mut cookie = Cookie::new_with_str(BINDING_COOKIE, value);
        cookie.set_http_only(true);
        cookie.set_secure(self.manager.config().transport.cookie.secure);
        // Lax: sent on the provider's top-level redirect back to us.
        cookie.set_same_site(SameSite::Lax);
        cookie.set_path(&self.cookie_path);
        cookie.set_max_age(max_age);
        cookie
    }
}

/// A binding value we issued: 256 bits, URL-safe base64.
fn well_formed(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[OpenApi(tag = "ApiTags::Auth")]
impl OAuthApi {
    /// Start an OAuth sign-in
    ///
    /// Redirects the browser to the provider with a single-use `state`
    /// (10 minutes), a PKCE S256 challenge and, for OpenID Connect, a
    /// `nonce`, and sets the HttpOnly `portcullis_oauth` cookie that binds
    /// the sign-in to this browser. After the callback the browser lands on
    /// `redirect_to` (it must be the configured front-end URL or an allowed
    /// redirect), else the front-end URL.
    #[oai(
        path = "/auth/oauth/:provider/authorize",
        method = "get",
        operation_id = "oauthAuthorize"
    )]
    async fn authorize(
        &self,
        req: &Request,
        jar: &CookieJar,
        /// The provider id (see `GET /auth/providers`).
        provider: Path<String>,
        /// Where to land after signing in: the front-end URL or one of the
        /// allowed redirects (exact match).
        redirect_to: Query<Option<String>>,
    ) -> std::result::Result<AuthorizeResponse, ApiErrors<AUTHORIZE_ERRORS>> {
        let provider = self.provider(&provider.0)?;
        // Each start writes a pending sign-in: count it as a sign-in attempt.
        self.manager
            .rate_limit(RateRule::SignInPerIp, &client_info(req))
            .await?;
        let redirect_to = redirect_to.0;
        if let Some(target) = &redirect_to {
            self.manager.redirect_target(Some(target))?;
        }
        // One binding per browser: a second tab reuses it.
        let browser = jar
            .get(BINDING_COOKIE)
            .map(|c| c.value_str().to_owned())
            .filter(|v| well_formed(v))
            .unwrap_or_else(|| OpaqueToken::generate().expose().to_owned());
        let cx = self.manager.provider_cx();
        let url = provider.start(&cx, &browser, redirect_to).await?;
        jar.add(self.binding_cookie(&browser, Duration::from_secs(STATE_TTL_SECS.unsigned_abs())));
        Ok(AuthorizeResponse::SeeOther(url, "no-store".to_owned()))
    }

    /// OAuth callback
    ///
    /// Where the provider sends the browser back. Checks the state (single
    /// use, this provider, this browser), the `iss` parameter, exchanges the
    /// code with the PKCE verifier, verifies the ID token (OpenID Connect:
    /// signature from the issuer's JWKS, `iss`, `aud`, `exp`, nonce) or
    /// reads the profile (GitHub), then signs in: by linked account, else by
    /// email when both the provider and the local account vouch for it,
    /// else a new user. Ends with a redirect to the front-end (tokens in
    /// cookies, or in the URL fragment without cookie transport), or the
    /// token pair as JSON when no front-end URL is configured.
    #[oai(
        path = "/auth/oauth/:provider/callback",
        method = "get",
        operation_id = "oauthCallback"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn callback(
        &self,
        req: &Request,
        jar: &CookieJar,
        /// The provider id.
        provider: Path<String>,
        /// The authorization code.
        code: Query<Option<String>>,
        /// The state sent with the authorization request.
        state: Query<Option<String>>,
        /// The issuer of the response (RFC 9207), when the provider sends it.
        iss: Query<Option<String>>,
        /// The provider's error (e.g. `access_denied`), instead of a code.
        error: Query<Option<String>>,
        /// The provider's description of the error (ignored).
        error_description: Query<Option<String>>,
    ) -> std::result::Result<BrowserSignInResponse, ApiErrors<CALLBACK_ERRORS>> {
        let _ = error_description;
        let provider = self.provider(&provider.0)?;
        let browser = jar.get(BINDING_COOKIE).map(|c| c.value_str().to_owned());
        if browser.is_some() {
            jar.add(self.binding_cookie("", Duration::ZERO));
        }
        let cx = self.manager.provider_cx();
        let flow = match state.0.as_deref().filter(|s| !s.is_empty()) {
            Some(state) => Some(provider.take_flow(&cx, state, browser.as_deref()).await?),
            // Some providers drop the state from an error answer.
            None if error.0.is_some() => None,
            None => {
                return Err(Error::validation(
                    "state",
                    "OAUTH_CALLBACK_INVALID",
                    "the callback has no state",
                )
                .into())
            }
        };
        let target = self
            .manager
            .redirect_target(flow.as_ref().and_then(|f| f.redirect_to.as_deref()))?;
        let proof = CallbackProof {
            provider,
            callback: Callback {
                flow,
                code: code.0,
                iss: iss.0,
                error: error.0,
            },
        };
        match self
            .manager
            .sign_in_with(provider.id(), client_info(req), &proof)
            .await
        {
            Ok(sign_in) => Ok(finish_browser_sign_in(&self.manager, jar, &sign_in, target)),
            Err(err) => Ok(browser_mfa_step(err, target)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_binding_values_are_reused() {
        assert!(well_formed(OpaqueToken::generate().expose()));
        assert!(!well_formed("short"));
        assert!(!well_formed(&"a".repeat(42)));
        assert!(!well_formed(&format!("{}=", "a".repeat(42))));
    }
}

//! [`OAuthProvider`]: configuration, the authorization-code flow with PKCE,
//! and the [`Provider`] implementation that turns a callback into an
//! [`Identity`].

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use jsonwebtoken::Algorithm;
use oauth2::{
    basic::{
        BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
        BasicTokenIntrospectionResponse, BasicTokenType,
    },
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use portcullis::{
    Error, Identity, OneTimeToken, OpaqueToken, Proof, Provider, ProviderCx, ProviderInfo,
    ProviderRequest, Result, Secret, TokenHash,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::{
    github,
    http::{self, unavailable, FetchError, ProviderFailure},
    oidc::{self, Expected, KeySet, Metadata},
};

/// Purpose of the one-time token that holds a pending authorization
/// (state, PKCE verifier, nonce, browser binding).
pub const STATE_PURPOSE: &str = "oauth_state";

/// How long a started sign-in may take to come back, in seconds.
pub const STATE_TTL_SECS: i64 = 600;

/// Longest display name kept from a provider (the core's limit).
const MAX_NAME_CHARS: usize = 200;

/// A JWKS is fetched again at most this often when a token names an
/// unknown key (rotation), and after this age in any case.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(10);
const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);

const GITHUB_AUTHORIZE: &str = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN: &str = "https://github.com/login/oauth/access_token";
const GITHUB_API: &str = "https://api.github.com";
const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// One OAuth 2.0 / OpenID Connect provider: a preset (GitHub, Google) or
/// any OIDC issuer found by discovery, with its client id and secret.
///
/// A cheap `Clone` (the discovery and JWKS caches are shared by clones):
/// register a clone with the manager (it is a [`Provider`]) and hand
/// another to [`OAuthApi`](crate::OAuthApi). The redirect (callback) URI
/// registered at the provider must be
/// `public_url + /auth/oauth/{id}/callback`.
///
/// ```
/// use portcullis_oauth::OAuthProvider;
///
/// let github = OAuthProvider::github("client-id", "client-secret");
/// let acme = OAuthProvider::oidc("acme", "https://login.acme.test", "client-id", "secret")
///     .with_scopes(["openid", "email", "profile", "groups"]);
/// assert_eq!(acme.id(), "acme");
/// # let _ = github;
/// ```
#[derive(Clone)]
pub struct OAuthProvider {
    config: Arc<Config>,
    state: Arc<State>,
}

#[derive(Clone)]
struct Config {
    id: String,
    kind: Kind,
    client_id: String,
    client_secret: Secret,
    scopes: Vec<String>,
    /// Other `iss` values accepted in ID tokens (Google also uses
    /// `accounts.google.com`).
    issuer_aliases: Vec<String>,
    authorization_url: Option<String>,
    token_url: Option<String>,
    userinfo_url: Option<String>,
    jwks_url: Option<String>,
    api_base_url: String,
    timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    GitHub,
    Oidc { issuer: String },
}

/// What clones share: the HTTP client and the caches.
struct State {
    http: std::result::Result<reqwest::Client, String>,
    endpoints: tokio::sync::OnceCell<Arc<Endpoints>>,
    jwks: Mutex<Option<Arc<KeySet>>>,
    jwks_refresh: tokio::sync::Mutex<()>,
}

impl State {
    fn new(timeout: Duration) -> Self {
        Self {
            http: http::client(timeout).map_err(|e| e.to_string()),
            endpoints: tokio::sync::OnceCell::new(),
            jwks: Mutex::new(None),
            jwks_refresh: tokio::sync::Mutex::new(()),
        }
    }
}

/// The provider's endpoints and rules, resolved once (from the preset, or
/// the discovery document, then the overrides).
#[derive(Debug)]
pub(crate) struct Endpoints {
    authorization: Url,
    token: Url,
    userinfo: Option<Url>,
    jwks: Option<Url>,
    /// The issuer, for OIDC: expected in `iss` (callback and ID token).
    issuer: Option<String>,
    /// The provider announces RFC 9207: a callback without `iss` is refused.
    iss_required: bool,
    auth_type: AuthType,
    algorithms: Vec<Algorithm>,
}

impl fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("OAuthProvider")
            .field("id", &c.id)
            .field("kind", &c.kind)
            .field("client_id", &c.client_id)
            .field("client_secret", &c.client_secret)
            .field("scopes", &c.scopes)
            .finish_non_exhaustive()
    }
}

impl OAuthProvider {
    fn new(id: impl Into<String>, kind: Kind, client_id: String, secret: Secret) -> Self {
        let scopes = match kind {
            Kind::GitHub => vec!["read:user".to_owned(), "user:email".to_owned()],
            Kind::Oidc { .. } => vec!["openid".into(), "email".into(), "profile".into()],
        };
        let timeout = Duration::from_secs(10);
        Self {
            config: Arc::new(Config {
                id: id.into(),
                kind,
                client_id,
                client_secret: secret,
                scopes,
                issuer_aliases: Vec::new(),
                authorization_url: None,
                token_url: None,
                userinfo_url: None,
                jwks_url: None,
                api_base_url: GITHUB_API.to_owned(),
                timeout,
            }),
            state: Arc::new(State::new(timeout)),
        }
    }

    /// GitHub (id `github`): scopes `read:user user:email`; the identity is
    /// the numeric user id, the email the primary one from `/user/emails`
    /// (verified as GitHub says).
    pub fn github(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        Self::new(
            "github",
            Kind::GitHub,
            client_id.into(),
            client_secret.into(),
        )
    }

    /// Google (id `google`): OpenID Connect with issuer
    /// `https://accounts.google.com`, scopes `openid email profile`.
    pub fn google(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        let mut provider = Self::oidc("google", GOOGLE_ISSUER, client_id, client_secret);
        Arc::make_mut(&mut provider.config).issuer_aliases = vec!["accounts.google.com".into()];
        provider
    }

    /// Any OpenID Connect provider, found from `issuer` by discovery
    /// (`{issuer}/.well-known/openid-configuration`) on first use or with
    /// [`discover`](Self::discover). Scopes `openid email profile`.
    pub fn oidc(
        id: impl Into<String>,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Self {
        let issuer = issuer.into();
        Self::new(
            id,
            Kind::Oidc { issuer },
            client_id.into(),
            client_secret.into(),
        )
    }

    /// The id: the registry key and the `{provider}` of the routes.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The issuer, for an OpenID Connect provider.
    pub fn issuer(&self) -> Option<&str> {
        match &self.config.kind {
            Kind::Oidc { issuer } => Some(issuer),
            Kind::GitHub => None,
        }
    }

    /// Changes the id (e.g. a second GitHub app, or GitHub Enterprise).
    pub fn with_id(self, id: impl Into<String>) -> Self {
        self.configure(|c| c.id = id.into())
    }

    /// Replaces the requested scopes.
    pub fn with_scopes<S: Into<String>>(self, scopes: impl IntoIterator<Item = S>) -> Self {
        let scopes = scopes.into_iter().map(Into::into).collect();
        self.configure(|c| c.scopes = scopes)
    }

    /// Overrides the authorization endpoint (where browsers are sent).
    pub fn with_authorization_url(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.configure(|c| c.authorization_url = Some(url))
    }

    /// Overrides the token endpoint.
    pub fn with_token_url(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.configure(|c| c.token_url = Some(url))
    }

    /// Overrides the OIDC userinfo endpoint.
    pub fn with_userinfo_url(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.configure(|c| c.userinfo_url = Some(url))
    }

    /// Overrides the OIDC JWKS URL.
    pub fn with_jwks_url(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.configure(|c| c.jwks_url = Some(url))
    }

    /// The GitHub REST API base (default `https://api.github.com`; GitHub
    /// Enterprise: `https://HOST/api/v3`), for `/user` and `/user/emails`.
    pub fn with_api_base_url(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.configure(|c| c.api_base_url = url)
    }

    /// Timeout of each call to the provider (default 10 s).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.configure(|c| c.timeout = timeout)
    }

    /// Applies a configuration change; the caches start afresh.
    fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self.state = Arc::new(State::new(self.config.timeout));
        self
    }

    /// Checks the configuration without network calls: id, client id, and
    /// every configured URL (`https`, or `http` to a loopback host).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the problem.
    pub fn validate(&self) -> Result<()> {
        let c = &self.config;
        if c.id.is_empty()
            || !c
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(Error::Config(
                format!(
                    "OAuth provider id `{}` must be lower-case letters, digits, `-` or `_`",
                    c.id
                )
                .into(),
            ));
        }
        if c.client_id.is_empty() {
            return Err(self.config_error("the client id is empty"));
        }
        let mut urls = vec![c.api_base_url.as_str()];
        urls.extend(self.issuer());
        urls.extend(
            [
                &c.authorization_url,
                &c.token_url,
                &c.userinfo_url,
                &c.jwks_url,
            ]
            .into_iter()
            .flatten()
            .map(String::as_str),
        );
        for url in urls {
            self.parse_url(url).map_err(|e| self.config_error(e))?;
        }
        if let Err(err) = &self.state.http {
            return Err(self.config_error(format!("cannot build the HTTP client: {err}")));
        }
        Ok(())
    }

    /// Resolves the endpoints now: for OIDC, fetches and checks the
    /// discovery document (it is cached; without this call it is fetched
    /// on the first sign-in).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the document cannot be fetched or is not
    /// this issuer's.
    pub async fn discover(&self) -> Result<()> {
        self.validate()?;
        self.state
            .endpoints
            .get_or_try_init(|| self.resolve())
            .await
            .map(|_| ())
            .map_err(|failure| Error::Config(failure.to_string().into()))
    }

    fn config_error(&self, what: impl fmt::Display) -> Error {
        Error::Config(format!("OAuth provider `{}`: {what}", self.config.id).into())
    }

    fn parse_url(&self, url: &str) -> std::result::Result<Url, String> {
        let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        if http::allowed_url(&parsed) {
            Ok(parsed)
        } else {
            Err(format!(
                "`{url}` must be https (plain http only to a loopback host)"
            ))
        }
    }

    pub(crate) fn http(&self) -> Result<&reqwest::Client> {
        self.state
            .http
            .as_ref()
            .map_err(|e| self.config_error(format!("cannot build the HTTP client: {e}")))
    }

    /// The resolved endpoints (discovered on first use).
    pub(crate) async fn endpoints(&self) -> Result<Arc<Endpoints>> {
        self.state
            .endpoints
            .get_or_try_init(|| self.resolve())
            .await
            .cloned()
            .map_err(Error::from)
    }

    async fn resolve(&self) -> std::result::Result<Arc<Endpoints>, ProviderFailure> {
        let c = &self.config;
        let id = c.id.as_str();
        let url = |url: &str| {
            self.parse_url(url)
                .map_err(|e| ProviderFailure::new(id, e, None))
        };
        let opt_url = |value: Option<&String>| value.map(|u| url(u)).transpose();
        let endpoints = match &c.kind {
            Kind::GitHub => Endpoints {
                authorization: url(c.authorization_url.as_deref().unwrap_or(GITHUB_AUTHORIZE))?,
                token: url(c.token_url.as_deref().unwrap_or(GITHUB_TOKEN))?,
                userinfo: None,
                jwks: None,
                issuer: None,
                iss_required: false,
                // GitHub documents the client secret in the body.
                auth_type: AuthType::RequestBody,
                algorithms: Vec::new(),
            },
            Kind::Oidc { issuer } => {
                let meta = self.fetch_metadata(issuer).await?;
                let token = c
                    .token_url
                    .as_ref()
                    .or(meta.token_endpoint.as_ref())
                    .ok_or_else(|| {
                        ProviderFailure::new(
                            id,
                            "the discovery document has no token endpoint",
                            None,
                        )
                    })?;
                let jwks = c
                    .jwks_url
                    .as_ref()
                    .or(meta.jwks_uri.as_ref())
                    .ok_or_else(|| {
                        ProviderFailure::new(id, "the discovery document has no jwks_uri", None)
                    })?;
                let methods = &meta.token_endpoint_auth_methods_supported;
                let basic =
                    methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic");
                let post = methods.iter().any(|m| m == "client_secret_post");
                Endpoints {
                    authorization: url(c
                        .authorization_url
                        .as_deref()
                        .unwrap_or(&meta.authorization_endpoint))?,
                    token: url(token)?,
                    userinfo: opt_url(c.userinfo_url.as_ref().or(meta.userinfo_endpoint.as_ref()))?,
                    jwks: Some(url(jwks)?),
                    issuer: Some(meta.issuer.clone()),
                    iss_required: meta.authorization_response_iss_parameter_supported,
                    auth_type: if basic || !post {
                        AuthType::BasicAuth
                    } else {
                        AuthType::RequestBody
                    },
                    algorithms: oidc::signing_algorithms(
                        &meta.id_token_signing_alg_values_supported,
                    ),
                }
            }
        };
        Ok(Arc::new(endpoints))
    }

    async fn fetch_metadata(&self, issuer: &str) -> std::result::Result<Metadata, ProviderFailure> {
        let id = self.config.id.as_str();
        let base = self
            .parse_url(issuer)
            .map_err(|e| ProviderFailure::new(id, e, None))?;
        let url = Url::parse(&format!(
            "{}/.well-known/openid-configuration",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|e| ProviderFailure::new(id, "invalid discovery URL", Some(Box::new(e))))?;
        let http = self
            .state
            .http
            .as_ref()
            .map_err(|e| ProviderFailure::new(id, format!("no HTTP client: {e}"), None))?;
        let meta: Metadata = http::get_json(http, url, None, &[])
            .await
            .map_err(|e| ProviderFailure::new(id, "discovery failed", Some(Box::new(e))))?;
        // OpenID Connect Discovery §4.3: the document must be the issuer's.
        if meta.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            tracing::error!(
                provider = id,
                configured = issuer,
                announced = %meta.issuer,
                "the discovery document names another issuer"
            );
            return Err(ProviderFailure::new(
                id,
                format!(
                    "the discovery document names issuer `{}`, not `{issuer}`",
                    meta.issuer
                ),
                None,
            ));
        }
        Ok(meta)
    }

    /// The callback URL registered at the provider.
    pub(crate) fn redirect_uri(&self, cx: &ProviderCx<'_>) -> Result<Url> {
        let public = cx.config().public_url.as_deref().ok_or_else(|| {
            Error::Config("OAuth sign-in needs `public_url` (the base of the callback URL)".into())
        })?;
        Url::parse(&format!(
            "{}/auth/oauth/{}/callback",
            public.trim_end_matches('/'),
            self.config.id
        ))
        .map_err(|e| Error::Config(format!("invalid OAuth callback URL: {e}").into()))
    }

    fn oauth_client(&self, endpoints: &Endpoints, redirect: Url) -> OAuthClient {
        oauth2::Client::new(ClientId::new(self.config.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.config.client_secret.expose().to_owned(),
            ))
            .set_auth_uri(AuthUrl::from_url(endpoints.authorization.clone()))
            .set_token_uri(TokenUrl::from_url(endpoints.token.clone()))
            .set_redirect_uri(RedirectUrl::from_url(redirect))
            .set_auth_type(endpoints.auth_type.clone())
    }

    /// Starts a sign-in: stores a single-use state record (PKCE verifier,
    /// nonce, the hash of the browser binding, the requested redirect) for
    /// [`STATE_TTL_SECS`] and returns the provider's authorization URL.
    pub(crate) async fn start(
        &self,
        cx: &ProviderCx<'_>,
        browser: &str,
        redirect_to: Option<String>,
    ) -> Result<String> {
        let endpoints = self.endpoints().await?;
        let client = self.oauth_client(&endpoints, self.redirect_uri(cx)?);
        let state = OpaqueToken::generate();
        let nonce = matches!(self.config.kind, Kind::Oidc { .. })
            .then(|| OpaqueToken::generate().expose().to_owned());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state_value = state.expose().to_owned();
        let mut request = client
            .authorize_url(move || CsrfToken::new(state_value))
            .add_scopes(self.config.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if let Some(nonce) = &nonce {
            request = request.add_extra_param("nonce", nonce.clone());
        }
        let (url, _) = request.url();
        let flow = Flow {
            provider: self.config.id.clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce,
            browser: TokenHash::of(browser).as_str().to_owned(),
            redirect_to,
        };
        let record = OneTimeToken::new(
            state.hash(),
            STATE_PURPOSE,
            cx.now(),
            chrono::Duration::seconds(STATE_TTL_SECS),
        )
        .with_data(serde_json::to_value(&flow).map_err(Error::internal)?);
        if !cx.store_token(&record, false).await? {
            return Err(Error::internal("OAuth state collision"));
        }
        Ok(url.into())
    }

    /// Takes (atomically, once) the pending sign-in named by `state`, and
    /// checks that this browser started it, for this provider.
    ///
    /// # Errors
    ///
    /// [`Error::CsrfRejected`] without the binding cookie or with another
    /// one (403); [`Error::TokenGone`] for an unknown, used or expired state
    /// (410); `OAUTH_STATE_MISMATCH` (422) when it was started with another
    /// provider.
    pub(crate) async fn take_flow(
        &self,
        cx: &ProviderCx<'_>,
        state: &str,
        browser: Option<&str>,
    ) -> Result<Flow> {
        let browser = browser
            .filter(|b| !b.is_empty())
            .ok_or(Error::CsrfRejected)?;
        let record = cx
            .consume_token(&TokenHash::of(state), STATE_PURPOSE)
            .await?
            .ok_or(Error::TokenGone)?;
        let flow: Flow = serde_json::from_value(record.data).map_err(Error::internal)?;
        if !TokenHash::from_hex(flow.browser.clone()).matches(&TokenHash::of(browser)) {
            return Err(Error::CsrfRejected);
        }
        if flow.provider != self.config.id {
            return Err(state_mismatch());
        }
        Ok(flow)
    }

    /// Code for tokens at the token endpoint, with the PKCE verifier.
    async fn exchange(
        &self,
        cx: &ProviderCx<'_>,
        endpoints: &Endpoints,
        code: &str,
        verifier: &str,
    ) -> Result<TokenSet> {
        let client = self.oauth_client(endpoints, self.redirect_uri(cx)?);
        let result = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(self.http()?)
            .await;
        let id = self.id();
        match result {
            Ok(tokens) => Ok(tokens),
            Err(RequestTokenError::ServerResponse(err)) => Err(self.token_error(&err)),
            Err(RequestTokenError::Parse(err, body)) => {
                // GitHub answers 200 with an error object.
                match serde_json::from_slice::<BasicErrorResponse>(&body) {
                    Ok(err) => Err(self.token_error(&err)),
                    Err(_) => Err(unavailable(id, "unreadable token endpoint answer", err)),
                }
            }
            Err(RequestTokenError::Request(err)) => {
                Err(unavailable(id, "token endpoint unreachable", err))
            }
            Err(RequestTokenError::Other(what)) => {
                Err(ProviderFailure::new(id, format!("token endpoint: {what}"), None).into())
            }
        }
    }

    fn token_error(&self, err: &BasicErrorResponse) -> Error {
        match err.error() {
            BasicErrorResponseType::InvalidGrant => code_rejected(),
            BasicErrorResponseType::Extension(code) if code == "bad_verification_code" => {
                code_rejected()
            }
            other => {
                tracing::error!(
                    provider = self.id(),
                    error = %other,
                    description = err.error_description().map(String::as_str).unwrap_or(""),
                    "the token endpoint refused the client (check the client id, secret and callback URL)"
                );
                ProviderFailure::new(self.id(), format!("token endpoint refused: {other}"), None)
                    .into()
            }
        }
    }

    /// The JWKS, fetched when absent or old, or again when `stale` (the
    /// set a verification failed with) is the cached one and old enough.
    async fn jwks(&self, url: &Url, stale: Option<&Arc<KeySet>>) -> Result<Arc<KeySet>> {
        let usable = |set: &Arc<KeySet>| {
            let age = set.fetched.elapsed();
            age < JWKS_MAX_AGE
                && !stale.is_some_and(|s| Arc::ptr_eq(s, set) && age >= JWKS_MIN_REFRESH)
        };
        if let Some(set) = self.cached_jwks().filter(usable) {
            return Ok(set);
        }
        let _refresh = self.state.jwks_refresh.lock().await;
        // Another request may have fetched it meanwhile.
        if let Some(set) = self.cached_jwks().filter(usable) {
            return Ok(set);
        }
        let document: Value = http::get_json(self.http()?, url.clone(), None, &[])
            .await
            .map_err(|e| unavailable(self.id(), "JWKS fetch failed", e))?;
        let set = Arc::new(KeySet::parse(&document));
        *self
            .state
            .jwks
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(set.clone());
        Ok(set)
    }

    fn cached_jwks(&self) -> Option<Arc<KeySet>> {
        self.state
            .jwks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The identity an OpenID Connect provider vouches for: the verified ID
    /// token's claims, completed from userinfo when they lack the email.
    async fn oidc_identity(
        &self,
        cx: &ProviderCx<'_>,
        endpoints: &Endpoints,
        tokens: &TokenSet,
        nonce: Option<&str>,
    ) -> Result<Identity> {
        let id_token = tokens.extra_fields().id_token.as_deref().ok_or_else(|| {
            id_token_invalid("the provider returned no ID token (is the `openid` scope requested?)")
        })?;
        let jwks_url = endpoints
            .jwks
            .as_ref()
            .ok_or_else(|| self.config_error("no JWKS URL"))?;
        let mut issuers: Vec<String> = endpoints.issuer.iter().cloned().collect();
        issuers.extend(self.config.issuer_aliases.iter().cloned());
        let expected = Expected {
            issuers: &issuers,
            client_id: &self.config.client_id,
            nonce,
            algorithms: &endpoints.algorithms,
            now: cx.now(),
        };
        let keys = self.jwks(jwks_url, None).await?;
        let mut claims = match oidc::verify_id_token(id_token, &keys.keys, &expected) {
            Err(err) if err.key_may_have_rotated() => {
                let fresh = self.jwks(jwks_url, Some(&keys)).await?;
                if Arc::ptr_eq(&fresh, &keys) {
                    Err(err)
                } else {
                    oidc::verify_id_token(id_token, &fresh.keys, &expected)
                }
            }
            other => other,
        }
        .map_err(|err| {
            tracing::warn!(provider = self.id(), error = %err, "ID token refused");
            id_token_invalid(err.to_string())
        })?;
        if !claims.contains_key("email") {
            if let Some(userinfo) = &endpoints.userinfo {
                self.merge_userinfo(userinfo, tokens, &mut claims).await?;
            }
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut identity = Identity::new(self.id(), subject);
        if let Some(email) = claims.get("email").and_then(Value::as_str) {
            identity = identity.with_email(email, oidc::email_verified(&claims));
        }
        let name = ["name", "preferred_username", "given_name"]
            .iter()
            .find_map(|claim| claims.get(*claim).and_then(Value::as_str));
        if let Some(name) = name.and_then(clean_name) {
            identity = identity.with_name(name);
        }
        Ok(identity.with_profile(oidc::profile(&claims)))
    }

    /// Adds userinfo claims the ID token lacks (OIDC Core §5.3.2: only when
    /// userinfo's `sub` is the ID token's).
    async fn merge_userinfo(
        &self,
        url: &Url,
        tokens: &TokenSet,
        claims: &mut Map<String, Value>,
    ) -> Result<()> {
        let info: Map<String, Value> = http::get_json(
            self.http()?,
            url.clone(),
            Some(tokens.access_token().secret()),
            &[],
        )
        .await
        .map_err(|e| unavailable(self.id(), "userinfo failed", e))?;
        if info.get("sub") != claims.get("sub") {
            tracing::warn!(provider = self.id(), "userinfo names another subject");
            return Err(id_token_invalid(
                "the provider's userinfo names another subject than the ID token",
            ));
        }
        for (name, value) in info {
            claims.entry(name).or_insert(value);
        }
        Ok(())
    }

    async fn github_identity(&self, tokens: &TokenSet) -> Result<Identity> {
        let http = self.http()?;
        let base = self
            .parse_url(&self.config.api_base_url)
            .map_err(|e| self.config_error(e))?;
        let token = tokens.access_token().secret();
        let profile = github::fetch(http, &base, token)
            .await
            .map_err(|e| match e {
                FetchError::Status(status) if status.is_client_error() => {
                    provider_refused(self.id(), "the profile", status)
                }
                e => unavailable(self.id(), "GitHub API", e),
            })?;
        let mut identity = Identity::new(self.id(), profile.id.to_string());
        if let Some((email, verified)) = profile.email() {
            identity = identity.with_email(email, verified);
        }
        if let Some(name) = profile.display_name().and_then(clean_name) {
            identity = identity.with_name(name);
        }
        Ok(identity.with_profile(profile.raw))
    }
}

/// A pending sign-in, as stored under its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Flow {
    pub(crate) provider: String,
    pub(crate) pkce_verifier: String,
    pub(crate) nonce: Option<String>,
    /// SHA-256 (hex) of the browser binding cookie.
    pub(crate) browser: String,
    /// The `redirect_to` requested at authorize time (already allowed).
    pub(crate) redirect_to: Option<String>,
}

/// What [`OAuthApi`](crate::OAuthApi) hands the provider through
/// `AuthManager::sign_in`: the pending sign-in it took for this callback
/// (absent only when the provider answered an error without state).
#[derive(Debug, Deserialize)]
struct CallbackInput {
    flow: Option<Flow>,
}

/// The token endpoint's answer, with the ID token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdTokenFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenFields {}

type TokenSet = StandardTokenResponse<IdTokenFields, BasicTokenType>;

type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    TokenSet,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

#[async_trait]
impl Provider for OAuthProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo::new(self.config.id.clone(), "oauth")
    }

    /// Finishes a sign-in from the provider's callback: the query carries
    /// `code`, `state`, `iss` or `error`; the body is `{"flow": …}`, the
    /// pending sign-in [`OAuthApi`](crate::OAuthApi) took (once) for this
    /// state after checking the browser binding. Checks `iss` (RFC 9207),
    /// exchanges the code with the PKCE verifier, then verifies the ID
    /// token (OIDC) or reads the profile (GitHub).
    async fn authenticate(
        &self,
        cx: &ProviderCx<'_>,
        request: ProviderRequest,
    ) -> Result<Identity> {
        let query = &request.query;
        if let Some(error) = query.get("error") {
            return Err(provider_error(self.id(), error));
        }
        let input: CallbackInput = request.body_as()?;
        // A flow handed in as JSON was not necessarily taken by this
        // provider's `take_flow`: check whose it is.
        if input
            .flow
            .as_ref()
            .is_some_and(|flow| flow.provider != self.config.id)
        {
            return Err(state_mismatch());
        }
        let callback = Callback {
            flow: input.flow,
            code: query.get("code").cloned(),
            iss: query.get("iss").cloned(),
            error: None,
        };
        self.finish(cx, &callback).await
    }
}

/// A callback as [`OAuthApi`](crate::OAuthApi) read it: the pending
/// sign-in it took (once, checked for this browser and this provider) and
/// the query's `code`, `iss` or `error`.
#[derive(Debug)]
pub(crate) struct Callback {
    pub(crate) flow: Option<Flow>,
    pub(crate) code: Option<String>,
    pub(crate) iss: Option<String>,
    pub(crate) error: Option<String>,
}

/// A callback with the provider that finishes it: the typed proof the
/// callback route hands `AuthManager::sign_in_with`.
pub(crate) struct CallbackProof<'a> {
    pub(crate) provider: &'a OAuthProvider,
    pub(crate) callback: Callback,
}

#[async_trait]
impl Proof for CallbackProof<'_> {
    async fn prove(&self, cx: &ProviderCx<'_>) -> Result<Identity> {
        self.provider.finish(cx, &self.callback).await
    }
}

impl OAuthProvider {
    /// Finishes a sign-in from the provider's callback: checks `iss` (RFC
    /// 9207), exchanges the code with the PKCE verifier of the pending
    /// sign-in, then verifies the ID token (OIDC) or reads the profile
    /// (GitHub). The pending sign-in's state was checked once, when it was
    /// taken.
    pub(crate) async fn finish(
        &self,
        cx: &ProviderCx<'_>,
        callback: &Callback,
    ) -> Result<Identity> {
        if let Some(error) = &callback.error {
            return Err(provider_error(self.id(), error));
        }
        let flow = callback.flow.as_ref().ok_or_else(|| {
            Error::validation(
                "state",
                "OAUTH_CALLBACK_INVALID",
                "the callback has no state",
            )
        })?;
        let code = callback
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                Error::validation("code", "OAUTH_CALLBACK_INVALID", "the callback has no code")
            })?;
        let endpoints = self.endpoints().await?;
        check_iss_param(&endpoints, callback.iss.as_deref())?;
        let tokens = self
            .exchange(cx, &endpoints, code, &flow.pkce_verifier)
            .await?;
        match &self.config.kind {
            Kind::GitHub => self.github_identity(&tokens).await,
            Kind::Oidc { .. } => {
                self.oidc_identity(cx, &endpoints, &tokens, flow.nonce.as_deref())
                    .await
            }
        }
    }
}

/// Mix-up defence (RFC 9207): an `iss` in the callback must be the
/// issuer; a provider that announces the parameter must send it.
fn check_iss_param(endpoints: &Endpoints, iss: Option<&str>) -> Result<()> {
    let Some(issuer) = endpoints.issuer.as_deref() else {
        return Ok(());
    };
    match iss {
        Some(iss) if iss == issuer => Ok(()),
        None if !endpoints.iss_required => Ok(()),
        _ => Err(Error::validation(
            "iss",
            "OAUTH_ISSUER_MISMATCH",
            "the authorization response comes from another issuer than this provider",
        )),
    }
}

/// An `error=` callback: the user said no, or the provider refused.
fn provider_error(provider: &str, error: &str) -> Error {
    match error {
        "access_denied" => Error::validation(
            "error",
            "OAUTH_ACCESS_DENIED",
            "access was denied at the provider (the user cancelled or refused)",
        ),
        "temporarily_unavailable" | "server_error" => {
            ProviderFailure::new(provider, format!("authorization answered `{error}`"), None).into()
        }
        other => {
            let safe = other.len() <= 64
                && other
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            let shown = if safe { other } else { "unknown" };
            tracing::warn!(
                provider,
                error = shown,
                "the provider refused the authorization"
            );
            Error::validation(
                "error",
                "OAUTH_PROVIDER_ERROR",
                format!("the provider refused the sign-in: {shown}"),
            )
        }
    }
}

fn state_mismatch() -> Error {
    Error::validation(
        "state",
        "OAUTH_STATE_MISMATCH",
        "this sign-in was started with another provider",
    )
}

fn code_rejected() -> Error {
    Error::validation(
        "code",
        "OAUTH_CODE_REJECTED",
        "the provider rejected the authorization code (expired, already used or not issued for this sign-in)",
    )
}

fn id_token_invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::validation("id_token", "OAUTH_ID_TOKEN_INVALID", message)
}

fn provider_refused(provider: &str, what: &str, status: reqwest::StatusCode) -> Error {
    ProviderFailure::new(provider, format!("{what} answered HTTP {status}"), None).into()
}

/// A display name without control characters, within the core's limit.
fn clean_name(name: &str) -> Option<String> {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_overrides() {
        let github = OAuthProvider::github("id", "secret");
        assert_eq!(github.id(), "github");
        assert_eq!(github.issuer(), None);
        assert_eq!(github.config.scopes, ["read:user", "user:email"]);
        let google = OAuthProvider::google("id", "secret");
        assert_eq!(google.issuer(), Some(GOOGLE_ISSUER));
        assert_eq!(google.config.scopes, ["openid", "email", "profile"]);
        let acme = OAuthProvider::oidc("acme", "https://login.acme.test", "id", "secret")
            .with_scopes(["openid"])
            .with_id("acme-2");
        assert_eq!(acme.id(), "acme-2");
        assert_eq!(acme.config.scopes, ["openid"]);
        assert!(!format!("{acme:?}").contains("secret\""));
        acme.validate().unwrap();
    }

    #[test]
    fn validate_refuses_bad_ids_and_urls() {
        let bad = [
            OAuthProvider::github("id", "s").with_id("Git Hub"),
            OAuthProvider::github("id", "s").with_id(""),
            OAuthProvider::github("", "s"),
            OAuthProvider::oidc("acme", "http://login.acme.test", "id", "s"),
            OAuthProvider::oidc("acme", "not a url", "id", "s"),
            OAuthProvider::github("id", "s").with_token_url("ftp://127.0.0.1/token"),
        ];
        for provider in bad {
            assert!(
                matches!(provider.validate(), Err(Error::Config(_))),
                "{provider:?}"
            );
        }
        OAuthProvider::github("id", "s")
            .with_token_url("http://127.0.0.1:9/token")
            .validate()
            .unwrap();
    }

    #[test]
    fn provider_errors_are_clear_and_never_echo_odd_input() {
        let code = |e: Error| e.code();
        assert_eq!(
            code(provider_error("p", "access_denied")),
            "OAUTH_ACCESS_DENIED"
        );
        assert_eq!(
            code(provider_error("p", "invalid_scope")),
            "OAUTH_PROVIDER_ERROR"
        );
        assert_eq!(
            code(provider_error("p", "server_error")),
            "SERVICE_UNAVAILABLE"
        );
        let message = provider_error("p", "<script>").to_string();
        assert!(message.ends_with(": unknown"), "{message}");
    }

    #[test]
    fn iss_parameter_rules() {
        let endpoints = |issuer: Option<&str>, required| Endpoints {
            authorization: Url::parse("https://a.test/auth").unwrap(),
            token: Url::parse("https://a.test/token").unwrap(),
            userinfo: None,
            jwks: None,
            issuer: issuer.map(str::to_owned),
            iss_required: required,
            auth_type: AuthType::BasicAuth,
            algorithms: vec![],
        };
        let issuer = Some("https://a.test");
        assert!(check_iss_param(&endpoints(issuer, false), None).is_ok());
        assert!(check_iss_param(&endpoints(issuer, false), Some("https://a.test")).is_ok());
        assert!(check_iss_param(&endpoints(issuer, false), Some("https://b.test")).is_err());
        assert!(check_iss_param(&endpoints(issuer, true), None).is_err());
        assert!(check_iss_param(&endpoints(None, false), Some("anything")).is_ok());
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(
            clean_name("  Ada\u{7}  Lovelace "),
            Some("Ada  Lovelace".into())
        );
        assert_eq!(clean_name(" \n "), None);
        assert_eq!(clean_name(&"x".repeat(500)).map(|n| n.len()), Some(200));
    }
}

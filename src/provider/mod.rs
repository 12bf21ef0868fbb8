//! Providers: plug-ins that prove an identity.
//!
//! A provider turns a uniform [`ProviderRequest`] into a verified
//! [`Identity`]; the manager maps the identity to a user, opens the session,
//! emits events and runs hooks. Providers never touch the store directly:
//! [`ProviderCx`] hands them narrow capabilities.

use std::{collections::HashMap, fmt, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    config::AuthConfig,
    email::Message,
    error::{Error, Result},
    hooks::{Action, Event, ProviderEvent},
    manager::AuthManager,
    store::{ClientInfo, OneTimeToken},
    token::{OpaqueToken, TokenHash},
    user::{normalize_email, User},
};

/// A sign-in request, the same shape for every provider: a JSON body, the
/// query string and client metadata. The provider deserializes its own
/// typed input with [`ProviderRequest::body_as`].
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ProviderRequest {
    /// JSON body (`Null` when there is none).
    pub body: serde_json::Value,
    /// Query parameters.
    pub query: HashMap<String, String>,
    /// Who is signing in.
    pub client: ClientInfo,
}

impl fmt::Debug for ProviderRequest {
    /// Shows the body's field names only: bodies carry passwords and codes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<&str> = self
            .body
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        f.debug_struct("ProviderRequest")
            .field("body_fields", &fields)
            .field("query_keys", &self.query.keys().collect::<Vec<_>>())
            .field("client", &self.client)
            .finish()
    }
}

impl ProviderRequest {
    /// A request with a JSON body.
    pub fn new(body: serde_json::Value) -> Self {
        Self {
            body,
            ..Self::default()
        }
    }

    /// Adds query parameters.
    pub fn with_query(mut self, query: HashMap<String, String>) -> Self {
        self.query = query;
        self
    }

    /// Adds client metadata.
    pub fn with_client(mut self, client: ClientInfo) -> Self {
        self.client = client;
        self
    }

    /// Deserializes the body into the provider's input type.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (`INVALID_BODY`) when the body does not match.
    pub fn body_as<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(&self.body).map_err(|e| Error::Validation {
            field: None,
            code: "INVALID_BODY",
            message: format!("invalid request body: {e}").into(),
        })
    }

    /// The `email` field of the body, if it is a string (for events).
    pub fn email_hint(&self) -> Option<String> {
        self.body
            .get("email")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }
}

/// A verified identity, as a provider proved it.
///
/// Either a **local user** the provider proved directly (a local
/// credential: [`Identity::local`]), signed in as is, or an **external
/// identity** (`subject` at the provider, with the email it reported),
/// which the manager maps to a user by one rule: the linked account, else
/// the user with the email when both sides verified it, else a new user
/// (never from an email the provider did not verify, unless
/// `accounts.allow_unverified_provider_sign_up`). The manager stamps
/// [`provider`](Self::provider) with the id of the provider it called: a
/// provider cannot speak for another.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Identity {
    /// Provider id (set by the manager to the provider that proved it).
    pub provider: String,
    /// The provider's stable id for this person.
    pub subject: String,
    /// Email the provider reported.
    pub email: Option<String>,
    /// Whether the provider vouches that the email belongs to this person.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// Anything else the provider returned.
    pub profile: serde_json::Value,
    /// The local user the provider proved directly (e.g. by their
    /// password), as it just read it: the manager signs this user in
    /// without linking (and without reading it again). `None` for an
    /// external identity.
    #[serde(skip)]
    pub local_user: Option<Box<User>>,
    /// Whether (provider, subject) is recorded as a linked account (default
    /// true). Providers that [sign in by email](Capabilities::signs_in_by_email)
    /// never record one, whatever this says: their proof is the current
    /// email, so a stored link would outlive an email change.
    pub link: bool,
}

impl Identity {
    /// An identity `subject` at `provider`, to be mapped to a user by linked
    /// account, then by verified email, else by creating one.
    pub fn new(provider: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            subject: subject.into(),
            email: None,
            email_verified: false,
            name: None,
            profile: serde_json::Value::Null,
            local_user: None,
            link: true,
        }
    }

    /// Do not record a linked account: the identity is the email itself,
    /// matched to a user by email every time.
    pub fn without_link(mut self) -> Self {
        self.link = false;
        self
    }

    /// An identity that is an existing local user (a local credential).
    pub fn local(provider: impl Into<String>, user: &User) -> Self {
        Self {
            email: Some(user.email.clone()),
            email_verified: user.email_verified,
            local_user: Some(Box::new(user.clone())),
            ..Self::new(provider, user.id.to_string())
        }
    }

    /// The local user this identity names, when the provider proved one
    /// directly ([`Identity::local`]).
    pub fn local_user(&self) -> Option<&User> {
        self.local_user.as_deref()
    }

    /// Sets the email and whether the provider verified it.
    pub fn with_email(mut self, email: impl Into<String>, verified: bool) -> Self {
        self.email = Some(email.into());
        self.email_verified = verified;
        self
    }

    /// Sets the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the raw profile.
    pub fn with_profile(mut self, profile: serde_json::Value) -> Self {
        self.profile = profile;
        self
    }
}

/// What a provider can do, declared in its [`ProviderInfo`]; the core asks
/// these instead of the provider's kind or id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// The proof is control of the mailbox (magic link, email code): it
    /// signs in whichever user holds the address, when that user's email is
    /// verified, and creates a verified user for an unknown address. No
    /// linked account is recorded. So a user with a verified email can
    /// always sign in through such a provider (unlinking asks this).
    pub signs_in_by_email: bool,
}

/// What a provider tells `GET /auth/providers` about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProviderInfo {
    /// Id, unique in the registry (`credentials`, `github`, …).
    pub id: String,
    /// Kind: `password`, `passwordless`, `oauth`, or an integrator's own.
    /// Descriptive only: the core decides by [`capabilities`](Self::capabilities).
    pub kind: String,
    /// What the provider can do.
    pub capabilities: Capabilities,
}

impl ProviderInfo {
    /// Info with an id and kind, and no capabilities.
    pub fn new(id: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            kind: kind.into(),
            capabilities: Capabilities::default(),
        }
    }

    /// Declares that the provider proves control of the email address
    /// (see [`Capabilities::signs_in_by_email`]).
    pub fn signs_in_by_email(mut self) -> Self {
        self.capabilities.signs_in_by_email = true;
        self
    }
}

/// A provider's typed proof, for [`AuthManager::sign_in_with`]: a route
/// that already parsed its input hands the manager this instead of JSON for
/// the provider to parse again. The manager runs it inside the one sign-in
/// pipeline (limits, the link rule, hooks, events).
///
/// # Errors
///
/// `prove` fails as [`Provider::authenticate`] does.
///
/// # Example
///
/// ```
/// use async_trait::async_trait;
/// use portcullis::{Error, Identity, Proof, ProviderCx, Result};
///
/// /// A key already parsed by the route.
/// struct ApiKey(String);
///
/// #[async_trait]
/// impl Proof for ApiKey {
///     async fn prove(&self, _cx: &ProviderCx<'_>) -> Result<Identity> {
///         if self.0 != "let-me-in" {
///             return Err(Error::InvalidCredentials);
///         }
///         Ok(Identity::new("api-key", "robot").with_email("robot@example.com", true))
///     }
/// }
/// ```
#[async_trait]
pub trait Proof: Send + Sync {
    /// The address the proof is for, when it names one before it is
    /// checked (the per-address failure delay and `login_failed` use it).
    fn email_hint(&self) -> Option<String> {
        None
    }

    /// Proves the identity.
    async fn prove(&self, cx: &ProviderCx<'_>) -> Result<Identity>;
}

/// Proves identities.
///
/// # Errors
///
/// `authenticate` returns [`Error::InvalidCredentials`] when the proof is
/// wrong (the manager emits `login_failed`), [`Error::Validation`] for
/// malformed input, or any other [`Error`].
///
/// # Example
///
/// ```
/// use async_trait::async_trait;
/// use portcullis::{Error, Identity, Provider, ProviderCx, ProviderInfo, ProviderRequest, Result};
///
/// /// Signs in with a shared API key (an example, not a recommendation).
/// #[derive(Debug)]
/// struct ApiKeyProvider;
///
/// #[derive(serde::Deserialize)]
/// struct Input {
///     key: String,
/// }
///
/// #[async_trait]
/// impl Provider for ApiKeyProvider {
///     fn info(&self) -> ProviderInfo {
///         ProviderInfo::new("api-key", "api_key")
///     }
///
///     async fn authenticate(&self, _cx: &ProviderCx<'_>, request: ProviderRequest) -> Result<Identity> {
///         let input: Input = request.body_as()?;
///         if input.key != "let-me-in" {
///             return Err(Error::InvalidCredentials);
///         }
///         Ok(Identity::new("api-key", "robot").with_email("robot@example.com", true))
///     }
/// }
/// ```
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug + 'static {
    /// Id and kind; the id keys the registry.
    fn info(&self) -> ProviderInfo;

    /// Proves an identity from a request.
    async fn authenticate(&self, cx: &ProviderCx<'_>, request: ProviderRequest)
        -> Result<Identity>;
}

/// Narrow capabilities the manager lends a provider during one request.
#[derive(Debug)]
pub struct ProviderCx<'a> {
    manager: &'a AuthManager,
}

impl<'a> ProviderCx<'a> {
    pub(crate) fn new(manager: &'a AuthManager) -> Self {
        Self { manager }
    }

    /// The current time from the manager's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.manager.now()
    }

    /// The longest password the policy accepts, in bytes: no stored password
    /// can be longer, so a provider may refuse longer input before hashing.
    pub fn password_max_bytes(&self) -> usize {
        self.manager.config().password.max_bytes
    }

    /// The user with this email (normalised first); `None` for an invalid
    /// or unknown address.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store is down.
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let Ok(normalized) = normalize_email(email) else {
            return Ok(None);
        };
        Ok(self.manager.store().find_user_by_email(&normalized).await?)
    }

    /// Checks `password` against `user`'s hash, in constant time with
    /// respect to whether the user exists or has a password (a dummy hash is
    /// verified instead). On success with a legacy (bcrypt) or outdated hash,
    /// the password is re-hashed with the current Argon2id parameters.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] / [`Error::Internal`] on store or hashing failure.
    pub async fn verify_password(&self, user: Option<&User>, password: &str) -> Result<bool> {
        self.manager.verify_user_password(user, password).await
    }

    /// The manager's configuration (read-only).
    pub fn config(&self) -> &AuthConfig {
        self.manager.config()
    }

    /// Whether an email sender is configured.
    pub fn can_send_email(&self) -> bool {
        self.manager.email_sender().is_some()
    }

    /// Whether sign-in may create users (`accounts.allow_provider_sign_up`).
    pub fn sign_up_allowed(&self) -> bool {
        self.manager.config().accounts.allow_provider_sign_up
    }

    /// Stores a new one-time `token` (its hash, purpose, expiry and data);
    /// earlier tokens of the same purpose for the same email are deleted
    /// first when `replace_for_email` is set (a new request kills the old).
    /// Returns `false` when a token with the same hash exists (possible for
    /// tokens keyed by something other than random bits).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store is down.
    pub async fn store_token(&self, token: &OneTimeToken, replace_for_email: bool) -> Result<bool> {
        let store = self.manager.store();
        if let (true, Some(email)) = (replace_for_email, token.email.as_deref()) {
            store
                .delete_one_time_tokens_for_email(email, &token.purpose)
                .await?;
        }
        match store.insert_one_time_token(token).await {
            Ok(()) => Ok(true),
            Err(crate::store::StoreError::Conflict(_)) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// The live one-time token with this hash and purpose, left in place.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store is down.
    pub async fn find_token(
        &self,
        hash: &TokenHash,
        purpose: &str,
    ) -> Result<Option<OneTimeToken>> {
        Ok(self
            .manager
            .store()
            .find_one_time_token(hash, purpose, self.now())
            .await?)
    }

    /// Atomically removes and returns the live token with this hash and
    /// purpose: of concurrent callers exactly one gets it.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store is down.
    pub async fn consume_token(
        &self,
        hash: &TokenHash,
        purpose: &str,
    ) -> Result<Option<OneTimeToken>> {
        Ok(self
            .manager
            .store()
            .consume_one_time_token(hash, purpose, self.now())
            .await?)
    }

    /// Counts one attempt against the live token and returns the new count
    /// (`None` when it is gone). Count before checking a guess.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store is down.
    pub async fn count_attempt(&self, hash: &TokenHash, purpose: &str) -> Result<Option<u32>> {
        Ok(self
            .manager
            .store()
            .count_one_time_token_attempt(hash, purpose, self.now())
            .await?)
    }

    /// An absolute link: the configured `public_url` + `path` + `?token=`.
    pub fn link(&self, path: &str, token: &OpaqueToken) -> String {
        self.manager.link(path, token)
    }

    /// Renders `message` with the configured templates and sends it to `to`
    /// in the background (failures are logged). Does nothing without an
    /// email sender.
    pub fn send(&self, to: &str, name: Option<&str>, message: Message) {
        self.manager.deliver(to, name, message);
    }

    /// Runs `job` in the background, tracked with the mail queue (see
    /// [`AuthManager::wait_for_deliveries`]), so a response does not wait
    /// for it or reveal its timing.
    pub fn in_background(&self, job: impl std::future::Future<Output = ()> + Send + 'static) {
        self.manager.in_background(job);
    }

    /// Emits `event` to the after-hooks (a provider's own event, e.g.
    /// `magic_link_requested`), as the core flows emit theirs.
    pub async fn emit(&self, event: ProviderEvent) {
        self.manager.emit(Event::Provider(event)).await;
    }

    /// Asks the before-hooks whether `action` may go ahead, as the core
    /// flows do before they commit (e.g. [`Action::RequestSignInMail`]
    /// before a provider mails a sign-in proof).
    ///
    /// # Errors
    ///
    /// [`Error::Vetoed`] with the hook's code when a hook refuses.
    pub async fn ask(&self, action: Action) -> Result<()> {
        Ok(self.manager.ask(action).await?)
    }
}

/// A registered provider: the trait object the flows call, and the same
/// value as `Any`, for the provider's own routes to find their settings.
pub(crate) type Registered = (Arc<dyn Provider>, Arc<dyn std::any::Any + Send + Sync>);

/// Providers keyed by id.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProviderRegistry {
    by_id: HashMap<String, Arc<dyn Provider>>,
    values: HashMap<String, Arc<dyn std::any::Any + Send + Sync>>,
    order: Vec<ProviderInfo>,
}

impl ProviderRegistry {
    pub(crate) fn register(&mut self, (provider, value): Registered) -> Result<()> {
        let info = provider.info();
        if info.id.is_empty() {
            return Err(Error::Config("a provider has an empty id".into()));
        }
        if self.by_id.contains_key(&info.id) {
            return Err(Error::Config(
                format!("duplicate provider id `{}`", info.id).into(),
            ));
        }
        self.by_id.insert(info.id.clone(), provider);
        self.values.insert(info.id.clone(), value);
        self.order.push(info);
        Ok(())
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.by_id.get(id)
    }

    /// The provider registered as `id`, if it is a `P`.
    pub(crate) fn value<P: Provider>(&self, id: &str) -> Option<Arc<P>> {
        self.values.get(id)?.clone().downcast::<P>().ok()
    }

    /// Every registered provider that is a `P`, in registration order.
    pub(crate) fn values_of<P: Provider>(&self) -> Vec<Arc<P>> {
        self.order
            .iter()
            .filter_map(|info| self.value(&info.id))
            .collect()
    }

    pub(crate) fn info(&self, id: &str) -> Option<&ProviderInfo> {
        self.order.iter().find(|info| info.id == id)
    }

    pub(crate) fn infos(&self) -> &[ProviderInfo] {
        &self.order
    }
}

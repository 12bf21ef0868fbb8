//! The auth manager: every flow lives here once.

mod access;
mod account;
mod admin;
mod builder;
mod email;
mod epoch;
mod factors;
mod limits;
mod link;
mod login;
mod mail;
mod mfa;
mod orgs;
mod passkeys;
mod password;
mod reauth;
mod refresh;
mod register;
mod roles;
mod session;

use std::{fmt, sync::Arc};

use chrono::{DateTime, Utc};

pub use access::ActiveOrg;
pub(crate) use admin::require_superuser;
pub use admin::{AdminUpdate, ProfileUpdate, UserList, MAX_METADATA_BYTES, MAX_PAGE};
pub use builder::{ApiInfo, AuthManagerBuilder};
pub use factors::{FactorStatus, RecoveryCodes, TotpSetup, RECOVERY_CODES};
pub use limits::RateRule;
pub use mfa::{MfaAnswer, SETUP_TTL_SECS};
pub use orgs::{
    org_permission, NewInvitation, OrgMembership, BUILT_IN_ROLES, MAX_ORG_NAME_CHARS, MAX_ORG_ROLES,
};
pub use passkeys::{PasskeyCeremony, MAX_PASSKEY_NAME_CHARS};
pub use reauth::{Reauthentication, SensitiveAction};
pub(crate) use register::profile_schema;
pub use register::{FieldKind, ProfileField, Registration, SignUp, DEFAULT_FIELD_CHARS};
pub use roles::{DefinedRole, RoleUpdate, MAX_ROLE_DESCRIPTION_CHARS};
pub use session::{Principal, SignIn, TokenPair};

use crate::{
    clock::Clock,
    config::AuthConfig,
    email::{EmailSender, EmailTemplates},
    error::Result,
    factor::Sealer,
    hooks::{Event, Hooks},
    password::{PasswordHasher, PasswordPolicy},
    provider::{ProviderCx, ProviderInfo, ProviderRegistry},
    store::Store,
    token::JwtKeys,
    user::User,
};

/// The auth manager: a cheap `Clone` handle shared by every request.
///
/// Build it with [`AuthManager::builder`]. Every flow is a method here and
/// works without HTTP; the HTTP adapter ([`crate::api`]) only translates.
#[derive(Clone)]
pub struct AuthManager {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthConfig,
    store: Arc<dyn Store>,
    providers: ProviderRegistry,
    hooks: Hooks,
    email: Option<Arc<dyn EmailSender>>,
    templates: Arc<dyn EmailTemplates>,
    deliveries: Arc<mail::Deliveries>,
    clock: Arc<dyn Clock>,
    jwt: JwtKeys,
    hasher: PasswordHasher,
    /// Seals TOTP secrets; `None` without `mfa.sealing_keys`.
    sealer: Option<Sealer>,
    /// The WebAuthn relying party; `None` without `mfa.passkeys.rp_id`.
    webauthn: Option<webauthn_rs::Webauthn>,
    policy: PasswordPolicy,
    registration_fields: Vec<register::ProfileField>,
    /// Roles from config, by name (read-only).
    config_roles: std::collections::BTreeMap<String, crate::store::Role>,
    api_info: builder::ApiInfo,
}

impl fmt::Debug for AuthManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthManager")
            .field("store", &self.inner.store)
            .field("providers", &self.inner.providers.infos())
            .field("jwt", &self.inner.jwt)
            .finish_non_exhaustive()
    }
}

impl AuthManager {
    /// A builder starting from `config`.
    pub fn builder(config: AuthConfig) -> AuthManagerBuilder {
        AuthManagerBuilder::new(config)
    }

    /// The extra fields `POST /auth/register` accepts, as declared with
    /// [`AuthManagerBuilder::registration_field`].
    pub fn registration_fields(&self) -> &[ProfileField] {
        &self.inner.registration_fields
    }

    /// Title, version and description of the served OpenAPI document
    /// ([`AuthManagerBuilder::api_info`]).
    pub fn api_info(&self) -> &ApiInfo {
        &self.inner.api_info
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The store. Not public: flows, providers (through [`ProviderCx`]) and
    /// tests (through the store they built the manager with) reach it, an
    /// app handler never does — every write goes through a flow, with its
    /// hooks, limits and events.
    ///
    /// [`ProviderCx`]: crate::ProviderCx
    pub(crate) fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    /// The current time from the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The password hasher.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    /// The password policy.
    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.inner.policy
    }

    /// The access-token keys.
    pub fn jwt(&self) -> &JwtKeys {
        &self.inner.jwt
    }

    /// The email sender, when one is configured.
    pub fn email_sender(&self) -> Option<&dyn EmailSender> {
        self.inner.email.as_deref()
    }

    /// The provider registered as `id`, when it is a `P`: how a provider's
    /// own routes use the very value the app registered (its lifetimes,
    /// limits, endpoints), so the app gives it once.
    ///
    /// ```
    /// # use portcullis::{AuthConfig, AuthManager, MemoryStore, Secret};
    /// # use portcullis_credentials::CredentialsProvider;
    /// # let mut config = AuthConfig::default();
    /// # config.jwt.secret = Some(Secret::new("0123456789abcdef0123456789abcdef"));
    /// let manager = AuthManager::builder(config)
    ///     .store(MemoryStore::new())
    ///     .provider(CredentialsProvider::new())
    ///     .build()?;
    /// assert!(manager.registered_provider::<CredentialsProvider>("credentials").is_some());
    /// assert!(manager.registered_provider::<CredentialsProvider>("github").is_none());
    /// # Ok::<(), portcullis::Error>(())
    /// ```
    pub fn registered_provider<P: crate::Provider>(&self, id: &str) -> Option<Arc<P>> {
        self.inner.providers.value(id)
    }

    /// Every registered provider that is a `P`, in registration order (e.g.
    /// all the OAuth providers, for their routes).
    pub fn registered_providers<P: crate::Provider>(&self) -> Vec<Arc<P>> {
        self.inner.providers.values_of()
    }

    /// The enabled providers, in registration order.
    pub fn providers(&self) -> &[ProviderInfo] {
        self.inner.providers.infos()
    }

    /// Looks up a user by id.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Unavailable`] when the store is down.
    pub async fn find_user(&self, id: &crate::UserId) -> Result<Option<User>> {
        Ok(self.inner.store.find_user(id).await?)
    }

    /// Looks up a user by email, in its canonical form (so any spelling
    /// that normalises to the same address finds them).
    ///
    /// A plain read, for the app's own server-side logic: it counts no rate
    /// limit and finds inactive and unverified users too. Never answer a
    /// client whether an address has an account (that is the enumeration
    /// every flow here avoids), and never treat the result as the owner of
    /// the address unless `email_verified` and `is_active` say so.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Validation`] for an address that is not one,
    /// [`crate::Error::Unavailable`] when the store is down.
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let normalized = crate::user::normalize_email(email)?;
        Ok(self.inner.store.find_user_by_email(&normalized).await?)
    }

    /// Where to send a browser after a sign-in: `requested` when it is
    /// exactly `redirects.frontend_url` or one of `redirects.allowed`;
    /// without a request, the front-end URL (or `None` when unset).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) `REDIRECT_NOT_ALLOWED` (422) for any other
    /// target.
    pub fn redirect_target(&self, requested: Option<&str>) -> Result<Option<String>> {
        let redirects = &self.inner.config.redirects;
        match requested {
            None => Ok(redirects.frontend_url.clone()),
            Some(url)
                if redirects.frontend_url.as_deref() == Some(url)
                    || redirects.allowed.iter().any(|a| a == url) =>
            {
                Ok(Some(url.to_owned()))
            }
            Some(_) => Err(crate::Error::validation(
                "redirect_to",
                "REDIRECT_NOT_ALLOWED",
                "redirect_to is not an allowed redirect target",
            )),
        }
    }

    /// The capabilities providers get, for a provider's own HTTP endpoints
    /// (e.g. the one that mails a magic link) outside
    /// [`Provider::authenticate`](crate::Provider::authenticate).
    pub fn provider_cx(&self) -> ProviderCx<'_> {
        ProviderCx::new(self)
    }

    /// Asks the before-hooks about `action`; the first veto wins.
    pub(crate) async fn ask(&self, action: crate::Action) -> Result<(), crate::Veto> {
        self.inner.hooks.before(action).await
    }

    pub(crate) async fn emit(&self, event: Event) {
        if !self.inner.hooks.is_empty() {
            self.inner.hooks.after(event).await;
        }
    }
}

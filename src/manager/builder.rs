use std::sync::Arc;

use super::{AuthManager, Inner};
use crate::{
    clock::{Clock, SystemClock},
    config::AuthConfig,
    email::{DefaultTemplates, EmailSender, EmailTemplates},
    error::{Error, Result},
    hooks::{Hook, Hooks},
    password::{PasswordHasher, PasswordPolicy},
    provider::{Provider, ProviderRegistry},
    store::{MemoryStore, Store},
    token::JwtKeys,
};

/// Builds an [`AuthManager`]; [`build`](Self::build) validates everything
/// once and returns an error instead of panicking.
///
/// ```
/// use portcullis::{AuthConfig, AuthManager, MemoryStore, Secret};
///
/// let mut config = AuthConfig::default();
/// config.jwt.secret = Some(Secret::new("a-secret-of-at-least-32-bytes!!!"));
/// let manager = AuthManager::builder(config)
///     .store(MemoryStore::new())
///     .build()
///     .expect("valid configuration");
/// # let _ = manager;
/// ```
#[derive(Debug)]
pub struct AuthManagerBuilder {
    config: AuthConfig,
    store: Option<Arc<dyn Store>>,
    providers: Vec<crate::provider::Registered>,
    hooks: Hooks,
    email: Option<Arc<dyn EmailSender>>,
    templates: Arc<dyn EmailTemplates>,
    clock: Arc<dyn Clock>,
}

impl AuthManagerBuilder {
    pub(super) fn new(config: AuthConfig) -> Self {
        Self {
            config,
            store: None,
            providers: Vec::new(),
            hooks: Hooks::default(),
            email: None,
            templates: Arc::new(DefaultTemplates),
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `store` (default: a new [`MemoryStore`]).
    pub fn store(self, store: impl Store) -> Self {
        self.store_arc(Arc::new(store))
    }

    /// Uses a shared store.
    pub fn store_arc(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Registers a provider; ids must be unique.
    pub fn provider(mut self, provider: impl Provider) -> Self {
        let provider = Arc::new(provider);
        self.providers.push((provider.clone(), provider));
        self
    }

    /// Adds a hook; hooks run in the order added.
    pub fn hook(mut self, hook: impl Hook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Sends email through `sender` (no email is sent without one).
    pub fn email_sender(mut self, sender: impl EmailSender) -> Self {
        self.email = Some(Arc::new(sender));
        self
    }

    /// Renders emails with `templates` (default: [`DefaultTemplates`]).
    pub fn email_templates(mut self, templates: impl EmailTemplates) -> Self {
        self.templates = Arc::new(templates);
        self
    }

    /// Reads time from `clock` (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Validates the configuration and builds the manager.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a missing or short JWT secret, duplicate
    /// provider ids, invalid Argon2 parameters, a malformed public URL, no
    /// token transport, cookie-only mode without cookies, or a zero session
    /// lifetime.
    pub fn build(self) -> Result<AuthManager> {
        let config = self.config;
        let policy = PasswordPolicy::new(&config.password);
        let mut providers = ProviderRegistry::default();
        for provider in self.providers {
            providers.register(provider)?;
        }
        if let Some(url) = &config.public_url {
            validate_origin_url(url, "public_url")?;
        }
        for url in config
            .redirects
            .frontend_url
            .iter()
            .chain(&config.redirects.allowed)
            .chain(&config.email.reset_password_url)
        {
            validate_origin_url(url, "redirects")?;
        }
        for origin in &config.transport.cookie.allowed_origins {
            validate_origin_url(origin, "transport.cookie.allowed_origins")?;
        }
        if !config.transport.bearer && !config.transport.cookies {
            return Err(Error::Config(
                "enable at least one token transport (bearer or cookies)".into(),
            ));
        }
        if config.transport.cookie_only && !config.transport.cookies {
            return Err(Error::Config(
                "transport.cookie_only needs cookie transport (transport.cookies)".into(),
            ));
        }
        if config.refresh.session_ttl_secs == 0
            || config.refresh.session_ttl_secs > 10 * 365 * 86400
        {
            return Err(Error::Config(
                "refresh.session_ttl_secs must be between 1 second and 10 years".into(),
            ));
        }
        if config.password.min_chars == 0 || config.password.max_bytes < config.password.min_chars {
            return Err(Error::Config(
                "password.min_chars must be positive and not above password.max_bytes".into(),
            ));
        }
        let p = &config.password;
        if p.max_concurrent_hashes > 1024 || p.memory_kib > 1024 * 1024 || p.iterations > 64 {
            return Err(Error::Config(
                "password: max_concurrent_hashes ≤ 1024, memory_kib ≤ 1 GiB, iterations ≤ 64"
                    .into(),
            ));
        }
        let jwt = &config.jwt;
        if jwt.access_ttl_secs > 7 * 86400
            || jwt.leeway_secs > 300
            || jwt.verified_cache_size > 1_000_000
        {
            return Err(Error::Config(
                "jwt: access_ttl_secs ≤ 7 days, leeway_secs ≤ 300, verified_cache_size ≤ 1,000,000"
                    .into(),
            ));
        }
        if config.refresh.reuse_grace_secs > 300 {
            return Err(Error::Config(
                "refresh.reuse_grace_secs must be ≤ 300".into(),
            ));
        }
        if !config.transport.cookie.refresh_path.starts_with('/') {
            return Err(Error::Config(
                "transport.cookie.refresh_path must start with `/`".into(),
            ));
        }
        if self.email.is_some() && config.public_url.is_none() {
            return Err(Error::Config(
                "public_url is required with an email sender: it is the base of every emailed link"
                    .into(),
            ));
        }
        let e = &config.email;
        let ttls = [
            e.verify_email_ttl_secs,
            e.reset_password_ttl_secs,
            e.change_email_ttl_secs,
            e.delete_account_ttl_secs,
        ];
        if ttls.iter().any(|t| *t == 0 || *t > 30 * 86400) {
            return Err(Error::Config(
                "email.*_ttl_secs must be between 1 second and 30 days".into(),
            ));
        }
        if config.http.max_body_bytes == 0 {
            return Err(Error::Config("http.max_body_bytes must be positive".into()));
        }
        let jwt = JwtKeys::from_config(&config.jwt)?;
        let hasher = PasswordHasher::new(&config.password)?;
        Ok(AuthManager {
            inner: Arc::new(Inner {
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                providers,
                hooks: self.hooks,
                email: self.email,
                templates: self.templates,
                deliveries: Arc::default(),
                clock: self.clock,
                jwt,
                hasher,
                policy,
                config,
            }),
        })
    }
}

fn validate_origin_url(url: &str, what: &str) -> Result<()> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .parse::<poem::http::Uri>()
            .is_ok_and(|u| u.host().is_some());
    if ok {
        Ok(())
    } else {
        Err(Error::Config(
            format!("{what}: `{url}` is not an http(s) URL").into(),
        ))
    }
}

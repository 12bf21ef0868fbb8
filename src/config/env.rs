//! Configuration from `PORTCULLIS_*` environment variables.
//!
//! [`AuthConfig::from_env`] reads the variables that make up an
//! [`AuthConfig`]; [`Env`] reads them from any source (a map in tests, a
//! secrets manager) and holds the companions an app needs next to the
//! config: the superuser to ensure at start, the MongoDB store settings and
//! the SMTP sender. What stays in the app: the listen address, connecting
//! the store, the providers (`portcullis_oauth::providers_from_env` reads
//! the OAuth ones) and the routes.
//!
//! # The variables
//!
//! Unset (or empty) variables keep [`AuthConfig::default`]'s values. Flags
//! take `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off` (any case);
//! lists are comma-separated, blanks ignored.
//!
//! | Variable | Sets |
//! |---|---|
//! | `PORTCULLIS_PUBLIC_URL` | [`public_url`](AuthConfig::public_url): an http(s) URL, the base of emailed links and the CSRF origin |
//! | `PORTCULLIS_JWT_SECRET` | [`jwt.secret`](super::JwtConfig::secret): the HS256 secret, 32 bytes or more; with an asymmetric algorithm it only verifies older HS256 tokens |
//! | `PORTCULLIS_JWT_ALGORITHM` | `HS256` (default), `RS256` or `EdDSA`: with the last two, access tokens are signed with [`jwt.keys`](super::JwtConfig::keys) and published at `/.well-known/jwks.json` |
//! | `PORTCULLIS_JWT_KEY_FILE` | the PEM private key (PKCS#8, or PKCS#1 for RSA) that signs; required with `RS256` / `EdDSA` unless [`Env::ephemeral_keys`] is on |
//! | `PORTCULLIS_JWT_OLD_KEY_FILES` | PEM keys (public or private) of the same algorithm that still verify, for a rotation |
//! | `PORTCULLIS_REQUIRE_VERIFIED_EMAIL` | flag: [`accounts.require_verified_email`](super::AccountsConfig::require_verified_email) |
//! | `PORTCULLIS_HARD_DELETE` | flag: [`accounts.hard_delete`](super::AccountsConfig::hard_delete) |
//! | `PORTCULLIS_COOKIES` | flag: [`transport.cookies`](super::TransportConfig::cookies) (bearer stays on) |
//! | `PORTCULLIS_COOKIE_ONLY` | flag: [`transport.cookie_only`](super::TransportConfig::cookie_only); on, it turns cookie transport on too |
//! | `PORTCULLIS_COOKIE_SECURE` | flag: [`transport.cookie.secure`](super::CookieConfig::secure) (`0` for local plain http) |
//! | `PORTCULLIS_RATE_LIMITS` | flag: [`rate_limits.enabled`](super::RateLimitConfig::enabled) (`off` for load tests) |
//! | `PORTCULLIS_TRUSTED_PROXIES` | list of IP addresses: [`rate_limits.trusted_proxies`](super::RateLimitConfig::trusted_proxies) |
//! | `PORTCULLIS_FRONTEND_URL` | [`redirects.frontend_url`](super::RedirectConfig::frontend_url) |
//! | `PORTCULLIS_ALLOWED_REDIRECTS` | list of URLs: [`redirects.allowed`](super::RedirectConfig::allowed) |
//! | `PORTCULLIS_PASSKEY_RP_ID` | [`mfa.passkeys.rp_id`](super::PasskeyConfig::rp_id): the domain passkeys are bound to (`example.com`, `localhost`); unset, passkeys are off |
//! | `PORTCULLIS_PASSKEY_ORIGINS` | list of URLs: [`mfa.passkeys.origins`](super::PasskeyConfig::origins), the pages allowed to use them (default: `PORTCULLIS_PUBLIC_URL`) |
//! | `PORTCULLIS_MFA_KEYS` | list of `id:key` pairs, newest first: [`mfa.sealing_keys`](super::MfaConfig::sealing_keys), each key 32 random bytes in URL-safe base64 (`openssl rand -base64 32 \| tr '+/' '-_'`); a random key unless set, with [`Env::ephemeral_keys`] |
//!
//! Companions, read by [`Env`]:
//!
//! | Variable | Read by |
//! |---|---|
//! | `PORTCULLIS_SUPERUSER_EMAIL` + `PORTCULLIS_SUPERUSER_PASSWORD` | [`Env::superuser`]: both or neither, for [`AuthManager::ensure_superuser`](crate::AuthManager::ensure_superuser) |
//! | `PORTCULLIS_MONGODB_URI`, `PORTCULLIS_MONGODB_DATABASE` | `Env::mongo` (feature `mongodb`): a [`MongoConfig`](crate::MongoConfig) for `MongoStore::connect` |
//! | `PORTCULLIS_SMTP_URL`, `PORTCULLIS_SMTP_FROM` | `Env::smtp_sender` (feature `smtp`): an [`SmtpSender`](crate::SmtpSender) |

use std::{fmt, net::IpAddr};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;

use super::{AuthConfig, JwtAlgorithm, JwtConfig, JwtKeyConfig, SealingKeyConfig};
use crate::{
    error::{Error, Result},
    factor::Sealer,
    token::{JwtKeys, Secret},
};

/// The default `From` address of [`Env::smtp_sender`].
pub const DEFAULT_SMTP_FROM: &str = "Portcullis <no-reply@localhost>";

/// Reads `PORTCULLIS_*` variables through a lookup function: the process
/// environment ([`Env::process`]) or any other source ([`Env::from_fn`]).
///
/// ```
/// use std::collections::HashMap;
/// use portcullis::env::Env;
///
/// let vars = HashMap::from([
///     ("PORTCULLIS_JWT_SECRET", "a-secret-of-at-least-32-bytes!!!"),
///     ("PORTCULLIS_COOKIES", "true"),
/// ]);
/// let config = Env::from_fn(|name| vars.get(name).map(|v| v.to_string())).auth_config()?;
/// assert!(config.transport.cookies);
///
/// let err = Env::from_fn(|name| {
///     (name == "PORTCULLIS_JWT_ALGORITHM").then(|| "HS512".to_string())
/// })
/// .auth_config()
/// .unwrap_err();
/// assert!(err.to_string().contains("PORTCULLIS_JWT_ALGORITHM=HS512: use HS256, RS256 or EdDSA"));
/// # Ok::<(), portcullis::Error>(())
/// ```
pub struct Env<F = fn(&str) -> Option<String>> {
    var: F,
    ephemeral_keys: bool,
}

impl<F> fmt::Debug for Env<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("ephemeral_keys", &self.ephemeral_keys)
            .finish_non_exhaustive()
    }
}

fn process_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Env {
    /// The process environment. A variable that is not valid Unicode counts
    /// as unset.
    pub fn process() -> Self {
        Self::from_fn(process_var)
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Variables looked up by `var` (`None`: unset).
    pub fn from_fn(var: F) -> Self {
        Self {
            var,
            ephemeral_keys: false,
        }
    }

    /// Off (the default), a missing signing key is left to the builder,
    /// which refuses to start without one; `PORTCULLIS_JWT_ALGORITHM=RS256`
    /// or `EdDSA` without `PORTCULLIS_JWT_KEY_FILE` is an error. On (for a
    /// single-node demo or tests), [`auth_config`](Self::auth_config)
    /// generates a random HS256 secret or asymmetric key instead, with a
    /// warning: tokens then die with the process.
    #[must_use]
    pub fn ephemeral_keys(mut self, on: bool) -> Self {
        self.ephemeral_keys = on;
        self
    }

    /// A variable's value; empty or blank counts as unset.
    fn get(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|v| !v.trim().is_empty())
    }

    /// A flag variable.
    fn flag(&self, name: &str) -> Result<Option<bool>> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(bad(
                name,
                &value,
                "use 1, true, yes, on or 0, false, no, off",
            )),
        }
    }

    /// A URL variable, checked like the builder checks it.
    fn url(&self, name: &str) -> Result<Option<String>> {
        self.get(name)
            .map(|url| {
                let url = url.trim().to_owned();
                check_url(name, &url)?;
                Ok(url)
            })
            .transpose()
    }

    /// The [`AuthConfig`] the variables describe (see the
    /// [module docs](self) for the table): unset variables keep
    /// [`AuthConfig::default`]'s values. Key files are read and parsed now.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable and what is wrong with its
    /// value (a secret's value is never repeated).
    pub fn auth_config(&self) -> Result<AuthConfig> {
        let mut config = AuthConfig {
            public_url: self.url("PORTCULLIS_PUBLIC_URL")?,
            ..AuthConfig::default()
        };
        config.jwt.secret = match self.get("PORTCULLIS_JWT_SECRET") {
            Some(secret) if secret.len() < MIN_SECRET_BYTES => {
                return Err(Error::Config(
                    format!(
                        "PORTCULLIS_JWT_SECRET is {} bytes: an HS256 secret needs at least \
                         {MIN_SECRET_BYTES}",
                        secret.len()
                    )
                    .into(),
                ))
            }
            Some(secret) => Some(Secret::new(secret)),
            None => None,
        };
        config.jwt.keys = self.jwt_keys()?;
        if config.jwt.secret.is_none() && config.jwt.keys.is_empty() && self.ephemeral_keys {
            tracing::warn!(
                "PORTCULLIS_JWT_SECRET is not set: using a random secret; tokens die with this process"
            );
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            config.jwt.secret = Some(Secret::new(URL_SAFE_NO_PAD.encode(bytes)));
        }
        if let Some(on) = self.flag("PORTCULLIS_REQUIRE_VERIFIED_EMAIL")? {
            config.accounts.require_verified_email = on;
        }
        if let Some(on) = self.flag("PORTCULLIS_HARD_DELETE")? {
            config.accounts.hard_delete = on;
        }
        if let Some(on) = self.flag("PORTCULLIS_COOKIES")? {
            config.transport.cookies = on;
        }
        if let Some(on) = self.flag("PORTCULLIS_COOKIE_ONLY")? {
            config.transport.cookie_only = on;
            config.transport.cookies |= on;
        }
        if let Some(on) = self.flag("PORTCULLIS_COOKIE_SECURE")? {
            config.transport.cookie.secure = on;
        }
        if let Some(on) = self.flag("PORTCULLIS_RATE_LIMITS")? {
            config.rate_limits.enabled = on;
        }
        if let Some(proxies) = self.get("PORTCULLIS_TRUSTED_PROXIES") {
            let proxies = list(&proxies);
            if let Some(wrong) = proxies.iter().find(|p| p.parse::<IpAddr>().is_err()) {
                return Err(bad(
                    "PORTCULLIS_TRUSTED_PROXIES",
                    wrong,
                    "not an IP address (list proxy addresses, comma-separated)",
                ));
            }
            config.rate_limits.trusted_proxies = proxies;
        }
        config.redirects.frontend_url = self.url("PORTCULLIS_FRONTEND_URL")?;
        if let Some(allowed) = self.get("PORTCULLIS_ALLOWED_REDIRECTS") {
            let allowed = list(&allowed);
            for url in &allowed {
                check_url("PORTCULLIS_ALLOWED_REDIRECTS", url)?;
            }
            config.redirects.allowed = allowed;
        }
        config.mfa.sealing_keys = self.sealing_keys()?;
        config.mfa.passkeys.rp_id = self
            .get("PORTCULLIS_PASSKEY_RP_ID")
            .map(|id| id.trim().to_owned());
        if let Some(origins) = self.get("PORTCULLIS_PASSKEY_ORIGINS") {
            let origins = list(&origins);
            for url in &origins {
                check_url("PORTCULLIS_PASSKEY_ORIGINS", url)?;
            }
            config.mfa.passkeys.origins = origins;
        }
        Ok(config)
    }

    /// `PORTCULLIS_MFA_KEYS`: `id:key` pairs, newest first, each key 32
    /// bytes of URL-safe base64 (checked now); a random one when unset and
    /// [`Env::ephemeral_keys`] is on (enrolled factors then die with the
    /// process).
    fn sealing_keys(&self) -> Result<Vec<SealingKeyConfig>> {
        const KEYS: &str = "PORTCULLIS_MFA_KEYS";
        let Some(value) = self.get(KEYS) else {
            if self.ephemeral_keys {
                tracing::warn!(
                    "{KEYS} is not set: sealing TOTP secrets with a random key; enrolled factors die with this process"
                );
                return Ok(vec![SealingKeyConfig::new(
                    "ephemeral",
                    Sealer::generate_key(),
                )]);
            }
            return Ok(Vec::new());
        };
        let mut keys = Vec::new();
        for pair in list(&value) {
            let Some((id, key)) = pair.split_once(':') else {
                return Err(Error::Config(
                    format!("{KEYS}: use `id:key` pairs, comma-separated").into(),
                ));
            };
            keys.push(SealingKeyConfig::new(id.trim(), Secret::new(key.trim())));
        }
        // Every key checked now, the value never repeated.
        match Sealer::new(keys.iter().map(|k| (k.id.clone(), k.key.clone()))) {
            Ok(_) => {}
            Err(Error::Config(why)) => return Err(Error::Config(format!("{KEYS}: {why}").into())),
            Err(err) => return Err(err),
        }
        Ok(keys)
    }

    /// `PORTCULLIS_JWT_ALGORITHM`, `PORTCULLIS_JWT_KEY_FILE` and
    /// `PORTCULLIS_JWT_OLD_KEY_FILES`: asymmetric keys, newest first, each
    /// one parsed so a bad file is named now.
    fn jwt_keys(&self) -> Result<Vec<JwtKeyConfig>> {
        const ALGORITHM: &str = "PORTCULLIS_JWT_ALGORITHM";
        const KEY_FILE: &str = "PORTCULLIS_JWT_KEY_FILE";
        const OLD_KEY_FILES: &str = "PORTCULLIS_JWT_OLD_KEY_FILES";
        let algorithm = match self.get(ALGORITHM) {
            None => None,
            Some(value) => match value.trim() {
                "HS256" => None,
                "RS256" => Some(JwtAlgorithm::RS256),
                "EdDSA" => Some(JwtAlgorithm::EdDSA),
                _ => return Err(bad(ALGORITHM, &value, "use HS256, RS256 or EdDSA")),
            },
        };
        let Some(algorithm) = algorithm else {
            for name in [KEY_FILE, OLD_KEY_FILES] {
                if self.get(name).is_some() {
                    return Err(Error::Config(
                        format!("{name} is set but {ALGORITHM} is not RS256 or EdDSA: name the key's algorithm")
                            .into(),
                    ));
                }
            }
            return Ok(Vec::new());
        };
        let signing = match self.get(KEY_FILE) {
            Some(path) => {
                let key = JwtKeyConfig::private(algorithm, read_key(KEY_FILE, &path)?);
                check_keys(KEY_FILE, &path, std::slice::from_ref(&key))?;
                key
            }
            None if self.ephemeral_keys => {
                tracing::warn!(
                    "{KEY_FILE} is not set: using a random {algorithm:?} key; tokens die with this process"
                );
                JwtKeyConfig::generate(algorithm)?
            }
            None => {
                return Err(Error::Config(
                    format!(
                        "{ALGORITHM}={algorithm:?} needs {KEY_FILE}: the PEM private key that signs"
                    )
                    .into(),
                ))
            }
        };
        let mut keys = vec![signing];
        for path in list(&self.get(OLD_KEY_FILES).unwrap_or_default()) {
            let pem = read_key(OLD_KEY_FILES, &path)?;
            let key = if pem.contains("PRIVATE KEY") {
                JwtKeyConfig::private(algorithm, pem)
            } else {
                JwtKeyConfig::public(algorithm, pem)
            };
            keys.push(key);
            check_keys(OLD_KEY_FILES, &path, &keys)?;
        }
        Ok(keys)
    }

    /// `PORTCULLIS_SUPERUSER_EMAIL` and `PORTCULLIS_SUPERUSER_PASSWORD`:
    /// the superuser to create or promote at start with
    /// [`AuthManager::ensure_superuser`](crate::AuthManager::ensure_superuser).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when only one of the two is set.
    pub fn superuser(&self) -> Result<Option<(String, Secret)>> {
        const EMAIL: &str = "PORTCULLIS_SUPERUSER_EMAIL";
        const PASSWORD: &str = "PORTCULLIS_SUPERUSER_PASSWORD";
        let either = |set: &str, unset: &str| {
            Error::Config(
                format!(
                    "{set} is set but {unset} is not: set both to create or promote a superuser \
                     at start, or neither"
                )
                .into(),
            )
        };
        match (
            self.get(EMAIL),
            (self.var)(PASSWORD).filter(|p| !p.is_empty()),
        ) {
            (Some(email), Some(password)) => {
                Ok(Some((email.trim().to_owned(), Secret::new(password))))
            }
            (None, None) => Ok(None),
            (Some(_), None) => Err(either(EMAIL, PASSWORD)),
            (None, Some(_)) => Err(either(PASSWORD, EMAIL)),
        }
    }

    /// `PORTCULLIS_MONGODB_URI` (and `PORTCULLIS_MONGODB_DATABASE`, default
    /// `portcullis`): the settings for
    /// [`MongoStore::connect`](crate::MongoStore::connect), or `None` when
    /// the URI is unset (the app picks another store).
    #[cfg(feature = "mongodb")]
    pub fn mongo(&self) -> Option<crate::MongoConfig> {
        let uri = self.get("PORTCULLIS_MONGODB_URI")?;
        let mongo = crate::MongoConfig::new(uri.trim());
        Some(match self.get("PORTCULLIS_MONGODB_DATABASE") {
            Some(database) => mongo.with_database(database.trim()),
            None => mongo,
        })
    }

    /// `PORTCULLIS_SMTP_URL` (e.g. `smtp://127.0.0.1:2525`) and
    /// `PORTCULLIS_SMTP_FROM` (default [`DEFAULT_SMTP_FROM`]): an
    /// [`SmtpSender`](crate::SmtpSender), or `None` when the URL is unset
    /// (the app picks another sender, e.g. [`LogSender`](crate::LogSender)).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variables when the URL or the address
    /// is invalid.
    #[cfg(feature = "smtp")]
    pub fn smtp_sender(&self) -> Result<Option<crate::SmtpSender>> {
        let Some(url) = self.get("PORTCULLIS_SMTP_URL") else {
            return Ok(None);
        };
        let from = self
            .get("PORTCULLIS_SMTP_FROM")
            .unwrap_or_else(|| DEFAULT_SMTP_FROM.to_owned());
        crate::SmtpSender::from_url(url.trim(), from.trim())
            .map(Some)
            .map_err(|err| {
                let cause = std::error::Error::source(&err)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| err.to_string());
                // The URL may carry a password: name it, never repeat it.
                Error::Config(
                    format!(
                        "PORTCULLIS_SMTP_URL or PORTCULLIS_SMTP_FROM (`{from}`) is invalid: {cause}"
                    )
                    .into(),
                )
            })
    }
}

impl AuthConfig {
    /// The configuration the process environment's `PORTCULLIS_*`
    /// variables describe; unset variables keep the defaults. The variables
    /// are listed in [`portcullis::env`](crate::env); the OAuth providers'
    /// own ones are read by `portcullis_oauth::providers_from_env`.
    ///
    /// ```no_run
    /// use portcullis::{AuthConfig, AuthManager, MemoryStore};
    ///
    /// let manager = AuthManager::builder(AuthConfig::from_env()?)
    ///     .store(MemoryStore::new())
    ///     .build()?;
    /// # Ok::<(), portcullis::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable and the problem with its value,
    /// e.g. `PORTCULLIS_JWT_ALGORITHM=HS512: use HS256, RS256 or EdDSA`.
    pub fn from_env() -> Result<Self> {
        Env::process().auth_config()
    }

    /// [`from_env`](Self::from_env) with variables looked up by `var`
    /// (`None`: unset), e.g. from a map in tests.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        Env::from_fn(var).auth_config()
    }
}

/// The shortest HS256 secret the builder accepts.
const MIN_SECRET_BYTES: usize = 32;

/// `NAME=value: problem`.
fn bad(name: &str, value: &str, problem: &str) -> Error {
    Error::Config(format!("{name}={}: {problem}", value.trim()).into())
}

fn check_url(name: &str, url: &str) -> Result<()> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .parse::<poem::http::Uri>()
            .is_ok_and(|u| u.host().is_some());
    if ok {
        Ok(())
    } else {
        Err(bad(name, url, "not an http(s) URL with a host"))
    }
}

fn read_key(name: &str, path: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|err| Error::Config(format!("{name}: cannot read {path}: {err}").into()))
}

/// Parses `keys` (the last one just read from `path`) as the builder will.
fn check_keys(name: &str, path: &str, keys: &[JwtKeyConfig]) -> Result<()> {
    let jwt = JwtConfig {
        keys: keys.to_vec(),
        ..JwtConfig::default()
    };
    match JwtKeys::from_config(&jwt) {
        Ok(_) => Ok(()),
        Err(Error::Config(problem)) => {
            Err(Error::Config(format!("{name}: {path}: {problem}").into()))
        }
        Err(err) => Err(err),
    }
}

/// A comma-separated list, trimmed, without empty items.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::from_fn(move |name| vars.get(name).cloned())
    }

    fn config(vars: &[(&str, &str)]) -> AuthConfig {
        env(vars).auth_config().unwrap()
    }

    /// The config error for these variables.
    fn error(vars: &[(&str, &str)]) -> String {
        match env(vars).auth_config() {
            Err(Error::Config(message)) => message.into_owned(),
            other => panic!("expected a config error for {vars:?}, got {other:?}"),
        }
    }

    fn assert_names(message: &str, name: &str) {
        assert!(message.contains(name), "{message:?} should name {name}");
    }

    const SECRET: &str = "a-secret-of-at-least-32-bytes!!!";

    #[test]
    fn nothing_set_is_the_default() {
        let config = config(&[]);
        let default = AuthConfig::default();
        assert_eq!(config.public_url, default.public_url);
        assert!(config.jwt.secret.is_none());
        assert!(config.jwt.keys.is_empty());
        assert_eq!(
            config.accounts.require_verified_email,
            default.accounts.require_verified_email
        );
        assert_eq!(config.accounts.hard_delete, default.accounts.hard_delete);
        assert_eq!(config.transport.cookies, default.transport.cookies);
        assert_eq!(config.transport.cookie_only, default.transport.cookie_only);
        assert_eq!(
            config.transport.cookie.secure,
            default.transport.cookie.secure
        );
        assert_eq!(config.rate_limits.enabled, default.rate_limits.enabled);
        assert!(config.rate_limits.trusted_proxies.is_empty());
        assert!(config.redirects.frontend_url.is_none());
        assert!(config.redirects.allowed.is_empty());
        // Empty values count as unset.
        let config = super::tests::config(&[
            ("PORTCULLIS_COOKIES", ""),
            ("PORTCULLIS_PUBLIC_URL", " "),
            ("PORTCULLIS_JWT_ALGORITHM", ""),
        ]);
        assert!(!config.transport.cookies);
        assert!(config.public_url.is_none());
    }

    #[test]
    fn public_and_redirect_urls() {
        let config = config(&[
            ("PORTCULLIS_PUBLIC_URL", "https://api.example.com"),
            (
                "PORTCULLIS_FRONTEND_URL",
                "https://app.example.com/signed-in",
            ),
            (
                "PORTCULLIS_ALLOWED_REDIRECTS",
                "https://a.example.com/x, ,https://b.example.com",
            ),
        ]);
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(
            config.redirects.frontend_url.as_deref(),
            Some("https://app.example.com/signed-in")
        );
        assert_eq!(
            config.redirects.allowed,
            ["https://a.example.com/x", "https://b.example.com"]
        );
        for name in [
            "PORTCULLIS_PUBLIC_URL",
            "PORTCULLIS_FRONTEND_URL",
            "PORTCULLIS_ALLOWED_REDIRECTS",
        ] {
            let message = error(&[(name, "ftp://example.com")]);
            assert_eq!(
                message,
                format!("{name}=ftp://example.com: not an http(s) URL with a host")
            );
        }
        assert_names(
            &error(&[(
                "PORTCULLIS_ALLOWED_REDIRECTS",
                "https://ok.example.com,/relative",
            )]),
            "PORTCULLIS_ALLOWED_REDIRECTS=/relative",
        );
    }

    #[test]
    fn jwt_secret() {
        let config = config(&[("PORTCULLIS_JWT_SECRET", SECRET)]);
        assert_eq!(config.jwt.secret.as_ref().map(Secret::expose), Some(SECRET));
        let message = error(&[("PORTCULLIS_JWT_SECRET", "short-secret")]);
        assert_names(&message, "PORTCULLIS_JWT_SECRET");
        assert!(message.contains("at least 32"), "{message}");
        assert!(
            !message.contains("short-secret"),
            "the secret leaked: {message}"
        );
    }

    #[test]
    fn mfa_keys_are_pairs_checked_at_start_and_random_only_when_ephemeral() {
        assert!(env(&[]).auth_config().unwrap().mfa.sealing_keys.is_empty());
        let random = env(&[]).ephemeral_keys(true).auth_config().unwrap();
        assert_eq!(random.mfa.sealing_keys.len(), 1);
        let (new, old) = (Sealer::generate_key(), Sealer::generate_key());
        let value = format!("k2:{}, k1:{}", new.expose(), old.expose());
        let config = env(&[("PORTCULLIS_MFA_KEYS", &value)])
            .ephemeral_keys(true)
            .auth_config()
            .unwrap();
        let ids: Vec<&str> = config
            .mfa
            .sealing_keys
            .iter()
            .map(|k| k.id.as_str())
            .collect();
        assert_eq!(ids, ["k2", "k1"]);
        assert_eq!(config.mfa.sealing_keys[1].key.expose(), old.expose());
        for wrong in [
            "k1",
            "k1:short",
            &format!("k1:{},k1:{}", new.expose(), old.expose()),
        ] {
            let err = env(&[("PORTCULLIS_MFA_KEYS", wrong)])
                .auth_config()
                .unwrap_err()
                .to_string();
            assert!(err.contains("PORTCULLIS_MFA_KEYS"), "{err}");
            assert!(!err.contains(new.expose()), "{err}");
        }
    }

    #[test]
    fn passkeys_are_off_unless_an_rp_id_is_set() {
        assert!(config(&[]).mfa.passkeys.rp_id.is_none());
        let config = config(&[
            ("PORTCULLIS_PASSKEY_RP_ID", " localhost "),
            (
                "PORTCULLIS_PASSKEY_ORIGINS",
                "http://localhost:8000, https://app.localhost",
            ),
        ]);
        assert_eq!(config.mfa.passkeys.rp_id.as_deref(), Some("localhost"));
        assert_eq!(
            config.mfa.passkeys.origins,
            ["http://localhost:8000", "https://app.localhost"]
        );
        assert_names(
            &error(&[("PORTCULLIS_PASSKEY_ORIGINS", "localhost:8000")]),
            "PORTCULLIS_PASSKEY_ORIGINS",
        );
    }

    #[test]
    fn ephemeral_keys_fill_in_only_what_is_missing() {
        let config = env(&[]).ephemeral_keys(true).auth_config().unwrap();
        let secret = config.jwt.secret.expect("a random secret");
        assert!(secret.expose().len() >= MIN_SECRET_BYTES);
        let again = env(&[]).ephemeral_keys(true).auth_config().unwrap();
        assert_ne!(
            again.jwt.secret.as_ref().map(Secret::expose),
            Some(secret.expose())
        );
        let config = env(&[("PORTCULLIS_JWT_SECRET", SECRET)])
            .ephemeral_keys(true)
            .auth_config()
            .unwrap();
        assert_eq!(config.jwt.secret.as_ref().map(Secret::expose), Some(SECRET));
        let config = env(&[("PORTCULLIS_JWT_ALGORITHM", "EdDSA")])
            .ephemeral_keys(true)
            .auth_config()
            .unwrap();
        assert!(
            config.jwt.secret.is_none(),
            "an asymmetric key needs no secret"
        );
        assert_eq!(config.jwt.keys.len(), 1);
        assert_eq!(config.jwt.keys[0].algorithm, JwtAlgorithm::EdDSA);
        assert!(JwtKeys::from_config(&config.jwt).is_ok());
    }

    #[test]
    fn jwt_algorithm() {
        assert!(config(&[("PORTCULLIS_JWT_ALGORITHM", "HS256")])
            .jwt
            .keys
            .is_empty());
        assert_eq!(
            error(&[("PORTCULLIS_JWT_ALGORITHM", "HS512")]),
            "PORTCULLIS_JWT_ALGORITHM=HS512: use HS256, RS256 or EdDSA"
        );
        // Without ephemeral keys an asymmetric algorithm needs its key file.
        let message = error(&[("PORTCULLIS_JWT_ALGORITHM", "RS256")]);
        assert_names(&message, "PORTCULLIS_JWT_KEY_FILE");
        assert_names(&message, "PORTCULLIS_JWT_ALGORITHM=RS256");
        // Key files without an algorithm say which one is missing.
        assert_names(
            &error(&[("PORTCULLIS_JWT_KEY_FILE", "/nonexistent.pem")]),
            "PORTCULLIS_JWT_ALGORITHM",
        );
    }

    /// A temporary directory with PEM files, removed on drop.
    struct Keys(std::path::PathBuf);

    impl Keys {
        fn new(test: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("portcullis-env-{test}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, name: &str, pem: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, pem).unwrap();
            path.to_string_lossy().into_owned()
        }
    }

    impl Drop for Keys {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn private_pem(algorithm: JwtAlgorithm) -> String {
        let key = JwtKeyConfig::generate(algorithm).unwrap();
        key.private_key_pem.unwrap().expose().to_owned()
    }

    #[test]
    fn jwt_key_files() {
        let dir = Keys::new("key-files");
        let new = dir.write("new.pem", &private_pem(JwtAlgorithm::EdDSA));
        let old = dir.write("old.pem", &private_pem(JwtAlgorithm::EdDSA));
        let rsa = dir.write("rsa.pem", &private_pem(JwtAlgorithm::RS256));
        let junk = dir.write("junk.pem", "not a key");
        let config = config(&[
            ("PORTCULLIS_JWT_ALGORITHM", "EdDSA"),
            ("PORTCULLIS_JWT_KEY_FILE", &new),
            ("PORTCULLIS_JWT_OLD_KEY_FILES", &format!("{old}, ")),
        ]);
        assert_eq!(config.jwt.keys.len(), 2);
        assert!(config
            .jwt
            .keys
            .iter()
            .all(|k| k.algorithm == JwtAlgorithm::EdDSA));
        assert!(JwtKeys::from_config(&config.jwt).is_ok());

        let message = error(&[
            ("PORTCULLIS_JWT_ALGORITHM", "EdDSA"),
            ("PORTCULLIS_JWT_KEY_FILE", &junk),
        ]);
        assert!(
            message.starts_with(&format!("PORTCULLIS_JWT_KEY_FILE: {junk}: ")),
            "{message}"
        );
        let message = error(&[
            ("PORTCULLIS_JWT_ALGORITHM", "EdDSA"),
            ("PORTCULLIS_JWT_KEY_FILE", &rsa),
        ]);
        assert_names(&message, "PORTCULLIS_JWT_KEY_FILE");
        let message = error(&[
            ("PORTCULLIS_JWT_ALGORITHM", "EdDSA"),
            ("PORTCULLIS_JWT_KEY_FILE", &new),
            ("PORTCULLIS_JWT_OLD_KEY_FILES", &format!("{old},{junk}")),
        ]);
        assert!(
            message.starts_with(&format!("PORTCULLIS_JWT_OLD_KEY_FILES: {junk}: ")),
            "{message}"
        );
        let missing = dir.0.join("missing.pem").to_string_lossy().into_owned();
        let message = error(&[
            ("PORTCULLIS_JWT_ALGORITHM", "RS256"),
            ("PORTCULLIS_JWT_KEY_FILE", &missing),
        ]);
        assert!(
            message.starts_with(&format!("PORTCULLIS_JWT_KEY_FILE: cannot read {missing}")),
            "{message}"
        );
    }

    #[test]
    fn flags() {
        type Field = fn(&AuthConfig) -> bool;
        let flags: [(&str, Field); 6] = [
            ("PORTCULLIS_REQUIRE_VERIFIED_EMAIL", |c| {
                c.accounts.require_verified_email
            }),
            ("PORTCULLIS_HARD_DELETE", |c| c.accounts.hard_delete),
            ("PORTCULLIS_COOKIES", |c| c.transport.cookies),
            ("PORTCULLIS_COOKIE_ONLY", |c| c.transport.cookie_only),
            ("PORTCULLIS_COOKIE_SECURE", |c| c.transport.cookie.secure),
            ("PORTCULLIS_RATE_LIMITS", |c| c.rate_limits.enabled),
        ];
        for (name, field) in flags {
            for on in ["1", "true", "Yes", " ON "] {
                assert!(field(&config(&[(name, on)])), "{name}={on}");
            }
            for off in ["0", "false", "NO", "off"] {
                assert!(!field(&config(&[(name, off)])), "{name}={off}");
            }
            assert_eq!(
                error(&[(name, "maybe")]),
                format!("{name}=maybe: use 1, true, yes, on or 0, false, no, off")
            );
        }
        // Cookie-only mode turns cookie transport on.
        let config = config(&[("PORTCULLIS_COOKIE_ONLY", "1")]);
        assert!(config.transport.cookies && config.transport.cookie_only);
    }

    #[test]
    fn trusted_proxies() {
        let config = config(&[("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.1, ::1,")]);
        assert_eq!(config.rate_limits.trusted_proxies, ["10.0.0.1", "::1"]);
        assert_eq!(
            error(&[("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.1,proxy.local")]),
            "PORTCULLIS_TRUSTED_PROXIES=proxy.local: not an IP address (list proxy addresses, \
             comma-separated)"
        );
    }

    #[test]
    fn superuser_needs_both_or_neither() {
        assert!(env(&[]).superuser().unwrap().is_none());
        let (email, password) = env(&[
            ("PORTCULLIS_SUPERUSER_EMAIL", "root@example.com"),
            ("PORTCULLIS_SUPERUSER_PASSWORD", "correct horse"),
        ])
        .superuser()
        .unwrap()
        .unwrap();
        assert_eq!(email, "root@example.com");
        assert_eq!(password.expose(), "correct horse");
        for (set, unset) in [
            (
                "PORTCULLIS_SUPERUSER_EMAIL",
                "PORTCULLIS_SUPERUSER_PASSWORD",
            ),
            (
                "PORTCULLIS_SUPERUSER_PASSWORD",
                "PORTCULLIS_SUPERUSER_EMAIL",
            ),
        ] {
            let message = match env(&[(set, "x")]).superuser() {
                Err(Error::Config(message)) => message.into_owned(),
                other => panic!("expected a config error, got {other:?}"),
            };
            assert!(
                message.starts_with(&format!("{set} is set but {unset} is not")),
                "{message}"
            );
        }
    }

    #[cfg(feature = "mongodb")]
    #[test]
    fn mongo_settings() {
        assert!(env(&[]).mongo().is_none());
        let mongo = env(&[("PORTCULLIS_MONGODB_URI", "mongodb://db.test:27017")])
            .mongo()
            .unwrap();
        assert_eq!(mongo.uri, "mongodb://db.test:27017");
        assert_eq!(mongo.database, crate::MongoConfig::new("x").database);
        let mongo = env(&[
            ("PORTCULLIS_MONGODB_URI", "mongodb://db.test:27017"),
            ("PORTCULLIS_MONGODB_DATABASE", "auth"),
        ])
        .mongo()
        .unwrap();
        assert_eq!(mongo.database, "auth");
    }

    #[cfg(feature = "smtp")]
    #[test]
    fn smtp_sender() {
        assert!(env(&[]).smtp_sender().unwrap().is_none());
        assert!(env(&[("PORTCULLIS_SMTP_URL", "smtp://127.0.0.1:2525")])
            .smtp_sender()
            .unwrap()
            .is_some());
        for vars in [
            &[("PORTCULLIS_SMTP_URL", "gopher://x")][..],
            &[
                ("PORTCULLIS_SMTP_URL", "smtp://127.0.0.1:2525"),
                ("PORTCULLIS_SMTP_FROM", "not an address"),
            ][..],
        ] {
            match env(vars).smtp_sender() {
                Err(Error::Config(message)) => assert_names(&message, "PORTCULLIS_SMTP_URL"),
                other => panic!("expected a config error for {vars:?}, got {other:?}"),
            }
        }
    }
}

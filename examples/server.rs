//! The Portcullis demo server: the whole API with every built-in provider,
//! Swagger UI at `/docs`, the spec at `/openapi.json`, and a small page at
//! `/demo` that signs in with cookies only (`server/page.rs`).
//!
//! ```sh
//! cargo run --release --example server
//! ```
//!
//! With no configuration it runs on the embedded defaults (in-memory store,
//! emails printed to the log). Environment:
//!
//! | Variable | Meaning |
//! |---|---|
//! | `PORTCULLIS_ADDR` | listen address (default `127.0.0.1:8000`) |
//! | `PORTCULLIS_PUBLIC_URL` | public base URL, for links in emails and the CSRF origin (default `http://` + the listen address, `localhost` for a wildcard host) |
//! | `PORTCULLIS_JWT_SECRET` | HS256 secret, 32+ bytes (random per start when unset); with `PORTCULLIS_JWT_ALGORITHM` it only verifies older HS256 tokens |
//! | `PORTCULLIS_JWT_ALGORITHM` | `RS256` or `EdDSA`: sign access tokens with an asymmetric key and publish it at `/.well-known/jwks.json` (default `HS256`) |
//! | `PORTCULLIS_JWT_KEY_FILE` | PEM private key (PKCS#8, or PKCS#1 for RSA) that signs; random per start when unset |
//! | `PORTCULLIS_JWT_OLD_KEY_FILES` | comma-separated PEM keys (public or private) of the same algorithm that still verify, for a rotation |
//! | `PORTCULLIS_SMTP_URL` | e.g. `smtp://127.0.0.1:2525`: send real mail |
//! | `PORTCULLIS_SMTP_FROM` | sender address (default `Portcullis <no-reply@localhost>`) |
//! | `PORTCULLIS_REQUIRE_VERIFIED_EMAIL` | `1`/`true`: refuse sign-in until verified |
//! | `PORTCULLIS_COOKIES` | `1`/`true`: cookie transport on (bearer stays on) |
//! | `PORTCULLIS_COOKIE_ONLY` | `1`/`true`: cookie-only mode (turns cookie transport on): no token in any response body or redirect URL |
//! | `PORTCULLIS_COOKIE_SECURE` | `0`/`false`: drop the `Secure` flag, for local plain http |
//! | `PORTCULLIS_MONGODB_URI` | use MongoStore on this server (database `portcullis`, or `PORTCULLIS_MONGODB_DATABASE`); start-up fails if it cannot be reached |
//! | `PORTCULLIS_SUPERUSER_EMAIL` + `PORTCULLIS_SUPERUSER_PASSWORD` | at start, make sure this superuser exists: an existing user with a verified email is promoted (and activated; password unchanged; an unverified one is refused and the server does not start), else one is created with this password and a verified email; set both or neither |
//! | `PORTCULLIS_HARD_DELETE` | `1`/`true`: account deletion removes the user (default: deactivate and keep the record) |
//! | `PORTCULLIS_RATE_LIMITS` | `off`: no rate limits (load tests, benchmarks); on by default |
//! | `PORTCULLIS_TRUSTED_PROXIES` | comma-separated proxy IPs whose `X-Forwarded-For` gives the client IP |
//! | `PORTCULLIS_FRONTEND_URL` | where the browser lands after a magic link or OAuth sign-in |
//! | `PORTCULLIS_ALLOWED_REDIRECTS` | comma-separated other allowed `redirect_to` targets (exact match) |
//! | `PORTCULLIS_OAUTH_PROVIDERS` | e.g. `github,google,acme`: OAuth providers to enable; each reads `PORTCULLIS_OAUTH_<ID>_CLIENT_ID` and `_CLIENT_SECRET`, and an id other than `github`/`google` is an OIDC issuer found from `PORTCULLIS_OAUTH_<ID>_ISSUER` by discovery; callbacks are `PUBLIC_URL/auth/oauth/<id>/callback` |
//!
//! On Ctrl-C the server stops taking requests, finishes those in flight,
//! then waits (up to 30 s) for queued mail to be delivered.

#[path = "server/page.rs"]
mod page;

use std::{env, process::ExitCode, sync::Arc, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use poem::{get, listener::TcpListener, Route, Server};
use portcullis::{
    api, AuthConfig, AuthManager, JwtAlgorithm, JwtKeyConfig, LogSender, MemoryStore, MongoConfig,
    MongoStore, Secret, Store,
};
use portcullis_credentials::{CredentialsApi, CredentialsProvider};
use portcullis_magic_link::{EmailCodeProvider, MagicLinkApi, MagicLinkProvider};
use rand::RngCore;

fn flag(name: &str) -> Option<bool> {
    env::var(name).ok().map(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

fn config(addr: &str) -> AuthConfig {
    let mut config = AuthConfig::default();
    // Emailed links need a base URL: without one, this server's own address.
    config.public_url = Some(env::var("PORTCULLIS_PUBLIC_URL").unwrap_or_else(|_| {
        let url = match addr.rsplit_once(':') {
            Some(("0.0.0.0" | "[::]", port)) => format!("http://localhost:{port}"),
            _ => format!("http://{addr}"),
        };
        tracing::info!("PORTCULLIS_PUBLIC_URL is not set: emailed links start with {url}");
        url
    }));
    config.jwt.secret = match env::var("PORTCULLIS_JWT_SECRET") {
        Ok(secret) => Some(Secret::new(secret)),
        // Asymmetric keys (see `jwt_keys`) sign: no secret needed.
        Err(_)
            if matches!(
                env::var("PORTCULLIS_JWT_ALGORITHM").as_deref(),
                Ok("RS256" | "EdDSA")
            ) =>
        {
            None
        }
        Err(_) => {
            tracing::warn!(
                "PORTCULLIS_JWT_SECRET is not set: using a random secret; tokens die with this process"
            );
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            Some(Secret::new(URL_SAFE_NO_PAD.encode(bytes)))
        }
    };
    if let Some(required) = flag("PORTCULLIS_REQUIRE_VERIFIED_EMAIL") {
        config.accounts.require_verified_email = required;
    }
    if let Some(cookies) = flag("PORTCULLIS_COOKIES") {
        config.transport.cookies = cookies;
    }
    if let Some(cookie_only) = flag("PORTCULLIS_COOKIE_ONLY") {
        config.transport.cookie_only = cookie_only;
        config.transport.cookies |= cookie_only;
    }
    if let Some(secure) = flag("PORTCULLIS_COOKIE_SECURE") {
        config.transport.cookie.secure = secure;
    }
    if let Some(hard_delete) = flag("PORTCULLIS_HARD_DELETE") {
        config.accounts.hard_delete = hard_delete;
    }
    if let Ok(limits) = env::var("PORTCULLIS_RATE_LIMITS") {
        config.rate_limits.enabled = !matches!(
            limits.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        );
    }
    if let Ok(proxies) = env::var("PORTCULLIS_TRUSTED_PROXIES") {
        config.rate_limits.trusted_proxies = list(&proxies);
    }
    config.redirects.frontend_url = env::var("PORTCULLIS_FRONTEND_URL").ok();
    if let Ok(allowed) = env::var("PORTCULLIS_ALLOWED_REDIRECTS") {
        config.redirects.allowed = list(&allowed);
    }
    config
}

/// `PORTCULLIS_JWT_ALGORITHM`, `PORTCULLIS_JWT_KEY_FILE` and
/// `PORTCULLIS_JWT_OLD_KEY_FILES`: asymmetric keys, newest first.
fn jwt_keys() -> Result<Vec<JwtKeyConfig>, String> {
    let algorithm = match env::var("PORTCULLIS_JWT_ALGORITHM").ok().as_deref() {
        None | Some("HS256") => return Ok(Vec::new()),
        Some("RS256") => JwtAlgorithm::RS256,
        Some("EdDSA") => JwtAlgorithm::EdDSA,
        Some(other) => {
            return Err(format!(
                "PORTCULLIS_JWT_ALGORITHM={other}: use HS256, RS256 or EdDSA"
            ))
        }
    };
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read the JWT key {path}: {err}"))
    };
    let signing = match env::var("PORTCULLIS_JWT_KEY_FILE") {
        Ok(path) => JwtKeyConfig::private(algorithm, read(&path)?),
        Err(_) => {
            tracing::warn!(
                "PORTCULLIS_JWT_KEY_FILE is not set: using a random {algorithm:?} key; tokens die with this process"
            );
            JwtKeyConfig::generate(algorithm).map_err(|err| err.to_string())?
        }
    };
    let mut keys = vec![signing];
    for path in list(&env::var("PORTCULLIS_JWT_OLD_KEY_FILES").unwrap_or_default()) {
        let pem = read(&path)?;
        keys.push(if pem.contains("PRIVATE KEY") {
            JwtKeyConfig::private(algorithm, pem)
        } else {
            JwtKeyConfig::public(algorithm, pem)
        });
    }
    Ok(keys)
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

/// `PORTCULLIS_SUPERUSER_EMAIL` and `PORTCULLIS_SUPERUSER_PASSWORD`: both or
/// neither.
fn superuser() -> Result<Option<(String, Secret)>, String> {
    match (
        env::var("PORTCULLIS_SUPERUSER_EMAIL"),
        env::var("PORTCULLIS_SUPERUSER_PASSWORD"),
    ) {
        (Ok(email), Ok(password)) => Ok(Some((email, Secret::new(password)))),
        (Err(_), Err(_)) => Ok(None),
        (Ok(_), Err(_)) => Err("PORTCULLIS_SUPERUSER_EMAIL is set but PORTCULLIS_SUPERUSER_PASSWORD \
                                is not: set both to create or promote a superuser at start, or neither"
            .into()),
        (Err(_), Ok(_)) => Err("PORTCULLIS_SUPERUSER_PASSWORD is set but PORTCULLIS_SUPERUSER_EMAIL \
                                is not: set both to create or promote a superuser at start, or neither"
            .into()),
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let addr = env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let superuser = superuser()?;
    let store: Arc<dyn Store> = match env::var("PORTCULLIS_MONGODB_URI") {
        Ok(uri) => {
            let mut mongo = MongoConfig::new(uri);
            if let Ok(db) = env::var("PORTCULLIS_MONGODB_DATABASE") {
                mongo = mongo.with_database(db);
            }
            let store = MongoStore::connect(&mongo).await.map_err(|err| {
                format!(
                    "cannot use MongoDB at PORTCULLIS_MONGODB_URI ({}): {err}{}",
                    mongo.uri,
                    std::error::Error::source(&err)
                        .map(|s| format!(": {s}"))
                        .unwrap_or_default()
                )
            })?;
            tracing::info!(database = %mongo.database, "using MongoStore");
            Arc::new(store)
        }
        Err(_) => {
            tracing::info!("using the in-memory store (set PORTCULLIS_MONGODB_URI for MongoDB)");
            Arc::new(MemoryStore::new())
        }
    };
    // OAuth providers from PORTCULLIS_OAUTH_*; OIDC issuers are discovered
    // now, so a wrong issuer fails the start, not the first sign-in.
    let oauth = portcullis_oauth::providers_from_env()
        .await
        .map_err(|err| format!("OAuth configuration: {err}"))?;
    let mut config = config(&addr);
    config.jwt.keys = jwt_keys()?;
    let mut builder = AuthManager::builder(config)
        .store_arc(store)
        .provider(CredentialsProvider::new())
        .provider(MagicLinkProvider::new())
        .provider(EmailCodeProvider::new());
    for provider in &oauth {
        tracing::info!(id = provider.id(), "OAuth provider enabled");
        builder = builder.provider(provider.clone());
    }
    let builder = match env::var("PORTCULLIS_SMTP_URL") {
        #[cfg(feature = "smtp")]
        Ok(url) => {
            let from = env::var("PORTCULLIS_SMTP_FROM")
                .unwrap_or_else(|_| "Portcullis <no-reply@localhost>".into());
            builder.email_sender(portcullis::SmtpSender::from_url(&url, &from)?)
        }
        #[cfg(not(feature = "smtp"))]
        Ok(_) => return Err("PORTCULLIS_SMTP_URL needs the `smtp` feature".into()),
        Err(_) => builder.email_sender(LogSender),
    };
    let manager = builder.build()?;
    if let Some((email, password)) = superuser {
        // Anything created by this call is at least this recent (stores may
        // keep milliseconds only).
        let before = chrono::Utc::now().timestamp_millis();
        let user = manager
            .ensure_superuser(&email, &password)
            .await
            .map_err(|err| match err {
                portcullis::Error::EmailNotVerified => format!(
                    "cannot promote {email} to superuser: a user with this address exists and has \
                     not verified it (whoever registered it may not own it); verify the address or \
                     remove that user first"
                ),
                err => format!("cannot create or promote the superuser {email}: {err}"),
            })?;
        if user.created_at.timestamp_millis() >= before {
            tracing::info!(id = %user.id, email = %user.email, "superuser created");
        } else {
            tracing::info!(
                id = %user.id,
                email = %user.email,
                "existing verified user is a superuser (promoted if needed; password left unchanged)"
            );
        }
    }
    let app = api::routes(
        &manager,
        (
            CredentialsApi::new(&manager),
            MagicLinkApi::new(&manager),
            portcullis_oauth::OAuthApi::new(&manager)?,
        ),
    );
    // The demo page beside the API (which keeps every other path).
    let app = Route::new().at(page::PATH, get(page::page)).nest("/", app);
    tracing::info!(
        "Portcullis demo server on http://{addr} (Swagger UI at /docs, a cookie sign-in page at {})",
        page::PATH
    );
    let served = Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(
            app,
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            None,
        )
        .await;
    // Responses never wait for mail: deliver what is still queued.
    tracing::info!("server stopped; delivering queued mail");
    if tokio::time::timeout(Duration::from_secs(30), manager.wait_for_deliveries())
        .await
        .is_err()
    {
        tracing::warn!("gave up on mail still being delivered after 30 s");
    }
    served?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,poem=warn".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

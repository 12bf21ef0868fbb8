//! The Portcullis demo server: the whole API with every built-in provider,
//! Swagger UI at `/docs`, the spec at `/openapi.json`, and a small page at
//! `/demo` that signs in with cookies only (`page.rs`).
//!
//! ```sh
//! cargo run --release -p portcullis-demo
//! ```
//!
//! It is its own package so that this command builds only what the server
//! needs (not the core crate's test and benchmark dependencies).
//!
//! With no configuration it runs on the embedded defaults (in-memory store,
//! emails printed to the log). Environment (everything but `PORTCULLIS_ADDR`
//! and the OAuth variables is read by the library, `portcullis::env::Env`
//! and `AuthConfig::from_env`, whose docs list what each variable sets;
//! flags take `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`, and a value
//! it cannot use stops the start with an error naming the variable):
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
//! | `PORTCULLIS_PASSKEY_RP_ID` | the domain passkeys are bound to (default: the public URL's host when it is a domain, e.g. `localhost`; none, so passkeys off, for an IP address such as the default `127.0.0.1`) |
//! | `PORTCULLIS_PASSKEY_ORIGINS` | comma-separated pages allowed to use passkeys (default: the public URL) |
//! | `PORTCULLIS_OAUTH_PROVIDERS` | e.g. `github,google,acme`: OAuth providers to enable; each reads `PORTCULLIS_OAUTH_<ID>_CLIENT_ID` and `_CLIENT_SECRET`, and an id other than `github`/`google` is an OIDC issuer found from `PORTCULLIS_OAUTH_<ID>_ISSUER` by discovery; callbacks are `PUBLIC_URL/auth/oauth/<id>/callback` |
//!
//! On Ctrl-C the server stops taking requests, finishes those in flight,
//! then waits (up to 30 s) for queued mail to be delivered.

mod page;

use std::{env, process::ExitCode, sync::Arc, time::Duration};

use poem::{listener::TcpListener, Server};
use portcullis::{api, env::Env, AuthManager, LogSender, MemoryStore, MongoStore, Store};
use portcullis_credentials::{CredentialsApi, CredentialsProvider};
use portcullis_magic_link::{EmailCodeProvider, MagicLinkApi, MagicLinkProvider};

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let addr = env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".into());
    // The configuration from the PORTCULLIS_* variables; a demo may run on
    // random keys (tokens die with the process, with a warning).
    let env = Env::process().ephemeral_keys(true);
    let mut config = env.auth_config()?;
    if config.public_url.is_none() {
        // Emailed links need a base URL: without one, this server's own address.
        let url = match addr.rsplit_once(':') {
            Some(("0.0.0.0" | "[::]", port)) => format!("http://localhost:{port}"),
            _ => format!("http://{addr}"),
        };
        tracing::info!("PORTCULLIS_PUBLIC_URL is not set: emailed links start with {url}");
        config.public_url = Some(url);
    }
    if config.mfa.passkeys.rp_id.is_none() {
        config.mfa.passkeys.rp_id = passkey_domain(config.public_url.as_deref());
        match &config.mfa.passkeys.rp_id {
            Some(domain) => {
                tracing::info!(%domain, "passkeys are bound to the public URL's domain")
            }
            None => tracing::info!(
                "passkeys are off: WebAuthn needs a domain, not an IP address (serve on \
                 http://localhost:8000, or set PORTCULLIS_PASSKEY_RP_ID)"
            ),
        }
    }
    let superuser = env.superuser()?;
    let email_sender = env.smtp_sender()?;
    let store: Arc<dyn Store> = match env.mongo() {
        Some(mongo) => {
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
        None => {
            tracing::info!("using the in-memory store (set PORTCULLIS_MONGODB_URI for MongoDB)");
            Arc::new(MemoryStore::new())
        }
    };
    // OAuth providers from PORTCULLIS_OAUTH_*; OIDC issuers are discovered
    // now, so a wrong issuer fails the start, not the first sign-in.
    let oauth = portcullis_oauth::providers_from_env()
        .await
        .map_err(|err| format!("OAuth configuration: {err}"))?;
    let mut builder = AuthManager::builder(config)
        .store_arc(store)
        .provider(CredentialsProvider::new())
        .provider(MagicLinkProvider::new())
        .provider(EmailCodeProvider::new());
    for provider in &oauth {
        tracing::info!(id = provider.id(), "OAuth provider enabled");
        builder = builder.provider(provider.clone());
    }
    let builder = match email_sender {
        Some(smtp) => builder.email_sender(smtp),
        None => builder.email_sender(LogSender),
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
    // The demo page beside the API (which keeps every other path), without
    // a router and a nest in front of every API request.
    let app = page::WithPage::new(app);
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

/// The domain of `public_url` as a WebAuthn relying party id, or `None`
/// for an IP address (WebAuthn binds passkeys to domains only).
fn passkey_domain(public_url: Option<&str>) -> Option<String> {
    let uri: poem::http::Uri = public_url?.parse().ok()?;
    let host = uri.host()?;
    let ip = host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok();
    (!ip).then(|| host.to_owned())
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

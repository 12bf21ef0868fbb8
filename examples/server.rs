//! The Portcullis demo server: the whole API with every built-in provider,
//! Swagger UI at `/docs` and the spec at `/openapi.json`.
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
//! | `PORTCULLIS_PUBLIC_URL` | public base URL, for links in emails and the CSRF origin |
//! | `PORTCULLIS_JWT_SECRET` | HS256 secret, 32+ bytes (random per start when unset) |
//! | `PORTCULLIS_SMTP_URL` | e.g. `smtp://127.0.0.1:2525`: send real mail |
//! | `PORTCULLIS_SMTP_FROM` | sender address (default `Portcullis <no-reply@localhost>`) |
//! | `PORTCULLIS_REQUIRE_VERIFIED_EMAIL` | `1`/`true`: refuse sign-in until verified |
//! | `PORTCULLIS_COOKIES` | `1`/`true`: cookie transport on (bearer stays on) |
//! | `PORTCULLIS_COOKIE_SECURE` | `0`/`false`: drop the `Secure` flag, for local plain http |
//! | `PORTCULLIS_MONGODB_URI` | MongoDB store (not in this build yet: start-up fails) |

use std::{env, process::ExitCode};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use poem::{listener::TcpListener, Server};
use portcullis::{api, AuthConfig, AuthManager, LogSender, MemoryStore, Secret};
use portcullis_credentials::{CredentialsApi, CredentialsProvider};
use rand::RngCore;

fn flag(name: &str) -> Option<bool> {
    env::var(name).ok().map(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

fn config() -> AuthConfig {
    let mut config = AuthConfig::default();
    config.public_url = env::var("PORTCULLIS_PUBLIC_URL").ok();
    config.jwt.secret = Some(match env::var("PORTCULLIS_JWT_SECRET") {
        Ok(secret) => Secret::new(secret),
        Err(_) => {
            tracing::warn!(
                "PORTCULLIS_JWT_SECRET is not set: using a random secret; tokens die with this process"
            );
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            Secret::new(URL_SAFE_NO_PAD.encode(bytes))
        }
    });
    if let Some(required) = flag("PORTCULLIS_REQUIRE_VERIFIED_EMAIL") {
        config.accounts.require_verified_email = required;
    }
    if let Some(cookies) = flag("PORTCULLIS_COOKIES") {
        config.transport.cookies = cookies;
    }
    if let Some(secure) = flag("PORTCULLIS_COOKIE_SECURE") {
        config.transport.cookie.secure = secure;
    }
    config
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    if env::var("PORTCULLIS_MONGODB_URI").is_ok() {
        return Err(
            "PORTCULLIS_MONGODB_URI is set, but this build has no MongoDB store yet".into(),
        );
    }
    let addr = env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let builder = AuthManager::builder(config())
        .store(MemoryStore::new())
        .provider(CredentialsProvider::new());
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
    let app = api::routes(&manager, CredentialsApi::new(&manager));
    tracing::info!("Portcullis demo server on http://{addr} (Swagger UI at /docs)");
    Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(
            app,
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            None,
        )
        .await?;
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

//! A scratch app embedding Portcullis with every provider crate and routes
//! of its own that need a signed-in user.

use poem::Endpoint;
use poem_openapi::{payload::Json, payload::PlainText, Object, OpenApi};
use portcullis::{
    api::{self, error_set::*, ApiErrors, Authenticated, Superuser},
    AuthConfig, AuthManager, Error, MemoryStore, Outbox, Secret, User,
};
use portcullis_credentials::{CredentialsApi, CredentialsProvider};
use portcullis_magic_link::{EmailCodeProvider, MagicLinkApi, MagicLinkProvider};

/// A note to publish.
#[derive(Debug, Object)]
pub struct Note {
    /// The text.
    pub text: String,
}

/// The app's own API: no manager field, the caller is a parameter.
pub struct AppApi;

/// The app's own rule, shared by its handlers.
fn verified(user: &User) -> Result<(), ApiErrors<{ AUTHED }>> {
    if user.email_verified {
        Ok(())
    } else {
        Err(Error::EmailNotVerified.into()) // 403 EMAIL_NOT_VERIFIED
    }
}

#[OpenApi]
impl AppApi {
    /// Greets the signed-in caller.
    #[oai(path = "/hello", method = "get")]
    async fn hello(
        &self,
        caller: Authenticated,
    ) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
        Ok(PlainText(format!("hello {}", caller.user.email)))
    }

    /// Publishes a note: verified users only.
    #[oai(path = "/notes", method = "post")]
    async fn publish(
        &self,
        caller: Authenticated,
        note: Json<Note>,
    ) -> Result<PlainText<String>, ApiErrors<{ AUTHED | BODY }>> {
        // `AUTHED` widens into `AUTHED | BODY`.
        verified(&caller.user).map_err(ApiErrors::widen)?;
        Ok(PlainText(format!("published: {}", note.0.text)))
    }

    /// Superusers only.
    #[oai(path = "/admin/ping", method = "get")]
    async fn ping(&self, admin: Superuser) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
        Ok(PlainText(format!("pong {}", admin.user.email)))
    }
}

/// The manager and the whole app: Portcullis' routes, the providers' and ours.
///
/// # Errors
///
/// The builder's configuration errors.
pub fn app(outbox: Outbox) -> Result<(AuthManager, impl Endpoint), portcullis::Error> {
    let mut config = AuthConfig::default();
    config.jwt.secret = Some(Secret::new("scratch-app-secret-of-32-bytes-or-more!"));
    config.public_url = Some("https://api.example.com".into());
    let manager = AuthManager::builder(config)
        .store(MemoryStore::new())
        .email_sender(outbox)
        .provider(CredentialsProvider::new())
        .provider(MagicLinkProvider::new())
        .provider(EmailCodeProvider::new())
        .build()?;
    let apis = (
        CredentialsApi::new(&manager),
        MagicLinkApi::new(&manager),
        AppApi,
    );
    let app = api::routes(&manager, apis);
    // The OAuth crate is part of the build too; a provider needs an issuer.
    let _ = std::any::type_name::<portcullis_oauth::OAuthProvider>();
    Ok((manager, app))
}

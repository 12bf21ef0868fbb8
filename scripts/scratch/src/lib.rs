//! A scratch app embedding Portcullis with every provider crate and one
//! route of its own that needs a signed-in user.

use poem::{Endpoint, Request};
use poem_openapi::{payload::PlainText, OpenApi};
use portcullis::{
    api::{self, error_set::AUTHED, AccessToken, ApiErrors},
    AuthConfig, AuthManager, MemoryStore, Outbox, Secret,
};
use portcullis_credentials::{CredentialsApi, CredentialsProvider};
use portcullis_magic_link::{EmailCodeProvider, MagicLinkApi, MagicLinkProvider};

/// The app's own API.
pub struct AppApi {
    manager: AuthManager,
}

#[OpenApi]
impl AppApi {
    /// Greets the signed-in caller.
    #[oai(path = "/hello", method = "get")]
    async fn hello(
        &self,
        req: &Request,
        auth: AccessToken,
    ) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
        let principal = api::authenticate(&self.manager, &auth, req).await?;
        Ok(PlainText(format!("hello {}", principal.user.email)))
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
        AppApi {
            manager: manager.clone(),
        },
    );
    let app = api::routes(&manager, apis);
    // The OAuth crate is part of the build too; a provider needs an issuer.
    let _ = std::any::type_name::<portcullis_oauth::OAuthProvider>();
    Ok((manager, app))
}

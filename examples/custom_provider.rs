//! A custom provider written only against Portcullis' public traits: sign-in
//! with an API key, for scripts and service accounts. It is registered next
//! to the built-in credentials provider and gets its own documented route,
//! and every sign-in goes through the same manager path (user, session,
//! events, hooks).
//!
//! ```sh
//! cargo run --example custom_provider
//! curl -s -X POST localhost:8001/auth/api-key -H 'content-type: application/json' \
//!      -d '{"key": "pk_demo_0123456789abcdef0123456789abcdef"}'
//! ```

use std::collections::HashMap;

use async_trait::async_trait;
use poem::{listener::TcpListener, web::cookie::CookieJar, Request, Server};
use poem_openapi::{payload::Json, Object, OpenApi};
use portcullis::{
    api::{self, error_set::*, ApiErrors, ApiTags, StrictString, TokenResponse},
    AuthConfig, AuthManager, Error, Identity, Provider, ProviderCx, ProviderInfo, ProviderRequest,
    Result, Secret, TokenHash,
};
use portcullis_credentials::{CredentialsApi, CredentialsProvider};

/// Signs in whoever presents one of the configured API keys. Only the
/// SHA-256 of each key is kept; the presented key is hashed and looked up,
/// so no comparison leaks the stored keys.
#[derive(Debug, Default)]
pub struct ApiKeyProvider {
    /// SHA-256 of the key → (service account id, email).
    keys: HashMap<TokenHash, (String, String)>,
}

impl ApiKeyProvider {
    /// The provider id, also the `provider` of its sessions.
    pub const ID: &'static str = "api-key";

    /// Accepts `key` for the service account `account` with `email`.
    pub fn with_key(mut self, key: &str, account: &str, email: &str) -> Self {
        self.keys
            .insert(TokenHash::of(key), (account.to_owned(), email.to_owned()));
        self
    }
}

#[derive(serde::Deserialize)]
struct Input {
    key: String,
}

#[async_trait]
impl Provider for ApiKeyProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo::new(Self::ID, "api_key")
    }

    async fn authenticate(
        &self,
        _cx: &ProviderCx<'_>,
        request: ProviderRequest,
    ) -> Result<Identity> {
        let input: Input = request.body_as()?;
        let (account, email) = self
            .keys
            .get(&TokenHash::of(&input.key))
            .ok_or(Error::InvalidCredentials)?;
        // The key's owner vouches for the address: the first sign-in creates
        // the service user (verified), later ones find it through the link
        // (api-key, account).
        Ok(Identity::new(Self::ID, account.clone())
            .with_email(email.clone(), true)
            .with_name(account.clone()))
    }
}

/// Body of `POST /auth/api-key`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ApiKeyRequest {
    /// The API key.
    pub key: StrictString,
}

/// The provider's route, documented in the same spec as the built-ins.
#[derive(Debug)]
pub struct ApiKeyApi {
    manager: AuthManager,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl ApiKeyApi {
    /// Sign in with an API key
    ///
    /// Exchanges a configured API key for a token pair.
    #[oai(path = "/auth/api-key", method = "post", operation_id = "apiKeySignIn")]
    async fn sign_in(
        &self,
        req: &Request,
        jar: &CookieJar,
        body: Json<ApiKeyRequest>,
    ) -> Result<TokenResponse, ApiErrors<SIGN_IN>> {
        let request = ProviderRequest::new(serde_json::json!({ "key": body.0.key.into_inner() }))
            .with_client(api::client_info(req));
        let sign_in = self.manager.sign_in(ApiKeyProvider::ID, request).await?;
        Ok(TokenResponse::issue(&self.manager, jar, &sign_in))
    }
}

/// The demo key.
const DEMO_KEY: &str = "pk_demo_0123456789abcdef0123456789abcdef";

fn manager() -> Result<AuthManager> {
    let mut config = AuthConfig::default();
    config.jwt.secret = Some(Secret::new("example-secret-example-secret-example!"));
    AuthManager::builder(config)
        .provider(CredentialsProvider::new())
        .provider(ApiKeyProvider::default().with_key(DEMO_KEY, "ci-bot", "ci-bot@example.com"))
        .build()
}

fn app(manager: &AuthManager) -> impl poem::Endpoint<Output = poem::Response> {
    api::routes(
        manager,
        (
            CredentialsApi::new(manager),
            ApiKeyApi {
                manager: manager.clone(),
            },
        ),
    )
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let manager = manager()?;
    Server::new(TcpListener::bind("127.0.0.1:8001"))
        .run(app(&manager))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use poem::{http::StatusCode, test::TestClient};
    use serde_json::{json, Value};

    use super::*;

    #[tokio::test]
    async fn api_keys_sign_in_through_the_manager() {
        let manager = manager().expect("config");
        let client = TestClient::new(app(&manager));

        let resp = client
            .post("/auth/api-key")
            .body_json(&json!({ "key": DEMO_KEY }))
            .send()
            .await;
        resp.assert_status_is_ok();
        let tokens: Value = resp.0.into_body().into_json().await.expect("json");
        let access = tokens["access_token"].as_str().expect("access token");

        let resp = client
            .get("/auth/me")
            .header("authorization", format!("Bearer {access}"))
            .send()
            .await;
        resp.assert_status_is_ok();
        let me: Value = resp.0.into_body().into_json().await.expect("json");
        assert_eq!(me["email"], "ci-bot@example.com");
        assert_eq!(me["email_verified"], true);
        assert_eq!(me["has_password"], false);

        // The second sign-in finds the same user through the link.
        let again = client
            .post("/auth/api-key")
            .body_json(&json!({ "key": DEMO_KEY }))
            .send()
            .await;
        again.assert_status_is_ok();
        let user = manager
            .find_user_by_email("ci-bot@example.com")
            .await
            .expect("store")
            .expect("user");
        let links = manager.linked_accounts(&user).await.expect("store");
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].provider, "api-key");

        let wrong = client
            .post("/auth/api-key")
            .body_json(&json!({ "key": "pk_wrong" }))
            .send()
            .await;
        wrong.assert_status(StatusCode::UNAUTHORIZED);

        let providers = client.get("/auth/providers").send().await;
        let body: Value = providers.0.into_body().into_json().await.expect("json");
        assert_eq!(body["providers"][1]["id"], "api-key");

        let spec = api::spec_json(
            &manager,
            (
                CredentialsApi::new(&manager),
                ApiKeyApi {
                    manager: manager.clone(),
                },
            ),
        );
        assert!(spec.contains("/auth/api-key"));
    }
}

#![allow(dead_code)]

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use parking_lot::Mutex;
use poem::{endpoint::BoxEndpoint, http::StatusCode, test::TestClient, EndpointExt, Response};
use portcullis::{
    api, hook_fn, AuthConfig, AuthManager, AuthManagerBuilder, Event, ManualClock, MemoryStore,
    Outbox, Secret, Store,
};
use portcullis_credentials::{CredentialsApi, CredentialsProvider};
use serde_json::{json, Value};

pub const SECRET: &str = "test-secret-test-secret-test-secret!";
pub const PASSWORD: &str = "Zq8#vT2!mW-horse";
/// The API's public URL in tests: the base of every emailed link.
pub const PUBLIC_URL: &str = "https://api.example.com";
/// The front-end origin the cookie tests configure as `public_url`.
pub const APP_ORIGIN: &str = "https://app.example.com";

pub struct TestApp {
    pub client: TestClient<BoxEndpoint<'static, Response>>,
    pub manager: AuthManager,
    /// The store the manager was built with, for checking what a flow
    /// wrote (the manager hands out no store).
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub outbox: Outbox,
    pub events: Arc<Mutex<Vec<Event>>>,
}

/// Fast Argon2 parameters: tests check behaviour, benches check speed.
pub fn test_config() -> AuthConfig {
    let mut config = AuthConfig::default();
    config.jwt.secret = Some(Secret::new(SECRET));
    config.public_url = Some(PUBLIC_URL.into());
    config.password.memory_kib = 1024;
    config.password.iterations = 1;
    config
}

pub async fn app() -> TestApp {
    app_with(test_config(), |b| b).await
}

pub async fn app_with_config(config: AuthConfig) -> TestApp {
    app_with(config, |b| b).await
}

/// The store the HTTP tests run on: `PORTCULLIS_TEST_STORE=mongo` for a
/// fresh MongoDB database per test, else a new `MemoryStore`.
pub async fn test_store() -> Arc<dyn Store> {
    match std::env::var("PORTCULLIS_TEST_STORE").as_deref() {
        Ok("mongo") => portcullis_testkit::mongo_store().await,
        Ok("memory") | Err(_) => Arc::new(MemoryStore::new()),
        Ok(other) => panic!("PORTCULLIS_TEST_STORE={other}: use `memory` or `mongo`"),
    }
}

pub async fn app_with(
    config: AuthConfig,
    extra: impl FnOnce(AuthManagerBuilder) -> AuthManagerBuilder,
) -> TestApp {
    app_on_store(config, test_store().await, extra).await
}

pub async fn app_on_store(
    config: AuthConfig,
    store: Arc<dyn Store>,
    extra: impl FnOnce(AuthManagerBuilder) -> AuthManagerBuilder,
) -> TestApp {
    let clock = ManualClock::new(Utc::now());
    let outbox = Outbox::new();
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let seen = events.clone();
    // Emailed links need a public URL: a config without one has no mail.
    let has_url = config.public_url.is_some();
    let mut builder = AuthManager::builder(config)
        .store_arc(store.clone())
        .clock(clock.clone());
    if has_url {
        builder = builder.email_sender(outbox.clone());
    }
    let builder = builder
        .provider(CredentialsProvider::new())
        .hook(hook_fn(move |event| {
            let seen = seen.clone();
            async move {
                seen.lock().push(event);
                Ok(())
            }
        }));
    let manager = extra(builder).build().expect("valid test config");
    let client = TestClient::new(api::routes(&manager, CredentialsApi::new(&manager)).boxed());
    TestApp {
        client,
        manager,
        store,
        clock,
        outbox,
        events,
    }
}

pub async fn body(resp: poem::test::TestResponse) -> Value {
    let bytes = resp.0.into_body().into_bytes().await.expect("body");
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// Status and JSON body.
pub async fn parts(resp: poem::test::TestResponse) -> (StatusCode, Value) {
    let status = resp.0.status();
    (status, body(resp).await)
}

/// The app's routes on a real socket, for clients outside the process or
/// checks that need the socket address (client IPs). Aborted on drop.
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestApp {
    /// Serves the app's routes on a free local port and waits until it
    /// answers.
    pub async fn serve(&self) -> Served {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let routes = api::routes(&self.manager, CredentialsApi::new(&self.manager));
        let task = tokio::spawn(
            poem::Server::new(poem::listener::TcpListener::bind(format!(
                "127.0.0.1:{port}"
            )))
            .run(routes),
        );
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http
                .get(format!("{base}/auth/providers"))
                .send()
                .await
                .is_ok()
            {
                return Served { base, task };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the server on {base} did not start");
    }

    /// POSTs JSON from the app's own origin (what a browser on the
    /// configured front-end sends; harmless without cookie transport).
    pub async fn post(&self, path: &str, json: Value) -> (StatusCode, Value) {
        parts(
            self.client
                .post(path)
                .header("origin", APP_ORIGIN)
                .body_json(&json)
                .send()
                .await,
        )
        .await
    }

    pub async fn register(&self, email: &str) -> Value {
        let (status, body) = self
            .post(
                "/auth/register",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn login(&self, email: &str) -> Value {
        let (status, body) = self
            .post("/auth/login", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Registers and signs in; returns (access, refresh).
    pub async fn signed_in(&self, email: &str) -> (String, String) {
        self.register(email).await;
        let tokens = self.login(email).await;
        (
            tokens["access_token"].as_str().unwrap().to_owned(),
            tokens["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn me(&self, access: &str) -> (StatusCode, Value) {
        parts(
            self.client
                .get("/auth/me")
                .header("authorization", format!("Bearer {access}"))
                .send()
                .await,
        )
        .await
    }

    pub async fn refresh(&self, refresh: &str) -> (StatusCode, Value) {
        self.post("/auth/refresh", json!({"refresh_token": refresh}))
            .await
    }

    /// Sends `method path` with a bearer token and an optional JSON body
    /// from the app's origin.
    pub async fn call(
        &self,
        method: poem::http::Method,
        path: &str,
        access: &str,
        json: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, path)
            .header("origin", APP_ORIGIN)
            .header("authorization", format!("Bearer {access}"));
        if let Some(json) = json {
            req = req.body_json(&json);
        }
        parts(req.send().await).await
    }

    /// Every mail sent so far to `to`, after background deliveries finish.
    pub async fn mails_to(&self, to: &str) -> Vec<portcullis::Email> {
        self.manager.wait_for_deliveries().await;
        self.outbox
            .sent()
            .into_iter()
            .filter(|m| m.to.eq_ignore_ascii_case(to))
            .collect()
    }

    /// The newest mail to `to` whose subject contains `subject`.
    pub async fn mail(&self, to: &str, subject: &str) -> portcullis::Email {
        self.mails_to(to)
            .await
            .into_iter()
            .rev()
            .find(|m| m.subject.contains(subject))
            .unwrap_or_else(|| {
                panic!(
                    "no mail to {to} about {subject:?}: {:?}",
                    self.outbox.sent()
                )
            })
    }

    pub fn event_names(&self) -> Vec<&'static str> {
        self.events.lock().iter().map(|e| e.name()).collect()
    }
}

/// The `token` query parameter of the first link in a mail's text.
pub fn link_token(mail: &portcullis::Email) -> String {
    let at = mail.text.find("?token=").expect("a link with a token") + "?token=".len();
    mail.text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The link (up to whitespace) in a mail's text that starts with `prefix`.
pub fn link(mail: &portcullis::Email, prefix: &str) -> String {
    let at = mail.text.find(prefix).expect("the link");
    mail.text[at..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

/// A store whose backend is down: every call fails with `Unavailable`.
#[derive(Debug)]
pub struct DownStore;

fn down() -> portcullis::store::StoreError {
    portcullis::store::StoreError::Unavailable("connection refused".into())
}

#[async_trait]
impl portcullis::store::UserStore for DownStore {
    async fn insert_user(&self, _: &portcullis::User) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_user(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        Err(down())
    }
    async fn find_user_by_email(
        &self,
        _: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        Err(down())
    }
    async fn update_user(&self, _: &portcullis::User) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn patch_user(
        &self,
        _: &portcullis::UserId,
        _: &portcullis::UserPatch,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        Err(down())
    }
    async fn set_password_hash(
        &self,
        _: &portcullis::UserId,
        _: portcullis::store::PasswordGuard<'_>,
        _: &str,
        _: bool,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        Err(down())
    }
    async fn bump_token_version(
        &self,
        _: &portcullis::UserId,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::User>> {
        Err(down())
    }
    async fn delete_user(&self, _: &portcullis::UserId) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn list_users(
        &self,
        _: &portcullis::store::UserQuery,
    ) -> portcullis::store::StoreResult<(Vec<portcullis::User>, u64)> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::RateLimitStore for DownStore {
    async fn hit_counter(
        &self,
        _: &str,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<portcullis::store::CounterHit> {
        Err(down())
    }
    async fn read_counter(
        &self,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<(u32, chrono::DateTime<Utc>)>> {
        Err(down())
    }
    async fn reset_counter(&self, _: &str) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn reserve_counter(
        &self,
        _: &str,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: portcullis::store::Backoff,
    ) -> portcullis::store::StoreResult<portcullis::store::Reservation> {
        Err(down())
    }
    async fn settle_counter(
        &self,
        _: &str,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: portcullis::store::Backoff,
        _: bool,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::SessionStore for DownStore {
    async fn insert_session(
        &self,
        _: &portcullis::Session,
        _: &portcullis::store::RefreshToken,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn rotate_refresh_token(
        &self,
        _: &portcullis::TokenHash,
        _: &portcullis::TokenHash,
        _: chrono::DateTime<Utc>,
        _: chrono::Duration,
    ) -> portcullis::store::StoreResult<portcullis::store::Rotation> {
        Err(down())
    }
    async fn find_session(
        &self,
        _: &portcullis::SessionId,
    ) -> portcullis::store::StoreResult<Option<portcullis::Session>> {
        Err(down())
    }
    async fn list_user_sessions(
        &self,
        _: &portcullis::UserId,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Vec<portcullis::Session>> {
        Err(down())
    }
    async fn find_session_user(
        &self,
        _: &portcullis::UserId,
        _: &portcullis::SessionId,
    ) -> portcullis::store::StoreResult<Option<(portcullis::User, portcullis::Session)>> {
        Err(down())
    }
    async fn revoke_session(
        &self,
        _: &portcullis::SessionId,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn revoke_user_sessions(
        &self,
        _: &portcullis::UserId,
        _: Option<&portcullis::SessionId>,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::OneTimeTokenStore for DownStore {
    async fn insert_one_time_token(
        &self,
        _: &portcullis::OneTimeToken,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_one_time_token(
        &self,
        _: &portcullis::TokenHash,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::OneTimeToken>> {
        Err(down())
    }
    async fn delete_one_time_tokens_for_email(
        &self,
        _: &str,
        _: &str,
    ) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
    async fn count_one_time_token_attempt(
        &self,
        _: &portcullis::TokenHash,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<u32>> {
        Err(down())
    }
    async fn consume_one_time_token(
        &self,
        _: &portcullis::TokenHash,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<portcullis::OneTimeToken>> {
        Err(down())
    }
    async fn delete_one_time_tokens(
        &self,
        _: &portcullis::UserId,
        _: &str,
    ) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::AccountStore for DownStore {
    async fn insert_linked_account(
        &self,
        _: &portcullis::LinkedAccount,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_linked_account(
        &self,
        _: &str,
        _: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::LinkedAccount>> {
        Err(down())
    }
    async fn list_linked_accounts(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::LinkedAccount>> {
        Err(down())
    }
    async fn delete_linked_account(
        &self,
        _: &portcullis::UserId,
        _: &str,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_unverified_linked_accounts(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::LinkedAccount>> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::FactorStore for DownStore {
    async fn put_pending_factor(
        &self,
        _: &portcullis::store::Factor,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn confirm_factor(
        &self,
        _: &portcullis::UserId,
        _: portcullis::store::FactorKind,
        _: &portcullis::factor::Sealed,
        _: u64,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn put_recovery_codes(
        &self,
        _: &portcullis::store::Factor,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn insert_recovery_codes(
        &self,
        _: &portcullis::store::Factor,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn list_factors(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::Factor>> {
        Err(down())
    }
    async fn use_totp_step(
        &self,
        _: &portcullis::UserId,
        _: u64,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn use_recovery_code(
        &self,
        _: &portcullis::UserId,
        _: &portcullis::TokenHash,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<Option<usize>> {
        Err(down())
    }
    async fn delete_factor(
        &self,
        _: &portcullis::UserId,
        _: portcullis::store::FactorKind,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_factors(&self, _: &portcullis::UserId) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
}

#[async_trait]
impl portcullis::store::PasskeyStore for DownStore {
    async fn insert_passkey(
        &self,
        _: &portcullis::store::PasskeyRecord,
    ) -> portcullis::store::StoreResult<()> {
        Err(down())
    }
    async fn find_passkey(
        &self,
        _: &str,
    ) -> portcullis::store::StoreResult<Option<portcullis::store::PasskeyRecord>> {
        Err(down())
    }
    async fn list_passkeys(
        &self,
        _: &portcullis::UserId,
    ) -> portcullis::store::StoreResult<Vec<portcullis::store::PasskeyRecord>> {
        Err(down())
    }
    async fn rename_passkey(
        &self,
        _: &portcullis::UserId,
        _: &str,
        _: &str,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn use_passkey(
        &self,
        _: &str,
        _: u32,
        _: &serde_json::Value,
        _: u32,
        _: chrono::DateTime<Utc>,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_passkey(
        &self,
        _: &portcullis::UserId,
        _: &str,
    ) -> portcullis::store::StoreResult<bool> {
        Err(down())
    }
    async fn delete_passkeys(&self, _: &portcullis::UserId) -> portcullis::store::StoreResult<u64> {
        Err(down())
    }
}

/// A passwordless test provider: `{"email"}` proves that email (as a
/// magic link would), creating the user on first use with a verified email
/// and no password.
#[derive(Debug)]
pub struct TrustEmailProvider;

#[async_trait]
impl portcullis::Provider for TrustEmailProvider {
    fn info(&self) -> portcullis::ProviderInfo {
        portcullis::ProviderInfo::new("trust-email", "passwordless").signs_in_by_email()
    }

    async fn authenticate(
        &self,
        _cx: &portcullis::ProviderCx<'_>,
        request: portcullis::ProviderRequest,
    ) -> portcullis::Result<portcullis::Identity> {
        let body: Value = request.body_as()?;
        let email = body["email"].as_str().unwrap_or_default().to_lowercase();
        Ok(portcullis::Identity::new("trust-email", email.clone()).with_email(email, true))
    }
}

/// An app that also signs in through [`TrustEmailProvider`].
pub async fn app_with_passwordless(config: AuthConfig) -> TestApp {
    app_with(config, |b| b.provider(TrustEmailProvider)).await
}

impl TestApp {
    /// Signs in (creating on first use) a passwordless user; returns
    /// (access, refresh).
    pub async fn passwordless(&self, email: &str) -> (String, String) {
        let sign_in = self
            .manager
            .sign_in(
                "trust-email",
                portcullis::ProviderRequest::new(json!({ "email": email })),
            )
            .await
            .expect("passwordless sign-in");
        (
            sign_in.tokens.access_token.clone(),
            sign_in.tokens.refresh_token.clone(),
        )
    }

    /// Marks `email`'s address verified, as opening the emailed link does.
    pub async fn mark_verified(&self, email: &str) {
        let user = self.stored(email).await.expect("a registered user");
        self.store
            .patch_user(
                &user.id,
                &portcullis::UserPatch::new().email_verified(true),
                self.manager.now(),
            )
            .await
            .expect("store");
    }

    pub async fn stored(&self, email: &str) -> Option<portcullis::User> {
        self.store
            .as_ref()
            .find_user_by_email(email)
            .await
            .expect("store")
    }
}

/// A test "OAuth" provider: `{"sub", "email", "verified"}` is taken as
/// proven; identities are linked by (fake-oauth, sub).
#[derive(Debug)]
pub struct FakeOAuthProvider;

#[async_trait]
impl portcullis::Provider for FakeOAuthProvider {
    fn info(&self) -> portcullis::ProviderInfo {
        portcullis::ProviderInfo::new("fake-oauth", "oauth")
    }

    async fn authenticate(
        &self,
        _cx: &portcullis::ProviderCx<'_>,
        request: portcullis::ProviderRequest,
    ) -> portcullis::Result<portcullis::Identity> {
        let body: Value = request.body_as()?;
        Ok(
            portcullis::Identity::new("fake-oauth", body["sub"].as_str().unwrap_or_default())
                .with_email(
                    body["email"].as_str().unwrap_or_default(),
                    body["verified"].as_bool().unwrap_or(false),
                ),
        )
    }
}

/// The headers every HTML page of the API carries (`HtmlPage`): HTML,
/// `nosniff`, a CSP that loads nothing and forbids framing, forms only to
/// this API (and the redirect targets), no cache, no referrer to other
/// origins. Returns the CSP.
pub fn assert_page_headers(resp: &poem::test::TestResponse) -> String {
    let headers = resp.0.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name}: {headers:?}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        header("content-type").starts_with("text/html"),
        "{headers:?}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("referrer-policy"), "same-origin");
    let csp = header("content-security-policy");
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for wanted in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(directives.contains(&wanted), "{wanted} missing: {csp}");
    }
    assert!(
        directives
            .iter()
            .any(|d| d.starts_with("form-action 'self'")),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    csp
}

/// The body of a response as text.
pub async fn text(resp: poem::test::TestResponse) -> String {
    let bytes = resp.0.into_body().into_bytes().await.expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// The hidden `token` of a link page's form, checking that the form POSTs
/// to `action` and that the page runs no script (a person presses the
/// button; nothing submits by itself).
pub fn page_form_token(page: &str, action: &str) -> String {
    assert!(
        page.contains(&format!("<form method=\"post\" action=\"{action}\">")),
        "{page}"
    );
    assert!(!page.contains("<script"), "no script: {page}");
    assert!(page.contains("<button type=\"submit\">"), "{page}");
    let marker = "<input type=\"hidden\" name=\"token\" value=\"";
    let start = page.find(marker).expect("a token field") + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

impl TestApp {
    /// Opens the page an emailed link points at (`path?token=`), checks
    /// its security headers and its form (POST to `action`, no script), and
    /// returns the token the form would post.
    pub async fn open_page(&self, path: &str, action: &str, token: &str) -> String {
        let page = self.client.get(path).query("token", &token).send().await;
        assert_eq!(page.0.status(), StatusCode::OK, "GET {path}");
        assert_page_headers(&page);
        assert!(cookies_set(&page).is_empty(), "a page sets no cookie");
        page_form_token(&text(page).await, action)
    }

    /// `HEAD path?token=`: checks it answers like the page, without a body.
    pub async fn head_page(&self, path: &str, token: &str) {
        let head = self
            .client
            .request(poem::http::Method::HEAD, path)
            .query("token", &token)
            .send()
            .await;
        assert_eq!(head.0.status(), StatusCode::OK, "HEAD {path}");
        assert_page_headers(&head);
        assert!(text(head).await.is_empty(), "HEAD has no body");
    }

    /// Presses a link page's button: opens the page at `path`, then POSTs
    /// its form (form-encoded, from the API's origin) to the same path.
    pub async fn press_page(&self, path: &str, action: &str, token: &str) -> (StatusCode, Value) {
        let token = self.open_page(path, action, token).await;
        parts(
            self.client
                .post(path)
                .header("origin", PUBLIC_URL)
                .form(&[("token", token)])
                .send()
                .await,
        )
        .await
    }
}

/// Every `Set-Cookie` of a response.
pub fn cookies_set(resp: &poem::test::TestResponse) -> Vec<String> {
    resp.0
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

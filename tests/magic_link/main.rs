//! Magic link and email code sign-in over HTTP, end to end through the
//! outbox, on the store `PORTCULLIS_TEST_STORE` names (memory by default).
#![allow(
    unreachable_pub,
    missing_docs,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used
)]

#[path = "../api/common.rs"]
mod common;

mod concurrency;
mod cookie_only;
mod email_code;
mod magic_link;
mod routes;
mod safe_links;

use poem::{http::StatusCode, test::TestClient, EndpointExt};
use portcullis::{api, AuthConfig, AuthManagerBuilder, Event};
use portcullis_credentials::CredentialsApi;
use portcullis_magic_link::{EmailCodeProvider, MagicLinkApi, MagicLinkProvider};
use serde_json::{json, Value};

use common::*;

/// An app with credentials, the magic link and the email code, all
/// mounted, with default provider settings.
pub async fn ml_app(config: AuthConfig) -> TestApp {
    ml_app_with(
        config,
        MagicLinkProvider::new(),
        EmailCodeProvider::new(),
        |b| b,
    )
    .await
}

/// An app with these (customised) providers registered and handed to the
/// API, plus whatever `extra` adds to the builder.
pub async fn ml_app_with(
    config: AuthConfig,
    magic_link: MagicLinkProvider,
    email_code: EmailCodeProvider,
    extra: impl FnOnce(AuthManagerBuilder) -> AuthManagerBuilder,
) -> TestApp {
    let mut app = app_with(config, move |b| {
        extra(b.provider(magic_link).provider(email_code))
    })
    .await;
    let passwordless = MagicLinkApi::new(&app.manager);
    app.client = TestClient::new(
        api::routes(
            &app.manager,
            (CredentialsApi::new(&app.manager), passwordless),
        )
        .boxed(),
    );
    app
}

/// A config with cookie transport on, the front-end at [`APP_ORIGIN`].
pub fn cookie_config() -> AuthConfig {
    let mut config = test_config();
    config.transport.cookies = true;
    config.public_url = Some(APP_ORIGIN.into());
    config
}

/// Every `Set-Cookie` of a response.
pub fn cookies_of(resp: &poem::test::TestResponse) -> Vec<String> {
    resp.0
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value of cookie `name` among `cookies`.
pub fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c[name.len() + 1..].split(';').next().unwrap().to_owned())
}

/// What the magic-link and email-code tests do through a test app.
trait MagicLinkApp {
    /// `POST /auth/magic-link`; asserts the 202 and returns its body.
    async fn request_link(&self, email: &str) -> Value;

    /// Requests a link and returns the token of the mail it sent.
    async fn link_for(&self, email: &str) -> String;

    /// The token of the newest sign-in link mailed to `email`, checking
    /// that the link points at this API's verify endpoint.
    async fn link_token_for(&self, email: &str) -> String;

    /// `GET /auth/magic-link/verify?token=`: what a browser, a mail
    /// scanner or a prefetcher does with the mailed link (the page).
    async fn open_link(&self, token: &str) -> poem::test::TestResponse;

    /// Opens the link and presses the page's button: checks the page, then
    /// POSTs its form as a browser does (form-encoded, from the origin the
    /// page was served from).
    async fn click_link(&self, token: &str) -> poem::test::TestResponse;

    /// POSTs the link page's form with `token` from `origin`.
    async fn submit_link_page(&self, token: &str, origin: &str) -> poem::test::TestResponse;

    /// The origin of the API's public URL (where its pages are served).
    fn api_origin(&self) -> String;

    /// `POST /auth/magic-link/verify`.
    async fn post_link(&self, token: &str) -> (StatusCode, Value);

    /// `POST /auth/email-code`; asserts the 202 and returns its body.
    async fn request_code(&self, email: &str) -> Value;

    /// Requests a code and returns the code of the mail it sent.
    async fn code_for(&self, email: &str) -> String;

    /// The code of the newest sign-in code mail to `email`.
    async fn code_mailed_to(&self, email: &str) -> String;

    /// `POST /auth/email-code/verify`.
    async fn post_code(&self, email: &str, code: &str) -> (StatusCode, Value);

    /// How many mails went to `to` so far.
    async fn mail_count(&self, to: &str) -> usize;

    /// Providers of the `user_registered` events so far.
    fn registered_by(&self) -> Vec<(String, String)>;

    /// (email, provider) of the `login_succeeded` events so far.
    fn logins(&self) -> Vec<(String, String)>;

    /// (provider, code) of the `login_failed` events so far.
    fn failures(&self) -> Vec<(String, &'static str)>;

    /// Marks the stored user `email` verified or not, active or not.
    async fn patch(&self, email: &str, patch: portcullis::UserPatch);

    /// Waits out the progressive delay the manager puts on sign-ins for an
    /// address after 5 failures (at most 60 s by default).
    fn pass_sign_in_delay(&self);

    /// The email of the user an access token belongs to.
    async fn whoami(&self, access: &str) -> Value;
}

impl MagicLinkApp for TestApp {
    async fn request_link(&self, email: &str) -> Value {
        let (status, body) = self
            .post("/auth/magic-link", json!({ "email": email }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }

    async fn link_for(&self, email: &str) -> String {
        self.request_link(email).await;
        self.link_token_for(email).await
    }

    async fn link_token_for(&self, email: &str) -> String {
        let mail = self.mail(email, "sign-in link").await;
        let base = self.manager.config().public_url.clone().unwrap();
        let prefix = format!(
            "{}/auth/magic-link/verify?token=",
            base.trim_end_matches('/')
        );
        let token = link(&mail, &prefix)[prefix.len()..].to_owned();
        assert_eq!(token, link_token(&mail));
        assert_eq!(token.len(), 43, "256 bits, base64url: {token}");
        assert!(mail.html.as_deref().unwrap_or_default().contains(&token));
        token
    }

    async fn open_link(&self, token: &str) -> poem::test::TestResponse {
        self.client
            .get("/auth/magic-link/verify")
            .query("token", &token)
            .send()
            .await
    }

    async fn click_link(&self, token: &str) -> poem::test::TestResponse {
        let page = self.open_link(token).await;
        assert_eq!(page.0.status(), StatusCode::OK);
        assert_page_headers(&page);
        let html = text(page).await;
        assert!(html.contains("Sign in"), "{html}");
        let token = page_form_token(&html, "verify");
        self.submit_link_page(&token, &self.api_origin()).await
    }

    async fn submit_link_page(&self, token: &str, origin: &str) -> poem::test::TestResponse {
        self.client
            .post("/auth/magic-link/verify")
            .header("origin", origin)
            .form(&[("token", token)])
            .send()
            .await
    }

    fn api_origin(&self) -> String {
        let url = self.manager.config().public_url.clone().unwrap();
        let url = reqwest::Url::parse(&url).unwrap();
        url.origin().ascii_serialization()
    }

    async fn post_link(&self, token: &str) -> (StatusCode, Value) {
        self.post("/auth/magic-link/verify", json!({ "token": token }))
            .await
    }

    async fn request_code(&self, email: &str) -> Value {
        let (status, body) = self
            .post("/auth/email-code", json!({ "email": email }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }

    async fn code_for(&self, email: &str) -> String {
        self.request_code(email).await;
        self.code_mailed_to(email).await
    }

    async fn code_mailed_to(&self, email: &str) -> String {
        let mail = self.mail(email, "sign-in code").await;
        let code = mail.subject.rsplit(' ').next().unwrap().to_owned();
        assert!(
            code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
            "{}",
            mail.subject
        );
        assert!(mail.text.contains(&code), "{}", mail.text);
        code
    }

    async fn post_code(&self, email: &str, code: &str) -> (StatusCode, Value) {
        self.post(
            "/auth/email-code/verify",
            json!({ "email": email, "code": code }),
        )
        .await
    }

    async fn mail_count(&self, to: &str) -> usize {
        self.mails_to(to).await.len()
    }

    fn registered_by(&self) -> Vec<(String, String)> {
        self.events
            .lock()
            .iter()
            .filter_map(|e| match e {
                Event::UserRegistered { user, provider } => {
                    Some((user.email.clone(), provider.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn logins(&self) -> Vec<(String, String)> {
        self.events
            .lock()
            .iter()
            .filter_map(|e| match e {
                Event::LoginSucceeded { user, provider, .. } => {
                    Some((user.email.clone(), provider.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn failures(&self) -> Vec<(String, &'static str)> {
        self.events
            .lock()
            .iter()
            .filter_map(|e| match e {
                Event::LoginFailed { provider, code, .. } => Some((provider.clone(), *code)),
                _ => None,
            })
            .collect()
    }

    async fn patch(&self, email: &str, patch: portcullis::UserPatch) {
        let user = self.stored(email).await.expect("user");
        self.store
            .as_ref()
            .patch_user(&user.id, &patch, self.manager.now())
            .await
            .unwrap()
            .expect("patched");
    }

    fn pass_sign_in_delay(&self) {
        self.clock.advance(chrono::Duration::seconds(61));
    }

    async fn whoami(&self, access: &str) -> Value {
        let (status, me) = self.me(access).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        me
    }
}

/// The access token of a token-pair body.
pub fn access_of(body: &Value) -> String {
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token pair: {body}"))
        .to_owned()
}

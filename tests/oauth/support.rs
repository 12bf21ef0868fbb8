//! The app under test, the browser, and the OpenID provider's test API.

use std::collections::BTreeMap;

use poem::{
    http::{header, HeaderMap, StatusCode},
    test::TestClient,
    EndpointExt,
};
use portcullis::{api, AuthConfig, OpaqueToken};
use portcullis_credentials::CredentialsApi;
use portcullis_oauth::{OAuthApi, OAuthProvider, BINDING_COOKIE};
use reqwest::Url;
use serde_json::Value;

use crate::common::{self, TestApp};

/// The client id the app uses at the OpenID provider (which accepts any).
pub const CLIENT_ID: &str = "portcullis-test";

/// The OpenID provider the tests run against.
pub fn issuer() -> String {
    std::env::var("PORTCULLIS_TEST_OIDC_ISSUER").unwrap_or_else(|_| {
        panic!(
            "PORTCULLIS_TEST_OIDC_ISSUER is not set. The OAuth tests need a real OpenID \
             provider: run `scripts/oidc.sh start` and export the line it prints \
             (PORTCULLIS_TEST_OIDC_ISSUER=http://127.0.0.1:PORT), or run `scripts/test.sh`, \
             which does both."
        )
    })
}

/// The OIDC provider `acme` (discovered from the test issuer).
pub fn acme() -> OAuthProvider {
    OAuthProvider::oidc("acme", issuer(), CLIENT_ID, "acme-secret")
}

/// The test config (public URL `https://api.example.com`, so callbacks
/// are `https://api.example.com/auth/oauth/{id}/callback`).
pub fn config() -> AuthConfig {
    common::test_config()
}

/// An app on the test store with the credentials API and OAuth for
/// `providers`, each registered with the manager.
pub async fn app_with(config: AuthConfig, providers: Vec<OAuthProvider>) -> TestApp {
    let mut app = common::app_with(config, move |mut builder| {
        for provider in providers {
            builder = builder.provider(provider);
        }
        builder
    })
    .await;
    let oauth = OAuthApi::new(&app.manager).expect("valid OAuth config");
    app.client = TestClient::new(
        api::routes(&app.manager, (CredentialsApi::new(&app.manager), oauth)).boxed(),
    );
    app
}

/// An app with `acme` (and the default test config).
pub async fn app() -> TestApp {
    app_with(config(), vec![acme()]).await
}

/// A unique subject (or email local part) per test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &OpaqueToken::generate().expose()[..10]).to_lowercase()
}

/// A status, headers and JSON body (`Null` when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn location(&self) -> Url {
        let location = self
            .headers
            .get(header::LOCATION)
            .unwrap_or_else(|| panic!("no Location: {self:?}"))
            .to_str()
            .unwrap();
        Url::parse(location).unwrap()
    }

    /// The `Set-Cookie` header for `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    pub fn assert_error(&self, status: u16, code: &str) {
        common::assert_error(self.status, &self.body, status, code);
    }
}

/// A browser: keeps the app's cookies and sends them back.
#[derive(Debug, Default, Clone)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The binding cookie's value, if the browser holds one.
    pub fn binding(&self) -> Option<&str> {
        self.cookies.get(BINDING_COOKIE).map(String::as_str)
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Applies the answer's `Set-Cookie` headers (a `Max-Age=0` removes).
    fn keep(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, val) = pair.split_once('=').unwrap();
            let removed = attributes
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if removed || val.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), val.to_owned());
            }
        }
    }

    /// GETs `path_and_query` on the app with this browser's cookies.
    pub async fn get(&mut self, app: &TestApp, path_and_query: &str) -> Answer {
        let mut request = app.client.get(path_and_query);
        if !self.cookies.is_empty() {
            request = request.header(header::COOKIE, self.cookie_header());
        }
        let response = request.send().await.0;
        let status = response.status();
        let headers = response.headers().clone();
        self.keep(&headers);
        let bytes = response.into_body().into_bytes().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// Starts a sign-in with `provider`; returns the provider's URL.
    pub async fn authorize(&mut self, app: &TestApp, provider: &str) -> Url {
        let answer = self
            .get(app, &format!("/auth/oauth/{provider}/authorize"))
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{answer:?}");
        answer.location()
    }

    /// Follows the provider's redirect back to the app's callback.
    pub async fn callback(&mut self, app: &TestApp, callback: &Url) -> Answer {
        assert_eq!(
            callback.origin().ascii_serialization(),
            "https://api.example.com",
            "{callback}"
        );
        let path = match callback.query() {
            Some(query) => format!("{}?{query}", callback.path()),
            None => callback.path().to_owned(),
        };
        self.get(app, &path).await
    }
}

/// A query parameter of `url`.
pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `url` with the parameter `name` set to `value` (added or replaced).
pub fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut url = url.clone();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(name, value);
    url
}

/// The OpenID provider's test API: who signs in, with which claims.
pub struct Idp {
    http: reqwest::Client,
}

impl Idp {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// Sets the claims of `sub` (`PUT /users/{sub}`).
    pub async fn set_user(&self, sub: &str, claims: Value) {
        let response = self
            .http
            .put(format!("{}/users/{sub}", issuer()))
            .json(&claims)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{:?}", response.text().await);
    }

    /// A new user with a verified email; returns (sub, email).
    pub async fn verified_user(&self, name: &str) -> (String, String) {
        let sub = unique(&name.replace(' ', "-"));
        let email = format!("{sub}@example.com");
        self.set_user(
            &sub,
            serde_json::json!({"email": email, "email_verified": true, "name": name}),
        )
        .await;
        (sub, email)
    }

    /// Signs in as `sub` on the provider's authorization page (posting
    /// its form); returns where the provider redirects the browser.
    pub async fn approve(&self, authorize: &Url, sub: &str) -> Url {
        self.post_form(authorize, &[("sub", sub)]).await
    }

    /// Refuses on the provider's authorization page.
    pub async fn deny(&self, authorize: &Url) -> Url {
        self.post_form(authorize, &[("action", "deny")]).await
    }

    async fn post_form(&self, authorize: &Url, form: &[(&str, &str)]) -> Url {
        assert!(
            authorize.as_str().starts_with(&issuer()),
            "not the provider: {authorize}"
        );
        let response = self
            .http
            .post(authorize.clone())
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        match location {
            Some(location) if status.is_redirection() => Url::parse(&location).unwrap(),
            _ => panic!(
                "the provider did not redirect ({status}): {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
}

/// A full sign-in through the OpenID provider as `sub`: authorize,
/// approve, callback. Returns the callback's answer.
pub async fn sign_in(app: &TestApp, browser: &mut Browser, provider: &str, sub: &str) -> Answer {
    let authorize = browser.authorize(app, provider).await;
    let callback = Idp::new().approve(&authorize, sub).await;
    browser.callback(app, &callback).await
}

/// A port on 127.0.0.1 where nothing listens.
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// The user the access token of a JSON token pair belongs to.
pub async fn me(app: &TestApp, tokens: &Value) -> Value {
    let access = tokens["access_token"].as_str().expect("an access token");
    let (status, user) = app.me(access).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    user
}

/// Serves `endpoint` on 127.0.0.1 (a free port) for the rest of the test
/// process; returns its base URL `http://127.0.0.1:PORT`.
pub async fn serve<E: poem::IntoEndpoint>(endpoint: E) -> String
where
    E::Endpoint: 'static,
{
    use poem::listener::{Acceptor, Listener};
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let endpoint = endpoint.into_endpoint();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(endpoint));
    format!("http://{addr}")
}

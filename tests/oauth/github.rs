//! The GitHub preset against a local server that answers like GitHub's
//! token endpoint, `/user` and `/user/emails`.

use std::{collections::HashMap, sync::Arc};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use parking_lot::Mutex;
use poem::{
    get, handler,
    http::{HeaderMap, StatusCode},
    post,
    web::{Data, Form, Json},
    EndpointExt, IntoResponse, Response, Route,
};
use portcullis::TokenHash;
use portcullis_oauth::OAuthProvider;
use reqwest::Url;
use serde_json::{json, Value};

use crate::{
    common::{link_token, TestApp},
    support::*,
};

const CLIENT: &str = "gh-client";
const SECRET: &str = "gh-secret";

/// A GitHub account.
#[derive(Debug, Clone)]
struct Account {
    id: u64,
    login: String,
    name: Option<String>,
    email: Option<String>,
    emails: Value,
}

impl Account {
    /// An account whose primary email is `email`, verified or not.
    fn new(email: &str, verified: bool) -> Self {
        Self {
            id: u64::from_str_radix(&TokenHash::of(email).as_str()[..12], 16).unwrap(),
            login: email.split('@').next().unwrap().to_owned(),
            name: Some("The Octocat".into()),
            email: None,
            emails: json!([
                {"email": format!("old-{email}"), "primary": false, "verified": true, "visibility": null},
                {"email": email, "primary": true, "verified": verified, "visibility": "private"},
            ]),
        }
    }
}

#[derive(Default)]
struct Fake {
    /// Approved codes: the account and the PKCE challenge they were
    /// issued with.
    codes: HashMap<String, (Account, String)>,
    tokens: HashMap<String, Account>,
    /// Every form the token endpoint received.
    token_requests: Vec<HashMap<String, String>>,
    /// `/user` answers this status instead (GitHub down).
    user_status: Option<u16>,
    /// `/user/emails` answers this status instead (scope not granted).
    emails_status: Option<u16>,
}

type Shared = Arc<Mutex<Fake>>;

fn json_answer(status: u16, body: Value) -> Response {
    Json(body)
        .with_status(StatusCode::from_u16(status).unwrap())
        .into_response()
}

#[handler]
fn token_endpoint(
    headers: &HeaderMap,
    Form(form): Form<HashMap<String, String>>,
    fake: Data<&Shared>,
) -> Response {
    let mut fake = fake.lock();
    fake.token_requests.push(form.clone());
    // Without `Accept: application/json` GitHub answers a form.
    assert_eq!(headers["accept"], "application/json");
    let code = form.get("code").cloned().unwrap_or_default();
    if code == "explode" {
        return "<html>Unicorn!</html>"
            .with_status(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT)
        || form.get("client_secret").map(String::as_str) != Some(SECRET)
    {
        // GitHub answers 200 with an error object.
        return json_answer(
            200,
            json!({"error": "incorrect_client_credentials",
            "error_description": "The client_id and/or client_secret passed are incorrect."}),
        );
    }
    let bad_code = json_answer(
        200,
        json!({"error": "bad_verification_code",
        "error_description": "The code passed is incorrect or expired."}),
    );
    let Some((account, challenge)) = fake.codes.remove(&code) else {
        return bad_code;
    };
    // PKCE S256: BASE64URL(SHA256(verifier)) must be the challenge.
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let digest: Vec<u8> = (0..32)
        .map(|i| {
            u8::from_str_radix(&TokenHash::of(&verifier).as_str()[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect();
    if URL_SAFE_NO_PAD.encode(digest) != challenge {
        return bad_code;
    }
    let access = format!("gho_{}", unique("t"));
    fake.tokens.insert(access.clone(), account);
    json_answer(
        200,
        json!({"access_token": access, "token_type": "bearer", "scope": "read:user,user:email"}),
    )
}

fn account(headers: &HeaderMap, fake: &Fake) -> Option<Account> {
    assert!(
        headers.contains_key("user-agent"),
        "GitHub requires a User-Agent"
    );
    assert_eq!(headers["accept"], "application/vnd.github+json");
    let bearer = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    fake.tokens.get(bearer).cloned()
}

#[handler]
fn user_endpoint(headers: &HeaderMap, fake: Data<&Shared>) -> Response {
    let fake = fake.lock();
    if let Some(status) = fake.user_status {
        return json_answer(status, json!({"message": "Server Error"}));
    }
    match account(headers, &fake) {
        Some(a) => json_answer(
            200,
            json!({
                "id": a.id, "login": a.login, "name": a.name, "email": a.email,
                "avatar_url": "https://avatars.example.com/u/1", "html_url": "https://github.com/octocat",
            }),
        ),
        None => json_answer(401, json!({"message": "Bad credentials"})),
    }
}

#[handler]
fn emails_endpoint(headers: &HeaderMap, fake: Data<&Shared>) -> Response {
    let fake = fake.lock();
    if let Some(status) = fake.emails_status {
        return json_answer(status, json!({"message": "Not Found"}));
    }
    match account(headers, &fake) {
        Some(a) => json_answer(200, a.emails),
        None => json_answer(401, json!({"message": "Bad credentials"})),
    }
}

struct GitHub {
    base: String,
    fake: Shared,
}

impl GitHub {
    async fn start() -> Self {
        let fake = Shared::default();
        let app = Route::new()
            .at("/login/oauth/access_token", post(token_endpoint))
            .at("/user", get(user_endpoint))
            .at("/user/emails", get(emails_endpoint))
            .data(fake.clone());
        Self {
            base: serve(app).await,
            fake,
        }
    }

    fn provider(&self) -> OAuthProvider {
        OAuthProvider::github(CLIENT, SECRET)
            .with_authorization_url(format!("{}/login/oauth/authorize", self.base))
            .with_token_url(format!("{}/login/oauth/access_token", self.base))
            .with_api_base_url(&self.base)
    }

    /// The user approves on GitHub's page: a code is issued for `account`
    /// and the browser goes back to the redirect URI.
    fn approve(&self, authorize: &Url, account: &Account) -> Url {
        assert!(authorize
            .as_str()
            .starts_with(&format!("{}/login/oauth/authorize?", self.base)));
        let code = unique("code");
        let challenge = param(authorize, "code_challenge").unwrap();
        self.fake
            .lock()
            .codes
            .insert(code.clone(), (account.clone(), challenge));
        let mut back = Url::parse(&param(authorize, "redirect_uri").unwrap()).unwrap();
        back.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &param(authorize, "state").unwrap());
        back
    }

    async fn sign_in(&self, app: &TestApp, account: &Account) -> Answer {
        let mut browser = Browser::new();
        let authorize = browser.authorize(app, "github").await;
        let callback = self.approve(&authorize, account);
        browser.callback(app, &callback).await
    }
}

#[tokio::test]
async fn github_signs_in_with_the_verified_primary_email() {
    let github = GitHub::start().await;
    let app = app_with(config(), vec![github.provider()]).await;
    let email = format!("{}@example.com", unique("octo"));
    let account = Account::new(&email, true);

    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "github").await;
    assert_eq!(param(&authorize, "client_id").as_deref(), Some(CLIENT));
    assert_eq!(
        param(&authorize, "scope").as_deref(),
        Some("read:user user:email")
    );
    assert_eq!(
        param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        param(&authorize, "redirect_uri").as_deref(),
        Some("https://api.example.com/auth/oauth/github/callback")
    );
    assert!(param(&authorize, "state").is_some());
    assert!(
        param(&authorize, "nonce").is_none(),
        "no nonce without OpenID Connect"
    );
    let answer = browser
        .callback(&app, &github.approve(&authorize, &account))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let user = me(&app, &answer.body).await;
    assert_eq!(user["email"], email);
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["name"], "The Octocat");
    let link = app
        .store
        .as_ref()
        .find_linked_account("github", &account.id.to_string())
        .await
        .unwrap()
        .expect("linked by GitHub's numeric id");
    assert_eq!(link.user_id.to_string(), user["id"].as_str().unwrap());

    // The token request: the secret in the body (GitHub's way), the PKCE
    // verifier, the same redirect URI.
    let request = github.fake.lock().token_requests[0].clone();
    assert_eq!(request["grant_type"], "authorization_code");
    assert_eq!(
        request["redirect_uri"],
        "https://api.example.com/auth/oauth/github/callback"
    );
    assert_eq!(request["code_verifier"].len(), 43);

    // Returning, with a renamed login and a new primary email: same user.
    let mut renamed = account.clone();
    renamed.login = "octo-renamed".into();
    renamed.emails = json!([{"email": format!("new-{email}"), "primary": true, "verified": true}]);
    let again = github.sign_in(&app, &renamed).await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(me(&app, &again.body).await["id"], user["id"]);
}

#[tokio::test]
async fn github_an_unverified_primary_email_is_not_linked() {
    let github = GitHub::start().await;
    let app = app_with(config(), vec![github.provider()]).await;
    let email = format!("{}@example.com", unique("victim"));
    app.register(&email).await;
    let token = link_token(&app.mail(&email, "Confirm your email").await);
    let (status, _) = app
        .post("/auth/verify-email", json!({ "token": token }))
        .await;
    assert_eq!(status, StatusCode::OK);

    let answer = github.sign_in(&app, &Account::new(&email, false)).await;
    answer.assert_error(409, "ACCOUNT_EXISTS");

    // Without `/user/emails` (scope not granted) the public profile email
    // is unverified: not linked either.
    github.fake.lock().emails_status = Some(404);
    let mut public = Account::new("unused@example.com", true);
    public.email = Some(email.clone());
    github
        .sign_in(&app, &public)
        .await
        .assert_error(409, "ACCOUNT_EXISTS");
}

#[tokio::test]
async fn github_a_bad_code_is_a_clear_error() {
    let github = GitHub::start().await;
    let app = app_with(config(), vec![github.provider()]).await;
    let account = Account::new(&format!("{}@example.com", unique("code")), true);

    // A code GitHub never issued (GitHub answers 200 with an error).
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "github").await;
    let callback = with_param(&github.approve(&authorize, &account), "code", "forged");
    browser
        .callback(&app, &callback)
        .await
        .assert_error(422, "OAUTH_CODE_REJECTED");

    // A code issued for another PKCE challenge (intercepted code).
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "github").await;
    let other = with_param(&authorize, "code_challenge", "x".repeat(43).as_str());
    let callback = github.approve(&other, &account);
    browser
        .callback(&app, &callback)
        .await
        .assert_error(422, "OAUTH_CODE_REJECTED");
}

#[tokio::test]
async fn github_token_endpoint_trouble_is_503() {
    let github = GitHub::start().await;
    let account = Account::new(&format!("{}@example.com", unique("down")), true);

    // GitHub answers 500 with an HTML page.
    let app = app_with(config(), vec![github.provider()]).await;
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "github").await;
    let callback = with_param(&github.approve(&authorize, &account), "code", "explode");
    let answer = browser.callback(&app, &callback).await;
    answer.assert_error(503, "SERVICE_UNAVAILABLE");

    // Nothing listens.
    let port = closed_port().await;
    let down = github
        .provider()
        .with_token_url(format!("http://127.0.0.1:{port}/login/oauth/access_token"));
    let app = app_with(config(), vec![down]).await;
    github
        .sign_in(&app, &account)
        .await
        .assert_error(503, "SERVICE_UNAVAILABLE");

    // A wrong client secret (misconfiguration): the provider refuses us.
    let wrong = OAuthProvider::github(CLIENT, "wrong-secret")
        .with_authorization_url(format!("{}/login/oauth/authorize", github.base))
        .with_token_url(format!("{}/login/oauth/access_token", github.base))
        .with_api_base_url(&github.base);
    let app = app_with(config(), vec![wrong]).await;
    github
        .sign_in(&app, &account)
        .await
        .assert_error(503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn github_api_trouble_is_503() {
    let github = GitHub::start().await;
    let app = app_with(config(), vec![github.provider()]).await;
    let account = Account::new(&format!("{}@example.com", unique("api")), true);
    github.fake.lock().user_status = Some(502);
    github
        .sign_in(&app, &account)
        .await
        .assert_error(503, "SERVICE_UNAVAILABLE");
    github.fake.lock().user_status = None;
    assert_eq!(github.sign_in(&app, &account).await.status, StatusCode::OK);
}

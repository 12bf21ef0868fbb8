//! Cookie-only mode on the magic link and the email code: no token in a
//! body or in the URL the browser lands on; the cookies carry the session.

use poem::http::StatusCode;
use portcullis::AuthConfig;
use serde_json::{json, Value};

use crate::common::*;
use crate::*;

fn cookie_only_config() -> AuthConfig {
    let mut config = cookie_config();
    config.transport.cookie_only = true;
    config
}

/// The access cookie of `resp`, checking the refresh cookie is set too.
fn session_cookie(resp: &poem::test::TestResponse) -> String {
    let cookies = cookies_of(resp);
    assert!(
        cookie_value(&cookies, "portcullis_refresh").is_some(),
        "{cookies:?}"
    );
    cookie_value(&cookies, "portcullis_access").expect("access cookie")
}

async fn email_by_cookie(app: &TestApp, access: &str) -> Value {
    let (status, me) = parts(
        app.client
            .get("/auth/me")
            .header("cookie", format!("portcullis_access={access}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me["email"].clone()
}

/// A body with the pair's lifetime and no token.
fn no_tokens(raw: &str, access: &str) {
    let body: Value = serde_json::from_str(raw).unwrap();
    assert!(body.get("access_token").is_none(), "{raw}");
    assert!(body.get("refresh_token").is_none(), "{raw}");
    assert_eq!(body["token_type"], "bearer", "{raw}");
    assert!(!raw.contains(access), "{raw}");
}

#[tokio::test]
async fn the_link_lands_without_a_token_in_the_url_or_body() {
    let mut config = cookie_only_config();
    config.redirects.frontend_url = Some("https://app.example.com/signed-in".into());
    let app = ml_app(config).await;
    let token = app.link_for("jar@example.com").await;
    let resp = app.click_link(&token).await;
    assert_eq!(resp.0.status(), StatusCode::SEE_OTHER);
    let location = resp
        .0
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(location, "https://app.example.com/signed-in", "no fragment");
    let access = session_cookie(&resp);
    assert!(!location.contains(&access));
    assert!(text(resp).await.is_empty());
    assert_eq!(email_by_cookie(&app, &access).await, "jar@example.com");
}

#[tokio::test]
async fn json_verify_and_the_email_code_answer_without_tokens() {
    let app = ml_app(cookie_only_config()).await;
    // No front-end URL: the page's form gets the JSON answer.
    let token = app.link_for("page@example.com").await;
    let resp = app.click_link(&token).await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let access = session_cookie(&resp);
    no_tokens(&text(resp).await, &access);
    assert_eq!(email_by_cookie(&app, &access).await, "page@example.com");

    // A front-end posting the token as JSON.
    let token = app.link_for("spa@example.com").await;
    let resp = app
        .client
        .post("/auth/magic-link/verify")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({ "token": token }))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let access = session_cookie(&resp);
    no_tokens(&text(resp).await, &access);
    assert_eq!(email_by_cookie(&app, &access).await, "spa@example.com");

    // The email code.
    let code = app.code_for("code@example.com").await;
    let resp = app
        .client
        .post("/auth/email-code/verify")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({ "email": "code@example.com", "code": code }))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let access = session_cookie(&resp);
    no_tokens(&text(resp).await, &access);
    assert_eq!(email_by_cookie(&app, &access).await, "code@example.com");
}

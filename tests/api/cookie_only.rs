//! Cookie-only mode (`transport.cookie_only`): no token in any response
//! body or URL, so page scripts never see one; the HttpOnly cookies carry
//! the session (issue 12, "cookie transport still hands tokens to page
//! scripts").

use poem::http::StatusCode;
use portcullis::{AuthConfig, AuthManager};
use serde_json::{json, Value};

use crate::common::*;

pub fn cookie_only_config() -> AuthConfig {
    let mut config = test_config();
    config.transport.cookies = true;
    config.transport.cookie_only = true;
    config.public_url = Some(APP_ORIGIN.into());
    config
}

/// The value of cookie `name` among `cookies`.
fn cookie(cookies: &[String], name: &str) -> String {
    cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c[name.len() + 1..].split(';').next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no {name} cookie: {cookies:?}"))
}

/// Checks a sign-in or refresh answer: 200, cookies with both tokens, a
/// body with neither (nor their values); returns (access, refresh).
async fn tokens_only_in_cookies(resp: poem::test::TestResponse) -> (String, String) {
    assert_eq!(resp.0.status(), StatusCode::OK);
    let cookies = cookies_set(&resp);
    let access = cookie(&cookies, "portcullis_access");
    let refresh = cookie(&cookies, "portcullis_refresh");
    let raw = text(resp).await;
    let body: Value = serde_json::from_str(&raw).unwrap();
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["expires_in", "token_type"], "{raw}");
    assert!(!raw.contains(&access) && !raw.contains(&refresh), "{raw}");
    (access, refresh)
}

async fn me_by_cookie(app: &TestApp, access: &str) -> (StatusCode, Value) {
    parts(
        app.client
            .get("/auth/me")
            .header("cookie", format!("portcullis_access={access}"))
            .send()
            .await,
    )
    .await
}

#[tokio::test]
async fn sign_in_refresh_and_password_change_put_tokens_only_in_cookies() {
    let app = app_with_config(cookie_only_config()).await;
    app.register("only@example.com").await;

    // JSON login.
    let login = app
        .client
        .post("/auth/login")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({"email": "only@example.com", "password": PASSWORD}))
        .send()
        .await;
    let (access, refresh) = tokens_only_in_cookies(login).await;
    let (status, me) = me_by_cookie(&app, &access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "only@example.com");

    // The OAuth2 password form.
    let form = app
        .client
        .post("/auth/token")
        .header("origin", APP_ORIGIN)
        .form(&[("username", "only@example.com"), ("password", PASSWORD)])
        .send()
        .await;
    tokens_only_in_cookies(form).await;

    // Refresh from the cookie: the rotated pair, again only in cookies.
    let refreshed = app
        .client
        .post("/auth/refresh")
        .header("origin", APP_ORIGIN)
        .header("cookie", format!("portcullis_refresh={refresh}"))
        .body_json(&json!({}))
        .send()
        .await;
    let (access, _) = tokens_only_in_cookies(refreshed).await;
    assert_eq!(me_by_cookie(&app, &access).await.0, StatusCode::OK);

    // Changing the password hands this device a new pair: in cookies.
    let changed = app
        .client
        .post("/auth/account/change-password")
        .header("origin", APP_ORIGIN)
        .header("cookie", format!("portcullis_access={access}"))
        .body_json(&json!({"current_password": PASSWORD, "new_password": "Other#Pass-2024!x"}))
        .send()
        .await;
    let (access, _) = tokens_only_in_cookies(changed).await;
    assert_eq!(me_by_cookie(&app, &access).await.0, StatusCode::OK);
}

#[tokio::test]
async fn with_cookies_but_not_cookie_only_bodies_keep_the_pair() {
    let mut config = cookie_only_config();
    config.transport.cookie_only = false;
    let app = app_with_config(config).await;
    app.register("both@example.com").await;
    let resp = app
        .client
        .post("/auth/login")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({"email": "both@example.com", "password": PASSWORD}))
        .send()
        .await;
    let cookies = cookies_set(&resp);
    let (status, body) = parts(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["access_token"], cookie(&cookies, "portcullis_access"));
    assert_eq!(
        body["refresh_token"],
        cookie(&cookies, "portcullis_refresh")
    );
}

#[tokio::test]
async fn cookie_only_needs_cookie_transport() {
    let mut config = cookie_only_config();
    config.transport.cookies = false;
    let err = AuthManager::builder(config)
        .build()
        .expect_err("cookie_only without cookies is refused");
    assert_eq!(err.code(), "CONFIG_ERROR", "{err}");
    assert!(err.to_string().contains("cookie_only"), "{err}");
}

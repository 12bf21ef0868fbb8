use poem::http::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn login_answers_a_token_pair_without_caching() {
    let app = app().await;
    app.register("erin@example.com").await;
    let resp = app
        .client
        .post("/auth/login")
        .body_json(&json!({"email": "ERIN@example.com", "password": PASSWORD}))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("cache-control", "no-store");
    resp.assert_header_is_not_exist("set-cookie");
    let body = body(resp).await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    let (status, me) = app.me(body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "erin@example.com");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = app().await;
    app.register("frank@example.com").await;
    let (s1, wrong) = app
        .post(
            "/auth/login",
            json!({"email": "frank@example.com", "password": "not-the-password"}),
        )
        .await;
    let (s2, unknown) = app
        .post(
            "/auth/login",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(s1, &wrong, 401, "INVALID_CREDENTIALS");
    assert_eq!((s1, &wrong), (s2, &unknown));
    let failed: Vec<_> = app
        .event_names()
        .into_iter()
        .filter(|n| *n == "login_failed")
        .collect();
    assert_eq!(failed.len(), 2);
}

#[tokio::test]
async fn token_endpoint_takes_the_oauth2_password_form() {
    let app = app().await;
    app.register("gina@example.com").await;
    let resp = app
        .client
        .post("/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", "gina@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("cache-control", "no-store");
    let body = body(resp).await;
    assert_eq!(body["token_type"], "bearer");

    let (status, body) = parts(
        app.client
            .post("/auth/token")
            .form(&[
                ("username", "gina@example.com"),
                ("password", "wrong-password"),
            ])
            .send()
            .await,
    )
    .await;
    // RFC 6749 §5.2 errors (see `tests/api/swagger.rs` for every case).
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    let (status, body) = parts(
        app.client
            .post("/auth/token")
            .form(&[
                ("grant_type", "client_credentials"),
                ("username", "x"),
                ("password", "y"),
            ])
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unsupported_grant_type");

    let (status, body) = parts(
        app.client
            .post("/auth/token")
            .form(&[("username", "gina@example.com")])
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn inactive_users_get_403_only_with_the_right_password() {
    let app = app().await;
    app.register("hank@example.com").await;
    let store = app.store.as_ref();
    let mut user = store
        .find_user_by_email("hank@example.com")
        .await
        .unwrap()
        .unwrap();
    user.is_active = false;
    assert!(store.update_user(&user).await.unwrap());
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "hank@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "USER_INACTIVE");
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "hank@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn deactivation_kills_live_access_and_refresh_tokens() {
    let app = app().await;
    let (access, refresh) = app.signed_in("ian@example.com").await;
    let store = app.store.as_ref();
    let mut user = store
        .find_user_by_email("ian@example.com")
        .await
        .unwrap()
        .unwrap();
    user.is_active = false;
    store.update_user(&user).await.unwrap();
    let (status, body) = app.me(&access).await;
    assert_error(status, &body, 403, "USER_INACTIVE");
    let (status, body) = app.refresh(&refresh).await;
    assert_error(status, &body, 403, "USER_INACTIVE");
}

#[tokio::test]
async fn unverified_users_are_refused_when_verification_is_required() {
    let mut config = test_config();
    config.accounts.require_verified_email = true;
    let app = app_with_config(config).await;
    app.register("jane@example.com").await;
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "jane@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "EMAIL_NOT_VERIFIED");
    let store = app.store.as_ref();
    let mut user = store
        .find_user_by_email("jane@example.com")
        .await
        .unwrap()
        .unwrap();
    user.email_verified = true;
    store.update_user(&user).await.unwrap();
    app.login("jane@example.com").await;
}

#[tokio::test]
async fn bcrypt_hashes_sign_in_and_are_upgraded_to_argon2id() {
    let app = app().await;
    app.register("kim@example.com").await;
    let store = app.store.as_ref();
    let mut user = store
        .find_user_by_email("kim@example.com")
        .await
        .unwrap()
        .unwrap();
    let legacy = bcrypt::hash("legacy-Pa55word!", 4).unwrap();
    let legacy = format!("$2y${}", &legacy[4..]);
    user.password_hash = Some(legacy.clone());
    store.update_user(&user).await.unwrap();

    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "kim@example.com", "password": "legacy-wrong"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unchanged = store.find_user(&user.id).await.unwrap().unwrap();
    assert_eq!(unchanged.password_hash.as_deref(), Some(legacy.as_str()));

    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "kim@example.com", "password": "legacy-Pa55word!"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let upgraded = store.find_user(&user.id).await.unwrap().unwrap();
    let hash = upgraded.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
    assert!(app.event_names().contains(&"password_rehashed"));
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "kim@example.com", "password": "legacy-Pa55word!"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn long_passwords_up_to_the_configured_limit_sign_in() {
    let mut config = test_config();
    config.password.max_bytes = 8192;
    let app = app_with_config(config).await;
    let long = "Long-pass-phrase-9! ".repeat(250); // 5,000 bytes
    let (status, _) = app
        .post(
            "/auth/register",
            json!({"email": "lou@example.com", "password": long}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "lou@example.com", "password": long}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "lou@example.com", "password": "x".repeat(9000)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn providers_lists_credentials() {
    let app = app().await;
    let (status, body) = parts(app.client.get("/auth/providers").send().await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"providers": [{"id": "credentials", "kind": "password"}]})
    );
}

#[tokio::test]
async fn a_user_without_a_password_gets_the_same_401() {
    let app = app_with_passwordless(test_config()).await;
    app.passwordless("nopw@example.com").await;
    let user = app.stored("nopw@example.com").await.unwrap();
    assert!(user.password_hash.is_none());
    let (s1, no_password) = app
        .post(
            "/auth/login",
            json!({"email": "nopw@example.com", "password": PASSWORD}),
        )
        .await;
    let (s2, unknown) = app
        .post(
            "/auth/login",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(s1, &no_password, 401, "INVALID_CREDENTIALS");
    assert_eq!((s1, &no_password), (s2, &unknown));
}

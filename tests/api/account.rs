//! Deleting one's own account: soft by default, hard by config, confirmed
//! by password or a mailed code.

use poem::http::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

async fn delete(
    app: &TestApp,
    access: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    app.call(Method::DELETE, "/auth/account", access, Some(body))
        .await
}

#[tokio::test]
async fn soft_delete_deactivates_and_keeps_the_email_reserved() {
    let app = app_with_passwordless(test_config()).await;
    let (access, refresh) = app.signed_in("dan@example.com").await;

    let (status, body) = delete(&app, &access, json!({})).await;
    assert_error(status, &body, 422, "CONFIRMATION_REQUIRED");
    let (status, body) = delete(&app, &access, json!({"password": "wrong-password"})).await;
    assert_error(status, &body, 422, "WRONG_PASSWORD");
    assert!(app.stored("dan@example.com").await.unwrap().is_active);

    let (status, body) = delete(&app, &access, json!({"password": PASSWORD})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let user = app.stored("dan@example.com").await.expect("record kept");
    assert!(!user.is_active);
    assert_eq!(app.me(&access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh(&refresh).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "dan@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "USER_INACTIVE");
    // No provider signs a deactivated user in (verified on both sides, so
    // the identity links to this user).
    app.store
        .as_ref()
        .patch_user(
            &user.id,
            &portcullis::UserPatch::new().email_verified(true),
            app.manager.now(),
        )
        .await
        .unwrap();
    let err = app
        .manager
        .sign_in(
            "trust-email",
            portcullis::ProviderRequest::new(json!({"email": "dan@example.com"})),
        )
        .await;
    assert!(
        matches!(err, Err(portcullis::Error::InactiveUser)),
        "{err:?}"
    );
    // Reserved.
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "dan@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 409, "EMAIL_TAKEN");
    assert!(app.event_names().contains(&"user_deleted"));
}

#[tokio::test]
async fn hard_delete_removes_the_user_and_frees_the_email() {
    let mut config = test_config();
    config.accounts.hard_delete = true;
    let app = app_with_config(config).await;
    let (access, refresh) = app.signed_in("hank@example.com").await;
    let id = app.stored("hank@example.com").await.unwrap().id;

    let (status, body) = delete(&app, &access, json!({"password": PASSWORD})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(app.store.as_ref().find_user(&id).await.unwrap().is_none());
    assert_eq!(app.me(&access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh(&refresh).await.0, StatusCode::UNAUTHORIZED);
    app.register("hank@example.com").await;
}

#[tokio::test]
async fn users_without_a_password_confirm_with_a_mailed_code() {
    let app = app_with_passwordless(test_config()).await;
    let (access, _) = app.passwordless("pat@example.com").await;
    let (other, _) = app.passwordless("oli@example.com").await;

    let (status, body) = delete(&app, &access, json!({"password": "anything"})).await;
    assert_error(status, &body, 422, "CONFIRMATION_REQUIRED");
    assert_eq!(body["field"], "code");

    let (status, body) = app
        .call(Method::POST, "/auth/account/delete-code", &access, None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = app.mail("pat@example.com", "Confirm the deletion").await;
    let code = mail
        .text
        .lines()
        .find(|l| l.len() == 43 && !l.contains(' '))
        .expect("the code on its own line")
        .to_owned();

    let (status, body) = delete(&app, &access, json!({"code": "not-the-code"})).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    // Another user cannot use it.
    let (status, body) = delete(&app, &other, json!({"code": code})).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.stored("oli@example.com").await.unwrap().is_active);

    let (status, body) = delete(&app, &access, json!({"code": code})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!app.stored("pat@example.com").await.unwrap().is_active);
}

#[tokio::test]
async fn deletion_codes_expire() {
    let app = app_with_passwordless(test_config()).await;
    let (access, _) = app.passwordless("quin@example.com").await;
    app.call(Method::POST, "/auth/account/delete-code", &access, None)
        .await;
    let mail = app.mail("quin@example.com", "Confirm the deletion").await;
    let code = mail
        .text
        .lines()
        .find(|l| l.len() == 43 && !l.contains(' '))
        .unwrap()
        .to_owned();
    app.clock
        .advance(chrono::Duration::minutes(15) + chrono::Duration::seconds(1));
    let (status, body) = delete(&app, &access, json!({"code": code})).await;
    // The access token outlives the code here (30 min default).
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.stored("quin@example.com").await.unwrap().is_active);
}

#[tokio::test]
async fn delete_clears_cookies_in_cookie_mode() {
    let mut config = test_config();
    config.transport.cookies = true;
    config.public_url = Some(APP_ORIGIN.into());
    let app = app_with_config(config).await;
    let (access, _) = app.signed_in("coo@example.com").await;
    let resp = app
        .client
        .delete("/auth/account")
        .header("origin", APP_ORIGIN)
        .header("authorization", format!("Bearer {access}"))
        .body_json(&json!({"password": PASSWORD}))
        .send()
        .await;
    resp.assert_status(StatusCode::NO_CONTENT);
    let cookies: Vec<String> = resp
        .0
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("portcullis_access=;") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn an_admin_can_restore_a_soft_deleted_account() {
    let app = app().await;
    let (access, _) = app.signed_in("amy@example.com").await;
    let (status, body) = delete(&app, &access, json!({"password": PASSWORD})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.manager
        .ensure_superuser("root@example.com", &portcullis::Secret::new(PASSWORD))
        .await
        .unwrap();
    let root = app.login("root@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = app.stored("amy@example.com").await.unwrap().id;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/users/{id}"),
            &root,
            Some(json!({"is_active": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same account, password and all, signs in again.
    let tokens = app.login("amy@example.com").await;
    let (status, me) = app.me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], id.to_string());
}

/// A deletion code mailed before the password changed is dead: the code is
/// bound to the credential epoch.
#[tokio::test]
async fn a_deletion_code_dies_with_a_password_change() {
    let app = app().await;
    let (access, _) = app.signed_in("epoch@example.com").await;
    let (status, _) = app
        .call(Method::POST, "/auth/account/delete-code", &access, None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mail = app.mail("epoch@example.com", "Confirm the deletion").await;
    let code = mail
        .text
        .lines()
        .find(|l| l.len() == 43 && !l.contains(' '))
        .expect("the code on its own line")
        .to_owned();
    let (status, pair) = app
        .call(
            Method::POST,
            "/auth/account/change-password",
            &access,
            Some(json!({"current_password": PASSWORD, "new_password": "An0ther-Secret!pass"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let access = pair["access_token"].as_str().unwrap();
    let (status, body) = delete(&app, access, json!({ "code": code })).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.stored("epoch@example.com").await.unwrap().is_active);
}

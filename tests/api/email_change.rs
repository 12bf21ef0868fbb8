//! Changing the email: confirmation link to the new address, notice to
//! the old, nothing changes until confirmed, uniqueness at confirmation.

use poem::http::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

const PATH: &str = "/auth/account/change-email";

async fn request(
    app: &TestApp,
    access: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    app.call(Method::POST, PATH, access, Some(body)).await
}

async fn confirm(app: &TestApp, token: &str) -> (StatusCode, serde_json::Value) {
    parts(
        app.client
            .get(format!("/auth/account/confirm-email-change?token={token}"))
            .send()
            .await,
    )
    .await
}

#[tokio::test]
async fn the_new_address_confirms_and_every_session_signs_in_again() {
    let app = app().await;
    let (access, refresh) = app.signed_in("old@example.com").await;
    let (status, body) = request(
        &app,
        &access,
        json!({"new_email": "New@Example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let confirm_mail = app.mail("new@example.com", "Confirm your new email").await;
    let url = link(
        &confirm_mail,
        "https://api.example.com/auth/account/confirm-email-change?token=",
    );
    assert!(url.len() > 80);
    let notice = app.mail("old@example.com", "Email change requested").await;
    assert!(notice.text.contains("New@Example.com"));
    assert!(
        !notice.text.contains("token="),
        "the old address gets no link"
    );

    // Nothing changed yet.
    let (status, me) = app.me(&access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "old@example.com");

    let (status, user) = confirm(&app, &link_token(&confirm_mail)).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email"], "New@Example.com");
    assert_eq!(user["email_verified"], true);

    assert_eq!(app.me(&access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh(&refresh).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "old@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    app.login("new@example.com").await;
    assert!(app.stored("old@example.com").await.is_none());
    assert!(app.event_names().contains(&"email_changed"));

    // Single use.
    let (status, body) = confirm(&app, &link_token(&confirm_mail)).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn requests_are_checked_before_anything_is_mailed() {
    let app = app().await;
    let (access, _) = app.signed_in("ann@example.com").await;
    app.register("taken@example.com").await;

    let (status, body) = request(&app, &access, json!({"new_email": "x@example.com"})).await;
    assert_error(status, &body, 422, "PASSWORD_REQUIRED");
    let (status, body) = request(
        &app,
        &access,
        json!({"new_email": "x@example.com", "password": "wrong-password"}),
    )
    .await;
    assert_error(status, &body, 422, "WRONG_PASSWORD");
    let (status, body) = request(
        &app,
        &access,
        json!({"new_email": "ANN@example.com", "password": PASSWORD}),
    )
    .await;
    assert_error(status, &body, 422, "SAME_EMAIL");
    let (status, body) = request(
        &app,
        &access,
        json!({"new_email": "nope", "password": PASSWORD}),
    )
    .await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
    let (status, body) = request(
        &app,
        &access,
        json!({"new_email": "taken@example.com", "password": PASSWORD}),
    )
    .await;
    assert_error(status, &body, 409, "EMAIL_TAKEN");
    let (status, body) = request(
        &app,
        &access,
        json!({"new_email": "x@example.com", "password": PASSWORD, "email_verified": true}),
    )
    .await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
    assert!(app.mails_to("x@example.com").await.is_empty());
}

#[tokio::test]
async fn an_address_taken_before_confirmation_is_refused() {
    let app = app().await;
    let (access, _) = app.signed_in("bea@example.com").await;
    let (status, _) = request(
        &app,
        &access,
        json!({"new_email": "wanted@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let token = link_token(
        &app.mail("wanted@example.com", "Confirm your new email")
            .await,
    );
    app.register("wanted@example.com").await;

    let (status, body) = confirm(&app, &token).await;
    assert_error(status, &body, 409, "EMAIL_TAKEN");
    let bea = app.stored("bea@example.com").await.expect("unchanged");
    assert_eq!(bea.token_version, 0);
    assert_eq!(app.me(&access).await.0, StatusCode::OK);
}

#[tokio::test]
async fn confirmation_links_expire_after_30_minutes() {
    let app = app().await;
    let (access, _) = app.signed_in("cal@example.com").await;
    request(
        &app,
        &access,
        json!({"new_email": "later@example.com", "password": PASSWORD}),
    )
    .await;
    let token = link_token(
        &app.mail("later@example.com", "Confirm your new email")
            .await,
    );
    app.clock
        .advance(chrono::Duration::minutes(30) + chrono::Duration::seconds(1));
    let (status, body) = confirm(&app, &token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.stored("cal@example.com").await.is_some());
}

#[tokio::test]
async fn users_without_a_password_change_email_without_one() {
    let app = app_with_passwordless(test_config()).await;
    let (access, _) = app.passwordless("link@example.com").await;
    let (status, body) = request(&app, &access, json!({"new_email": "moved@example.com"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let token = link_token(
        &app.mail("moved@example.com", "Confirm your new email")
            .await,
    );
    let (status, user) = confirm(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email"], "moved@example.com");
}

#[tokio::test]
async fn a_stale_confirmation_link_is_gone() {
    let app = app().await;
    let (access, _) = app.signed_in("dora@example.com").await;
    let (status, _) = request(
        &app,
        &access,
        json!({"new_email": "first-move@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let token = link_token(
        &app.mail("first-move@example.com", "Confirm your new email")
            .await,
    );
    // Another change lands first.
    let user = app.stored("dora@example.com").await.unwrap();
    app.manager
        .store()
        .patch_user(
            &user.id,
            &portcullis::UserPatch::new()
                .email("elsewhere@example.com")
                .unwrap(),
            app.manager.now(),
        )
        .await
        .unwrap()
        .expect("moved");
    let (status, body) = confirm(&app, &token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.stored("elsewhere@example.com").await.is_some());
    assert!(app.stored("first-move@example.com").await.is_none());
}

#[tokio::test]
async fn confirming_a_new_address_removes_identities_linked_unverified() {
    let app = app().await;
    let (access, _) = app.signed_in("moving@example.com").await;
    let user = app.stored("moving@example.com").await.unwrap();
    // An identity linked from an email its provider had not verified, and
    // one linked with a verified email.
    for (subject, verified) in [("unproven-1", false), ("proven-1", true)] {
        app.manager
            .store()
            .insert_linked_account(
                &portcullis::LinkedAccount::new(
                    "acme",
                    subject,
                    user.id.clone(),
                    Some("moving@example.com".into()),
                    chrono::Utc::now(),
                )
                .with_email_verified(verified),
            )
            .await
            .unwrap();
    }
    let (status, body) = request(
        &app,
        &access,
        json!({"new_email": "moved@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = app
        .mail("moved@example.com", "Confirm your new email")
        .await;
    let (status, body) = confirm(&app, &link_token(&mail)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let left = app
        .manager
        .store()
        .list_linked_accounts(&user.id)
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|l| l.subject.as_str()).collect::<Vec<_>>(),
        ["proven-1"]
    );
    // The notice goes to the address just proven.
    let notice = app
        .mail("moved@example.com", "Sign-in methods removed")
        .await;
    assert!(notice.text.contains("acme"), "{}", notice.text);
    assert!(app.event_names().contains(&"account_unlinked"));
}

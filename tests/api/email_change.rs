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

const CONFIRM: &str = "/auth/account/confirm-email-change";

/// Opens the mailed link and presses its page's button.
async fn confirm(app: &TestApp, token: &str) -> (StatusCode, serde_json::Value) {
    app.press_page(CONFIRM, "confirm-email-change", token).await
}

#[tokio::test]
async fn opening_the_confirmation_link_by_get_or_head_changes_nothing() {
    let app = app().await;
    let (access, _) = app.signed_in("keep@example.com").await;
    let (status, body) = request(
        &app,
        &access,
        json!({"new_email": "next@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let token = link_token(&app.mail("next@example.com", "Confirm your new email").await);
    for _ in 0..2 {
        let posted = app.open_page(CONFIRM, "confirm-email-change", &token).await;
        assert_eq!(posted, token);
    }
    app.head_page(CONFIRM, &token).await;
    // Nothing changed: same address, the session still works.
    let (status, me) = app.me(&access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "keep@example.com");
    assert!(app.stored("next@example.com").await.is_none());
    assert!(!app.event_names().contains(&"email_changed"));

    // JSON POST (a front-end's own page) confirms, once.
    let (status, user) = app.post(CONFIRM, json!({ "token": token })).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email"], "next@example.com");
    let (status, body) = confirm(&app, &token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
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
    app.store
        .as_ref()
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

/// The code on its own line of a mailed code message.
fn mailed_code(mail: &portcullis::Email) -> String {
    mail.text
        .lines()
        .find(|l| l.len() == 43 && !l.contains(' '))
        .expect("the code on its own line")
        .to_owned()
}

/// Issue 12, defect 1: a stolen (still valid, even refreshed) access token
/// of a user without a password used to move the recovery address with no
/// proof at all; the attacker then reset the password from the new
/// address. Now an old session must confirm with a code mailed to the
/// *current* address, or sign in again.
#[tokio::test]
async fn a_stolen_token_of_a_passwordless_user_cannot_move_the_address() {
    let mut config = test_config();
    // This test sends more mail requests for one account than the hourly
    // per-account budget allows; the limit has tests of its own.
    config.rate_limits.email_per_address.max = 100;
    let app = app_with_passwordless(config).await;
    let (_, refresh) = app.passwordless("owner@example.com").await;
    app.clock.advance(chrono::Duration::minutes(16));
    let (status, pair) = app.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let stolen = pair["access_token"].as_str().unwrap().to_owned();

    let (status, body) = request(&app, &stolen, json!({"new_email": "thief@example.com"})).await;
    assert_error(status, &body, 403, "REAUTHENTICATION_REQUIRED");
    // A password field does not help a user who has none.
    let (status, body) = request(
        &app,
        &stolen,
        json!({"new_email": "thief@example.com", "password": "guess"}),
    )
    .await;
    assert_error(status, &body, 403, "REAUTHENTICATION_REQUIRED");
    app.manager.wait_for_deliveries().await;
    assert!(app.mails_to("thief@example.com").await.is_empty());
    assert!(!app.event_names().contains(&"email_change_requested"));

    // A deletion code is not an email-change code (purpose binding).
    let (status, _) = app
        .call(Method::POST, "/auth/account/delete-code", &stolen, None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let delete_code = mailed_code(&app.mail("owner@example.com", "Confirm the deletion").await);
    let (status, body) = request(
        &app,
        &stolen,
        json!({"new_email": "thief@example.com", "code": delete_code}),
    )
    .await;
    assert_error(status, &body, 410, "TOKEN_GONE");

    // The owner's way: a code mailed to the current address.
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/change-email-code",
            &stolen,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = app
        .mail("owner@example.com", "Confirm the email change")
        .await;
    assert!(
        app.mails_to("thief@example.com").await.is_empty(),
        "the code goes to the current address only"
    );
    let code = mailed_code(&mail);
    let (status, body) = request(
        &app,
        &stolen,
        json!({"new_email": "moved@example.com", "code": code}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.mail("moved@example.com", "Confirm your new email")
        .await;
    // Single use.
    let (status, body) = request(
        &app,
        &stolen,
        json!({"new_email": "again@example.com", "code": code}),
    )
    .await;
    assert_error(status, &body, 410, "TOKEN_GONE");

    // A fresh sign-in is recent enough on its own.
    let (fresh, _) = app.passwordless("owner@example.com").await;
    let (status, body) = request(&app, &fresh, json!({"new_email": "fresh@example.com"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// The user with a password may also confirm with the mailed code.
#[tokio::test]
async fn the_mailed_code_also_confirms_for_users_with_a_password() {
    let app = app().await;
    let (access, _) = app.signed_in("coded@example.com").await;
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/account/change-email-code",
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = mailed_code(
        &app.mail("coded@example.com", "Confirm the email change")
            .await,
    );
    let (status, body) = request(
        &app,
        &access,
        json!({"new_email": "coded-new@example.com", "code": "wrong"}),
    )
    .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = request(
        &app,
        &access,
        json!({"new_email": "coded-new@example.com", "code": code}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

async fn pending_change(app: &TestApp, access: &str, to: &str) -> String {
    let (status, body) = request(app, access, json!({"new_email": to, "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    link_token(&app.mail(to, "Confirm your new email").await)
}

/// Issue 12, defect 2: the notice to the old address says "change your
/// password at once"; doing so (or a reset, or deleting the account) now
/// really stops a pending email change: the link is bound to the
/// credential epoch and to an active account.
#[tokio::test]
async fn a_pending_email_change_dies_with_a_password_change_reset_or_deletion() {
    // Password change.
    let app = app().await;
    let (access, _) = app.signed_in("pc@example.com").await;
    let token = pending_change(&app, &access, "pc-new@example.com").await;
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/change-password",
            &access,
            Some(json!({"current_password": PASSWORD, "new_password": "An0ther-Secret!pass"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = confirm(&app, &token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.stored("pc@example.com").await.is_some());
    assert!(app.stored("pc-new@example.com").await.is_none());

    // Password reset.
    let (access, _) = app.signed_in("pr@example.com").await;
    let token = pending_change(&app, &access, "pr-new@example.com").await;
    let (status, _) = app
        .post("/auth/forgot-password", json!({"email": "pr@example.com"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reset = link_token(&app.mail("pr@example.com", "Reset your").await);
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({"token": reset, "password": "An0ther-Secret!pass"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = confirm(&app, &token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.stored("pr-new@example.com").await.is_none());

    // Deleting (deactivating) the account.
    let (access, _) = app.signed_in("del@example.com").await;
    let token = pending_change(&app, &access, "del-new@example.com").await;
    let (status, body) = app
        .call(
            Method::DELETE,
            "/auth/account",
            &access,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = confirm(&app, &token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let user = app.stored("del@example.com").await.expect("kept, inactive");
    assert!(!user.is_active);
    assert!(app.stored("del-new@example.com").await.is_none());
}

/// The same epoch binds reset links: one mailed before a password change
/// (or an admin's deactivation) no longer sets a password.
#[tokio::test]
async fn a_reset_link_dies_with_a_password_change_or_a_deactivation() {
    let app = app().await;
    let (access, _) = app.signed_in("rl@example.com").await;
    app.post("/auth/forgot-password", json!({"email": "rl@example.com"}))
        .await;
    let reset = link_token(&app.mail("rl@example.com", "Reset your").await);
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/account/change-password",
            &access,
            Some(json!({"current_password": PASSWORD, "new_password": "An0ther-Secret!pass"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({"token": reset, "password": "Thief-Chosen!pass9"}),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");

    app.register("deact@example.com").await;
    app.post(
        "/auth/forgot-password",
        json!({"email": "deact@example.com"}),
    )
    .await;
    let reset = link_token(&app.mail("deact@example.com", "Reset your").await);
    let user = app.stored("deact@example.com").await.unwrap();
    app.store
        .as_ref()
        .patch_user(
            &user.id,
            &portcullis::UserPatch::new().is_active(false),
            app.manager.now(),
        )
        .await
        .unwrap();
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({"token": reset, "password": "Thief-Chosen!pass9"}),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(!app.stored("deact@example.com").await.unwrap().is_active);
}

#[tokio::test]
async fn confirming_a_new_address_removes_identities_linked_unverified() {
    let app = app().await;
    let (access, _) = app.signed_in("moving@example.com").await;
    let user = app.stored("moving@example.com").await.unwrap();
    // An identity linked from an email its provider had not verified, and
    // one linked with a verified email.
    for (subject, verified) in [("unproven-1", false), ("proven-1", true)] {
        app.store
            .as_ref()
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
        .store
        .as_ref()
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

//! Email verification: the mailed link, re-sending, expiry, single use,
//! and `require_verified_email`.

use poem::http::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn registration_mails_a_link_that_verifies_once() {
    let app = app().await;
    app.register("vera@example.com").await;
    let mail = app.mail("vera@example.com", "Confirm your email").await;
    let url = link(&mail, "https://api.example.com/auth/verify-email?token=");
    let token = link_token(&mail);
    assert_eq!(token.len(), 43, "256-bit token, base64url: {url}");
    let html = mail.html.as_deref().expect("an HTML part");
    assert!(html.contains(&token));

    // The link opens a page; its button posts the token.
    let (status, body) = app
        .press_page("/auth/verify-email", "verify-email", &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email_verified"], true);
    assert!(app.stored("vera@example.com").await.unwrap().email_verified);
    assert!(app.event_names().contains(&"email_verified"));

    // Used: 410 on both forms.
    let (status, body) = app
        .press_page("/auth/verify-email", "verify-email", &token)
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": token }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn opening_the_link_by_get_or_head_verifies_nothing() {
    // Mail scanners and link prefetchers fetch links before the person
    // does: that must not use the token up (issue 12, defect 8).
    let app = app().await;
    app.register("scan@example.com").await;
    let token = link_token(&app.mail("scan@example.com", "Confirm your email").await);
    for _ in 0..2 {
        let posted = app
            .open_page("/auth/verify-email", "verify-email", &token)
            .await;
        assert_eq!(posted, token, "the form posts the link's token");
    }
    app.head_page("/auth/verify-email", &token).await;
    assert!(!app.stored("scan@example.com").await.unwrap().email_verified);
    assert!(!app.event_names().contains(&"email_verified"));

    // The person presses the button: verified, once.
    let (status, body) = app
        .press_page("/auth/verify-email", "verify-email", &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email_verified"], true);
    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": token }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn a_new_request_invalidates_the_previous_link() {
    let app = app().await;
    let (access, _) = app.signed_in("rex@example.com").await;
    let first = link_token(&app.mail("rex@example.com", "Confirm your email").await);

    let (status, body) = app
        .call(Method::POST, "/auth/request-verify-email", &access, None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body["message"].is_string());
    let mails = app.mails_to("rex@example.com").await;
    assert_eq!(mails.len(), 2);
    let second = link_token(&mails[1]);
    assert_ne!(first, second);

    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": first }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(!app.stored("rex@example.com").await.unwrap().email_verified);
    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": second }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email_verified"], true);

    // Nothing left to verify.
    let (status, body) = app
        .call(Method::POST, "/auth/request-verify-email", &access, None)
        .await;
    assert_error(status, &body, 409, "EMAIL_ALREADY_VERIFIED");
    // And it needs a signed-in caller.
    let resp = app.client.post("/auth/request-verify-email").send().await;
    let (status, body) = parts(resp).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn links_expire_after_24_hours() {
    let app = app().await;
    app.register("old@example.com").await;
    let token = link_token(&app.mail("old@example.com", "Confirm your email").await);
    app.clock
        .advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": token }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(!app.stored("old@example.com").await.unwrap().email_verified);
}

#[tokio::test]
async fn bad_tokens_get_clear_errors() {
    let app = app().await;
    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": "not-a-token" }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = app.post("/auth/verify-email", json!({ "token": 42 })).await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": "x", "extra": 1 }))
        .await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
    let (status, body) = parts(app.client.get("/auth/verify-email").send().await).await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
}

#[tokio::test]
async fn verification_can_be_required_to_sign_in() {
    let mut config = test_config();
    config.accounts.require_verified_email = true;
    let app = app_with_config(config).await;
    app.register("una@example.com").await;
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "una@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "EMAIL_NOT_VERIFIED");
    let token = link_token(&app.mail("una@example.com", "Confirm your email").await);
    let (status, _) = app
        .post("/auth/verify-email", json!({ "token": token }))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.login("una@example.com").await;
}

#[tokio::test]
async fn no_mail_without_a_public_url_and_sender() {
    let mut config = test_config();
    config.public_url = None;
    let app = app_with_config(config).await;
    let (access, _) = app.signed_in("nomail@example.com").await;
    assert!(app.mails_to("nomail@example.com").await.is_empty());
    let (status, body) = app
        .call(Method::POST, "/auth/request-verify-email", &access, None)
        .await;
    assert_error(status, &body, 503, "EMAIL_NOT_CONFIGURED");
}

#[tokio::test]
async fn a_signed_out_user_can_get_a_new_link_with_the_same_answer_for_all() {
    let mut config = test_config();
    config.accounts.require_verified_email = true;
    let app = app_with_config(config).await;
    app.register("lost@example.com").await;
    let first = link_token(&app.mail("lost@example.com", "Confirm your email").await);

    let resend =
        |email: &'static str| app.post("/auth/verify-email/resend", json!({ "email": email }));
    let (status, known) = resend("Lost@example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, unknown) = resend("nobody@example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(known, unknown);
    let mails = app.mails_to("lost@example.com").await;
    assert_eq!(mails.len(), 2);
    let second = link_token(&mails[1]);
    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": first }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, _) = app
        .post("/auth/verify-email", json!({ "token": second }))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.login("lost@example.com").await;
    // Verified: no more mail, same answer.
    let (status, again) = resend("lost@example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again, known);
    assert_eq!(app.mails_to("lost@example.com").await.len(), 2);
}

#[tokio::test]
async fn a_link_for_an_address_the_account_no_longer_has_is_gone() {
    let app = app().await;
    app.register("first@example.com").await;
    let token = link_token(&app.mail("first@example.com", "Confirm your email").await);
    // The account moves to another address before the link is used.
    let user = app.stored("first@example.com").await.unwrap();
    app.store
        .as_ref()
        .patch_user(
            &user.id,
            &portcullis::UserPatch::new()
                .email("second@example.com")
                .unwrap(),
            app.manager.now(),
        )
        .await
        .unwrap()
        .expect("moved");
    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": token }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(
        !app.stored("second@example.com")
            .await
            .unwrap()
            .email_verified
    );
}

/// Links are built from `public_url`: a forged `Host` (or forwarded host)
/// header cannot point them at another site.
#[tokio::test]
async fn links_ignore_the_request_host() {
    let app = app().await;
    let (status, body) = parts(
        app.client
            .post("/auth/register")
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example")
            .body_json(&json!({"email": "host@example.com", "password": PASSWORD}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = parts(
        app.client
            .post("/auth/verify-email/resend")
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example")
            .body_json(&json!({"email": "host@example.com"}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mails = app.mails_to("host@example.com").await;
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        link(mail, "https://api.example.com/auth/verify-email?token=");
        let html = mail.html.as_deref().unwrap_or_default();
        assert!(!mail.text.contains("evil.example"), "{}", mail.text);
        assert!(!html.contains("evil.example"), "{html}");
    }
}

#[tokio::test]
async fn verification_mails_are_limited_per_address() {
    let app = app().await;
    app.register("many@example.com").await;
    // Five new links an hour per address (the sign-up's own mail aside)…
    for _ in 0..5 {
        let (status, body) = app
            .post(
                "/auth/verify-email/resend",
                json!({"email": "MANY@example.com"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    // …then the same answer, and nothing new is sent…
    let (status, body) = app
        .post(
            "/auth/verify-email/resend",
            json!({"email": "many@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(app.mails_to("many@example.com").await.len(), 1 + 5);
    // …and again an hour later.
    app.clock.advance(chrono::Duration::hours(1));
    let (status, _) = app
        .post(
            "/auth/verify-email/resend",
            json!({"email": "many@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(app.mails_to("many@example.com").await.len(), 1 + 6);
}

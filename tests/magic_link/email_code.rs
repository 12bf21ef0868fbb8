//! The email code: request, guess limit, replacement, expiry, account
//! rules.

use chrono::Duration;
use poem::http::StatusCode;
use portcullis::UserPatch;
use portcullis_magic_link::{EmailCodeProvider, MagicLinkProvider};
use serde_json::json;

use crate::common::*;
use crate::*;

/// A six-digit code other than `code`.
fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[tokio::test]
async fn a_code_signs_up_a_new_address_and_works_once() {
    let app = ml_app(test_config()).await;
    let body = app.request_code("Coder@Example.com").await;
    assert!(body["message"].is_string(), "{body}");
    let code = app.code_mailed_to("coder@example.com").await;
    let mail = app.mail("coder@example.com", "sign-in code").await;
    assert!(mail.text.contains("10 minutes"), "{}", mail.text);
    assert!(app.stored("coder@example.com").await.is_none());

    let (status, pair) = app.post_code("CODER@example.com", &code).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let me = app.whoami(&access_of(&pair)).await;
    assert_eq!(me["email"], "coder@example.com");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["has_password"], false);
    assert_eq!(
        app.registered_by(),
        [("coder@example.com".into(), "email-code".into())]
    );
    assert_eq!(
        app.logins(),
        [("coder@example.com".into(), "email-code".into())]
    );

    let (status, body) = app.post_code("coder@example.com", &code).await;
    assert_error(status, &body, 410, "TOKEN_GONE");

    // Returning: the same account.
    let again = app.code_for("coder@example.com").await;
    let (status, pair) = app.post_code("coder@example.com", &again).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(app.whoami(&access_of(&pair)).await["id"], me["id"]);
    assert_eq!(app.registered_by().len(), 1);
}

#[tokio::test]
async fn five_wrong_codes_kill_the_code_until_a_new_one_is_requested() {
    let app = ml_app(test_config()).await;
    let code = app.code_for("guess@example.com").await;
    for _ in 0..5 {
        let (status, body) = app.post_code("guess@example.com", &wrong(&code)).await;
        assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    }
    // The manager's throttle for failed sign-ins applies first: the next
    // attempt for this address must wait a second.
    let resp = app
        .client
        .post("/auth/email-code/verify")
        .body_json(&json!({ "email": "guess@example.com", "code": code }))
        .send()
        .await;
    resp.assert_header("retry-after", "1");
    let (status, body) = parts(resp).await;
    assert_error(status, &body, 429, "RATE_LIMITED");

    // After the wait, the code is dead all the same.
    app.pass_sign_in_delay();
    let (status, body) = app.post_code("guess@example.com", &code).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.stored("guess@example.com").await.is_none());

    let fresh = app.code_for("guess@example.com").await;
    let (status, body) = app.post_code("guess@example.com", &fresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn four_wrong_codes_leave_the_right_one_working() {
    let app = ml_app(test_config()).await;
    let code = app.code_for("close@example.com").await;
    for _ in 0..4 {
        let (status, _) = app.post_code("close@example.com", &wrong(&code)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = app.post_code("close@example.com", &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_new_request_invalidates_the_previous_code() {
    let app = ml_app(test_config()).await;
    let old = app.code_for("redo@example.com").await;
    let mut new = app.code_for("redo@example.com").await;
    while new == old {
        // One chance in a million: ask again.
        new = app.code_for("redo@example.com").await;
    }
    let (status, body) = app.post_code("redo@example.com", &old).await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    let (status, body) = app.post_code("redo@example.com", &new).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_new_request_resets_the_guess_budget() {
    let app = ml_app(test_config()).await;
    let code = app.code_for("budget@example.com").await;
    for _ in 0..4 {
        app.post_code("budget@example.com", &wrong(&code)).await;
    }
    let fresh = app.code_for("budget@example.com").await;
    for _ in 0..4 {
        // Past 5 failures for the address, the manager spaces attempts out.
        app.pass_sign_in_delay();
        let (status, _) = app.post_code("budget@example.com", &wrong(&fresh)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    app.pass_sign_in_delay();
    let (status, body) = app.post_code("budget@example.com", &fresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let app = ml_app(test_config()).await;
    let early = app.code_for("early@example.com").await;
    let late = app.code_for("late@example.com").await;
    app.clock
        .advance(Duration::minutes(10) - Duration::seconds(1));
    let (status, body) = app.post_code("early@example.com", &early).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock.advance(Duration::seconds(2));
    let (status, body) = app.post_code("late@example.com", &late).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn lifetime_and_guesses_are_configurable() {
    let app = ml_app_with(
        test_config(),
        MagicLinkProvider::new(),
        EmailCodeProvider::new()
            .ttl(std::time::Duration::from_secs(60))
            .max_attempts(2),
        |b| b,
    )
    .await;
    let code = app.code_for("tight@example.com").await;
    let mail = app.mail("tight@example.com", "sign-in code").await;
    assert!(mail.text.contains("1 minute"), "{}", mail.text);
    for _ in 0..2 {
        let (status, _) = app.post_code("tight@example.com", &wrong(&code)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = app.post_code("tight@example.com", &code).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let mail = app.mail("tight@example.com", "sign-in code").await;
    assert!(mail.text.contains("1 minute"), "{}", mail.text);

    let code = app.code_for("tight@example.com").await;
    app.clock.advance(Duration::seconds(61));
    let (status, body) = app.post_code("tight@example.com", &code).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn a_code_is_bound_to_its_address() {
    let app = ml_app(test_config()).await;
    let code = app.code_for("owner@example.com").await;
    // No code requested for this address at all.
    let (status, body) = app.post_code("other@example.com", &code).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    // A code requested for it: another address's code is a wrong guess.
    let mut theirs = app.code_for("other@example.com").await;
    while theirs == code {
        theirs = app.code_for("other@example.com").await;
    }
    let (status, body) = app.post_code("other@example.com", &code).await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    let (status, body) = app.post_code("owner@example.com", &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn no_code_requested_is_gone() {
    let app = ml_app(test_config()).await;
    let (status, body) = app.post_code("never@example.com", "123456").await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert_eq!(app.failures(), [("email-code".to_owned(), "TOKEN_GONE")]);
}

#[tokio::test]
async fn validation() {
    let app = ml_app(test_config()).await;
    let code = app.code_for("valid@example.com").await;
    for bad in ["12345", "1234567", "12a456", "", "12 456"] {
        let (status, body) = app.post_code("valid@example.com", bad).await;
        assert_error(status, &body, 422, "INVALID_CODE");
        assert_eq!(body["field"], "code", "{body}");
    }
    let (status, body) = app.post_code("not-an-email", &code).await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
    for bad in [
        json!({ "email": "valid@example.com", "code": 123456 }),
        json!({ "email": "valid@example.com" }),
        json!({ "email": "valid@example.com", "code": code, "extra": 1 }),
    ] {
        let (status, body) = app.post("/auth/email-code/verify", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    for bad in [
        json!({ "email": "nope" }),
        json!({ "email": 1 }),
        json!({ "email": "a@example.com", "redirect_to": "x" }),
    ] {
        let (status, body) = app.post("/auth/email-code", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    // Malformed input never counted as a guess: the code still works.
    let (status, body) = app.post_code("valid@example.com", &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn account_rules_match_the_magic_link() {
    let mut config = test_config();
    config.accounts.allow_provider_sign_up = false;
    let app = ml_app(config).await;
    app.register("unverified@example.com").await;
    app.register("verified@example.com").await;
    app.patch(
        "verified@example.com",
        UserPatch::new().email_verified(true),
    )
    .await;
    app.register("inactive@example.com").await;
    app.patch(
        "inactive@example.com",
        UserPatch::new().email_verified(true),
    )
    .await;

    // Sign-up disabled: the same answer, no mail for a stranger.
    let stranger = app.request_code("stranger@example.com").await;
    let known = app.request_code("verified@example.com").await;
    assert_eq!(stranger, known);
    assert_eq!(app.mail_count("stranger@example.com").await, 0);

    let code = app.code_mailed_to("verified@example.com").await;
    let (status, body) = app.post_code("verified@example.com", &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let code = app.code_for("unverified@example.com").await;
    let (status, body) = app.post_code("unverified@example.com", &code).await;
    assert_error(status, &body, 409, "ACCOUNT_EXISTS");

    let code = app.code_for("inactive@example.com").await;
    app.patch("inactive@example.com", UserPatch::new().is_active(false))
        .await;
    let (status, body) = app.post_code("inactive@example.com", &code).await;
    assert_error(status, &body, 403, "USER_INACTIVE");
}

#[tokio::test]
async fn post_verify_with_cookies_refuses_cross_site_requests() {
    let app = ml_app(cookie_config()).await;
    let code = app.code_for("jar@example.com").await;
    let (status, body) = parts(
        app.client
            .post("/auth/email-code/verify")
            .header("origin", "https://evil.example.net")
            .body_json(&json!({ "email": "jar@example.com", "code": code }))
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 403, "CSRF_REJECTED");
    // Refused before counting a guess.
    let resp = app
        .client
        .post("/auth/email-code/verify")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({ "email": "jar@example.com", "code": code }))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    assert!(cookie_value(&cookies_of(&resp), "portcullis_access").is_some());
}

#[tokio::test]
async fn the_code_is_stored_hashed() {
    let app = ml_app(test_config()).await;
    let code = app.code_for("hashed@example.com").await;
    let key = portcullis::TokenHash::of("email-code:hashed@example.com");
    let stored = app
        .manager
        .provider_cx()
        .find_token(&key, "email_code")
        .await
        .unwrap()
        .expect("the code's record");
    let data = stored.data.to_string();
    assert!(!data.contains(&code), "{data}");
    assert_eq!(stored.email.as_deref(), Some("hashed@example.com"));
}

#[tokio::test]
async fn mail_requests_are_limited_per_address_across_both_flows() {
    let app = ml_app(test_config()).await;
    for i in 0..5 {
        if i % 2 == 0 {
            app.request_code("busy@example.com").await;
        } else {
            app.request_link("busy@example.com").await;
        }
        // One at a time: of two concurrent code requests only the code that
        // ends up stored is mailed.
        app.manager.wait_for_deliveries().await;
    }
    // Over the address's budget: the same 202, and nothing new is sent.
    for path in ["/auth/email-code", "/auth/magic-link"] {
        let (status, body) = app.post(path, json!({ "email": "Busy@Example.com" })).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{path}: {body}");
    }
    assert_eq!(app.mail_count("busy@example.com").await, 5);
    // Other addresses are not affected.
    app.code_for("calm@example.com").await;
}

use poem::http::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn register_returns_the_public_user() {
    let app = app().await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "  Alice@Example.com ", "password": PASSWORD, "name": " Alice "}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["email"], "Alice@Example.com");
    assert_eq!(body["name"], "Alice");
    assert_eq!(body["email_verified"], false);
    assert_eq!(body["is_active"], true);
    assert_eq!(body["is_superuser"], false);
    assert_eq!(body["has_password"], true);
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(body["created_at"].is_string());
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("hash") || k.contains("password_")),
        "{keys:?}"
    );

    // Stored normalised, hashed with Argon2id.
    let user = app
        .store
        .as_ref()
        .find_user_by_email("alice@example.com")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(user.email_normalized, "alice@example.com");
    assert!(user
        .password_hash
        .as_deref()
        .unwrap()
        .starts_with("$argon2id$"));
    assert_eq!(
        app.event_names(),
        ["user_registered", "email_verification_requested"]
    );
}

#[tokio::test]
async fn clients_cannot_set_privileged_fields() {
    let app = app().await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({
                "email": "mallory@example.com", "password": PASSWORD,
                "is_superuser": true, "is_active": false, "email_verified": true,
                "token_version": 99, "id": "chosen"
            }),
        )
        .await;
    // Refused as a whole, like an unknown field in any other body (the spec
    // says `additionalProperties: false`), and nobody is created.
    assert_error(status, &body, 422, "VALIDATION_ERROR");
    assert!(app.stored("mallory@example.com").await.is_none());
    let body = app.register("mallory@example.com").await;
    assert_eq!(body["is_superuser"], false);
    assert_eq!(body["is_active"], true);
    assert_eq!(body["email_verified"], false);
}

#[tokio::test]
async fn email_is_unique_case_insensitively() {
    let app = app().await;
    app.register("bob@example.com").await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "BOB@Example.COM", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 409, "EMAIL_TAKEN");
}

#[tokio::test]
async fn invalid_emails_get_422_with_field() {
    let app = app().await;
    let long = format!("{}@example.com", "a".repeat(250));
    for email in [
        "not-an-email",
        "a@",
        "@example.com",
        "a b@example.com",
        "",
        long.as_str(),
    ] {
        let (status, body) = app
            .post(
                "/auth/register",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{email}: {body}");
        assert!(
            body["code"] == "INVALID_EMAIL" || body["code"] == "VALIDATION_ERROR",
            "{body}"
        );
    }
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "nope", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
    assert_eq!(body["field"], "email");
}

#[tokio::test]
async fn weak_and_overlong_passwords_get_422() {
    let app = app().await;
    let cases = [
        ("short1!", "PASSWORD_TOO_SHORT"),
        ("password123", "PASSWORD_TOO_COMMON"),
        ("iloveyou", "PASSWORD_TOO_COMMON"),
        ("carol@example.com", "PASSWORD_TOO_COMMON"),
    ];
    for (password, code) in cases {
        let (status, body) = app
            .post(
                "/auth/register",
                json!({"email": "carol@example.com", "password": password}),
            )
            .await;
        assert_error(status, &body, 422, code);
        assert_eq!(body["field"], "password");
    }
    // 1,025 bytes: refused, never truncated.
    let long = "x".repeat(1025);
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "carol@example.com", "password": long}),
        )
        .await;
    assert_error(status, &body, 422, "PASSWORD_TOO_LONG");
    // 1,024 bytes is fine, and only the whole password signs in.
    let exact = format!("{}{}", "Ab1!".repeat(255), "Zz9?");
    assert_eq!(exact.len(), 1024);
    let (status, _) = app
        .post(
            "/auth/register",
            json!({"email": "carol@example.com", "password": exact}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "carol@example.com", "password": &exact[..1000]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "carol@example.com", "password": exact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(app
        .store
        .as_ref()
        .find_user_by_email("carol@example.com")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn names_are_validated() {
    let app = app().await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "dan@example.com", "password": PASSWORD, "name": "x".repeat(201)}),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_NAME");
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "dan@example.com", "password": PASSWORD, "name": "a\u{0}b"}),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_NAME");
}

/// Issue 12: enumeration-safe registration. The same 202 for a new and a
/// taken address; the owner of a taken one is mailed a notice, and nothing
/// about their account changes.
#[tokio::test]
async fn enumeration_safe_registration_answers_the_same_for_taken_addresses() {
    let mut config = test_config();
    config.accounts.enumeration_safe_registration = true;
    let app = app_with_config(config).await;

    let (status, first) = app
        .post(
            "/auth/register",
            json!({"email": "Owner@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert!(first.get("id").is_none(), "no user in the answer: {first}");
    let owner = app.stored("owner@example.com").await.expect("created");
    assert!(!owner.email_verified && owner.has_password());
    app.mail("Owner@example.com", "Confirm your email").await;

    let (status, second) = app
        .post(
            "/auth/register",
            json!({"email": "owner@EXAMPLE.com", "password": "Attacker-Chosen!9x"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    assert_eq!(first, second, "the same answer");
    let notice = app
        .mail("Owner@example.com", "Someone tried to sign up")
        .await;
    assert!(!notice.text.contains("token="), "{}", notice.text);
    let after = app.stored("owner@example.com").await.unwrap();
    assert_eq!(after.id, owner.id);
    assert_eq!(
        after.password_hash, owner.password_hash,
        "password untouched"
    );
    app.login("owner@example.com").await;
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "owner@example.com", "password": "Attacker-Chosen!9x"}),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");

    // Validation still answers at once (it says nothing about accounts).
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "nope", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
}

/// Issue 12, defect 6: `\u{212a}im@example.com` (KELVIN SIGN) lower-cased
/// to `kim@example.com`, so it registered, squatted the real owner's
/// address (409 for them) and received their reset mail; a verified
/// look-alike at an identity provider linked to the real account. Every
/// address that differs from its canonical form beyond case is refused.
#[tokio::test]
async fn addresses_that_fold_into_another_are_refused_everywhere() {
    let app = app_with(test_config(), |b| b.provider(FakeOAuthProvider)).await;
    let kelvin = "\u{212a}im@example.com";
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": kelvin, "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
    assert!(app.stored("kim@example.com").await.is_none());

    app.register("kim@example.com").await;
    let before = app.mails_to("kim@example.com").await.len();
    let (status, body) = app
        .post("/auth/forgot-password", json!({"email": kelvin}))
        .await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
    // Sign-in validates the address before anything else (no counter is
    // keyed by it).
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": kelvin, "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
    assert_eq!(app.mails_to("kim@example.com").await.len(), before);

    // A verified look-alike at an identity provider does not link.
    let kim = app.stored("kim@example.com").await.unwrap();
    app.store
        .as_ref()
        .patch_user(
            &kim.id,
            &portcullis::UserPatch::new().email_verified(true),
            app.manager.now(),
        )
        .await
        .unwrap();
    let result = app
        .manager
        .sign_in(
            "fake-oauth",
            portcullis::ProviderRequest::new(
                json!({"sub": "look-alike", "email": kelvin, "verified": true}),
            ),
        )
        .await;
    assert!(
        matches!(&result, Err(portcullis::Error::Validation { code, .. }) if *code == "INVALID_EMAIL"),
        "{result:?}"
    );
    assert!(app.manager.linked_accounts(&kim).await.unwrap().is_empty());

    // Quoted local parts parse but cannot receive mail: refused.
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "\"kim\"@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
}

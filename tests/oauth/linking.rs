//! Linking a provider identity to an existing account by email: only when
//! both sides verified the email (account pre-hijacking).

use poem::http::StatusCode;
use serde_json::json;

use crate::{
    common::{assert_error, link_token, TestApp, PASSWORD},
    support::*,
};

/// Registers `email` with a password and, when `verified`, confirms it
/// through the mailed link. Returns the user id.
async fn local_user(app: &TestApp, email: &str, verified: bool) -> String {
    let user = app.register(email).await;
    if verified {
        let token = link_token(&app.mail(email, "Confirm your email").await);
        let (status, body) = app
            .post("/auth/verify-email", json!({ "token": token }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    user["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn verified_on_both_sides_links_to_the_existing_user() {
    let app = app().await;
    let (sub, email) = Idp::new().verified_user("Linked").await;
    let id = local_user(&app, &email, true).await;
    let answer = sign_in(&app, &mut Browser::new(), "acme", &sub).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(me(&app, &answer.body).await["id"], id.as_str());
    let link = app
        .store
        .as_ref()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.user_id.to_string(), id);
    assert!(app.event_names().contains(&"account_linked"));
    // The password still works too.
    app.login(&email).await;
}

#[tokio::test]
async fn an_email_the_provider_did_not_verify_is_not_linked() {
    let app = app().await;
    let sub = unique("unverified");
    let email = format!("{sub}@example.com");
    local_user(&app, &email, true).await;
    // Someone signs up at the provider with the victim's address, which
    // the provider never checked.
    Idp::new()
        .set_user(&sub, json!({"email": email, "email_verified": false}))
        .await;
    let answer = sign_in(&app, &mut Browser::new(), "acme", &sub).await;
    answer.assert_error(409, "ACCOUNT_EXISTS");
    assert!(app
        .store
        .as_ref()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .is_none());
    // Without the claim at all: the same.
    Idp::new().set_user(&sub, json!({"email": email})).await;
    sign_in(&app, &mut Browser::new(), "acme", &sub)
        .await
        .assert_error(409, "ACCOUNT_EXISTS");
}

#[tokio::test]
async fn a_local_account_with_an_unverified_email_is_not_linked() {
    let app = app().await;
    let (sub, email) = Idp::new().verified_user("PreHijack").await;
    // An attacker registered the victim's address first, unverified.
    let attacker = local_user(&app, &email, false).await;
    let answer = sign_in(&app, &mut Browser::new(), "acme", &sub).await;
    answer.assert_error(409, "ACCOUNT_EXISTS");
    assert!(answer.body["message"].as_str().unwrap().contains("sign in"));
    assert!(app
        .store
        .as_ref()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .is_none());
    let stored = app.stored(&email).await.unwrap();
    assert_eq!(stored.id.to_string(), attacker);
}

#[tokio::test]
async fn an_unverified_provider_email_creates_no_account() {
    let app = app().await;
    let sub = unique("squatter");
    let victim = format!("{sub}@example.com");
    // The attacker's provider account claims the victim's address, which
    // the provider never checked.
    Idp::new()
        .set_user(
            &sub,
            json!({"email": victim, "email_verified": false, "name": "Squatter"}),
        )
        .await;
    let answer = sign_in(&app, &mut Browser::new(), "acme", &sub).await;
    answer.assert_error(403, "PROVIDER_EMAIL_UNVERIFIED");
    assert!(app.stored(&victim).await.is_none());
    assert!(app
        .store
        .as_ref()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .is_none());
    assert!(!app.event_names().contains(&"user_registered"));
    assert!(!app.event_names().contains(&"login_succeeded"));
    // Without the claim at all: the same.
    Idp::new().set_user(&sub, json!({"email": victim})).await;
    sign_in(&app, &mut Browser::new(), "acme", &sub)
        .await
        .assert_error(403, "PROVIDER_EMAIL_UNVERIFIED");
    // The owner registers as usual (no 409), and the squatter's identity
    // does not get into the owner's account afterwards either.
    app.register(&victim).await;
    sign_in(&app, &mut Browser::new(), "acme", &sub)
        .await
        .assert_error(409, "ACCOUNT_EXISTS");
}

/// An app on which providers may create users from emails they did not
/// verify (`accounts.allow_unverified_provider_sign_up`).
async fn lenient_app() -> TestApp {
    let mut config = config();
    config.accounts.allow_unverified_provider_sign_up = true;
    app_with(config, vec![acme()]).await
}

#[tokio::test]
async fn a_new_user_with_an_unverified_email_stays_unverified() {
    let app = lenient_app().await;
    let sub = unique("fresh");
    let email = format!("{sub}@example.com");
    Idp::new()
        .set_user(
            &sub,
            json!({"email": email, "email_verified": false, "name": "Fresh"}),
        )
        .await;
    let answer = sign_in(&app, &mut Browser::new(), "acme", &sub).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let user = me(&app, &answer.body).await;
    assert_eq!(user["email"], email);
    assert_eq!(user["email_verified"], false);
    let link = app
        .store
        .as_ref()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .unwrap();
    assert!(!link.email_verified);
    // A verified identity is linked as verified.
    let (sub, email) = Idp::new().verified_user("Proven").await;
    let answer = sign_in(&app, &mut Browser::new(), "acme", &sub).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(me(&app, &answer.body).await["email"], email.as_str());
    let link = app
        .store
        .as_ref()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .unwrap();
    assert!(link.email_verified);
}

#[tokio::test]
async fn an_identity_linked_unverified_dies_when_the_owner_resets_the_password() {
    let app = lenient_app().await;
    let sub = unique("prehijack");
    let victim = format!("{sub}@example.com");
    Idp::new()
        .set_user(&sub, json!({"email": victim, "email_verified": false}))
        .await;
    // The attacker signs in first: the account exists, linked unverified.
    let answer = sign_in(&app, &mut Browser::new(), "acme", &sub).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let attacker = answer.body["access_token"].as_str().unwrap().to_owned();
    let id = me(&app, &answer.body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The owner cannot register, and recovers the account by reset.
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": victim, "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 409, "EMAIL_TAKEN");
    let (status, body) = app
        .post("/auth/forgot-password", json!({ "email": victim }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let token = link_token(&app.mail(&victim, "Reset your").await);
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({ "token": token, "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The identity the attacker linked is gone, and the owner is told.
    assert!(app
        .store
        .as_ref()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .is_none());
    let notice = app.mail(&victim, "Sign-in methods removed").await;
    assert!(notice.text.contains("acme"), "{}", notice.text);
    let unlinked: Vec<_> = app
        .events
        .lock()
        .iter()
        .filter(|e| e.name() == "account_unlinked")
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(
        unlinked,
        [
            json!({"event": "account_unlinked", "user_id": id, "provider": "acme",
                "subject": sub, "reason": "email_proven"})
        ]
    );

    // The attacker's session is over, and their identity no longer gets in.
    assert_eq!(app.me(&attacker).await.0, StatusCode::UNAUTHORIZED);
    sign_in(&app, &mut Browser::new(), "acme", &sub)
        .await
        .assert_error(409, "ACCOUNT_EXISTS");
    // The owner signs in with the new password, to the same account.
    let tokens = app.login(&victim).await;
    assert_eq!(me(&app, &tokens).await["id"], id.as_str());
}

#[tokio::test]
async fn an_identity_without_email_cannot_sign_up() {
    let app = app().await;
    let sub = unique("noemail");
    Idp::new().set_user(&sub, json!({"name": "No Email"})).await;
    sign_in(&app, &mut Browser::new(), "acme", &sub)
        .await
        .assert_error(422, "EMAIL_REQUIRED");
}

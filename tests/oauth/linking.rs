//! Linking a provider identity to an existing account by email: only when
//! both sides verified the email (account pre-hijacking).

use poem::http::StatusCode;
use serde_json::json;

use crate::{
    common::{link_token, TestApp},
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
        .manager
        .store()
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
        .manager
        .store()
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
        .manager
        .store()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .is_none());
    let stored = app.stored(&email).await.unwrap();
    assert_eq!(stored.id.to_string(), attacker);
}

#[tokio::test]
async fn a_new_user_with_an_unverified_email_stays_unverified() {
    let app = app().await;
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

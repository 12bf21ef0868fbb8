//! Linked provider accounts: listing and unlinking.

use poem::http::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn unlinking_never_leaves_a_user_without_a_way_to_sign_in() {
    let app = app_with(test_config(), |b| b.provider(FakeOAuthProvider)).await;
    let sign_in = app
        .manager
        .sign_in(
            "fake-oauth",
            portcullis::ProviderRequest::new(
                json!({"sub": "gh-42", "email": "octo@example.com", "verified": true}),
            ),
        )
        .await
        .unwrap();
    let access = sign_in.tokens.access_token.clone();
    assert!(sign_in.user.email_verified);
    assert!(!sign_in.user.has_password());

    let (status, body) = app.call(Method::GET, "/auth/accounts", &access, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accounts"][0]["provider"], "fake-oauth");
    assert_eq!(body["accounts"][0]["email"], "octo@example.com");
    assert_eq!(body["accounts"].as_array().unwrap().len(), 1);

    // The only way in: refused.
    let (status, body) = app
        .call(Method::DELETE, "/auth/accounts/fake-oauth", &access, None)
        .await;
    assert_error(status, &body, 409, "LAST_SIGN_IN_METHOD");
    let (status, body) = app
        .call(Method::DELETE, "/auth/accounts/github", &access, None)
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");

    // With a password it may go.
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/set-password",
            &access,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(Method::DELETE, "/auth/accounts/fake-oauth", &access, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = app.call(Method::GET, "/auth/accounts", &access, None).await;
    assert_eq!(body["accounts"], json!([]));
    assert!(app.event_names().contains(&"account_unlinked"));

    // Signing in through the provider again links it again (verified on
    // both sides), to the same user.
    let again = app
        .manager
        .sign_in(
            "fake-oauth",
            portcullis::ProviderRequest::new(
                json!({"sub": "gh-42", "email": "octo@example.com", "verified": true}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(again.user.id, sign_in.user.id);
}

#[tokio::test]
async fn unverified_provider_emails_never_link_to_existing_users() {
    let app = app_with(test_config(), |b| b.provider(FakeOAuthProvider)).await;
    app.register("mia@example.com").await;
    // The provider does not vouch for the email: no link (pre-hijack defence).
    let err = app
        .manager
        .sign_in(
            "fake-oauth",
            portcullis::ProviderRequest::new(
                json!({"sub": "x1", "email": "mia@example.com", "verified": false}),
            ),
        )
        .await;
    assert!(
        matches!(err, Err(portcullis::Error::AccountExists)),
        "{err:?}"
    );
    // Nor when only the provider vouches and the local email is unverified.
    let err = app
        .manager
        .sign_in(
            "fake-oauth",
            portcullis::ProviderRequest::new(
                json!({"sub": "x1", "email": "mia@example.com", "verified": true}),
            ),
        )
        .await;
    assert!(
        matches!(err, Err(portcullis::Error::AccountExists)),
        "{err:?}"
    );
    let user = app.stored("mia@example.com").await.unwrap();
    assert!(app
        .manager
        .store()
        .list_linked_accounts(&user.id)
        .await
        .unwrap()
        .is_empty());
}

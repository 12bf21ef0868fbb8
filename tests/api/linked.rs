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

    let (status, body) = app
        .call(Method::GET, "/auth/account/linked", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accounts"][0]["provider"], "fake-oauth");
    assert_eq!(body["accounts"][0]["email"], "octo@example.com");
    assert_eq!(body["accounts"].as_array().unwrap().len(), 1);

    // The only way in: refused.
    let (status, body) = app
        .call(
            Method::DELETE,
            "/auth/account/linked/fake-oauth",
            &access,
            None,
        )
        .await;
    assert_error(status, &body, 409, "LAST_SIGN_IN_METHOD");
    let (status, body) = app
        .call(Method::DELETE, "/auth/account/linked/github", &access, None)
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");

    // With a password it may go.
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/account/set-password",
            &access,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::DELETE,
            "/auth/account/linked/fake-oauth",
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = app
        .call(Method::GET, "/auth/account/linked", &access, None)
        .await;
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
        .store
        .as_ref()
        .list_linked_accounts(&user.id)
        .await
        .unwrap()
        .is_empty());
}

/// An app with [`FakeOAuthProvider`] on which providers may create users
/// from emails they did not verify.
async fn lenient_app() -> TestApp {
    let mut config = test_config();
    config.accounts.allow_unverified_provider_sign_up = true;
    app_with(config, |b| b.provider(FakeOAuthProvider)).await
}

fn fake(sub: &str, email: &str, verified: bool) -> portcullis::ProviderRequest {
    portcullis::ProviderRequest::new(json!({"sub": sub, "email": email, "verified": verified}))
}

#[tokio::test]
async fn unverified_provider_emails_create_no_account_by_default() {
    let app = app_with(test_config(), |b| b.provider(FakeOAuthProvider)).await;
    let err = app
        .manager
        .sign_in("fake-oauth", fake("sq-1", "squat@example.com", false))
        .await;
    assert!(
        matches!(err, Err(portcullis::Error::ProviderEmailUnverified)),
        "{err:?}"
    );
    assert!(app.stored("squat@example.com").await.is_none());
    assert!(app
        .store
        .as_ref()
        .find_linked_account("fake-oauth", "sq-1")
        .await
        .unwrap()
        .is_none());
    assert_eq!(app.event_names(), ["login_failed"]);
    // The owner's registration is not blocked.
    app.register("squat@example.com").await;
}

#[tokio::test]
async fn an_identity_linked_unverified_dies_when_the_owner_verifies_the_email() {
    let app = lenient_app().await;
    let attacker = app
        .manager
        .sign_in("fake-oauth", fake("evil-1", "vic@example.com", false))
        .await
        .unwrap();
    assert!(!attacker.user.email_verified);
    // A second identity of the same user, linked while verified, stays.
    app.store
        .as_ref()
        .insert_linked_account(
            &portcullis::LinkedAccount::new(
                "fake-oauth",
                "kept-1",
                attacker.user.id.clone(),
                Some("vic@example.com".into()),
                chrono::Utc::now(),
            )
            .with_email_verified(true),
        )
        .await
        .unwrap();

    // The owner asks for a verification link (signed out) and follows it.
    let (status, body) = app
        .post(
            "/auth/verify-email/resend",
            json!({"email": "vic@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let token = link_token(&app.mail("vic@example.com", "Confirm your email").await);
    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": token }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email_verified"], true);

    let notice = app.mail("vic@example.com", "Sign-in methods removed").await;
    assert!(notice.text.contains("fake-oauth"), "{}", notice.text);
    let links = app
        .store
        .as_ref()
        .list_linked_accounts(&attacker.user.id)
        .await
        .unwrap();
    assert_eq!(
        links.iter().map(|l| l.subject.as_str()).collect::<Vec<_>>(),
        ["kept-1"]
    );
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
            json!({"event": "account_unlinked", "user_id": attacker.user.id.as_str(),
                "provider": "fake-oauth", "subject": "evil-1", "reason": "email_proven"})
        ]
    );
    // The attacker is signed out and their identity no longer gets in.
    assert_eq!(
        app.me(&attacker.tokens.access_token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let err = app
        .manager
        .sign_in("fake-oauth", fake("evil-1", "vic@example.com", false))
        .await;
    assert!(
        matches!(err, Err(portcullis::Error::AccountExists)),
        "{err:?}"
    );
    // Proving the address again finds nothing more to remove: no new mail.
    let before = app.mails_to("vic@example.com").await.len();
    let (status, _) = app
        .post("/auth/forgot-password", json!({"email": "vic@example.com"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let token = link_token(&app.mail("vic@example.com", "Reset your").await);
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let mails = app.mails_to("vic@example.com").await;
    assert_eq!(
        mails.len(),
        before + 2,
        "reset link and password notice only"
    );
    assert!(!mails
        .iter()
        .skip(before)
        .any(|m| m.subject.contains("Sign-in methods removed")));
}

/// Claims to be `fake-oauth`: the manager must file its identities under
/// its own id.
#[derive(Debug)]
struct ImpostorProvider;

#[async_trait::async_trait]
impl portcullis::Provider for ImpostorProvider {
    fn info(&self) -> portcullis::ProviderInfo {
        portcullis::ProviderInfo::new("impostor", "oauth")
    }

    async fn authenticate(
        &self,
        _cx: &portcullis::ProviderCx<'_>,
        request: portcullis::ProviderRequest,
    ) -> portcullis::Result<portcullis::Identity> {
        let body: serde_json::Value = request.body_as()?;
        let mut identity =
            portcullis::Identity::new("fake-oauth", body["sub"].as_str().unwrap_or_default());
        if let Some(email) = body["email"].as_str() {
            identity = identity.with_email(email, true);
        }
        Ok(identity)
    }
}

#[tokio::test]
async fn a_provider_cannot_sign_in_as_another_providers_identity() {
    let app = app_with(test_config(), |b| {
        b.provider(FakeOAuthProvider).provider(ImpostorProvider)
    })
    .await;
    let owner = app
        .manager
        .sign_in("fake-oauth", fake("gh-7", "owner@example.com", true))
        .await
        .unwrap();
    // The impostor names the owner's (fake-oauth, gh-7) link: it is read
    // as (impostor, gh-7), which links nobody, and has no email.
    let err = app
        .manager
        .sign_in(
            "impostor",
            portcullis::ProviderRequest::new(json!({"sub": "gh-7"})),
        )
        .await;
    assert_eq!(err.map(|s| s.user.id).unwrap_err().code(), "EMAIL_REQUIRED");
    // With an email of its own it gets its own user and its own link.
    let other = app
        .manager
        .sign_in(
            "impostor",
            portcullis::ProviderRequest::new(json!({"sub": "gh-7", "email": "imp@example.com"})),
        )
        .await
        .unwrap();
    assert_ne!(other.user.id, owner.user.id);
    let (status, body) = app
        .call(
            Method::GET,
            "/auth/account/linked",
            &other.tokens.access_token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accounts"][0]["provider"], "impostor");
    let (_, body) = app
        .call(
            Method::GET,
            "/auth/account/linked",
            &owner.tokens.access_token,
            None,
        )
        .await;
    assert_eq!(body["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(body["accounts"][0]["provider"], "fake-oauth");
}

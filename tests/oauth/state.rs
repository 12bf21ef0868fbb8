//! The state: unknown, replayed, expired, for another provider, from
//! another browser; the nonce and the issuer.

use chrono::Duration;
use poem::http::StatusCode;
use portcullis_oauth::OAuthProvider;

use crate::support::*;

/// `acme` and a second provider on the same issuer.
async fn two_providers() -> crate::common::TestApp {
    let other = OAuthProvider::oidc("other", issuer(), "other-client", "other-secret");
    app_with(config(), vec![acme(), other]).await
}

#[tokio::test]
async fn an_unknown_state_is_refused() {
    let app = app().await;
    let (sub, _) = Idp::new().verified_user("Mallory").await;
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    let forged = with_param(&callback, "state", "not-the-state-we-sent");
    browser
        .callback(&app, &forged)
        .await
        .assert_error(410, "TOKEN_GONE");
    // No state at all.
    let mut browser = Browser::new();
    browser.authorize(&app, "acme").await;
    let answer = browser
        .get(&app, "/auth/oauth/acme/callback?code=abc")
        .await;
    answer.assert_error(422, "OAUTH_CALLBACK_INVALID");
    assert_eq!(answer.body["field"], "state");
}

#[tokio::test]
async fn a_state_works_once() {
    let app = app().await;
    let (sub, _) = Idp::new().verified_user("Replay").await;
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    let kept = browser.clone();
    assert_eq!(
        browser.callback(&app, &callback).await.status,
        StatusCode::OK
    );
    // The same callback again, even with the cookie the browser had.
    let mut replay = kept;
    replay
        .callback(&app, &callback)
        .await
        .assert_error(410, "TOKEN_GONE");
}

#[tokio::test]
async fn a_state_expires_after_ten_minutes() {
    let app = app().await;
    let (sub, _) = Idp::new().verified_user("Slow").await;
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    app.clock.advance(Duration::seconds(601));
    browser
        .callback(&app, &callback)
        .await
        .assert_error(410, "TOKEN_GONE");
}

#[tokio::test]
async fn a_callback_for_another_provider_is_refused() {
    let app = two_providers().await;
    let (sub, _) = Idp::new().verified_user("Mixup").await;
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    let mut elsewhere = callback.clone();
    elsewhere.set_path("/auth/oauth/other/callback");
    let mut replay = browser.clone();
    let answer = browser.callback(&app, &elsewhere).await;
    answer.assert_error(422, "OAUTH_STATE_MISMATCH");
    assert_eq!(answer.body["field"], "state");
    // The state is spent: the right callback no longer works either.
    replay
        .callback(&app, &callback)
        .await
        .assert_error(410, "TOKEN_GONE");
    // And the other provider works on its own.
    let answer = sign_in(&app, &mut Browser::new(), "other", &sub).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
}

#[tokio::test]
async fn a_callback_from_another_browser_is_refused() {
    let app = app().await;
    let (sub, _) = Idp::new().verified_user("Victim").await;
    let mut victim = Browser::new();
    let authorize = victim.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;

    // No binding cookie (e.g. a link sent to another browser): refused,
    // and the state is left for its own browser.
    Browser::new()
        .callback(&app, &callback)
        .await
        .assert_error(403, "CSRF_REJECTED");

    // Another browser's binding cookie (it started its own sign-in).
    let mut attacker = Browser::new();
    attacker.authorize(&app, "acme").await;
    let mut replay = victim.clone();
    attacker
        .callback(&app, &callback)
        .await
        .assert_error(403, "CSRF_REJECTED");
    // That attempt spent the state.
    replay
        .callback(&app, &callback)
        .await
        .assert_error(410, "TOKEN_GONE");

    // A forged cookie value.
    let mut victim = Browser::new();
    let authorize = victim.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    let mut forged = victim.clone();
    forged
        .cookies
        .insert(portcullis_oauth::BINDING_COOKIE.to_owned(), "A".repeat(43));
    forged
        .callback(&app, &callback)
        .await
        .assert_error(403, "CSRF_REJECTED");
    assert!(app
        .store
        .as_ref()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_wrong_nonce_is_refused() {
    let app = app().await;
    let (sub, _) = Idp::new().verified_user("Nonce").await;

    // The authorization request is altered on its way to the provider:
    // the ID token carries a nonce this sign-in never sent.
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let tampered = with_param(&authorize, "nonce", "attacker-chosen-nonce");
    let callback = Idp::new().approve(&tampered, &sub).await;
    let answer = browser.callback(&app, &callback).await;
    answer.assert_error(422, "OAUTH_ID_TOKEN_INVALID");
    assert!(
        answer.body["message"].as_str().unwrap().contains("nonce"),
        "{answer:?}"
    );

    // Code injection: a code obtained in one sign-in delivered with the
    // state of another one (this provider does not enforce PKCE, so the
    // nonce is what catches it).
    let mut browser = Browser::new();
    let first = browser.authorize(&app, "acme").await;
    let second = browser.authorize(&app, "acme").await;
    let first_callback = Idp::new().approve(&first, &sub).await;
    let injected = with_param(&first_callback, "state", &param(&second, "state").unwrap());
    let answer = browser.callback(&app, &injected).await;
    answer.assert_error(422, "OAUTH_ID_TOKEN_INVALID");
    assert!(
        answer.body["message"].as_str().unwrap().contains("nonce"),
        "{answer:?}"
    );
    assert!(app
        .store
        .as_ref()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .is_none());
    assert!(app.event_names().contains(&"login_failed"));
}

#[tokio::test]
async fn the_iss_parameter_must_be_the_issuer() {
    let app = app().await;
    let (sub, _) = Idp::new().verified_user("Issuer").await;
    // A response claiming to come from another issuer (mix-up).
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    let answer = browser
        .callback(
            &app,
            &with_param(&callback, "iss", "https://evil.example.com"),
        )
        .await;
    answer.assert_error(422, "OAUTH_ISSUER_MISMATCH");
    assert_eq!(answer.body["field"], "iss");
    // The right one is accepted.
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    let answer = browser
        .callback(&app, &with_param(&callback, "iss", &issuer()))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callbacks_with_one_state_sign_in_once() {
    let app = app().await;
    let (sub, _) = Idp::new().verified_user("Race").await;
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    let (mut a, mut b) = (browser.clone(), browser.clone());
    let (first, second) = tokio::join!(a.callback(&app, &callback), b.callback(&app, &callback));
    let mut statuses = [first.status.as_u16(), second.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 410], "{first:?} {second:?}");
    let names = app.event_names();
    assert_eq!(names.iter().filter(|n| **n == "login_succeeded").count(), 1);
}

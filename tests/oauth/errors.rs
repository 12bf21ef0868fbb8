//! Provider trouble and unknown providers: clear errors, never a 500.

use poem::http::StatusCode;
use portcullis::Event;

use crate::support::*;

#[tokio::test]
async fn unknown_providers_are_404() {
    let app = app().await;
    let mut browser = Browser::new();
    for path in [
        "/auth/oauth/nope/authorize",
        "/auth/oauth/nope/callback?code=c&state=s",
        // Registered with the manager, but not an OAuth provider.
        "/auth/oauth/credentials/authorize",
    ] {
        let answer = browser.get(&app, path).await;
        answer.assert_error(404, "NOT_FOUND");
    }
    assert!(browser.binding().is_none());
}

#[tokio::test]
async fn access_denied_at_the_provider_is_a_clear_error() {
    let app = app().await;
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    // The provider's "Deny" button (it drops the state from its answer).
    let callback = Idp::new().deny(&authorize).await;
    assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
    let answer = browser.callback(&app, &callback).await;
    answer.assert_error(422, "OAUTH_ACCESS_DENIED");
    assert_eq!(answer.body["field"], "error");
    let failed = app
        .events
        .lock()
        .iter()
        .find_map(|e| match e {
            Event::LoginFailed { provider, code, .. } => Some((provider.clone(), *code)),
            _ => None,
        })
        .expect("login_failed");
    assert_eq!(failed, ("acme".to_owned(), "OAUTH_ACCESS_DENIED"));

    // With the state in the answer, the state is spent too.
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let state = param(&authorize, "state").unwrap();
    let mut replay = browser.clone();
    let denied = format!("/auth/oauth/acme/callback?error=access_denied&state={state}");
    browser
        .get(&app, &denied)
        .await
        .assert_error(422, "OAUTH_ACCESS_DENIED");
    replay
        .get(
            &app,
            &format!("/auth/oauth/acme/callback?code=x&state={state}"),
        )
        .await
        .assert_error(410, "TOKEN_GONE");

    // Other provider errors, and odd values, are not echoed as they are.
    let mut browser = Browser::new();
    browser.authorize(&app, "acme").await;
    let answer = browser
        .get(&app, "/auth/oauth/acme/callback?error=%3Cscript%3E")
        .await;
    answer.assert_error(422, "OAUTH_PROVIDER_ERROR");
    assert!(!answer.body.to_string().contains("<script>"), "{answer:?}");
    let answer = browser
        .get(
            &app,
            "/auth/oauth/acme/callback?error=temporarily_unavailable",
        )
        .await;
    answer.assert_error(503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn a_code_the_provider_rejects_is_a_clear_error() {
    let app = app().await;
    let (sub, _) = Idp::new().verified_user("BadCode").await;
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    let answer = browser
        .callback(&app, &with_param(&callback, "code", "not-a-code"))
        .await;
    answer.assert_error(422, "OAUTH_CODE_REJECTED");
    assert_eq!(answer.body["field"], "code");
    // A code already exchanged (here: by a first, successful sign-in).
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    let code = param(&callback, "code").unwrap();
    assert_eq!(
        browser.callback(&app, &callback).await.status,
        StatusCode::OK
    );
    let mut browser = Browser::new();
    let authorize = browser.authorize(&app, "acme").await;
    let callback = Idp::new().approve(&authorize, &sub).await;
    browser
        .callback(&app, &with_param(&callback, "code", &code))
        .await
        .assert_error(422, "OAUTH_CODE_REJECTED");
}

#[tokio::test]
async fn a_token_endpoint_that_is_down_is_503() {
    let port = closed_port().await;
    let down = acme()
        .with_id("down")
        .with_token_url(format!("http://127.0.0.1:{port}/oauth2/token"));
    let app = app_with(config(), vec![down]).await;
    let (sub, _) = Idp::new().verified_user("Down").await;
    let answer = sign_in(&app, &mut Browser::new(), "down", &sub).await;
    answer.assert_error(503, "SERVICE_UNAVAILABLE");
    assert!(
        !answer.body["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn an_issuer_that_is_down_is_503() {
    let port = closed_port().await;
    let gone = portcullis_oauth::OAuthProvider::oidc(
        "gone",
        format!("http://127.0.0.1:{port}"),
        CLIENT_ID,
        "secret",
    );
    let app = app_with(config(), vec![gone]).await;
    let mut browser = Browser::new();
    let answer = browser.get(&app, "/auth/oauth/gone/authorize").await;
    answer.assert_error(503, "SERVICE_UNAVAILABLE");
    assert!(browser.binding().is_none());
}

#[tokio::test]
async fn starting_sign_ins_counts_against_the_per_ip_limit() {
    let mut config = config();
    config.rate_limits.sign_in_per_ip = portcullis::Limit::new(2, 60);
    let app = app_with(config, vec![acme()]).await;
    // Over a real socket, so the app sees the client's address.
    let oauth = portcullis_oauth::OAuthApi::new(&app.manager).unwrap();
    let base = serve(portcullis::api::routes(&app.manager, oauth)).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{base}/auth/oauth/acme/authorize");
    for _ in 0..2 {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 303);
    }
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
}

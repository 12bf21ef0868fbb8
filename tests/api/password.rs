//! Forgotten, reset, changed and first passwords.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use poem::http::{Method, StatusCode};
use portcullis::{veto_fn, Action, Email, EmailSender, Outbox, SendError, Veto};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::common::*;

const NEW_PASSWORD: &str = "Fresh-Kettle-92!plum";

async fn forgot(app: &TestApp, email: &str) -> serde_json::Value {
    let (status, body) = app
        .post("/auth/forgot-password", json!({ "email": email }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body
}

#[tokio::test]
async fn forgot_password_answers_the_same_for_every_email() {
    let app = app().await;
    app.register("known@example.com").await;
    app.register("gone@example.com").await;
    let gone = app.stored("gone@example.com").await.unwrap();
    app.store
        .as_ref()
        .patch_user(
            &gone.id,
            &portcullis::UserPatch::new().is_active(false),
            app.manager.now(),
        )
        .await
        .unwrap();
    app.manager.wait_for_deliveries().await;
    app.outbox.clear();

    let known = forgot(&app, "Known@Example.com").await;
    let unknown = forgot(&app, "nobody@example.com").await;
    let inactive = forgot(&app, "gone@example.com").await;
    assert_eq!(known, unknown);
    assert_eq!(known, inactive);

    let mails = app.mails_to("known@example.com").await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.contains("Reset"));
    assert!(
        link(
            &mails[0],
            "https://api.example.com/auth/reset-password?token="
        )
        .len()
            > 60
    );
    assert!(app.mails_to("nobody@example.com").await.is_empty());
    assert!(app.mails_to("gone@example.com").await.is_empty());
    assert_eq!(
        app.event_names()
            .iter()
            .filter(|e| **e == "password_reset_requested")
            .count(),
        1
    );

    let (status, body) = app
        .post("/auth/forgot-password", json!({ "email": "not an email" }))
        .await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
}

#[tokio::test]
async fn reset_sets_the_password_and_ends_every_session() {
    let app = app().await;
    let (access, refresh) = app.signed_in("rita@example.com").await;
    forgot(&app, "rita@example.com").await;
    let token = link_token(&app.mail("rita@example.com", "Reset").await);

    // A weak password is refused and the token survives.
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({ "token": token, "password": "password" }),
        )
        .await;
    assert_error(status, &body, 422, "PASSWORD_TOO_COMMON");

    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({ "token": token, "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // No sign-in, and every old token is dead.
    let (status, _) = app.me(&access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.refresh(&refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "rita@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "rita@example.com", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Notice mailed; token single use.
    app.mail("rita@example.com", "password was changed").await;
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({ "token": token, "password": "Another-9-password" }),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.event_names().contains(&"password_reset"));
}

#[tokio::test]
async fn the_reset_link_opens_a_page_or_the_configured_front_end() {
    let app = app().await;
    app.register("page@example.com").await;
    forgot(&app, "page@example.com").await;
    let mail = app.mail("page@example.com", "Reset").await;
    let url = link(&mail, "https://api.example.com/auth/reset-password?token=");
    let path = url.trim_start_matches("https://api.example.com");
    let resp = app.client.get(path).send().await;
    resp.assert_status_is_ok();
    let csp = assert_page_headers(&resp);
    let html = resp.0.into_body().into_string().await.unwrap();
    assert!(html.contains("<form") && html.contains("reset-password"));
    // The page's one script runs under its CSP: allowed by its hash, and
    // it may fetch this API only.
    let script = html
        .split("<script>")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .expect("the page's script");
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
    assert!(
        csp.contains(&format!("script-src 'sha256-{hash}'")),
        "{csp}"
    );
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    // Opening the page consumed nothing.
    let (status, _) = app
        .post(
            "/auth/reset-password",
            json!({ "token": link_token(&mail), "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let mut config = test_config();
    config.email.reset_password_url = Some("https://app.example.com/reset?from=mail".into());
    let app = app_with_config(config).await;
    app.register("spa@example.com").await;
    forgot(&app, "spa@example.com").await;
    let mail = app.mail("spa@example.com", "Reset").await;
    assert!(mail
        .text
        .contains("https://app.example.com/reset?from=mail&token="));
}

#[tokio::test]
async fn reset_links_expire_and_a_new_one_replaces_the_old() {
    let app = app().await;
    app.register("eve@example.com").await;
    forgot(&app, "eve@example.com").await;
    let first = link_token(&app.mail("eve@example.com", "Reset").await);
    forgot(&app, "eve@example.com").await;
    let mails = app.mails_to("eve@example.com").await;
    let second = link_token(mails.last().unwrap());
    assert_ne!(first, second);
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({ "token": first, "password": NEW_PASSWORD }),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");

    app.clock
        .advance(chrono::Duration::hours(1) + chrono::Duration::seconds(1));
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({ "token": second, "password": NEW_PASSWORD }),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({ "token": "unknown", "password": NEW_PASSWORD }),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    app.login("eve@example.com").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_reset_token_used_16_times_at_once_works_once() {
    let app = Arc::new(app().await);
    app.register("race@example.com").await;
    forgot(&app, "race@example.com").await;
    let token = link_token(&app.mail("race@example.com", "Reset").await);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let app = app.clone();
            let token = token.clone();
            tokio::spawn(async move {
                app.post(
                    "/auth/reset-password",
                    json!({ "token": token, "password": format!("Racing-password-{i}") }),
                )
                .await
            })
        })
        .collect();
    let mut ok = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (status, body) = task.await.unwrap();
        match status.as_u16() {
            204 => ok.push(i),
            410 => assert_eq!(body["code"], "TOKEN_GONE"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok.len(), 1, "exactly one reset wins");
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "race@example.com", "password": format!("Racing-password-{}", ok[0])}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let user = app.stored("race@example.com").await.unwrap();
    assert_eq!(user.token_version, 1, "one bump");
}

#[tokio::test]
async fn change_password_keeps_this_device_and_ends_the_others() {
    let app = app().await;
    let (access, _) = app.signed_in("carl@example.com").await;
    let other = app.login("carl@example.com").await;
    let path = "/auth/account/change-password";

    let (status, body) = app
        .call(
            Method::POST,
            path,
            &access,
            Some(json!({"current_password": "wrong-password", "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_error(status, &body, 422, "WRONG_PASSWORD");
    assert_eq!(body["field"], "current_password");
    let (status, body) = app
        .call(
            Method::POST,
            path,
            &access,
            Some(json!({"current_password": PASSWORD, "new_password": "short"})),
        )
        .await;
    assert_error(status, &body, 422, "PASSWORD_TOO_SHORT");
    assert_eq!(body["field"], "new_password");
    let (status, _) = app.me(&access).await;
    assert_eq!(status, StatusCode::OK, "failed attempts change nothing");

    let (status, pair) = app
        .call(
            Method::POST,
            path,
            &access,
            Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let new_access = pair["access_token"].as_str().unwrap();
    let (status, me) = app.me(new_access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "carl@example.com");
    let (status, _) = app.refresh(pair["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    // Old tokens of this and the other device are dead.
    assert_eq!(app.me(&access).await.0, StatusCode::UNAUTHORIZED);
    let other_access = other["access_token"].as_str().unwrap();
    assert_eq!(app.me(other_access).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = app.refresh(other["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "carl@example.com", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.mail("carl@example.com", "password was changed").await;
    assert!(app.event_names().contains(&"password_changed"));
}

#[tokio::test]
async fn set_password_is_only_for_users_without_one() {
    let app = app_with_passwordless(test_config()).await;
    let (access, _) = app.passwordless("pia@example.com").await;
    let (status, me) = app.me(&access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["has_password"], false);

    // change-password needs an existing password.
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/change-password",
            &access,
            Some(json!({"current_password": "anything", "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_error(status, &body, 409, "PASSWORD_NOT_SET");

    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/set-password",
            &access,
            Some(json!({ "password": "12345678" })),
        )
        .await;
    assert_error(status, &body, 422, "PASSWORD_TOO_COMMON");
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/set-password",
            &access,
            Some(json!({ "password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["has_password"], true);
    // The owner hears of it at once.
    app.mail("pia@example.com", "password was changed").await;
    // The session stays; the password now signs in.
    assert_eq!(app.me(&access).await.0, StatusCode::OK);
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "pia@example.com", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(app.event_names().contains(&"password_set"));

    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/set-password",
            &access,
            Some(json!({ "password": "Other-password-77" })),
        )
        .await;
    assert_error(status, &body, 409, "PASSWORD_ALREADY_SET");
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "pia@example.com", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the first password stays");
}

#[tokio::test]
async fn a_before_hook_veto_stops_a_reset_with_nothing_written() {
    let app = app_with(test_config(), |b| {
        b.hook(veto_fn(|action: Action| async move {
            match action {
                Action::ResetPassword { .. } => {
                    Err(Veto::new("RESETS_FROZEN", "password resets are frozen"))
                }
                _ => Ok(()),
            }
        }))
    })
    .await;
    app.register("hal@example.com").await;
    forgot(&app, "hal@example.com").await;
    let token = link_token(&app.mail("hal@example.com", "Reset").await);
    let before = app.stored("hal@example.com").await.unwrap();
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({ "token": token, "password": NEW_PASSWORD }),
        )
        .await;
    assert_error(status, &body, 403, "RESETS_FROZEN");
    let after = app.stored("hal@example.com").await.unwrap();
    assert_eq!(before.password_hash, after.password_hash);
    assert_eq!(before.token_version, after.token_version);
    // The token was not consumed.
    let found = app
        .store
        .as_ref()
        .find_one_time_token(
            &portcullis::TokenHash::of(&token),
            "reset_password",
            app.manager.now(),
        )
        .await
        .unwrap();
    assert!(found.is_some());
}

/// Set-password adds a credential without asking for one, so it needs a
/// recent sign-in: a session refreshed for hours is not enough (a stolen
/// session could otherwise add a password that outlives it), a new sign-in
/// is.
#[tokio::test]
async fn set_password_needs_a_recent_sign_in() {
    let app = app_with_passwordless(test_config()).await;
    let (_, refresh) = app.passwordless("old@example.com").await;
    app.clock.advance(chrono::Duration::minutes(16));
    // Refreshing keeps the session, and its sign-in time.
    let (status, pair) = app.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let access = pair["access_token"].as_str().unwrap();
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/set-password",
            access,
            Some(json!({ "password": NEW_PASSWORD })),
        )
        .await;
    assert_error(status, &body, 403, "REAUTHENTICATION_REQUIRED");
    let user = app.stored("old@example.com").await.unwrap();
    assert!(!user.has_password(), "nothing was written");
    assert!(!app.event_names().contains(&"password_set"));

    // A fresh sign-in can.
    let (fresh, _) = app.passwordless("old@example.com").await;
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/set-password",
            &fresh,
            Some(json!({ "password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // 0 turns the check off.
    let mut config = test_config();
    config.accounts.recent_sign_in_secs = 0;
    let app = app_with_passwordless(config).await;
    let (access, _) = app.passwordless("off@example.com").await;
    app.clock.advance(chrono::Duration::minutes(20));
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/set-password",
            &access,
            Some(json!({ "password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Links are built from `public_url`: a forged `Host` (or forwarded host)
/// header cannot point them at another site.
#[tokio::test]
async fn reset_links_ignore_the_request_host() {
    let app = app().await;
    app.register("host@example.com").await;
    let (status, _) = parts(
        app.client
            .post("/auth/forgot-password")
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example")
            .body_json(&json!({"email": "host@example.com"}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mail = app.mail("host@example.com", "Reset").await;
    link(&mail, "https://api.example.com/auth/reset-password?token=");
    assert!(!mail.text.contains("evil.example"), "{}", mail.text);
    let html = mail.html.as_deref().unwrap_or_default();
    assert!(!html.contains("evil.example"), "{html}");
}

/// A sender that holds every mail until the test opens the gate.
#[derive(Debug, Clone)]
struct GatedSender {
    gate: Arc<Semaphore>,
    sent: Outbox,
}

#[async_trait]
impl EmailSender for GatedSender {
    async fn send(&self, email: Email) -> Result<(), SendError> {
        let _pass = self.gate.acquire().await.expect("gate open");
        self.sent.send(email).await
    }
}

/// Answers never wait for mail delivery (so their timing tells nothing about
/// it): with every send stuck, the mailing requests still answer at once.
#[tokio::test]
async fn answers_do_not_wait_for_the_mail() {
    let sender = GatedSender {
        gate: Arc::new(Semaphore::new(0)),
        sent: Outbox::new(),
    };
    let app = app_with(test_config(), {
        let sender = sender.clone();
        move |b| b.email_sender(sender)
    })
    .await;
    let answer = |path: &'static str, body: serde_json::Value| {
        let app = &app;
        async move {
            tokio::time::timeout(Duration::from_secs(10), app.post(path, body))
                .await
                .expect("answered while the mail is stuck")
        }
    };
    let (status, body) = answer(
        "/auth/register",
        json!({"email": "slow@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for email in ["slow@example.com", "nobody@example.com"] {
        let (status, _) = answer("/auth/forgot-password", json!({ "email": email })).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let (status, _) = answer("/auth/verify-email/resend", json!({ "email": email })).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    assert!(sender.sent.sent().is_empty(), "nothing went out yet");
    // Once the gate opens, the mails do go out: two links to confirm the
    // address, one reset link, nothing for the unknown address.
    sender.gate.add_permits(100);
    app.manager.wait_for_deliveries().await;
    let subjects: Vec<String> = sender
        .sent
        .sent()
        .into_iter()
        .map(|m| {
            assert_eq!(m.to, "slow@example.com");
            m.subject
        })
        .collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert_eq!(
        subjects.iter().filter(|s| s.contains("Reset")).count(),
        1,
        "{subjects:?}"
    );
}

use poem::http::StatusCode;
use portcullis::{hook_fn, veto_fn, Action, Veto};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_before_hook_vetoes_registration_with_its_own_code() {
    let app = app_with(test_config(), |b| {
        b.hook(veto_fn(|action: Action| async move {
            match action {
                Action::Register { email, .. } if !email.ends_with("@corp.example") => {
                    Err(Veto::new(
                        "EMAIL_DOMAIN_NOT_ALLOWED",
                        "only corp.example addresses may register",
                    ))
                }
                _ => Ok(()),
            }
        }))
    })
    .await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "eve@gmail.example", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "EMAIL_DOMAIN_NOT_ALLOWED");
    assert_eq!(body["message"], "only corp.example addresses may register");
    assert!(app
        .store
        .as_ref()
        .find_user_by_email("eve@gmail.example")
        .await
        .unwrap()
        .is_none());
    assert!(
        app.event_names().is_empty(),
        "nothing happened: {:?}",
        app.event_names()
    );
    app.register("eve@corp.example").await;
}

#[tokio::test]
async fn a_before_hook_vetoes_login() {
    let app = app_with(test_config(), |b| {
        b.hook(veto_fn(|action: Action| async move {
            match action {
                Action::Login { user, .. } if user.email.starts_with("banned") => {
                    Err(Veto::new("BANNED", "this account is banned"))
                }
                _ => Ok(()),
            }
        }))
    })
    .await;
    app.register("banned@example.com").await;
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "banned@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "BANNED");
    let events = app.events.lock().clone();
    let failed = serde_json::to_value(events.last().unwrap()).unwrap();
    assert_eq!(failed["event"], "login_failed");
    assert_eq!(failed["code"], "BANNED");
    assert!(!app.event_names().contains(&"login_succeeded"));
}

#[tokio::test]
async fn a_panicking_hook_gets_a_json_500_not_a_dropped_connection() {
    let app = app_with(test_config(), |b| {
        b.hook(veto_fn(|_action: Action| async move {
            if true {
                panic!("hook bug");
            }
            Ok(())
        }))
    })
    .await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "max@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 500, "INTERNAL_ERROR");
    assert!(!body.to_string().contains("hook bug"));
}

#[tokio::test]
async fn after_hooks_see_every_event_and_failures_do_not_undo_flows() {
    let app = app_with(test_config(), |b| {
        b.hook(hook_fn(|_event| async { Err("audit sink is down".into()) }))
    })
    .await;
    let (access, refresh) = app.signed_in("fay@example.com").await;
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "fay@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, pair) = app.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK);
    app.refresh(&refresh).await; // reuse
    let (access2, _) = {
        let t = app.login("fay@example.com").await;
        (t["access_token"].as_str().unwrap().to_owned(), ())
    };
    app.client
        .post("/auth/logout")
        .header("authorization", format!("Bearer {access2}"))
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(
        app.event_names(),
        [
            "user_registered",
            "email_verification_requested",
            "login_succeeded",
            "login_failed",
            "token_refreshed",
            "refresh_token_reused",
            "login_succeeded",
            "logout"
        ]
    );
    let _ = (access, pair);
    // Events serialize with a snake_case tag and never a hash.
    let events = app.events.lock().clone();
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["event"], "user_registered");
    assert_eq!(json["user"]["email"], "fay@example.com");
    assert!(!json.to_string().contains("argon2"), "{json}");
}

/// Issue 12: every flow asks the before-hooks. A hook freezing the
/// accounts of `frozen…` addresses stops each of these flows with its own
/// code, and nothing happens.
#[tokio::test]
async fn before_hooks_can_veto_every_session_account_and_admin_flow() {
    fn frozen(user: &portcullis::User) -> bool {
        user.email.starts_with("frozen")
    }
    let app = app_with(test_config(), |b| {
        b.provider(FakeOAuthProvider)
            .hook(veto_fn(|action: Action| async move {
                let refuse = match &action {
                    Action::Refresh { user, .. }
                    | Action::Logout { user, .. }
                    | Action::RevokeSessions { user, .. }
                    | Action::UnlinkAccount { user, .. }
                    | Action::RequestReauthenticationCode { user, .. }
                    | Action::DeleteUser { user, .. }
                    | Action::AdminPasswordReset { user, .. } => frozen(user),
                    Action::RequestEmailVerification { email } => email.starts_with("frozen"),
                    _ => false,
                };
                if refuse {
                    Err(Veto::new("FROZEN", format!("{} is frozen", action.name())))
                } else {
                    Ok(())
                }
            }))
    })
    .await;
    let (access, refresh) = app.signed_in("frozen@example.com").await;
    let events_before = app.event_names().len();

    let (status, body) = app
        .call(poem::http::Method::POST, "/auth/logout", &access, None)
        .await;
    assert_error(status, &body, 403, "FROZEN");
    assert_eq!(body["message"], "logout is frozen");
    assert_eq!(app.me(&access).await.0, StatusCode::OK, "still signed in");

    let (status, body) = app
        .call(
            poem::http::Method::POST,
            "/auth/sessions/revoke-others",
            &access,
            None,
        )
        .await;
    assert_error(status, &body, 403, "FROZEN");
    let (status, body) = app
        .call(
            poem::http::Method::POST,
            "/auth/request-verify-email",
            &access,
            None,
        )
        .await;
    assert_error(status, &body, 403, "FROZEN");
    let (status, body) = app
        .post(
            "/auth/verify-email/resend",
            json!({"email": "frozen@example.com"}),
        )
        .await;
    assert_error(status, &body, 403, "FROZEN");
    let (status, body) = app
        .call(
            poem::http::Method::POST,
            "/auth/account/delete-code",
            &access,
            None,
        )
        .await;
    assert_error(status, &body, 403, "FROZEN");
    app.manager.wait_for_deliveries().await;
    let mails = app.mails_to("frozen@example.com").await;
    assert!(
        mails
            .iter()
            .all(|m| m.subject.contains("Confirm your email")),
        "only the registration mail: {:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );

    // Refresh: the token is rotated before the hook sees the user, so a
    // veto ends the session.
    let (status, body) = app.refresh(&refresh).await;
    assert_error(status, &body, 403, "FROZEN");
    assert_eq!(app.me(&access).await.0, StatusCode::UNAUTHORIZED);

    // Unlink.
    let sign_in = app
        .manager
        .sign_in(
            "fake-oauth",
            portcullis::ProviderRequest::new(
                json!({"sub": "f-1", "email": "frozen-oauth@example.com", "verified": true}),
            ),
        )
        .await
        .unwrap();
    let oauth_access = sign_in.tokens.access_token.clone();
    app.call(
        poem::http::Method::POST,
        "/auth/account/set-password",
        &oauth_access,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    let (status, body) = app
        .call(
            poem::http::Method::DELETE,
            "/auth/account/linked/fake-oauth",
            &oauth_access,
            None,
        )
        .await;
    assert_error(status, &body, 403, "FROZEN");
    assert_eq!(
        app.manager
            .linked_accounts(&sign_in.user)
            .await
            .unwrap()
            .len(),
        1
    );

    // Admin delete and admin reset.
    app.manager
        .ensure_superuser("root@example.com", &portcullis::Secret::new(PASSWORD))
        .await
        .unwrap();
    let root = app.login("root@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = app.stored("frozen@example.com").await.unwrap().id;
    let (status, body) = app
        .call(
            poem::http::Method::POST,
            &format!("/users/{id}/reset-password"),
            &root,
            None,
        )
        .await;
    assert_error(status, &body, 403, "FROZEN");
    let (status, body) = app
        .call(
            poem::http::Method::DELETE,
            &format!("/users/{id}"),
            &root,
            None,
        )
        .await;
    assert_error(status, &body, 403, "FROZEN");
    assert!(app.stored("frozen@example.com").await.is_some());
    let names = app.event_names();
    for name in [
        "logout",
        "sessions_revoked",
        "email_verification_requested",
        "reauthentication_code_requested",
        "token_refreshed",
        "account_unlinked",
        "password_reset_requested",
        "user_deleted",
    ] {
        assert!(
            !names[events_before..].contains(&name),
            "{name} happened: {names:?}"
        );
    }
}

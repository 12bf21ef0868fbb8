//! sessions

use chrono::{DateTime, Duration, Utc};
use poem::http::{Method, StatusCode};
use portcullis::{Clock, Event};
use serde_json::{json, Value};

use crate::common::*;

/// One sign-in (one session) from a browser identified by `user_agent`.
struct Device {
    access: String,
    refresh: String,
}

async fn login_from(app: &TestApp, email: &str, user_agent: &str) -> Device {
    let (status, body) = parts(
        app.client
            .post("/auth/login")
            .header("user-agent", user_agent)
            .body_json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Device {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// The caller's session list.
async fn sessions(app: &TestApp, access: &str) -> Vec<Value> {
    let (status, body) = app.call(Method::GET, "/auth/sessions", access, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["sessions"].as_array().unwrap().clone()
}

fn agents(list: &[Value]) -> Vec<&str> {
    list.iter()
        .map(|s| s["user_agent"].as_str().unwrap_or("-"))
        .collect()
}

/// The id of the caller's own session.
async fn current_id(app: &TestApp, access: &str) -> String {
    let list = sessions(app, access).await;
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{list:?}");
    current[0]["id"].as_str().unwrap().to_owned()
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

async fn revoke(app: &TestApp, access: &str, id: &str) -> (StatusCode, Value) {
    app.call(
        Method::DELETE,
        &format!("/auth/sessions/{id}"),
        access,
        None,
    )
    .await
}

#[tokio::test]
async fn sessions_are_listed_most_recently_used_first() {
    let app = app().await;
    app.register("ada@example.com").await;
    let started = app.clock.now();
    let one = login_from(&app, "ada@example.com", "ua-one").await;
    app.clock.advance(Duration::minutes(1));
    let _two = login_from(&app, "ada@example.com", "ua-two").await;
    app.clock.advance(Duration::minutes(1));
    let three = login_from(&app, "ada@example.com", "ua-three").await;

    let resp = app
        .client
        .get("/auth/sessions")
        .header("authorization", format!("Bearer {}", three.access))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("cache-control", "private, no-store");
    let body = body(resp).await;
    let list = body["sessions"].as_array().unwrap();
    assert_eq!(agents(list), ["ua-three", "ua-two", "ua-one"]);
    let current: Vec<bool> = list.iter().map(|s| s["current"] == true).collect();
    assert_eq!(current, [true, false, false]);
    let mut ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    for (i, s) in list.iter().enumerate() {
        assert_eq!(s["provider"], "credentials", "{s}");
        let created = time(&s["created_at"]);
        assert_eq!(time(&s["last_used_at"]), created, "{s}");
        assert_eq!(time(&s["expires_at"]) - created, Duration::days(30), "{s}");
        let minutes = 2 - i64::try_from(i).unwrap();
        let offset = created - started;
        assert!(
            offset >= Duration::minutes(minutes) - Duration::milliseconds(1)
                && offset <= Duration::minutes(minutes),
            "{s}"
        );
        assert!(s["ip"].is_null() || s["ip"].is_string(), "{s}");
    }

    // Refreshing the oldest session makes it the most recently used.
    app.clock.advance(Duration::minutes(1));
    let (status, pair) = app.refresh(&one.refresh).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let list = sessions(&app, &three.access).await;
    assert_eq!(agents(&list), ["ua-one", "ua-three", "ua-two"]);
    assert!(time(&list[0]["last_used_at"]) > time(&list[0]["created_at"]));
    assert_eq!(list[1]["current"], true);

    // Seen from the refreshed device, that session is the current one.
    let refreshed = pair["access_token"].as_str().unwrap();
    let list = sessions(&app, refreshed).await;
    assert_eq!(list[0]["user_agent"], "ua-one");
    assert_eq!(list[0]["current"], true);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
}

#[tokio::test]
async fn user_agents_are_kept_capped_or_absent() {
    let app = app().await;
    let (plain, _) = app.signed_in("bea@example.com").await;
    let long = "x".repeat(600);
    let device = login_from(&app, "bea@example.com", &long).await;
    let list = sessions(&app, &device.access).await;
    assert_eq!(list.len(), 2);
    let mine = list.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(mine["user_agent"], "x".repeat(512));
    let id = current_id(&app, &plain).await;
    let other = list.iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert_eq!(other["user_agent"], Value::Null);
}

#[tokio::test]
async fn sessions_of_other_users_and_ended_sessions_are_not_listed() {
    let app = app().await;
    app.register("cy@example.com").await;
    app.register("dee@example.com").await;
    let cy1 = login_from(&app, "cy@example.com", "cy-laptop").await;
    let cy2 = login_from(&app, "cy@example.com", "cy-phone").await;
    let dee = login_from(&app, "dee@example.com", "dee-laptop").await;

    let cy_list = sessions(&app, &cy1.access).await;
    let mut cy_agents = agents(&cy_list);
    cy_agents.sort_unstable();
    assert_eq!(cy_agents, ["cy-laptop", "cy-phone"]);
    let dee_list = sessions(&app, &dee.access).await;
    assert_eq!(agents(&dee_list), ["dee-laptop"]);
    assert!(cy_list.iter().all(|s| s["id"] != dee_list[0]["id"]));

    // A logged-out session disappears from the list.
    let (status, _) = app
        .call(Method::POST, "/auth/logout", &cy2.access, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(agents(&sessions(&app, &cy1.access).await), ["cy-laptop"]);

    // Sessions from before a password change are gone too.
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/change-password",
            &cy1.access,
            Some(json!({"current_password": PASSWORD, "new_password": "Brand-New#Pa55"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let renewed = body["access_token"].as_str().unwrap();
    let list = sessions(&app, renewed).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["current"], true);
    assert_eq!(agents(&sessions(&app, &dee.access).await), ["dee-laptop"]);
}

#[tokio::test]
async fn deleting_a_session_ends_it_at_once() {
    let app = app().await;
    app.register("eve@example.com").await;
    let laptop = login_from(&app, "eve@example.com", "eve-laptop").await;
    let phone = login_from(&app, "eve@example.com", "eve-phone").await;
    let phone_id = current_id(&app, &phone.access).await;
    assert_eq!(app.me(&phone.access).await.0, StatusCode::OK);

    let resp = app
        .client
        .delete(format!("/auth/sessions/{phone_id}"))
        .header("authorization", format!("Bearer {}", laptop.access))
        .send()
        .await;
    resp.assert_status(StatusCode::NO_CONTENT);
    let (status, body) = app.me(&phone.access).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
    let (status, body) = app.refresh(&phone.refresh).await;
    assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    assert!(app.events.lock().iter().any(|e| matches!(
        e,
        Event::SessionRevoked { session_id, .. } if session_id.as_str() == phone_id
    )));
    let store = app.store.as_ref();
    let stored = store
        .find_session(&portcullis::SessionId::new(phone_id.clone()))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.revoked_at.is_some());

    // The caller's own session is untouched.
    assert_eq!(app.me(&laptop.access).await.0, StatusCode::OK);
    let list = sessions(&app, &laptop.access).await;
    assert_eq!(agents(&list), ["eve-laptop"]);

    // Ending it again, or an unknown session, is a 404.
    let (status, body) = revoke(&app, &laptop.access, &phone_id).await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let (status, body) = revoke(&app, &laptop.access, "no-such-session").await;
    assert_error(status, &body, 404, "NOT_FOUND");
    assert_eq!(
        app.event_names()
            .iter()
            .filter(|n| **n == "session_revoked")
            .count(),
        1
    );

    // A device can end its own session too.
    let laptop_id = current_id(&app, &laptop.access).await;
    let (status, _) = revoke(&app, &laptop.access, &laptop_id).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.me(&laptop.access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh(&laptop.refresh).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn another_users_session_cannot_be_deleted() {
    let app = app().await;
    app.register("fay@example.com").await;
    app.register("gus@example.com").await;
    let fay = login_from(&app, "fay@example.com", "fay-laptop").await;
    let gus = login_from(&app, "gus@example.com", "gus-laptop").await;
    let gus_id = current_id(&app, &gus.access).await;

    let (status, body) = revoke(&app, &fay.access, &gus_id).await;
    assert_error(status, &body, 404, "NOT_FOUND");
    assert_eq!(app.me(&gus.access).await.0, StatusCode::OK);
    assert_eq!(agents(&sessions(&app, &gus.access).await), ["gus-laptop"]);
    let (status, pair) = app.refresh(&gus.refresh).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert!(!app.event_names().contains(&"session_revoked"));
    let stored = app
        .store
        .as_ref()
        .find_session(&portcullis::SessionId::new(gus_id))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.revoked_at.is_none());
}

#[tokio::test]
async fn revoke_others_keeps_only_the_current_session() {
    let app = app().await;
    app.register("hal@example.com").await;
    app.register("ivy@example.com").await;
    let a = login_from(&app, "hal@example.com", "hal-a").await;
    let b = login_from(&app, "hal@example.com", "hal-b").await;
    let c = login_from(&app, "hal@example.com", "hal-c").await;
    let ivy = login_from(&app, "ivy@example.com", "ivy-a").await;

    let (status, body) = app
        .call(
            Method::POST,
            "/auth/sessions/revoke-others",
            &b.access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"revoked": 2}));
    assert!(app
        .events
        .lock()
        .iter()
        .any(|e| matches!(e, Event::SessionsRevoked { count: 2, .. })));

    let list = sessions(&app, &b.access).await;
    assert_eq!(agents(&list), ["hal-b"]);
    assert_eq!(list[0]["current"], true);
    for device in [&a, &c] {
        let (status, body) = app.me(&device.access).await;
        assert_error(status, &body, 401, "UNAUTHENTICATED");
        let (status, body) = app.refresh(&device.refresh).await;
        assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    }
    assert_eq!(app.me(&b.access).await.0, StatusCode::OK);
    let (status, pair) = app.refresh(&b.refresh).await;
    assert_eq!(status, StatusCode::OK, "{pair}");

    // Other users keep their sessions.
    assert_eq!(app.me(&ivy.access).await.0, StatusCode::OK);
    assert_eq!(agents(&sessions(&app, &ivy.access).await), ["ivy-a"]);

    // Nothing left to end.
    let renewed = pair["access_token"].as_str().unwrap();
    let (status, body) = app
        .call(Method::POST, "/auth/sessions/revoke-others", renewed, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"revoked": 0}));
    assert_eq!(app.me(renewed).await.0, StatusCode::OK);
}

#[tokio::test]
async fn session_endpoints_need_a_live_access_token() {
    let app = app().await;
    let (access, _) = app.signed_in("jo@example.com").await;
    let id = current_id(&app, &access).await;
    let calls = [
        (Method::GET, "/auth/sessions".to_owned()),
        (Method::DELETE, format!("/auth/sessions/{id}")),
        (Method::POST, "/auth/sessions/revoke-others".to_owned()),
    ];
    for (method, path) in &calls {
        let (status, body) = parts(app.client.request(method.clone(), path).send().await).await;
        assert_error(status, &body, 401, "UNAUTHENTICATED");
        let (status, body) = app.call(method.clone(), path, "not-a-jwt", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Nothing above touched the session.
    assert_eq!(sessions(&app, &access).await.len(), 1);

    // Once the session is over, its token opens none of them.
    let (status, _) = app.call(Method::POST, "/auth/logout", &access, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (method, path) in &calls {
        let (status, body) = app.call(method.clone(), path, &access, None).await;
        assert_error(status, &body, 401, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn expired_sessions_are_not_listed_or_revocable() {
    let app = app().await;
    app.register("kai@example.com").await;
    let old = login_from(&app, "kai@example.com", "kai-old").await;
    let old_id = current_id(&app, &old.access).await;
    app.clock.advance(Duration::days(29));
    let new = login_from(&app, "kai@example.com", "kai-new").await;
    assert_eq!(sessions(&app, &new.access).await.len(), 2);
    app.clock.advance(Duration::days(2));
    // The new session's access token has expired by now: refresh it.
    let (status, pair) = app.refresh(&new.refresh).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(agents(&sessions(&app, access).await), ["kai-new"]);
    let (status, body) = revoke(&app, access, &old_id).await;
    assert_error(status, &body, 404, "NOT_FOUND");
    assert_eq!(app.refresh(&old.refresh).await.0, StatusCode::UNAUTHORIZED);
}

/// An expired session is not "ended" by revoke-others, so not counted.
#[tokio::test]
async fn revoke_others_counts_only_sessions_it_ends() {
    let app = app().await;
    app.register("lou@example.com").await;
    let _old = login_from(&app, "lou@example.com", "lou-old").await;
    app.clock.advance(Duration::days(29));
    let _live = login_from(&app, "lou@example.com", "lou-live").await;
    let new = login_from(&app, "lou@example.com", "lou-new").await;
    app.clock.advance(Duration::days(2));
    let (status, pair) = app.refresh(&new.refresh).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let access = pair["access_token"].as_str().unwrap();
    // The first session expired on its own: only one other is live.
    assert_eq!(
        agents(&sessions(&app, access).await),
        ["lou-new", "lou-live"]
    );
    let (status, body) = app
        .call(Method::POST, "/auth/sessions/revoke-others", access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"revoked": 1}));
    assert_eq!(agents(&sessions(&app, access).await), ["lou-new"]);
}

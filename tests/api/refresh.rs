use chrono::Duration;
use poem::http::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = app().await;
    let (access, r1) = app.signed_in("sam@example.com").await;
    let (status, pair) = app.refresh(&r1).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let r2 = pair["refresh_token"].as_str().unwrap().to_owned();
    let a2 = pair["access_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    assert_eq!(app.me(&a2).await.0, StatusCode::OK);
    assert_eq!(
        app.me(&access).await.0,
        StatusCode::OK,
        "older access token of a live session"
    );

    // Replaying r1: reuse → the whole family dies, including r2 and its access tokens.
    let (status, body) = app.refresh(&r1).await;
    assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    assert!(app.event_names().contains(&"refresh_token_reused"));
    let (status, _) = app.refresh(&r2).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&a2).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&access).await.0, StatusCode::UNAUTHORIZED);
    // Other sessions are untouched.
    let other = app.login("sam@example.com").await;
    assert_eq!(
        app.me(other["access_token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_and_malformed_refresh_tokens() {
    let app = app().await;
    let (status, body) = app.refresh("not-a-token").await;
    assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    let (status, body) = app.post("/auth/refresh", json!({})).await;
    assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    let (status, body) = app.post("/auth/refresh", json!({"refresh_token": 5})).await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
}

#[tokio::test]
async fn sessions_have_an_absolute_lifetime() {
    let app = app().await;
    let (_, mut refresh) = app.signed_in("tia@example.com").await;
    // Refreshing every 10 days keeps working until day 30, never past it.
    for _ in 0..2 {
        app.clock.advance(Duration::days(10));
        let (status, pair) = app.refresh(&refresh).await;
        assert_eq!(status, StatusCode::OK);
        refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    }
    app.clock.advance(Duration::days(10));
    let (status, body) = app.refresh(&refresh).await;
    assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
}

#[tokio::test]
async fn grace_window_keeps_a_single_chain() {
    let mut config = test_config();
    config.refresh.reuse_grace_secs = 10;
    let app = app_with_config(config).await;

    // The answer to r1 was lost: a retry inside the window gets r3, and the
    // lost r2 is superseded, so presenting it later is reuse.
    let (_, r1) = app.signed_in("hal@example.com").await;
    let (_, lost) = app.refresh(&r1).await;
    let r2 = lost["refresh_token"].as_str().unwrap().to_owned();
    let (status, retry) = app.refresh(&r1).await;
    assert_eq!(status, StatusCode::OK);
    let r3 = retry["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(app.refresh(&r2).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh(&r3).await.0,
        StatusCode::UNAUTHORIZED,
        "family revoked by the reuse"
    );

    // Once the replacement was used, replaying the parent is reuse even
    // inside the window.
    let (_, a1) = app.signed_in("ida@example.com").await;
    let (_, a2) = app.refresh(&a1).await;
    let (status, a3) = app.refresh(a2["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.refresh(&a1).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh(a3["refresh_token"].as_str().unwrap()).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grace_window_under_parallel_refreshes_leaves_one_live_token() {
    let mut config = test_config();
    config.refresh.reuse_grace_secs = 10;
    let app = std::sync::Arc::new(app_with_config(config).await);
    let (_, r1) = app.signed_in("jon@example.com").await;
    let tasks = (0..16).map(|_| {
        let app = app.clone();
        let r1 = r1.clone();
        tokio::spawn(async move { app.refresh(&r1).await })
    });
    let results: Vec<_> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let issued: Vec<String> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| b["refresh_token"].as_str().unwrap().to_owned())
        .collect();
    assert!(!issued.is_empty());
    // At most one chain survives: whatever order the issued tokens are
    // presented in, at most one of them refreshes.
    let mut successes = 0;
    for token in &issued {
        if app.refresh(token).await.0 == StatusCode::OK {
            successes += 1;
        }
    }
    assert!(successes <= 1, "{successes} live chains");
}

#[tokio::test]
async fn grace_window_tolerates_a_quick_retry() {
    let mut config = test_config();
    config.refresh.reuse_grace_secs = 10;
    let app = app_with_config(config).await;
    let (_, r1) = app.signed_in("uma@example.com").await;
    assert_eq!(app.refresh(&r1).await.0, StatusCode::OK);
    app.clock.advance(Duration::seconds(5));
    let (status, retry) = app.refresh(&r1).await;
    assert_eq!(status, StatusCode::OK, "inside the grace window");
    app.clock.advance(Duration::seconds(6));
    assert_eq!(
        app.refresh(&r1).await.0,
        StatusCode::UNAUTHORIZED,
        "past the window: reuse"
    );
    let r = retry["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.refresh(r).await.0,
        StatusCode::UNAUTHORIZED,
        "family revoked"
    );
}

/// The grace window gives a token one retry, on every store (MemoryStore
/// used to allow any number, MongoStore one): a second retry, however
/// soon, is reuse and ends the family.
#[tokio::test]
async fn grace_window_allows_one_retry_per_token() {
    let mut config = test_config();
    config.refresh.reuse_grace_secs = 10;
    let app = app_with_config(config).await;
    let (_, r1) = app.signed_in("once@example.com").await;
    assert_eq!(app.refresh(&r1).await.0, StatusCode::OK);
    app.clock.advance(Duration::seconds(1));
    let (status, retry) = app.refresh(&r1).await;
    assert_eq!(status, StatusCode::OK, "the first retry");
    app.clock.advance(Duration::seconds(1));
    let (status, body) = app.refresh(&r1).await;
    assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    let r = retry["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.refresh(r).await.0,
        StatusCode::UNAUTHORIZED,
        "the family is revoked"
    );
    assert!(app.event_names().contains(&"refresh_token_reused"));
}

#[tokio::test]
async fn logout_ends_only_this_session_at_once() {
    let app = app().await;
    let (access, refresh) = app.signed_in("vic@example.com").await;
    let other = app.login("vic@example.com").await;
    let resp = app
        .client
        .post("/auth/logout")
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await;
    resp.assert_status(StatusCode::NO_CONTENT);
    resp.assert_header("cache-control", "no-store");
    assert_eq!(
        app.me(&access).await.0,
        StatusCode::UNAUTHORIZED,
        "access token dies at once"
    );
    let (status, body) = app.refresh(&refresh).await;
    assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    assert_eq!(
        app.me(other["access_token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
    assert!(app.event_names().contains(&"logout"));
    // A second logout with the dead token is a 401.
    let resp = app
        .client
        .post("/auth/logout")
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    let resp = app.client.post("/auth/logout").send().await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn very_old_tokens_are_forgotten_not_fatal() {
    // The memory store remembers the last 64 tokens of a session.
    let app = app().await;
    let (_, first) = app.signed_in("kai@example.com").await;
    let mut current = first.clone();
    for _ in 0..70 {
        let (status, pair) = app.refresh(&current).await;
        assert_eq!(status, StatusCode::OK);
        current = pair["refresh_token"].as_str().unwrap().to_owned();
    }
    let (status, body) = app.refresh(&first).await;
    assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    assert_eq!(
        app.refresh(&current).await.0,
        StatusCode::OK,
        "session still alive"
    );
}

#[tokio::test]
async fn refresh_answers_are_not_cached() {
    let app = app().await;
    let (_, refresh) = app.signed_in("nic@example.com").await;
    let resp = app
        .client
        .post("/auth/refresh")
        .body_json(&json!({ "refresh_token": refresh }))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("cache-control", "no-store");
}

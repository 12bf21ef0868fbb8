use std::sync::Arc;

use futures_util::future::join_all;
use poem::http::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_parallel_refreshes_of_one_token_give_at_most_one_success() {
    let app = Arc::new(app().await);
    let (_, refresh) = app.signed_in("will@example.com").await;
    let tasks = (0..16).map(|_| {
        let app = app.clone();
        let refresh = refresh.clone();
        tokio::spawn(async move { app.refresh(&refresh).await })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ok: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    // The memory store serialises the 16 rotations: exactly one wins.
    assert_eq!(ok.len(), 1, "{} successes", ok.len());
    for (status, body) in &results {
        if *status != StatusCode::OK {
            assert_error(*status, body, 401, "INVALID_REFRESH_TOKEN");
        }
    }
    // Reuse was detected, so the family is dead: the winner's token too.
    for (_, body) in ok {
        let token = body["refresh_token"].as_str().unwrap();
        assert_eq!(app.refresh(token).await.0, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_parallel_registrations_of_one_email_give_one_201() {
    let app = Arc::new(app().await);
    let tasks = (0..16).map(|i| {
        let app = app.clone();
        // Same address, different case: still one account.
        let email = if i % 2 == 0 {
            "xena@example.com"
        } else {
            "XENA@example.com"
        };
        tokio::spawn(async move {
            app.post(
                "/auth/register",
                json!({"email": email, "password": PASSWORD}),
            )
            .await
        })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let conflicts = results
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["code"] == "EMAIL_TAKEN")
        .count();
    assert_eq!((created, conflicts), (1, 15), "{results:?}");
    let (users, total) = app
        .store
        .as_ref()
        .list_users(&portcullis::store::UserQuery::page(0, 100))
        .await
        .unwrap();
    assert_eq!((users.len(), total), (1, Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_logins_get_separate_sessions() {
    let app = Arc::new(app().await);
    app.register("yan@example.com").await;
    let tasks = (0..8).map(|_| {
        let app = app.clone();
        tokio::spawn(async move { app.login("yan@example.com").await })
    });
    let pairs: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let mut refresh: Vec<_> = pairs
        .iter()
        .map(|p| p["refresh_token"].to_string())
        .collect();
    refresh.sort();
    refresh.dedup();
    assert_eq!(refresh.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_password_changes_change_it_once() {
    let app = Arc::new(app().await);
    let (access, _) = app.signed_in("zed@example.com").await;
    let tasks = (0..8).map(|i| {
        let app = app.clone();
        let access = access.clone();
        tokio::spawn(async move {
            app.call(
                poem::http::Method::POST,
                "/auth/account/change-password",
                &access,
                Some(json!({
                    "current_password": PASSWORD,
                    "new_password": format!("Parallel-password-{i}")
                })),
            )
            .await
        })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let mut winners = Vec::new();
    for (i, (status, body)) in results.iter().enumerate() {
        match status.as_u16() {
            200 => winners.push(i),
            // Lost the compare-and-set, or checked against the new hash.
            422 => assert_eq!(body["code"], "WRONG_PASSWORD", "{body}"),
            // Started after the winner's token_version bump.
            401 => assert_eq!(body["code"], "UNAUTHENTICATED", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "{results:?}");
    let user = app.stored("zed@example.com").await.unwrap();
    assert_eq!(user.token_version, 1, "one bump");
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": "zed@example.com", "password": format!("Parallel-password-{}", winners[0])}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

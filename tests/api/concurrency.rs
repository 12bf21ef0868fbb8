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
        .manager
        .store()
        .list_users(&portcullis::UserQuery::page(0, 100))
        .await
        .unwrap();
    assert_eq!((users.len(), total), (1, 1));
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

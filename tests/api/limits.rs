//! Rate limits: per client IP (with trusted proxies), per address, and the
//! progressive delay for failed sign-ins.

use poem::http::StatusCode;
use portcullis::Limit;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn failed_sign_ins_slow_down_progressively_never_lock_out() {
    let app = app().await;
    app.register("lock@example.com").await;
    let attempt = |password: &'static str| {
        app.client
            .post("/auth/login")
            .body_json(&json!({"email": "Lock@Example.com", "password": password}))
            .send()
    };
    for _ in 0..5 {
        attempt("wrong-password")
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    // The sixth attempt must wait a second, even with the right password.
    let resp = attempt(PASSWORD).await;
    resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
    resp.assert_header("retry-after", "1");
    let (status, body) = parts(resp).await;
    assert_error(status, &body, 429, "RATE_LIMITED");

    app.clock.advance(chrono::Duration::seconds(1));
    attempt("wrong-password")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    // Six failures: two seconds now.
    let resp = attempt(PASSWORD).await;
    resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
    resp.assert_header("retry-after", "2");
    app.clock.advance(chrono::Duration::seconds(2));
    attempt(PASSWORD).await.assert_status_is_ok();
    // A success clears the failures.
    attempt("wrong-password")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    attempt(PASSWORD).await.assert_status_is_ok();
    assert!(app.event_names().contains(&"rate_limited"));
    // Other addresses are not slowed by it.
    app.register("free@example.com").await;
    app.login("free@example.com").await;
}

#[tokio::test]
async fn mail_requests_are_limited_per_address() {
    let app = app().await;
    app.register("spam@example.com").await;
    for _ in 0..5 {
        let (status, _) = app
            .post(
                "/auth/forgot-password",
                json!({"email": "spam@example.com"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, body) = app
        .post(
            "/auth/forgot-password",
            json!({"email": "SPAM@example.com"}),
        )
        .await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    assert_eq!(
        app.mails_to("spam@example.com")
            .await
            .iter()
            .filter(|m| m.subject.contains("Reset"))
            .count(),
        5
    );
    // An hour later it works again.
    app.clock.advance(chrono::Duration::hours(1));
    let (status, _) = app
        .post(
            "/auth/forgot-password",
            json!({"email": "spam@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn limits_can_be_turned_off() {
    let mut config = test_config();
    config.rate_limits.enabled = false;
    let app = app_with_config(config).await;
    app.register("off@example.com").await;
    for _ in 0..8 {
        let (status, _) = app
            .post(
                "/auth/login",
                json!({"email": "off@example.com", "password": "wrong-password"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    app.login("off@example.com").await;
}

/// Over a real socket: the client IP is the socket address, or with a
/// trusted proxy the right-most untrusted `X-Forwarded-For` entry.
#[tokio::test]
async fn sign_ins_are_limited_per_client_ip_behind_a_trusted_proxy() {
    let mut config = test_config();
    config.rate_limits.sign_in_per_ip = Limit::new(3, 60);
    config.rate_limits.trusted_proxies = vec!["127.0.0.1".into()];
    let app = app_with_config(config).await;
    app.register("ip@example.com").await;
    let server = app.serve().await;
    let http = reqwest::Client::new();
    let login = |forwarded: &'static str| {
        http.post(format!("{}/auth/login", server.base))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"email": "ip@example.com", "password": PASSWORD}))
            .send()
    };

    for _ in 0..3 {
        assert_eq!(login("203.0.113.5").await.unwrap().status(), 200);
    }
    let limited = login("203.0.113.5").await.unwrap();
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // A client cannot escape by prepending a forged address: the right-most
    // untrusted entry counts.
    assert_eq!(
        login("198.51.100.1, 203.0.113.5").await.unwrap().status(),
        429
    );
    // Another client is not affected.
    assert_eq!(login("198.51.100.9").await.unwrap().status(), 200);
}

#[tokio::test]
async fn unknown_addresses_are_limited_the_same() {
    let app = app().await;
    app.register("known@example.com").await;
    let mut answers = Vec::new();
    for email in ["known@example.com", "unknown@example.com"] {
        for _ in 0..5 {
            let (status, body) = app
                .post("/auth/forgot-password", json!({ "email": email }))
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{email}: {body}");
        }
        answers.push(
            app.post("/auth/forgot-password", json!({ "email": email }))
                .await,
        );
    }
    assert_error(answers[0].0, &answers[0].1, 429, "RATE_LIMITED");
    assert_eq!(answers[0], answers[1]);
}

/// Mail-sending requests (reset, verification) share one per-IP budget;
/// uses of emailed tokens have their own. Over a real socket, as above.
#[tokio::test]
async fn mail_and_token_requests_are_limited_per_client_ip() {
    let mut config = test_config();
    config.rate_limits.email_per_ip = Limit::new(3, 3600);
    config.rate_limits.token_per_ip = Limit::new(3, 600);
    config.rate_limits.trusted_proxies = vec!["127.0.0.1".into()];
    let app = app_with_config(config).await;
    let server = app.serve().await;
    let http = reqwest::Client::new();
    let post = |path: &'static str, from: &'static str, body: serde_json::Value| {
        http.post(format!("{}{path}", server.base))
            .header("x-forwarded-for", from)
            .json(&body)
            .send()
    };

    // Three mails from one client, each to another address…
    for (path, email) in [
        ("/auth/forgot-password", "a@example.com"),
        ("/auth/verify-email/resend", "b@example.com"),
        ("/auth/forgot-password", "c@example.com"),
    ] {
        let resp = post(path, "203.0.113.7", json!({ "email": email }))
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{path}");
    }
    // …then both kinds of mail request are refused for that client only.
    for path in ["/auth/forgot-password", "/auth/verify-email/resend"] {
        let resp = post(path, "203.0.113.7", json!({"email": "d@example.com"}))
            .await
            .unwrap();
        assert_eq!(resp.status(), 429, "{path}");
        assert!(resp.headers().contains_key("retry-after"));
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "RATE_LIMITED", "{body}");
    }
    let resp = post(
        "/auth/forgot-password",
        "198.51.100.9",
        json!({"email": "d@example.com"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 202);

    // Guessing emailed tokens: three tries, then 429, for that client only.
    for _ in 0..3 {
        let resp = post(
            "/auth/verify-email",
            "203.0.113.8",
            json!({"token": "guessed-token"}),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 410);
    }
    let resp = post(
        "/auth/reset-password",
        "203.0.113.8",
        json!({"token": "guessed-token", "password": "Guessing-pa55word!"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 429);
    let resp = post(
        "/auth/verify-email",
        "198.51.100.9",
        json!({"token": "guessed-token"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 410);
}

//! Rate limits: per client IP (with trusted proxies), per address, and the
//! progressive delay for failed sign-ins.

use std::time::Duration;

use poem::{http::StatusCode, listener::TcpListener, Server};
use portcullis::{api, Limit};
use portcullis_credentials::CredentialsApi;
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let routes = api::routes(&app.manager, CredentialsApi::new(&app.manager));
    let server =
        tokio::spawn(Server::new(TcpListener::bind(format!("127.0.0.1:{port}"))).run(routes));
    let http = reqwest::Client::new();
    let login = |forwarded: &'static str| {
        http.post(format!("http://127.0.0.1:{port}/auth/login"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"email": "ip@example.com", "password": PASSWORD}))
            .send()
    };
    let mut ready = false;
    for _ in 0..50 {
        if http
            .get(format!("http://127.0.0.1:{port}/auth/providers"))
            .send()
            .await
            .is_ok()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "server did not start");

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
    server.abort();
}

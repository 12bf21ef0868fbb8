//! Rate limits live in the store: requests alternating between the nodes
//! reach a limit at the same total as requests to one node would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis::RateLimitConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::*;

fn unix_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs_f64()
}

/// A failed sign-in (an unknown email, a new one each time so that the
/// per-account delay never applies) from `ip` on `node`.
async fn failed_sign_in(node: &Node, ip: &str, n: u32) -> Reply {
    node.call(
        Method::POST,
        "/auth/login",
        ip,
        Some(json!({"email": format!("nobody-{n}@example.com"), "password": PASSWORD})),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_per_ip_sign_in_limit_is_counted_across_nodes() {
    // The demo server runs on the default limits.
    let limit = RateLimitConfig::default().sign_in_per_ip;
    let window = limit.window_secs as f64;
    let cluster = Cluster::start().await;

    // The limit counts in fixed windows aligned to the epoch: every attempt
    // must fall in one window. Start early in a window; should a window
    // still end mid-run (a stalled machine), the run is repeated from
    // another IP rather than judged.
    for (run, ip) in ["203.0.113.1", "203.0.113.2"].into_iter().enumerate() {
        let left = window - unix_secs() % window;
        if left < 20.0 {
            tokio::time::sleep(Duration::from_secs_f64(left + 0.2)).await;
        }
        let started = (unix_secs() / window).floor();
        let mut replies = Vec::new();
        // Alternate A, B, A, B …: each node sees only half of the attempts.
        for n in 0..limit.max + 2 {
            let node = cluster.nodes()[n as usize % 2];
            replies.push((node.name, failed_sign_in(node, ip, n).await));
        }
        let ended = (unix_secs() / window).floor();
        if started != ended {
            assert_eq!(run, 0, "two runs crossed a rate-limit window: too slow");
            eprintln!("a rate-limit window ended during the run: repeating it from another IP");
            continue;
        }
        let (allowed, refused) = replies.split_at(limit.max as usize);
        for (i, (node, reply)) in allowed.iter().enumerate() {
            reply.expect_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                &format!("attempt {} of {} (node {node})", i + 1, limit.max),
            );
        }
        // Over the limit on both nodes, with the same window end.
        let mut waits = Vec::new();
        for (node, reply) in refused {
            reply.expect_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                &format!("attempt over the limit on node {node}"),
            );
            let wait: u64 = reply
                .retry_after
                .as_deref()
                .unwrap_or_else(|| panic!("no Retry-After on node {node}"))
                .parse()
                .expect("Retry-After in seconds");
            assert!(
                (1..=limit.window_secs).contains(&wait),
                "Retry-After {wait} on node {node}"
            );
            waits.push(wait);
        }
        assert_eq!(refused.len(), 2);
        assert!(waits[0].abs_diff(waits[1]) <= 1, "{waits:?}");
        assert_ne!(refused[0].0, refused[1].0, "both nodes refuse");

        // The limit is per client IP: another one still gets through on both.
        for node in cluster.nodes() {
            failed_sign_in(node, "203.0.113.99", 1000)
                .await
                .expect_error(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_CREDENTIALS",
                    &format!("another IP on node {}", node.name),
                );
        }
        return;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_on_one_account_slow_down_across_nodes() {
    let config = RateLimitConfig::default();
    let cluster = Cluster::start().await;
    // Failures count in fixed windows too: do not start at the end of one.
    let window = config.failed_sign_in_window_secs as f64;
    let left = window - unix_secs() % window;
    if left < 10.0 {
        tokio::time::sleep(Duration::from_secs_f64(left + 0.2)).await;
    }
    let ip = "203.0.113.50";
    let email = "guess@example.com";
    cluster.a.register(ip, email).await;
    let attempt = |node: &'static str, password: &'static str| {
        let node = if node == "A" { &cluster.a } else { &cluster.b };
        node.call(
            Method::POST,
            "/auth/login",
            ip,
            Some(json!({"email": email, "password": password})),
            None,
        )
    };
    // The free failures, alternating between the nodes.
    for n in 0..config.failed_sign_in_free {
        let node = if n % 2 == 0 { "A" } else { "B" };
        attempt(node, "wrong-password-1").await.expect_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            &format!("failure {} on node {node}", n + 1),
        );
    }
    // The next attempt, even with the right password and on either node,
    // must wait (1 s after the last failure).
    for node in ["B", "A"] {
        let reply = attempt(node, PASSWORD).await;
        reply.expect_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            &format!("attempt after the free failures on node {node}"),
        );
        assert_eq!(reply.retry_after.as_deref(), Some("1"), "node {node}");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // After the wait the right password gets in (on B), which clears the
    // failures for both nodes: the next failure on A is free again.
    attempt("B", PASSWORD)
        .await
        .expect(StatusCode::OK, "sign-in after the delay on B");
    attempt("A", "wrong-password-2").await.expect_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
        "a failure after the success",
    );
    attempt("A", PASSWORD)
        .await
        .expect(StatusCode::OK, "sign-in right after one failure on A");
}

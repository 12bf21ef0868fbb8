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

/// Over an address's mail budget the answer stays the same 202 and
/// nothing new is sent (so nobody can lock the owner out of reset by
/// requesting mail for their address); an hour later mail flows again.
#[tokio::test]
async fn mail_requests_are_limited_per_address() {
    let app = app().await;
    app.register("spam@example.com").await;
    let resets = |app: &TestApp| {
        app.outbox
            .sent()
            .iter()
            .filter(|m| m.to == "spam@example.com" && m.subject.contains("Reset"))
            .count()
    };
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
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.manager.wait_for_deliveries().await;
    assert_eq!(resets(&app), 5);
    assert!(app.event_names().contains(&"rate_limited"));
    // An hour later it sends again.
    app.clock.advance(chrono::Duration::hours(1));
    let (status, _) = app
        .post(
            "/auth/forgot-password",
            json!({"email": "spam@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.manager.wait_for_deliveries().await;
    assert_eq!(resets(&app), 6);
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

/// Over the per-address budget a known and an unknown address get the
/// same answer (nothing is sent to either).
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
    assert_eq!(answers[0].0, StatusCode::ACCEPTED, "{}", answers[0].1);
    assert_eq!(answers[0], answers[1]);
    let resets = app
        .mails_to("known@example.com")
        .await
        .iter()
        .filter(|m| m.subject.contains("Reset"))
        .count();
    assert_eq!(resets, 5);
    assert!(app.mails_to("unknown@example.com").await.is_empty());
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

/// Defect 4: the per-account failure slot is reserved in the store before
/// the password is hashed, so 30 parallel wrong passwords for one account
/// get the free budget (5) verified and the rest refused unverified.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_verify_at_most_the_free_budget() {
    let app = std::sync::Arc::new(app().await);
    app.register("burst@example.com").await;
    let tasks = (0..30).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            app.post(
                "/auth/login",
                json!({"email": "burst@example.com", "password": "wrong-password"}),
            )
            .await
        })
    });
    let results: Vec<_> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let verified = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(verified, 5, "free budget: {results:?}");
    for (status, body) in &results {
        if *status != StatusCode::UNAUTHORIZED {
            assert_error(*status, body, 429, "RATE_LIMITED");
        }
    }
    let count = |name: &str| app.event_names().iter().filter(|n| **n == name).count();
    assert_eq!(count("login_failed"), 5, "the checked attempts");
    assert_eq!(count("rate_limited"), 25, "the refused ones");
    // The delay is the one of five failures: a second, then the owner is in.
    app.clock.advance(chrono::Duration::seconds(1));
    app.login("burst@example.com").await;
}

/// Defect 3: a wrong current password on change-password, change-email and
/// delete counts like a failed sign-in of the account (one budget shared
/// with `/auth/login`): after five, every guess waits, even the right one.
#[tokio::test]
async fn wrong_current_passwords_count_like_failed_sign_ins() {
    let app = app().await;
    let (access, _) = app.signed_in("guess@example.com").await;
    let change_password = |current: &str| json!({"current_password": current, "new_password": "An0ther-long-passphrase"});
    let post = poem::http::Method::POST;
    let delete = poem::http::Method::DELETE;
    for _ in 0..2 {
        let (status, body) = app
            .call(
                post.clone(),
                "/auth/account/change-password",
                &access,
                Some(change_password("wrong-password")),
            )
            .await;
        assert_error(status, &body, 422, "WRONG_PASSWORD");
    }
    let (status, body) = app
        .call(
            post.clone(),
            "/auth/account/change-email",
            &access,
            Some(json!({"new_email": "moved@example.com", "password": "wrong-password"})),
        )
        .await;
    assert_error(status, &body, 422, "WRONG_PASSWORD");
    let (status, body) = app
        .call(
            delete.clone(),
            "/auth/account",
            &access,
            Some(json!({"password": "wrong-password"})),
        )
        .await;
    assert_error(status, &body, 422, "WRONG_PASSWORD");
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "guess@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");

    // Five failures: every flow that checks the password waits now.
    let (status, body) = app
        .call(
            post.clone(),
            "/auth/account/change-password",
            &access,
            Some(change_password(PASSWORD)),
        )
        .await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    let (status, body) = app
        .call(
            post.clone(),
            "/auth/account/change-email",
            &access,
            Some(json!({"new_email": "moved@example.com", "password": PASSWORD})),
        )
        .await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    let (status, body) = app
        .call(
            delete.clone(),
            "/auth/account",
            &access,
            Some(json!({"password": "wrong-password"})),
        )
        .await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "guess@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    assert!(app.stored("guess@example.com").await.unwrap().is_active);
    assert!(app.mails_to("moved@example.com").await.is_empty());

    // After the delay the right password works and clears the failures.
    app.clock.advance(chrono::Duration::seconds(1));
    let (status, body) = app
        .call(
            post,
            "/auth/account/change-password",
            &access,
            Some(change_password(PASSWORD)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "guess@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
}

/// Defect 3, per client: current-password guesses count against the
/// client's sign-in budget, across accounts. Over a real socket.
#[tokio::test]
async fn current_password_guesses_count_per_client_ip() {
    let mut config = test_config();
    config.rate_limits.sign_in_per_ip = Limit::new(4, 60);
    config.rate_limits.trusted_proxies = vec!["127.0.0.1".into()];
    let app = app_with_config(config).await;
    // Signed in from an unknown (uncounted) in-process client.
    let (a, _) = app.signed_in("ipa@example.com").await;
    let (b, _) = app.signed_in("ipb@example.com").await;
    let server = app.serve().await;
    let http = reqwest::Client::new();
    let guess = |access: &str, from: &'static str| {
        http.post(format!("{}/auth/account/change-password", server.base))
            .header("x-forwarded-for", from)
            .bearer_auth(access)
            .json(&json!({"current_password": "wrong-password", "new_password": "An0ther-long-passphrase"}))
            .send()
    };
    for access in [&a, &b, &a, &b] {
        assert_eq!(guess(access, "203.0.113.9").await.unwrap().status(), 422);
    }
    let limited = guess(&a, "203.0.113.9").await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Another client still gets its guesses checked.
    assert_eq!(guess(&b, "198.51.100.4").await.unwrap().status(), 422);
}

/// Defect 7: an email is validated before it can become a counter key,
/// and keys hold a digest of the normalised address, never raw input.
#[tokio::test]
async fn oversized_emails_are_refused_before_any_counter() {
    let spy = crate::spy::SpyStore::new(test_store().await);
    let app = app_on_store(test_config(), spy.clone(), |b| b).await;
    app.register("sized@example.com").await;
    let huge = format!("{}@example.com", "a".repeat(60 * 1024));
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": huge, "password": "wrong-password"}),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
    assert!(spy.keys().is_empty(), "no counter: {:?}", spy.keys());
    // A valid address is counted under its digest, whatever its case.
    let (status, _) = app
        .post(
            "/auth/login",
            json!({"email": " Sized@EXAMPLE.com", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(
            "/auth/forgot-password",
            json!({"email": "Sized@Example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.manager.wait_for_deliveries().await;
    let keys = spy.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let digest = portcullis::TokenHash::of("sized@example.com");
    assert!(
        keys.contains(&format!("failed_sign_in:{}", digest.as_str())),
        "{keys:?}"
    );
    assert!(
        keys.contains(&format!("email_per_address:{}", digest.as_str())),
        "{keys:?}"
    );
    for key in &keys {
        assert!(key.len() < 100 && !key.contains('@'), "{key}");
    }
}

/// Defect 9: change-email confirmations count against the new address's
/// mail budget, whoever asks: over it the answer is the same 202 and
/// nothing is sent.
#[tokio::test]
async fn change_email_mails_are_limited_per_recipient() {
    let app = app().await;
    let mut accesses = Vec::new();
    for email in ["ce1@example.com", "ce2@example.com", "ce3@example.com"] {
        accesses.push(app.signed_in(email).await.0);
    }
    for access in &accesses {
        for _ in 0..5 {
            let (status, body) = app
                .call(
                    poem::http::Method::POST,
                    "/auth/account/change-email",
                    access,
                    Some(json!({"new_email": "Inbox@example.com", "password": PASSWORD})),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
    }
    let confirmations = app
        .mails_to("inbox@example.com")
        .await
        .iter()
        .filter(|m| m.text.contains("/auth/account/confirm-email-change?token="))
        .count();
    assert_eq!(confirmations, 5, "the recipient's budget");
}

/// Defect 10: forgot-password and the signed-out verification resend
/// answer before they look the user up (the lookup runs in the
/// background), so the answer cannot depend on whether the address is
/// known. Lookups are held back here: an answer that waited for one would
/// never come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_requests_answer_before_looking_the_user_up() {
    let spy = crate::spy::SpyStore::new(test_store().await);
    let app = app_on_store(test_config(), spy.clone(), |b| b).await;
    app.register("timing@example.com").await;
    spy.open_lookups(false);
    for path in ["/auth/forgot-password", "/auth/verify-email/resend"] {
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            app.post(path, json!({"email": "timing@example.com"})),
        )
        .await
        .unwrap_or_else(|_| panic!("{path} waited for the user lookup"));
        assert_eq!(answer.0, StatusCode::ACCEPTED, "{path}: {}", answer.1);
    }
    assert!(app
        .outbox
        .sent()
        .iter()
        .all(|m| !m.subject.contains("Reset")));
    spy.open_lookups(true);
    app.mail("timing@example.com", "Reset").await;
    assert_eq!(
        app.mails_to("timing@example.com").await.len(),
        3,
        "registration, reset and a new verification link"
    );
    assert!(spy.lookups() >= 2);
}

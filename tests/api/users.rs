//! users

use chrono::{DateTime, Duration, Utc};
use poem::http::{Method, StatusCode};
use portcullis::{Event, Secret};
use serde_json::{json, Value};

use crate::common::*;

const ROOT: &str = "root@example.com";
const NEW_PASSWORD: &str = "Fresh!Lantern-93q";

/// Creates the superuser `root@example.com` and signs it in.
async fn root(app: &TestApp) -> String {
    app.manager
        .ensure_superuser(ROOT, &Secret::new(PASSWORD))
        .await
        .unwrap();
    access_of(&app.login(ROOT).await)
}

fn access_of(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn stored(app: &TestApp, email: &str) -> portcullis::User {
    app.store
        .as_ref()
        .find_user_by_email(email)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{email} is not stored"))
}

/// The whole stored user, to check that a refused request changed nothing.
async fn snapshot(app: &TestApp, email: &str) -> Value {
    serde_json::to_value(stored(app, email).await).unwrap()
}

/// Confirms `email` through the link mailed at registration.
async fn verify(app: &TestApp, email: &str) {
    let token = link_token(&app.mail(email, "Confirm your email").await);
    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": token }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn id_of(app: &TestApp, email: &str) -> String {
    stored(app, email).await.id.to_string()
}

fn emails(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect()
}

fn count(app: &TestApp, name: &str) -> usize {
    app.event_names().iter().filter(|n| **n == name).count()
}

#[tokio::test]
async fn me_returns_the_public_profile_without_caching() {
    let app = app().await;
    let (access, _) = app.signed_in("mia@example.com").await;
    let resp = app
        .client
        .get("/users/me")
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("cache-control", "private, no-store");
    let me = body(resp).await;
    let mut keys: Vec<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "app_metadata",
            "created_at",
            "email",
            "email_verified",
            "has_password",
            "id",
            "is_active",
            "is_superuser",
            "metadata",
            "name",
            "roles"
        ],
        "no secrets or internals: {me}"
    );
    let user = stored(&app, "mia@example.com").await;
    assert_eq!(me["id"], user.id.to_string());
    assert_eq!(me["email"], "mia@example.com");
    assert_eq!(me["name"], Value::Null);
    assert_eq!(me["email_verified"], false);
    assert_eq!(me["is_active"], true);
    assert_eq!(me["is_superuser"], false);
    assert_eq!(me["has_password"], true);
    assert_eq!(me["metadata"], json!({}));
    assert_eq!(me["app_metadata"], json!({}));
    let created: DateTime<Utc> = me["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(created, user.created_at);

    let (status, body) = parts(app.client.get("/users/me").send().await).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
    let (status, _) = app.call(Method::GET, "/users/me", "not-a-jwt", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn patch_me_sets_replaces_and_clears_name_and_metadata() {
    let app = app().await;
    let (access, _) = app.signed_in("noa@example.com").await;
    let metadata = json!({"plan": "pro", "prefs": {"theme": "dark"}, "tags": ["a", "b"], "n": 3});
    let resp = app
        .client
        .patch("/users/me")
        .header("authorization", format!("Bearer {access}"))
        .body_json(&json!({"name": "  Noa Levi ", "metadata": metadata}))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("cache-control", "private, no-store");
    let updated = body(resp).await;
    assert_eq!(updated["name"], "Noa Levi");
    assert_eq!(updated["metadata"], metadata);
    let (status, me) = app.call(Method::GET, "/users/me", &access, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, updated);
    let user = stored(&app, "noa@example.com").await;
    assert_eq!(user.name.as_deref(), Some("Noa Levi"));
    assert_eq!(Value::Object(user.metadata.clone()), metadata);
    assert_eq!(count(&app, "user_updated"), 1);

    // Metadata is replaced as a whole; an absent name stays.
    let (status, body) = app
        .call(
            Method::PATCH,
            "/users/me",
            &access,
            Some(json!({"metadata": {"plan": "free"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Noa Levi");
    assert_eq!(body["metadata"], json!({"plan": "free"}));

    // `null` clears the name; absent metadata stays.
    let (status, body) = app
        .call(
            Method::PATCH,
            "/users/me",
            &access,
            Some(json!({"name": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], Value::Null);
    assert_eq!(body["metadata"], json!({"plan": "free"}));
    let user = stored(&app, "noa@example.com").await;
    assert_eq!(user.name, None);
    assert_eq!(Value::Object(user.metadata), json!({"plan": "free"}));

    // `null` empties the metadata.
    let (status, body) = app
        .call(
            Method::PATCH,
            "/users/me",
            &access,
            Some(json!({"metadata": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"], json!({}));
    assert!(stored(&app, "noa@example.com").await.metadata.is_empty());
    assert_eq!(count(&app, "user_updated"), 4);

    // Nothing asked, nothing changed.
    let (status, body) = app
        .call(Method::PATCH, "/users/me", &access, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "noa@example.com");
    assert_eq!(body["metadata"], json!({}));

    let (status, body) = parts(
        app.client
            .patch("/users/me")
            .body_json(&json!({"name": "x"}))
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn patch_me_refuses_fields_it_does_not_own() {
    let app = app().await;
    let (access, _) = app.signed_in("ora@example.com").await;
    let before = snapshot(&app, "ora@example.com").await;
    let cases = [
        json!({"name": "Ora", "email": "boss@example.com"}),
        json!({"name": "Ora", "is_superuser": true}),
        json!({"name": "Ora", "is_active": false}),
        json!({"name": "Ora", "email_verified": true}),
        json!({"name": "Ora", "password": "Another#Pa55word"}),
        json!({"name": 5}),
        json!({"metadata": ["a", "b"]}),
        json!({"metadata": "plan=pro"}),
    ];
    for case in cases {
        let (status, body) = app
            .call(Method::PATCH, "/users/me", &access, Some(case.clone()))
            .await;
        assert_error(status, &body, 422, "VALIDATION_ERROR");
        assert_eq!(snapshot(&app, "ora@example.com").await, before, "{case}");
    }
    assert_eq!(count(&app, "user_updated"), 0);
    assert!(app
        .store
        .as_ref()
        .find_user_by_email("boss@example.com")
        .await
        .unwrap()
        .is_none());
    let (status, me) = app.call(Method::GET, "/users/me", &access, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["name"], Value::Null);
    assert_eq!(me["is_superuser"], false);
    assert_eq!(me["email_verified"], false);
    // The password did not change either.
    app.login("ora@example.com").await;
}

#[tokio::test]
async fn patch_me_validates_name_and_metadata() {
    let app = app().await;
    let (access, _) = app.signed_in("pia@example.com").await;
    let (status, body) = app
        .call(
            Method::PATCH,
            "/users/me",
            &access,
            Some(json!({"name": "Pia", "metadata": {"keep": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = snapshot(&app, "pia@example.com").await;

    let refused = [
        (json!({"name": "Pia\u{7}Bell"}), "INVALID_NAME", "name"),
        (json!({"name": "line\nbreak"}), "INVALID_NAME", "name"),
        (json!({"name": "n".repeat(201)}), "INVALID_NAME", "name"),
        (
            json!({"metadata": {"blob": "x".repeat(16 * 1024)}}),
            "METADATA_TOO_LARGE",
            "metadata",
        ),
        (
            json!({"metadata": {"$set": 1}}),
            "INVALID_METADATA",
            "metadata",
        ),
        (
            json!({"metadata": {"a.b": 1}}),
            "INVALID_METADATA",
            "metadata",
        ),
        (json!({"metadata": {"": 1}}), "INVALID_METADATA", "metadata"),
        (
            json!({"metadata": {"outer": {"in.ner": 1}}}),
            "INVALID_METADATA",
            "metadata",
        ),
        (
            json!({"metadata": {"list": [{"$where": "1"}]}}),
            "INVALID_METADATA",
            "metadata",
        ),
    ];
    for (case, code, field) in refused {
        let (status, body) = app
            .call(Method::PATCH, "/users/me", &access, Some(case.clone()))
            .await;
        assert_error(status, &body, 422, code);
        assert_eq!(body["field"], field, "{body}");
        assert_eq!(snapshot(&app, "pia@example.com").await, before, "{case}");
    }

    // The limits themselves are accepted: 200 characters, 16 KiB of JSON.
    let name = "n".repeat(200);
    let (status, body) = app
        .call(
            Method::PATCH,
            "/users/me",
            &access,
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], name.as_str());
    // `{"blob":"…"}` is 11 bytes around the string.
    let metadata = json!({"blob": "x".repeat(16 * 1024 - 11)});
    assert_eq!(serde_json::to_vec(&metadata).unwrap().len(), 16 * 1024);
    let (status, body) = app
        .call(
            Method::PATCH,
            "/users/me",
            &access,
            Some(json!({"metadata": metadata})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"], metadata);
    assert_eq!(
        Value::Object(stored(&app, "pia@example.com").await.metadata),
        metadata
    );
}

#[tokio::test]
async fn admin_endpoints_are_for_superusers_only() {
    let app = app().await;
    let (access, _) = app.signed_in("quin@example.com").await;
    app.register("rae@example.com").await;
    let rae = id_of(&app, "rae@example.com").await;
    let before = snapshot(&app, "rae@example.com").await;
    let calls = [
        (Method::GET, "/users".to_owned(), None),
        (Method::GET, format!("/users/{rae}"), None),
        (
            Method::PATCH,
            format!("/users/{rae}"),
            Some(json!({"is_active": false})),
        ),
        (Method::DELETE, format!("/users/{rae}"), None),
        (Method::POST, format!("/users/{rae}/reset-password"), None),
    ];
    for (method, path, json) in calls {
        let (status, body) = app.call(method.clone(), &path, &access, json).await;
        assert_error(status, &body, 403, "FORBIDDEN");
        let (status, body) = parts(app.client.request(method, &path).send().await).await;
        assert_error(status, &body, 401, "UNAUTHENTICATED");
    }
    assert_eq!(snapshot(&app, "rae@example.com").await, before);
    assert!(app
        .mails_to("rae@example.com")
        .await
        .iter()
        .all(|m| !m.subject.contains("Reset")));
    assert_eq!(count(&app, "user_updated"), 0);
    assert_eq!(count(&app, "user_deleted"), 0);
    // A user cannot promote themselves through their own profile either.
    let quin = id_of(&app, "quin@example.com").await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/users/{quin}"),
            &access,
            Some(json!({"is_superuser": true})),
        )
        .await;
    assert_error(status, &body, 403, "FORBIDDEN");
    assert!(!stored(&app, "quin@example.com").await.is_superuser);
}

#[tokio::test]
async fn list_users_pages_oldest_first() {
    let app = app().await;
    let access = root(&app).await;
    for email in [
        "ann@example.com",
        "ben@example.com",
        "cat@example.com",
        "dan@example.com",
    ] {
        app.clock.advance(Duration::seconds(1));
        app.register(email).await;
    }
    let resp = app
        .client
        .get("/users")
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("cache-control", "private, no-store");
    let page = body(resp).await;
    assert_eq!(
        emails(&page),
        [
            ROOT,
            "ann@example.com",
            "ben@example.com",
            "cat@example.com",
            "dan@example.com"
        ]
    );
    assert_eq!(page["total"], 5);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["limit"], 50);
    let ann = &page["items"][1];
    assert_eq!(ann["id"], id_of(&app, "ann@example.com").await);
    assert_eq!(ann["is_superuser"], false);
    assert!(ann.get("password_hash").is_none(), "{ann}");
    assert_eq!(page["items"][0]["is_superuser"], true);

    let (status, page) = app
        .call(Method::GET, "/users?offset=1&limit=2", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(emails(&page), ["ann@example.com", "ben@example.com"]);
    assert_eq!(
        (&page["total"], &page["offset"], &page["limit"]),
        (&json!(5), &json!(1), &json!(2))
    );
    let (status, page) = app
        .call(Method::GET, "/users?offset=4&limit=100", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(emails(&page), ["dan@example.com"]);
    let (status, page) = app
        .call(Method::GET, "/users?offset=10", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(emails(&page).is_empty());
    assert_eq!(page["total"], 5);

    for bad in ["/users?limit=0", "/users?limit=101"] {
        let (status, body) = app.call(Method::GET, bad, &access, None).await;
        assert_error(status, &body, 422, "INVALID_LIMIT");
        assert_eq!(body["field"], "limit");
    }
    // The spec says offset ≤ 10^15 (schemathesis sent 2^53 + 1, which a
    // float comparison took for 2^53).
    for bad in ["/users?offset=1000000000000001", "/users?offset=-1"] {
        let (status, body) = app.call(Method::GET, bad, &access, None).await;
        assert_error(status, &body, 422, "VALIDATION_ERROR");
    }
    let (status, body) = app
        .call(Method::GET, "/users?limit=-1", &access, None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn list_users_filters_by_email_prefix() {
    let app = app().await;
    let access = root(&app).await;
    for email in [
        "Alice@example.com",
        "alicia@example.org",
        "al.x@example.com",
        "bob@example.com",
    ] {
        app.clock.advance(Duration::seconds(1));
        app.register(email).await;
    }
    let (status, page) = app
        .call(Method::GET, "/users?email=ALI", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(emails(&page), ["Alice@example.com", "alicia@example.org"]);
    assert_eq!(page["total"], 2);

    // A literal prefix: `.` is a dot, not "any character".
    let (status, page) = app
        .call(Method::GET, "/users?email=al.", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(emails(&page), ["al.x@example.com"]);
    assert_eq!(page["total"], 1);

    // Paging applies within the filter; the total counts every match.
    let (status, page) = app
        .call(
            Method::GET,
            "/users?email=al&offset=1&limit=1",
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(emails(&page), ["alicia@example.org"]);
    assert_eq!(page["total"], 3);

    let (status, page) = app
        .call(Method::GET, "/users?email=zed", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(emails(&page).is_empty());
    assert_eq!(page["total"], 0);

    // A blank filter is no filter.
    let (status, page) = app
        .call(Method::GET, "/users?email=%20%20", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 5);

    let long = "a".repeat(255);
    let (status, body) = app
        .call(Method::GET, &format!("/users?email={long}"), &access, None)
        .await;
    assert_error(status, &body, 422, "INVALID_EMAIL_PREFIX");
}

/// Follows `next_cursor` from `first` to the last page, registering a
/// user after each of the first `insert` pages; the emails seen, in order.
async fn follow_cursor(app: &TestApp, access: &str, first: &str, insert: usize) -> Vec<String> {
    let (status, mut page) = app.call(Method::GET, first, access, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page["total"].is_u64(), "the first page is counted: {page}");
    let mut seen = emails(&page);
    let mut pages = 0;
    while let Some(cursor) = page["next_cursor"].as_str().map(str::to_owned) {
        if pages < insert {
            app.clock.advance(Duration::seconds(1));
            app.register(&format!("late{pages}@example.com")).await;
        }
        pages += 1;
        assert!(pages < 100, "the cursor never ends");
        let sep = if first.contains('?') { '&' } else { '?' };
        let (status, next) = app
            .call(
                Method::GET,
                &format!("{first}{sep}after={cursor}"),
                access,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{next}");
        assert_eq!(next["total"], Value::Null, "cursor pages are not counted");
        assert_eq!(next["offset"], 0);
        assert!(
            !emails(&next).is_empty(),
            "a cursor never leads to an empty page"
        );
        seen.extend(emails(&next));
        page = next;
    }
    seen
}

#[tokio::test]
async fn list_users_pages_with_a_cursor() {
    let app = app().await;
    let access = root(&app).await;
    let mut expected = vec![ROOT.to_owned()];
    for i in 0..7 {
        app.clock.advance(Duration::seconds(1));
        let email = format!("user{i}@example.com");
        app.register(&email).await;
        expected.push(email);
    }
    // 8 users in pages of 3, a user registered after each of the first
    // two pages: each of the 10 seen once, in creation order.
    let seen = follow_cursor(&app, &access, "/users?limit=3", 2).await;
    expected.extend([
        "late0@example.com".to_owned(),
        "late1@example.com".to_owned(),
    ]);
    assert_eq!(seen, expected);

    // The last page says so; a full last page too (10 users, pages of 5).
    let (status, page) = app.call(Method::GET, "/users?limit=5", &access, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 10);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (status, page) = app
        .call(
            Method::GET,
            &format!("/users?limit=5&after={cursor}"),
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(emails(&page).len(), 5);
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(page["total"], Value::Null);

    // `total` on request: counted with a cursor, skipped without.
    let (status, page) = app
        .call(
            Method::GET,
            &format!("/users?limit=5&after={cursor}&total=true"),
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 10);
    let (status, page) = app
        .call(Method::GET, "/users?limit=5&total=false", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], Value::Null);
    assert_eq!(emails(&page).len(), 5);

    // An offset page hands out a cursor too: a client can switch.
    let (status, page) = app
        .call(Method::GET, "/users?offset=2&limit=2", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(emails(&page), expected[2..4]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (status, page) = app
        .call(
            Method::GET,
            &format!("/users?limit=2&after={cursor}"),
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(emails(&page), expected[4..6]);
}

#[tokio::test]
async fn list_users_cursor_within_an_email_prefix() {
    let app = app().await;
    let access = root(&app).await;
    let mut expected = Vec::new();
    for i in 0..9 {
        app.clock.advance(Duration::seconds(1));
        let email = if i % 3 == 0 {
            format!("bob{i}@example.com")
        } else {
            format!("Ali{i}@example.com")
        };
        app.register(&email).await;
        if i % 3 != 0 {
            expected.push(email);
        }
    }
    // "late…" users registered between pages do not match "ali".
    let seen = follow_cursor(&app, &access, "/users?email=ali&limit=2", 2).await;
    assert_eq!(seen, expected);
    let (status, page) = app
        .call(Method::GET, "/users?email=ALI&limit=2", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 6);
}

#[tokio::test]
async fn list_users_refuses_a_malformed_cursor() {
    let app = app().await;
    let access = root(&app).await;
    app.register("ann@example.com").await;
    let (_, page) = app.call(Method::GET, "/users?limit=1", &access, None).await;
    let good = page["next_cursor"].as_str().unwrap().to_owned();
    let before = snapshot(&app, "ann@example.com").await;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let forged = [
        "".to_owned(),
        "not%20a%20cursor".to_owned(),
        "%00".to_owned(),
        // Outside the URL-safe alphabet, padded, or a character changed to
        // one that is not base64 (appending a base64 character could spell
        // a valid cursor: see below).
        format!("{good}!"),
        format!("{good}="),
        format!("!{}", &good[1..]),
        URL_SAFE_NO_PAD.encode("1700000000.0."),
        URL_SAFE_NO_PAD.encode("1700000000.1000000000.id"),
        URL_SAFE_NO_PAD.encode("01700000000.0.id"),
        URL_SAFE_NO_PAD.encode("x.0.id"),
        URL_SAFE_NO_PAD.encode("99999999999999999.0.id"),
        URL_SAFE_NO_PAD.encode([0xff, 0xfe, b'.', b'0', b'.', b'a']),
        "A".repeat(4096),
    ];
    for bad in &forged {
        let (status, body) = app
            .call(Method::GET, &format!("/users?after={bad}"), &access, None)
            .await;
        assert_error(status, &body, 422, "INVALID_CURSOR");
        assert_eq!(body["field"], "after", "{bad:?}");
        assert!(body["message"].is_string(), "{body}");
    }
    // A well-formed cursor of a position no user holds is just a seek:
    // the users after it, never an error or a scan.
    let (status, page) = app
        .call(
            Method::GET,
            &format!(
                "/users?after={}",
                URL_SAFE_NO_PAD.encode("0.0.no-such-user")
            ),
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(emails(&page), [ROOT, "ann@example.com"]);
    // `after` and `offset` together are ambiguous.
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/users?after={good}&offset=1"),
            &access,
            None,
        )
        .await;
    assert_error(status, &body, 422, "INVALID_CURSOR");
    // The good one still works, and nothing was written.
    let (status, page) = app
        .call(Method::GET, &format!("/users?after={good}"), &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(emails(&page), ["ann@example.com"]);
    assert_eq!(snapshot(&app, "ann@example.com").await, before);
    // Only superusers page, with or without a cursor.
    let (mine, _) = app.signed_in("eve@example.com").await;
    let (status, body) = app
        .call(Method::GET, &format!("/users?after={good}"), &mine, None)
        .await;
    assert_error(status, &body, 403, "FORBIDDEN");
}

#[tokio::test]
async fn get_user_by_id() {
    let app = app().await;
    let access = root(&app).await;
    let (mine, _) = app.signed_in("sol@example.com").await;
    let id = id_of(&app, "sol@example.com").await;
    let resp = app
        .client
        .get(format!("/users/{id}"))
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("cache-control", "private, no-store");
    let user = body(resp).await;
    let (_, own) = app.call(Method::GET, "/users/me", &mine, None).await;
    assert_eq!(user, own);
    assert_eq!(user["id"], id.as_str());

    let (status, body) = app
        .call(Method::GET, "/users/no-such-user", &access, None)
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
}

#[tokio::test]
async fn admin_patch_changes_profile_and_flags() {
    let app = app().await;
    let access = root(&app).await;
    let root_id = id_of(&app, ROOT).await;
    let (tara, _) = app.signed_in("tara@example.com").await;
    let id = id_of(&app, "tara@example.com").await;
    let path = format!("/users/{id}");

    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            &access,
            Some(json!({
                "name": "Tara",
                "metadata": {"team": "ops"},
                "email_verified": true,
                "is_superuser": true
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Tara");
    assert_eq!(body["metadata"], json!({"team": "ops"}));
    assert_eq!(body["email_verified"], true);
    assert_eq!(body["is_superuser"], true);
    assert_eq!(body["is_active"], true);
    assert_eq!(body["email"], "tara@example.com");
    let user = stored(&app, "tara@example.com").await;
    assert!(user.is_superuser && user.email_verified && user.is_active);
    assert_eq!(user.name.as_deref(), Some("Tara"));
    let by = app.events.lock().iter().find_map(|e| match e {
        Event::UserUpdated { user, by } if user.id.as_str() == id => {
            by.as_ref().map(ToString::to_string)
        }
        _ => None,
    });
    assert_eq!(by.as_deref(), Some(root_id.as_str()));

    // The promotion applies to her live token at once…
    let (status, page) = app.call(Method::GET, "/users", &tara, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 2);

    // …and so does the demotion; `null` clears the name, absent fields stay.
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            &access,
            Some(json!({"is_superuser": false, "name": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_superuser"], false);
    assert_eq!(body["name"], Value::Null);
    assert_eq!(body["email_verified"], true);
    assert_eq!(body["metadata"], json!({"team": "ops"}));
    let (status, body) = app.call(Method::GET, "/users", &tara, None).await;
    assert_error(status, &body, 403, "FORBIDDEN");
    // Her session itself survives a demotion.
    assert_eq!(app.me(&tara).await.0, StatusCode::OK);

    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            &access,
            Some(json!({"email_verified": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!stored(&app, "tara@example.com").await.email_verified);
}

#[tokio::test]
async fn admin_patch_refuses_email_password_and_bad_values() {
    let app = app().await;
    let access = root(&app).await;
    app.register("uma@example.com").await;
    let id = id_of(&app, "uma@example.com").await;
    let path = format!("/users/{id}");
    let before = snapshot(&app, "uma@example.com").await;
    for case in [
        json!({"email": "owned@example.com"}),
        json!({"password": "Hijack#Pa55word"}),
        json!({"name": "Uma", "token_version": 9}),
        json!({"is_active": "no"}),
    ] {
        let (status, body) = app
            .call(Method::PATCH, &path, &access, Some(case.clone()))
            .await;
        assert_error(status, &body, 422, "VALIDATION_ERROR");
        assert_eq!(snapshot(&app, "uma@example.com").await, before, "{case}");
    }
    for (case, code) in [
        (json!({"name": "bad\u{0}name"}), "INVALID_NAME"),
        (json!({"metadata": {"$inc": 1}}), "INVALID_METADATA"),
        (
            json!({"metadata": {"blob": "y".repeat(17 * 1024)}}),
            "METADATA_TOO_LARGE",
        ),
    ] {
        let (status, body) = app
            .call(Method::PATCH, &path, &access, Some(case.clone()))
            .await;
        assert_error(status, &body, 422, code);
        assert_eq!(snapshot(&app, "uma@example.com").await, before, "{case}");
    }
    assert_eq!(count(&app, "user_updated"), 0);
    assert!(app
        .store
        .as_ref()
        .find_user_by_email("owned@example.com")
        .await
        .unwrap()
        .is_none());
    app.login("uma@example.com").await;

    let (status, body) = app
        .call(
            Method::PATCH,
            "/users/no-such-user",
            &access,
            Some(json!({"name": "Ghost"})),
        )
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
}

#[tokio::test]
async fn deactivation_ends_every_session_until_reactivated() {
    let app = app().await;
    let access = root(&app).await;
    let (a1, r1) = app.signed_in("vic@example.com").await;
    let second = app.login("vic@example.com").await;
    let (a2, r2) = (
        access_of(&second),
        second["refresh_token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(app.me(&a1).await.0, StatusCode::OK);
    let id = id_of(&app, "vic@example.com").await;
    let path = format!("/users/{id}");

    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            &access,
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_active"], false);
    assert!(!stored(&app, "vic@example.com").await.is_active);
    for token in [&a1, &a2] {
        let (status, body) = app.me(token).await;
        assert_error(status, &body, 401, "UNAUTHENTICATED");
    }
    for token in [&r1, &r2] {
        let (status, body) = app.refresh(token).await;
        assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    }
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "vic@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "USER_INACTIVE");
    let (status, body) = app.call(Method::GET, &path, &access, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_active"], false);

    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            &access,
            Some(json!({"is_active": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_active"], true);
    let fresh = access_of(&app.login("vic@example.com").await);
    assert_eq!(app.me(&fresh).await.0, StatusCode::OK);
    // Reactivation does not bring the old sessions back.
    assert_eq!(app.me(&a1).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh(&r2).await.0, StatusCode::UNAUTHORIZED);
    // Root's own session was never touched.
    assert_eq!(app.me(&access).await.0, StatusCode::OK);
}

#[tokio::test]
async fn superusers_cannot_lock_themselves_out() {
    let app = app().await;
    let access = root(&app).await;
    let id = id_of(&app, ROOT).await;
    let path = format!("/users/{id}");
    for (case, field) in [
        (json!({"is_active": false}), "is_active"),
        (json!({"is_superuser": false}), "is_superuser"),
        (
            json!({"name": "Root", "is_superuser": false}),
            "is_superuser",
        ),
    ] {
        let (status, body) = app
            .call(Method::PATCH, &path, &access, Some(case.clone()))
            .await;
        assert_error(status, &body, 422, "SELF_LOCKOUT");
        assert_eq!(body["field"], field, "{body}");
    }
    let (status, body) = app.call(Method::DELETE, &path, &access, None).await;
    assert_error(status, &body, 422, "SELF_LOCKOUT");
    // Issue 12, defect 11: the same rule on the self-service route, even
    // with the right password (it deactivated the last superuser before).
    let (status, body) = app
        .call(
            Method::DELETE,
            "/auth/account",
            &access,
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_error(status, &body, 422, "SELF_LOCKOUT");

    let user = stored(&app, ROOT).await;
    assert!(user.is_active && user.is_superuser);
    assert_eq!(user.name, None);
    assert_eq!(count(&app, "user_updated"), 0);
    assert_eq!(count(&app, "user_deleted"), 0);
    let (status, _) = app.call(Method::GET, "/users", &access, None).await;
    assert_eq!(status, StatusCode::OK);

    // Editing oneself otherwise is fine.
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            &access,
            Some(json!({"name": "Root", "is_active": true, "is_superuser": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Root");
    assert_eq!(app.me(&access).await.0, StatusCode::OK);
}

#[tokio::test]
async fn superusers_can_deactivate_each_other() {
    let app = app().await;
    let access = root(&app).await;
    app.register("wes@example.com").await;
    // Only a user who proved the address is promoted.
    verify(&app, "wes@example.com").await;
    app.manager
        .ensure_superuser("wes@example.com", &Secret::new(PASSWORD))
        .await
        .unwrap();
    let wes = access_of(&app.login("wes@example.com").await);
    let root_id = id_of(&app, ROOT).await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/users/{root_id}"),
            &wes,
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.call(Method::GET, "/users", &access, None).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
    assert!(!stored(&app, ROOT).await.is_active);
}

#[tokio::test]
async fn deleting_a_user_removes_them_and_frees_the_email() {
    let app = app().await;
    let access = root(&app).await;
    let (xia, refresh) = app.signed_in("xia@example.com").await;
    let old = stored(&app, "xia@example.com").await;
    let path = format!("/users/{}", old.id);

    let resp = app
        .client
        .delete(&path)
        .header("origin", APP_ORIGIN)
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await;
    resp.assert_status(StatusCode::NO_CONTENT);
    let events = app.events.lock().clone();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::UserDeleted { user_id, hard: true, .. } if *user_id == old.id
    )));

    let store = app.store.as_ref();
    assert!(store.find_user(&old.id).await.unwrap().is_none());
    assert!(store
        .find_user_by_email("xia@example.com")
        .await
        .unwrap()
        .is_none());
    let (status, body) = app.call(Method::GET, &path, &access, None).await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let (status, body) = app.call(Method::DELETE, &path, &access, None).await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let (status, page) = app.call(Method::GET, "/users", &access, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(emails(&page), [ROOT]);

    // Their tokens are dead; their password no longer signs in.
    assert_eq!(app.me(&xia).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh(&refresh).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "xia@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");

    // The email is free again, for a new user.
    let again = app.register("xia@example.com").await;
    let new = stored(&app, "xia@example.com").await;
    assert_ne!(new.id, old.id);
    assert_eq!(again["id"], new.id.to_string());
    let fresh = access_of(&app.login("xia@example.com").await);
    assert_eq!(app.me(&fresh).await.0, StatusCode::OK);
    assert_eq!(
        app.call(Method::GET, &path, &access, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn admin_reset_mails_a_working_link() {
    let app = app().await;
    let access = root(&app).await;
    let (old_access, _) = app.signed_in("yan@example.com").await;
    let id = id_of(&app, "yan@example.com").await;

    let (status, body) = app
        .call(
            Method::POST,
            &format!("/users/{id}/reset-password"),
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert!(app.event_names().contains(&"password_reset_requested"));
    let mail = app.mail("yan@example.com", "Reset").await;
    assert!(
        app.mails_to(ROOT).await.is_empty(),
        "the admin gets no mail"
    );

    let token = link_token(&mail);
    let (status, body) = app
        .post(
            "/auth/reset-password",
            json!({"token": token, "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "yan@example.com", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.me(&old_access).await.0, StatusCode::UNAUTHORIZED);

    let (status, body) = app
        .call(
            Method::POST,
            "/users/no-such-user/reset-password",
            &access,
            None,
        )
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
}

#[tokio::test]
async fn admin_reset_refuses_inactive_users() {
    let app = app().await;
    let access = root(&app).await;
    app.register("zoe@example.com").await;
    let id = id_of(&app, "zoe@example.com").await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/users/{id}"),
            &access,
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let before = app.mails_to("zoe@example.com").await.len();
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/users/{id}/reset-password"),
            &access,
            None,
        )
        .await;
    assert_error(status, &body, 403, "USER_INACTIVE");
    assert_eq!(app.mails_to("zoe@example.com").await.len(), before);
    assert!(!app.event_names().contains(&"password_reset_requested"));
}

#[tokio::test]
async fn there_is_no_built_in_admin() {
    let app = app().await;
    // A new deployment holds no account at all…
    let (users, total) = app
        .store
        .as_ref()
        .list_users(&portcullis::store::UserQuery::page(0, 100))
        .await
        .unwrap();
    assert_eq!((users.len(), total), (0, Some(0)));
    // …so no default credentials sign in…
    for (email, password) in [("admin@example.com", "admin"), (ROOT, PASSWORD)] {
        let (status, body) = app
            .post("/auth/login", json!({"email": email, "password": password}))
            .await;
        assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    }
    // …and the first user to sign up is no superuser.
    let first = app.register("first@example.com").await;
    assert_eq!(first["is_superuser"], false);
    let (first_access, _) = app.signed_in("second@example.com").await;
    let (status, body) = app.call(Method::GET, "/users", &first_access, None).await;
    assert_error(status, &body, 403, "FORBIDDEN");
    // The deployment names its superuser itself.
    let access = root(&app).await;
    assert!(stored(&app, ROOT).await.is_superuser);
    let (status, _) = app.call(Method::GET, "/users", &access, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn ensure_superuser_never_promotes_an_unverified_squatter() {
    let app = app().await;
    // An attacker registers the admin address first, with their own
    // password, and never proves it.
    app.register("boss@example.com").await;
    let before = snapshot(&app, "boss@example.com").await;
    let err = app
        .manager
        .ensure_superuser("boss@example.com", &Secret::new(NEW_PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "EMAIL_NOT_VERIFIED");
    assert_eq!(snapshot(&app, "boss@example.com").await, before);
    // The attacker's password gets no superuser powers.
    let access = access_of(&app.login("boss@example.com").await);
    let (status, body) = app.call(Method::GET, "/users", &access, None).await;
    assert_error(status, &body, 403, "FORBIDDEN");
    assert!(!app.event_names().contains(&"user_updated"));
    // A fresh address is created as before: verified, with the operator's
    // password.
    let root = root(&app).await;
    let (status, body) = app.call(Method::GET, "/users", &root, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(stored(&app, ROOT).await.email_verified);
}

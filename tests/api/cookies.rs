use poem::http::StatusCode;
use portcullis::AuthConfig;
use serde_json::json;

use crate::common::*;

fn cookie_config() -> AuthConfig {
    let mut config = test_config();
    config.transport.cookies = true;
    config.public_url = Some("https://app.example.com".into());
    config
}

fn cookies_of(resp: &poem::test::TestResponse) -> Vec<String> {
    resp.0
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn value_of<'a>(cookies: &'a [String], name: &str) -> &'a str {
    let c = cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap();
    c[name.len() + 1..].split(';').next().unwrap()
}

#[tokio::test]
async fn sign_in_sets_hardened_cookies_that_authenticate() {
    let app = app_with_config(cookie_config()).await;
    app.register("zoe@example.com").await;
    let resp = app
        .client
        .post("/auth/login")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({"email": "zoe@example.com", "password": PASSWORD}))
        .send()
        .await;
    resp.assert_status_is_ok();
    let cookies = cookies_of(&resp);
    let access = cookies
        .iter()
        .find(|c| c.starts_with("portcullis_access="))
        .unwrap();
    let refresh = cookies
        .iter()
        .find(|c| c.starts_with("portcullis_refresh="))
        .unwrap();
    for c in [access, refresh] {
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("Secure"), "{c}");
        assert!(c.contains("SameSite=Lax"), "{c}");
    }
    assert!(
        access.contains("Path=/;") || access.ends_with("Path=/"),
        "{access}"
    );
    assert!(refresh.contains("Path=/auth/refresh"), "{refresh}");
    let access_value = value_of(&cookies, "portcullis_access").to_owned();
    let refresh_value = value_of(&cookies, "portcullis_refresh").to_owned();

    // The cookie authenticates reads.
    let (status, me) = parts(
        app.client
            .get("/auth/me")
            .header("cookie", format!("portcullis_access={access_value}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");

    // Refresh from the cookie needs an allowed Origin.
    let (status, body) = parts(
        app.client
            .post("/auth/refresh")
            .header("cookie", format!("portcullis_refresh={refresh_value}"))
            .header("origin", "https://evil.example")
            .body_json(&json!({}))
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 403, "CSRF_REJECTED");
    let resp = app
        .client
        .post("/auth/refresh")
        .header("cookie", format!("portcullis_refresh={refresh_value}"))
        .header("origin", "https://app.example.com")
        .body_json(&json!({}))
        .send()
        .await;
    resp.assert_status_is_ok();
    let rotated = cookies_of(&resp);
    assert_ne!(value_of(&rotated, "portcullis_refresh"), refresh_value);
    let access_value = value_of(&rotated, "portcullis_access").to_owned();

    // Logout by cookie: refused cross-site or without Origin, allowed same-site.
    for origin in [Some("https://evil.example"), None] {
        let mut req = app
            .client
            .post("/auth/logout")
            .header("cookie", format!("portcullis_access={access_value}"));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let (status, body) = parts(req.send().await).await;
        assert_error(status, &body, 403, "CSRF_REJECTED");
    }
    let resp = app
        .client
        .post("/auth/logout")
        .header("cookie", format!("portcullis_access={access_value}"))
        .header("referer", "https://app.example.com/account")
        .send()
        .await;
    resp.assert_status(StatusCode::NO_CONTENT);
    let cleared = cookies_of(&resp);
    assert_eq!(value_of(&cleared, "portcullis_access"), "");
    assert_eq!(value_of(&cleared, "portcullis_refresh"), "");
    assert!(
        cleared.iter().all(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    let (status, _) = parts(
        app.client
            .get("/auth/me")
            .header("cookie", format!("portcullis_access={access_value}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookies_are_ignored_when_the_transport_is_off() {
    let app = app().await;
    let (access, _) = app.signed_in("ada@example.com").await;
    let (status, _) = parts(
        app.client
            .get("/auth/me")
            .header("cookie", format!("portcullis_access={access}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bearer_is_refused_when_only_cookies_are_on() {
    let mut config = cookie_config();
    config.transport.bearer = false;
    let app = app_with_config(config).await;
    let (access, _) = app.signed_in("bea@example.com").await;
    assert_eq!(app.me(&access).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn insecure_cookies_only_when_configured() {
    let mut config = cookie_config();
    config.transport.cookie.secure = false;
    let app = app_with_config(config).await;
    app.register("cy@example.com").await;
    let resp = app
        .client
        .post("/auth/login")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({"email": "cy@example.com", "password": PASSWORD}))
        .send()
        .await;
    let cookies = cookies_of(&resp);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies.iter().all(|c| !c.contains("Secure")));
}

#[tokio::test]
async fn cookie_sign_in_refuses_cross_site_requests() {
    // Login CSRF: a hostile page must not sign the browser into another account.
    let app = app_with_config(cookie_config()).await;
    app.register("dee@example.com").await;
    let form = [("username", "dee@example.com"), ("password", PASSWORD)];
    let (status, body) = parts(
        app.client
            .post("/auth/token")
            .header("origin", "https://evil.example")
            .form(&form)
            .send()
            .await,
    )
    .await;
    // `/auth/token` answers in RFC 6749 form.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_description"], "cross-site request refused");
    let (status, body) = parts(app.client.post("/auth/token").form(&form).send().await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    let (status, body) = parts(
        app.client
            .post("/auth/login")
            .header("origin", "https://evil.example")
            .body_json(&json!({"email": "dee@example.com", "password": PASSWORD}))
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 403, "CSRF_REJECTED");
    let resp = app
        .client
        .post("/auth/token")
        .header("origin", "https://APP.example.com:443")
        .form(&form)
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(cookies_of(&resp).len(), 2);
}

#[tokio::test]
async fn cookie_refresh_without_origin_is_refused() {
    let app = app_with_config(cookie_config()).await;
    app.register("eli@example.com").await;
    let resp = app
        .client
        .post("/auth/login")
        .header("origin", "https://app.example.com")
        .body_json(&json!({"email": "eli@example.com", "password": PASSWORD}))
        .send()
        .await;
    let cookies = cookies_of(&resp);
    let refresh = value_of(&cookies, "portcullis_refresh").to_owned();
    let (status, body) = parts(
        app.client
            .post("/auth/refresh")
            .header("cookie", format!("portcullis_refresh={refresh}"))
            .body_json(&json!({}))
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 403, "CSRF_REJECTED");
}

#[tokio::test]
async fn allowed_origins_and_host_fallback() {
    // An explicit allow-list.
    let mut config = cookie_config();
    config.transport.cookie.allowed_origins = vec!["https://spa.example.org".into()];
    let app = app_with_config(config).await;
    app.register("fox@example.com").await;
    let login = |origin: &'static str| {
        app.client
            .post("/auth/login")
            .header("origin", origin)
            .body_json(&json!({"email": "fox@example.com", "password": PASSWORD}))
            .send()
    };
    login("https://spa.example.org").await.assert_status_is_ok();
    login("https://app.example.com")
        .await
        .assert_status(StatusCode::FORBIDDEN);

    // Neither list nor public URL: the request's own host.
    let mut config = test_config();
    config.transport.cookies = true;
    config.public_url = None;
    let app = app_with_config(config).await;
    app.register("gus@example.com").await;
    let login = |origin: &'static str| {
        app.client
            .post("/auth/login")
            .header("host", "auth.example.net")
            .header("origin", origin)
            .body_json(&json!({"email": "gus@example.com", "password": PASSWORD}))
            .send()
    };
    login("https://auth.example.net")
        .await
        .assert_status_is_ok();
    login("https://evil.example")
        .await
        .assert_status(StatusCode::FORBIDDEN);
}

async fn login(app: &TestApp, email: &str) -> poem::test::TestResponse {
    app.client
        .post("/auth/login")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
}

#[tokio::test]
async fn cookies_are_host_only_unless_a_domain_is_set() {
    let app = app_with_config(cookie_config()).await;
    app.register("hal@example.com").await;
    let resp = login(&app, "hal@example.com").await;
    resp.assert_status_is_ok();
    let cookies = cookies_of(&resp);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies
            .iter()
            .all(|c| !c.to_ascii_lowercase().contains("domain=")),
        "{cookies:?}"
    );

    let mut config = cookie_config();
    config.transport.cookie.domain = Some("example.com".into());
    let app = app_with_config(config).await;
    app.register("ivy@example.com").await;
    let resp = login(&app, "ivy@example.com").await;
    resp.assert_status_is_ok();
    let cookies = cookies_of(&resp);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies.iter().all(|c| c.contains("Domain=example.com")),
        "{cookies:?}"
    );
}

/// Every cookie-authenticated request that changes state checks the
/// origin, not only refresh and logout.
#[tokio::test]
async fn cookie_authenticated_changes_refuse_cross_site_requests() {
    let app = app_with_config(cookie_config()).await;
    app.register("jay@example.com").await;
    let resp = login(&app, "jay@example.com").await;
    resp.assert_status_is_ok();
    let cookies = cookies_of(&resp);
    let access = value_of(&cookies, "portcullis_access").to_owned();
    let before = app.stored("jay@example.com").await.unwrap();
    let calls = [
        (
            poem::http::Method::POST,
            "/auth/account/change-password",
            json!({"current_password": PASSWORD, "new_password": "Other#Pa55word-1"}),
        ),
        (
            poem::http::Method::POST,
            "/auth/account/change-email",
            json!({"new_email": "evil@example.com", "password": PASSWORD}),
        ),
        (
            poem::http::Method::DELETE,
            "/auth/account",
            json!({"password": PASSWORD}),
        ),
        (
            poem::http::Method::PATCH,
            "/users/me",
            json!({"name": "Owned"}),
        ),
        (
            poem::http::Method::POST,
            "/auth/sessions/revoke-others",
            json!({}),
        ),
    ];
    for (method, path, json) in calls {
        for origin in [Some("https://evil.example"), None] {
            let mut req = app
                .client
                .request(method.clone(), path)
                .header("cookie", format!("portcullis_access={access}"))
                .body_json(&json);
            if let Some(origin) = origin {
                req = req.header("origin", origin);
            }
            let (status, body) = parts(req.send().await).await;
            assert_error(status, &body, 403, "CSRF_REJECTED");
        }
    }
    let after = app.stored("jay@example.com").await.unwrap();
    assert_eq!(
        serde_json::to_value(&before).unwrap(),
        serde_json::to_value(&after).unwrap()
    );
    assert!(app.mails_to("evil@example.com").await.is_empty());
    // The same cookie from the app's own origin still works.
    let (status, _) = parts(
        app.client
            .get("/auth/me")
            .header("cookie", format!("portcullis_access={access}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

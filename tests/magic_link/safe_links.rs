//! Opening the mailed link (GET, HEAD) changes nothing: the link's page
//! POSTs the token when the person presses its button (issue 12, defect 8:
//! login CSRF by a cross-site navigation, links burnt by mail scanners and
//! prefetchers).

use poem::http::{Method, StatusCode};

use crate::common::*;
use crate::*;

/// Nothing happened for `email`: no user, no sign-in, no failure.
async fn nothing_happened(app: &TestApp, email: &str) {
    assert!(app.stored(email).await.is_none(), "no user for {email}");
    assert!(app.logins().is_empty(), "{:?}", app.logins());
    assert!(app.failures().is_empty(), "{:?}", app.failures());
}

#[tokio::test]
async fn get_and_head_on_the_link_consume_nothing_then_one_post_signs_in() {
    let app = ml_app(test_config()).await;
    let token = app.link_for("scanned@example.com").await;

    // A mail scanner fetches the link, a prefetcher asks HEAD, the person
    // opens it: three times the page, and the token is untouched.
    for _ in 0..2 {
        let page = app.open_link(&token).await;
        assert_eq!(page.0.status(), StatusCode::OK);
        assert_page_headers(&page);
        assert!(cookies_of(&page).is_empty(), "a page sets no cookie");
        let html = text(page).await;
        assert_eq!(page_form_token(&html, "verify"), token);
        assert!(
            html.contains("<h1>Sign in</h1>"),
            "says what it does: {html}"
        );
    }
    let head = app
        .client
        .request(Method::HEAD, "/auth/magic-link/verify")
        .query("token", &token)
        .send()
        .await;
    assert_eq!(head.0.status(), StatusCode::OK);
    assert_page_headers(&head);
    assert!(text(head).await.is_empty(), "HEAD has no body");
    nothing_happened(&app, "scanned@example.com").await;

    // The page's button: the one use.
    let (status, pair) = parts(app.click_link(&token).await).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(
        app.whoami(&access_of(&pair)).await["email"],
        "scanned@example.com"
    );
    assert_eq!(app.logins().len(), 1);
    let (status, body) = app.post_link(&token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn a_cross_site_navigation_to_the_link_signs_nobody_in() {
    // Cookie transport: the attacker mails themselves a link and makes the
    // victim's browser open it from a hostile page (a top-level GET, which
    // carries no Origin and SameSite=Lax cookies).
    let mut config = cookie_config();
    config.redirects.frontend_url = Some("https://app.example.com/home".into());
    let app = ml_app(config).await;
    let token = app.link_for("attacker@example.com").await;

    let resp = app
        .client
        .get("/auth/magic-link/verify")
        .query("token", &token)
        .header("referer", "https://evil.example.net/")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    assert!(cookies_of(&resp).is_empty(), "no session cookie");
    assert!(resp.0.headers().get("location").is_none());
    let csp = assert_page_headers(&resp);
    assert!(
        csp.contains("form-action 'self' https://app.example.com;"),
        "the page may end on the front-end after its POST: {csp}"
    );
    nothing_happened(&app, "attacker@example.com").await;

    // The hostile page cannot post the form for the victim either.
    for origin in ["https://evil.example.net", "null"] {
        let (status, body) = parts(app.submit_link_page(&token, origin).await).await;
        assert_error(status, &body, 403, "CSRF_REJECTED");
    }
    nothing_happened(&app, "attacker@example.com").await;

    // The token still works where it belongs: its own page, pressed.
    let resp = app.click_link(&token).await;
    assert_eq!(resp.0.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.0.headers().get("location").unwrap(),
        "https://app.example.com/home"
    );
    assert!(cookie_value(&cookies_of(&resp), "portcullis_access").is_some());
}

#[tokio::test]
async fn the_page_posts_from_the_api_origin_when_only_front_ends_are_allowed() {
    // The API on its own origin, the front-end elsewhere: the link page is
    // served by the API, so its form comes from the API's origin.
    let mut config = cookie_config();
    config.public_url = Some("https://auth.example.com".into());
    config.transport.cookie.allowed_origins = vec!["https://app.example.com".into()];
    let app = ml_app(config).await;
    let token = app.link_for("split@example.com").await;
    let (status, pair) = parts(app.click_link(&token).await).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(app.logins().len(), 1);
}

#[tokio::test]
async fn the_page_escapes_what_the_url_carries() {
    let app = ml_app(test_config()).await;
    let hostile = r#""><script>alert(1)</script>"#;
    let page = app.open_link(hostile).await;
    assert_eq!(page.0.status(), StatusCode::OK);
    let html = text(page).await;
    assert!(!html.contains("<script>"), "{html}");
    assert_eq!(
        page_form_token(&html, "verify"),
        "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    );
    // Without a token there is no page.
    let (status, body) = parts(app.client.get("/auth/magic-link/verify").send().await).await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
}

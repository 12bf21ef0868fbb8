//! Every HTML page of the API carries the security headers (issue 12: no
//! `X-Content-Type-Options` / `frame-ancestors` on the HTML pages), and
//! opening one changes nothing.

use poem::http::{Method, StatusCode};

use crate::common::*;

/// The pages emailed links open, with the action their form posts to.
const LINK_PAGES: [(&str, &str); 2] = [
    ("/auth/verify-email", "verify-email"),
    ("/auth/account/confirm-email-change", "confirm-email-change"),
];

#[tokio::test]
async fn every_html_page_carries_the_security_headers() {
    let app = app().await;
    for (path, action) in LINK_PAGES {
        for method in [Method::GET, Method::HEAD] {
            let resp = app
                .client
                .request(method.clone(), path)
                .query("token", &"t0ken")
                .send()
                .await;
            assert_eq!(resp.0.status(), StatusCode::OK, "{method} {path}");
            let csp = assert_page_headers(&resp);
            assert!(!csp.contains("script-src"), "no script: {csp}");
            let html = text(resp).await;
            if method == Method::GET {
                assert_eq!(page_form_token(&html, action), "t0ken");
            } else {
                assert!(html.is_empty(), "HEAD {path}: {html}");
            }
        }
    }
    // The reset page (its one script allowed by hash: see
    // tests/api/password.rs).
    for method in [Method::GET, Method::HEAD] {
        let resp = app
            .client
            .request(method, "/auth/reset-password")
            .query("token", &"t0ken")
            .send()
            .await;
        assert_eq!(resp.0.status(), StatusCode::OK);
        let csp = assert_page_headers(&resp);
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
    }
    // Swagger UI is not ours to rewrite (inline scripts), but it cannot be
    // framed or sniffed either.
    let resp = app.client.get("/docs").send().await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let headers = resp.0.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["content-security-policy"], "frame-ancestors 'none'");
}

#[tokio::test]
async fn the_link_pages_escape_what_the_url_carries() {
    let app = app().await;
    for (path, action) in LINK_PAGES {
        let html = text(
            app.client
                .get(path)
                .query("token", &"\"><img src=x onerror=alert(1)>")
                .send()
                .await,
        )
        .await;
        assert!(!html.contains("<img"), "{html}");
        assert_eq!(
            page_form_token(&html, action),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
        );
    }
}

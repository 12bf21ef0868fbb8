//! The spec and Swagger UI as the app's own: title, schemes of the
//! transports that are on, `/docs` over the same document as
//! `/openapi.json`.

use poem::http::StatusCode;
use portcullis::{ApiInfo, ProfileField};
use serde_json::Value;

use crate::common::*;

async fn served_spec(app: &TestApp) -> Value {
    let resp = app.client.get("/openapi.json").send().await;
    resp.assert_status_is_ok();
    body(resp).await
}

fn scheme_names(spec: &Value) -> Vec<String> {
    let mut names: Vec<String> = spec["components"]["securitySchemes"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

/// Every scheme named by any operation's `security`.
fn used_schemes(spec: &Value) -> Vec<String> {
    let mut names: Vec<String> = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op.get("security").and_then(Value::as_array))
        .flatten()
        .flat_map(|req| req.as_object().unwrap().keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn title_version_and_description_are_the_apps() {
    let app = app().await;
    let spec = served_spec(&app).await;
    assert_eq!(spec["info"]["title"], "Portcullis");
    assert_eq!(spec["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(spec["info"]["description"]
        .as_str()
        .unwrap()
        .contains("code"));

    let app = app_with(test_config(), |b| {
        b.api_info(ApiInfo::new("Acme accounts", "2.3.0").description("Acme's sign-in API."))
    })
    .await;
    let spec = served_spec(&app).await;
    assert_eq!(spec["info"]["title"], "Acme accounts");
    assert_eq!(spec["info"]["version"], "2.3.0");
    assert_eq!(spec["info"]["description"], "Acme's sign-in API.");
    let page = text(app.client.get("/docs").send().await).await;
    assert!(
        page.contains("\"title\": \"Acme accounts\""),
        "docs page title"
    );
}

#[tokio::test]
async fn only_the_schemes_of_the_transports_that_are_on() {
    // Bearer only (the default).
    let spec = served_spec(&app().await).await;
    assert_eq!(scheme_names(&spec), ["BearerAuth", "OAuth2Password"]);
    assert_eq!(used_schemes(&spec), ["BearerAuth", "OAuth2Password"]);
    assert_eq!(
        spec["components"]["securitySchemes"]["OAuth2Password"]["flows"]["password"]["scopes"],
        serde_json::json!({})
    );

    // Cookies on beside bearer.
    let mut config = test_config();
    config.transport.cookies = true;
    let spec = served_spec(&app_with_config(config.clone()).await).await;
    assert_eq!(
        scheme_names(&spec),
        ["BearerAuth", "CookieAuth", "OAuth2Password"]
    );
    assert_eq!(
        used_schemes(&spec),
        ["BearerAuth", "CookieAuth", "OAuth2Password"]
    );

    // Cookie-only: no bearer, no OAuth2 password flow.
    config.transport.cookie_only = true;
    let spec = served_spec(&app_with_config(config).await).await;
    assert_eq!(scheme_names(&spec), ["CookieAuth"]);
    assert_eq!(used_schemes(&spec), ["CookieAuth"]);
    // Every secured operation keeps a scheme.
    let me = &spec["paths"]["/auth/me"]["get"]["security"];
    assert_eq!(me, &serde_json::json!([{"CookieAuth": []}]));
}

#[tokio::test]
async fn docs_serve_the_same_finished_document() {
    let app = app_with(test_config(), |b| {
        b.registration_field(ProfileField::text("display_name").required())
    })
    .await;
    let spec = served_spec(&app).await;
    let resp = app.client.get("/docs").send().await;
    resp.assert_status_is_ok();
    let page = text(resp).await;
    let start = page.find("let spec = ").expect("embedded spec") + "let spec = ".len();
    let end = start + page[start..].find(";\n").expect("end of the spec");
    let embedded: Value = serde_json::from_str(&page[start..end]).expect("JSON spec");
    assert_eq!(embedded, spec, "/docs embeds /openapi.json");
    assert!(
        spec["components"]["schemas"]["RegistrationProfile"]["properties"]
            .get("display_name")
            .is_some()
    );
    assert!(scheme_names(&embedded).iter().all(|s| s != "CookieAuth"));
    // The password dialog hides the client fields `/auth/token` ignores.
    assert!(page.contains("label[for=\"client_id_password\"]"));
    assert!(page.contains("label[for=\"client_secret_password\"]"));
    // The OAuth2 redirect receiver is still served.
    let resp = app.client.get("/docs/oauth-receiver.html").send().await;
    assert_eq!(resp.0.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_spec_names_no_server() {
    // The test apps set `public_url`; the spec describes the API where it
    // is served.
    let app = app().await;
    assert!(app.manager.config().public_url.is_some());
    let spec = served_spec(&app).await;
    assert!(spec.get("servers").is_none(), "{}", spec["servers"]);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(committed.get("servers").is_none());
}

/// `POST /auth/token` with `form`; status, headers checked for no-store,
/// body.
async fn token(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = app.client.post("/auth/token").form(&form).send().await;
    resp.assert_header("cache-control", "no-store");
    parts(resp).await
}

fn assert_oauth_error(status: StatusCode, body: &Value, want_status: u16, want_error: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"], want_error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(body.get("code").is_none(), "not our error shape: {body}");
}

#[tokio::test]
async fn token_endpoint_errors_are_rfc_6749() {
    let app = app().await;
    app.register("tia@example.com").await;

    // Wrong password, unknown user: invalid_grant, with Pragma too.
    let resp = app
        .client
        .post("/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", "tia@example.com"),
            ("password", "wrong-password"),
        ])
        .send()
        .await;
    resp.assert_header("cache-control", "no-store");
    resp.assert_header("pragma", "no-cache");
    let (status, body) = parts(resp).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = token(
        &app,
        &[("username", "nobody@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // An address the canonical form refuses cannot be anyone's.
    let (status, body) = token(
        &app,
        &[
            ("username", "\u{212a}im@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");

    // Another grant type.
    let (status, body) = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("username", "tia@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_oauth_error(status, &body, 400, "unsupported_grant_type");

    // Malformed: a missing parameter, not a form at all.
    let (status, body) = token(&app, &[("username", "tia@example.com")]).await;
    assert_oauth_error(status, &body, 400, "invalid_request");
    let resp = app
        .client
        .post("/auth/token")
        .body_json(&serde_json::json!({"username": "tia@example.com", "password": PASSWORD}))
        .send()
        .await;
    resp.assert_header("cache-control", "no-store");
    let (status, body) = parts(resp).await;
    assert_oauth_error(status, &body, 400, "invalid_request");

    // Over the body limit: the limit answers first, in Portcullis's shape
    // (as the spec's 413 says).
    let big = "x".repeat(70 * 1024);
    let (status, body) = parts(
        app.client
            .post("/auth/token")
            .form(&[("username", "tia@example.com"), ("password", big.as_str())])
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 413, "PAYLOAD_TOO_LARGE");

    // The right password still signs in.
    let (status, body) = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "tia@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());

    // `/auth/login` keeps Portcullis's error shape.
    let (status, body) = app
        .post(
            "/auth/login",
            serde_json::json!({"email": "tia@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn token_endpoint_rate_limit_keeps_429_with_retry_after() {
    let mut config = test_config();
    // The per-account delay: after two failures the next attempt waits.
    config.rate_limits.failed_sign_in_free = 2;
    let app = app_with_config(config).await;
    app.register("rex@example.com").await;
    let form = [
        ("username", "rex@example.com"),
        ("password", "wrong-password"),
    ];
    for _ in 0..2 {
        let (status, body) = token(&app, &form).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
    }
    let resp = app.client.post("/auth/token").form(&form).send().await;
    resp.assert_header("cache-control", "no-store");
    let retry: u64 = resp
        .0
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (status, body) = parts(resp).await;
    assert_oauth_error(status, &body, 429, "temporarily_unavailable");
}

#[tokio::test]
async fn the_spec_documents_the_token_errors() {
    let app = app().await;
    let spec = served_spec(&app).await;
    let responses = &spec["paths"]["/auth/token"]["post"]["responses"];
    for status in ["200", "400", "413", "429", "500", "503"] {
        assert!(responses.get(status).is_some(), "{status}");
    }
    assert!(responses.get("422").is_none(), "no 422: malformed is a 400");
    let error = &spec["components"]["schemas"]["OAuthErrorBody"];
    assert_eq!(
        error["required"],
        serde_json::json!(["error", "error_description"])
    );
    // poem-openapi writes header names in upper case.
    assert!(responses["429"]["headers"].get("RETRY-AFTER").is_some());
    assert!(responses["400"]["headers"].get("PRAGMA").is_some());
    assert!(responses.get("413").is_some(), "the body limit");
}

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
    assert!(page.contains("\"title\": \"Acme accounts\""), "docs page title");
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
    assert!(spec["components"]["schemas"]["RegistrationProfile"]["properties"]
        .get("display_name")
        .is_some());
    assert!(scheme_names(&embedded)
        .iter()
        .all(|s| s != "CookieAuth"));
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
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/openapi/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(committed.get("servers").is_none());
}

//! The routes as a whole: provider listing, the spec, missing providers.

use poem::{http::StatusCode, test::TestClient, EndpointExt};
use portcullis::api;
use portcullis_magic_link::{MagicLinkApi, MagicLinkProvider};
use serde_json::{json, Value};

use crate::common::*;
use crate::*;

#[tokio::test]
async fn providers_lists_both_as_passwordless() {
    let app = ml_app(test_config()).await;
    let (status, body) = parts(app.client.get("/auth/providers").send().await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let providers = body["providers"].as_array().expect("a list");
    for id in ["magic-link", "email-code"] {
        let provider = providers
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing: {body}"));
        assert_eq!(provider["kind"], "passwordless");
    }
    assert!(providers.iter().any(|p| p["id"] == "credentials"));
}

#[tokio::test]
async fn the_spec_documents_every_route_and_its_errors() {
    let app = ml_app(test_config()).await;
    let spec: Value = serde_json::from_str(&api::spec_json(
        &app.manager,
        MagicLinkApi::new(&app.manager),
    ))
    .unwrap();
    let paths = &spec["paths"];
    let statuses = |path: &str, method: &str| -> Vec<String> {
        let op = &paths[path][method];
        assert!(op["summary"].is_string(), "{path} {method} has no summary");
        assert!(op["description"].is_string(), "{path} {method}");
        let mut s: Vec<String> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        s.sort();
        s
    };
    assert_eq!(
        statuses("/auth/magic-link", "post"),
        ["202", "403", "404", "413", "422", "429", "500", "503"]
    );
    // The link's page: nothing can go wrong but a missing token.
    assert_eq!(
        statuses("/auth/magic-link/verify", "get"),
        ["200", "422", "500"]
    );
    let page = &paths["/auth/magic-link/verify"]["get"]["responses"]["200"];
    assert!(
        page["content"]["text/html; charset=utf-8"].is_object(),
        "{page}"
    );
    for header in [
        "CONTENT-SECURITY-POLICY",
        "X-CONTENT-TYPE-OPTIONS",
        "X-FRAME-OPTIONS",
        "REFERRER-POLICY",
        "CACHE-CONTROL",
    ] {
        assert!(page["headers"][header].is_object(), "{header}: {page}");
    }
    // Its button, or a front-end's JSON: the sign-in and its redirect.
    assert_eq!(
        statuses("/auth/magic-link/verify", "post"),
        ["200", "303", "403", "404", "409", "410", "413", "422", "429", "500", "503"]
    );
    let body = &paths["/auth/magic-link/verify"]["post"]["requestBody"]["content"];
    assert!(
        body["application/json; charset=utf-8"].is_object(),
        "{body}"
    );
    assert!(
        body["application/x-www-form-urlencoded"].is_object(),
        "{body}"
    );
    assert_eq!(
        statuses("/auth/email-code", "post"),
        ["202", "403", "404", "413", "422", "429", "500", "503"]
    );
    assert_eq!(
        statuses("/auth/email-code/verify", "post"),
        ["200", "401", "403", "404", "409", "410", "413", "422", "429", "500", "503"]
    );
    let ids: Vec<&str> = [
        "/auth/magic-link",
        "/auth/email-code",
        "/auth/email-code/verify",
    ]
    .iter()
    .map(|p| paths[*p]["post"]["operationId"].as_str().unwrap())
    .collect();
    assert_eq!(
        ids,
        ["requestMagicLink", "requestEmailCode", "verifyEmailCode"]
    );
}

#[tokio::test]
async fn a_flow_whose_provider_is_not_registered_answers_404() {
    // Only the magic link is registered; the code routes are mounted.
    let mut app = app_with(test_config(), |b| b.provider(MagicLinkProvider::new())).await;
    app.client =
        TestClient::new(api::routes(&app.manager, MagicLinkApi::new(&app.manager)).boxed());
    let (status, body) = app
        .post("/auth/email-code", json!({ "email": "x@example.com" }))
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let (status, body) = app
        .post(
            "/auth/email-code/verify",
            json!({ "email": "x@example.com", "code": "123456" }),
        )
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
    app.manager.wait_for_deliveries().await;
    assert!(app.outbox.sent().is_empty());
    // The magic link works.
    let token = app.link_for("x@example.com").await;
    let (status, body) = app.post_link(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

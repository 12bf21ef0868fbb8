//! The committed spec must match the code. `PORTCULLIS_BLESS=1` rewrites it.

use portcullis::api;
use portcullis_credentials::CredentialsApi;
use serde_json::Value;

use crate::common::*;

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

#[tokio::test]
async fn committed_spec_matches_the_code() {
    let app = app().await;
    let spec = api::spec_json(&app.manager, CredentialsApi::new(&app.manager)) + "\n";
    if std::env::var("PORTCULLIS_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(SPEC_PATH, &spec).unwrap();
    }
    let committed = std::fs::read_to_string(SPEC_PATH)
        .expect("openapi/openapi.json is missing: run with PORTCULLIS_BLESS=1");
    assert!(
        committed == spec,
        "openapi/openapi.json is out of date: run `PORTCULLIS_BLESS=1 cargo test --test api spec`"
    );
}

#[tokio::test]
async fn spec_documents_every_operation_error_and_scheme() {
    let app = app().await;
    let spec: Value = serde_json::from_str(&api::spec_json(
        &app.manager,
        CredentialsApi::new(&app.manager),
    ))
    .unwrap();
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    for name in ["BearerAuth", "CookieAuth", "OAuth2Password"] {
        assert!(schemes.contains_key(name), "{name}");
        assert!(
            schemes[name]["description"].is_string(),
            "{name} has no description"
        );
    }
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/token",
        "/auth/refresh",
        "/auth/logout",
        "/auth/me",
        "/auth/providers",
    ] {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        for (_, op) in item.as_object().unwrap() {
            assert!(op["summary"].is_string(), "{path}");
            assert!(op["description"].is_string(), "{path}");
            for (status, resp) in op["responses"].as_object().unwrap() {
                assert!(
                    resp["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{path} {status}"
                );
            }
            if path != "/auth/providers" {
                assert!(op["responses"].get("422").is_some(), "{path} documents 422");
                assert!(op["responses"].get("503").is_some(), "{path} documents 503");
            }
        }
    }
    assert!(paths["/auth/me"]["get"]["security"].is_array());
}

//! The committed spec must match the code. `PORTCULLIS_BLESS=1` rewrites it.

use portcullis::{api, AuthManager};
use portcullis_credentials::CredentialsApi;
use portcullis_magic_link::MagicLinkApi;
use portcullis_oauth::OAuthApi;
use serde_json::Value;

use crate::common::*;

/// The spec of everything the demo server mounts: the built-in APIs and
/// every provider crate's routes.
fn full_spec(manager: &AuthManager) -> String {
    api::spec_json(
        manager,
        (
            CredentialsApi::new(manager),
            MagicLinkApi::new(manager),
            OAuthApi::new(manager).expect("OAuth routes"),
        ),
    )
}

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

/// The committed spec documents both transports (the spec only lists the
/// schemes of the transports that are on).
pub async fn both_transports() -> TestApp {
    let mut config = test_config();
    config.transport.cookies = true;
    app_with_config(config).await
}

#[tokio::test]
async fn committed_spec_matches_the_code() {
    let app = both_transports().await;
    let spec = full_spec(&app.manager) + "\n";
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
    let app = both_transports().await;
    let spec: Value = serde_json::from_str(&full_spec(&app.manager)).unwrap();
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
        "/auth/verify-email",
        "/auth/forgot-password",
        "/auth/reset-password",
        "/auth/account/set-password",
        "/auth/account/change-password",
        "/auth/account/change-email",
        "/auth/account/confirm-email-change",
        "/auth/account",
        "/auth/account/linked",
        "/auth/account/linked/{provider}",
        "/auth/sessions",
        "/users/me",
        "/users",
        "/users/{id}",
        "/auth/magic-link",
        "/auth/magic-link/verify",
        "/auth/email-code",
        "/auth/email-code/verify",
        "/auth/oauth/{provider}/authorize",
        "/auth/oauth/{provider}/callback",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    // One scheme: everything about my account under /auth/account, no
    // old names beside it (issue 12).
    for old in [
        "/auth/accounts",
        "/auth/accounts/{provider}",
        "/auth/set-password",
    ] {
        assert!(!paths.contains_key(old), "{old} is still served");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            assert!(op["summary"].is_string(), "{what}");
            assert!(op["description"].is_string(), "{what}");
            let responses = op["responses"].as_object().unwrap();
            for (status, resp) in responses {
                assert!(
                    resp["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{what} {status}"
                );
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                assert!(param["description"].is_string(), "{what} {param}");
            }
            // Infallible: the provider list, the key set and the static
            // reset page.
            let infallible = path == "/auth/providers"
                || path == "/.well-known/jwks.json"
                || (path == "/auth/reset-password" && method == "get");
            if !infallible {
                assert!(responses.contains_key("500"), "{what} documents 500");
            }
            if op.get("requestBody").is_some() {
                // `/auth/token` answers a malformed form with RFC 6749's
                // 400 `invalid_request`, not a 422.
                let statuses: &[&str] = if path == "/auth/token" {
                    &["413", "400"]
                } else {
                    &["413", "422"]
                };
                for &status in statuses {
                    assert!(responses.contains_key(status), "{what} documents {status}");
                }
            }
            if op.get("security").is_some() {
                for status in ["401", "403"] {
                    assert!(responses.contains_key(status), "{what} documents {status}");
                }
            }
        }
    }
    // Each operation documents the errors it can answer, not every error.
    let statuses = |path: &str, method: &str| -> Vec<String> {
        paths[path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(
        statuses("/auth/me", "get"),
        ["200", "401", "403", "500", "503"]
    );
    assert_eq!(
        statuses("/auth/forgot-password", "post"),
        ["202", "403", "413", "422", "429", "500", "503"]
    );
    assert_eq!(
        statuses("/auth/reset-password", "post"),
        ["204", "403", "410", "413", "422", "429", "500", "503"]
    );
    assert_eq!(
        statuses("/auth/register", "post"),
        // 202: enumeration-safe registration.
        ["201", "202", "403", "409", "413", "422", "429", "500", "503"]
    );
    assert!(paths["/auth/me"]["get"]["security"].is_array());
}

/// What poem-openapi leaves out and openapi-spec-validator / schemathesis
/// (scripts/fuzz.sh) found missing: OAuth2 `scopes`, `nullable` on optional
/// properties (they are answered and accepted as `null`), and
/// `additionalProperties: false` on request bodies (they refuse unknown
/// fields). The served `/openapi.json` is the same document.
#[tokio::test]
async fn spec_states_scopes_nullable_optionals_and_closed_bodies() {
    let app = app().await;
    let spec: Value = serde_json::from_str(&full_spec(&app.manager)).unwrap();
    assert!(
        spec.pointer("/components/securitySchemes/OAuth2Password/flows/password/scopes")
            .is_some_and(Value::is_object),
        "OpenAPI 3.0 requires scopes"
    );
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let user = &schemas["PublicUser"];
    assert_eq!(user["properties"]["name"]["nullable"], true);
    assert!(user["properties"]["id"].get("nullable").is_none());
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op
                .pointer("/requestBody/content")
                .and_then(Value::as_object)
            else {
                continue;
            };
            for (media, body) in content {
                if !media.starts_with("application/json") {
                    continue;
                }
                let name = body["schema"]["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .unwrap();
                assert_eq!(
                    schemas[name]["additionalProperties"], false,
                    "{method} {path}: {name}"
                );
            }
        }
    }

    let served = body(app.client.get("/openapi.json").send().await).await;
    assert!(served
        .pointer("/components/securitySchemes/OAuth2Password/flows/password/scopes")
        .is_some());
    assert_eq!(
        served["components"]["schemas"]["LoginRequest"]["additionalProperties"],
        false
    );
}

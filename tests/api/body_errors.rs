//! Every operation with a request body documents 413 and 422: the body
//! limit and body parsing answer them before any handler runs. (An
//! operation that documents a 400 answers parse errors in that form of its
//! own, e.g. `/auth/token`'s RFC 6749 `invalid_request`, instead of 422.)

use serde_json::Value;

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

/// `(path, method)` of every operation in `spec` with a `requestBody` that
/// lacks 413, or 422 (400 where the operation answers parse errors so).
fn body_routes_without_body_errors(spec: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    let paths = spec["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        for (method, op) in operations.as_object().expect("operations") {
            if op.get("requestBody").is_none() {
                continue;
            }
            let responses = &op["responses"];
            let parse_error = if responses.get("400").is_some() {
                "400"
            } else {
                "422"
            };
            for status in ["413", parse_error] {
                if responses.get(status).is_none() {
                    missing.push(format!("{method} {path}: no {status}"));
                }
            }
        }
    }
    missing
}

#[test]
fn every_body_route_of_the_committed_spec_documents_413_and_422() {
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(SPEC_PATH).expect("openapi/openapi.json"))
            .expect("the committed spec is JSON");
    let with_body = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ops| ops.as_object().unwrap().values())
        .filter(|op| op.get("requestBody").is_some())
        .count();
    assert!(with_body >= 15, "only {with_body} operations with a body");
    let missing = body_routes_without_body_errors(&spec);
    assert!(missing.is_empty(), "{missing:#?}");
}

#[test]
fn the_walk_finds_a_body_route_without_them() {
    let spec = serde_json::json!({"paths": {
        "/a": {"post": {"requestBody": {}, "responses": {"200": {}, "413": {}, "422": {}}}},
        "/b": {"patch": {"requestBody": {}, "responses": {"200": {}, "422": {}}}},
        "/c": {"get": {"responses": {"200": {}}}},
        "/d": {"post": {"requestBody": {}, "responses": {"200": {}, "400": {}, "413": {}}}},
        "/e": {"put": {"requestBody": {}, "responses": {"200": {}}}},
    }});
    assert_eq!(
        body_routes_without_body_errors(&spec),
        ["patch /b: no 413", "put /e: no 413", "put /e: no 422"]
    );
}

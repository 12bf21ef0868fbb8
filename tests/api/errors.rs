use std::sync::Arc;

use poem::{http::StatusCode, Body};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn malformed_bodies_get_422_json() {
    let app = app().await;
    let cases: [(&str, &str); 6] = [
        ("{bad json", "application/json"),
        ("", "application/json"),
        ("[1,2,3]", "application/json"),
        (r#"{"email": 5, "password": "x"}"#, "application/json"),
        (r#"{"email": "a@example.com"}"#, "application/json"),
        ("email=a@example.com&password=x", "text/plain"),
    ];
    for (raw, content_type) in cases {
        let (status, body) = parts(
            app.client
                .post("/auth/register")
                .content_type(content_type)
                .body(raw.to_owned())
                .send()
                .await,
        )
        .await;
        assert_error(status, &body, 422, "VALIDATION_ERROR");
        assert!(
            !body["message"].as_str().unwrap().contains("panic"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn validation_messages_do_not_echo_values() {
    let app = app().await;
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "a@example.com", "password": 98765432}),
        )
        .await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
    assert!(!body.to_string().contains("98765432"), "{body}");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let app = app().await;
    let big = json!({"email": "a@example.com", "password": "x".repeat(70 * 1024)});
    let (status, body) = app.post("/auth/register", big.clone()).await;
    assert_error(status, &body, 413, "PAYLOAD_TOO_LARGE");

    // Chunked, no Content-Length: counted while reading.
    let bytes = serde_json::to_vec(&big).unwrap();
    let stream = futures_util::stream::iter(
        bytes
            .chunks(8192)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let (status, body) = parts(
        app.client
            .post("/auth/login")
            .content_type("application/json")
            .header("transfer-encoding", "chunked")
            .body(Body::from_bytes_stream(stream))
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 413, "PAYLOAD_TOO_LARGE");

    // A configurable limit.
    let mut config = test_config();
    config.http.max_body_bytes = 64;
    let small = app_with_config(config).await;
    let (status, _) = small
        .post(
            "/auth/login",
            json!({"email": "a@example.com", "password": "x".repeat(64)}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = app().await;
    let (status, body) = parts(app.client.get("/auth/nope").send().await).await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let (status, body) = parts(app.client.get("/auth/login").send().await).await;
    assert_error(status, &body, 405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn a_store_that_is_down_gets_503_json() {
    let app = app_on_store(test_config(), Arc::new(DownStore), |b| b).await;
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "a@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 503, "SERVICE_UNAVAILABLE");
    assert!(
        !body["message"].as_str().unwrap().contains("refused"),
        "no backend detail: {body}"
    );
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "a@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 503, "SERVICE_UNAVAILABLE");
    let (status, body) = app.refresh("whatever").await;
    assert_error(status, &body, 503, "SERVICE_UNAVAILABLE");

    // A valid token checked against a down store: 503, not 401 or 500.
    let up = app_with_config(test_config()).await;
    let (access, _) = up.signed_in("b@example.com").await;
    let (status, body) = app.me(&access).await;
    assert_error(status, &body, 503, "SERVICE_UNAVAILABLE");
}

/// schemathesis (scripts/fuzz.sh) found 405 answers without the `Allow`
/// header RFC 9110 requires.
#[tokio::test]
async fn method_not_allowed_lists_the_allowed_methods() {
    let app = app().await;
    for (method, path, allow) in [
        ("GET", "/auth/login", "POST"),
        ("OPTIONS", "/auth/sessions/revoke-others", "POST"),
        ("TRACE", "/users/me", "GET, PATCH, HEAD"),
        (
            "PUT",
            "/users/01936f0e-7c1a-7cc2-9d1e-5b3f2a8e4c10",
            "GET, PATCH, DELETE, HEAD",
        ),
    ] {
        let resp = app
            .client
            .request(
                poem::http::Method::from_bytes(method.as_bytes()).unwrap(),
                path,
            )
            .send()
            .await;
        resp.assert_status(StatusCode::METHOD_NOT_ALLOWED);
        resp.assert_header("allow", allow);
        let body = body(resp).await;
        assert_eq!(body["code"], "METHOD_NOT_ALLOWED", "{method} {path}");
    }
}

/// schemathesis found sign-in, sign-up and refresh bodies taking unknown
/// fields while every other body refused them; the spec now says
/// `additionalProperties: false` for all of them.
#[tokio::test]
async fn every_json_body_refuses_unknown_fields() {
    let app = app().await;
    for (path, body) in [
        (
            "/auth/register",
            json!({"email": "a@example.com", "password": PASSWORD, "admin": true}),
        ),
        (
            "/auth/login",
            json!({"email": "a@example.com", "password": PASSWORD, "remember": true}),
        ),
        ("/auth/refresh", json!({"refresh_token": "x", "extra": 1})),
    ] {
        let (status, body) = app.post(path, body).await;
        assert_error(status, &body, 422, "VALIDATION_ERROR");
    }
}

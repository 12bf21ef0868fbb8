//! The scratch app works end to end: register, sign in, our own routes.

use poem::{http::StatusCode, test::TestClient};
use portcullis::Secret;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

async fn token_of(cli: &TestClient<impl poem::Endpoint>, email: &str) -> String {
    let res = cli
        .post("/auth/login")
        .body_json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await;
    res.assert_status_is_ok();
    let body: serde_json::Value = res.json().await.value().deserialize();
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

#[tokio::test]
async fn register_login_and_call_the_apps_own_routes() {
    let (manager, app) = scratch_app::app(portcullis::Outbox::new()).expect("app");
    let cli = TestClient::new(app);

    let res = cli
        .post("/auth/register")
        .body_json(&json!({"email": "new@example.com", "password": PASSWORD}))
        .send()
        .await;
    res.assert_status(StatusCode::CREATED);
    let token = token_of(&cli, "new@example.com").await;
    let bearer = format!("Bearer {token}");

    // `Authenticated`: no token, a bad one, a good one.
    let res = cli.get("/hello").send().await;
    res.assert_status(StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = res.json().await.value().deserialize();
    assert_eq!(body["code"], "UNAUTHENTICATED");
    cli.get("/hello")
        .header("authorization", "Bearer nope")
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let res = cli
        .get("/hello")
        .header("authorization", &bearer)
        .send()
        .await;
    res.assert_status_is_ok();
    res.assert_text("hello new@example.com").await;

    // The app's own rule through `ApiErrors::widen`: 403, then a body error.
    let res = cli
        .post("/notes")
        .header("authorization", &bearer)
        .body_json(&json!({"text": "hi"}))
        .send()
        .await;
    res.assert_status(StatusCode::FORBIDDEN);
    let body: serde_json::Value = res.json().await.value().deserialize();
    assert_eq!(body["code"], "EMAIL_NOT_VERIFIED");
    let res = cli
        .post("/notes")
        .header("authorization", &bearer)
        .body_json(&json!({}))
        .send()
        .await;
    res.assert_status(StatusCode::UNPROCESSABLE_ENTITY);

    // `Superuser`: 403 for a user, 200 for a superuser.
    let res = cli
        .get("/admin/ping")
        .header("authorization", &bearer)
        .send()
        .await;
    res.assert_status(StatusCode::FORBIDDEN);
    manager
        .ensure_superuser("root@example.com", &Secret::new(PASSWORD))
        .await
        .expect("superuser");
    let root = token_of(&cli, "root@example.com").await;
    let res = cli
        .get("/admin/ping")
        .header("authorization", format!("Bearer {root}"))
        .send()
        .await;
    res.assert_status_is_ok();
    res.assert_text("pong root@example.com").await;
}

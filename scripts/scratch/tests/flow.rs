//! The scratch app works end to end: register, sign in, our own route.

use poem::test::TestClient;
use serde_json::json;

#[tokio::test]
async fn register_login_and_call_the_apps_own_route() {
    let (_manager, app) = scratch_app::app(portcullis::Outbox::new()).expect("app");
    let cli = TestClient::new(app);

    let res = cli
        .post("/auth/register")
        .body_json(&json!({"email": "new@example.com", "password": "correct horse battery"}))
        .send()
        .await;
    res.assert_status(poem::http::StatusCode::CREATED);

    let res = cli
        .post("/auth/login")
        .body_json(&json!({"email": "new@example.com", "password": "correct horse battery"}))
        .send()
        .await;
    res.assert_status_is_ok();
    let body: serde_json::Value = res.json().await.value().deserialize();
    let token = body["access_token"].as_str().expect("access_token").to_owned();

    let res = cli.get("/hello").send().await;
    res.assert_status(poem::http::StatusCode::UNAUTHORIZED);

    let res = cli
        .get("/hello")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await;
    res.assert_status_is_ok();
    res.assert_text("hello new@example.com").await;
}

//! The caller as a type: an app's own routes take `Authenticated` (or
//! `Superuser`) and get exactly the answers the built-in routes give.

use std::sync::Arc;

use poem::{http::StatusCode, test::TestClient, EndpointExt, IntoEndpoint};
use poem_openapi::{payload::Json, Object, OpenApi, OpenApiService};
use portcullis::{
    api::{self, error_set::*, ApiErrors, Authenticated, Superuser},
    AuthConfig, Error, Secret,
};
use portcullis_credentials::CredentialsApi;
use serde_json::{json, Value};

use crate::common::*;

/// Who the app saw.
#[derive(Debug, Object)]
struct Seen {
    user_id: String,
    email: String,
    session_id: String,
}

impl Seen {
    fn of(caller: &portcullis::Principal) -> Json<Self> {
        Json(Self {
            user_id: caller.user.id.to_string(),
            email: caller.user.email.clone(),
            session_id: caller.session.id.to_string(),
        })
    }
}

/// A note to publish.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
struct NoteIn {
    text: String,
}

/// An app API with no manager field: the extractors find the manager in the
/// request.
struct AppApi;

#[OpenApi]
impl AppApi {
    /// Who am I (any signed-in user)
    #[oai(path = "/app/hello", method = "get")]
    async fn hello(&self, caller: Authenticated) -> Result<Json<Seen>, ApiErrors<{ AUTHED }>> {
        Ok(Seen::of(&caller))
    }

    /// Publish a note (state-changing: cookie requests need an allowed origin)
    #[oai(path = "/app/notes", method = "post")]
    async fn publish(
        &self,
        caller: Authenticated,
        note: Json<NoteIn>,
    ) -> Result<Json<Seen>, ApiErrors<{ AUTHED | BODY }>> {
        if note.0.text.is_empty() {
            return Err(Error::validation("text", "EMPTY_NOTE", "the note is empty").into());
        }
        Ok(Seen::of(&caller))
    }

    /// Stats (superusers only)
    #[oai(path = "/app/stats", method = "get")]
    async fn stats(&self, admin: Superuser) -> Result<Json<Seen>, ApiErrors<{ AUTHED }>> {
        Ok(Seen::of(&admin))
    }

    /// A route whose error set omits BODY: the spec lists 413 and 422 anyway.
    #[oai(path = "/app/echo", method = "post")]
    async fn echo(
        &self,
        caller: Authenticated,
        note: Json<NoteIn>,
    ) -> Result<Json<Value>, ApiErrors<{ AUTHED }>> {
        Ok(Json(json!({"text": note.0.text, "by": caller.user.email})))
    }
}

/// A test app of the suite, serving `AppApi` next to the credentials routes.
fn with_routes(mut app: TestApp) -> TestApp {
    app.client = TestClient::new(
        api::routes(&app.manager, (CredentialsApi::new(&app.manager), AppApi)).boxed(),
    );
    app
}

async fn app_with_routes(config: AuthConfig) -> TestApp {
    with_routes(app_with_config(config).await)
}

fn cookie_config() -> AuthConfig {
    let mut config = test_config();
    config.transport.cookies = true;
    config.transport.cookie.allowed_origins = vec![APP_ORIGIN.into()];
    config
}

async fn get_bearer(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    parts(
        app.client
            .get(path)
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await,
    )
    .await
}

async fn get_cookie(app: &TestApp, cookie: &str) -> (StatusCode, Value) {
    parts(
        app.client
            .get("/app/hello")
            .header("cookie", cookie)
            .send()
            .await,
    )
    .await
}

/// The access cookie from a sign-in answer.
fn access_cookie(resp: &poem::test::TestResponse) -> String {
    resp.0
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("portcullis_access="))
        .and_then(|c| c.split(';').next())
        .expect("an access cookie")
        .to_owned()
}

#[tokio::test]
async fn no_or_bad_token_is_401_before_the_handler() {
    let app = app_with_routes(test_config()).await;
    let resp = app.client.get("/app/hello").send().await;
    assert_eq!(
        resp.0.headers().get("www-authenticate").unwrap(),
        "Bearer",
        "401 names the scheme"
    );
    let (status, body) = parts(resp).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");

    for token in ["not-a-jwt", "a.b.c", ""] {
        let (status, body) = get_bearer(&app, "/app/hello", token).await;
        assert_error(status, &body, 401, "UNAUTHENTICATED");
    }

    // A token signed with another secret.
    let mut other = test_config();
    other.jwt.secret = Some(Secret::new("another-secret-another-secret-another!"));
    let elsewhere = app_with_config(other).await;
    let (forged, _) = elsewhere.signed_in("mallory@example.com").await;
    let (status, body) = get_bearer(&app, "/app/hello", &forged).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");

    // The answers are the built-in route's, byte for byte.
    let (me_status, me_body) = app.me("not-a-jwt").await;
    let (status, body) = get_bearer(&app, "/app/hello", "not-a-jwt").await;
    assert_eq!((status, body), (me_status, me_body));
}

#[tokio::test]
async fn a_bearer_token_gives_the_handler_the_principal() {
    let app = app_with_routes(test_config()).await;
    let (access, _) = app.signed_in("ada@example.com").await;
    let stored = app.stored("ada@example.com").await.unwrap();
    let sessions = app.manager.list_sessions(&stored).await.unwrap();
    assert_eq!(sessions.len(), 1);

    let (status, body) = get_bearer(&app, "/app/hello", &access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["user_id"], stored.id.to_string());
    assert_eq!(body["session_id"], sessions[0].id.to_string());

    // With a body: the handler runs, and its own errors keep their shape.
    let (status, body) = app
        .call(
            poem::http::Method::POST,
            "/app/notes",
            &access,
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "ada@example.com");
    let (status, body) = app
        .call(
            poem::http::Method::POST,
            "/app/notes",
            &access,
            Some(json!({"text": ""})),
        )
        .await;
    assert_error(status, &body, 422, "EMPTY_NOTE");
    assert_eq!(body["field"], "text");
}

#[tokio::test]
async fn the_token_is_checked_before_the_body() {
    let app = app_with_routes(test_config()).await;
    let (access, _) = app.signed_in("bea@example.com").await;
    // A malformed body with a good token is the body's 422 ...
    let (status, body) = parts(
        app.client
            .post("/app/notes")
            .header("authorization", format!("Bearer {access}"))
            .content_type("application/json")
            .body("{not json")
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
    // ... and with a bad token the 401: an unauthenticated caller learns
    // nothing about the body.
    let (status, body) = parts(
        app.client
            .post("/app/notes")
            .header("authorization", "Bearer not-a-jwt")
            .content_type("application/json")
            .body("{not json")
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let app = app_with_routes(test_config()).await;
    let (access, _) = app.signed_in("cy@example.com").await;
    let (status, _) = get_bearer(&app, "/app/hello", &access).await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(31));
    let (status, body) = get_bearer(&app, "/app/hello", &access).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_revoked_session_is_401_at_once() {
    let app = app_with_routes(test_config()).await;
    let (access, _) = app.signed_in("dee@example.com").await;
    let (status, _) = get_bearer(&app, "/app/hello", &access).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app
        .call(poem::http::Method::POST, "/auth/logout", &access, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let stored = app.stored("dee@example.com").await.unwrap();
    assert!(app.manager.list_sessions(&stored).await.unwrap().is_empty());

    let (status, body) = get_bearer(&app, "/app/hello", &access).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_deactivated_user_is_403() {
    let app = app_with_routes(test_config()).await;
    let (access, _) = app.signed_in("eve@example.com").await;
    let stored = app.stored("eve@example.com").await.unwrap();
    app.store
        .patch_user(
            &stored.id,
            &portcullis::UserPatch::new().is_active(false),
            app.manager.now(),
        )
        .await
        .unwrap();
    let (status, body) = get_bearer(&app, "/app/hello", &access).await;
    assert_error(status, &body, 403, "USER_INACTIVE");
}

#[tokio::test]
async fn cookies_authenticate_and_state_changes_need_an_allowed_origin() {
    let app = app_with_routes(cookie_config()).await;
    app.register("fay@example.com").await;
    let resp = app
        .client
        .post("/auth/login")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({"email": "fay@example.com", "password": PASSWORD}))
        .send()
        .await;
    resp.assert_status_is_ok();
    let cookie = format!("portcullis_access={}", access_cookie(&resp));

    // A read needs no origin.
    let (status, body) = parts(
        app.client
            .get("/app/hello")
            .header("cookie", &cookie)
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "fay@example.com");

    // A state change from the allowed origin works ...
    let (status, body) = parts(
        app.client
            .post("/app/notes")
            .header("cookie", &cookie)
            .header("origin", APP_ORIGIN)
            .body_json(&json!({"text": "hi"}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "fay@example.com");

    // ... and from another origin, or with none, it is refused.
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let mut req = app
            .client
            .post("/app/notes")
            .header("cookie", &cookie)
            .body_json(&json!({"text": "hi"}));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let (status, body) = parts(req.send().await).await;
        assert_error(status, &body, 403, "CSRF_REJECTED");
    }

    // A bearer token needs no origin: nothing is sent automatically.
    let (access, _) = app.signed_in("gus@example.com").await;
    let (status, body) = parts(
        app.client
            .post("/app/notes")
            .header("authorization", format!("Bearer {access}"))
            .body_json(&json!({"text": "hi"}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_transport_that_is_off_is_401() {
    // Three deployments on one store with the same keys: cookies on,
    // cookies off (the default), bearer off.
    let store = test_store().await;
    let cookies = with_routes(app_on_store(cookie_config(), store.clone(), |b| b).await);
    let plain = with_routes(app_on_store(test_config(), store.clone(), |b| b).await);
    let mut config = cookie_config();
    config.transport.bearer = false;
    let no_bearer = with_routes(app_on_store(config, store, |b| b).await);

    cookies.register("hal@example.com").await;
    let resp = cookies
        .client
        .post("/auth/login")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({"email": "hal@example.com", "password": PASSWORD}))
        .send()
        .await;
    let token = access_cookie(&resp);
    let cookie = format!("portcullis_access={token}");

    // Cookies off: the cookie alone is no caller; the same token as a
    // bearer header is.
    let (status, body) = get_cookie(&plain, &cookie).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
    let (status, body) = get_bearer(&plain, "/app/hello", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Bearer off: the header is refused; the same token as a cookie works.
    let (status, body) = get_bearer(&no_bearer, "/app/hello", &token).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
    let (status, body) = get_cookie(&no_bearer, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "hal@example.com");
}

#[tokio::test]
async fn superuser_routes_refuse_other_users_with_403() {
    let app = app_with_routes(test_config()).await;
    let (access, _) = app.signed_in("jo@example.com").await;
    let (status, body) = get_bearer(&app, "/app/stats", &access).await;
    assert_error(status, &body, 403, "FORBIDDEN");

    app.manager
        .ensure_superuser("root@example.com", &Secret::new(PASSWORD))
        .await
        .unwrap();
    let tokens = app.login("root@example.com").await;
    let root = tokens["access_token"].as_str().unwrap();
    let (status, body) = get_bearer(&app, "/app/stats", root).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "root@example.com");

    let (status, body) = get_bearer(&app, "/app/stats", "not-a-jwt").await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_store_that_is_down_is_503() {
    // A valid token from a working deployment with the same keys.
    let up = app_with_routes(test_config()).await;
    let (access, _) = up.signed_in("kit@example.com").await;

    let down = app_on_store(test_config(), Arc::new(DownStore), |b| b).await;
    let client = TestClient::new(
        api::routes(&down.manager, (CredentialsApi::new(&down.manager), AppApi)).boxed(),
    );
    let (status, body) = parts(
        client
            .get("/app/hello")
            .header("authorization", format!("Bearer {access}"))
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn an_api_served_outside_portcullis_answers_a_json_500() {
    let app = app_with_routes(test_config()).await;
    let (access, _) = app.signed_in("lee@example.com").await;
    // Its own OpenApiService, not `api::service`, and not inside `api::wrap`.
    let bare = TestClient::new(OpenApiService::new(AppApi, "bare", "1").into_endpoint());
    for auth in [Some(format!("Bearer {access}")), None] {
        let mut req = bare.get("/app/hello");
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let (status, body) = parts(req.send().await).await;
        assert_error(status, &body, 500, "CONFIG_ERROR");
    }

    // Inside `api::wrap` the same service works.
    let wrapped = TestClient::new(api::wrap(
        &app.manager,
        OpenApiService::new(AppApi, "wrapped", "1"),
    ));
    let (status, body) = parts(
        wrapped
            .get("/app/hello")
            .header("authorization", format!("Bearer {access}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "lee@example.com");
}

#[tokio::test]
async fn the_spec_declares_the_built_in_security_and_body_errors() {
    let app = app_with_routes(test_config()).await;
    let spec: Value = serde_json::from_str(&api::spec_json(
        &app.manager,
        (CredentialsApi::new(&app.manager), AppApi),
    ))
    .unwrap();
    let paths = &spec["paths"];
    // Cookies are off here, so the spec offers the bearer schemes only.
    let me = &paths["/auth/me"]["get"]["security"];
    assert_eq!(me, &json!([{"BearerAuth": []}, {"OAuth2Password": []}]));
    for (path, method) in [
        ("/app/hello", "get"),
        ("/app/notes", "post"),
        ("/app/stats", "get"),
        ("/app/echo", "post"),
    ] {
        let op = &paths[path][method];
        assert_eq!(&op["security"], me, "{path}");
        let responses = op["responses"].as_object().unwrap();
        for status in ["401", "403", "500", "503"] {
            assert!(responses.contains_key(status), "{path} {status}");
        }
    }
    // `echo` declares only AUTHED; a body route lists 413 and 422 anyway.
    let echo = paths["/app/echo"]["post"]["responses"].as_object().unwrap();
    assert_eq!(
        echo.keys().map(String::as_str).collect::<Vec<_>>(),
        ["200", "401", "403", "413", "422", "500", "503"]
    );
    assert_eq!(
        echo["413"]["content"]["application/json; charset=utf-8"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    // A route without a body gets neither.
    let hello = paths["/app/hello"]["get"]["responses"].as_object().unwrap();
    assert!(!hello.contains_key("413") && !hello.contains_key("422"));

    // And the statuses are real: too large, then malformed.
    let (access, _) = app.signed_in("max@example.com").await;
    let big = "x".repeat(app.manager.config().http.max_body_bytes + 1);
    let (status, body) = app
        .call(
            poem::http::Method::POST,
            "/app/echo",
            &access,
            Some(json!({ "text": big })),
        )
        .await;
    assert_error(status, &body, 413, "PAYLOAD_TOO_LARGE");
    let (status, body) = app
        .call(
            poem::http::Method::POST,
            "/app/echo",
            &access,
            Some(json!({})),
        )
        .await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
}

//! roles: definitions, assignments, and route guards that follow them on
//! the very next request.

use base64::Engine as _;
use poem::{
    http::{Method, StatusCode},
    test::TestClient,
    EndpointExt,
};
use poem_openapi::{payload::PlainText, OpenApi};
use portcullis::{
    api::{self, error_set::AUTHED, ApiErrors, RequirePermission},
    veto_fn, Action, AuthConfig, RoleConfig, Secret, Veto,
};
use portcullis_credentials::CredentialsApi;
use serde_json::{json, Value};

use crate::common::*;

const ROOT: &str = "root@example.com";

portcullis::permission!(NotesWrite = "notes:write");

struct NotesApi;

#[OpenApi]
impl NotesApi {
    /// Writes a note.
    #[oai(path = "/notes", method = "post")]
    async fn write(
        &self,
        caller: RequirePermission<NotesWrite>,
    ) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
        Ok(PlainText(format!("saved for {}", caller.user.email)))
    }
}

fn roles_config() -> AuthConfig {
    let mut config = test_config();
    config
        .roles
        .push(RoleConfig::new("editor", ["notes:*", "drafts:read"]));
    config.roles.push(RoleConfig::new("viewer", ["notes:read"]));
    config
}

async fn root(app: &TestApp) -> String {
    app.manager
        .ensure_superuser(ROOT, &Secret::new(PASSWORD))
        .await
        .unwrap();
    app.login(ROOT).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A client serving the built-in API and the app's guarded route.
fn with_notes(app: &TestApp) -> TestClient<poem::endpoint::BoxEndpoint<'static>> {
    TestClient::new(
        api::routes(&app.manager, (CredentialsApi::new(&app.manager), NotesApi)).boxed(),
    )
}

async fn write_note(
    client: &TestClient<poem::endpoint::BoxEndpoint<'static>>,
    access: &str,
) -> (StatusCode, Value) {
    let resp = client
        .post("/notes")
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await;
    let status = resp.0.status();
    let text = resp.0.into_body().into_string().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn denied(status: StatusCode, body: &Value, permission: &str) {
    assert_error(status, body, 403, "FORBIDDEN");
    assert_eq!(
        body["requires"],
        json!({ "permission": permission }),
        "{body}"
    );
}

async fn user_id(app: &TestApp, email: &str) -> String {
    app.stored(email).await.unwrap().id.to_string()
}

fn claims(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn role_administration_is_for_superusers_and_checks_every_name() {
    let app = app_with_config(roles_config()).await;
    let root = root(&app).await;
    let (user, _) = app.signed_in("ann@example.com").await;

    for (method, path, json) in [
        (Method::GET, "/auth/roles", None),
        (
            Method::POST,
            "/auth/roles",
            Some(json!({"name": "x", "permissions": []})),
        ),
        (Method::DELETE, "/auth/roles/editor", None),
    ] {
        let (status, body) = app.call(method, path, &user, json).await;
        assert_error(status, &body, 403, "FORBIDDEN");
    }
    let ann = user_id(&app, "ann@example.com").await;
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/users/{ann}/roles/editor"),
            &user,
            None,
        )
        .await;
    assert_error(status, &body, 403, "FORBIDDEN");
    assert!(app
        .stored("ann@example.com")
        .await
        .unwrap()
        .roles
        .is_empty());

    let bad = [
        (
            json!({"name": "Writers", "permissions": []}),
            "INVALID_ROLE_NAME",
            "name",
        ),
        (
            json!({"name": "a:b", "permissions": []}),
            "INVALID_ROLE_NAME",
            "name",
        ),
        (
            json!({"name": "writer", "permissions": ["notes:write", "notes:*:x"]}),
            "INVALID_PERMISSION",
            "permissions[1]",
        ),
        (
            json!({"name": "writer", "permissions": ["Notes:write"]}),
            "INVALID_PERMISSION",
            "permissions[0]",
        ),
        (
            json!({"name": "writer", "permissions": [], "description": "d".repeat(257)}),
            "INVALID_DESCRIPTION",
            "description",
        ),
    ];
    for (json, code, field) in bad {
        let (status, body) = app
            .call(Method::POST, "/auth/roles", &root, Some(json))
            .await;
        assert_error(status, &body, 422, code);
        assert_eq!(body["field"], field, "{body}");
    }
    let too_many: Vec<String> = (0..129).map(|i| format!("p:{i}")).collect();
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/roles",
            &root,
            Some(json!({"name": "wide", "permissions": too_many})),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_PERMISSION");
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/roles",
            &root,
            Some(json!({"name": "writer", "permissions": [], "is_superuser": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, list) = app.call(Method::GET, "/auth/roles", &root, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");

    let (status, created) = app
        .call(
            Method::POST,
            "/auth/roles",
            &root,
            Some(json!({"name": "writer", "description": "Writes notes",
                         "permissions": ["notes:write", "notes:write", "drafts:*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["permissions"], json!(["drafts:*", "notes:write"]));
    assert_eq!(created["read_only"], false);
    for name in ["writer", "editor"] {
        let (status, body) = app
            .call(
                Method::POST,
                "/auth/roles",
                &root,
                Some(json!({"name": name, "permissions": []})),
            )
            .await;
        assert_error(status, &body, 409, "ROLE_EXISTS");
    }
    let (status, body) = app
        .call(
            Method::PATCH,
            "/auth/roles/editor",
            &root,
            Some(json!({"permissions": ["*"]})),
        )
        .await;
    assert_error(status, &body, 409, "ROLE_READ_ONLY");
    let (status, body) = app
        .call(Method::DELETE, "/auth/roles/viewer", &root, None)
        .await;
    assert_error(status, &body, 409, "ROLE_READ_ONLY");
    let (status, body) = app
        .call(Method::DELETE, "/auth/roles/nobody", &root, None)
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");

    let (_, list) = app.call(Method::GET, "/auth/roles", &root, None).await;
    let names: Vec<(&str, bool)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap(),
                r["read_only"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("editor", true), ("viewer", true), ("writer", false)]
    );
    let (status, editor) = app
        .call(Method::GET, "/auth/roles/editor", &root, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(editor["permissions"], json!(["drafts:read", "notes:*"]));

    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/users/{ann}/roles/nobody"),
            &root,
            None,
        )
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let (status, body) = app
        .call(Method::PUT, "/users/no-such-user/roles/editor", &root, None)
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
    assert!(app
        .stored("ann@example.com")
        .await
        .unwrap()
        .roles
        .is_empty());
}

#[tokio::test]
async fn a_guarded_route_follows_every_role_change_on_the_next_request() {
    let app = app_with_config(roles_config()).await;
    let notes = with_notes(&app);
    let root = root(&app).await;
    let (access, refresh) = app.signed_in("bob@example.com").await;
    let bob = user_id(&app, "bob@example.com").await;

    let (status, body) = write_note(&notes, &access).await;
    denied(status, &body, "notes:write");
    let (status, body) = write_note(&notes, "not-a-token").await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
    // A superuser holds every permission.
    let (status, _) = write_note(&notes, &root).await;
    assert_eq!(status, StatusCode::OK);

    // A config role with a wildcard: the same access token works at once.
    let (status, roles) = app
        .call(
            Method::PUT,
            &format!("/users/{bob}/roles/editor"),
            &root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{roles}");
    assert_eq!(roles["roles"], json!(["editor"]));
    let (status, body) = write_note(&notes, &access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A role that does not grant it.
    app.call(
        Method::DELETE,
        &format!("/users/{bob}/roles/editor"),
        &root,
        None,
    )
    .await;
    app.call(
        Method::PUT,
        &format!("/users/{bob}/roles/viewer"),
        &root,
        None,
    )
    .await;
    let (status, body) = write_note(&notes, &access).await;
    denied(status, &body, "notes:write");

    // A run-time role: editing its permissions applies at once too.
    app.call(
        Method::POST,
        "/auth/roles",
        &root,
        Some(json!({"name": "writer", "permissions": ["notes:write"]})),
    )
    .await;
    app.call(
        Method::PUT,
        &format!("/users/{bob}/roles/writer"),
        &root,
        None,
    )
    .await;
    assert_eq!(write_note(&notes, &access).await.0, StatusCode::OK);
    let (status, body) = app
        .call(
            Method::PATCH,
            "/auth/roles/writer",
            &root,
            Some(json!({"permissions": ["notes:read"], "description": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    denied_note(&notes, &access).await;
    app.call(
        Method::PATCH,
        "/auth/roles/writer",
        &root,
        Some(json!({"permissions": ["notes:write"]})),
    )
    .await;
    assert_eq!(write_note(&notes, &access).await.0, StatusCode::OK);

    // The access token carries the roles from the next refresh on; the
    // route never trusted the claim.
    assert!(claims(&access).get("roles").is_none());
    let (_, tokens) = app.refresh(&refresh).await;
    let refreshed = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&refreshed)["roles"], json!(["viewer", "writer"]));

    // A role deleted while assigned grants nothing at once, is taken off
    // its holders, and a new role of the same name does not re-grant it.
    let (status, _) = app
        .call(Method::DELETE, "/auth/roles/writer", &root, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    denied_note(&notes, &refreshed).await;
    assert_eq!(
        app.stored("bob@example.com").await.unwrap().roles,
        ["viewer"]
    );
    let (_, roles) = app
        .call(Method::GET, &format!("/users/{bob}/roles"), &root, None)
        .await;
    assert_eq!(roles["roles"], json!(["viewer"]));
    app.call(
        Method::POST,
        "/auth/roles",
        &root,
        Some(json!({"name": "writer", "permissions": ["notes:write"]})),
    )
    .await;
    denied_note(&notes, &refreshed).await;
    let (_, me) = app.me(&refreshed).await;
    assert_eq!(me["roles"], json!(["viewer"]));
    assert!(app.event_names().contains(&"role_deleted"));
}

async fn denied_note(notes: &TestClient<poem::endpoint::BoxEndpoint<'static>>, access: &str) {
    let (status, body) = write_note(notes, access).await;
    denied(status, &body, "notes:write");
}

#[tokio::test]
async fn a_role_deleted_while_assigned_grants_nothing_even_before_the_clean_up() {
    // The definition goes first: a holder the clean-up has not reached yet
    // (here: an assignment written straight to the store after the
    // deletion) gets nothing from the name.
    let app = app_with_config(roles_config()).await;
    let notes = with_notes(&app);
    let root = root(&app).await;
    let (access, _) = app.signed_in("cy@example.com").await;
    let cy = app.stored("cy@example.com").await.unwrap().id;
    app.store.add_user_role(&cy, "ghost").await.unwrap();
    denied_note(&notes, &access).await;
    let (_, me) = app.me(&access).await;
    assert_eq!(me["roles"], json!(["ghost"]));
    let (status, roles) = app
        .call(
            Method::DELETE,
            &format!("/users/{cy}/roles/ghost"),
            &root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{roles}");
    assert_eq!(roles["roles"], json!([]));
}

#[tokio::test]
async fn role_changes_ask_the_hooks_and_emit_events() {
    let app = app_with(roles_config(), |b| {
        b.hook(veto_fn(|action: Action| async move {
            match action {
                Action::DefineRole { role, .. }
                    if role.permissions.iter().any(|p| p.as_str() == "*") =>
                {
                    Err(Veto::new("NO_GOD_ROLES", "no role may grant everything"))
                }
                Action::AssignRole { role, .. } if role == "viewer" => {
                    Err(Veto::new("NO_VIEWERS", "viewers are assigned by HR"))
                }
                _ => Ok(()),
            }
        }))
    })
    .await;
    let root = root(&app).await;
    app.register("dee@example.com").await;
    let dee = user_id(&app, "dee@example.com").await;

    let (status, body) = app
        .call(
            Method::POST,
            "/auth/roles",
            &root,
            Some(json!({"name": "god", "permissions": ["*"]})),
        )
        .await;
    assert_error(status, &body, 403, "NO_GOD_ROLES");
    assert!(app.store.list_roles().await.unwrap().is_empty());
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/users/{dee}/roles/viewer"),
            &root,
            None,
        )
        .await;
    assert_error(status, &body, 403, "NO_VIEWERS");
    assert!(app
        .stored("dee@example.com")
        .await
        .unwrap()
        .roles
        .is_empty());

    app.call(
        Method::POST,
        "/auth/roles",
        &root,
        Some(json!({"name": "ops", "permissions": ["deploy:*"]})),
    )
    .await;
    let (status, body) = app
        .call(
            Method::PATCH,
            "/auth/roles/ops",
            &root,
            Some(json!({"permissions": ["*"]})),
        )
        .await;
    assert_error(status, &body, 403, "NO_GOD_ROLES");
    let stored = app.store.find_roles(&["ops".into()]).await.unwrap();
    assert_eq!(stored[0].permissions[0].as_str(), "deploy:*");
    app.call(Method::PUT, &format!("/users/{dee}/roles/ops"), &root, None)
        .await;
    // Again: no second event for a role held already.
    app.call(Method::PUT, &format!("/users/{dee}/roles/ops"), &root, None)
        .await;
    app.call(
        Method::PATCH,
        "/auth/roles/ops",
        &root,
        Some(json!({"description": "Deploys"})),
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/users/{dee}/roles/ops"),
        &root,
        None,
    )
    .await;
    app.call(Method::DELETE, "/auth/roles/ops", &root, None)
        .await;
    let names: Vec<&str> = app
        .event_names()
        .into_iter()
        .filter(|n| n.starts_with("role_"))
        .collect();
    assert_eq!(
        names,
        [
            "role_created",
            "role_assigned",
            "role_updated",
            "role_unassigned",
            "role_deleted"
        ]
    );
}

#[tokio::test]
async fn config_roles_are_checked_when_the_manager_is_built() {
    for (roles, want) in [
        (
            vec![RoleConfig::new("Editor", ["notes:read"])],
            "roles: `Editor`",
        ),
        (
            vec![RoleConfig::new("editor", ["notes:*:x"])],
            "`notes:*:x`",
        ),
        (
            vec![
                RoleConfig::new("editor", ["notes:read"]),
                RoleConfig::new("editor", ["notes:write"]),
            ],
            "declared twice",
        ),
    ] {
        let mut config = test_config();
        config.roles = roles;
        let err = portcullis::AuthManager::builder(config)
            .build()
            .expect_err("invalid roles");
        assert!(err.to_string().contains(want), "{err}");
    }
}

#[tokio::test]
async fn the_spec_names_a_guarded_routes_permission() {
    let app = app_with_config(roles_config()).await;
    let notes = with_notes(&app);
    let resp = notes.get("/openapi.json").send().await;
    let spec: Value =
        serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
    let op = &spec["paths"]["/notes"]["post"];
    assert_eq!(
        op["x-portcullis-requires"],
        json!([{"permission": "notes:write"}])
    );
    let description = op["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("Requires the permission `notes:write`"),
        "{op}"
    );
    let security = op["security"].as_array().unwrap();
    assert!(!security.is_empty());
    for requirement in security {
        for name in requirement.as_object().unwrap().keys() {
            assert!(
                spec["components"]["securitySchemes"].get(name).is_some(),
                "{name} is not a declared scheme"
            );
        }
    }
}

//! Fields an app controls: server-only `app_metadata` beside the user's
//! profile `metadata`, and app-declared registration fields.

use std::sync::Arc;

use parking_lot::Mutex;
use poem::http::{Method, StatusCode};
use portcullis::{store::UserQuery, veto_fn, Action, ProfileField, Secret, Veto};
use serde_json::{json, Value};

use crate::common::*;

const ROOT: &str = "root@example.com";

/// The hooks page's veto: no deletion while `app_metadata.open_invoice`.
async fn invoice_app() -> TestApp {
    app_with(test_config(), |b| {
        b.hook(veto_fn(|action: Action| async move {
            match action {
                Action::DeleteAccount { user, .. }
                    if user.app_metadata.get("open_invoice") == Some(&json!(true)) =>
                {
                    Err(Veto::new("OPEN_INVOICE", "settle the open invoice first"))
                }
                _ => Ok(()),
            }
        }))
    })
    .await
}

async fn stored(app: &TestApp, email: &str) -> portcullis::User {
    app.store
        .find_user_by_email(email)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{email} is not stored"))
}

#[tokio::test]
async fn users_cannot_clear_app_metadata_so_the_invoice_veto_holds() {
    let app = invoice_app().await;
    let (access, _) = app.signed_in("ivy@example.com").await;
    let id = stored(&app, "ivy@example.com").await.id;
    let flags = json!({"open_invoice": true, "plan": "pro"});
    let updated = app
        .manager
        .set_app_metadata(&id, flags.as_object().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(Value::Object(updated.app_metadata), flags);
    let by: Vec<_> = app
        .events
        .lock()
        .iter()
        .filter_map(|e| match e {
            portcullis::Event::UserUpdated { user, by } if user.id == id => Some(by.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(by, [None], "the app's own write has no acting user");

    // The user reads it …
    let (status, me) = app.call(Method::GET, "/users/me", &access, None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["app_metadata"], flags);
    assert_eq!(me["metadata"], json!({}));

    // … but cannot write it: refused whole, nothing written.
    for patch in [
        json!({"app_metadata": {}}),
        json!({"app_metadata": null}),
        json!({"name": "Ivy", "app_metadata": {"open_invoice": false}}),
    ] {
        let (status, body) = app
            .call(Method::PATCH, "/users/me", &access, Some(patch.clone()))
            .await;
        assert_error(status, &body, 422, "VALIDATION_ERROR");
        let user = stored(&app, "ivy@example.com").await;
        assert_eq!(Value::Object(user.app_metadata), flags, "{patch}");
        assert_eq!(user.name, None, "{patch}");
    }
    // Profile metadata of the same name is the user's and changes nothing.
    let (status, body) = app
        .call(
            Method::PATCH,
            "/users/me",
            &access,
            Some(json!({"metadata": {"open_invoice": false}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"], json!({"open_invoice": false}));
    assert_eq!(body["app_metadata"], flags);

    // So the veto holds: 403 with its code, the account stays.
    let (status, body) = app
        .call(
            Method::DELETE,
            "/auth/account",
            &access,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_error(status, &body, 403, "OPEN_INVOICE");
    assert!(stored(&app, "ivy@example.com").await.is_active);

    // A superuser may clear it (`PATCH /users/{id}`); then deletion works.
    app.manager
        .ensure_superuser(ROOT, &Secret::new(PASSWORD))
        .await
        .unwrap();
    let root = app.login(ROOT).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/users/{id}"),
            &root,
            Some(json!({"app_metadata": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["app_metadata"], json!({"plan": "pro"}));
    assert_eq!(body["metadata"], json!({"open_invoice": false}));
    let (status, body) = app
        .call(
            Method::DELETE,
            "/auth/account",
            &access,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn app_metadata_has_the_metadata_limits_everywhere() {
    let app = app().await;
    app.register("kit@example.com").await;
    let id = stored(&app, "kit@example.com").await.id;
    for (bad, code) in [
        (json!({"$set": 1}), "INVALID_METADATA"),
        (json!({"a.b": 1}), "INVALID_METADATA"),
        (json!({"blob": "x".repeat(17 * 1024)}), "METADATA_TOO_LARGE"),
    ] {
        let err = app
            .manager
            .set_app_metadata(&id, bad.as_object().unwrap().clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), code);
    }
    app.manager
        .ensure_superuser(ROOT, &Secret::new(PASSWORD))
        .await
        .unwrap();
    let root = app.login(ROOT).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/users/{id}"),
            &root,
            Some(json!({"name": "Kit", "app_metadata": {"$where": 1}})),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_METADATA");
    assert_eq!(body["field"], "app_metadata");
    let user = stored(&app, "kit@example.com").await;
    assert!(user.app_metadata.is_empty());
    assert_eq!(user.name, None, "nothing half-applied");
}

/// An app that asks for a display name, consent and a birth year.
async fn fields_app() -> TestApp {
    app_with(test_config(), |b| {
        b.registration_field(
            ProfileField::text("display_name")
                .required()
                .max_chars(20)
                .description("Shown to other users."),
        )
        .registration_field(ProfileField::boolean("accept_terms").must_be_true())
        .registration_field(ProfileField::integer("birth_year").range(1900, 2100))
    })
    .await
}

async fn user_count(app: &TestApp) -> u64 {
    app.store
        .list_users(&UserQuery::page(0, 10))
        .await
        .unwrap()
        .1
        .expect("counted")
}

#[tokio::test]
async fn declared_registration_fields_are_checked_before_the_user_exists() {
    let app = fields_app().await;
    let register = |profile: Value| {
        let mut body = json!({"email": "lea@example.com", "password": PASSWORD});
        if !profile.is_null() {
            body["profile"] = profile;
        }
        body
    };
    for (profile, code, field) in [
        (Value::Null, "FIELD_REQUIRED", "profile.display_name"),
        (
            json!({"accept_terms": true}),
            "FIELD_REQUIRED",
            "profile.display_name",
        ),
        (
            json!({"display_name": "   ", "accept_terms": true}),
            "INVALID_FIELD",
            "profile.display_name",
        ),
        (
            json!({"display_name": "x".repeat(21), "accept_terms": true}),
            "INVALID_FIELD",
            "profile.display_name",
        ),
        (
            json!({"display_name": 7, "accept_terms": true}),
            "INVALID_FIELD",
            "profile.display_name",
        ),
        (
            json!({"display_name": "Lea"}),
            "FIELD_REQUIRED",
            "profile.accept_terms",
        ),
        (
            json!({"display_name": "Lea", "accept_terms": false}),
            "INVALID_FIELD",
            "profile.accept_terms",
        ),
        (
            json!({"display_name": "Lea", "accept_terms": "yes"}),
            "INVALID_FIELD",
            "profile.accept_terms",
        ),
        (
            json!({"display_name": "Lea", "accept_terms": true, "birth_year": 1850}),
            "INVALID_FIELD",
            "profile.birth_year",
        ),
        (
            json!({"display_name": "Lea", "accept_terms": true, "birth_year": 1990.5}),
            "INVALID_FIELD",
            "profile.birth_year",
        ),
        (
            json!({"display_name": "Lea", "accept_terms": true, "is_superuser": true}),
            "UNKNOWN_FIELD",
            "profile.is_superuser",
        ),
    ] {
        let (status, body) = app.post("/auth/register", register(profile.clone())).await;
        assert_error(status, &body, 422, code);
        assert_eq!(body["field"], field, "{profile}: {body}");
        assert_eq!(user_count(&app).await, 0, "{profile} created a user");
    }
    // Not an object: the body's own 422.
    let (status, body) = app.post("/auth/register", register(json!(["Lea"]))).await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
    assert_eq!(user_count(&app).await, 0);
    assert!(app.events.lock().is_empty(), "no event for a refusal");

    let (status, body) = app
        .post(
            "/auth/register",
            register(json!({"display_name": "  Lea ", "accept_terms": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let expected = json!({"display_name": "Lea", "accept_terms": true});
    assert_eq!(body["metadata"], expected);
    assert_eq!(body["app_metadata"], json!({}));
    let user = stored(&app, "lea@example.com").await;
    assert_eq!(Value::Object(user.metadata), expected);
    assert_eq!(user_count(&app).await, 1);
}

/// A declared field keeps its rule after registration: `PATCH /users/me`
/// cannot store a value its check refuses, nor remove a required one; the
/// user's other keys are theirs.
#[tokio::test]
async fn declared_fields_keep_their_rules_in_profile_updates() {
    let app = fields_app().await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "max@example.com", "password": PASSWORD,
                   "profile": {"display_name": "Max", "accept_terms": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let access = app.login("max@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = json!({"display_name": "Max", "accept_terms": true});
    for (metadata, code, field) in [
        (
            json!({"display_name": "Max", "accept_terms": false}),
            "INVALID_FIELD",
            "metadata.accept_terms",
        ),
        (
            json!({"display_name": "a\u{0000}b", "accept_terms": true}),
            "INVALID_FIELD",
            "metadata.display_name",
        ),
        (
            json!({"display_name": "x".repeat(21), "accept_terms": true}),
            "INVALID_FIELD",
            "metadata.display_name",
        ),
        (
            json!({"display_name": "Max", "accept_terms": true, "birth_year": "DROP TABLE"}),
            "INVALID_FIELD",
            "metadata.birth_year",
        ),
        (
            json!({"accept_terms": true}),
            "FIELD_REQUIRED",
            "metadata.display_name",
        ),
        (Value::Null, "FIELD_REQUIRED", "metadata.display_name"),
    ] {
        let (status, body) = app
            .call(
                Method::PATCH,
                "/users/me",
                &access,
                Some(json!({ "metadata": metadata })),
            )
            .await;
        assert_error(status, &body, 422, code);
        assert_eq!(body["field"], field, "{metadata}: {body}");
        let user = stored(&app, "max@example.com").await;
        assert_eq!(Value::Object(user.metadata), before, "nothing written");
    }
    // Checked values are stored as registration stores them; other keys
    // pass as they are.
    let (status, body) = app
        .call(
            Method::PATCH,
            "/users/me",
            &access,
            Some(
                json!({"metadata": {"display_name": " Maxi ", "accept_terms": true,
                                      "birth_year": 1990, "theme": "dark"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected =
        json!({"display_name": "Maxi", "accept_terms": true, "birth_year": 1990, "theme": "dark"});
    assert_eq!(body["metadata"], expected);
    assert_eq!(
        Value::Object(stored(&app, "max@example.com").await.metadata),
        expected
    );
}

#[tokio::test]
async fn without_declared_fields_register_takes_no_profile_keys() {
    let app = app().await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "max@example.com", "password": PASSWORD, "profile": {"plan": "pro"}}),
        )
        .await;
    assert_error(status, &body, 422, "UNKNOWN_FIELD");
    assert_eq!(body["field"], "profile.plan");
    assert_eq!(user_count(&app).await, 0);
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "max@example.com", "password": PASSWORD, "profile": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["metadata"], json!({}));
}

#[tokio::test]
async fn the_spec_documents_the_declared_fields() {
    let app = fields_app().await;
    let spec: Value = serde_json::from_str(&api_spec(&app)).unwrap();
    let profile = &spec["components"]["schemas"]["RegistrationProfile"];
    assert_eq!(profile["type"], "object");
    assert_eq!(profile["additionalProperties"], false);
    assert_eq!(profile["required"], json!(["display_name", "accept_terms"]));
    assert_eq!(
        profile["properties"]["display_name"],
        json!({"type": "string", "minLength": 1, "maxLength": 20,
               "description": "Shown to other users."})
    );
    assert_eq!(
        profile["properties"]["accept_terms"],
        json!({"type": "boolean", "enum": [true]})
    );
    assert_eq!(
        profile["properties"]["birth_year"],
        // Optional, so `null` (as absent) is accepted too.
        json!({"type": "integer", "format": "int64", "minimum": 1900, "maximum": 2100,
               "nullable": true})
    );
    assert!(profile["description"]
        .as_str()
        .unwrap()
        .contains("`display_name`, `accept_terms`, `birth_year`"));
    let register = &spec["components"]["schemas"]["RegisterRequest"]["properties"]["profile"];
    assert_eq!(
        register["allOf"][0]["$ref"],
        "#/components/schemas/RegistrationProfile"
    );
}

fn api_spec(app: &TestApp) -> String {
    portcullis::api::spec_json(
        &app.manager,
        portcullis_credentials::CredentialsApi::new(&app.manager),
    )
}

/// The before-hook of a registration sees the profile as checked (trimmed,
/// only declared and user keys) and can refuse by it, before the user
/// exists.
#[tokio::test]
async fn a_before_hook_sees_the_registration_profile() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = app_with(test_config(), move |b| {
        b.registration_field(ProfileField::text("display_name").max_chars(20))
            .hook(veto_fn(move |action: Action| {
                let log = log.clone();
                async move {
                    if let Action::Register { metadata, .. } = &action {
                        log.lock().push(Value::Object(metadata.clone()));
                        if metadata.get("display_name") == Some(&json!("admin")) {
                            return Err(Veto::new("NAME_RESERVED", "that name is reserved"));
                        }
                    }
                    Ok(())
                }
            }))
    })
    .await;
    let register_as = |display_name: &'static str| {
        app.post(
            "/auth/register",
            json!({"email": "ada@example.com", "password": PASSWORD,
                   "profile": {"display_name": display_name}}),
        )
    };
    let (status, body) = register_as(" admin ").await;
    assert_error(status, &body, 403, "NAME_RESERVED");
    assert_eq!(user_count(&app).await, 0, "vetoed before the user exists");
    let (status, body) = register_as("Ada").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.register("bob@example.com").await;
    assert_eq!(
        *seen.lock(),
        [
            json!({"display_name": "admin"}),
            json!({"display_name": "Ada"}),
            json!({})
        ]
    );
}

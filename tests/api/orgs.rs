//! organizations: members, invitations to one verified address, the
//! grant-only-what-you-hold rule, the owner guard, the active organization
//! and the org-scoped guards that follow each change on the next request.

use base64::Engine as _;
use chrono::Duration;
use poem::{
    http::{Method, StatusCode},
    test::TestClient,
    EndpointExt,
};
use poem_openapi::{payload::PlainText, OpenApi};
use portcullis::{
    api::{self, error_set::AUTHED, ApiErrors, RequireOrgPermission, RequireOrgRole},
    veto_fn, Action, Veto,
};
use portcullis_credentials::CredentialsApi;
use serde_json::{json, Value};

use crate::common::*;

portcullis::permission!(BillingRead = "billing:read");
portcullis::permission!(OrgRead = "org:read");
portcullis::role!(OrgMember = "member");

struct OrgApp;

#[OpenApi]
impl OrgApp {
    /// The active organization's invoices.
    #[oai(path = "/invoices", method = "get")]
    async fn invoices(
        &self,
        caller: RequireOrgPermission<BillingRead>,
    ) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
        Ok(PlainText(caller.org.as_ref().unwrap().id.clone()))
    }

    /// The active organization's dashboard.
    #[oai(path = "/dashboard", method = "get")]
    async fn dashboard(
        &self,
        caller: RequireOrgPermission<OrgRead>,
    ) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
        Ok(PlainText(caller.org.as_ref().unwrap().id.clone()))
    }

    /// Members only.
    #[oai(path = "/lounge", method = "get")]
    async fn lounge(
        &self,
        _caller: RequireOrgRole<OrgMember>,
    ) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
        Ok(PlainText("welcome".into()))
    }
}

type Client = TestClient<poem::endpoint::BoxEndpoint<'static>>;

fn with_app(app: &TestApp) -> Client {
    TestClient::new(api::routes(&app.manager, (CredentialsApi::new(&app.manager), OrgApp)).boxed())
}

async fn get(client: &Client, path: &str, access: &str) -> StatusCode {
    client
        .get(path)
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .0
        .status()
}

fn claims(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A registered, verified, signed-in user: (access, refresh, id).
async fn member(app: &TestApp, email: &str) -> (String, String, String) {
    app.register(email).await;
    app.mark_verified(email).await;
    let tokens = app.login(email).await;
    let id = app.stored(email).await.unwrap().id.to_string();
    (
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
        id,
    )
}

async fn create_org(app: &TestApp, access: &str, name: &str) -> String {
    let (status, body) = app
        .call(Method::POST, "/orgs", access, Some(json!({"name": name})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["roles"], json!(["owner"]), "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Invites `email` with `roles`; returns the mailed token.
async fn invite(app: &TestApp, access: &str, org: &str, email: &str, roles: Value) -> String {
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/invitations"),
            access,
            Some(json!({"email": email, "roles": roles})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("token").is_none(), "{body}");
    let mail = app.mail(email, "You are invited").await;
    assert!(
        mail.text
            .contains(&format!("{PUBLIC_URL}/orgs/invitations/accept?token=")),
        "{}",
        mail.text
    );
    link_token(&mail)
}

async fn accept(app: &TestApp, access: &str, token: &str) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        "/orgs/invitations/accept",
        access,
        Some(json!({"token": token})),
    )
    .await
}

async fn switch(app: &TestApp, access: &str, org: Option<&str>) -> (StatusCode, Value) {
    app.call(
        Method::PUT,
        "/auth/session/org",
        access,
        Some(json!({ "org_id": org })),
    )
    .await
}

async fn members(app: &TestApp, access: &str, org: &str) -> Vec<(String, Value)> {
    let (status, body) = app
        .call(Method::GET, &format!("/orgs/{org}/members"), access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_owned(),
                m["roles"].clone(),
            )
        })
        .collect()
}

fn denied(status: StatusCode, body: &Value, permission: &str) {
    assert_error(status, body, 403, "FORBIDDEN");
    assert_eq!(
        body["requires"],
        json!({ "permission": permission }),
        "{body}"
    );
}

#[tokio::test]
async fn an_org_is_created_renamed_and_deleted_by_its_owner_and_hidden_from_outsiders() {
    let app = app().await;
    let (ann, _, _) = member(&app, "ann@example.com").await;
    let (eve, _, _) = member(&app, "eve@example.com").await;
    let org = create_org(&app, &ann, "  Acme  ").await;

    let (status, body) = app.call(Method::GET, "/orgs", &ann, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"][0]["id"], org.as_str());
    assert_eq!(body["items"][0]["name"], "Acme", "the name is trimmed");
    let (_, body) = app.call(Method::GET, "/orgs", &eve, None).await;
    assert_eq!(body["items"], json!([]));

    // Outsiders see nothing: the same 404 as an unknown id, on every route.
    for (method, path, json) in [
        (Method::GET, format!("/orgs/{org}"), None),
        (
            Method::PATCH,
            format!("/orgs/{org}"),
            Some(json!({"name": "Mine"})),
        ),
        (Method::DELETE, format!("/orgs/{org}"), None),
        (Method::GET, format!("/orgs/{org}/members"), None),
        (
            Method::POST,
            format!("/orgs/{org}/invitations"),
            Some(json!({"email": "eve@example.com"})),
        ),
        (Method::GET, "/orgs/no-such-org".to_owned(), None),
    ] {
        let (status, body) = app.call(method.clone(), &path, &eve, json).await;
        assert_error(status, &body, 404, "NOT_FOUND");
    }
    let (status, body) = switch(&app, &eve, Some(&org)).await;
    assert_error(status, &body, 404, "NOT_FOUND");

    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/orgs/{org}"),
            &ann,
            Some(json!({"name": ""})),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_NAME");
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/orgs/{org}"),
            &ann,
            Some(json!({"name": "Acme Corp"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Acme Corp");
    assert_eq!(body["roles"], json!(["owner"]));

    // (A stale sign-in is refused: the next test.)
    let (status, _) = app
        .call(Method::DELETE, &format!("/orgs/{org}"), &ann, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(Method::GET, &format!("/orgs/{org}"), &ann, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(app.store.find_org(&org).await.unwrap().is_none());
    assert!(app
        .store
        .list_user_memberships(&app.stored("ann@example.com").await.unwrap().id)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn deleting_an_org_needs_a_recent_sign_in_even_with_a_refreshed_token() {
    let app = app().await;
    let (ann, refresh, _) = member(&app, "ann@example.com").await;
    let org = create_org(&app, &ann, "Acme").await;
    app.clock.advance(Duration::minutes(16));
    let (status, body) = app.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refreshed = body["access_token"].as_str().unwrap();
    let (status, body) = app
        .call(Method::DELETE, &format!("/orgs/{org}"), refreshed, None)
        .await;
    assert_error(status, &body, 403, "REAUTHENTICATION_REQUIRED");
    assert!(app.store.find_org(&org).await.unwrap().is_some());
}

#[tokio::test]
async fn an_invitation_is_accepted_only_by_the_verified_invited_address_and_only_once() {
    let app = app().await;
    let (ann, _, _) = member(&app, "ann@example.com").await;
    let (mallory, _, _) = member(&app, "mallory@example.com").await;
    let org = create_org(&app, &ann, "Acme").await;
    let token = invite(&app, &ann, &org, "Bob@Example.com", json!(["member"])).await;

    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/invitations"),
            &ann,
            Some(json!({"email": "bob@example.com"})),
        )
        .await;
    assert_error(status, &body, 409, "INVITATION_PENDING");
    let (status, body) = app
        .call(Method::GET, &format!("/orgs/{org}/invitations"), &ann, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["email"], "bob@example.com");
    assert_eq!(body["items"][0]["roles"], json!(["member"]));

    // Another account holding the link gets nothing, and the link survives.
    let (status, body) = accept(&app, &mallory, &token).await;
    assert_error(status, &body, 403, "INVITATION_NOT_FOR_YOU");
    // The invited address, before it is verified: refused too.
    let (bob_unverified, _) = app.signed_in("bob@example.com").await;
    let (status, body) = accept(&app, &bob_unverified, &token).await;
    assert_error(status, &body, 403, "INVITATION_NOT_FOR_YOU");
    app.mark_verified("bob@example.com").await;

    let (status, body) = accept(&app, &bob_unverified, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], org.as_str());
    assert_eq!(body["roles"], json!(["member"]));
    let (status, body) = accept(&app, &bob_unverified, &token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let bob_id = app.stored("bob@example.com").await.unwrap().id.to_string();
    let listed = members(&app, &ann, &org).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1], (bob_id, json!(["member"])));
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/invitations"),
            &ann,
            Some(json!({"email": "bob@example.com"})),
        )
        .await;
    assert_error(status, &body, 409, "ALREADY_MEMBER");
    let (_, body) = app
        .call(Method::GET, &format!("/orgs/{org}/invitations"), &ann, None)
        .await;
    assert_eq!(body["items"], json!([]));

    // Revoked and expired invitations are gone.
    let (carol, _, _) = member(&app, "carol@example.com").await;
    let token = invite(&app, &ann, &org, "carol@example.com", json!(["member"])).await;
    let (_, body) = app
        .call(Method::GET, &format!("/orgs/{org}/invitations"), &ann, None)
        .await;
    let id = body["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/orgs/{org}/invitations/{id}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = accept(&app, &carol, &token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/orgs/{org}/invitations/{id}"),
            &ann,
            None,
        )
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");

    let token = invite(&app, &ann, &org, "carol@example.com", json!(["member"])).await;
    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    let carol = app.login("carol@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = accept(&app, &carol, &token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = accept(&app, &carol, "not-a-token").await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert_eq!(members(&app, &carol_owner(&app).await, &org).await.len(), 2);
}

/// Ann, signed in again (after the clock moved past her token).
async fn carol_owner(app: &TestApp) -> String {
    app.login("ann@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_accepts_of_one_invitation_make_one_membership() {
    let app = app().await;
    let (ann, _, _) = member(&app, "ann@example.com").await;
    let org = create_org(&app, &ann, "Acme").await;
    let token = invite(&app, &ann, &org, "bob@example.com", json!(["admin"])).await;
    let (bob, _, _) = member(&app, "bob@example.com").await;
    let tries = (0..8).map(|_| accept(&app, &bob, &token));
    let results = futures_util::future::join_all(tries).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert!(
            body["code"] == "TOKEN_GONE" || body["code"] == "ALREADY_MEMBER",
            "{status} {body}"
        );
    }
    assert_eq!(members(&app, &ann, &org).await.len(), 2);
}

#[tokio::test]
async fn the_active_org_is_in_the_token_and_a_removed_member_loses_it_at_once() {
    let app = app().await;
    let client = with_app(&app);
    let (ann, _, _) = member(&app, "ann@example.com").await;
    let org = create_org(&app, &ann, "Acme").await;
    let token = invite(&app, &ann, &org, "bob@example.com", json!(["member"])).await;
    let (bob, bob_refresh, bob_id) = member(&app, "bob@example.com").await;
    let (status, _) = accept(&app, &bob, &token).await;
    assert_eq!(status, StatusCode::OK);

    // No active organization yet: org guards refuse.
    assert_eq!(get(&client, "/lounge", &bob).await, StatusCode::FORBIDDEN);
    let (status, body) = switch(&app, &bob, Some(&org)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let bob_org = body["access_token"].as_str().unwrap().to_owned();
    let c = claims(&bob_org);
    assert_eq!(c["org"], org.as_str());
    assert_eq!(c["org_roles"], json!(["member"]));
    assert_eq!(get(&client, "/lounge", &bob_org).await, StatusCode::OK);
    assert_eq!(get(&client, "/dashboard", &bob_org).await, StatusCode::OK);
    // The session carries it: the old access token of the session sees it
    // too (the membership is read per request), and a refresh keeps it.
    assert_eq!(get(&client, "/lounge", &bob).await, StatusCode::OK);
    let (status, body) = app.refresh(&bob_refresh).await;
    assert_eq!(status, StatusCode::OK);
    let refreshed = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&refreshed)["org"], org.as_str());
    assert_eq!(claims(&refreshed)["org_roles"], json!(["member"]));

    // Removed: the same token, whatever its claims say, has no org roles.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/orgs/{org}/members/{bob_id}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let resp = client
        .get("/lounge")
        .header("authorization", format!("Bearer {refreshed}"))
        .send()
        .await;
    let (status, body) = parts(resp).await;
    assert_error(status, &body, 403, "FORBIDDEN");
    assert_eq!(body["requires"], json!({"role": "member"}));
    assert_eq!(
        get(&client, "/dashboard", &refreshed).await,
        StatusCode::FORBIDDEN
    );
    let (status, _) = app.me(&refreshed).await;
    assert_eq!(status, StatusCode::OK, "still signed in, just not a member");
    let (status, body) = switch(&app, &refreshed, Some(&org)).await;
    assert_error(status, &body, 404, "NOT_FOUND");

    // Clearing the active organization.
    let (ann_org, _) = switch(&app, &ann, Some(&org)).await;
    assert_eq!(ann_org, StatusCode::OK);
    let (status, body) = switch(&app, &ann, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(claims(body["access_token"].as_str().unwrap())
        .get("org")
        .is_none());
    assert_eq!(
        get(&client, "/dashboard", &ann).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_org_always_keeps_an_owner() {
    let app = app().await;
    let (ann, _, ann_id) = member(&app, "ann@example.com").await;
    let org = create_org(&app, &ann, "Acme").await;

    let (status, body) = app
        .call(Method::POST, &format!("/orgs/{org}/leave"), &ann, None)
        .await;
    assert_error(status, &body, 409, "LAST_OWNER");
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/members/{ann_id}"),
            &ann,
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert_error(status, &body, 409, "LAST_OWNER");
    let (status, body) = app
        .call(
            Method::DELETE,
            "/auth/account",
            &ann,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_error(status, &body, 409, "LAST_OWNER");
    assert!(app.stored("ann@example.com").await.unwrap().is_active);

    let token = invite(&app, &ann, &org, "bob@example.com", json!(["member"])).await;
    let (bob, _, bob_id) = member(&app, "bob@example.com").await;
    accept(&app, &bob, &token).await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/transfer"),
            &bob,
            Some(json!({"user_id": ann_id})),
        )
        .await;
    denied(status, &body, "org:owners:manage");
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/transfer"),
            &ann,
            Some(json!({"user_id": bob_id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roles"], json!(["owner", "member"]));
    let listed = members(&app, &ann, &org).await;
    assert_eq!(listed[0], (ann_id.clone(), json!(["admin"])));
    assert_eq!(listed[1], (bob_id.clone(), json!(["owner", "member"])));
    assert!(app.event_names().contains(&"ownership_transferred"));

    // Ann is an admin now: she cannot touch the owner, and may leave.
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/orgs/{org}/members/{bob_id}"),
            &ann,
            None,
        )
        .await;
    denied(status, &body, "*");
    let (status, body) = app
        .call(Method::DELETE, &format!("/orgs/{org}"), &ann, None)
        .await;
    denied(status, &body, "org:delete");
    let (status, _) = app
        .call(Method::POST, &format!("/orgs/{org}/leave"), &ann, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(Method::GET, &format!("/orgs/{org}"), &ann, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Bob, the only owner, cannot be deleted by a superuser either.
    app.manager
        .ensure_superuser("root@example.com", &portcullis::Secret::new(PASSWORD))
        .await
        .unwrap();
    let root = app.login("root@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .call(Method::DELETE, &format!("/users/{bob_id}"), &root, None)
        .await;
    assert_error(status, &body, 409, "LAST_OWNER");
}

#[tokio::test]
async fn members_grant_only_what_they_hold() {
    let app = app().await;
    let client = with_app(&app);
    let (ann, _, ann_id) = member(&app, "ann@example.com").await;
    let org = create_org(&app, &ann, "Acme").await;
    let token = invite(&app, &ann, &org, "adam@example.com", json!(["admin"])).await;
    let (adam, _, adam_id) = member(&app, "adam@example.com").await;
    assert_eq!(accept(&app, &adam, &token).await.0, StatusCode::OK);
    let token = invite(&app, &adam, &org, "mia@example.com", json!(["member"])).await;
    let (mia, _, mia_id) = member(&app, "mia@example.com").await;
    assert_eq!(accept(&app, &mia, &token).await.0, StatusCode::OK);

    // A member reads and does nothing else.
    let (status, _) = app
        .call(Method::GET, &format!("/orgs/{org}/members"), &mia, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/invitations"),
            &mia,
            Some(json!({"email": "x@example.com"})),
        )
        .await;
    denied(status, &body, "org:invitations:manage");
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/orgs/{org}"),
            &mia,
            Some(json!({"name": "Mia's"})),
        )
        .await;
    denied(status, &body, "org:update");
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/members/{mia_id}"),
            &mia,
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    denied(status, &body, "org:members:manage");

    // An admin cannot make, unmake, invite or remove an owner.
    for roles in [json!(["owner"]), json!(["admin", "owner"])] {
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/orgs/{org}/members/{adam_id}"),
                &adam,
                Some(json!({ "roles": roles })),
            )
            .await;
        denied(status, &body, "*");
    }
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/invitations"),
            &adam,
            Some(json!({"email": "x@example.com", "roles": ["owner"]})),
        )
        .await;
    denied(status, &body, "*");
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/members/{ann_id}"),
            &adam,
            Some(json!({"roles": ["member"]})),
        )
        .await;
    denied(status, &body, "*");
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/orgs/{org}/members/{ann_id}"),
            &adam,
            None,
        )
        .await;
    denied(status, &body, "*");
    // Nor define a role that grants more than they hold.
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/roles"),
            &adam,
            Some(json!({"name": "billing", "permissions": ["billing:read"]})),
        )
        .await;
    denied(status, &body, "billing:read");
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/members/{mia_id}"),
            &adam,
            Some(json!({"roles": ["ghost"]})),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_ROLES");
    assert_eq!(body["field"], "roles[0]");

    // The owner defines a custom role; it grants on the holder's next
    // request, and its deletion takes it away at once.
    for name in ["owner", "admin", "member"] {
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/orgs/{org}/roles"),
                &ann,
                Some(json!({"name": name, "permissions": ["org:read"]})),
            )
            .await;
        assert_error(status, &body, 409, "ROLE_EXISTS");
    }
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/roles"),
            &ann,
            Some(json!({"name": "billing", "description": "Invoices", "permissions": ["billing:read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["permissions"], json!(["billing:read"]));
    let mia_org = switch(&app, &mia, Some(&org)).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = parts(
        client
            .get("/invoices")
            .header("authorization", format!("Bearer {mia_org}"))
            .send()
            .await,
    )
    .await;
    denied(status, &body, "billing:read");
    // Adam (admin) may hand out `member` but not `billing` (he lacks it).
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/members/{mia_id}"),
            &adam,
            Some(json!({"roles": ["member", "billing"]})),
        )
        .await;
    denied(status, &body, "billing:read");
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/members/{mia_id}"),
            &ann,
            Some(json!({"roles": ["member", "billing"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(get(&client, "/invoices", &mia_org).await, StatusCode::OK);
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/orgs/{org}/roles/billing"),
            &ann,
            Some(json!({"permissions": ["billing:write"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        get(&client, "/invoices", &mia_org).await,
        StatusCode::FORBIDDEN
    );
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/orgs/{org}/roles/billing"),
            &ann,
            Some(json!({"permissions": ["billing:*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get(&client, "/invoices", &mia_org).await, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/orgs/{org}/roles/billing"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&client, "/invoices", &mia_org).await,
        StatusCode::FORBIDDEN
    );
    let listed = members(&app, &ann, &org).await;
    assert_eq!(
        listed[2],
        (mia_id.clone(), json!(["member"])),
        "taken off its holders"
    );
    let (_, body) = app
        .call(Method::GET, &format!("/orgs/{org}/roles"), &mia, None)
        .await;
    assert_eq!(body["items"], json!([]));

    // An admin may remove a member (who holds less than they do).
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/orgs/{org}/members/{mia_id}"),
            &adam,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&client, "/dashboard", &mia_org).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn hooks_veto_org_changes_and_every_change_is_an_event() {
    let app = app_with(test_config(), |b| {
        b.hook(veto_fn(|action: Action| async move {
            match action {
                Action::InviteMember { email, .. } if !email.ends_with("@example.com") => Err(
                    Veto::new("COMPANY_EMAIL_REQUIRED", "invite company addresses only"),
                ),
                _ => Ok(()),
            }
        }))
    })
    .await;
    let (ann, _, _) = member(&app, "ann@example.com").await;
    let org = create_org(&app, &ann, "Acme").await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/invitations"),
            &ann,
            Some(json!({"email": "someone@gmail.test"})),
        )
        .await;
    assert_error(status, &body, 403, "COMPANY_EMAIL_REQUIRED");
    assert!(app.mails_to("someone@gmail.test").await.is_empty());
    let (_, body) = app
        .call(Method::GET, &format!("/orgs/{org}/invitations"), &ann, None)
        .await;
    assert_eq!(
        body["items"],
        json!([]),
        "a vetoed invitation is not stored"
    );

    let token = invite(&app, &ann, &org, "bob@example.com", json!(["member"])).await;
    let (bob, _, bob_id) = member(&app, "bob@example.com").await;
    accept(&app, &bob, &token).await;
    app.call(
        Method::PUT,
        &format!("/orgs/{org}/members/{bob_id}"),
        &ann,
        Some(json!({"roles": ["admin"]})),
    )
    .await;
    app.call(
        Method::POST,
        &format!("/orgs/{org}/roles"),
        &ann,
        Some(json!({"name": "ops", "permissions": ["ops:*"]})),
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/orgs/{org}/roles/ops"),
        &ann,
        None,
    )
    .await;
    switch(&app, &bob, Some(&org)).await;
    app.call(Method::POST, &format!("/orgs/{org}/leave"), &bob, None)
        .await;
    app.call(Method::DELETE, &format!("/orgs/{org}"), &ann, None)
        .await;
    let org_events: Vec<&str> = app
        .event_names()
        .into_iter()
        .filter(|n| {
            n.starts_with("org_")
                || n.starts_with("invitation_")
                || n.starts_with("member_")
                || n.starts_with("ownership_")
        })
        .collect();
    assert_eq!(
        org_events,
        [
            "org_created",
            "invitation_created",
            "invitation_accepted",
            "member_roles_changed",
            "org_role_created",
            "org_role_deleted",
            "org_switched",
            "member_removed",
            "org_deleted",
        ]
    );
}

#[tokio::test]
async fn invitation_links_open_the_configured_front_end_page() {
    let mut config = test_config();
    config.email.invitation_url = Some(format!("{APP_ORIGIN}/join?from=mail"));
    let app = app_with_config(config).await;
    let (ann, _, _) = member(&app, "ann@example.com").await;
    let org = create_org(&app, &ann, "Acme").await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/invitations"),
            &ann,
            Some(json!({"email": "bob@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mail = app.mail("bob@example.com", "You are invited").await;
    let link = link(&mail, APP_ORIGIN);
    assert!(
        link.starts_with(&format!("{APP_ORIGIN}/join?from=mail&token=")),
        "{link}"
    );
    let (bob, _, _) = member(&app, "bob@example.com").await;
    let token = link.rsplit("token=").next().unwrap();
    let (status, body) = accept(&app, &bob, token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roles"], json!(["member"]), "the default role");
}

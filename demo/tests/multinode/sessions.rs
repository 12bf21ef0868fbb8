//! Ending sessions on one node ends them on the other: logout, "end every
//! other session", a password change (every other session, through the
//! `token_version` bump) and an admin's deactivation (every session).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::*;

const IP: &str = "198.51.100.2";
const EMAIL: &str = "many@example.com";

/// Checks that a session is dead on both nodes: its access token is refused
/// and its refresh token cannot rotate.
async fn assert_dead(cluster: &Cluster, (access, refresh): &(String, String), what: &str) {
    for node in cluster.nodes() {
        node.me(IP, access).await.expect_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            &format!("{what}: access token on {}", node.name),
        );
    }
    // Only the first refresh attempt would rotate; a dead family refuses it.
    cluster.b.refresh(IP, refresh).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
        &format!("{what}: refresh token on B"),
    );
    cluster.a.refresh(IP, refresh).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
        &format!("{what}: refresh token on A"),
    );
}

async fn assert_alive(cluster: &Cluster, access: &str, what: &str) {
    for node in cluster.nodes() {
        node.me(IP, access)
            .await
            .expect(StatusCode::OK, &format!("{what} on {}", node.name));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_ended_on_one_node_are_dead_on_the_other() {
    let cluster = Cluster::start().await;
    let (a, b) = (&cluster.a, &cluster.b);
    let user = a.register(IP, EMAIL).await;

    // Four devices, signed in on alternating nodes.
    let one = a.login(IP, EMAIL, PASSWORD).await;
    let two = b.login(IP, EMAIL, PASSWORD).await;
    let three = a.login(IP, EMAIL, PASSWORD).await;
    let four = b.login(IP, EMAIL, PASSWORD).await;
    for (session, what) in [
        (&one, "one"),
        (&two, "two"),
        (&three, "three"),
        (&four, "four"),
    ] {
        assert_alive(&cluster, &session.0, what).await;
    }

    // Logout on A of a session opened on B.
    a.call(Method::POST, "/auth/logout", IP, None, Some(&two.0))
        .await
        .expect(StatusCode::NO_CONTENT, "logout on A");
    assert_dead(&cluster, &two, "logged out on A").await;
    assert_alive(&cluster, &one.0, "one after the logout").await;

    // "End every other session" on B, from the session opened on A: three
    // and four (opened on A and B) end; two was already gone.
    let body = b
        .call(
            Method::POST,
            "/auth/sessions/revoke-others",
            IP,
            None,
            Some(&one.0),
        )
        .await
        .expect(StatusCode::OK, "revoke-others on B");
    assert_eq!(body, json!({"revoked": 2}));
    assert_dead(&cluster, &three, "revoked by revoke-others on B").await;
    assert_dead(&cluster, &four, "revoked by revoke-others on B").await;
    assert_alive(&cluster, &one.0, "the session that revoked the others").await;
    let list = a
        .call(Method::GET, "/auth/sessions", IP, None, Some(&one.0))
        .await
        .expect(StatusCode::OK, "sessions on A");
    let sessions = list["sessions"].as_array().expect("a session list");
    assert_eq!(sessions.len(), 1, "{list}");
    assert_eq!(sessions[0]["current"], true);

    // A password change on B ends every other session, through the
    // token_version both nodes check on every request.
    let five = a.login(IP, EMAIL, PASSWORD).await;
    let new_password = "Vx7$kR4!pL-zebra";
    let body = b
        .call(
            Method::POST,
            "/auth/account/change-password",
            IP,
            Some(json!({"current_password": PASSWORD, "new_password": new_password})),
            Some(&one.0),
        )
        .await
        .expect(StatusCode::OK, "change-password on B");
    let six = pair(&body);
    assert_dead(
        &cluster,
        &five,
        "other session after a password change on B",
    )
    .await;
    assert_alive(&cluster, &six.0, "the new pair of the password change").await;
    let body = a
        .refresh(IP, &six.1)
        .await
        .expect(StatusCode::OK, "refresh of the new pair on A");
    let six = pair(&body);
    // The new password works on both nodes, the old one on neither.
    for node in cluster.nodes() {
        node.call(
            Method::POST,
            "/auth/login",
            IP,
            Some(json!({"email": EMAIL, "password": PASSWORD})),
            None,
        )
        .await
        .expect_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            &format!("old password on {}", node.name),
        );
    }
    let seven = b.login(IP, EMAIL, new_password).await;

    // An admin on A deactivates the user: every session ends on both nodes,
    // and nobody can sign in as the user on either.
    let (root, _) = a.login(IP, SUPERUSER_EMAIL, SUPERUSER_PASSWORD).await;
    let id = user["id"].as_str().expect("a user id");
    a.call(
        Method::PATCH,
        &format!("/users/{id}"),
        IP,
        Some(json!({"is_active": false})),
        Some(&root),
    )
    .await
    .expect(StatusCode::OK, "deactivate on A");
    assert_dead(&cluster, &six, "deactivated on A").await;
    assert_dead(&cluster, &seven, "deactivated on A").await;
    for node in cluster.nodes() {
        node.call(
            Method::POST,
            "/auth/login",
            IP,
            Some(json!({"email": EMAIL, "password": new_password})),
            None,
        )
        .await
        .expect_error(
            StatusCode::FORBIDDEN,
            "USER_INACTIVE",
            &format!("sign-in of the deactivated user on {}", node.name),
        );
    }
    // The superuser's own session, opened on A, is untouched on B.
    assert_alive(&cluster, &root, "the admin's session").await;
}

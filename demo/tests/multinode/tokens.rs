//! Tokens move between nodes; reuse of a rotated refresh token, seen by the
//! other node, revokes the family on both.

use reqwest::StatusCode;

use crate::*;

const IP: &str = "198.51.100.1";

#[tokio::test(flavor = "multi_thread")]
async fn a_token_issued_by_one_node_refreshes_on_the_other_and_reuse_revokes_on_both() {
    let cluster = Cluster::start().await;
    let (a, b) = (&cluster.a, &cluster.b);

    let user = a.register(IP, "roam@example.com").await;
    let (access1, refresh1) = a.login(IP, "roam@example.com", PASSWORD).await;

    // A's access token is good on B.
    let me = b.me(IP, &access1).await.expect(StatusCode::OK, "me on B");
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["email"], "roam@example.com");

    // A's refresh token rotates on B; the new pair works on A.
    let body = b
        .refresh(IP, &refresh1)
        .await
        .expect(StatusCode::OK, "refresh on B");
    let (access2, refresh2) = pair(&body);
    assert_ne!(refresh2, refresh1);
    let me = a.me(IP, &access2).await.expect(StatusCode::OK, "me on A");
    assert_eq!(me["id"], user["id"]);

    // A second session of the same user, opened on B, must outlive the
    // reuse of the first session's token.
    let (other_access, other_refresh) = b.login(IP, "roam@example.com", PASSWORD).await;

    // The rotated token comes back on A: reuse. The family dies on both
    // nodes, the newest token included.
    a.refresh(IP, &refresh1).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
        "reused refresh token on A",
    );
    for node in cluster.nodes() {
        node.refresh(IP, &refresh2).await.expect_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_REFRESH_TOKEN",
            &format!(
                "newest refresh token of the revoked family on {}",
                node.name
            ),
        );
        for (token, which) in [(&access1, "first"), (&access2, "newest")] {
            node.me(IP, token).await.expect_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                &format!(
                    "{which} access token of the revoked family on {}",
                    node.name
                ),
            );
        }
        node.me(IP, &other_access)
            .await
            .expect(StatusCode::OK, "the other session after the reuse");
    }
    // Reuse seen by B, of a token rotated on A, also revokes: rotate the
    // surviving session on A, then present its old token to B.
    let body = a
        .refresh(IP, &other_refresh)
        .await
        .expect(StatusCode::OK, "refresh on A");
    let (other_access2, other_refresh2) = pair(&body);
    b.refresh(IP, &other_refresh).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
        "reused refresh token on B",
    );
    a.refresh(IP, &other_refresh2).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
        "newest refresh token after the reuse on B",
    );
    a.me(IP, &other_access2).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "newest access token after the reuse on B",
    );
}

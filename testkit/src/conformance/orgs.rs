//! Organizations: what every store guarantees for them.

use std::sync::Arc;

use chrono::Duration;
use futures_util::future::join_all;
use portcullis::authz::Permission;
use portcullis::store::{Invitation, MemberChange, Membership, OrgRole, Organization};
use portcullis::{OpaqueToken, Store, UserId};

use super::{inserted_user, is_conflict, now};

fn roles(names: &[&str]) -> Vec<String> {
    names.iter().map(|r| (*r).to_owned()).collect()
}

async fn org_with_owner(store: &dyn Store, owner: &UserId) -> Organization {
    let org = Organization::new("Acme", now());
    store
        .insert_org(
            &org,
            &Membership::new(&org.id, owner.clone(), roles(&["owner"]), now()),
        )
        .await
        .expect("insert org");
    org
}

fn invitation(org: &Organization, email: &str, by: &UserId) -> (Invitation, OpaqueToken) {
    let token = OpaqueToken::generate();
    let invitation = Invitation::new(
        &org.id,
        email,
        roles(&["member"]),
        by.clone(),
        token.hash(),
        now(),
        now() + Duration::days(7),
    );
    (invitation, token)
}

/// Organizations and memberships: create with the owner, find, rename,
/// list both ways, one membership per user (also under 16 concurrent
/// inserts), delete with everything in it, and deleting a user removes
/// their memberships.
pub async fn orgs_and_memberships(store: Arc<dyn Store>) {
    let ada = inserted_user(&*store, "ada@example.com").await;
    let bob = inserted_user(&*store, "bob@example.com").await;
    let org = org_with_owner(&*store, &ada.id).await;
    assert_eq!(
        store.find_org(&org.id).await.expect("find"),
        Some(org.clone())
    );
    assert!(store
        .rename_org(&org.id, "Acme Ltd", now())
        .await
        .expect("rename"));
    assert!(!store.rename_org("nope", "x", now()).await.expect("rename"));
    assert_eq!(
        store
            .find_org(&org.id)
            .await
            .expect("find")
            .expect("org")
            .name,
        "Acme Ltd"
    );
    let tasks = (0..16).map(|_| {
        let store = store.clone();
        let m = Membership::new(&org.id, bob.id.clone(), roles(&["member"]), now());
        tokio::spawn(async move { store.insert_membership(&m).await })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results.iter().all(|r| r.is_ok() || is_conflict(r)));
    let members = store.list_members(&org.id).await.expect("members");
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].user_id, ada.id);
    let mine = store.list_user_memberships(&bob.id).await.expect("mine");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].org_id, org.id);
    assert_eq!(
        store
            .find_membership(&org.id, &bob.id)
            .await
            .expect("find")
            .expect("member")
            .roles,
        roles(&["member"])
    );
    // Deleting a user removes their memberships.
    assert!(store.delete_user(&bob.id).await.expect("delete user"));
    assert!(store
        .find_membership(&org.id, &bob.id)
        .await
        .expect("find")
        .is_none());
    assert!(store.delete_org(&org.id).await.expect("delete"));
    assert!(!store.delete_org(&org.id).await.expect("delete twice"));
    assert!(store.find_org(&org.id).await.expect("find").is_none());
    assert!(store
        .list_members(&org.id)
        .await
        .expect("members")
        .is_empty());
    assert!(store
        .list_user_memberships(&ada.id)
        .await
        .expect("mine")
        .is_empty());
}

/// The last owner can be neither demoted nor removed; with two owners,
/// 16 concurrent rounds of both removing each other (and both demoting
/// each other) always leave exactly one owner.
pub async fn an_org_always_keeps_an_owner(store: Arc<dyn Store>) {
    let ada = inserted_user(&*store, "ada@example.com").await;
    let bob = inserted_user(&*store, "bob@example.com").await;
    let org = org_with_owner(&*store, &ada.id).await;
    let member = roles(&["member"]);
    assert_eq!(
        store
            .set_member_roles(&org.id, &ada.id, &member)
            .await
            .expect("demote"),
        MemberChange::LastOwner
    );
    assert_eq!(
        store
            .remove_membership(&org.id, &ada.id)
            .await
            .expect("remove"),
        MemberChange::LastOwner
    );
    assert_eq!(
        store
            .set_member_roles(&org.id, &bob.id, &member)
            .await
            .expect("roles"),
        MemberChange::NotFound
    );
    assert_eq!(
        store
            .remove_membership(&org.id, &bob.id)
            .await
            .expect("remove"),
        MemberChange::NotFound
    );
    for round in 0..16 {
        // Bob becomes a second owner (as a member first, then promoted).
        store
            .insert_membership(&Membership::new(
                &org.id,
                bob.id.clone(),
                member.clone(),
                now(),
            ))
            .await
            .expect("join");
        assert_eq!(
            store
                .set_member_roles(&org.id, &bob.id, &roles(&["owner"]))
                .await
                .expect("promote"),
            MemberChange::Done
        );
        let (a, b) = if round % 2 == 0 {
            let (s1, s2) = (store.clone(), store.clone());
            let (org1, org2) = (org.id.clone(), org.id.clone());
            let (u1, u2) = (ada.id.clone(), bob.id.clone());
            tokio::join!(
                tokio::spawn(async move { s1.remove_membership(&org1, &u1).await }),
                tokio::spawn(async move { s2.remove_membership(&org2, &u2).await }),
            )
        } else {
            let (s1, s2) = (store.clone(), store.clone());
            let (org1, org2) = (org.id.clone(), org.id.clone());
            let (u1, u2) = (ada.id.clone(), bob.id.clone());
            let (m1, m2) = (member.clone(), member.clone());
            tokio::join!(
                tokio::spawn(async move { s1.set_member_roles(&org1, &u1, &m1).await }),
                tokio::spawn(async move { s2.set_member_roles(&org2, &u2, &m2).await }),
            )
        };
        let outcomes = [a.expect("task").expect("a"), b.expect("task").expect("b")];
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == MemberChange::Done)
                .count(),
            1,
            "round {round}: {outcomes:?}"
        );
        assert!(outcomes.contains(&MemberChange::LastOwner));
        let owners: Vec<Membership> = store
            .list_members(&org.id)
            .await
            .expect("members")
            .into_iter()
            .filter(Membership::is_owner)
            .collect();
        assert_eq!(owners.len(), 1, "round {round}");
        // Back to Ada alone as the owner.
        match store.find_membership(&org.id, &ada.id).await.expect("find") {
            None => store
                .insert_membership(&Membership::new(
                    &org.id,
                    ada.id.clone(),
                    roles(&["owner"]),
                    now(),
                ))
                .await
                .expect("rejoin"),
            Some(m) if !m.is_owner() => assert_eq!(
                store
                    .set_member_roles(&org.id, &ada.id, &roles(&["owner"]))
                    .await
                    .expect("promote"),
                MemberChange::Done
            ),
            Some(_) => {}
        }
        store
            .remove_membership(&org.id, &bob.id)
            .await
            .expect("leave");
        assert!(store
            .find_membership(&org.id, &bob.id)
            .await
            .expect("find")
            .is_none());
    }
}

/// Invitations: one pending per address and organization (also under 16
/// concurrent inserts; an expired or revoked one no longer counts), listed
/// while pending, revoked once, accepted once of 16 concurrent accepts, and
/// never after expiry or revocation.
pub async fn invitations_are_unique_and_single_use(store: Arc<dyn Store>) {
    let ada = inserted_user(&*store, "ada@example.com").await;
    let org = org_with_owner(&*store, &ada.id).await;
    let made: Vec<(Invitation, OpaqueToken)> = (0..16)
        .map(|_| invitation(&org, "bob@example.com", &ada.id))
        .collect();
    let tasks = made.iter().map(|(inv, _)| {
        let store = store.clone();
        let inv = inv.clone();
        tokio::spawn(async move { store.insert_invitation(&inv, now()).await })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results.iter().all(|r| r.is_ok() || is_conflict(r)));
    let winner = results.iter().position(Result::is_ok).expect("one");
    let (pending, token) = &made[winner];
    let listed = store.list_invitations(&org.id, now()).await.expect("list");
    assert_eq!(listed, vec![pending.clone()]);
    assert_eq!(
        store
            .find_invitation_by_token(&token.hash())
            .await
            .expect("find")
            .expect("invitation")
            .id,
        pending.id
    );
    // 16 concurrent accepts: exactly one gets it.
    let tasks = (0..16).map(|_| {
        let store = store.clone();
        let hash = token.hash();
        tokio::spawn(async move { store.accept_invitation(&hash, now()).await })
    });
    let accepted: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("accept"))
        .filter(Option::is_some)
        .collect();
    assert_eq!(accepted.len(), 1);
    assert!(store
        .list_invitations(&org.id, now())
        .await
        .expect("list")
        .is_empty());
    // Accepted: the address may be invited again; revoked ones neither
    // accept nor hold the slot.
    let (again, again_token) = invitation(&org, "bob@example.com", &ada.id);
    store
        .insert_invitation(&again, now())
        .await
        .expect("re-invite");
    assert!(!store
        .revoke_invitation("other", &again.id)
        .await
        .expect("revoke"));
    assert!(store
        .revoke_invitation(&org.id, &again.id)
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_invitation(&org.id, &again.id)
        .await
        .expect("revoke twice"));
    assert!(store
        .accept_invitation(&again_token.hash(), now())
        .await
        .expect("accept")
        .is_none());
    // Expired: not accepted, not listed, and the slot is free.
    let (third, third_token) = invitation(&org, "bob@example.com", &ada.id);
    store.insert_invitation(&third, now()).await.expect("third");
    let later = now() + Duration::days(8);
    assert!(store
        .list_invitations(&org.id, later)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .accept_invitation(&third_token.hash(), later)
        .await
        .expect("accept")
        .is_none());
    let (fourth, _) = invitation(&org, "bob@example.com", &ada.id);
    store
        .insert_invitation(&fourth, later)
        .await
        .expect("fourth");
}

/// Custom organization roles: unique name per organization, listed by
/// name, updated, and deleting one takes it off its holders.
pub async fn org_roles_are_unique_and_deleted_from_members(store: Arc<dyn Store>) {
    let ada = inserted_user(&*store, "ada@example.com").await;
    let bob = inserted_user(&*store, "bob@example.com").await;
    let org = org_with_owner(&*store, &ada.id).await;
    let other = org_with_owner(&*store, &ada.id).await;
    let perm = |p: &str| Permission::parse(p).expect("permission");
    let role = OrgRole::new(&org.id, "billing", None, vec![perm("billing:*")], now());
    store.insert_org_role(&role).await.expect("insert");
    assert!(is_conflict(&store.insert_org_role(&role).await));
    store
        .insert_org_role(&OrgRole::new(&other.id, "billing", None, vec![], now()))
        .await
        .expect("same name elsewhere");
    store
        .insert_org_role(&OrgRole::new(&org.id, "auditor", None, vec![], now()))
        .await
        .expect("second");
    let names: Vec<String> = store
        .list_org_roles(&org.id)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, roles(&["auditor", "billing"]));
    let mut changed = role.clone();
    changed.permissions = vec![perm("billing:read")];
    changed.description = Some("reads invoices".into());
    assert!(store.update_org_role(&changed).await.expect("update"));
    let stored = store
        .list_org_roles(&org.id)
        .await
        .expect("list")
        .into_iter()
        .find(|r| r.name == "billing")
        .expect("billing");
    assert_eq!(stored.permissions, changed.permissions);
    assert_eq!(stored.description, changed.description);
    store
        .insert_membership(&Membership::new(
            &org.id,
            bob.id.clone(),
            roles(&["member", "billing"]),
            now(),
        ))
        .await
        .expect("join");
    assert!(store
        .delete_org_role(&org.id, "billing")
        .await
        .expect("delete"));
    assert!(!store
        .delete_org_role(&org.id, "billing")
        .await
        .expect("twice"));
    assert_eq!(
        store
            .find_membership(&org.id, &bob.id)
            .await
            .expect("find")
            .expect("member")
            .roles,
        roles(&["member"])
    );
    assert_eq!(
        store.list_org_roles(&other.id).await.expect("list").len(),
        1
    );
}

/// A session's active organization is set and cleared.
pub async fn session_org_is_set_and_cleared(store: Arc<dyn Store>) {
    let ada = inserted_user(&*store, "ada@example.com").await;
    let (session, _) = super::session(&*store, &ada, now(), Duration::days(1)).await;
    assert!(store
        .set_session_org(&session.id, Some("org-1"))
        .await
        .expect("set"));
    let (_, read) = store
        .find_session_user(&ada.id, &session.id)
        .await
        .expect("read")
        .expect("session");
    assert_eq!(read.org.as_deref(), Some("org-1"));
    assert!(store
        .set_session_org(&session.id, None)
        .await
        .expect("clear"));
    let read = store
        .find_session(&session.id)
        .await
        .expect("read")
        .expect("session");
    assert_eq!(read.org, None);
    assert!(!store
        .set_session_org(&portcullis::SessionId::new("nope"), None)
        .await
        .expect("unknown"));
}

//! The store conformance suite: what every [`Store`] must guarantee.
//!
//! Each check takes a fresh, empty store. Concurrency checks run 16 truly
//! parallel calls (use a multi-thread runtime, as
//! [`store_conformance_tests!`](crate::store_conformance_tests) does).
//!
//! Checks fail by panicking, like any test assertion.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod orgs;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use portcullis::factor::{Sealed, Sealer};
use portcullis::store::{
    Backoff, Factor, FactorKind, PasskeyRecord, PasswordGuard, RefreshToken, Reservation, Rotation,
    StoreError, UserCursor, UserQuery,
};
use portcullis::{
    ClientInfo, LinkedAccount, OneTimeToken, OpaqueToken, Session, Store, TokenHash, User, UserId,
    UserPatch,
};

pub use orgs::{
    an_org_always_keeps_an_owner, invitations_are_unique_and_single_use,
    org_roles_are_unique_and_deleted_from_members, orgs_and_memberships,
    session_org_is_set_and_cleared,
};

/// One conformance check: it takes a fresh, empty store.
pub type Check =
    fn(Arc<dyn Store>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Every check by name, the list [`store_conformance_tests!`](crate::store_conformance_tests)
/// generates tests from: to run them all on one store setup (e.g. under
/// command monitoring).
pub fn all() -> Vec<(&'static str, Check)> {
    crate::__with_conformance_checks!(@list)
}

/// Now, at the millisecond precision every store keeps.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or(DateTime::UNIX_EPOCH)
}

fn user(email: &str) -> User {
    User::new(email, now()).unwrap_or_else(|e| panic!("valid test email {email}: {e}"))
}

async fn inserted_user(store: &dyn Store, email: &str) -> User {
    let user = user(email);
    store.insert_user(&user).await.expect("insert user");
    user
}

/// A session of `user` with its first refresh token; returns the raw token.
async fn session(
    store: &dyn Store,
    user: &User,
    at: DateTime<Utc>,
    ttl: Duration,
) -> (Session, OpaqueToken) {
    let session = Session::new(user, "credentials", at, ttl, ClientInfo::default());
    let token = OpaqueToken::generate();
    store
        .insert_session(&session, &RefreshToken::new(token.hash(), &session, at))
        .await
        .expect("insert session");
    (session, token)
}

fn is_conflict<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(_)))
}

/// Insert, find by id and email, update, compare-and-set of the password
/// hash, listing with pagination.
pub async fn users_crud(store: Arc<dyn Store>) {
    let mut alice = user("Alice@Example.com");
    alice.name = Some("Alice".into());
    alice.password_hash = Some("$argon2id$old".into());
    alice.metadata.insert(
        "plan".into(),
        serde_json::json!({"tier": "pro", "seats": 3}),
    );
    store.insert_user(&alice).await.expect("insert");

    let found = store
        .find_user(&alice.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(found.id, alice.id);
    assert_eq!(found.email, "Alice@Example.com");
    assert_eq!(found.email_normalized, "alice@example.com");
    assert_eq!(found.name.as_deref(), Some("Alice"));
    assert_eq!(found.password_hash.as_deref(), Some("$argon2id$old"));
    assert_eq!(found.created_at, alice.created_at);
    assert_eq!(found.metadata, alice.metadata);
    assert!(found.is_active && !found.is_superuser && !found.email_verified);
    let by_email = store
        .find_user_by_email("alice@example.com")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(by_email.id, alice.id);
    assert!(store
        .find_user_by_email("nobody@example.com")
        .await
        .expect("find")
        .is_none());

    // Same normalised email: conflict.
    let result = store.insert_user(&user("ALICE@example.com")).await;
    assert!(is_conflict(&result), "{result:?}");

    // Update; moving onto a taken email is a conflict.
    let bob = inserted_user(&*store, "bob@example.com").await;
    let mut changed = found.clone();
    changed.name = Some("Alice B.".into());
    changed.email_verified = true;
    assert!(store.update_user(&changed).await.expect("update"));
    let again = store
        .find_user(&alice.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(again.name.as_deref(), Some("Alice B."));
    assert!(again.email_verified);
    let mut stolen = bob.clone();
    stolen.email_normalized = "alice@example.com".into();
    assert!(is_conflict(&store.update_user(&stolen).await));
    assert!(!store
        .update_user(&user("ghost@example.com"))
        .await
        .expect("update"));

    // Compare-and-set of the hash.
    let t = now();
    assert!(store
        .set_password_hash(
            &alice.id,
            PasswordGuard::Equals("$argon2id$wrong"),
            "$argon2id$new",
            false,
            t
        )
        .await
        .expect("cas")
        .is_none());
    assert!(store
        .set_password_hash(
            &alice.id,
            PasswordGuard::Equals("$argon2id$old"),
            "$argon2id$new",
            false,
            t
        )
        .await
        .expect("cas")
        .is_some());
    assert!(store
        .set_password_hash(&bob.id, PasswordGuard::Unset, "$argon2id$first", false, t)
        .await
        .expect("cas from none")
        .is_some());
    let alice_now = store
        .find_user(&alice.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(alice_now.password_hash.as_deref(), Some("$argon2id$new"));

    // Listing: ordered by creation, paginated, with the total.
    for i in 0..3 {
        inserted_user(&*store, &format!("user{i}@example.com")).await;
    }
    let (page, total) = store
        .list_users(&UserQuery::page(1, 2))
        .await
        .expect("list");
    assert_eq!(total, Some(5));
    assert_eq!(page.len(), 2);
    let (all, _) = store
        .list_users(&UserQuery::page(0, 100))
        .await
        .expect("list");
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].created_at <= w[1].created_at));
}

/// 16 concurrent inserts of one normalised email: exactly one succeeds.
pub async fn email_is_unique_under_concurrent_inserts(store: Arc<dyn Store>) {
    let tasks = (0..16).map(|i| {
        let store = store.clone();
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            "RACE@example.com"
        };
        tokio::spawn(async move { store.insert_user(&user(email)).await })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| is_conflict(r)).count();
    assert_eq!((ok, conflicts), (1, 15), "{results:?}");
    let (_, total) = store
        .list_users(&UserQuery::page(0, 10))
        .await
        .expect("list");
    assert_eq!(total, Some(1));
}

/// 16 concurrent bumps: the version ends 16 higher, each bump saw a
/// distinct value.
pub async fn token_version_bumps_are_atomic(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "ver@example.com").await;
    let tasks = (0..16).map(|_| {
        let store = store.clone();
        let id = user.id.clone();
        tokio::spawn(async move { store.bump_token_version(&id, now()).await })
    });
    let mut seen: Vec<u64> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| {
            r.expect("task")
                .expect("bump")
                .expect("user exists")
                .token_version
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=16).collect::<Vec<_>>());
    let missing = store
        .bump_token_version(&portcullis::UserId::new("missing"), now())
        .await
        .expect("bump");
    assert!(missing.is_none());
}

/// `patch_user` writes only the fields the patch sets (metadata as a
/// whole), always `updated_at`, and returns the updated user; a taken email
/// is a conflict that changes nothing; a moved email is found under its new
/// address only; a bump adds exactly one to `token_version`.
pub async fn patch_user_applies_only_set_fields(store: Arc<dyn Store>) {
    let mut alice = user("Alice@Example.com");
    alice.name = Some("Alice".into());
    alice.password_hash = Some("$argon2id$alice".into());
    alice
        .metadata
        .insert("old".into(), serde_json::json!({"keep": false}));
    store.insert_user(&alice).await.expect("insert");
    let bob = inserted_user(&*store, "bob@example.com").await;

    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "plan".into(),
        serde_json::json!({"tier": "team", "seats": 5}),
    );
    let t1 = alice.created_at + Duration::seconds(1);
    let patched = store
        .patch_user(
            &alice.id,
            &UserPatch::new()
                .name(Some("Alice B.".into()))
                .metadata(metadata.clone())
                .email_verified(true)
                .is_superuser(true),
            t1,
        )
        .await
        .expect("patch")
        .expect("user exists");
    assert_eq!(patched.id, alice.id);
    assert_eq!(patched.name.as_deref(), Some("Alice B."));
    assert_eq!(patched.metadata, metadata, "metadata is replaced whole");
    assert!(patched.email_verified && patched.is_superuser && patched.is_active);
    assert_eq!(patched.email, "Alice@Example.com");
    assert_eq!(patched.email_normalized, "alice@example.com");
    assert_eq!(patched.password_hash.as_deref(), Some("$argon2id$alice"));
    assert_eq!(patched.created_at, alice.created_at);
    assert_eq!(patched.updated_at, t1);
    assert_eq!(patched.token_version, alice.token_version);
    let stored = store
        .find_user(&alice.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(stored.name.as_deref(), Some("Alice B."));
    assert_eq!(stored.metadata, metadata);
    assert!(stored.email_verified && stored.is_superuser && stored.is_active);
    assert_eq!(stored.password_hash.as_deref(), Some("$argon2id$alice"));
    assert_eq!(stored.created_at, alice.created_at);
    assert_eq!(stored.updated_at, t1);

    // `Some(None)` clears the name; fields of the earlier patch stay.
    let t2 = t1 + Duration::seconds(1);
    let cleared = store
        .patch_user(&alice.id, &UserPatch::new().name(None).is_active(false), t2)
        .await
        .expect("patch")
        .expect("user exists");
    assert_eq!(cleared.name, None);
    assert!(!cleared.is_active && cleared.is_superuser && cleared.email_verified);
    assert_eq!(cleared.metadata, metadata);
    assert!(cleared.app_metadata.is_empty());
    assert_eq!(cleared.updated_at, t2);

    // Server-only metadata is its own field: writing it leaves the
    // profile metadata alone, and it round-trips.
    let mut app_metadata = serde_json::Map::new();
    app_metadata.insert("open_invoice".into(), serde_json::json!(true));
    let flagged = store
        .patch_user(
            &alice.id,
            &UserPatch::new().app_metadata(app_metadata.clone()),
            t2,
        )
        .await
        .expect("patch")
        .expect("user exists");
    assert_eq!(flagged.app_metadata, app_metadata);
    assert_eq!(flagged.metadata, metadata);
    let stored = store
        .find_user(&alice.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(stored.app_metadata, app_metadata);
    assert_eq!(stored.metadata, metadata);
    let mut again = metadata.clone();
    again.insert("theme".into(), serde_json::json!("dark"));
    let profiled = store
        .patch_user(&alice.id, &UserPatch::new().metadata(again.clone()), t2)
        .await
        .expect("patch")
        .expect("user exists");
    assert_eq!(profiled.metadata, again);
    assert_eq!(
        profiled.app_metadata, app_metadata,
        "profile writes keep it"
    );
    assert_eq!(
        store
            .find_user(&alice.id)
            .await
            .expect("find")
            .expect("exists")
            .name,
        None
    );

    // A missing user.
    assert!(store
        .patch_user(
            &UserId::new("missing"),
            &UserPatch::new().is_active(true),
            t2
        )
        .await
        .expect("patch")
        .is_none());

    // Another user's email: conflict, and nothing of the patch is written.
    let taken = UserPatch::new()
        .email("BOB@example.com")
        .expect("valid email")
        .name(Some("Thief".into()))
        .bump_token_version();
    let result = store
        .patch_user(&alice.id, &taken, t2 + Duration::seconds(1))
        .await;
    assert!(is_conflict(&result), "{result:?}");
    let unchanged = store
        .find_user(&alice.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(unchanged.email_normalized, "alice@example.com");
    assert_eq!(unchanged.name, None);
    assert_eq!(unchanged.token_version, alice.token_version);
    assert_eq!(unchanged.updated_at, t2);
    assert_eq!(
        store
            .find_user_by_email("bob@example.com")
            .await
            .expect("find")
            .expect("bob exists")
            .id,
        bob.id
    );

    // A free email: found under the new address only.
    let moved = store
        .patch_user(
            &alice.id,
            &UserPatch::new()
                .email("Alice.New@Example.com")
                .expect("valid email"),
            t2,
        )
        .await
        .expect("patch")
        .expect("user exists");
    assert_eq!(moved.email, "Alice.New@Example.com");
    assert_eq!(moved.email_normalized, "alice.new@example.com");
    assert!(store
        .find_user_by_email("alice@example.com")
        .await
        .expect("find")
        .is_none());
    assert_eq!(
        store
            .find_user_by_email("alice.new@example.com")
            .await
            .expect("find")
            .expect("found by the new email")
            .id,
        alice.id
    );
    // The old email is free again.
    inserted_user(&*store, "alice@example.com").await;

    // A bump adds exactly one; a patch without one adds nothing.
    let bumped = store
        .patch_user(&alice.id, &UserPatch::new().bump_token_version(), t2)
        .await
        .expect("patch")
        .expect("user exists");
    assert_eq!(bumped.token_version, moved.token_version + 1);
    let not_bumped = store
        .patch_user(&alice.id, &UserPatch::new().email_verified(false), t2)
        .await
        .expect("patch")
        .expect("user exists");
    assert_eq!(not_bumped.token_version, bumped.token_version);
    assert_eq!(
        store
            .find_user(&alice.id)
            .await
            .expect("find")
            .expect("exists")
            .token_version,
        alice.token_version + 1
    );
}

/// `set_password_hash` writes only when the current hash passes the guard
/// (`Unset`: no password; `Equals`: exactly that hash; `Any`), and bumps
/// `token_version` in the same write only when asked.
pub async fn password_guards(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "guard@example.com").await;
    let hash = |store: Arc<dyn Store>, id: UserId| async move {
        store
            .find_user(&id)
            .await
            .expect("find")
            .expect("exists")
            .password_hash
    };
    let t = user.created_at + Duration::seconds(1);

    // Set-password: only while there is none.
    let set = store
        .set_password_hash(&user.id, PasswordGuard::Unset, "$argon2id$one", false, t)
        .await
        .expect("set")
        .expect("no password yet: written");
    assert_eq!(set.password_hash.as_deref(), Some("$argon2id$one"));
    assert_eq!(set.token_version, user.token_version);
    assert_eq!(set.updated_at, t);
    assert!(store
        .set_password_hash(&user.id, PasswordGuard::Unset, "$argon2id$two", false, t)
        .await
        .expect("set")
        .is_none());
    assert_eq!(
        hash(store.clone(), user.id.clone()).await.as_deref(),
        Some("$argon2id$one")
    );

    // Compare-and-set on the exact hash.
    assert!(store
        .set_password_hash(
            &user.id,
            PasswordGuard::Equals("$argon2id$wrong"),
            "$argon2id$two",
            true,
            t
        )
        .await
        .expect("set")
        .is_none());
    let unchanged = store
        .find_user(&user.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(unchanged.password_hash.as_deref(), Some("$argon2id$one"));
    assert_eq!(
        unchanged.token_version, user.token_version,
        "a refused write bumps nothing"
    );
    let changed = store
        .set_password_hash(
            &user.id,
            PasswordGuard::Equals("$argon2id$one"),
            "$argon2id$two",
            true,
            t,
        )
        .await
        .expect("set")
        .expect("right hash: written");
    assert_eq!(changed.password_hash.as_deref(), Some("$argon2id$two"));
    assert_eq!(changed.token_version, user.token_version + 1);

    // Any: always written; bumped only when asked.
    let reset = store
        .set_password_hash(&user.id, PasswordGuard::Any, "$argon2id$three", false, t)
        .await
        .expect("set")
        .expect("any: written");
    assert_eq!(reset.password_hash.as_deref(), Some("$argon2id$three"));
    assert_eq!(reset.token_version, user.token_version + 1);
    let reset = store
        .set_password_hash(&user.id, PasswordGuard::Any, "$argon2id$four", true, t)
        .await
        .expect("set")
        .expect("any: written");
    assert_eq!(reset.password_hash.as_deref(), Some("$argon2id$four"));
    assert_eq!(reset.token_version, user.token_version + 2);
    let stored = store
        .find_user(&user.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(stored.password_hash.as_deref(), Some("$argon2id$four"));
    assert_eq!(stored.token_version, user.token_version + 2);

    // A missing user.
    assert!(store
        .set_password_hash(
            &UserId::new("missing"),
            PasswordGuard::Any,
            "$argon2id$x",
            true,
            t
        )
        .await
        .expect("set")
        .is_none());
}

/// 16 concurrent patches, each setting a different name and bumping the
/// version: no update is lost (the version ends exactly 16 higher, each
/// patch saw a distinct value) and the name is one of them.
pub async fn patches_and_bumps_do_not_lose_updates_under_concurrency(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "patches@example.com").await;
    let tasks = (0..16).map(|i| {
        let store = store.clone();
        let id = user.id.clone();
        tokio::spawn(async move {
            let patch = UserPatch::new()
                .name(Some(format!("name {i}")))
                .bump_token_version();
            store.patch_user(&id, &patch, now()).await
        })
    });
    let mut seen: Vec<u64> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| {
            r.expect("task")
                .expect("patch")
                .expect("user exists")
                .token_version
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=16).map(|i| user.token_version + i).collect::<Vec<_>>()
    );
    let stored = store
        .find_user(&user.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(stored.token_version, user.token_version + 16);
    let name = stored.name.expect("a name was set");
    assert!(
        (0..16).any(|i| name == format!("name {i}")),
        "unexpected name {name:?}"
    );
}

/// `list_users` with an email prefix: only users whose normalised email
/// starts with it, the total counting only those, paginated in creation
/// order; regex metacharacters in the prefix match literally.
pub async fn list_users_filters_by_email_prefix(store: Arc<dyn Store>) {
    for email in [
        "alice@example.com",
        "bob@example.com",
        "ALINA@example.com",
        "malice@example.com",
        "alibaba@example.com",
        "ali@example.org",
        "a.b@example.com",
        "axb@example.com",
        "a+b@example.com",
        "aab@example.com",
        "a$b@example.com",
        "a|b@example.com",
        "a*b@example.com",
        "a?b@example.com",
        "^caret@example.com",
        "{brace}@example.com",
        "a-b@example.com",
        "a/b@example.com",
        "a#b@example.com",
        "a&b@example.com",
        "a~b@example.com",
        "a=b@example.com",
        "a%b@example.com",
    ] {
        inserted_user(&*store, email).await;
    }
    let (all, total) = store
        .list_users(&UserQuery::page(0, 100))
        .await
        .expect("list");
    assert_eq!(total, Some(23));
    let expected = |prefix: &str| -> Vec<UserId> {
        all.iter()
            .filter(|u| u.email_normalized.starts_with(prefix))
            .map(|u| u.id.clone())
            .collect()
    };
    let ids = |users: &[User]| users.iter().map(|u| u.id.clone()).collect::<Vec<_>>();

    // "ALI" is lower-cased by the query: alice, alina, alibaba, ali.
    let query = UserQuery::page(0, 100).email_prefix("ALI");
    assert_eq!(query.email_prefix.as_deref(), Some("ali"));
    let (found, total) = store.list_users(&query).await.expect("list");
    assert_eq!(total, Some(4));
    assert_eq!(ids(&found), expected("ali"), "creation order");
    let mut emails: Vec<&str> = found.iter().map(|u| u.email_normalized.as_str()).collect();
    emails.sort_unstable();
    assert_eq!(
        emails,
        [
            "ali@example.org",
            "alibaba@example.com",
            "alice@example.com",
            "alina@example.com"
        ]
    );

    // Pagination within the matches; the total is still the matches'.
    let (page, total) = store
        .list_users(&UserQuery::page(1, 2).email_prefix("ali"))
        .await
        .expect("list");
    assert_eq!(total, Some(4));
    assert_eq!(ids(&page), expected("ali")[1..3]);
    let (page, total) = store
        .list_users(&UserQuery::page(3, 2).email_prefix("ali"))
        .await
        .expect("list");
    assert_eq!(total, Some(4));
    assert_eq!(ids(&page), expected("ali")[3..]);
    let (page, total) = store
        .list_users(&UserQuery::page(10, 2).email_prefix("ali"))
        .await
        .expect("list");
    assert_eq!((page.len(), total), (0, Some(4)));

    // An empty prefix matches everyone.
    let (found, total) = store
        .list_users(&UserQuery::page(0, 100).email_prefix(""))
        .await
        .expect("list");
    assert_eq!((ids(&found), total), (ids(&all), Some(23)));

    // Metacharacters match literally: no error, no extra matches.
    for (prefix, count) in [
        ("a.b", 1),
        ("a+b", 1),
        ("a$b", 1),
        ("a|b", 1),
        ("a*b", 1),
        ("a?b", 1),
        ("^", 1),
        ("{brace}", 1),
        ("a-b", 1),
        ("a/b", 1),
        ("a#b", 1),
        ("a&b", 1),
        ("a~b", 1),
        ("a=b", 1),
        ("a%b", 1),
        ("a", 19),
        (".", 0),
        ("a.", 1),
        ("(", 0),
        ("[", 0),
        ("[a-z]", 0),
        ("\\", 0),
        ("\\d", 0),
        (")", 0),
        ("*", 0),
        ("+", 0),
        ("?", 0),
        ("$", 0),
        ("|", 0),
        (".*", 0),
        ("a{2}", 0),
        ("b|a", 0),
        ("a\0", 0),
        ("a\\b", 0),
    ] {
        let (found, total) = store
            .list_users(&UserQuery::page(0, 100).email_prefix(prefix))
            .await
            .unwrap_or_else(|e| panic!("prefix {prefix:?}: {e:?}"));
        assert_eq!(
            ids(&found),
            expected(prefix),
            "prefix {prefix:?} matches literally"
        );
        assert_eq!(ids(&found).len(), count, "prefix {prefix:?}");
        assert_eq!(total, Some(count as u64), "total for prefix {prefix:?}");
    }
}

/// A user created at `at` (whole milliseconds, which every store keeps).
async fn user_created_at(store: &dyn Store, email: &str, at: DateTime<Utc>) -> User {
    let mut user = user(email);
    user.created_at = at;
    user.updated_at = at;
    store.insert_user(&user).await.expect("insert user");
    user
}

/// Pages through `query` with the cursor of each page's last user,
/// calling `between` after every page; returns every user seen, in order.
async fn page_with_cursor(
    store: &dyn Store,
    query: UserQuery,
    mut between: impl FnMut(usize) -> Option<(String, DateTime<Utc>)>,
) -> Vec<User> {
    let mut seen: Vec<User> = Vec::new();
    let mut next = query.clone();
    for page_no in 0.. {
        assert!(page_no < 1000, "cursor paging does not end");
        let (page, total) = store.list_users(&next).await.expect("list");
        if next.after.is_some() {
            assert_eq!(total, None, "not counted unless asked");
        }
        assert!(page.len() as u64 <= query.limit, "at most limit");
        let Some(last) = page.last() else { break };
        next = query.clone().after(UserCursor::after(last)).count(false);
        seen.extend(page);
        if let Some((email, at)) = between(page_no) {
            user_created_at(store, &email, at).await;
        }
    }
    seen
}

fn assert_visited_once(seen: &[User], expected: &[UserId]) {
    let ids: Vec<UserId> = seen.iter().map(|u| u.id.clone()).collect();
    assert_eq!(ids, expected, "each user once, in list order");
    assert!(
        seen.windows(2)
            .all(|w| (w[0].created_at, &w[0].id) < (w[1].created_at, &w[1].id)),
        "strictly increasing (created_at, id)"
    );
}

/// Paging with a cursor (`UserQuery::after` the last user of a page)
/// visits every user exactly once, in creation-then-id order, ties on
/// the creation time broken by id; users inserted between pages after the
/// cursor's position are visited, those sorting before it are not (and
/// nothing repeats); a cursor page is not counted unless asked, and a
/// count ignores the cursor.
pub async fn list_users_cursor_visits_every_user_once(store: Arc<dyn Store>) {
    let base = now() - Duration::hours(1);
    // 23 users, three of them sharing each creation millisecond.
    let mut initial = Vec::new();
    for i in 0..23i64 {
        let at = base + Duration::milliseconds(i / 3);
        initial.push(user_created_at(&*store, &format!("u{i:02}@example.com"), at).await);
    }
    let (all, total) = store
        .list_users(&UserQuery::page(0, 100))
        .await
        .expect("list");
    assert_eq!(total, Some(23));
    let mut expected: Vec<UserId> = all.iter().map(|u| u.id.clone()).collect();

    // Between pages: one user created later (visited) and one created
    // before everyone (behind the cursor: never visited).
    let mut later = Vec::new();
    let seen = page_with_cursor(&*store, UserQuery::page(0, 4), |page| {
        (page < 6).then(|| {
            if page % 2 == 0 {
                later.push(format!("new{page}@example.com"));
                (
                    format!("new{page}@example.com"),
                    base + Duration::minutes(10 + page as i64),
                )
            } else {
                (
                    format!("old{page}@example.com"),
                    base - Duration::minutes(10 + page as i64),
                )
            }
        })
    })
    .await;
    for email in &later {
        let user = store
            .find_user_by_email(email)
            .await
            .expect("find")
            .expect("inserted");
        expected.push(user.id);
    }
    assert_visited_once(&seen, &expected);
    assert_eq!(seen.len(), 23 + 3);

    // A count ignores the cursor; the page after the last user is empty.
    let last = seen.last().expect("users");
    let (page, total) = store
        .list_users(&UserQuery::page(0, 10).after(UserCursor::after(last)))
        .await
        .expect("list");
    assert_eq!((page.len(), total), (0, Some(23 + 6)));
    // A cursor between two users of one millisecond resumes at the second.
    let (page, _) = store
        .list_users(&UserQuery::page(0, 2).after(UserCursor::after(&all[3])))
        .await
        .expect("list");
    let ids: Vec<UserId> = page.iter().map(|u| u.id.clone()).collect();
    assert_eq!(ids, [all[4].id.clone(), all[5].id.clone()]);
    // `offset` skips after the cursor.
    let (page, _) = store
        .list_users(&UserQuery::page(2, 1).after(UserCursor::after(&all[3])))
        .await
        .expect("list");
    assert_eq!(page[0].id, all[6].id);
}

/// Cursor paging combined with the email-prefix filter: every match once,
/// in list order, no non-match, even as matching and non-matching users
/// are inserted between pages; a count is the matches'.
pub async fn list_users_cursor_pages_within_an_email_prefix(store: Arc<dyn Store>) {
    let base = now() - Duration::hours(1);
    for i in 0..30i64 {
        // Every other user matches "ali"; creation times tie in fours
        // (two matches each).
        let email = if i % 2 == 0 {
            format!("ali{i:02}@example.com")
        } else {
            format!("bob{i:02}@example.com")
        };
        user_created_at(&*store, &email, base + Duration::milliseconds(i / 4)).await;
    }
    let query = UserQuery::page(0, 100).email_prefix("ALI");
    let (matches, total) = store.list_users(&query).await.expect("list");
    assert_eq!(total, Some(15));
    let mut expected: Vec<UserId> = matches.iter().map(|u| u.id.clone()).collect();

    let mut inserted = Vec::new();
    let seen = page_with_cursor(&*store, UserQuery::page(0, 4).email_prefix("ali"), |page| {
        (page < 3).then(|| {
            let email = match page {
                0 => "alix@example.com",
                1 => "zed@example.com",
                _ => "alibi@example.com",
            };
            inserted.push(email);
            (email.to_owned(), base + Duration::minutes(10 + page as i64))
        })
    })
    .await;
    for email in ["alix@example.com", "alibi@example.com"] {
        assert!(inserted.contains(&email));
        let user = store
            .find_user_by_email(email)
            .await
            .expect("find")
            .expect("inserted");
        expected.push(user.id);
    }
    assert!(seen.iter().all(|u| u.email_normalized.starts_with("ali")));
    assert_visited_once(&seen, &expected);
    let (_, total) = store
        .list_users(
            &UserQuery::page(0, 1)
                .email_prefix("ali")
                .after(UserCursor::after(&seen[3])),
        )
        .await
        .expect("list");
    assert_eq!(total, Some(17), "a count ignores the cursor");
}

/// 16 concurrent consumes of one token: exactly one gets it. Purpose is
/// checked; a new request can delete the previous tokens.
pub async fn one_time_tokens_are_single_use_under_concurrency(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "ott@example.com").await;
    let raw = OpaqueToken::generate();
    let token = OneTimeToken::new(raw.hash(), "verify_email", now(), Duration::hours(1))
        .for_user(user.id.clone())
        .for_email("ott@example.com")
        .with_data(serde_json::json!({"new_email": "x@example.com"}));
    store.insert_one_time_token(&token).await.expect("insert");
    assert!(is_conflict(&store.insert_one_time_token(&token).await));
    assert!(store
        .consume_one_time_token(&raw.hash(), "reset_password", now())
        .await
        .expect("consume")
        .is_none());

    let tasks = (0..16).map(|_| {
        let store = store.clone();
        let hash = raw.hash();
        tokio::spawn(async move {
            store
                .consume_one_time_token(&hash, "verify_email", now())
                .await
        })
    });
    let got: Vec<OneTimeToken> = join_all(tasks)
        .await
        .into_iter()
        .filter_map(|r| r.expect("task").expect("consume"))
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].user_id.as_ref(), Some(&user.id));
    assert_eq!(got[0].email.as_deref(), Some("ott@example.com"));
    assert_eq!(
        got[0].data,
        serde_json::json!({"new_email": "x@example.com"})
    );
    assert_eq!(got[0].expires_at, token.expires_at);

    // Deleting by user and purpose.
    for _ in 0..3 {
        let t = OneTimeToken::new(
            OpaqueToken::generate().hash(),
            "reset_password",
            now(),
            Duration::hours(1),
        )
        .for_user(user.id.clone());
        store.insert_one_time_token(&t).await.expect("insert");
    }
    let keep = OneTimeToken::new(
        OpaqueToken::generate().hash(),
        "magic_link",
        now(),
        Duration::hours(1),
    )
    .for_user(user.id.clone());
    store.insert_one_time_token(&keep).await.expect("insert");
    assert_eq!(
        store
            .delete_one_time_tokens(&user.id, "reset_password")
            .await
            .expect("delete"),
        3
    );
    assert!(store
        .consume_one_time_token(&keep.hash, "magic_link", now())
        .await
        .expect("consume")
        .is_some());
}

/// Expiry is part of the query: an expired token cannot be consumed, whatever
/// a TTL monitor has or has not deleted yet.
pub async fn one_time_tokens_expire_by_clock(store: Arc<dyn Store>) {
    let raw = OpaqueToken::generate();
    let t0 = now();
    let token = OneTimeToken::new(raw.hash(), "magic_link", t0, Duration::minutes(15))
        .at_epoch(7)
        .with_data(serde_json::json!({"k": "v"}));
    store.insert_one_time_token(&token).await.expect("insert");
    let later = t0 + Duration::minutes(15);
    // Finding leaves it in place, checks purpose and expiry, and gives the
    // record back as stored (the credential epoch included).
    let found = store
        .find_one_time_token(&raw.hash(), "magic_link", t0)
        .await
        .expect("find")
        .expect("live token found");
    assert_eq!(found.hash, raw.hash());
    assert_eq!(found.epoch, Some(7));
    assert_eq!(found.data, serde_json::json!({"k": "v"}));
    assert!(store
        .find_one_time_token(&raw.hash(), "magic_link", t0)
        .await
        .expect("find")
        .is_some());
    assert!(store
        .find_one_time_token(&raw.hash(), "reset_password", t0)
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_one_time_token(&raw.hash(), "magic_link", later)
        .await
        .expect("find")
        .is_none());
    assert!(store
        .consume_one_time_token(&raw.hash(), "magic_link", later)
        .await
        .expect("consume")
        .is_none());
    assert!(store
        .consume_one_time_token(&raw.hash(), "magic_link", later - Duration::seconds(1))
        .await
        .expect("consume")
        .is_some());
    assert!(store
        .find_one_time_token(&raw.hash(), "magic_link", t0)
        .await
        .expect("find")
        .is_none());
}

/// Rotation, reuse revoking the family, and revoked families refusing.
pub async fn refresh_rotation_and_reuse(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "rot@example.com").await;
    let t0 = now();
    let (session, r1) = session(&*store, &user, t0, Duration::days(30)).await;
    let r2 = OpaqueToken::generate();
    let rotated = store
        .rotate_refresh_token(
            &r1.hash(),
            &r2.hash(),
            t0 + Duration::seconds(1),
            Duration::zero(),
        )
        .await
        .expect("rotate");
    let Rotation::Rotated(s) = rotated else {
        panic!("expected Rotated, got {rotated:?}")
    };
    assert_eq!(s.id, session.id);
    assert_eq!(s.user_id, user.id);
    assert_eq!(
        s.expires_at, session.expires_at,
        "rotation never extends a session"
    );

    let r3 = OpaqueToken::generate();
    let r = store
        .rotate_refresh_token(
            &r2.hash(),
            &r3.hash(),
            t0 + Duration::seconds(2),
            Duration::zero(),
        )
        .await
        .expect("rotate");
    assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");

    // r1 again: reuse, the family is revoked; the current token dies too.
    let r = store
        .rotate_refresh_token(
            &r1.hash(),
            &OpaqueToken::generate().hash(),
            t0 + Duration::seconds(3),
            Duration::zero(),
        )
        .await
        .expect("rotate");
    assert!(
        matches!(&r, Rotation::Reused(s) if s.id == session.id),
        "{r:?}"
    );
    let r = store
        .rotate_refresh_token(
            &r3.hash(),
            &OpaqueToken::generate().hash(),
            t0 + Duration::seconds(4),
            Duration::zero(),
        )
        .await
        .expect("rotate");
    assert_eq!(r, Rotation::Invalid);
    let stored = store
        .find_session(&session.id)
        .await
        .expect("find")
        .expect("exists");
    assert!(stored.revoked_at.is_some());

    // Unknown token.
    let r = store
        .rotate_refresh_token(
            &TokenHash::of("nope"),
            &OpaqueToken::generate().hash(),
            t0,
            Duration::zero(),
        )
        .await
        .expect("rotate");
    assert_eq!(r, Rotation::Invalid);
}

/// 16 concurrent rotations of one token: exactly one succeeds and the
/// family ends revoked (the others are reuse).
pub async fn refresh_rotation_under_concurrency(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "par@example.com").await;
    let (session, r1) = session(&*store, &user, now(), Duration::days(30)).await;
    let tasks = (0..16).map(|_| {
        let store = store.clone();
        let presented = r1.hash();
        tokio::spawn(async move {
            store
                .rotate_refresh_token(
                    &presented,
                    &OpaqueToken::generate().hash(),
                    now(),
                    Duration::zero(),
                )
                .await
        })
    });
    let results: Vec<Rotation> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("rotate"))
        .collect();
    let rotated = results
        .iter()
        .filter(|r| matches!(r, Rotation::Rotated(_)))
        .count();
    assert_eq!(rotated, 1, "{results:?}");
    assert!(results.iter().any(|r| matches!(r, Rotation::Reused(_))));
    let stored = store
        .find_session(&session.id)
        .await
        .expect("find")
        .expect("exists");
    assert!(stored.revoked_at.is_some(), "reuse revoked the family");
}

/// Inside the grace window a retry of a token whose replacement is unused
/// gets a new token and supersedes the replacement: one chain lives.
pub async fn refresh_grace_window_keeps_one_chain(store: Arc<dyn Store>) {
    let grace = Duration::seconds(10);
    let user = inserted_user(&*store, "grace@example.com").await;
    let t0 = now();
    let (_, r1) = session(&*store, &user, t0, Duration::days(30)).await;
    let lost = OpaqueToken::generate();
    let retry = OpaqueToken::generate();
    let r = store
        .rotate_refresh_token(&r1.hash(), &lost.hash(), t0, grace)
        .await
        .expect("rotate");
    assert!(matches!(r, Rotation::Rotated(_)));
    let r = store
        .rotate_refresh_token(&r1.hash(), &retry.hash(), t0 + Duration::seconds(5), grace)
        .await
        .expect("rotate");
    assert!(
        matches!(r, Rotation::Rotated(_)),
        "retry inside the window: {r:?}"
    );
    // The lost replacement is superseded: presenting it is reuse.
    let r = store
        .rotate_refresh_token(
            &lost.hash(),
            &OpaqueToken::generate().hash(),
            t0 + Duration::seconds(6),
            grace,
        )
        .await
        .expect("rotate");
    assert!(matches!(r, Rotation::Reused(_)), "{r:?}");

    // Past the window a retry is reuse.
    let other = inserted_user(&*store, "grace2@example.com").await;
    let (_, a1) = session(&*store, &other, t0, Duration::days(30)).await;
    let a2 = OpaqueToken::generate();
    store
        .rotate_refresh_token(&a1.hash(), &a2.hash(), t0, grace)
        .await
        .expect("rotate");
    let r = store
        .rotate_refresh_token(
            &a1.hash(),
            &OpaqueToken::generate().hash(),
            t0 + Duration::seconds(11),
            grace,
        )
        .await
        .expect("rotate");
    assert!(matches!(r, Rotation::Reused(_)), "{r:?}");
}

/// A token gets one retry inside the grace window, on every store: a
/// second retry of the same token is reuse and revokes the family.
pub async fn refresh_grace_window_allows_one_retry(store: Arc<dyn Store>) {
    let grace = Duration::seconds(10);
    let user = inserted_user(&*store, "once@example.com").await;
    let t0 = now();
    let (session, r1) = session(&*store, &user, t0, Duration::days(30)).await;
    let lost = OpaqueToken::generate();
    let retry = OpaqueToken::generate();
    let r = store
        .rotate_refresh_token(&r1.hash(), &lost.hash(), t0, grace)
        .await
        .expect("rotate");
    assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");
    let r = store
        .rotate_refresh_token(&r1.hash(), &retry.hash(), t0 + Duration::seconds(2), grace)
        .await
        .expect("rotate");
    assert!(matches!(r, Rotation::Rotated(_)), "first retry: {r:?}");
    // The second retry, still inside the window and with `retry` unused.
    let r = store
        .rotate_refresh_token(
            &r1.hash(),
            &OpaqueToken::generate().hash(),
            t0 + Duration::seconds(4),
            grace,
        )
        .await
        .expect("rotate");
    assert!(matches!(r, Rotation::Reused(_)), "second retry: {r:?}");
    let stored = store
        .find_session(&session.id)
        .await
        .expect("find")
        .expect("exists");
    assert!(stored.revoked_at.is_some(), "the family is revoked");
    let r = store
        .rotate_refresh_token(
            &retry.hash(),
            &OpaqueToken::generate().hash(),
            t0 + Duration::seconds(5),
            grace,
        )
        .await
        .expect("rotate");
    assert!(matches!(r, Rotation::Invalid), "{r:?}");
}

/// Reservations (the per-account failure slots): of many concurrent
/// reservations only the backoff's free slots are held, the rest are
/// `Busy` and count nothing; settled failures start the delay (`Refused`
/// with the next allowed time); in the delay one attempt at a time; a slot
/// settled without a failure is given back; leases expire; reset clears.
pub async fn counter_reservations_are_atomic(store: Arc<dyn Store>) {
    let t = now();
    let window = t - Duration::seconds(10);
    let expires = window + Duration::minutes(15);
    let backoff = Backoff::new(5, Duration::seconds(60));
    let key = "failed_sign_in:test";
    let answers = join_all((0..30_u64).map(|lease| {
        let store = store.clone();
        async move {
            let answer = store
                .reserve_counter(key, window, expires, t, backoff, lease)
                .await
                .expect("reserve");
            (lease, answer)
        }
    }))
    .await;
    let mut reserved: Vec<u32> = answers
        .iter()
        .filter_map(|(_, r)| match r {
            Reservation::Reserved { count } => Some(*count),
            _ => None,
        })
        .collect();
    reserved.sort_unstable();
    assert_eq!(reserved, vec![1, 2, 3, 4, 5], "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|(_, r)| *r == Reservation::Busy)
            .count(),
        25,
        "{answers:?}"
    );
    assert_eq!(
        store.read_counter(key, window).await.expect("read"),
        Some((0, t)),
        "reservations are not failures"
    );
    for (lease, _) in answers
        .iter()
        .filter(|(_, r)| matches!(r, Reservation::Reserved { .. }))
    {
        store
            .settle_counter(key, window, expires, t, backoff, true, *lease)
            .await
            .expect("settle");
    }
    assert_eq!(
        store.read_counter(key, window).await.expect("read"),
        Some((5, t))
    );
    let reserve = |at: DateTime<Utc>, lease: u64| {
        let store = store.clone();
        async move {
            store
                .reserve_counter(key, window, expires, at, backoff, lease)
                .await
                .expect("reserve")
        }
    };
    assert_eq!(
        reserve(t, 100).await,
        Reservation::Refused {
            retry_at: t + Duration::seconds(1)
        }
    );
    // After the delay one attempt at a time.
    let t1 = t + Duration::seconds(1);
    assert_eq!(reserve(t1, 101).await, Reservation::Reserved { count: 6 });
    assert_eq!(reserve(t1, 102).await, Reservation::Busy);
    // Settled without a failure, the slot is free again; settling a lease
    // that holds nothing (refused, or settled already) frees no other.
    store
        .settle_counter(key, window, expires, t1, backoff, false, 101)
        .await
        .expect("settle");
    assert_eq!(reserve(t1, 103).await, Reservation::Reserved { count: 6 });
    store
        .settle_counter(key, window, expires, t1, backoff, false, 101)
        .await
        .expect("settle again");
    assert_eq!(reserve(t1, 104).await, Reservation::Busy, "103 still holds");
    store
        .settle_counter(key, window, expires, t1, backoff, true, 103)
        .await
        .expect("settle");
    assert_eq!(
        reserve(t1, 105).await,
        Reservation::Refused {
            retry_at: t1 + Duration::seconds(2)
        }
    );
    // A reservation that is never settled (its node died) holds its slot
    // only for the lease.
    let other = "failed_sign_in:other";
    for lease in 200..205 {
        store
            .reserve_counter(other, window, expires, t, backoff, lease)
            .await
            .expect("reserve");
    }
    let held = store
        .reserve_counter(other, window, expires, t, backoff, 205)
        .await
        .expect("reserve");
    assert_eq!(held, Reservation::Busy);
    let later = t + backoff.lease + Duration::seconds(1);
    let freed = store
        .reserve_counter(other, window, expires, later, backoff, 206)
        .await
        .expect("reserve");
    assert_eq!(freed, Reservation::Reserved { count: 1 });
    store.reset_counter(key).await.expect("reset");
    assert!(store
        .read_counter(key, window)
        .await
        .expect("read")
        .is_none());
    assert_eq!(reserve(t1, 107).await, Reservation::Reserved { count: 1 });
}

/// A reservation whose node died mid-check never locks the account out
/// after its lease: with the free failures used, each later attempt (after
/// its delay) is reserved, settled, and leaves no slot held behind it.
pub async fn a_dead_reservation_never_holds_a_slot_past_its_lease(store: Arc<dyn Store>) {
    let t = now();
    let window = t - Duration::seconds(10);
    let expires = window + Duration::minutes(15);
    let backoff = Backoff::new(2, Duration::seconds(4));
    let key = "failed_sign_in:dead";
    for lease in 0..2 {
        assert!(matches!(
            store
                .reserve_counter(key, window, expires, t, backoff, lease)
                .await
                .expect("reserve"),
            Reservation::Reserved { .. }
        ));
        store
            .settle_counter(key, window, expires, t, backoff, true, lease)
            .await
            .expect("settle");
    }
    // The dead one: reserved after the delay, never settled.
    let mut at = t + Duration::seconds(1);
    assert!(matches!(
        store
            .reserve_counter(key, window, expires, at, backoff, 10)
            .await
            .expect("reserve"),
        Reservation::Reserved { .. }
    ));
    at += backoff.lease + Duration::seconds(1);
    for lease in 11..16 {
        let answer = store
            .reserve_counter(key, window, expires, at, backoff, lease)
            .await
            .expect("reserve");
        assert!(
            matches!(answer, Reservation::Reserved { .. }),
            "attempt {lease} at {at}: {answer:?}"
        );
        store
            .settle_counter(key, window, expires, at, backoff, true, lease)
            .await
            .expect("settle");
        at += backoff.max_delay;
    }
}

/// Expired sessions do not rotate; revocation is per session or per user
/// (keeping one).
pub async fn sessions_expire_and_revoke(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "exp@example.com").await;
    let t0 = now();
    let (short, token) = session(&*store, &user, t0, Duration::minutes(1)).await;
    let r = store
        .rotate_refresh_token(
            &token.hash(),
            &OpaqueToken::generate().hash(),
            t0 + Duration::minutes(1),
            Duration::zero(),
        )
        .await
        .expect("rotate");
    assert_eq!(r, Rotation::Invalid, "expired by clock");
    assert!(store.find_session(&short.id).await.expect("find").is_some());

    let (a, _) = session(&*store, &user, t0, Duration::days(1)).await;
    let (b, _) = session(&*store, &user, t0, Duration::days(1)).await;
    let (c, _) = session(&*store, &user, t0, Duration::days(1)).await;
    assert!(store.revoke_session(&a.id, t0).await.expect("revoke"));
    assert!(!store.revoke_session(&a.id, t0).await.expect("revoke twice"));
    // `short` (expired but not revoked) and `b` are revoked; `c` is kept.
    let n = store
        .revoke_user_sessions(&user.id, Some(&c.id), t0)
        .await
        .expect("revoke all");
    assert_eq!(n, 2);
    assert!(store
        .find_session(&b.id)
        .await
        .expect("find")
        .expect("b")
        .revoked_at
        .is_some());
    assert!(store
        .find_session(&c.id)
        .await
        .expect("find")
        .expect("c")
        .revoked_at
        .is_none());
}

/// `find_session_user` returns both, and nothing for another user's session.
pub async fn session_user_is_read_together(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "me@example.com").await;
    let other = inserted_user(&*store, "other@example.com").await;
    let (session, _) = session(&*store, &user, now(), Duration::days(1)).await;
    let (u, s) = store
        .find_session_user(&user.id, &session.id)
        .await
        .expect("read")
        .expect("both exist");
    assert_eq!(u.id, user.id);
    assert_eq!(u.email, "me@example.com");
    assert_eq!(s.id, session.id);
    assert_eq!(s.token_version, user.token_version);
    assert!(store
        .find_session_user(&other.id, &session.id)
        .await
        .expect("read")
        .is_none());
    assert!(store
        .find_session_user(&user.id, &portcullis::SessionId::new("missing"))
        .await
        .expect("read")
        .is_none());
}

/// `list_user_sessions` lists the user's live sessions, most recently used
/// first (then by id, descending); revoked, expired and other users'
/// sessions are not listed.
pub async fn lists_live_sessions(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "devices@example.com").await;
    let other = inserted_user(&*store, "others@example.com").await;
    let t0 = now();
    let ttl = Duration::days(1);
    let (a, a_token) = session(&*store, &user, t0 - Duration::minutes(5), ttl).await;
    let (b, _) = session(&*store, &user, t0 - Duration::minutes(1), ttl).await;
    let (c, _) = session(&*store, &user, t0 - Duration::minutes(2), ttl).await;
    // Two used at the same instant: ordered by id, descending.
    let (d, _) = session(&*store, &user, t0 - Duration::minutes(10), ttl).await;
    let (e, _) = session(&*store, &user, t0 - Duration::minutes(10), ttl).await;
    // Not listed: revoked, expired (also exactly at `now`), another user's.
    let (revoked, _) = session(&*store, &user, t0, ttl).await;
    assert!(store.revoke_session(&revoked.id, t0).await.expect("revoke"));
    session(&*store, &user, t0 - Duration::days(2), ttl).await;
    session(&*store, &user, t0 - ttl, ttl).await;
    let (others, _) = session(&*store, &other, t0, ttl).await;

    // Rotating `a` makes it the most recently used.
    let r = store
        .rotate_refresh_token(
            &a_token.hash(),
            &OpaqueToken::generate().hash(),
            t0,
            Duration::zero(),
        )
        .await
        .expect("rotate");
    assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");

    let (first_tie, second_tie) = if d.id.as_str() > e.id.as_str() {
        (&d, &e)
    } else {
        (&e, &d)
    };
    let listed = store.list_user_sessions(&user.id, t0).await.expect("list");
    assert_eq!(
        listed.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        [
            a.id.clone(),
            b.id.clone(),
            c.id.clone(),
            first_tie.id.clone(),
            second_tie.id.clone()
        ]
    );
    assert_eq!(listed[0].last_used_at, t0);
    for listed in &listed {
        let stored = store
            .find_session(&listed.id)
            .await
            .expect("find")
            .expect("exists");
        assert_eq!(*listed, stored, "listed as stored");
    }

    let theirs = store.list_user_sessions(&other.id, t0).await.expect("list");
    assert_eq!(
        theirs.iter().map(|s| &s.id).collect::<Vec<_>>(),
        [&others.id]
    );
    // Later, every session of the user has expired.
    assert!(store
        .list_user_sessions(&user.id, t0 + ttl)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_user_sessions(&UserId::new("missing"), t0)
        .await
        .expect("list")
        .is_empty());
}

/// Links are unique per (provider, subject), listed per user, removable.
pub async fn linked_accounts(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "link@example.com").await;
    let t = now();
    let github = LinkedAccount::new(
        "github",
        "1234",
        user.id.clone(),
        Some("link@example.com".into()),
        t,
    );
    store.insert_linked_account(&github).await.expect("link");
    let again = LinkedAccount::new("github", "1234", user.id.clone(), None, t);
    assert!(is_conflict(&store.insert_linked_account(&again).await));
    let google = LinkedAccount::new("google", "abc", user.id.clone(), None, t);
    store.insert_linked_account(&google).await.expect("link");
    let found = store
        .find_linked_account("github", "1234")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(found, github);
    assert!(store
        .find_linked_account("github", "999")
        .await
        .expect("find")
        .is_none());
    let list = store.list_linked_accounts(&user.id).await.expect("list");
    assert_eq!(
        list.iter().map(|a| a.provider.as_str()).collect::<Vec<_>>(),
        ["github", "google"]
    );
    assert!(store
        .delete_linked_account(&user.id, "github")
        .await
        .expect("unlink"));
    assert!(!store
        .delete_linked_account(&user.id, "github")
        .await
        .expect("unlink twice"));
}

/// Links keep whether their email was verified; removing the unverified
/// ones of a user removes exactly those, each reported once under
/// concurrency.
pub async fn unverified_links_are_removed_once(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "proven@example.com").await;
    let other = inserted_user(&*store, "other@example.com").await;
    let t = now();
    let verified =
        LinkedAccount::new("github", "v1", user.id.clone(), None, t).with_email_verified(true);
    store.insert_linked_account(&verified).await.expect("link");
    for subject in ["u1", "u2"] {
        let link = LinkedAccount::new("acme", subject, user.id.clone(), None, t);
        store.insert_linked_account(&link).await.expect("link");
    }
    let elsewhere = LinkedAccount::new("acme", "o1", other.id.clone(), None, t);
    store.insert_linked_account(&elsewhere).await.expect("link");
    assert!(
        store
            .find_linked_account("github", "v1")
            .await
            .expect("find")
            .expect("exists")
            .email_verified
    );
    let runs = (0..8).map(|_| {
        let store = store.clone();
        let id = user.id.clone();
        tokio::spawn(async move { store.delete_unverified_linked_accounts(&id).await })
    });
    let mut removed: Vec<String> = Vec::new();
    for run in runs {
        let links = run.await.expect("join").expect("delete");
        removed.extend(links.into_iter().map(|l| l.subject));
    }
    removed.sort();
    assert_eq!(removed, ["u1", "u2"]);
    let left = store.list_linked_accounts(&user.id).await.expect("list");
    assert_eq!(left, [verified]);
    assert_eq!(
        store.list_linked_accounts(&other.id).await.expect("list"),
        [elsewhere]
    );
}

/// Deleting a user removes its sessions, links and tokens.
pub async fn delete_user_removes_everything(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "gone@example.com").await;
    let (session, _) = session(&*store, &user, now(), Duration::days(1)).await;
    store
        .insert_linked_account(&LinkedAccount::new(
            "github",
            "gone",
            user.id.clone(),
            None,
            now(),
        ))
        .await
        .expect("link");
    let raw = OpaqueToken::generate();
    store
        .insert_one_time_token(
            &OneTimeToken::new(raw.hash(), "verify_email", now(), Duration::hours(1))
                .for_user(user.id.clone()),
        )
        .await
        .expect("token");
    let secret = sealed(b"gone");
    store
        .put_pending_factor(&Factor::pending_totp(user.id.clone(), secret, now()))
        .await
        .expect("factor");
    store
        .put_recovery_codes(&Factor::recovery_codes(
            user.id.clone(),
            vec![OpaqueToken::generate().hash()],
            now(),
        ))
        .await
        .expect("codes");
    assert!(store.delete_user(&user.id).await.expect("delete"));
    assert!(store.list_factors(&user.id).await.expect("list").is_empty());
    assert!(!store.delete_user(&user.id).await.expect("delete twice"));
    assert!(store.find_user(&user.id).await.expect("find").is_none());
    assert!(store
        .find_user_by_email("gone@example.com")
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_session(&session.id)
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_linked_account("github", "gone")
        .await
        .expect("find")
        .is_none());
    assert!(store
        .consume_one_time_token(&raw.hash(), "verify_email", now())
        .await
        .expect("consume")
        .is_none());
    // The email is free again.
    inserted_user(&*store, "gone@example.com").await;
}

/// Rate-limit counters: concurrent hits are all counted, windows are
/// separate, reading does not count, reset drops every window of a key, and
/// one-time token attempts count atomically.
pub async fn rate_limit_counters_are_atomic(store: Arc<dyn Store>) {
    let t = now();
    let window = t - Duration::seconds(10);
    let expires = window + Duration::minutes(1);
    let hits = join_all((0..16).map(|_| {
        let store = store.clone();
        async move {
            store
                .hit_counter("login:203.0.113.5", window, expires, t)
                .await
                .expect("hit")
        }
    }))
    .await;
    let mut counts: Vec<u32> = hits.iter().map(|h| h.count).collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=16).collect::<Vec<u32>>(),
        "every hit counted once"
    );
    assert_eq!(
        store
            .read_counter("login:203.0.113.5", window)
            .await
            .expect("read"),
        Some((16, t))
    );
    // Another window and another key are separate.
    let next = window + Duration::minutes(1);
    let hit = store
        .hit_counter("login:203.0.113.5", next, next + Duration::minutes(1), t)
        .await
        .expect("hit");
    assert_eq!(hit.count, 1);
    assert!(store
        .read_counter("login:198.51.100.7", window)
        .await
        .expect("read")
        .is_none());
    store
        .reset_counter("login:203.0.113.5")
        .await
        .expect("reset");
    assert!(store
        .read_counter("login:203.0.113.5", window)
        .await
        .expect("read")
        .is_none());
    assert!(store
        .read_counter("login:203.0.113.5", next)
        .await
        .expect("read")
        .is_none());

    // Attempts on a one-time token.
    let raw = OpaqueToken::generate();
    let token = OneTimeToken::new(raw.hash(), "email_code", t, Duration::minutes(10))
        .for_email("code@example.com");
    store.insert_one_time_token(&token).await.expect("insert");
    let attempts = join_all((0..16).map(|_| {
        let store = store.clone();
        let hash = raw.hash();
        async move {
            store
                .count_one_time_token_attempt(&hash, "email_code", t)
                .await
                .expect("count")
        }
    }))
    .await;
    let mut attempts: Vec<u32> = attempts.into_iter().map(|a| a.expect("live")).collect();
    attempts.sort_unstable();
    assert_eq!(attempts, (1..=16).collect::<Vec<u32>>());
    assert!(store
        .count_one_time_token_attempt(&raw.hash(), "magic_link", t)
        .await
        .expect("count")
        .is_none());
    assert!(store
        .count_one_time_token_attempt(&raw.hash(), "email_code", t + Duration::minutes(10))
        .await
        .expect("count")
        .is_none());
    assert_eq!(
        store
            .delete_one_time_tokens_for_email("code@example.com", "email_code")
            .await
            .expect("delete"),
        1
    );
}

/// A sealed secret for factor checks.
fn sealed(plaintext: &[u8]) -> Sealed {
    Sealer::new([("k1".to_owned(), Sealer::generate_key())])
        .expect("sealer")
        .seal(plaintext, b"conformance")
        .expect("seal")
}

/// One TOTP factor per user: a pending one is replaced by a new setup, a
/// confirmed one refuses a new setup (conflict); confirmation needs the
/// secret that is pending now; delete removes it.
pub async fn one_totp_factor_per_user(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "totp@example.com").await;
    let other = inserted_user(&*store, "other@example.com").await;
    let first = sealed(b"first");
    store
        .put_pending_factor(&Factor::pending_totp(user.id.clone(), first.clone(), now()))
        .await
        .expect("pending");
    let second = sealed(b"second");
    store
        .put_pending_factor(&Factor::pending_totp(
            user.id.clone(),
            second.clone(),
            now(),
        ))
        .await
        .expect("replace pending");
    let factors = store.list_factors(&user.id).await.expect("list");
    assert_eq!(factors.len(), 1, "{factors:?}");
    assert_eq!(factors[0].secret.as_ref(), Some(&second));
    assert!(!factors[0].is_confirmed());
    // A pending factor is not usable.
    assert!(!store.use_totp_step(&user.id, 10, now()).await.expect("use"));
    // The replaced secret no longer confirms; the current one does, once.
    assert!(!store
        .confirm_factor(&user.id, FactorKind::Totp, &first, 5, now())
        .await
        .expect("confirm stale"));
    assert!(store
        .confirm_factor(&user.id, FactorKind::Totp, &second, 5, now())
        .await
        .expect("confirm"));
    assert!(!store
        .confirm_factor(&user.id, FactorKind::Totp, &second, 6, now())
        .await
        .expect("confirm twice"));
    let factors = store.list_factors(&user.id).await.expect("list");
    assert!(factors[0].is_confirmed());
    assert_eq!(factors[0].last_step, Some(5));
    // A confirmed factor is never overwritten by a new setup.
    let result = store
        .put_pending_factor(&Factor::pending_totp(user.id.clone(), sealed(b"x"), now()))
        .await;
    assert!(is_conflict(&result), "{result:?}");
    assert_eq!(
        store.list_factors(&user.id).await.expect("list")[0]
            .secret
            .as_ref(),
        Some(&second)
    );
    // Steps at or before the confirmed one are spent.
    assert!(!store.use_totp_step(&user.id, 5, now()).await.expect("use"));
    assert!(store.use_totp_step(&user.id, 6, now()).await.expect("use"));
    // Another user is untouched.
    assert!(store
        .list_factors(&other.id)
        .await
        .expect("list")
        .is_empty());
    assert!(!store.use_totp_step(&other.id, 7, now()).await.expect("use"));
    assert!(store
        .delete_factor(&user.id, FactorKind::Totp)
        .await
        .expect("delete"));
    assert!(!store
        .delete_factor(&user.id, FactorKind::Totp)
        .await
        .expect("delete twice"));
    assert!(store.list_factors(&user.id).await.expect("list").is_empty());
}

/// Of 16 parallel uses of one TOTP step exactly one is accepted, and no
/// earlier step is accepted after it.
pub async fn totp_steps_are_used_once_under_concurrency(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "steps@example.com").await;
    let secret = sealed(b"steps");
    store
        .put_pending_factor(&Factor::pending_totp(
            user.id.clone(),
            secret.clone(),
            now(),
        ))
        .await
        .expect("pending");
    assert!(store
        .confirm_factor(&user.id, FactorKind::Totp, &secret, 100, now())
        .await
        .expect("confirm"));
    let uses = (0..16).map(|_| {
        let store = Arc::clone(&store);
        let id = user.id.clone();
        tokio::spawn(async move { store.use_totp_step(&id, 101, now()).await })
    });
    let accepted = join_all(uses)
        .await
        .into_iter()
        .map(|r| r.expect("join").expect("use"))
        .filter(|ok| *ok)
        .count();
    assert_eq!(accepted, 1);
    assert!(!store
        .use_totp_step(&user.id, 100, now())
        .await
        .expect("use"));
    let factors = store.list_factors(&user.id).await.expect("list");
    assert_eq!(factors[0].last_step, Some(101));
    assert!(factors[0].last_used_at.is_some());
}

/// A first set of recovery codes is inserted once: of 16 parallel inserts
/// for one user exactly one wins, the others are `Conflict`, the winner's
/// set is the one kept, and a set (even an empty one) blocks the next
/// insert until it is deleted. Another user's set is not in the way.
pub async fn recovery_codes_are_inserted_once_under_concurrency(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "first-codes@example.com").await;
    let sets: Vec<OpaqueToken> = (0..16).map(|_| OpaqueToken::generate()).collect();
    let inserts = sets.iter().map(|code| {
        let store = Arc::clone(&store);
        let factor = Factor::recovery_codes(user.id.clone(), vec![code.hash()], now());
        tokio::spawn(async move { store.insert_recovery_codes(&factor).await })
    });
    let results: Vec<_> = join_all(inserts)
        .await
        .into_iter()
        .map(|r| r.expect("join"))
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(StoreError::Conflict(_)))),
        "{results:?}"
    );
    let winner = results.iter().position(Result::is_ok).expect("a winner");
    let factors = store.list_factors(&user.id).await.expect("list");
    assert_eq!(factors.len(), 1);
    assert_eq!(factors[0].codes, vec![sets[winner].hash()]);
    // A spent set still blocks an insert; a deleted one does not.
    assert_eq!(
        store
            .use_recovery_code(&user.id, &sets[winner].hash(), now())
            .await
            .expect("use"),
        Some(0)
    );
    let again = Factor::recovery_codes(user.id.clone(), vec![sets[0].hash()], now());
    assert!(matches!(
        store.insert_recovery_codes(&again).await,
        Err(StoreError::Conflict(_))
    ));
    let other = inserted_user(&*store, "other-codes@example.com").await;
    store
        .insert_recovery_codes(&Factor::recovery_codes(
            other.id.clone(),
            vec![sets[1].hash()],
            now(),
        ))
        .await
        .expect("another user's first set");
    assert!(store
        .delete_factor(&user.id, FactorKind::RecoveryCodes)
        .await
        .expect("delete"));
    store
        .insert_recovery_codes(&again)
        .await
        .expect("a set after the old one went");
    assert_eq!(
        store
            .use_recovery_code(&user.id, &sets[0].hash(), now())
            .await
            .expect("use"),
        Some(0)
    );
}

/// Recovery codes: each is accepted once, of 16 parallel uses of one code
/// exactly one wins, a new set replaces the old one whole, and the count of
/// codes left is returned.
pub async fn recovery_codes_are_single_use_under_concurrency(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "codes@example.com").await;
    let codes: Vec<OpaqueToken> = (0..3).map(|_| OpaqueToken::generate()).collect();
    store
        .put_recovery_codes(&Factor::recovery_codes(
            user.id.clone(),
            codes.iter().map(OpaqueToken::hash).collect(),
            now(),
        ))
        .await
        .expect("codes");
    let uses = (0..16).map(|_| {
        let store = Arc::clone(&store);
        let id = user.id.clone();
        let hash = codes[0].hash();
        tokio::spawn(async move { store.use_recovery_code(&id, &hash, now()).await })
    });
    let results: Vec<Option<usize>> = join_all(uses)
        .await
        .into_iter()
        .map(|r| r.expect("join").expect("use"))
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_some()).count(),
        1,
        "{results:?}"
    );
    assert!(results.contains(&Some(2)));
    assert_eq!(
        store
            .use_recovery_code(&user.id, &OpaqueToken::generate().hash(), now())
            .await
            .expect("unknown"),
        None
    );
    // Another user cannot spend this user's code.
    let other = inserted_user(&*store, "thief@example.com").await;
    assert_eq!(
        store
            .use_recovery_code(&other.id, &codes[1].hash(), now())
            .await
            .expect("other"),
        None
    );
    // A new set replaces the old: old codes are dead.
    let fresh = OpaqueToken::generate();
    store
        .put_recovery_codes(&Factor::recovery_codes(
            user.id.clone(),
            vec![fresh.hash()],
            now(),
        ))
        .await
        .expect("regenerate");
    assert_eq!(
        store
            .use_recovery_code(&user.id, &codes[1].hash(), now())
            .await
            .expect("old"),
        None
    );
    assert_eq!(
        store
            .use_recovery_code(&user.id, &fresh.hash(), now())
            .await
            .expect("fresh"),
        Some(0)
    );
    let factors = store.list_factors(&user.id).await.expect("list");
    assert_eq!(factors.len(), 1);
    assert_eq!(factors[0].kind, FactorKind::RecoveryCodes);
    assert!(factors[0].codes.is_empty());
    assert_eq!(store.delete_factors(&user.id).await.expect("delete all"), 1);
}

fn passkey(id: &str, user: &User, counter: u32) -> PasskeyRecord {
    PasskeyRecord::new(
        id.to_owned(),
        user.id.clone(),
        format!("key {id}"),
        serde_json::json!({ "cred": { "cred_id": id, "counter": counter } }),
        counter,
        now(),
    )
}

/// `list_second_factors` answers exactly what `list_factors` and
/// `list_passkeys` answer, for the asked user only (a sign-in decides on it
/// between a session and an MFA challenge).
pub async fn second_factors_are_read_together(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "both@example.com").await;
    let other = inserted_user(&*store, "neither@example.com").await;
    let (factors, passkeys) = store.list_second_factors(&user.id).await.expect("none");
    assert!(factors.is_empty() && passkeys.is_empty());
    store
        .put_pending_factor(&Factor::pending_totp(user.id.clone(), sealed(b"s"), now()))
        .await
        .expect("totp");
    store
        .put_recovery_codes(&Factor::recovery_codes(
            user.id.clone(),
            vec![OpaqueToken::generate().hash()],
            now(),
        ))
        .await
        .expect("codes");
    store
        .insert_passkey(&passkey("cred-both-1", &user, 1))
        .await
        .expect("passkey");
    let mut later = passkey("cred-both-0", &user, 0);
    later.created_at = now() + Duration::seconds(1);
    store.insert_passkey(&later).await.expect("passkey");
    store
        .insert_passkey(&passkey("cred-other", &other, 0))
        .await
        .expect("other's passkey");
    let (factors, passkeys) = store.list_second_factors(&user.id).await.expect("both");
    assert_eq!(
        factors,
        store.list_factors(&user.id).await.expect("factors")
    );
    assert_eq!(
        factors.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [FactorKind::Totp, FactorKind::RecoveryCodes]
    );
    assert_eq!(
        passkeys,
        store.list_passkeys(&user.id).await.expect("passkeys")
    );
    let ids: Vec<&str> = passkeys.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["cred-both-1", "cred-both-0"], "oldest first");
    let (factors, passkeys) = store.list_second_factors(&other.id).await.expect("other");
    assert!(factors.is_empty());
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0].id, "cred-other");
}

/// A credential id belongs to one account; listing is oldest first; only
/// the owner renames or deletes; deleting the user deletes its passkeys.
pub async fn passkeys_are_unique_listed_renamed_and_deleted(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "keys@example.com").await;
    let other = inserted_user(&*store, "other-keys@example.com").await;
    store
        .insert_passkey(&passkey("cred-a", &user, 0))
        .await
        .expect("a");
    let mut later = passkey("cred-b", &user, 3);
    later.created_at = now() + Duration::seconds(1);
    store.insert_passkey(&later).await.expect("b");
    // One credential, one account: not even its owner registers it twice.
    for owner in [&user, &other] {
        assert!(matches!(
            store.insert_passkey(&passkey("cred-a", owner, 0)).await,
            Err(StoreError::Conflict(_))
        ));
    }
    let listed = store.list_passkeys(&user.id).await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["cred-a", "cred-b"], "oldest first");
    assert_eq!(listed[1], later, "stored as given");
    assert!(store
        .list_passkeys(&other.id)
        .await
        .expect("none")
        .is_empty());
    assert_eq!(
        store.find_passkey("cred-b").await.expect("find"),
        Some(later)
    );
    assert_eq!(store.find_passkey("nope").await.expect("find"), None);

    // Only the owner renames or deletes.
    assert!(!store
        .rename_passkey(&other.id, "cred-a", "mine")
        .await
        .expect("rename other"));
    assert!(store
        .rename_passkey(&user.id, "cred-a", "Laptop")
        .await
        .expect("rename"));
    assert_eq!(
        store
            .find_passkey("cred-a")
            .await
            .expect("find")
            .map(|p| p.name),
        Some("Laptop".to_owned())
    );
    assert!(!store
        .delete_passkey(&other.id, "cred-a")
        .await
        .expect("delete other"));
    assert!(store
        .delete_passkey(&user.id, "cred-a")
        .await
        .expect("delete"));
    assert!(!store
        .delete_passkey(&user.id, "cred-a")
        .await
        .expect("again"));
    store
        .insert_passkey(&passkey("cred-c", &user, 0))
        .await
        .expect("c");
    assert_eq!(store.delete_passkeys(&user.id).await.expect("all"), 2);
    assert!(store
        .list_passkeys(&user.id)
        .await
        .expect("gone")
        .is_empty());

    // Deleting the user takes the passkeys with it.
    store
        .insert_passkey(&passkey("cred-d", &other, 0))
        .await
        .expect("d");
    assert!(store.delete_user(&other.id).await.expect("delete user"));
    assert_eq!(store.find_passkey("cred-d").await.expect("find"), None);
}

/// Of 16 parallel uses against the same signature counter one wins; a
/// stale counter is refused.
pub async fn passkey_counters_advance_once_under_concurrency(store: Arc<dyn Store>) {
    let user = inserted_user(&*store, "counter@example.com").await;
    store
        .insert_passkey(&passkey("cred-n", &user, 5))
        .await
        .expect("insert");
    let uses = (0..16).map(|i: u32| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let credential = serde_json::json!({ "counter": 6, "by": i });
            store.use_passkey("cred-n", 5, &credential, 6, now()).await
        })
    });
    let results: Vec<bool> = join_all(uses)
        .await
        .into_iter()
        .map(|r| r.expect("join").expect("use"))
        .collect();
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");
    let stored = store
        .find_passkey("cred-n")
        .await
        .expect("find")
        .expect("kept");
    assert_eq!(stored.counter, 6);
    assert_eq!(stored.credential["counter"], 6);
    assert!(stored.last_used_at.is_some());
    // A stale counter is refused; so is an unknown credential.
    assert!(!store
        .use_passkey("cred-n", 5, &stored.credential, 7, now())
        .await
        .expect("stale"));
    assert!(!store
        .use_passkey("nope", 0, &stored.credential, 1, now())
        .await
        .expect("unknown"));
}

/// Run-time roles: a name is unique under 16 concurrent inserts; updates,
/// deletes and lookups by name; 16 concurrent assignments of different
/// roles to one user all land (no lost update), an assignment is held once,
/// and a role is taken off every holder at once.
pub async fn roles_are_unique_and_assigned_atomically(store: Arc<dyn Store>) {
    use portcullis::authz::Permission;
    use portcullis::store::Role;
    let perm = |p: &str| Permission::parse(p).expect("valid permission");
    let results = join_all((0..16).map(|i| {
        let store = store.clone();
        async move {
            let role = Role::new(
                "editor",
                Some(format!("try {i}")),
                vec![perm("notes:*")],
                now(),
            );
            store.insert_role(&role).await
        }
    }))
    .await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(results.iter().filter(|r| is_conflict(r)).count(), 15);

    let mut viewer = Role::new("viewer", None, vec![perm("notes:read")], now());
    store.insert_role(&viewer).await.expect("insert viewer");
    let listed = store.list_roles().await.expect("list");
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["editor", "viewer"], "sorted by name");
    let found = store
        .find_roles(&["viewer".into(), "nobody".into()])
        .await
        .expect("find");
    assert_eq!(found, [viewer.clone()]);

    viewer.description = Some("Reads".into());
    viewer.permissions = vec![perm("drafts:read"), perm("notes:read")];
    viewer.updated_at = now() + Duration::seconds(5);
    assert!(store.update_role(&viewer).await.expect("update"));
    let found = store.find_roles(&["viewer".into()]).await.expect("find");
    assert_eq!(found, [viewer.clone()]);
    let ghost = Role::new("ghost", None, Vec::new(), now());
    assert!(!store.update_role(&ghost).await.expect("update missing"));

    let ann = inserted_user(store.as_ref(), "ann@example.com").await;
    let bob = inserted_user(store.as_ref(), "bob@example.com").await;
    let added = join_all((0..16).map(|i| {
        let store = store.clone();
        let id = ann.id.clone();
        async move { store.add_user_role(&id, &format!("r{i}")).await }
    }))
    .await;
    assert!(added.iter().all(|r| matches!(r, Ok(true))), "{added:?}");
    let again = join_all((0..16).map(|_| {
        let store = store.clone();
        let id = ann.id.clone();
        async move { store.add_user_role(&id, "viewer").await }
    }))
    .await;
    assert!(again.iter().all(|r| matches!(r, Ok(true))));
    let mut roles = store
        .find_user(&ann.id)
        .await
        .expect("find")
        .expect("exists")
        .roles;
    roles.sort();
    let mut want: Vec<String> = (0..16).map(|i| format!("r{i}")).collect();
    want.push("viewer".into());
    want.sort();
    assert_eq!(roles, want, "every assignment landed, each once");
    assert!(!store
        .add_user_role(&UserId::new("no-such-user"), "viewer")
        .await
        .expect("add to missing"));

    store.add_user_role(&bob.id, "viewer").await.expect("add");
    assert!(store.remove_user_role(&ann.id, "r3").await.expect("remove"));
    assert!(store
        .remove_user_role(&ann.id, "never-held")
        .await
        .expect("remove unheld"));
    assert_eq!(
        store.remove_role_from_users("viewer").await.expect("pull"),
        2
    );
    assert_eq!(
        store.remove_role_from_users("viewer").await.expect("pull"),
        0
    );
    let ann = store
        .find_user(&ann.id)
        .await
        .expect("find")
        .expect("exists");
    assert!(!ann.roles.iter().any(|r| r == "viewer" || r == "r3"));
    assert_eq!(ann.roles.len(), 15);
    let bob = store
        .find_user(&bob.id)
        .await
        .expect("find")
        .expect("exists");
    assert!(bob.roles.is_empty());

    assert!(store.delete_role("viewer").await.expect("delete"));
    assert!(!store.delete_role("viewer").await.expect("delete again"));
    assert!(store
        .find_roles(&["viewer".into()])
        .await
        .expect("find")
        .is_empty());
}

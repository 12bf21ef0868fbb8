//! # portcullis-testkit
//!
//! Test helpers for Portcullis and for integrators:
//!
//! - [`conformance`]: the store conformance suite. Every store (the built-in
//!   `MemoryStore` and `MongoStore`, or your own) must pass it; run it with
//!   [`store_conformance_tests!`].
//! - [`mongo_store`]: a `MongoStore` on a fresh database of the test server
//!   named by `PORTCULLIS_TEST_MONGODB_URI` (feature `mongodb`).
//! - [`TestApp`]: the HTTP test app the Portcullis suites run on, for
//!   testing your providers and hooks over HTTP. [`app`], [`app_with`] and
//!   [`app_on_store`] build a manager with credentials sign-in, a
//!   [`ManualClock`](portcullis::ManualClock), an
//!   [`Outbox`](portcullis::Outbox) and a hook recording every event, behind
//!   the API's routes in a `poem::test::TestClient`; `extra` adds your
//!   providers and hooks to the builder. Helpers read what it answers:
//!   [`parts`], [`assert_error`], [`TestApp::mail`], [`link_token`],
//!   [`assert_page_headers`], [`cookies_set`], [`TestApp::event_names`].
//! - [`DownStore`]: a store whose every call fails with `Unavailable`, to
//!   check that a flow answers 503.
//! - Fake providers: [`TrustEmailProvider`] (signs in whoever names an
//!   email, as a magic link would) and [`FakeOAuthProvider`] (takes a posted
//!   subject and email as proven, as an identity provider would).
//!
//! ```no_run
//! // tests/my_store.rs
//! use std::sync::Arc;
//! use portcullis::{MemoryStore, Store};
//!
//! async fn make() -> Arc<dyn Store> {
//!     Arc::new(MemoryStore::new()) // your store here
//! }
//!
//! portcullis_testkit::store_conformance_tests!(make);
//! ```
//!
//! A hook over HTTP: `extra` adds it to the builder, the app's client
//! drives the routes, and the recorded events show what happened.
//!
//! ```
//! use portcullis::{veto_fn, Action, Veto};
//! use portcullis_testkit::{app_with, assert_error, test_config, PASSWORD};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = app_with(test_config(), |builder| {
//!     builder.hook(veto_fn(|action: Action| async move {
//!         match action {
//!             Action::Register { email, .. } if !email.ends_with("@example.com") => Err(
//!                 Veto::new("EMAIL_DOMAIN_NOT_ALLOWED", "use your example.com address"),
//!             ),
//!             _ => Ok(()),
//!         }
//!     }))
//! })
//! .await;
//! let (status, body) = app
//!     .post("/auth/register", json!({"email": "eve@elsewhere.test", "password": PASSWORD}))
//!     .await;
//! assert_error(status, &body, 403, "EMAIL_DOMAIN_NOT_ALLOWED");
//! app.register("ada@example.com").await;
//! assert!(app.event_names().contains(&"user_registered"));
//! # }
//! ```

mod app;
mod down;
mod providers;

pub use app::{
    app, app_on_store, app_with, app_with_config, assert_error, assert_page_headers, body,
    cookies_set, link, link_token, page_form_token, parts, test_config, test_store, text, Served,
    TestApp, APP_ORIGIN, PASSWORD, PUBLIC_URL, SECRET,
};
pub use down::DownStore;
pub use providers::{app_with_passwordless, FakeOAuthProvider, TrustEmailProvider};

pub mod conformance;

#[cfg(feature = "mongodb")]
mod mongo;

#[cfg(feature = "mongodb")]
pub use mongo::{mongo_store, mongo_uri, MONGODB_URI_VAR};

/// Generates one `#[tokio::test]` per conformance check, each on a fresh
/// store from `$make` (an async fn returning `Arc<dyn Store>`).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:path) => {
        $crate::__with_conformance_checks!(@tests $make);
    };
    (@tests $make:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                $crate::conformance::$check($make().await).await;
            }
        )*
    };
    (@list; $($check:ident),* $(,)?) => {
        vec![$(
            (
                stringify!($check),
                (|store| Box::pin($crate::conformance::$check(store))) as $crate::conformance::Check,
            ),
        )*]
    };
}

/// The list of conformance checks, handed to `store_conformance_tests!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_conformance_checks {
    ($($head:tt)*) => {
        $crate::store_conformance_tests! {
            $($head)*;
            users_crud,
            email_is_unique_under_concurrent_inserts,
            token_version_bumps_are_atomic,
            patch_user_applies_only_set_fields,
            password_guards,
            patches_and_bumps_do_not_lose_updates_under_concurrency,
            list_users_filters_by_email_prefix,
            list_users_cursor_visits_every_user_once,
            list_users_cursor_pages_within_an_email_prefix,
            one_time_tokens_are_single_use_under_concurrency,
            one_time_tokens_expire_by_clock,
            refresh_rotation_and_reuse,
            refresh_rotation_under_concurrency,
            refresh_grace_window_keeps_one_chain,
            refresh_grace_window_allows_one_retry,
            sessions_expire_and_revoke,
            session_user_is_read_together,
            lists_live_sessions,
            linked_accounts,
            unverified_links_are_removed_once,
            delete_user_removes_everything,
            rate_limit_counters_are_atomic,
            counter_reservations_are_atomic,
            a_dead_reservation_never_holds_a_slot_past_its_lease,
            one_totp_factor_per_user,
            totp_steps_are_used_once_under_concurrency,
            recovery_codes_are_single_use_under_concurrency,
            recovery_codes_are_inserted_once_under_concurrency,
            passkeys_are_unique_listed_renamed_and_deleted,
            second_factors_are_read_together,
            passkey_counters_advance_once_under_concurrency,
            roles_are_unique_and_assigned_atomically,
            orgs_and_memberships,
            an_org_always_keeps_an_owner,
            invitations_are_unique_and_single_use,
            org_roles_are_unique_and_deleted_from_members,
            session_org_is_set_and_cleared,
        }
    };
}

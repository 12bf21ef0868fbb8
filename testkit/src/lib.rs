//! # portcullis-testkit
//!
//! Test helpers for Portcullis and for integrators:
//!
//! - [`conformance`]: the store conformance suite. Every store (the built-in
//!   `MemoryStore` and `MongoStore`, or your own) must pass it; run it with
//!   [`store_conformance_tests!`].
//! - [`mongo_store`]: a `MongoStore` on a fresh database of the test server
//!   named by `PORTCULLIS_TEST_MONGODB_URI` (feature `mongodb`).
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
        $crate::store_conformance_tests!(@tests $make;
            users_crud,
            email_is_unique_under_concurrent_inserts,
            token_version_bumps_are_atomic,
            patch_user_applies_only_set_fields,
            password_guards,
            patches_and_bumps_do_not_lose_updates_under_concurrency,
            list_users_filters_by_email_prefix,
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
            one_totp_factor_per_user,
            totp_steps_are_used_once_under_concurrency,
            recovery_codes_are_single_use_under_concurrency,
            recovery_codes_are_inserted_once_under_concurrency,
            passkeys_are_unique_listed_renamed_and_deleted,
            passkey_counters_advance_once_under_concurrency,
        );
    };
    (@tests $make:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                $crate::conformance::$check($make().await).await;
            }
        )*
    };
}

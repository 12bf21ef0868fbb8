//! Magic link and email code sign-in over HTTP.
#![allow(unreachable_pub, missing_docs, missing_debug_implementations, clippy::unwrap_used, clippy::expect_used)]

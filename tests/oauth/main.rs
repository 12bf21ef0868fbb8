//! OAuth 2.0 / OIDC sign-in over HTTP against a real OpenID provider.
#![allow(unreachable_pub, missing_docs, missing_debug_implementations, clippy::unwrap_used, clippy::expect_used)]

//! OAuth 2.0 / OIDC sign-in over HTTP against a real OpenID provider:
//! oidc-provider-mock (PyPI), started by `scripts/oidc.sh` (which
//! `scripts/test.sh` runs), at `PORTCULLIS_TEST_OIDC_ISSUER`. The tests are
//! the browser: they follow the redirects by hand, carrying the cookies.
//! GitHub is played by a small poem server on 127.0.0.1:0 that answers like
//! GitHub's token, `/user` and `/user/emails` endpoints.
#![allow(
    unreachable_pub,
    missing_docs,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used
)]

#[path = "../api/common.rs"]
mod common;

mod support;

mod errors;
mod forged;
mod github;
mod linking;
mod oidc;
mod state;

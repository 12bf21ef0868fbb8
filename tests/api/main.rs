//! HTTP integration tests: every endpoint and error of the API, driven
//! in-process through `poem::test::TestClient` against `api::routes`.
#![allow(
    unreachable_pub,
    missing_docs,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod common;
mod spy;

mod account;
mod app_fields;
mod body_errors;
mod caller;
mod concurrency;
mod cookie_only;
mod cookies;
mod email_change;
mod errors;
mod hooks;
mod jwks;
mod limits;
mod linked;
mod login;
mod mfa;
mod orgs;
mod pages;
mod passkeys;
mod password;
mod refresh;
mod register;
mod roles;
mod sessions;
mod smtp;
mod spec;
mod swagger;
mod tokens;
mod users;
mod verify;

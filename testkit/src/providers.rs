//! Fake providers for tests: one that trusts the email it is given (a
//! stand-in for a magic link) and one that trusts a posted subject (a
//! stand-in for an OAuth provider).
#![allow(
    clippy::expect_used,
    reason = "test helpers panic on a broken fixture or an unexpected answer"
)]

use async_trait::async_trait;
use portcullis::AuthConfig;
use serde_json::{json, Value};

use crate::{app_with, TestApp};

/// A passwordless test provider: `{"email"}` proves that email (as a
/// magic link would), creating the user on first use with a verified email
/// and no password.
#[derive(Debug)]
pub struct TrustEmailProvider;

#[async_trait]
impl portcullis::Provider for TrustEmailProvider {
    fn info(&self) -> portcullis::ProviderInfo {
        portcullis::ProviderInfo::new("trust-email", "passwordless").signs_in_by_email()
    }

    async fn authenticate(
        &self,
        _cx: &portcullis::ProviderCx<'_>,
        request: portcullis::ProviderRequest,
    ) -> portcullis::Result<portcullis::Identity> {
        let body: Value = request.body_as()?;
        let email = body["email"].as_str().unwrap_or_default().to_lowercase();
        Ok(portcullis::Identity::new("trust-email", email.clone()).with_email(email, true))
    }
}

/// An app that also signs in through [`TrustEmailProvider`].
pub async fn app_with_passwordless(config: AuthConfig) -> TestApp {
    app_with(config, |b| b.provider(TrustEmailProvider)).await
}

impl TestApp {
    /// Signs in (creating on first use) a passwordless user; returns
    /// (access, refresh).
    pub async fn passwordless(&self, email: &str) -> (String, String) {
        let sign_in = self
            .manager
            .sign_in(
                "trust-email",
                portcullis::ProviderRequest::new(json!({ "email": email })),
            )
            .await
            .expect("passwordless sign-in");
        (
            sign_in.tokens.access_token.clone(),
            sign_in.tokens.refresh_token.clone(),
        )
    }
}

/// A test "OAuth" provider: `{"sub", "email", "verified"}` is taken as
/// proven; identities are linked by (fake-oauth, sub).
#[derive(Debug)]
pub struct FakeOAuthProvider;

#[async_trait]
impl portcullis::Provider for FakeOAuthProvider {
    fn info(&self) -> portcullis::ProviderInfo {
        portcullis::ProviderInfo::new("fake-oauth", "oauth")
    }

    async fn authenticate(
        &self,
        _cx: &portcullis::ProviderCx<'_>,
        request: portcullis::ProviderRequest,
    ) -> portcullis::Result<portcullis::Identity> {
        let body: Value = request.body_as()?;
        Ok(
            portcullis::Identity::new("fake-oauth", body["sub"].as_str().unwrap_or_default())
                .with_email(
                    body["email"].as_str().unwrap_or_default(),
                    body["verified"].as_bool().unwrap_or(false),
                ),
        )
    }
}

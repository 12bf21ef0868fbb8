//! Custom hooks: an audit log that records every event, a before-hook
//! that allows sign-up only for one email domain, and one that refuses
//! account deletion while the app's server-only `app_metadata` has
//! `open_invoice` set (the user cannot clear it: `PATCH /users/me` does not
//! take `app_metadata`).
//!
//! ```sh
//! cargo run --example custom_hook
//! curl -s -X POST localhost:8002/auth/register -H 'content-type: application/json' \
//!      -d '{"email": "eve@elsewhere.test", "password": "correct horse battery"}'
//! # 403 {"code":"EMAIL_DOMAIN_NOT_ALLOWED", …}
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use poem::{listener::TcpListener, Server};
use portcullis::{
    api, Action, AuthConfig, AuthManager, Event, Hook, HookError, Result, Secret, Veto,
};
use portcullis_credentials::{CredentialsApi, CredentialsProvider};

/// Keeps one JSON line per event (a real one would write to a table or a
/// log pipeline). After-hooks observe: an error here is logged and never
/// undoes the flow.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    lines: Arc<Mutex<Vec<String>>>,
}

impl AuditLog {
    /// The recorded lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().clone()
    }
}

#[async_trait]
impl Hook for AuditLog {
    async fn after(&self, event: &Event) -> std::result::Result<(), HookError> {
        // Events serialize with an `event` tag and never carry a password
        // hash.
        let line = serde_json::to_string(event)?;
        tracing::info!(target: "audit", "{line}");
        self.lines.lock().push(line);
        Ok(())
    }
}

/// Refuses sign-up (through any provider) outside one domain. A veto stops
/// the flow before anything is written and answers 403 with its own code.
#[derive(Debug)]
pub struct OnlyDomain {
    domain: String,
}

impl OnlyDomain {
    /// Allows `@domain` addresses only.
    pub fn new(domain: &str) -> Self {
        Self {
            domain: format!("@{}", domain.to_ascii_lowercase()),
        }
    }
}

#[async_trait]
impl Hook for OnlyDomain {
    async fn before(&self, action: &Action) -> std::result::Result<(), Veto> {
        match action {
            Action::Register { email, .. }
                if !email.to_ascii_lowercase().ends_with(&self.domain) =>
            {
                Err(Veto::new(
                    "EMAIL_DOMAIN_NOT_ALLOWED",
                    format!("sign-up is limited to {} addresses", &self.domain[1..]),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Refuses `DELETE /auth/account` while the app has flagged an open
/// invoice. The flag is server-only metadata, set by the app with
/// [`AuthManager::set_app_metadata`]; profile `metadata` would not do, as
/// the user rewrites it at will.
#[derive(Debug)]
pub struct OpenInvoice;

#[async_trait]
impl Hook for OpenInvoice {
    async fn before(&self, action: &Action) -> std::result::Result<(), Veto> {
        match action {
            Action::DeleteAccount { user, .. }
                if user.app_metadata.get("open_invoice") == Some(&serde_json::json!(true)) =>
            {
                Err(Veto::new("OPEN_INVOICE", "settle the open invoice first"))
            }
            _ => Ok(()),
        }
    }
}

fn manager(audit: &AuditLog) -> Result<AuthManager> {
    let mut config = AuthConfig::default();
    config.jwt.secret = Some(Secret::new("example-secret-example-secret-example!"));
    AuthManager::builder(config)
        .provider(CredentialsProvider::new())
        .hook(OnlyDomain::new("example.com"))
        .hook(OpenInvoice)
        .hook(audit.clone())
        .build()
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let audit = AuditLog::default();
    let manager = manager(&audit)?;
    Server::new(TcpListener::bind("127.0.0.1:8002"))
        .run(api::routes(&manager, CredentialsApi::new(&manager)))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use poem::{http::StatusCode, test::TestClient};
    use serde_json::{json, Value};

    use super::*;

    #[tokio::test]
    async fn the_domain_rule_vetoes_and_the_audit_log_records() {
        let audit = AuditLog::default();
        let manager = manager(&audit).expect("config");
        let client = TestClient::new(api::routes(&manager, CredentialsApi::new(&manager)));

        let refused = client
            .post("/auth/register")
            .body_json(&json!({"email": "eve@elsewhere.test", "password": "correct horse battery"}))
            .send()
            .await;
        refused.assert_status(StatusCode::FORBIDDEN);
        let body: Value = refused.0.into_body().into_json().await.expect("json");
        assert_eq!(body["code"], "EMAIL_DOMAIN_NOT_ALLOWED");
        assert!(manager
            .find_user_by_email("eve@elsewhere.test")
            .await
            .expect("store")
            .is_none());

        client
            .post("/auth/register")
            .body_json(&json!({"email": "ann@example.com", "password": "correct horse battery"}))
            .send()
            .await
            .assert_status(StatusCode::CREATED);
        client
            .post("/auth/login")
            .body_json(&json!({"email": "ann@example.com", "password": "correct horse battery"}))
            .send()
            .await
            .assert_status_is_ok();

        let lines = audit.lines();
        let events: Vec<String> = lines
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).expect("json")["event"].to_string())
            .collect();
        assert_eq!(events, ["\"user_registered\"", "\"login_succeeded\""]);
        assert!(
            lines.iter().all(|l| !l.contains("argon2")),
            "no hash in events"
        );
    }

    #[tokio::test]
    async fn the_open_invoice_veto_holds_against_the_user() {
        let manager = manager(&AuditLog::default()).expect("config");
        let client = TestClient::new(api::routes(&manager, CredentialsApi::new(&manager)));
        let creds = json!({"email": "bo@example.com", "password": "correct horse battery"});
        client
            .post("/auth/register")
            .body_json(&creds)
            .send()
            .await
            .assert_status(StatusCode::CREATED);
        let user = manager
            .find_user_by_email("bo@example.com")
            .await
            .expect("store")
            .expect("user");
        let flags = json!({"open_invoice": true});
        manager
            .set_app_metadata(&user.id, flags.as_object().expect("object").clone())
            .await
            .expect("flagged");
        let signed_in = client.post("/auth/login").body_json(&creds).send().await;
        let tokens: Value = signed_in.0.into_body().into_json().await.expect("json");
        let bearer = format!("Bearer {}", tokens["access_token"].as_str().expect("token"));

        // The user cannot clear the flag …
        let refused = client
            .patch("/users/me")
            .header("authorization", &bearer)
            .body_json(&json!({"app_metadata": {}}))
            .send()
            .await;
        refused.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
        // … so deleting the account is vetoed, and it stays.
        let vetoed = client
            .delete("/auth/account")
            .header("authorization", &bearer)
            .body_json(&json!({"password": "correct horse battery"}))
            .send()
            .await;
        vetoed.assert_status(StatusCode::FORBIDDEN);
        let body: Value = vetoed.0.into_body().into_json().await.expect("json");
        assert_eq!(body["code"], "OPEN_INVOICE");
        let stored = manager
            .find_user_by_email("bo@example.com")
            .await
            .expect("store")
            .expect("user");
        assert!(stored.is_active);
        assert_eq!(serde_json::Value::Object(stored.app_metadata), flags);
    }
}

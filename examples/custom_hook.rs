//! Custom hooks: an audit log that records every event, and a before-hook
//! that allows sign-up only for one email domain.
//!
//! ```sh
//! cargo run --example custom_hook
//! curl -s -X POST localhost:8002/auth/register -H 'content-type: application/json' \
//!      -d '{"email": "eve@elsewhere.test", "password": "correct horse battery"}'
//! # 403 {"code":"EMAIL_DOMAIN_NOT_ALLOWED", …}
//! ```

use std::sync::Arc;

use parking_lot::Mutex;
use poem::{listener::TcpListener, Server};
use portcullis::async_trait;
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

fn manager(audit: &AuditLog) -> Result<AuthManager> {
    let mut config = AuthConfig::default();
    config.jwt.secret = Some(Secret::new("example-secret-example-secret-example!"));
    AuthManager::builder(config)
        .provider(CredentialsProvider::new())
        .hook(OnlyDomain::new("example.com"))
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
            .store()
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
}

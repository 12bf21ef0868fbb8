//! Providers from the environment, for servers configured by variables.

use portcullis::{Error, Result};

use crate::provider::OAuthProvider;

/// The variable listing the enabled provider ids.
pub const PROVIDERS_VAR: &str = "PORTCULLIS_OAUTH_PROVIDERS";

/// The providers the environment enables: `PORTCULLIS_OAUTH_PROVIDERS` is a
/// comma-separated list of ids (e.g. `github,google,acme`); each id reads
/// `PORTCULLIS_OAUTH_<ID>_CLIENT_ID` and `PORTCULLIS_OAUTH_<ID>_CLIENT_SECRET`
/// (`<ID>` upper-cased, `-` as `_`). `github` and `google` are the presets;
/// any other id is an OpenID Connect provider found by discovery from
/// `PORTCULLIS_OAUTH_<ID>_ISSUER`. Discovery runs now, so a wrong issuer
/// fails at start. No variable (or an empty list): no providers.
///
/// # Errors
///
/// [`Error::Config`] naming a missing variable, an invalid id or URL, or a
/// failed discovery.
pub async fn providers_from_env() -> Result<Vec<OAuthProvider>> {
    providers_from_vars(|name| std::env::var(name).ok()).await
}

/// [`providers_from_env`] reading variables through `var` (for tests and
/// other configuration sources).
///
/// # Errors
///
/// As [`providers_from_env`].
pub async fn providers_from_vars(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Vec<OAuthProvider>> {
    let list = var(PROVIDERS_VAR).unwrap_or_default();
    let mut providers: Vec<OAuthProvider> = Vec::new();
    for id in list.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        if providers.iter().any(|p| p.id() == id) {
            return Err(Error::Config(
                format!("{PROVIDERS_VAR}: `{id}` is listed twice").into(),
            ));
        }
        let prefix = format!(
            "PORTCULLIS_OAUTH_{}_",
            id.to_ascii_uppercase().replace('-', "_")
        );
        let required = |suffix: &str| {
            let name = format!("{prefix}{suffix}");
            var(&name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::Config(format!("OAuth provider `{id}` needs {name}").into()))
        };
        let client_id = required("CLIENT_ID")?;
        let secret = required("CLIENT_SECRET")?;
        let provider = match id {
            "github" => OAuthProvider::github(client_id, secret),
            "google" => OAuthProvider::google(client_id, secret),
            _ => OAuthProvider::oidc(id, required("ISSUER")?, client_id, secret),
        };
        provider.validate()?;
        if provider.issuer().is_some() {
            provider.discover().await?;
        }
        providers.push(provider);
    }
    Ok(providers)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    async fn from(vars: &[(&str, &str)]) -> Result<Vec<OAuthProvider>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        providers_from_vars(|name| vars.get(name).cloned()).await
    }

    fn config_message(result: Result<Vec<OAuthProvider>>) -> String {
        match result {
            Err(Error::Config(message)) => message.into_owned(),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn nothing_enabled_means_no_providers() {
        assert!(from(&[]).await.unwrap().is_empty());
        assert!(from(&[(PROVIDERS_VAR, " , ")]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn presets_need_their_client() {
        let providers = from(&[
            (PROVIDERS_VAR, "github"),
            ("PORTCULLIS_OAUTH_GITHUB_CLIENT_ID", "id"),
            ("PORTCULLIS_OAUTH_GITHUB_CLIENT_SECRET", "secret"),
        ])
        .await
        .unwrap();
        assert_eq!(providers.len(), 1);
        assert_eq!(providers[0].id(), "github");
        let message = config_message(
            from(&[
                (PROVIDERS_VAR, "github"),
                ("PORTCULLIS_OAUTH_GITHUB_CLIENT_ID", "id"),
            ])
            .await,
        );
        assert!(
            message.contains("PORTCULLIS_OAUTH_GITHUB_CLIENT_SECRET"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn other_ids_need_an_issuer_and_valid_names() {
        let message = config_message(
            from(&[
                (PROVIDERS_VAR, "my-idp"),
                ("PORTCULLIS_OAUTH_MY_IDP_CLIENT_ID", "id"),
                ("PORTCULLIS_OAUTH_MY_IDP_CLIENT_SECRET", "secret"),
            ])
            .await,
        );
        assert!(
            message.contains("PORTCULLIS_OAUTH_MY_IDP_ISSUER"),
            "{message}"
        );
        let message = config_message(
            from(&[
                (PROVIDERS_VAR, "Acme"),
                ("PORTCULLIS_OAUTH_ACME_CLIENT_ID", "id"),
                ("PORTCULLIS_OAUTH_ACME_CLIENT_SECRET", "secret"),
                ("PORTCULLIS_OAUTH_ACME_ISSUER", "https://login.acme.test"),
            ])
            .await,
        );
        assert!(message.contains("lower-case"), "{message}");
        let message = config_message(
            from(&[
                (PROVIDERS_VAR, "acme"),
                ("PORTCULLIS_OAUTH_ACME_CLIENT_ID", "id"),
                ("PORTCULLIS_OAUTH_ACME_CLIENT_SECRET", "secret"),
                ("PORTCULLIS_OAUTH_ACME_ISSUER", "http://login.acme.test"),
            ])
            .await,
        );
        assert!(message.contains("https"), "{message}");
    }

    #[tokio::test]
    async fn a_failed_discovery_fails_at_start() {
        let message = config_message(
            from(&[
                (PROVIDERS_VAR, "acme"),
                ("PORTCULLIS_OAUTH_ACME_CLIENT_ID", "id"),
                ("PORTCULLIS_OAUTH_ACME_CLIENT_SECRET", "secret"),
                // Nothing listens on port 9 of the loopback interface.
                ("PORTCULLIS_OAUTH_ACME_ISSUER", "http://127.0.0.1:9"),
            ])
            .await,
        );
        assert!(message.contains("discovery failed"), "{message}");
    }
}

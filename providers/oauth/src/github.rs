//! GitHub's profile: `GET /user`, and `GET /user/emails` for the primary
//! email and whether GitHub verified it.

use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use crate::http::{get_json, FetchError};

/// Headers GitHub's REST API asks for.
const HEADERS: &[(&str, &str)] = &[
    ("accept", "application/vnd.github+json"),
    ("x-github-api-version", "2022-11-28"),
];

/// A GitHub user as the API returned it.
#[derive(Debug)]
pub(crate) struct Profile {
    /// The stable numeric id (logins can be renamed and reused).
    pub(crate) id: u64,
    login: Option<String>,
    name: Option<String>,
    /// The public profile email, if any.
    email: Option<String>,
    emails: Vec<Email>,
    /// What is kept as the identity's profile.
    pub(crate) raw: Value,
}

#[derive(Debug, Deserialize)]
struct User {
    id: u64,
    login: Option<String>,
    name: Option<String>,
    email: Option<String>,
    avatar_url: Option<String>,
    html_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

impl Profile {
    /// The email to sign in with and whether GitHub verified it: the
    /// primary address of `/user/emails`; without it, the profile's public
    /// email, unverified (nothing says GitHub checked it).
    pub(crate) fn email(&self) -> Option<(String, bool)> {
        if let Some(primary) = self.emails.iter().find(|e| e.primary) {
            return Some((primary.email.clone(), primary.verified));
        }
        self.email.clone().map(|email| {
            let verified = self
                .emails
                .iter()
                .any(|e| e.verified && e.email.eq_ignore_ascii_case(&email));
            (email, verified)
        })
    }

    /// The display name, else the login.
    pub(crate) fn display_name(&self) -> Option<&str> {
        self.name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .or(self.login.as_deref())
    }
}

/// Reads the user and their emails with the access token. A token without
/// the `user:email` scope (403/404 on `/user/emails`) falls back to the
/// public profile email.
pub(crate) async fn fetch(
    http: &reqwest::Client,
    api: &Url,
    token: &str,
) -> Result<Profile, FetchError> {
    let base = api.as_str().trim_end_matches('/');
    let user: User = get_json(http, endpoint(base, "user")?, Some(token), HEADERS).await?;
    let emails: Vec<Email> =
        match get_json(http, endpoint(base, "user/emails")?, Some(token), HEADERS).await {
            Ok(emails) => emails,
            Err(FetchError::Status(status)) if status == 403 || status == 404 => Vec::new(),
            Err(err) => return Err(err),
        };
    let raw = json!({
        "id": user.id,
        "login": user.login,
        "name": user.name,
        "avatar_url": user.avatar_url,
        "html_url": user.html_url,
    });
    Ok(Profile {
        id: user.id,
        login: user.login,
        name: user.name,
        email: user.email,
        emails,
        raw,
    })
}

fn endpoint(base: &str, path: &str) -> Result<Url, FetchError> {
    Url::parse(&format!("{base}/{path}")).map_err(FetchError::Url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(email: Option<&str>, emails: Value) -> Profile {
        Profile {
            id: 1,
            login: Some("octo".into()),
            name: None,
            email: email.map(str::to_owned),
            emails: serde_json::from_value(emails).unwrap(),
            raw: Value::Null,
        }
    }

    #[test]
    fn the_primary_email_wins_with_its_verification() {
        let emails = json!([
            {"email": "old@example.com", "primary": false, "verified": true},
            {"email": "octo@example.com", "primary": true, "verified": true},
        ]);
        assert_eq!(
            profile(Some("public@example.com"), emails).email(),
            Some(("octo@example.com".into(), true))
        );
        let unverified = json!([{"email": "octo@example.com", "primary": true, "verified": false}]);
        assert_eq!(
            profile(None, unverified).email(),
            Some(("octo@example.com".into(), false))
        );
    }

    #[test]
    fn without_emails_the_public_email_is_unverified() {
        assert_eq!(
            profile(Some("public@example.com"), json!([])).email(),
            Some(("public@example.com".into(), false))
        );
        assert_eq!(profile(None, json!([])).email(), None);
        assert_eq!(profile(None, json!([])).display_name(), Some("octo"));
    }
}

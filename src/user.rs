//! Users and the identifiers the core hands out.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id (UUID v7: time-ordered, 122 bits of which 74 random).
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// Wraps an existing id (e.g. read from a store).
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

string_id!(
    /// A user's id: a string (UUID v7 text by default), the same in every store
    /// and in the API, so it round-trips unchanged.
    UserId
);
string_id!(
    /// A session's id: one refresh-token family, one signed-in device.
    SessionId
);

/// A user account, as the store keeps it.
///
/// `Serialize` never writes the password hash (events and logs are safe);
/// stores that persist users map it explicitly.
#[derive(Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// Stable id.
    pub id: UserId,
    /// The email as the user typed it.
    pub email: String,
    /// Lower-cased, trimmed email used for lookups and uniqueness.
    pub email_normalized: String,
    /// Display name.
    pub name: Option<String>,
    /// Whether the user proved they own the email.
    pub email_verified: bool,
    /// Inactive users cannot sign in or refresh.
    pub is_active: bool,
    /// Superusers may manage other users.
    pub is_superuser: bool,
    /// PHC-format password hash (Argon2id, or a legacy bcrypt hash); `None`
    /// for users who signed up without a password.
    #[serde(skip_serializing, default)]
    pub password_hash: Option<String>,
    /// Bumped to invalidate every access token issued before.
    pub token_version: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Profile metadata: free-form data the user owns. They read it and
    /// replace it with `PATCH /users/me`; never base a decision on it.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Server-only metadata: written only by the app
    /// ([`AuthManager::set_app_metadata`](crate::AuthManager::set_app_metadata),
    /// hooks through it) and by superusers (`PATCH /users/{id}`), never by
    /// the user, who can read it (`GET /users/me`). Keep plans, roles,
    /// flags and vetoes here; keep secrets in your own tables. Users stored
    /// before it existed load with it empty.
    #[serde(default)]
    pub app_metadata: serde_json::Map<String, serde_json::Value>,
    /// The roles the user holds ([`crate::authz`]): config roles and roles
    /// created at run time, by name. Their permissions are resolved on every
    /// request ([`Principal`](crate::Principal)), so a change applies at
    /// once. Users stored before roles existed load with none.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("email_verified", &self.email_verified)
            .field("is_active", &self.is_active)
            .field("is_superuser", &self.is_superuser)
            .field("has_password", &self.password_hash.is_some())
            .field("token_version", &self.token_version)
            .finish_non_exhaustive()
    }
}

impl User {
    /// A new active, unverified, non-superuser user with a fresh id.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when `email` is not a valid address.
    pub fn new(email: &str, now: DateTime<Utc>) -> Result<Self> {
        // Millisecond precision: what every store (BSON dates) keeps, so
        // the API shows the same `created_at` before and after a round trip.
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let email = email.trim();
        let email_normalized = normalize_email(email)?;
        Ok(Self {
            id: UserId::generate(),
            email: email.to_owned(),
            email_normalized,
            name: None,
            email_verified: false,
            is_active: true,
            is_superuser: false,
            password_hash: None,
            token_version: 0,
            created_at: now,
            updated_at: now,
            metadata: serde_json::Map::new(),
            app_metadata: serde_json::Map::new(),
            roles: Vec::new(),
        })
    }

    /// Whether the user has a password set.
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// Longest accepted email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Validates an email address and returns its canonical form (trimmed,
/// lower-cased), the one key for lookups, uniqueness, rate limits and
/// mailing.
///
/// An address is refused unless lower-casing is all that separates it from
/// its canonical form: one not in Unicode NFKC form (a KELVIN SIGN `\u{212a}`
/// that folds to `k`, full-width letters, decomposed accents) or with a
/// letter whose lower case maps back to another character would otherwise
/// squat, or receive the mail of, the ASCII address it folds to. Quoted
/// local parts and comments are refused too: they parse, but most mail
/// systems cannot deliver to them.
///
/// # Errors
///
/// [`Error::Validation`] with code `INVALID_EMAIL`.
pub fn normalize_email(email: &str) -> Result<String> {
    let invalid = || Error::validation("email", "INVALID_EMAIL", "not a valid email address");
    // The length first, so oversized input costs nothing more.
    if email.len() > MAX_EMAIL_LEN + 64 {
        return Err(invalid());
    }
    let email = email.trim();
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return Err(invalid());
    }
    if email.contains(['"', '(', ')', '\\']) || !is_canonical_unicode(email) {
        return Err(invalid());
    }
    // Only a bare addr-spec: no display name ("Name <a@b>"), no domain
    // literal, and a dotted domain (no `user@localhost`). Built from the
    // defaults with setters: a literal of a foreign struct breaks when the
    // crate adds a field.
    let options = email_address::Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    email_address::EmailAddress::parse_with_options(email, options).map_err(|_| invalid())?;
    Ok(email.to_lowercase())
}

/// Whether `email` is in NFKC form and every letter's case pair is simple
/// (upper-casing its lower case gives the letter back).
fn is_canonical_unicode(email: &str) -> bool {
    use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};
    if email.is_ascii() {
        return true;
    }
    let nfkc = match is_nfkc_quick(email.chars()) {
        IsNormalized::Yes => true,
        IsNormalized::No => false,
        IsNormalized::Maybe => email.nfkc().eq(email.chars()),
    };
    nfkc && email.chars().all(|c| {
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) if l == c => true,
            (Some(l), None) => {
                let mut upper = l.to_uppercase();
                upper.next() == Some(c) && upper.next().is_none()
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_spaces() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").ok().as_deref(),
            Some("alice@example.com")
        );
    }

    #[test]
    fn refuses_bad_addresses() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a b@example.com",
            "Alice <a@example.com>",
            "alice@localhost",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
        let huge = format!("{}@example.com", "a".repeat(60_000));
        assert!(normalize_email(&huge).is_err());
    }

    #[test]
    fn refuses_addresses_that_fold_into_another() {
        for squat in [
            "\u{212a}im@example.com",   // KELVIN SIGN, folds to k
            "\u{ff41}lice@example.com", // FULLWIDTH a
            "\u{130}van@example.com",   // dotted capital I, lowercases to two chars
            "\u{2126}mega@example.com", // OHM SIGN, folds to ω
            "jose\u{301}@example.com",  // decomposed é
            "\"alice\"@example.com",    // quoted local part
            "alice(comment)@example.com",
        ] {
            assert!(normalize_email(squat).is_err(), "{squat:?} accepted");
        }
        // Real non-ASCII addresses in canonical form stay valid.
        assert_eq!(
            normalize_email("Jos\u{e9}@example.com").ok().as_deref(),
            Some("jos\u{e9}@example.com")
        );
        assert_eq!(
            normalize_email("\u{393}\u{3b9}\u{3ce}\u{3c1}\u{3b3}\u{3bf}\u{3c2}@example.com")
                .ok()
                .as_deref(),
            Some("\u{3b3}\u{3b9}\u{3ce}\u{3c1}\u{3b3}\u{3bf}\u{3c2}@example.com")
        );
    }
}

use std::{collections::HashSet, sync::OnceLock};

use crate::{
    config::PasswordConfig,
    error::{Error, Result},
};

/// The bundled list of common passwords (8,400+ distinct entries of 8 characters or
/// more, from Django's list of the 20,000 most common passwords).
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            // Comments are "# " lines: a password may start with '#'.
            .filter(|l| !l.is_empty() && !l.starts_with("# "))
            .collect()
    })
}

/// Password strength rules: length in characters, length in bytes (never
/// truncated), and the common-password list.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    min_chars: usize,
    max_bytes: usize,
    refuse_common: bool,
}

impl PasswordPolicy {
    /// The policy configured in `config`.
    pub fn new(config: &PasswordConfig) -> Self {
        Self {
            min_chars: config.min_chars,
            max_bytes: config.max_bytes,
            refuse_common: config.refuse_common,
        }
    }

    /// Checks a new password. `email` (when known) may not be the password.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] on field `password` with code
    /// `PASSWORD_TOO_SHORT`, `PASSWORD_TOO_LONG` or `PASSWORD_TOO_COMMON`.
    pub fn check(&self, password: &str, email: Option<&str>) -> Result<()> {
        if password.len() > self.max_bytes {
            return Err(Error::validation(
                "password",
                "PASSWORD_TOO_LONG",
                format!("password must be at most {} bytes", self.max_bytes),
            ));
        }
        if password.chars().count() < self.min_chars {
            return Err(Error::validation(
                "password",
                "PASSWORD_TOO_SHORT",
                format!("password must be at least {} characters", self.min_chars),
            ));
        }
        if self.refuse_common {
            let lower = password.to_lowercase();
            let is_email = email.is_some_and(|e| e.trim().eq_ignore_ascii_case(password.trim()));
            if is_email || common_passwords().contains(lower.as_str()) {
                return Err(Error::validation(
                    "password",
                    "PASSWORD_TOO_COMMON",
                    "this password is too common or easy to guess",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<()>) -> Option<&'static str> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn bundled_list_is_large() {
        assert!(common_passwords().len() >= 8400);
        assert!(common_passwords().contains("password"));
        // A password that starts with '#' is an entry, not a comment.
        assert!(common_passwords().contains("#1stunna"));
        assert!(!common_passwords().iter().any(|p| p.starts_with("# ")));
    }

    #[test]
    fn applies_rules() {
        let policy = PasswordPolicy::new(&PasswordConfig::default());
        assert_eq!(
            code(policy.check("short", None)),
            Some("PASSWORD_TOO_SHORT")
        );
        assert_eq!(
            code(policy.check("Password", None)),
            Some("PASSWORD_TOO_COMMON")
        );
        assert_eq!(
            code(policy.check("qwertyuiop", None)),
            Some("PASSWORD_TOO_COMMON")
        );
        assert_eq!(
            code(policy.check("alice@example.com", Some("Alice@example.com"))),
            Some("PASSWORD_TOO_COMMON")
        );
        assert_eq!(
            code(policy.check(&"x".repeat(1025), None)),
            Some("PASSWORD_TOO_LONG")
        );
        assert_eq!(code(policy.check(&"xy".repeat(512), None)), None);
        // 8 characters, more than 8 bytes: counts characters.
        assert_eq!(
            code(policy.check("ééééééé", None)),
            Some("PASSWORD_TOO_SHORT")
        );
        assert_eq!(code(policy.check("Zq8#vT2!mW", None)), None);
    }
}

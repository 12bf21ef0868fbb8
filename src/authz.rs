//! Permissions and role names: their grammar and the one matching rule.
//!
//! A permission is a name of one to eight segments joined by `:`, each
//! segment 1–32 characters of `a-z`, `0-9`, `_`, `-` and `.`
//! (`notes:read`, `billing.invoices:write`). A *pattern* ends in `*`:
//!
//! | Pattern | Grants | Does not grant |
//! |---|---|---|
//! | `notes:read` | `notes:read` | `notes:write`, `notes:read:all` |
//! | `notes:*` | `notes:read`, `notes:drafts:write`, `notes:*` | `notes`, `notebooks:read` |
//! | `*` | every permission and pattern | – |
//!
//! A route requires a plain permission, never a pattern; roles grant plain
//! permissions and patterns. Whether one pattern covers another (an API
//! key's scopes against its owner's grants) follows the same rule: `a:*`
//! covers `a:b:*`, and nothing but `*` covers `*`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest permission, in characters.
pub const MAX_PERMISSION_CHARS: usize = 128;
/// Longest role name, in characters.
pub const MAX_ROLE_NAME_CHARS: usize = 64;
/// Most permissions one role grants.
pub const MAX_ROLE_PERMISSIONS: usize = 128;

const MAX_SEGMENTS: usize = 8;
const MAX_SEGMENT_CHARS: usize = 32;

/// Why a permission or role name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(&'static str);

impl InvalidName {
    /// The reason, as the API's validation error states it.
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

fn valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= MAX_SEGMENT_CHARS
        && segment.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        })
}

const fn segment_byte_ok(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || b == b'.'
}

/// Whether `name` is a plain permission (no `*`): what a route guard may
/// require. A `const fn`, so the guard macros refuse a malformed name at
/// compile time.
pub const fn is_plain_permission(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_PERMISSION_CHARS {
        return false;
    }
    let (mut i, mut segment, mut segments) = (0, 0, 1);
    while i < bytes.len() {
        let b = bytes[i];
        if b == b':' {
            if segment == 0 {
                return false;
            }
            segment = 0;
            segments += 1;
        } else if segment_byte_ok(b) {
            segment += 1;
            if segment > MAX_SEGMENT_CHARS {
                return false;
            }
        } else {
            return false;
        }
        i += 1;
    }
    segment > 0 && segments <= MAX_SEGMENTS
}

/// Whether `name` is a valid role name ([`check_role_name`]), as a
/// `const fn` for the guard macros.
pub const fn is_role_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_ROLE_NAME_CHARS {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if !segment_byte_ok(bytes[i]) {
            return false;
        }
        i += 1;
    }
    true
}

/// A permission or a permission pattern (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Permission(String);

impl Permission {
    /// Checks the grammar.
    ///
    /// # Errors
    ///
    /// [`InvalidName`] for an empty, overlong or malformed name.
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        if name.len() > MAX_PERMISSION_CHARS {
            return Err(InvalidName("a permission has at most 128 characters"));
        }
        if name == "*" {
            return Ok(Self(name.to_owned()));
        }
        let segments: Vec<&str> = name.split(':').collect();
        if segments.len() > MAX_SEGMENTS {
            return Err(InvalidName("a permission has at most 8 segments"));
        }
        let (last, rest) = segments
            .split_last()
            .ok_or(InvalidName("a permission is not empty"))?;
        if !rest.iter().all(|s| valid_segment(s)) || !(*last == "*" || valid_segment(last)) {
            return Err(InvalidName(
                "a permission is segments of a-z, 0-9, '_', '-' and '.' joined by ':', \
                 optionally ending in ':*'",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it ends in `*`.
    pub fn is_pattern(&self) -> bool {
        self.0.ends_with('*')
    }

    /// The part a pattern grants everything under: `notes:` for `notes:*`,
    /// the empty string for `*`; `None` for a plain permission.
    fn prefix(&self) -> Option<&str> {
        self.0.strip_suffix('*')
    }

    /// Whether this grant covers `other` (a permission or a pattern).
    pub fn covers(&self, other: &Permission) -> bool {
        match self.prefix() {
            None => self.0 == other.0,
            Some(prefix) => other.0.starts_with(prefix) && other.0.len() > prefix.len(),
        }
    }

    /// Whether this grant covers the plain permission `wanted` (a pattern
    /// or a name that does not parse is never granted; checked without
    /// allocating, as every guarded request calls it).
    pub fn grants(&self, wanted: &str) -> bool {
        match self.prefix() {
            None => self.0 == wanted,
            Some(prefix) => {
                wanted.starts_with(prefix)
                    && wanted.len() > prefix.len()
                    && is_plain_permission(wanted)
            }
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Permission {
    type Error = InvalidName;

    fn try_from(name: String) -> Result<Self, InvalidName> {
        Permission::parse(&name)
    }
}

impl From<Permission> for String {
    fn from(permission: Permission) -> String {
        permission.0
    }
}

/// Checks a role name: 1–64 characters of `a-z`, `0-9`, `_`, `-` and `.`.
///
/// # Errors
///
/// [`InvalidName`] otherwise.
pub fn check_role_name(name: &str) -> Result<(), InvalidName> {
    if name.is_empty() || name.len() > MAX_ROLE_NAME_CHARS {
        return Err(InvalidName("a role name has 1 to 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(InvalidName(
            "a role name is made of a-z, 0-9, '_', '-' and '.'",
        ));
    }
    Ok(())
}

/// The permissions a caller holds, resolved from their roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet {
    grants: Vec<Permission>,
}

impl PermissionSet {
    /// A set of these grants.
    pub fn new(grants: impl IntoIterator<Item = Permission>) -> Self {
        let mut grants: Vec<Permission> = grants.into_iter().collect();
        grants.sort();
        grants.dedup();
        Self { grants }
    }

    /// Adds grants.
    pub fn extend(&mut self, grants: impl IntoIterator<Item = Permission>) {
        self.grants.extend(grants);
        self.grants.sort();
        self.grants.dedup();
    }

    /// Whether some grant covers the plain permission `wanted`.
    pub fn grants(&self, wanted: &str) -> bool {
        self.grants.iter().any(|g| g.grants(wanted))
    }

    /// Whether some grant covers `other` (a permission or a pattern).
    pub fn covers(&self, other: &Permission) -> bool {
        self.grants.iter().any(|g| g.covers(other))
    }

    /// The grants, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.grants.iter()
    }

    /// Whether it grants nothing.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(name: &str) -> Permission {
        Permission::parse(name).unwrap()
    }

    #[test]
    fn grammar() {
        for ok in [
            "notes:read",
            "a",
            "billing.invoices:write",
            "notes:*",
            "*",
            "a-b:c_d:e.f",
        ] {
            assert!(Permission::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ":",
            "notes:",
            ":read",
            "Notes:read",
            "notes read",
            "notes:*:read",
            "no*",
            "**",
            "notes:**",
            "a:b:c:d:e:f:g:h:i",
            "é:read",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Permission::parse(&"a".repeat(129)).is_err());
        assert!(Permission::parse(&format!("{}:b", "a".repeat(33))).is_err());
        assert!(check_role_name("billing-admin").is_ok());
        assert!(check_role_name("").is_err());
        assert!(check_role_name("Admin").is_err());
        assert!(check_role_name("a:b").is_err());
        assert!(check_role_name(&"a".repeat(65)).is_err());
        for plain in ["notes:read", "a", "billing.invoices:write"] {
            assert!(is_plain_permission(plain), "{plain}");
        }
        for not in [
            "notes:*",
            "*",
            "",
            "a::b",
            "A",
            "a:b:c:d:e:f:g:h:i",
            "notes:",
        ] {
            assert!(!is_plain_permission(not), "{not:?}");
        }
        assert!(is_role_name("billing-admin") && !is_role_name("a:b") && !is_role_name(""));
    }

    #[test]
    fn wildcards_grant_what_is_under_them_and_nothing_else() {
        assert!(p("notes:read").grants("notes:read"));
        assert!(!p("notes:read").grants("notes:write"));
        assert!(!p("notes:read").grants("notes:read:all"));
        assert!(p("notes:*").grants("notes:read"));
        assert!(p("notes:*").grants("notes:drafts:write"));
        assert!(!p("notes:*").grants("notes"));
        assert!(!p("notes:*").grants("notebooks:read"));
        assert!(!p("notes:*").grants("notes:"));
        assert!(!p("notes:*").grants("notes:Read"));
        assert!(p("*").grants("anything:at:all"));
        assert!(!p("*").grants(""));
        assert!(
            !p("*").grants("notes:*"),
            "a pattern is never a granted name"
        );
    }

    #[test]
    fn patterns_cover_narrower_patterns() {
        assert!(p("a:*").covers(&p("a:b:*")));
        assert!(p("a:*").covers(&p("a:b")));
        assert!(!p("a:b:*").covers(&p("a:*")));
        assert!(!p("a:b").covers(&p("a:*")));
        assert!(p("*").covers(&p("*")));
        assert!(!p("a:*").covers(&p("*")));
        assert!(p("a:b").covers(&p("a:b")));
        let set = PermissionSet::new([p("notes:read"), p("billing:*")]);
        assert!(set.grants("billing:refund"));
        assert!(set.covers(&p("billing:invoices:*")));
        assert!(!set.covers(&p("notes:*")));
        assert!(!set.grants("notes:write"));
    }
}

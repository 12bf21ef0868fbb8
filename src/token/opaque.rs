use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly generated opaque token: 256 random bits, URL-safe base64.
///
/// The raw value goes to the client once; stores keep only its
/// [`TokenHash`].
#[derive(Clone)]
pub struct OpaqueToken(String);

impl OpaqueToken {
    /// 256 bits from the OS random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The value to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the value, what stores keep.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken([redacted])")
    }
}

/// SHA-256 of an opaque token, hex-encoded: the only form a store keeps.
///
/// Lookups are by hash equality in the store (an index); the token itself
/// has 256 bits of entropy, so a timing leak of the hash reveals nothing
/// usable. [`TokenHash::matches`] compares in constant time where code
/// compares two hashes itself.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    /// Hashes a token presented by a client.
    pub fn of(token: &str) -> Self {
        Self(hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// Wraps a hash read from a store.
    pub fn from_hex(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    /// The hex form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.0[..self.0.len().min(8)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_unique() {
        let a = OpaqueToken::generate();
        let b = OpaqueToken::generate();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(a.expose()).map(|v| v.len()).ok(),
            Some(32)
        );
        assert_ne!(a.expose(), b.expose());
        assert!(a.hash().matches(&TokenHash::of(a.expose())));
        assert!(!a.hash().matches(&b.hash()));
        assert_eq!(a.hash().as_str().len(), 64);
    }
}

//! Secrets at rest: AES-256-GCM under versioned keys.
//!
//! The first key seals; every key still opens what it sealed, so a
//! rotation adds a new key in front and keeps the old ones until
//! everything has been re-sealed ([`Sealer::needs_reseal`]). Each sealed
//! value is bound to a context (e.g. the owner's user id and the factor id)
//! as associated data: a sealed secret copied onto another record does not
//! open.

use std::fmt;

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    token::Secret,
};

/// Key length: AES-256.
const KEY_BYTES: usize = 32;
/// GCM's 96-bit nonce, random per seal.
const NONCE_BYTES: usize = 12;

/// A sealed secret as a store keeps it: which key, the nonce and the
/// ciphertext with its tag (both URL-safe base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sealed {
    /// Id of the key that sealed it.
    pub key_id: String,
    /// The random nonce.
    pub nonce: String,
    /// Ciphertext and authentication tag.
    pub ciphertext: String,
}

/// Seals and opens secrets with a list of versioned keys; the first one
/// seals. Its `Debug` never shows a key.
#[derive(Clone)]
pub struct Sealer {
    keys: Vec<(String, Aes256Gcm)>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Sealer").field("key_ids", &ids).finish()
    }
}

impl Sealer {
    /// A sealer over `(id, key)` pairs, newest first. Each key is 32 bytes
    /// in URL-safe base64 (padding optional); ids are non-empty and unique.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for no key, an empty or repeated id, or a key that
    /// is not 32 bytes of base64 (the key itself is never repeated).
    pub fn new(keys: impl IntoIterator<Item = (String, Secret)>) -> Result<Self> {
        let mut sealer = Self { keys: Vec::new() };
        for (id, key) in keys {
            if id.is_empty() || sealer.keys.iter().any(|(known, _)| *known == id) {
                return Err(Error::Config(
                    format!("sealing key id `{id}` is empty or repeated").into(),
                ));
            }
            let bytes = URL_SAFE_NO_PAD
                .decode(key.expose().trim_end_matches('='))
                .ok()
                .filter(|b| b.len() == KEY_BYTES)
                .ok_or_else(|| {
                    Error::Config(
                        format!("sealing key `{id}` is not {KEY_BYTES} bytes of base64").into(),
                    )
                })?;
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| Error::Config(format!("sealing key `{id}` is refused").into()))?;
            sealer.keys.push((id, cipher));
        }
        if sealer.keys.is_empty() {
            return Err(Error::Config("no sealing key is configured".into()));
        }
        Ok(sealer)
    }

    /// A fresh random key in the form [`Sealer::new`] takes.
    pub fn generate_key() -> Secret {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Secret::new(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Seals `plaintext` with the current key, bound to `context`.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the cipher fails (it does not for inputs of
    /// any realistic size).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Sealed> {
        let (id, cipher) = self.current();
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| Error::Internal("sealing a secret failed".into()))?;
        Ok(Sealed {
            key_id: id.clone(),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            ciphertext: URL_SAFE_NO_PAD.encode(ciphertext),
        })
    }

    /// Opens `sealed` with the key it names, checking it was sealed for
    /// `context`.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] for an unknown key id (a key removed too early),
    /// malformed fields, another context or tampered data: the secret is
    /// unusable, and nothing about it is shown.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Vec<u8>> {
        let unusable = || Error::Internal("a sealed secret cannot be opened".into());
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(id, _)| *id == sealed.key_id)
            .ok_or_else(unusable)?;
        let nonce = URL_SAFE_NO_PAD
            .decode(&sealed.nonce)
            .ok()
            .filter(|n| n.len() == NONCE_BYTES)
            .ok_or_else(unusable)?;
        let ciphertext = URL_SAFE_NO_PAD
            .decode(&sealed.ciphertext)
            .map_err(|_| unusable())?;
        cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| unusable())
    }

    /// Whether one of this sealer's keys sealed `sealed` (else it cannot
    /// be opened: its key was removed too early).
    pub fn has_key_of(&self, sealed: &Sealed) -> bool {
        self.keys.iter().any(|(id, _)| *id == sealed.key_id)
    }

    /// Whether `sealed` was sealed with an older key (re-seal it with the
    /// current one, then the old key can go).
    pub fn needs_reseal(&self, sealed: &Sealed) -> bool {
        sealed.key_id != self.current().0
    }

    fn current(&self) -> &(String, Aes256Gcm) {
        // `new` refuses an empty list.
        &self.keys[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(ids: &[(&str, &Secret)]) -> Sealer {
        Sealer::new(ids.iter().map(|(id, k)| ((*id).to_owned(), (*k).clone()))).unwrap()
    }

    #[test]
    fn opens_what_it_sealed_and_only_in_its_context() {
        let key = Sealer::generate_key();
        let s = sealer(&[("k1", &key)]);
        let sealed = s.seal(b"top secret", b"user-1/totp").unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert!(!sealed.ciphertext.contains("top secret"));
        assert_eq!(s.open(&sealed, b"user-1/totp").unwrap(), b"top secret");
        assert!(s.open(&sealed, b"user-2/totp").is_err());
        // A fresh nonce per seal: the same secret never seals the same way.
        assert_ne!(s.seal(b"top secret", b"c").unwrap().nonce, sealed.nonce);
    }

    #[test]
    fn tampered_data_or_an_unknown_key_does_not_open() {
        let key = Sealer::generate_key();
        let s = sealer(&[("k1", &key)]);
        let mut sealed = s.seal(b"secret", b"c").unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed.ciphertext).unwrap();
        bytes[0] ^= 1;
        sealed.ciphertext = URL_SAFE_NO_PAD.encode(bytes);
        assert!(s.open(&sealed, b"c").is_err());
        let mut foreign = s.seal(b"secret", b"c").unwrap();
        foreign.key_id = "k0".into();
        assert!(s.open(&foreign, b"c").is_err());
    }

    #[test]
    fn a_rotation_keeps_old_keys_opening_and_seals_with_the_new_one() {
        let (old_key, new_key) = (Sealer::generate_key(), Sealer::generate_key());
        let old = sealer(&[("2026-01", &old_key)]);
        let sealed = old.seal(b"secret", b"c").unwrap();
        let rotated = sealer(&[("2026-12", &new_key), ("2026-01", &old_key)]);
        assert_eq!(rotated.open(&sealed, b"c").unwrap(), b"secret");
        assert!(rotated.needs_reseal(&sealed));
        let resealed = rotated.seal(b"secret", b"c").unwrap();
        assert_eq!(resealed.key_id, "2026-12");
        assert!(!rotated.needs_reseal(&resealed));
        // Without the old key the old value is unusable, not mis-opened.
        assert!(sealer(&[("2026-12", &new_key)])
            .open(&sealed, b"c")
            .is_err());
    }

    #[test]
    fn bad_key_lists_are_configuration_errors_that_do_not_show_the_key() {
        let key = Sealer::generate_key();
        assert!(Sealer::new(Vec::new()).is_err());
        assert!(Sealer::new([(String::new(), key.clone())]).is_err());
        assert!(Sealer::new([("a".into(), key.clone()), ("a".into(), key.clone())]).is_err());
        let short = Secret::new("c2hvcnQ");
        let err = Sealer::new([("a".into(), short)]).unwrap_err().to_string();
        assert!(!err.contains("c2hvcnQ"), "{err}");
        // Padded base64 is accepted too.
        let padded = Secret::new(format!("{}=", key.expose()));
        assert!(Sealer::new([("a".into(), padded)]).is_ok());
        assert!(!format!("{:?}", sealer(&[("a", &key)])).contains(key.expose()));
    }
}

use std::{fmt, sync::Arc};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, PasswordHasher as _, Version,
};
use tokio::sync::Semaphore;

use crate::{
    config::PasswordConfig,
    error::{Error, Result},
};

/// Outcome of [`PasswordHasher::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verification {
    /// The password matched the hash.
    pub valid: bool,
    /// The hash is bcrypt, or Argon2 with other parameters than configured:
    /// re-hash the password now that it is known.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords off the async runtime.
///
/// New hashes are Argon2id (PHC string). bcrypt hashes (`$2a$`, `$2b$`,
/// `$2y$`) verify and report `needs_rehash`. Work runs in
/// `spawn_blocking` under a semaphore (one permit per core by default), so
/// hashing never stalls the runtime and a login flood queues instead of
/// exhausting memory (each Argon2 hash takes `memory_kib` of RAM).
///
/// Verifying against no hash (an unknown email) verifies against a dummy hash
/// with the same parameters, so the answer takes the same time.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    argon: Argon2<'static>,
    params: Params,
    permits: Arc<Semaphore>,
    dummy: String,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.inner.params)
            .field("permits", &self.inner.permits.available_permits())
            .finish()
    }
}

impl PasswordHasher {
    /// Builds a hasher from config and computes its dummy hash (one hash, at
    /// start-up).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for Argon2 parameters out of range.
    pub fn new(config: &PasswordConfig) -> Result<Self> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| Error::Config(format!("invalid Argon2 parameters: {e}").into()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let dummy = argon
            .hash_password(
                b"portcullis-dummy-password",
                &SaltString::generate(&mut OsRng),
            )
            .map_err(Error::internal)?
            .to_string();
        let permits = match config.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                argon,
                params,
                permits: Arc::new(Semaphore::new(permits)),
                dummy,
            }),
        })
    }

    /// Hashes `password` with Argon2id and a fresh random salt.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if hashing fails.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.run(move |inner| {
            inner
                .argon
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
                .map(|h| h.to_string())
                .map_err(Error::internal)
        })
        .await
    }

    /// Verifies `password` against `hash`; with `None`, spends the same time
    /// on the dummy hash and answers invalid.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the blocking task fails. A malformed stored hash
    /// is logged and answers invalid.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<Verification> {
        let password = password.to_owned();
        let hash = hash.map(str::to_owned);
        self.run(move |inner| Ok(inner.verify_blocking(&password, hash.as_deref())))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        // The permit moves into the blocking task: if the request future is
        // dropped, the hash still counts against the bound until it ends.
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let out = work(&inner);
            drop(permit);
            out
        })
        .await
        .map_err(Error::internal)?
    }
}

impl Inner {
    fn verify_blocking(&self, password: &str, hash: Option<&str>) -> Verification {
        let invalid = Verification {
            valid: false,
            needs_rehash: false,
        };
        let Some(hash) = hash else {
            let _ = self.check_argon(password, &self.dummy);
            return invalid;
        };
        if is_bcrypt(hash) {
            let valid = bcrypt::verify(password, hash).unwrap_or_else(|err| {
                tracing::warn!(error = %err, "unreadable bcrypt hash");
                false
            });
            return Verification {
                valid,
                needs_rehash: valid,
            };
        }
        match self.check_argon(password, hash) {
            Ok((valid, current)) => Verification {
                valid,
                needs_rehash: valid && !current,
            },
            Err(err) => {
                tracing::warn!(error = %err, "unreadable password hash");
                invalid
            }
        }
    }

    /// (password matches, hash uses the configured algorithm and parameters)
    fn check_argon(
        &self,
        password: &str,
        hash: &str,
    ) -> argon2::password_hash::Result<(bool, bool)> {
        let parsed = PasswordHash::new(hash)?;
        let valid = self
            .argon
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        let current = parsed.algorithm.as_str() == "argon2id"
            && Params::try_from(&parsed).is_ok_and(|p| {
                p.m_cost() == self.params.m_cost()
                    && p.t_cost() == self.params.t_cost()
                    && p.p_cost() == self.params.p_cost()
            });
        Ok((valid, current))
    }
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(&PasswordConfig {
            memory_kib: 1024,
            iterations: 1,
            ..PasswordConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn hashes_argon2id_and_verifies() {
        let hasher = fast();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        let ok = hasher
            .verify("correct horse battery", Some(&hash))
            .await
            .unwrap();
        assert!(ok.valid && !ok.needs_rehash);
        let bad = hasher.verify("wrong", Some(&hash)).await.unwrap();
        assert!(!bad.valid);
        assert!(!hasher.verify("x", None).await.unwrap().valid);
    }

    #[tokio::test]
    async fn bcrypt_verifies_and_asks_for_rehash() {
        let hasher = fast();
        let legacy = bcrypt::hash("legacy password", 4).unwrap();
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let hash = format!("{prefix}{}", &legacy[4..]);
            let v = hasher.verify("legacy password", Some(&hash)).await.unwrap();
            assert!(v.valid && v.needs_rehash, "{prefix}");
            assert!(!hasher.verify("other", Some(&hash)).await.unwrap().valid);
        }
    }

    #[tokio::test]
    async fn other_parameters_ask_for_rehash() {
        let old = fast();
        let hash = old.hash("some password").await.unwrap();
        let new = PasswordHasher::new(&PasswordConfig {
            memory_kib: 2048,
            iterations: 1,
            ..PasswordConfig::default()
        })
        .unwrap();
        let v = new.verify("some password", Some(&hash)).await.unwrap();
        assert!(v.valid && v.needs_rehash);
    }

    #[tokio::test]
    async fn garbage_hash_is_invalid_not_an_error() {
        let v = fast().verify("pw", Some("not a hash")).await.unwrap();
        assert!(!v.valid);
    }
}

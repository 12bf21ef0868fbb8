use std::{fmt, sync::Arc};

use argon2::{
    password_hash::{rand_core::OsRng, rand_core::RngCore, Output, PasswordHash},
    Algorithm, Argon2, Block, Params, Version,
};
use base64::{engine::general_purpose::STANDARD_NO_PAD, Engine};
use parking_lot::Mutex;
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
///
/// Argon2's working memory (`memory_kib` per hash) comes from a pool of
/// buffers, one per permit, allocated once and reused: memory stays flat at
/// `permits × memory_kib` instead of growing with allocator fragmentation
/// across blocking threads, and no hash pays for fresh page faults.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    permits: Arc<Semaphore>,
    dummy: String,
    buffers: Mutex<Vec<Vec<Block>>>,
}

/// Salt length in bytes (the PHC recommendation).
const SALT_LEN: usize = 16;
/// Hash output length in bytes.
const OUTPUT_LEN: usize = 32;

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
        let permits = match config.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let mut inner = Inner {
            params,
            permits: Arc::new(Semaphore::new(permits)),
            dummy: String::new(),
            buffers: Mutex::new(Vec::with_capacity(permits)),
        };
        inner.dummy = inner.hash_blocking("portcullis-dummy-password")?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Hashes `password` with Argon2id and a fresh random salt.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if hashing fails.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.run(move |inner| inner.hash_blocking(&password)).await
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
    /// Runs Argon2 with a pooled buffer when the parameters are the
    /// configured ones, a temporary one otherwise (old hashes).
    fn argon2(
        &self,
        algorithm: Algorithm,
        version: Version,
        params: Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> argon2::Result<()> {
        let argon = Argon2::new(algorithm, version, params.clone());
        if params.block_count() != self.params.block_count() {
            return argon.hash_password_into_with_memory(
                password,
                salt,
                out,
                vec![Block::default(); params.block_count()],
            );
        }
        let mut blocks = self
            .buffers
            .lock()
            .pop()
            .unwrap_or_else(|| vec![Block::default(); self.params.block_count()]);
        let result = argon.hash_password_into_with_memory(password, salt, out, &mut blocks);
        self.buffers.lock().push(blocks);
        result
    }

    /// An Argon2id PHC string for `password` with a fresh random salt.
    fn hash_blocking(&self, password: &str) -> Result<String> {
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let mut out = [0u8; OUTPUT_LEN];
        self.argon2(
            Algorithm::Argon2id,
            Version::V0x13,
            self.params.clone(),
            password.as_bytes(),
            &salt,
            &mut out,
        )
        .map_err(Error::internal)?;
        Ok(format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost(),
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(out)
        ))
    }

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
        use argon2::password_hash::Error as PhcError;
        let parsed = PasswordHash::new(hash)?;
        let algorithm = Algorithm::try_from(parsed.algorithm)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|_| PhcError::Version)?
            .unwrap_or(Version::V0x13);
        let params = Params::try_from(&parsed)?;
        let expected = parsed.hash.ok_or(PhcError::PhcStringField)?;
        let mut salt = [0u8; 64];
        let salt = parsed
            .salt
            .ok_or(PhcError::PhcStringField)?
            .decode_b64(&mut salt)?;
        let mut out = vec![0u8; expected.len()];
        self.argon2(
            algorithm,
            version,
            params.clone(),
            password.as_bytes(),
            salt,
            &mut out,
        )
        .map_err(|_| PhcError::Crypto)?;
        // Output's equality is constant-time.
        let valid = Output::new(&out)? == expected;
        let current = algorithm == Algorithm::Argon2id
            && version == Version::V0x13
            && params.m_cost() == self.params.m_cost()
            && params.t_cost() == self.params.t_cost()
            && params.p_cost() == self.params.p_cost();
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
    async fn hashes_are_standard_phc_strings() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = fast();
        // Ours verify with the reference implementation…
        let ours = hasher.hash("interop password").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"interop password", &parsed)
            .is_ok());
        // …and the reference implementation's verify with ours.
        let salt = argon2::password_hash::SaltString::generate(&mut OsRng);
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"interop password", &salt)
        .unwrap()
        .to_string();
        let v = hasher
            .verify("interop password", Some(&theirs))
            .await
            .unwrap();
        assert!(v.valid && !v.needs_rehash);
        // argon2i / argon2d hashes verify and are upgraded.
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"interop password", &salt)
        .unwrap()
        .to_string();
        let v = hasher
            .verify("interop password", Some(&argon2i))
            .await
            .unwrap();
        assert!(v.valid && v.needs_rehash);
    }

    #[tokio::test]
    async fn unknown_users_cost_the_same_argon2id_work() {
        // The dummy hash verified for a missing password has the configured
        // algorithm and parameters, whatever they are.
        for (memory_kib, iterations) in [(1024, 1), (2048, 2)] {
            let hasher = PasswordHasher::new(&PasswordConfig {
                memory_kib,
                iterations,
                ..PasswordConfig::default()
            })
            .unwrap();
            let real = hasher.hash("some password").await.unwrap();
            let params = |hash: &str| hash.rsplitn(3, '$').nth(2).map(str::to_owned);
            assert_eq!(params(&hasher.inner.dummy), params(&real));
            assert!(
                real.starts_with(&format!(
                    "$argon2id$v=19$m={memory_kib},t={iterations},p=1$"
                )),
                "{real}"
            );
            assert!(!hasher.verify("some password", None).await.unwrap().valid);
        }
    }

    #[tokio::test]
    async fn hashing_waits_for_a_permit() {
        let hasher = PasswordHasher::new(&PasswordConfig {
            memory_kib: 1024,
            iterations: 1,
            max_concurrent_hashes: 1,
            ..PasswordConfig::default()
        })
        .unwrap();
        // Hold the only permit: a hash must queue instead of running.
        let held = Arc::clone(&hasher.inner.permits)
            .acquire_owned()
            .await
            .unwrap();
        let queued = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash("queued password").await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!queued.is_finished(), "hashed without a permit");
        drop(held);
        let hash = queued.await.unwrap().unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(hasher.inner.permits.available_permits(), 1);
    }

    #[tokio::test]
    async fn garbage_hash_is_invalid_not_an_error() {
        let v = fast().verify("pw", Some("not a hash")).await.unwrap();
        assert!(!v.valid);
    }
}

//! RFC 6238 time-based one-time passwords, computed by `totp-rs`:
//! HMAC-SHA1, 6 digits, 30-second steps, what every authenticator app
//! reads from an `otpauth://` URI.
//!
//! [`Totp::matching_step`] answers *which* step a code belongs to (within
//! the allowed skew), so the caller can accept each step once per user: a
//! store records the last step used and refuses a code of that step or an
//! earlier one.

use std::fmt;

use rand::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use crate::error::{Error, Result};

/// Length of a generated secret: 160 bits, RFC 4226's recommendation.
pub const TOTP_SECRET_BYTES: usize = 20;
/// Seconds per step.
const STEP_SECS: u64 = 30;
/// Digits per code.
const DIGITS: usize = 6;

/// One user's TOTP generator. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Totp {
    inner: TOTP,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("issuer", &self.inner.issuer)
            .field("account_name", &self.inner.account_name)
            .finish_non_exhaustive()
    }
}

impl Totp {
    /// A fresh random secret of [`TOTP_SECRET_BYTES`].
    pub fn generate_secret() -> Vec<u8> {
        let mut secret = vec![0u8; TOTP_SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        secret
    }

    /// A generator over `secret` (at least 16 bytes), labelled `issuer`
    /// and `account_name` in its URI.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the secret is shorter than 128 bits, or the
    /// issuer or account name holds a `:` (the URI label's separator): the
    /// flows pass a generated secret, the configured issuer and a
    /// validated email, so neither can come from a request.
    pub fn new(secret: Vec<u8>, issuer: &str, account_name: &str) -> Result<Self> {
        Self::with_digits(secret, DIGITS, issuer, account_name)
    }

    /// A generator over a secret in base32 (RFC 4648, padding optional),
    /// as [`secret_base32`](Self::secret_base32) shows it: what an
    /// authenticator app (or a test acting as one) does with the setup.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] `INVALID_TOTP_SECRET` for text that is not
    /// base32; otherwise as [`Totp::new`].
    pub fn from_base32(secret: &str, issuer: &str, account_name: &str) -> Result<Self> {
        let bytes = totp_rs::Secret::Encoded(secret.trim_end_matches('=').to_owned())
            .to_bytes()
            .map_err(|_| {
                Error::validation("secret", "INVALID_TOTP_SECRET", "the secret is not base32")
            })?;
        Self::new(bytes, issuer, account_name)
    }

    fn with_digits(
        secret: Vec<u8>,
        digits: usize,
        issuer: &str,
        account_name: &str,
    ) -> Result<Self> {
        TOTP::new(
            Algorithm::SHA1,
            digits,
            0,
            STEP_SECS,
            secret,
            Some(issuer.to_owned()),
            account_name.to_owned(),
        )
        .map(|inner| Self { inner })
        .map_err(|err| Error::Config(format!("TOTP: {err}").into()))
    }

    /// The `otpauth://totp/…` URI an authenticator app scans (as a QR
    /// code) or takes pasted: issuer, account name, secret, algorithm,
    /// digits and period.
    pub fn uri(&self) -> String {
        self.inner.get_url()
    }

    /// The secret in base32, for typing into an app by hand.
    pub fn secret_base32(&self) -> String {
        self.inner.get_secret_base32()
    }

    /// The step number (`unix_time / 30`) of `unix_time`.
    pub fn step_of(unix_time: u64) -> u64 {
        unix_time / STEP_SECS
    }

    /// The code of step `step`.
    pub fn code_at_step(&self, step: u64) -> String {
        self.inner.generate(step.saturating_mul(STEP_SECS))
    }

    /// The step whose code `code` is, among the current step of
    /// `unix_time` and `skew` steps either side, compared in constant time
    /// (every candidate is computed and compared); `None` when none
    /// matches. Spaces in `code` are ignored (apps show `123 456`).
    pub fn matching_step(&self, code: &str, unix_time: u64, skew: u64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let now = Self::step_of(unix_time);
        let mut found = None;
        for step in now.saturating_sub(skew)..=now.saturating_add(skew) {
            let equal: bool = self
                .code_at_step(step)
                .as_bytes()
                .ct_eq(code.as_bytes())
                .into();
            if equal && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the SHA-1 seed and its 8-digit codes.
    const RFC_SEED: &[u8] = b"12345678901234567890";
    const RFC_VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc_6238_test_vectors() {
        let eight = Totp::with_digits(RFC_SEED.to_vec(), 8, "Portcullis", "a@b.c").unwrap();
        let six = Totp::new(RFC_SEED.to_vec(), "Portcullis", "a@b.c").unwrap();
        for (time, code) in RFC_VECTORS {
            let step = Totp::step_of(time);
            assert_eq!(eight.code_at_step(step), code, "T = {time}");
            // Six digits are the last six of the same truncation.
            assert_eq!(six.code_at_step(step), &code[2..], "T = {time}");
            assert_eq!(eight.matching_step(code, time, 0), Some(step));
        }
    }

    #[test]
    fn a_code_matches_its_step_within_the_skew_only() {
        let totp = Totp::new(Totp::generate_secret(), "Portcullis", "a@b.c").unwrap();
        let now = 1_700_000_000;
        let step = Totp::step_of(now);
        let previous = totp.code_at_step(step - 1);
        assert_eq!(totp.matching_step(&previous, now, 1), Some(step - 1));
        assert_eq!(totp.matching_step(&previous, now, 0), None);
        let next = totp.code_at_step(step + 1);
        assert_eq!(totp.matching_step(&next, now, 1), Some(step + 1));
        assert_eq!(
            totp.matching_step(&totp.code_at_step(step - 2), now, 1),
            None
        );
        let spaced = format!(
            "{} {}",
            &totp.code_at_step(step)[..3],
            &totp.code_at_step(step)[3..]
        );
        assert_eq!(totp.matching_step(&spaced, now, 1), Some(step));
        assert_eq!(totp.matching_step("", now, 1), None);
        assert_eq!(totp.matching_step("12345", now, 1), None);
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters_and_debug_hides_the_secret() {
        let totp = Totp::new(RFC_SEED.to_vec(), "Portcullis", "ada@example.com").unwrap();
        let uri = totp.uri();
        assert!(
            uri.starts_with("otpauth://totp/Portcullis:ada%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains(&format!("secret={}", totp.secret_base32())),
            "{uri}"
        );
        assert!(uri.contains("issuer=Portcullis"), "{uri}");
        assert_eq!(totp.secret_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert!(!format!("{totp:?}").contains("GEZDGNBV"));
        let again = Totp::from_base32(&totp.secret_base32(), "Portcullis", "a@b.c").unwrap();
        assert_eq!(again.code_at_step(7), totp.code_at_step(7));
        assert!(Totp::from_base32("not base32!", "Portcullis", "a@b.c").is_err());
    }

    #[test]
    fn short_secrets_and_colons_are_refused() {
        assert!(Totp::new(vec![0; 15], "Portcullis", "a@b.c").is_err());
        assert!(Totp::new(vec![0; 20], "Port:cullis", "a@b.c").is_err());
        assert!(Totp::new(vec![0; 20], "Portcullis", "a:b@c.d").is_err());
    }
}

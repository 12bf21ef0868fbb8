//! Second-factor primitives: secrets sealed at rest with versioned keys
//! ([`Sealer`]) and RFC 6238 time-based one-time passwords ([`Totp`]).
//!
//! These are the building blocks of the second-factor flows
//! (`../shared/DESIGN.md`, "Second factors"): the factor store
//! ([`FactorStore`](crate::store::FactorStore)), enrolment
//! ([`AuthManager::begin_totp_setup`](crate::AuthManager::begin_totp_setup))
//! and the MFA challenge of the sign-in pipeline
//! ([`AuthManager::verify_mfa`](crate::AuthManager::verify_mfa)).

mod seal;
mod totp;

pub use seal::{Sealed, Sealer};
pub use totp::{Totp, TOTP_SECRET_BYTES};

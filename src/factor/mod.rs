//! Second-factor primitives: secrets sealed at rest with versioned keys
//! ([`Sealer`]) and RFC 6238 time-based one-time passwords ([`Totp`]).
//!
//! These are the building blocks of the second-factor flows
//! (`../shared/DESIGN.md`, "Second factors"); the flows themselves (the
//! factor store, enrolment, the MFA challenge in the sign-in pipeline) are
//! not built yet.

mod seal;
mod totp;

pub use seal::{Sealed, Sealer};
pub use totp::{Totp, TOTP_SECRET_BYTES};

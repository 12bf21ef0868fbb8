//! Passwords: hashing (Argon2id, legacy bcrypt) and the strength policy.

mod hasher;
mod policy;

pub use hasher::{PasswordHasher, Verification};
pub use policy::PasswordPolicy;

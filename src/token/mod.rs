//! Tokens: signed access tokens (JWT), opaque refresh and one-time tokens,
//! and the secret newtypes that keep them out of logs.

mod jwt;
mod keys;
mod opaque;
mod secret;

pub use jwt::{AccessClaims, JwtKeys, ACCESS_TOKEN_TYPE};
pub use keys::PublicJwk;
pub use opaque::{OpaqueToken, TokenHash};
pub use secret::Secret;

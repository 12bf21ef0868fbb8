//! Asymmetric access-token keys: PEM parsing, the public key as a JWK for
//! `/.well-known/jwks.json`, and RFC 7638 thumbprints as default `kid`s.
//!
//! A private key is parsed once, at load, and kept parsed ([`PrivateKey`]):
//! jsonwebtoken's `rust_crypto` signers take the key as DER and parse it
//! again on every token (for RSA that is the DER decode, the key validation
//! and the CRT precomputation, more work than the signature itself).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ed25519_dalek::{
    pkcs8::{
        spki::der::pem::LineEnding, DecodePrivateKey as _, DecodePublicKey as _,
        EncodePrivateKey as _,
    },
    Signer as _, SigningKey, VerifyingKey,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use rsa::{
    pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _},
    pkcs1v15,
    signature::{RandomizedSigner as _, SignatureEncoding as _},
    traits::PublicKeyParts as _,
    RsaPrivateKey, RsaPublicKey,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    config::{JwtAlgorithm, JwtKeyConfig},
    error::{Error, Result},
};

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// Longest `kid` accepted.
const MAX_KID_LEN: usize = 128;

/// A public verification key in JWK form (RFC 7517), as published at
/// `GET /.well-known/jwks.json`: `kty` `RSA` with `n` and `e`, or `OKP`
/// with `crv` `Ed25519` and `x`. Never carries private material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PublicJwk {
    /// Key type: `RSA` or `OKP`.
    pub kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `RS256` or `EdDSA`.
    pub alg: String,
    /// The key id tokens carry in their header.
    pub kid: String,
    /// RSA modulus, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve of an OKP key: `Ed25519`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Ed25519 public key, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
}

impl JwtKeyConfig {
    /// A fresh random signing key (Ed25519, or RSA with 2048 bits), e.g.
    /// for tests or a single-node demo. Tokens signed with it die with the
    /// process: in production load a stored key so every node and every
    /// restart share it.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the key cannot be generated or encoded.
    pub fn generate(algorithm: JwtAlgorithm) -> Result<Self> {
        let pem = match algorithm {
            JwtAlgorithm::RS256 => RsaPrivateKey::new(&mut rand::rngs::OsRng, MIN_RSA_BITS)
                .map_err(Error::internal)?
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(Error::internal)?,
            JwtAlgorithm::EdDSA => {
                let mut seed = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
                SigningKey::from_bytes(&seed)
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(Error::internal)?
            }
        };
        Ok(Self::private(algorithm, pem.as_str()))
    }
}

/// A private signing key, parsed once when the configuration is loaded.
pub(crate) enum PrivateKey {
    /// RS256: RSASSA-PKCS1-v1_5 with SHA-256; the key carries its CRT
    /// values and the DigestInfo prefix, both computed at load.
    Rsa(Box<pkcs1v15::SigningKey<Sha256>>),
    /// EdDSA: Ed25519 (RFC 8032), with the public key derived at load.
    Ed25519(Box<SigningKey>),
}

impl PrivateKey {
    /// Signs `message` (the JWS signing input, `header.claims` in
    /// base64url) and returns the raw signature: 256 bytes for a 2048-bit
    /// RSA key, 64 for Ed25519. RSA signs with blinding, as jsonwebtoken
    /// does, so the private operation's timing does not depend on the key.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the RSA private operation fails.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match self {
            Self::Rsa(key) => Ok(key
                .try_sign_with_rng(&mut rand::thread_rng(), message)
                .map_err(Error::internal)?
                .to_vec()),
            Self::Ed25519(key) => Ok(key.sign(message).to_vec()),
        }
    }
}

/// One loaded asymmetric key.
pub(crate) struct AsymmetricKey {
    pub(crate) algorithm: Algorithm,
    /// Present when the configuration gave the private key.
    pub(crate) private: Option<PrivateKey>,
    pub(crate) decoding: DecodingKey,
    pub(crate) jwk: PublicJwk,
}

/// The public half of a configured key, in the forms we need.
enum Public {
    Rsa { n: String, e: String },
    Ed25519 { x: String },
}

impl AsymmetricKey {
    /// Parses one `jwt.keys` entry.
    pub(crate) fn load(config: &JwtKeyConfig, index: usize) -> Result<Self> {
        let name = format!("jwt.keys[{index}]");
        let bad = |what: &str| Error::Config(format!("{name}: {what}").into());
        let (private, public) = match (&config.private_key_pem, &config.public_key_pem) {
            (Some(_), Some(_)) => {
                return Err(bad("set private_key_pem or public_key_pem, not both"));
            }
            (None, None) => return Err(bad("private_key_pem or public_key_pem is required")),
            (Some(private), None) => {
                let pem = private.expose();
                match config.algorithm {
                    JwtAlgorithm::RS256 => {
                        let key = RsaPrivateKey::from_pkcs8_pem(pem)
                            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
                            .map_err(|_| {
                                bad("private_key_pem is not a PKCS#8 or PKCS#1 RSA private key")
                            })?;
                        let public = rsa_public(&key.to_public_key(), &bad)?;
                        (
                            Some(PrivateKey::Rsa(Box::new(pkcs1v15::SigningKey::new(key)))),
                            public,
                        )
                    }
                    JwtAlgorithm::EdDSA => {
                        let key = SigningKey::from_pkcs8_pem(pem)
                            .map_err(|_| bad("private_key_pem is not a PKCS#8 Ed25519 key"))?;
                        let public = ed_public(&key.verifying_key());
                        (Some(PrivateKey::Ed25519(Box::new(key))), public)
                    }
                }
            }
            (None, Some(pem)) => {
                let public = match config.algorithm {
                    JwtAlgorithm::RS256 => {
                        let key = RsaPublicKey::from_public_key_pem(pem)
                            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
                            .map_err(|_| {
                                bad("public_key_pem is not an SPKI or PKCS#1 RSA public key")
                            })?;
                        rsa_public(&key, &bad)?
                    }
                    JwtAlgorithm::EdDSA => {
                        let key = VerifyingKey::from_public_key_pem(pem)
                            .map_err(|_| bad("public_key_pem is not an SPKI Ed25519 key"))?;
                        ed_public(&key)
                    }
                };
                (None, public)
            }
        };
        let kid = match &config.kid {
            Some(kid) => {
                if kid.is_empty() || kid.len() > MAX_KID_LEN || kid.chars().any(char::is_control) {
                    return Err(bad("kid must be 1 to 128 printable characters"));
                }
                kid.clone()
            }
            None => public.thumbprint(),
        };
        let (algorithm, decoding, jwk) = match public {
            Public::Rsa { n, e } => (
                Algorithm::RS256,
                DecodingKey::from_rsa_components(&n, &e)
                    .map_err(|_| bad("unusable RSA public key"))?,
                PublicJwk {
                    kty: "RSA".into(),
                    use_: "sig".into(),
                    alg: "RS256".into(),
                    kid,
                    n: Some(n),
                    e: Some(e),
                    crv: None,
                    x: None,
                },
            ),
            Public::Ed25519 { x } => (
                Algorithm::EdDSA,
                DecodingKey::from_ed_components(&x)
                    .map_err(|_| bad("unusable Ed25519 public key"))?,
                PublicJwk {
                    kty: "OKP".into(),
                    use_: "sig".into(),
                    alg: "EdDSA".into(),
                    kid,
                    n: None,
                    e: None,
                    crv: Some("Ed25519".into()),
                    x: Some(x),
                },
            ),
        };
        Ok(Self {
            algorithm,
            private,
            decoding,
            jwk,
        })
    }
}

fn rsa_public(key: &RsaPublicKey, bad: &dyn Fn(&str) -> Error) -> Result<Public> {
    if key.size() * 8 < MIN_RSA_BITS {
        return Err(bad("RSA keys need at least 2048 bits"));
    }
    Ok(Public::Rsa {
        n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    })
}

fn ed_public(key: &VerifyingKey) -> Public {
    Public::Ed25519 {
        x: URL_SAFE_NO_PAD.encode(key.to_bytes()),
    }
}

impl Public {
    /// RFC 7638: SHA-256 of the required members in lexicographic order,
    /// without whitespace, base64url.
    fn thumbprint(&self) -> String {
        let canonical = match self {
            Self::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            Self::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7638_example_thumbprint() {
        // The example key of RFC 7638, section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let public = Public::Rsa {
            n: n.into(),
            e: "AQAB".into(),
        };
        assert_eq!(
            public.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn refuses_bad_key_configurations() {
        let load = |config: JwtKeyConfig| AsymmetricKey::load(&config, 0).err();
        let mut both = JwtKeyConfig::public(JwtAlgorithm::EdDSA, "x");
        both.private_key_pem = Some("y".into());
        assert!(matches!(load(both), Some(Error::Config(_))));
        let mut neither = JwtKeyConfig::public(JwtAlgorithm::EdDSA, "x");
        neither.public_key_pem = None;
        assert!(matches!(load(neither), Some(Error::Config(_))));
        assert!(load(JwtKeyConfig::private(JwtAlgorithm::RS256, "not a pem")).is_some());
        assert!(load(JwtKeyConfig::public(JwtAlgorithm::EdDSA, "not a pem")).is_some());
    }
}

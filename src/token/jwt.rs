use std::{collections::HashMap, fmt, sync::Arc};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::{
    keys::{AsymmetricKey, PrivateKey},
    PublicJwk,
};
use crate::{
    config::JwtConfig,
    error::{Error, Result},
    user::{SessionId, User},
};

/// Value of the `typ` claim of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "access";

/// Smallest HS256 secret accepted, in bytes.
pub(crate) const MIN_SECRET_BYTES: usize = 32;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccessClaims {
    /// The user's id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Token type, always [`ACCESS_TOKEN_TYPE`].
    pub typ: String,
    /// The user's `token_version` when the token was issued.
    pub ver: u64,
    /// The session (refresh-token family) the token belongs to.
    pub sid: String,
    /// How the session's sign-in was proven (RFC 8176), e.g.
    /// `["pwd", "otp", "mfa"]`; see [`Session::amr`](crate::Session::amr).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the session's sign-in happened (OIDC `auth_time`), seconds
    /// since the epoch: refreshing keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The user's roles when the token was issued. Informational for
    /// services that verify tokens from the JWKS: this service resolves
    /// roles and permissions from the store on every request, so a change
    /// applies here at once and to the claim at the next refresh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The session's active organization, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The user's roles in [`org`](Self::org) when the token was issued
    /// (as informational as [`roles`](Self::roles)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub org_roles: Vec<String>,
}

/// Signs and verifies access tokens: HS256 with `jwt.secret`, or RS256 /
/// EdDSA with `jwt.keys` (the first signs, all verify, each pinned to its
/// own algorithm and selected by the token's `kid`).
pub struct JwtKeys {
    signer: Signer,
    header: Header,
    verifiers: Vec<Verifier>,
    jwks: Vec<PublicJwk>,
    issuer: String,
    audience: String,
    ttl_secs: i64,
    leeway_secs: i64,
    verified: VerifiedCache,
}

/// What signs new access tokens.
enum Signer {
    /// HS256: jsonwebtoken's `encode` (an HMAC key costs nothing to set up).
    Hmac(EncodingKey),
    /// RS256 or EdDSA: the key parsed at load, signing the JWS input
    /// assembled here, because jsonwebtoken's `encode` only takes the key as
    /// DER and parses it again for every token. `header` is the base64url of
    /// the header JSON, exactly as jsonwebtoken serializes [`Header`].
    Asymmetric { key: PrivateKey, header: String },
}

/// One verification key: tokens whose header `kid` equals `kid` (none for
/// the HS256 secret) are checked with it, and only with its algorithm.
struct Verifier {
    kid: Option<String>,
    decoding: DecodingKey,
    validation: Validation,
}

/// Tokens whose signature and claims were already verified, keyed by the
/// whole token string (so only the byte-identical token hits). Expiry is
/// still checked on every use. Bounded: emptied when full.
struct VerifiedCache {
    capacity: usize,
    map: RwLock<HashMap<Box<str>, Arc<AccessClaims>>>,
}

impl VerifiedCache {
    fn get(&self, token: &str) -> Option<Arc<AccessClaims>> {
        if self.capacity == 0 {
            return None;
        }
        self.map.read().get(token).cloned()
    }

    fn insert(&self, token: &str, claims: Arc<AccessClaims>) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.write();
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(token.into(), claims);
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.header.alg)
            .field("kid", &self.header.kid)
            .field("verification_keys", &self.verifiers.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Builds the keys from config.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when neither a secret nor keys are set, the secret
    /// is shorter than 32 bytes, a key does not parse, is too weak, or the
    /// first key has no private part, two keys share a `kid`, or the
    /// lifetime is zero.
    pub fn from_config(config: &JwtConfig) -> Result<Self> {
        if config.access_ttl_secs == 0 {
            return Err(Error::Config("jwt.access_ttl_secs must be positive".into()));
        }
        let validation = |algorithm: Algorithm| {
            let mut validation = Validation::new(algorithm);
            // Expiry is checked against the injected clock, not the system time.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
            validation.set_issuer(&[&config.issuer]);
            validation.set_audience(&[&config.audience]);
            validation
        };
        let mut verifiers = Vec::new();
        let mut signer = None;
        if let Some(secret) = &config.secret {
            if secret.expose().len() < MIN_SECRET_BYTES {
                return Err(Error::Config(
                    format!("jwt.secret must be at least {MIN_SECRET_BYTES} bytes for HS256")
                        .into(),
                ));
            }
            let key = secret.expose().as_bytes();
            verifiers.push(Verifier {
                kid: None,
                decoding: DecodingKey::from_secret(key),
                validation: validation(Algorithm::HS256),
            });
            signer = Some((
                Signer::Hmac(EncodingKey::from_secret(key)),
                Header::new(Algorithm::HS256),
            ));
        }
        let mut jwks = Vec::new();
        for (index, key_config) in config.keys.iter().enumerate() {
            let key = AsymmetricKey::load(key_config, index)?;
            if jwks.iter().any(|jwk: &PublicJwk| jwk.kid == key.jwk.kid) {
                return Err(Error::Config(
                    format!("jwt.keys[{index}]: kid {:?} is used twice", key.jwk.kid).into(),
                ));
            }
            if index == 0 {
                let private = key.private.ok_or(Error::Config(
                    "jwt.keys[0] signs the tokens: it needs private_key_pem".into(),
                ))?;
                let mut header = Header::new(key.algorithm);
                header.kid = Some(key.jwk.kid.clone());
                let encoded = serde_json::to_vec(&header).map_err(Error::internal)?;
                signer = Some((
                    Signer::Asymmetric {
                        key: private,
                        header: URL_SAFE_NO_PAD.encode(encoded),
                    },
                    header,
                ));
            }
            verifiers.push(Verifier {
                kid: Some(key.jwk.kid.clone()),
                decoding: key.decoding,
                validation: validation(key.algorithm),
            });
            jwks.push(key.jwk);
        }
        let (signer, header) = signer.ok_or(Error::Config(
            "jwt.secret (HS256) or jwt.keys (RS256, EdDSA) is required".into(),
        ))?;
        Ok(Self {
            signer,
            header,
            verifiers,
            jwks,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl_secs: i64::try_from(config.access_ttl_secs)
                .map_err(|_| Error::Config("jwt.access_ttl_secs is too large".into()))?,
            leeway_secs: i64::try_from(config.leeway_secs)
                .map_err(|_| Error::Config("jwt.leeway_secs is too large".into()))?,
            verified: VerifiedCache {
                capacity: config.verified_cache_size,
                map: RwLock::new(HashMap::new()),
            },
        })
    }

    /// The public keys that verify access tokens, for
    /// `GET /.well-known/jwks.json`; empty with HS256 (a shared secret is
    /// never published).
    pub fn jwks(&self) -> &[PublicJwk] {
        &self.jwks
    }

    /// The algorithm new tokens are signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.header.alg
    }

    /// Access-token lifetime in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Issues an access token for `user` in `session`.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if signing fails.
    pub fn issue(&self, user: &User, session: &SessionId, now: DateTime<Utc>) -> Result<String> {
        self.sign(&self.claims(user, session, now))
    }

    /// An access token for `user` in `session`, carrying how and when its
    /// sign-in was proven (`amr`, `auth_time`), the user's roles, and the
    /// session's active organization with `org_roles` (the user's roles in
    /// it): what every sign-in and refresh issues.
    ///
    /// # Errors
    ///
    /// As [`issue`](Self::issue).
    pub fn issue_for_session(
        &self,
        user: &User,
        session: &crate::store::Session,
        org_roles: &[String],
        now: DateTime<Utc>,
    ) -> Result<String> {
        let mut claims = self.claims(user, &session.id, now);
        claims.amr.clone_from(&session.amr);
        claims.auth_time = Some(session.created_at.timestamp());
        if let Some(org) = &session.org {
            claims.org = Some(org.clone());
            claims.org_roles = org_roles.to_vec();
        }
        self.sign(&claims)
    }

    fn claims(&self, user: &User, session: &SessionId, now: DateTime<Utc>) -> AccessClaims {
        let iat = now.timestamp();
        AccessClaims {
            sub: user.id.to_string(),
            exp: iat + self.ttl_secs,
            iat,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            typ: ACCESS_TOKEN_TYPE.to_owned(),
            ver: user.token_version,
            sid: session.to_string(),
            amr: Vec::new(),
            auth_time: None,
            roles: user.roles.clone(),
            org: None,
            org_roles: Vec::new(),
        }
    }

    /// The compact JWS of `claims` under the signing key: the same bytes
    /// `jsonwebtoken::encode(&self.header, claims, ..)` produces (both
    /// RS256 and EdDSA signatures are deterministic), without re-parsing an
    /// asymmetric key per token.
    fn sign(&self, claims: &AccessClaims) -> Result<String> {
        let (key, header) = match &self.signer {
            Signer::Hmac(key) => {
                return jsonwebtoken::encode(&self.header, claims, key).map_err(Error::internal)
            }
            Signer::Asymmetric { key, header } => (key, header),
        };
        let claims = serde_json::to_vec(claims).map_err(Error::internal)?;
        // header.claims.signature, each base64url: 4 characters per 3 bytes;
        // 342 covers a 256-byte RSA signature.
        let mut token = String::with_capacity(header.len() + claims.len() * 4 / 3 + 348);
        token.push_str(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = key.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// Verifies the signature (with the key the header's `kid` names, in that
    /// key's algorithm only; no `kid` means the HS256 secret), `iss`, `aud`,
    /// `typ` and `exp` against `now`. Whether the user and session are still valid is the manager's
    /// job.
    ///
    /// A token that verified once is remembered (byte-identical token only,
    /// bounded by `jwt.verified_cache_size`), so a client reusing its token
    /// skips the signature and JSON work; `exp` is checked every time.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthenticated`] for any invalid token.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Arc<AccessClaims>> {
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let rejected = |err: jsonwebtoken::errors::Error| {
                    tracing::debug!(error = %err, "access token rejected");
                    Error::Unauthenticated
                };
                let kid = jsonwebtoken::decode_header(token).map_err(rejected)?.kid;
                let verifier = self
                    .verifiers
                    .iter()
                    .find(|verifier| verifier.kid == kid)
                    .ok_or(Error::Unauthenticated)?;
                let data = jsonwebtoken::decode::<AccessClaims>(
                    token,
                    &verifier.decoding,
                    &verifier.validation,
                )
                .map_err(rejected)?;
                if data.claims.typ != ACCESS_TOKEN_TYPE {
                    return Err(Error::Unauthenticated);
                }
                let claims = Arc::new(data.claims);
                self.verified.insert(token, Arc::clone(&claims));
                claims
            }
        };
        if claims.exp + self.leeway_secs <= now.timestamp() {
            return Err(Error::Unauthenticated);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use chrono::Duration;

    use super::*;
    use crate::token::Secret;

    fn config(secret: &str) -> JwtConfig {
        JwtConfig {
            secret: Some(Secret::new(secret)),
            ..JwtConfig::default()
        }
    }

    fn keys() -> JwtKeys {
        JwtKeys::from_config(&config("0123456789abcdef0123456789abcdef")).unwrap()
    }

    fn user() -> User {
        User::new("a@example.com", Utc::now()).unwrap()
    }

    #[test]
    fn refuses_short_or_missing_secret() {
        assert!(matches!(
            JwtKeys::from_config(&config("short")),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            JwtKeys::from_config(&JwtConfig::default()),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn round_trip_and_expiry() {
        let keys = keys();
        let now = Utc::now();
        let user = user();
        let sid = SessionId::generate();
        let token = keys.issue(&user, &sid, now).unwrap();
        let claims = keys.verify(&token, now).unwrap();
        assert_eq!(claims.sub, user.id.to_string());
        assert_eq!(claims.sid, sid.to_string());
        assert_eq!(claims.exp - claims.iat, 1800);
        assert!(keys.verify(&token, now + Duration::seconds(1799)).is_ok());
        assert!(keys.verify(&token, now + Duration::seconds(1800)).is_err());
        // Cached: still expires.
        assert!(keys.verify(&token, now).is_ok());
        assert!(keys.verify(&token, now + Duration::seconds(1800)).is_err());
    }

    #[test]
    fn cache_only_matches_identical_tokens() {
        let keys = keys();
        let now = Utc::now();
        let token = keys.issue(&user(), &SessionId::generate(), now).unwrap();
        assert!(keys.verify(&token, now).is_ok());
        // Flip one signature character: not in the cache, and invalid.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(keys.verify(&forged, now).is_err());
        let mut config = config("0123456789abcdef0123456789abcdef");
        config.verified_cache_size = 2;
        let small = JwtKeys::from_config(&config).unwrap();
        for _ in 0..5 {
            let t = small.issue(&user(), &SessionId::generate(), now).unwrap();
            assert!(small.verify(&t, now).is_ok());
        }
        assert!(small.verified.map.read().len() <= 2);
    }

    /// RS256 and EdDSA tokens signed with the key parsed at load are the
    /// very bytes jsonwebtoken's own encoder gives for the same header,
    /// claims and key (both schemes are deterministic), and they verify
    /// through `verify` and through a decoder that knows only the published
    /// JWK. A changed byte in the claims fails.
    #[test]
    fn asymmetric_tokens_are_jsonwebtokens_and_verify() {
        use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
        use rsa::pkcs1::EncodeRsaPrivateKey as _;

        use crate::config::{JwtAlgorithm, JwtKeyConfig};

        for (algorithm, alg, header_alg) in [
            (JwtAlgorithm::RS256, Algorithm::RS256, "RS256"),
            (JwtAlgorithm::EdDSA, Algorithm::EdDSA, "EdDSA"),
        ] {
            let key = JwtKeyConfig::generate(algorithm).unwrap();
            let pem = key.private_key_pem.as_ref().unwrap().expose().to_owned();
            let keys = JwtKeys::from_config(&JwtConfig {
                keys: vec![key],
                ..JwtConfig::default()
            })
            .unwrap();
            assert!(matches!(keys.signer, Signer::Asymmetric { .. }));
            let now = Utc::now();
            let user = user();
            let sid = SessionId::generate();
            let token = keys.issue(&user, &sid, now).unwrap();

            let claims = keys.verify(&token, now).unwrap();
            assert_eq!(claims.sub, user.id.to_string());
            assert_eq!(claims.sid, sid.to_string());

            let kid = keys.jwks()[0].kid.clone();
            let header: serde_json::Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(token.split('.').next().unwrap())
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(
                header,
                serde_json::json!({"typ": "JWT", "alg": header_alg, "kid": kid})
            );

            // The key as the old path handed it to jsonwebtoken: DER.
            let encoding = match algorithm {
                JwtAlgorithm::RS256 => EncodingKey::from_rsa_der(
                    rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
                        .unwrap()
                        .to_pkcs1_der()
                        .unwrap()
                        .as_bytes(),
                ),
                JwtAlgorithm::EdDSA => EncodingKey::from_ed_der(
                    ed25519_dalek::SigningKey::from_pkcs8_pem(&pem)
                        .unwrap()
                        .to_pkcs8_der()
                        .unwrap()
                        .as_bytes(),
                ),
            };
            let mut expected_header = Header::new(alg);
            expected_header.kid = Some(kid.clone());
            assert_eq!(
                token,
                jsonwebtoken::encode(&expected_header, &*claims, &encoding).unwrap()
            );

            let jwk = &keys.jwks()[0];
            let decoding = match algorithm {
                JwtAlgorithm::RS256 => DecodingKey::from_rsa_components(
                    jwk.n.as_deref().unwrap(),
                    jwk.e.as_deref().unwrap(),
                )
                .unwrap(),
                JwtAlgorithm::EdDSA => {
                    DecodingKey::from_ed_components(jwk.x.as_deref().unwrap()).unwrap()
                }
            };
            let mut validation = Validation::new(alg);
            validation.set_audience(&[&claims.aud]);
            let decoded = jsonwebtoken::decode::<AccessClaims>(&token, &decoding, &validation)
                .unwrap()
                .claims;
            assert_eq!(decoded, *claims);

            // Another user id in the claims, same signature: refused.
            let parts: Vec<&str> = token.split('.').collect();
            let mut forged_claims = (*claims).clone();
            forged_claims.sub = User::new("b@example.com", now).unwrap().id.to_string();
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap()),
                parts[2]
            );
            assert!(keys.verify(&forged, now).is_err());
            assert!(jsonwebtoken::decode::<AccessClaims>(&forged, &decoding, &validation).is_err());
        }
    }

    #[test]
    fn refuses_other_keys_audiences_and_alg_none() {
        let keys = keys();
        let now = Utc::now();
        let token = keys.issue(&user(), &SessionId::generate(), now).unwrap();

        let other = JwtKeys::from_config(&config("another-secret-another-secret-xx")).unwrap();
        assert!(other.verify(&token, now).is_err());

        let mut aud = config("0123456789abcdef0123456789abcdef");
        aud.audience = "someone-else".into();
        let aud = JwtKeys::from_config(&aud).unwrap();
        assert!(aud.verify(&token, now).is_err());

        // alg: none with the same claims and an empty signature.
        let payload = token.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(keys.verify(&format!("{header}.{payload}."), now).is_err());
    }
}

//! OpenID Connect: discovery metadata, JWKS and ID-token verification.

use std::{fmt, time::Instant};

use chrono::{DateTime, Utc};
use jsonwebtoken::{
    errors::ErrorKind,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
    Algorithm, DecodingKey, Validation,
};
use portcullis::TokenHash;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: i64 = 60;

/// The fields of a discovery document
/// (`/.well-known/openid-configuration`) the client uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Metadata {
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: String,
    pub(crate) token_endpoint: Option<String>,
    pub(crate) userinfo_endpoint: Option<String>,
    pub(crate) jwks_uri: Option<String>,
    #[serde(default)]
    pub(crate) token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub(crate) id_token_signing_alg_values_supported: Vec<String>,
    /// RFC 9207: the provider adds `iss` to every authorization response.
    #[serde(default)]
    pub(crate) authorization_response_iss_parameter_supported: bool,
}

/// The signature algorithms an ID token may use: asymmetric only (a
/// shared-secret HS256 token or `none` is never accepted), narrowed to
/// what the provider announces (RS256 when it announces nothing usable).
pub(crate) fn signing_algorithms(announced: &[String]) -> Vec<Algorithm> {
    let algorithms: Vec<Algorithm> = announced
        .iter()
        .filter_map(|name| name.parse::<Algorithm>().ok())
        .filter(|alg| asymmetric(*alg))
        .collect();
    if algorithms.is_empty() {
        vec![Algorithm::RS256]
    } else {
        algorithms
    }
}

fn asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// A fetched JWKS: the usable signature keys.
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Jwk>,
    pub(crate) fetched: Instant,
}

impl KeySet {
    /// Parses a JWKS document, keeping the public signature keys this
    /// client can use and skipping the rest (encryption keys, symmetric
    /// keys, unknown key types) instead of failing on them.
    pub(crate) fn parse(document: &Value) -> Self {
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
                    .filter(|jwk| {
                        !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
                            && !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            keys,
            fetched: Instant::now(),
        }
    }
}

/// What an ID token must say.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    /// Accepted `iss` values (the discovered issuer, plus aliases).
    pub(crate) issuers: &'a [String],
    /// The client id: `aud` must contain it (and `azp`, when present, be it).
    pub(crate) client_id: &'a str,
    /// The nonce sent with the authorization request.
    pub(crate) nonce: Option<&'a str>,
    /// Accepted signature algorithms.
    pub(crate) algorithms: &'a [Algorithm],
    /// The current time (the manager's clock).
    pub(crate) now: DateTime<Utc>,
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdTokenError {
    Malformed,
    Algorithm,
    /// No key of the JWKS fits the token (unknown `kid`, or none of its type).
    NoKey,
    Signature,
    Issuer,
    Audience,
    AuthorizedParty,
    Expired,
    NotYetValid,
    Nonce,
    MissingClaim(String),
}

impl IdTokenError {
    /// Whether fetching the JWKS again may help (the provider rotated its
    /// keys).
    pub(crate) fn key_may_have_rotated(&self) -> bool {
        matches!(self, IdTokenError::NoKey | IdTokenError::Signature)
    }
}

impl fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdTokenError::Malformed => f.write_str("the ID token is malformed"),
            IdTokenError::Algorithm => {
                f.write_str("the ID token is signed with an algorithm that is not accepted")
            }
            IdTokenError::NoKey => {
                f.write_str("no key of the provider's JWKS matches the ID token")
            }
            IdTokenError::Signature => f.write_str("the ID token's signature is invalid"),
            IdTokenError::Issuer => f.write_str("the ID token was issued by another issuer"),
            IdTokenError::Audience => f.write_str("the ID token is meant for another client"),
            IdTokenError::AuthorizedParty => {
                f.write_str("the ID token was issued to another party (azp)")
            }
            IdTokenError::Expired => f.write_str("the ID token has expired"),
            IdTokenError::NotYetValid => f.write_str("the ID token is not valid yet"),
            IdTokenError::Nonce => f.write_str("the ID token's nonce does not match this sign-in"),
            IdTokenError::MissingClaim(claim) => {
                write!(f, "the ID token has no valid `{claim}` claim")
            }
        }
    }
}

/// Verifies an ID token (OpenID Connect Core §3.1.3.7): signature by a
/// key of the provider's JWKS with an accepted asymmetric algorithm, `iss`,
/// `aud` (and `azp`), `exp` and `nbf` against `now`, and the nonce.
/// Returns its claims.
pub(crate) fn verify_id_token(
    token: &str,
    keys: &[Jwk],
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, IdTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    let alg = header.alg;
    if !asymmetric(alg) || !expected.algorithms.contains(&alg) {
        return Err(IdTokenError::Algorithm);
    }
    let candidates: Vec<&Jwk> = match &header.kid {
        Some(kid) => keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
            .collect(),
        None => keys.iter().filter(|k| key_fits(k, alg)).collect(),
    };
    if candidates.is_empty() {
        return Err(IdTokenError::NoKey);
    }
    let mut validation = Validation::new(alg);
    validation.set_issuer(expected.issuers);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Time is checked below against the manager's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let mut result = Err(IdTokenError::NoKey);
    for jwk in candidates {
        if !key_fits(jwk, alg) {
            result = Err(IdTokenError::Algorithm);
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            Ok(data) => {
                result = Ok(data.claims);
                break;
            }
            Err(err) => {
                result = Err(match err.kind() {
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidEddsaKey => IdTokenError::Signature,
                    ErrorKind::InvalidAlgorithm => IdTokenError::Algorithm,
                    ErrorKind::InvalidIssuer => IdTokenError::Issuer,
                    ErrorKind::InvalidAudience => IdTokenError::Audience,
                    ErrorKind::MissingRequiredClaim(claim)
                    | ErrorKind::InvalidClaimFormat(claim) => {
                        IdTokenError::MissingClaim(claim.clone())
                    }
                    _ => IdTokenError::Malformed,
                });
                if result != Err(IdTokenError::Signature) {
                    // The signature held: the claims are wrong whatever key.
                    break;
                }
            }
        }
    }
    let claims = result?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

fn check_claims(claims: &Map<String, Value>, expected: &Expected<'_>) -> Result<(), IdTokenError> {
    let now = expected.now.timestamp();
    let exp = numeric_date(claims, "exp")?.ok_or(IdTokenError::MissingClaim("exp".into()))?;
    if exp + LEEWAY_SECS <= now {
        return Err(IdTokenError::Expired);
    }
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err(IdTokenError::NotYetValid);
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(IdTokenError::MissingClaim("sub".into()));
    }
    let several_audiences = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == expected.client_id => {}
        None if !several_audiences => {}
        _ => return Err(IdTokenError::AuthorizedParty),
    }
    if let Some(nonce) = expected.nonce {
        let matches = claims
            .get("nonce")
            .and_then(Value::as_str)
            .is_some_and(|got| TokenHash::of(got).matches(&TokenHash::of(nonce)));
        if !matches {
            return Err(IdTokenError::Nonce);
        }
    }
    Ok(())
}

/// A NumericDate claim (seconds, possibly fractional), if present.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, IdTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(IdTokenError::MissingClaim(name.into())),
        Some(_) => Err(IdTokenError::MissingClaim(name.into())),
    }
}

/// Whether `jwk` can verify `alg`: the key type (and curve) matches the
/// algorithm, and the key's own `alg`, when it names one, is `alg`.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if let Some(key_alg) = jwk.common.key_algorithm {
        if key_alg_name(key_alg) != Some(alg) {
            return false;
        }
    }
    match (&jwk.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            okp.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

fn key_alg_name(alg: KeyAlgorithm) -> Option<Algorithm> {
    alg.to_string().parse().ok()
}

/// The claims kept as the identity's profile: the person, not the token.
pub(crate) fn profile(claims: &Map<String, Value>) -> Value {
    const TECHNICAL: &[&str] = &[
        "iss",
        "aud",
        "exp",
        "iat",
        "nbf",
        "nonce",
        "at_hash",
        "c_hash",
        "auth_time",
        "azp",
        "jti",
        "sid",
        "acr",
        "amr",
    ];
    Value::Object(
        claims
            .iter()
            .filter(|(name, _)| !TECHNICAL.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    )
}

/// `email_verified` as a boolean (some providers send the string "true").
pub(crate) fn email_verified(claims: &Map<String, Value>) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(verified)) => *verified,
        Some(Value::String(verified)) => verified.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    // P-256 key pairs made for these tests only: A is in the JWKS, B is not.
    const KEY_A: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWs/s9yD9LLGCJlMW
56DTRoq/1tOBBUpj+odv8xFDEpuhRANCAASaADYTT2kYD6Be7F/pDFWdBMNEtTjv
0J6Haos/ep2t5/wXNcIMQzwn+QOT1QUNIoFEwlAQ3MzUWDeIZ4lUpS0e
-----END PRIVATE KEY-----";
    const KEY_B: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSCyLTTzlWZ02p7Bd
XI9mlGqVTa4ZMgPnsPicaNS0lu6hRANCAATbhFXUvZGyuZuZTwy8ZQ2YJVBD8PoU
mVwBlB/Xncjg7LLfuSTEwif1+S1gcRVaR3v+fLF+m4BDKsgzFZYptQlT
-----END PRIVATE KEY-----";
    const ISSUER: &str = "https://issuer.example.com";
    const CLIENT: &str = "client-1";

    fn jwks() -> KeySet {
        KeySet::parse(&json!({"keys": [
            // Skipped: symmetric, and an encryption key.
            {"kty": "oct", "k": "c2VjcmV0", "kid": "a"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"},
            {"kty": "EC", "crv": "P-256", "kid": "a", "alg": "ES256", "use": "sig",
             "x": "mgA2E09pGA-gXuxf6QxVnQTDRLU479Ceh2qLP3qdrec",
             "y": "_Bc1wgxDPCf5A5PVBQ0igUTCUBDczNRYN4hniVSlLR4"},
        ]}))
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "aud": CLIENT, "sub": "alice-1",
            "exp": now().timestamp() + 300, "iat": now().timestamp(),
            "nonce": "n-1", "email": "alice@example.com", "email_verified": true,
        })
    }

    fn sign(claims: &Value, pem: &str, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn verify(token: &str) -> Result<Map<String, Value>, IdTokenError> {
        let issuers = [ISSUER.to_owned()];
        let algorithms = [Algorithm::ES256, Algorithm::RS256];
        verify_id_token(
            token,
            &jwks().keys,
            &Expected {
                issuers: &issuers,
                client_id: CLIENT,
                nonce: Some("n-1"),
                algorithms: &algorithms,
                now: now(),
            },
        )
    }

    fn with(changes: Value) -> Value {
        let mut claims = claims();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    }

    #[test]
    fn jwks_keeps_only_public_signature_keys() {
        let keys = jwks().keys;
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].common.key_id.as_deref(), Some("a"));
    }

    #[test]
    fn a_valid_token_gives_its_claims() {
        for kid in [Some("a"), None] {
            let claims = verify(&sign(&claims(), KEY_A, kid)).unwrap();
            assert_eq!(claims["sub"], "alice-1");
            assert!(email_verified(&claims));
        }
        let profile = profile(&verify(&sign(&claims(), KEY_A, None)).unwrap());
        assert_eq!(
            profile,
            json!({"sub": "alice-1", "email": "alice@example.com", "email_verified": true})
        );
    }

    #[test]
    fn each_check_refuses_its_forgery() {
        let cases = [
            (sign(&claims(), KEY_B, Some("a")), IdTokenError::Signature),
            (sign(&claims(), KEY_B, None), IdTokenError::Signature),
            (sign(&claims(), KEY_A, Some("rotated")), IdTokenError::NoKey),
            (
                sign(
                    &with(json!({"iss": "https://evil.example.com"})),
                    KEY_A,
                    None,
                ),
                IdTokenError::Issuer,
            ),
            (
                sign(&with(json!({"aud": "another-client"})), KEY_A, None),
                IdTokenError::Audience,
            ),
            (
                sign(&with(json!({"aud": [CLIENT, "other"]})), KEY_A, None),
                IdTokenError::AuthorizedParty,
            ),
            (
                sign(&with(json!({"azp": "other"})), KEY_A, None),
                IdTokenError::AuthorizedParty,
            ),
            (
                sign(&with(json!({"exp": now().timestamp() - 61})), KEY_A, None),
                IdTokenError::Expired,
            ),
            (
                sign(&with(json!({"nbf": now().timestamp() + 120})), KEY_A, None),
                IdTokenError::NotYetValid,
            ),
            (
                sign(&with(json!({"nonce": "n-2"})), KEY_A, None),
                IdTokenError::Nonce,
            ),
            (
                sign(&with(json!({"nonce": null})), KEY_A, None),
                IdTokenError::Nonce,
            ),
            (
                sign(&with(json!({"exp": null})), KEY_A, None),
                IdTokenError::MissingClaim("exp".into()),
            ),
            (
                sign(&with(json!({"sub": null})), KEY_A, None),
                IdTokenError::MissingClaim("sub".into()),
            ),
            (
                sign(&with(json!({"sub": ""})), KEY_A, None),
                IdTokenError::MissingClaim("sub".into()),
            ),
            ("not.a.jwt".to_owned(), IdTokenError::Malformed),
        ];
        for (token, want) in cases {
            assert_eq!(verify(&token).unwrap_err(), want);
        }
        // Several audiences are fine when azp names this client.
        verify(&sign(
            &with(json!({"aud": [CLIENT, "other"], "azp": CLIENT})),
            KEY_A,
            None,
        ))
        .unwrap();
        // Within the leeway.
        verify(&sign(
            &with(json!({"exp": now().timestamp() - 30})),
            KEY_A,
            None,
        ))
        .unwrap();
    }

    #[test]
    fn symmetric_and_unannounced_algorithms_are_refused() {
        // HS256 with the JWKS's public key material as the secret: the
        // classic algorithm-confusion forgery.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"mgA2E09pGA-gXuxf6QxVnQTDRLU479Ceh2qLP3qdrec"),
        )
        .unwrap();
        assert_eq!(verify(&hs).unwrap_err(), IdTokenError::Algorithm);
        let issuers = [ISSUER.to_owned()];
        let only_rs256 = [Algorithm::RS256];
        let err = verify_id_token(
            &sign(&claims(), KEY_A, None),
            &jwks().keys,
            &Expected {
                issuers: &issuers,
                client_id: CLIENT,
                nonce: Some("n-1"),
                algorithms: &only_rs256,
                now: now(),
            },
        )
        .unwrap_err();
        assert_eq!(err, IdTokenError::Algorithm);
    }

    #[test]
    fn announced_algorithms_keep_only_asymmetric_ones() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(signing_algorithms(&[]), vec![Algorithm::RS256]);
        assert_eq!(
            signing_algorithms(&names(&["HS256", "none", "ES256", "RS256"])),
            vec![Algorithm::ES256, Algorithm::RS256]
        );
        assert_eq!(
            signing_algorithms(&names(&["HS256"])),
            vec![Algorithm::RS256]
        );
    }

    #[test]
    fn email_verified_accepts_bool_or_string() {
        let claims = |v: Value| json!({"email_verified": v}).as_object().unwrap().clone();
        assert!(email_verified(&claims(json!(true))));
        assert!(email_verified(&claims(json!("true"))));
        assert!(!email_verified(&claims(json!(false))));
        assert!(!email_verified(&claims(json!("yes"))));
        assert!(!email_verified(&Map::new()));
    }
}

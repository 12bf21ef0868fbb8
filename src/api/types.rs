//! Request and response bodies shared by the core and provider APIs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem_openapi::{payload::Json, types::Example, ApiResponse, Object};

use poem::web::cookie::CookieJar;

use super::{
    auth::{set_access_cookie, set_token_cookies},
    StrictString,
};
use crate::{
    manager::{AuthManager, SignIn, TokenPair},
    provider::ProviderInfo,
    token::PublicJwk,
    user::User,
};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Object, serde::Serialize)]
#[oai(example)]
pub struct PublicUser {
    /// Stable id (a string; UUID v7 text).
    pub id: String,
    /// Email as given at sign-up.
    pub email: String,
    /// Display name; `null` when none was given.
    #[oai(nullable)]
    pub name: Option<String>,
    /// Whether the user proved they own the email.
    pub email_verified: bool,
    /// Inactive users cannot sign in.
    pub is_active: bool,
    /// Superusers can manage other users.
    pub is_superuser: bool,
    /// Whether a password is set (false for passwordless and OAuth sign-ups).
    pub has_password: bool,
    /// Creation time (RFC 3339).
    #[serde(serialize_with = "super::json::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Profile metadata: free-form data the user owns and replaces with
    /// `PATCH /users/me` (never trusted by the server).
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Server-only metadata: written by the app and by superusers
    /// (`PATCH /users/{id}`), never by the user, who can read it (plans,
    /// roles, flags the app's rules rely on).
    pub app_metadata: BTreeMap<String, serde_json::Value>,
    /// The roles the user holds (`GET /auth/roles` lists what each
    /// grants); changed by superusers at `/users/{id}/roles`.
    pub roles: Vec<String>,
}

impl Example for PublicUser {
    fn example() -> Self {
        Self {
            id: "01936f0e-7c1a-7cc2-9d1e-5b3f2a8e4c10".into(),
            email: "alice@example.com".into(),
            name: Some("Alice".into()),
            email_verified: false,
            is_active: true,
            is_superuser: false,
            has_password: true,
            created_at: DateTime::UNIX_EPOCH,
            metadata: BTreeMap::new(),
            app_metadata: BTreeMap::new(),
            roles: Vec::new(),
        }
    }
}

impl From<&User> for PublicUser {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.clone(),
            name: user.name.clone(),
            email_verified: user.email_verified,
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            has_password: user.has_password(),
            created_at: user.created_at,
            metadata: user
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            app_metadata: user
                .app_metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            roles: user.roles.clone(),
        }
    }
}

/// A token pair. In cookie-only mode (`transport.cookie_only`) the body
/// carries no token: `access_token` and `refresh_token` are left out and
/// the HttpOnly cookies carry them.
#[derive(Clone, Object)]
#[oai(example)]
pub struct TokenBody {
    /// Access token (JWT) for `Authorization: Bearer …`. Absent in
    /// cookie-only mode (the `portcullis_access` cookie carries it).
    #[oai(skip_serializing_if_is_none)]
    pub access_token: Option<String>,
    /// Opaque refresh token for `POST /auth/refresh`; single use. Absent in
    /// cookie-only mode (the `portcullis_refresh` cookie carries it).
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

impl std::fmt::Debug for TokenBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBody")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl Example for TokenBody {
    fn example() -> Self {
        Self {
            access_token: Some(
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl".into(),
            ),
            refresh_token: Some("tW9rI3sCwQ0h4y8Pq1bVd2Zx5nJk7LmA6fE0gR4uT8o".into()),
            token_type: "bearer".into(),
            expires_in: 1800,
        }
    }
}

impl TokenBody {
    /// The body for `pair` as `manager`'s transport allows: both tokens,
    /// or none in cookie-only mode. The one place a token enters a
    /// response body.
    pub fn issued(manager: &AuthManager, pair: &TokenPair) -> Self {
        let in_body = !manager.config().transport.cookie_only;
        Self {
            access_token: in_body.then(|| pair.access_token.clone()),
            refresh_token: in_body.then(|| pair.refresh_token.clone()),
            token_type: "bearer".into(),
            expires_in: pair.expires_in,
        }
    }
}

/// Answer of every sign-in and refresh.
#[derive(Debug, ApiResponse)]
pub enum TokenResponse {
    /// A new token pair. When cookie transport is on, the tokens are also set
    /// as HttpOnly cookies `portcullis_access` (path `/`) and
    /// `portcullis_refresh` (path `/auth/refresh`); in cookie-only mode
    /// they are only there, and the body carries `token_type` and
    /// `expires_in` alone.
    #[oai(status = 200)]
    Ok(
        Json<TokenBody>,
        /// Always `no-store`: token responses must not be cached.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

impl TokenResponse {
    /// The answer for a finished sign-in or refresh: sets the token cookies
    /// (cookie transport) and puts the pair in the body unless cookie-only
    /// mode keeps tokens out of bodies.
    pub fn issue(manager: &AuthManager, jar: &CookieJar, sign_in: &SignIn) -> Self {
        set_token_cookies(manager, jar, sign_in);
        TokenResponse::Ok(
            Json(TokenBody::issued(manager, &sign_in.tokens)),
            "no-store".into(),
        )
    }

    /// The answer for a new access token alone (an organization switch):
    /// sets the access cookie (cookie transport) and puts the token in the
    /// body unless cookie-only mode keeps tokens out of bodies; the refresh
    /// token is unchanged and absent.
    pub fn access_only(
        manager: &AuthManager,
        jar: &CookieJar,
        access_token: String,
        expires_in: i64,
    ) -> Self {
        set_access_cookie(manager, jar, &access_token, expires_in);
        let in_body = !manager.config().transport.cookie_only;
        TokenResponse::Ok(
            Json(TokenBody {
                access_token: in_body.then_some(access_token),
                refresh_token: None,
                token_type: "bearer".into(),
                expires_in,
            }),
            "no-store".into(),
        )
    }
}

/// A provider users can sign in with.
#[derive(Debug, Clone, Object)]
pub struct ProviderObject {
    /// Provider id, e.g. `credentials`.
    pub id: String,
    /// Kind: `password`, `passwordless`, `oauth`, or an integrator's own.
    pub kind: String,
}

impl From<&ProviderInfo> for ProviderObject {
    fn from(info: &ProviderInfo) -> Self {
        Self {
            id: info.id.clone(),
            kind: info.kind.clone(),
        }
    }
}

/// The enabled providers.
#[derive(Debug, Clone, Object)]
pub struct ProviderList {
    /// In registration order.
    pub providers: Vec<ProviderObject>,
}

/// Body of `POST /auth/refresh`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token. May be omitted when the refresh cookie is sent.
    pub refresh_token: Option<StrictString>,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// A JSON Web Key Set (RFC 7517) of the public keys that verify access
/// tokens.
#[derive(Debug, Clone, Object)]
pub struct JwkSet {
    /// Newest first. Empty when tokens are signed with the HS256 secret,
    /// which is never published.
    pub keys: Vec<JwkObject>,
}

/// A public verification key (RFC 7517 / RFC 8037).
#[derive(Debug, Clone, Object)]
pub struct JwkObject {
    /// Key type: `RSA` (RS256) or `OKP` (EdDSA).
    pub kty: String,
    /// Public key use: always `sig`.
    #[oai(rename = "use")]
    pub use_: String,
    /// Algorithm: `RS256` or `EdDSA`.
    pub alg: String,
    /// Key id; an access token's header `kid` names the key that signed it.
    pub kid: String,
    /// RSA modulus (base64url), for `RSA` keys.
    #[oai(skip_serializing_if_is_none)]
    pub n: Option<String>,
    /// RSA public exponent (base64url), for `RSA` keys.
    #[oai(skip_serializing_if_is_none)]
    pub e: Option<String>,
    /// Curve, `Ed25519`, for `OKP` keys.
    #[oai(skip_serializing_if_is_none)]
    pub crv: Option<String>,
    /// The Ed25519 public key (base64url), for `OKP` keys.
    #[oai(skip_serializing_if_is_none)]
    pub x: Option<String>,
}

impl From<&PublicJwk> for JwkObject {
    fn from(jwk: &PublicJwk) -> Self {
        Self {
            kty: jwk.kty.clone(),
            use_: jwk.use_.clone(),
            alg: jwk.alg.clone(),
            kid: jwk.kid.clone(),
            n: jwk.n.clone(),
            e: jwk.e.clone(),
            crv: jwk.crv.clone(),
            x: jwk.x.clone(),
        }
    }
}

/// The `profile` object of `POST /auth/register`: values of the fields the
/// app declared with
/// [`AuthManagerBuilder::registration_field`](crate::AuthManagerBuilder::registration_field).
/// Its schema, `RegistrationProfile`, is written from those declarations
/// when the spec is served ([`super::spec_json`]): each field with its type
/// and limits, the required ones, and no other key. The manager checks the
/// values (422 naming `profile.<field>`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistrationProfile(pub serde_json::Map<String, serde_json::Value>);

/// The schema name of [`RegistrationProfile`].
pub(crate) const REGISTRATION_PROFILE_SCHEMA: &str = "RegistrationProfile";

impl poem_openapi::types::Type for RegistrationProfile {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        REGISTRATION_PROFILE_SCHEMA.into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        poem_openapi::registry::MetaSchemaRef::Reference(REGISTRATION_PROFILE_SCHEMA.into())
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        registry.create_schema::<Self, _>(REGISTRATION_PROFILE_SCHEMA.into(), |_| {
            poem_openapi::registry::MetaSchema {
                description: Some("Values of the app's own registration fields."),
                ..poem_openapi::registry::MetaSchema::new("object")
            }
        });
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl poem_openapi::types::ParseFromJSON for RegistrationProfile {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        match value.unwrap_or_default() {
            serde_json::Value::Object(map) => Ok(Self(map)),
            serde_json::Value::Null => Ok(Self::default()),
            other => Err(poem_openapi::types::ParseError::expected_type(other)),
        }
    }
}

impl poem_openapi::types::ToJSON for RegistrationProfile {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::Object(self.0.clone()))
    }
}

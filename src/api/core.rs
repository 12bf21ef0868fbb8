//! The core routes: refresh, logout, me, providers.

use poem::{web::cookie::CookieJar, Request};
use poem_openapi::{payload::Json, ApiResponse, OpenApi, Tags};

use super::{
    auth::{check_csrf, clear_token_cookies, refresh_cookie},
    caller::Authenticated,
    error_set::*,
    ApiErrors, JwkSet, ProviderList, PublicUser, RefreshRequest, SerdeJson, StrictString,
    TokenResponse,
};
use crate::{error::Error, manager::AuthManager};

/// Tags of the generated API.
#[derive(Debug, Tags)]
pub enum ApiTags {
    /// Sign-up, sign-in, tokens and refresh.
    Auth,
    /// The signed-in user's account: email verification, passwords, email
    /// change, deletion, sessions.
    Account,
    /// Second factors: TOTP, recovery codes, and the second step of a
    /// sign-in.
    Mfa,
    /// Passkeys: registering and managing them, and signing in with one
    /// (alone, or as a sign-in's second factor).
    Passkeys,
    /// Profiles, and user administration for superusers.
    Users,
    /// Roles and their permissions, and who holds them (superusers).
    Roles,
    /// Organizations: members with organization roles, invitations,
    /// custom organization roles, and the session's active organization.
    Organizations,
}

/// Answer of `POST /auth/logout`.
#[derive(Debug, ApiResponse)]
pub enum LogoutResponse {
    /// The session ended: its refresh tokens and access tokens no longer
    /// work, and the token cookies are cleared.
    #[oai(status = 204)]
    Done(
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// Answer of `GET /auth/me`.
#[derive(Debug, ApiResponse)]
pub enum MeResponse {
    /// The signed-in user.
    #[oai(status = 200)]
    Ok(
        SerdeJson<PublicUser>,
        /// `private, no-store`: personal data, not for shared caches.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// Answer of `GET /auth/providers`.
#[derive(Debug, ApiResponse)]
pub enum ProvidersResponse {
    /// The providers users can sign in with, in registration order.
    #[oai(status = 200)]
    Ok(Json<ProviderList>),
}

/// Answer of `GET /.well-known/jwks.json`.
#[derive(Debug, ApiResponse)]
pub enum JwksResponse {
    /// The public keys that verify access tokens.
    #[oai(status = 200)]
    Ok(
        Json<JwkSet>,
        /// `public, max-age=300`: verifiers may cache the set for five
        /// minutes, and fetch it again when a token names an unknown `kid`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// The core API, mounted by [`super::routes`].
#[derive(Debug, Clone)]
pub struct CoreApi {
    manager: AuthManager,
}

impl CoreApi {
    /// The core API over `manager`.
    pub fn new(manager: &AuthManager) -> Self {
        Self {
            manager: manager.clone(),
        }
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl CoreApi {
    /// Rotate a refresh token
    ///
    /// Exchanges a refresh token (from the JSON body, or, when the body is
    /// `{}` and cookie transport is on, from the `portcullis_refresh`
    /// cookie) for a new
    /// pair. Each refresh token works once; presenting a used one ends the
    /// whole session (token theft defence). Sessions last at most 30 days by
    /// default, however often they are refreshed.
    #[oai(path = "/auth/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        req: &Request,
        jar: &CookieJar,
        body: Json<RefreshRequest>,
    ) -> Result<TokenResponse, ApiErrors<{ UNAUTHORIZED | FORBIDDEN | BODY | UNAVAILABLE }>> {
        let from_body = body.0.refresh_token.map(StrictString::into_inner);
        let token = match from_body {
            Some(token) => token,
            None => {
                let token = refresh_cookie(&self.manager, jar).ok_or(Error::InvalidRefreshToken)?;
                check_csrf(&self.manager, req)?;
                token
            }
        };
        let sign_in = self.manager.refresh(&token).await?;
        Ok(TokenResponse::issue(&self.manager, jar, &sign_in))
    }

    /// End this session
    ///
    /// Revokes the caller's session: its refresh tokens stop working and so
    /// does the access token used here, at once. Clears the token cookies.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        jar: &CookieJar,
        caller: Authenticated,
    ) -> Result<LogoutResponse, ApiErrors<{ AUTHED }>> {
        self.manager.logout(&caller).await?;
        clear_token_cookies(&self.manager, jar);
        Ok(LogoutResponse::Done("no-store".into()))
    }

    /// Current user
    ///
    /// The user the access token belongs to.
    #[oai(path = "/auth/me", method = "get", operation_id = "me")]
    async fn me(&self, caller: Authenticated) -> Result<MeResponse, ApiErrors<{ AUTHED }>> {
        Ok(MeResponse::Ok(
            SerdeJson(PublicUser::from(&caller.user)),
            "private, no-store".into(),
        ))
    }

    /// Enabled providers
    ///
    /// The sign-in providers this server accepts.
    #[oai(path = "/auth/providers", method = "get", operation_id = "providers")]
    async fn providers(&self) -> ProvidersResponse {
        ProvidersResponse::Ok(Json(ProviderList {
            providers: self.manager.providers().iter().map(Into::into).collect(),
        }))
    }

    /// Access-token verification keys (JWKS)
    ///
    /// The public keys that verify this server's access tokens, as a JSON
    /// Web Key Set, so other services check tokens locally (signature with
    /// the key named by the token's `kid`, then `iss`, `aud`, `exp` and
    /// `typ` = `access`) without calling this API. A token passes that
    /// check until it expires even after its session ends; services that
    /// must see a logout at once call `GET /auth/me` instead. Empty when
    /// tokens are signed with an HS256 secret (`jwt.secret`), which is never
    /// published; configure `jwt.keys` (RS256 or EdDSA) to use this.
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self) -> JwksResponse {
        JwksResponse::Ok(
            Json(JwkSet {
                keys: self.manager.jwt().jwks().iter().map(Into::into).collect(),
            }),
            "public, max-age=300".into(),
        )
    }
}

//! Passkeys over HTTP (`/auth/passkeys/…`): registering and managing the
//! caller's passkeys, signing in with one, and a passkey answering a
//! sign-in's MFA challenge. The WebAuthn options and answers are the JSON
//! of the browser's API (`navigator.credentials.create` / `.get`), with
//! binary fields in URL-safe base64 (WebAuthn Level 3's `toJSON()` and
//! `parse…OptionsFromJSON()` speak it).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::{web::cookie::CookieJar, Request};
use poem_openapi::{param::Path, payload::Json, ApiResponse, Object, OpenApi};
use serde_json::Value;

use super::{
    account::NoContentResponse,
    auth::{check_csrf, client_info},
    caller::Authenticated,
    error_set::*,
    ApiErrors, ApiTags, StrictString, TokenResponse,
};
use crate::{
    error::Error,
    manager::{AuthManager, MfaAnswer, PasskeyCeremony},
    store::PasskeyRecord,
    token::Secret,
};

/// A started WebAuthn ceremony.
#[derive(Clone, Object)]
pub struct PasskeyOptionsBody {
    /// Send it back with the authenticator's answer; works once.
    pub ceremony_id: String,
    /// `{"publicKey": …}`: the options for `navigator.credentials.create`
    /// (registration) or `.get` (sign-in), binary fields in URL-safe
    /// base64.
    pub options: Value,
    /// Seconds the ceremony stays open.
    pub expires_in: u64,
}

/// Answer of the two `…/options` routes.
#[derive(ApiResponse)]
pub enum PasskeyOptionsResponse {
    /// The options and the ceremony id.
    #[oai(status = 200)]
    Ok(
        Json<PasskeyOptionsBody>,
        /// Always `no-store`: the ceremony id is a one-time secret.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

impl From<PasskeyCeremony> for PasskeyOptionsResponse {
    fn from(ceremony: PasskeyCeremony) -> Self {
        PasskeyOptionsResponse::Ok(
            Json(PasskeyOptionsBody {
                ceremony_id: ceremony.ceremony_id,
                options: ceremony.options,
                expires_in: ceremony.expires_in,
            }),
            "no-store".into(),
        )
    }
}

/// One of the caller's passkeys (no key material).
#[derive(Debug, Clone, Object)]
pub struct PasskeyBody {
    /// The credential id (URL-safe base64): the `{id}` of the routes below.
    pub id: String,
    /// What the owner calls it.
    pub name: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Its last use to sign in.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<PasskeyRecord> for PasskeyBody {
    fn from(record: PasskeyRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            created_at: record.created_at,
            last_used_at: record.last_used_at,
        }
    }
}

/// A passkey just registered, and the account's first recovery codes if
/// this registration made them.
#[derive(Clone, Object)]
pub struct RegisteredPasskeyBody {
    /// The credential id (URL-safe base64): the `{id}` of
    /// `/auth/passkeys/{id}`.
    pub id: String,
    /// What the owner calls it.
    pub name: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Its last use to sign in (none yet).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Ten single-use recovery codes, shown this once (the server keeps
    /// their SHA-256 only), when the account had none: its first passkey
    /// with TOTP off. Each answers one MFA challenge in place of the
    /// passkey (`POST /auth/mfa/verify`); case, spaces and dashes do not
    /// matter. `null` when the account already has a set (TOTP's or an
    /// earlier passkey's), which stays as it was.
    pub recovery_codes: Option<Vec<String>>,
}

impl std::fmt::Debug for RegisteredPasskeyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredPasskeyBody")
            .field("id", &self.id)
            .field("name", &self.name)
            .field(
                "recovery_codes",
                &self.recovery_codes.as_ref().map(Vec::len),
            )
            .finish_non_exhaustive()
    }
}

/// Answer of `POST /auth/passkeys/register`.
#[derive(Debug, ApiResponse)]
pub enum RegisteredPasskeyResponse {
    /// The new passkey (with the first recovery codes, if it made them).
    #[oai(status = 201)]
    Created(
        Json<RegisteredPasskeyBody>,
        /// Always `no-store`: the body can hold recovery codes.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// Answer of `PATCH /auth/passkeys/{id}`.
#[derive(Debug, ApiResponse)]
pub enum PasskeyResponse {
    /// The renamed passkey.
    #[oai(status = 200)]
    Ok(Json<PasskeyBody>),
}

/// The caller's passkeys.
#[derive(Debug, Clone, Object)]
pub struct PasskeyList {
    /// Oldest first.
    pub passkeys: Vec<PasskeyBody>,
}

/// Answer of `GET /auth/passkeys`.
#[derive(Debug, ApiResponse)]
pub enum PasskeyListResponse {
    /// The list.
    #[oai(status = 200)]
    Ok(
        Json<PasskeyList>,
        /// `private, no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// Body of `POST /auth/passkeys/register`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct PasskeyRegisterRequest {
    /// The `ceremony_id` of `POST /auth/passkeys/register/options`.
    pub ceremony_id: StrictString,
    /// A name for it (1 to 64 characters); "Passkey" when absent.
    pub name: Option<StrictString>,
    /// The `PublicKeyCredential` `navigator.credentials.create` returned,
    /// as JSON (`credential.toJSON()`).
    pub credential: BTreeMap<String, Value>,
}

/// Body of `PATCH /auth/passkeys/{id}`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct PasskeyRenameRequest {
    /// The new name (1 to 64 characters).
    pub name: StrictString,
}

/// Body of `POST /auth/passkeys/login/options`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct PasskeySignInOptionsRequest {
    /// Absent: sign in with a passkey alone (the authenticator picks the
    /// account). The `mfa_token` of a 403 `MFA_REQUIRED` answer: a
    /// passkey answers that challenge.
    pub mfa_token: Option<StrictString>,
}

/// Body of `POST /auth/passkeys/login`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct PasskeySignInRequest {
    /// The `ceremony_id` of `POST /auth/passkeys/login/options`.
    pub ceremony_id: StrictString,
    /// The `PublicKeyCredential` `navigator.credentials.get` returned, as
    /// JSON (`credential.toJSON()`).
    pub credential: BTreeMap<String, Value>,
    /// The same `mfa_token` the options were asked with, if any.
    pub mfa_token: Option<StrictString>,
}

/// A credential as the JSON object it came as.
fn object(credential: BTreeMap<String, Value>) -> Value {
    Value::Object(credential.into_iter().collect())
}

macro_rules! redacted_debug {
    ($($ty:ident),*) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($ty), " { [redacted] }"))
            }
        }
    )*};
}

redacted_debug!(
    PasskeyOptionsBody,
    PasskeyOptionsResponse,
    PasskeyRegisterRequest,
    PasskeySignInOptionsRequest,
    PasskeySignInRequest
);

/// The passkey API, mounted by [`super::routes`].
#[derive(Debug, Clone)]
pub struct PasskeyApi {
    manager: AuthManager,
}

impl PasskeyApi {
    /// The passkey API over `manager`.
    pub fn new(manager: &AuthManager) -> Self {
        Self {
            manager: manager.clone(),
        }
    }
}

#[OpenApi(tag = "ApiTags::Passkeys")]
impl PasskeyApi {
    /// Start registering a passkey
    ///
    /// Creation options for `navigator.credentials.create`: a discoverable
    /// credential with user verification, the caller's passkeys excluded.
    /// Needs a verified address (403 `EMAIL_NOT_VERIFIED`), a recent
    /// sign-in (403 `REAUTHENTICATION_REQUIRED`) and, when
    /// a second factor is on, a session that passed it (403
    /// `SECOND_FACTOR_REQUIRED`). 503 `PASSKEYS_NOT_CONFIGURED` without
    /// `mfa.passkeys.rp_id`.
    #[oai(
        path = "/auth/passkeys/register/options",
        method = "post",
        operation_id = "beginPasskeyRegistration"
    )]
    async fn register_options(
        &self,
        caller: Authenticated,
    ) -> Result<PasskeyOptionsResponse, ApiErrors<{ AUTHED }>> {
        Ok(self
            .manager
            .begin_passkey_registration(&caller)
            .await?
            .into())
    }

    /// Register a passkey
    ///
    /// The authenticator's answer to the options, from the same session.
    /// The ceremony works once (410 `TOKEN_GONE` after, or from another
    /// session). 422 `INVALID_PASSKEY` for an answer that fails WebAuthn's
    /// checks (challenge, origin, RP id, user verification); 409
    /// `PASSKEY_ALREADY_REGISTERED` for a credential already registered.
    /// From now on every sign-in with a first factor asks for a second one.
    /// When the account has no recovery codes yet (its first passkey, TOTP
    /// off), the answer holds ten, shown this once: they answer the MFA
    /// challenge if the authenticator is lost. A notice is mailed.
    #[oai(
        path = "/auth/passkeys/register",
        method = "post",
        operation_id = "registerPasskey"
    )]
    async fn register(
        &self,
        caller: Authenticated,
        body: Json<PasskeyRegisterRequest>,
    ) -> Result<RegisteredPasskeyResponse, ApiErrors<{ AUTHED | CONFLICT | GONE | BODY }>> {
        let body = body.0;
        let name = body.name.map(StrictString::into_inner);
        let (record, codes) = self
            .manager
            .finish_passkey_registration(
                &caller,
                &body.ceremony_id.clone().into_inner(),
                name.as_deref(),
                object(body.credential),
            )
            .await?;
        Ok(RegisteredPasskeyResponse::Created(
            Json(RegisteredPasskeyBody {
                id: record.id,
                name: record.name,
                created_at: record.created_at,
                last_used_at: record.last_used_at,
                recovery_codes: codes.map(|codes| codes.0),
            }),
            "no-store".into(),
        ))
    }

    /// My passkeys
    ///
    /// Name, registration and last use of each; no key material.
    #[oai(path = "/auth/passkeys", method = "get", operation_id = "listPasskeys")]
    async fn list(
        &self,
        caller: Authenticated,
    ) -> Result<PasskeyListResponse, ApiErrors<{ AUTHED }>> {
        let passkeys = self.manager.list_passkeys(&caller.user).await?;
        Ok(PasskeyListResponse::Ok(
            Json(PasskeyList {
                passkeys: passkeys.into_iter().map(Into::into).collect(),
            }),
            "private, no-store".into(),
        ))
    }

    /// Rename a passkey
    ///
    /// A new name (1 to 64 characters, trimmed; 422 `INVALID_NAME`
    /// otherwise) for one of the caller's passkeys (404 for any other).
    #[oai(
        path = "/auth/passkeys/:id",
        method = "patch",
        operation_id = "renamePasskey"
    )]
    async fn rename(
        &self,
        caller: Authenticated,
        /// The passkey's id (from `GET /auth/passkeys`).
        id: Path<String>,
        body: Json<PasskeyRenameRequest>,
    ) -> Result<PasskeyResponse, ApiErrors<{ AUTHED | NOT_FOUND | BODY }>> {
        let record = self
            .manager
            .rename_passkey(&caller.user, &id.0, &body.0.name.into_inner())
            .await?;
        Ok(PasskeyResponse::Ok(Json(record.into())))
    }

    /// Remove a passkey
    ///
    /// Needs what registering needs. 409 `LAST_SIGN_IN_METHOD` when it is
    /// the account's only way in. The last second factor (no other
    /// passkey, TOTP off) takes the recovery codes with it. A notice is
    /// mailed.
    #[oai(
        path = "/auth/passkeys/:id",
        method = "delete",
        operation_id = "removePasskey"
    )]
    async fn remove(
        &self,
        caller: Authenticated,
        /// The passkey's id (from `GET /auth/passkeys`).
        id: Path<String>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT }>> {
        self.manager.remove_passkey(&caller, &id.0).await?;
        Ok(NoContentResponse::Done)
    }

    /// Start a passkey sign-in
    ///
    /// Request options for `navigator.credentials.get`. Without
    /// `mfa_token`: a sign-in with a passkey alone, no email typed (the
    /// authenticator offers the site's passkeys). With the `mfa_token` of
    /// a 403 `MFA_REQUIRED` answer: the user's passkeys, to answer that
    /// challenge (404 when the user has none; 410 for a dead challenge).
    /// Counted against the per-IP sign-in limit (429).
    #[oai(
        path = "/auth/passkeys/login/options",
        method = "post",
        operation_id = "beginPasskeySignIn"
    )]
    async fn sign_in_options(
        &self,
        req: &Request,
        body: Json<PasskeySignInOptionsRequest>,
    ) -> Result<
        PasskeyOptionsResponse,
        ApiErrors<{ FORBIDDEN | NOT_FOUND | GONE | BODY | TOO_MANY | UNAVAILABLE }>,
    > {
        let mfa_token = body.0.mfa_token.map(StrictString::into_inner);
        Ok(self
            .manager
            .begin_passkey_sign_in(mfa_token.as_deref(), &client_info(req))
            .await?
            .into())
    }

    /// Sign in with a passkey
    ///
    /// The authenticator's answer, from the client that asked for the
    /// options; the ceremony works once. Without `mfa_token` the passkey
    /// is both factors (user verification): the session's `amr` is `hwk`,
    /// `user`, `mfa`, and no second factor is asked. With it, the passkey
    /// answers the challenge like `POST /auth/mfa/verify`. 422
    /// `INVALID_PASSKEY` for an answer that fails WebAuthn's checks
    /// (signature, challenge, origin, RP id, user verification, a
    /// signature counter that went back: a cloned authenticator); 410
    /// `TOKEN_GONE` for a used, expired or foreign ceremony. With cookie
    /// transport a cross-site request is refused (403 `CSRF_REJECTED`).
    #[oai(
        path = "/auth/passkeys/login",
        method = "post",
        operation_id = "signInWithPasskey"
    )]
    async fn sign_in(
        &self,
        req: &Request,
        jar: &CookieJar,
        body: Json<PasskeySignInRequest>,
    ) -> Result<TokenResponse, ApiErrors<{ FORBIDDEN | GONE | BODY | TOO_MANY | UNAVAILABLE }>>
    {
        // Like every sign-in with cookie transport: a cross-site request
        // must not set session cookies (login CSRF).
        if self.manager.config().transport.cookies {
            check_csrf(&self.manager, req).map_err(|_| Error::CsrfRejected)?;
        }
        let body = body.0;
        let client = client_info(req);
        let sign_in = match body.mfa_token {
            None => {
                self.manager
                    .finish_passkey_sign_in(
                        &body.ceremony_id.clone().into_inner(),
                        object(body.credential),
                        client,
                    )
                    .await?
            }
            Some(mfa_token) => {
                let answer = MfaAnswer::Passkey {
                    ceremony_id: Secret::new(body.ceremony_id.into_inner()),
                    credential: object(body.credential),
                };
                self.manager
                    .verify_mfa(&mfa_token.into_inner(), answer, client)
                    .await?
            }
        };
        Ok(TokenResponse::issue(&self.manager, jar, &sign_in))
    }
}

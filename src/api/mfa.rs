//! Second factors over HTTP: enrolment (`/auth/mfa/…`) and the second step
//! of a sign-in (`POST /auth/mfa/verify`).

use chrono::{DateTime, Utc};
use poem::{web::cookie::CookieJar, Request};
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};

use super::{
    account::NoContentResponse,
    auth::{check_csrf, client_info, set_token_cookies},
    caller::Authenticated,
    error_set::*,
    ApiErrors, ApiTags, StrictString, TokenBody, TokenResponse,
};
use crate::{
    error::Error,
    manager::{AuthManager, FactorStatus, MfaAnswer, RecoveryCodes, TotpSetup},
    token::Secret,
};

/// What the caller has enrolled (no secrets).
#[derive(Debug, Clone, Object)]
pub struct FactorStatusBody {
    /// TOTP is on: every sign-in asks for a second factor.
    pub totp: bool,
    /// A TOTP setup is started and waits for its confirming code.
    pub totp_pending: bool,
    /// When TOTP was turned on.
    pub totp_enrolled_at: Option<DateTime<Utc>>,
    /// The last sign-in with a TOTP code.
    pub totp_last_used_at: Option<DateTime<Utc>>,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

impl From<FactorStatus> for FactorStatusBody {
    fn from(status: FactorStatus) -> Self {
        Self {
            totp: status.totp,
            totp_pending: status.totp_pending,
            totp_enrolled_at: status.totp_enrolled_at,
            totp_last_used_at: status.totp_last_used_at,
            recovery_codes_left: u32::try_from(status.recovery_codes_left).unwrap_or(u32::MAX),
        }
    }
}

/// Answer of `GET /auth/mfa`.
#[derive(Debug, ApiResponse)]
pub enum FactorStatusResponse {
    /// The caller's factors.
    #[oai(status = 200)]
    Ok(
        Json<FactorStatusBody>,
        /// `private, no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// A started TOTP setup: what the authenticator app needs.
#[derive(Clone, Object)]
pub struct TotpSetupBody {
    /// The secret in base32 (RFC 4648, no padding), for typing into an app.
    pub secret: String,
    /// The `otpauth://totp/…` URI (SHA-1, 6 digits, 30 s), for a QR code.
    pub otpauth_uri: String,
}

/// Answer of `POST /auth/mfa/totp/setup`.
#[derive(ApiResponse)]
pub enum TotpSetupResponse {
    /// The pending setup; confirm it with a code from the app.
    #[oai(status = 200)]
    Ok(
        Json<TotpSetupBody>,
        /// Always `no-store`: the body holds a secret.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

impl From<TotpSetup> for TotpSetupResponse {
    fn from(setup: TotpSetup) -> Self {
        TotpSetupResponse::Ok(
            Json(TotpSetupBody {
                secret: setup.secret,
                otpauth_uri: setup.uri,
            }),
            "no-store".into(),
        )
    }
}

/// A new set of recovery codes.
#[derive(Clone, Object)]
pub struct RecoveryCodesBody {
    /// Ten single-use codes, shown this once (the server keeps their
    /// SHA-256 only). Each answers one MFA challenge; case, spaces and
    /// dashes do not matter.
    pub recovery_codes: Vec<String>,
}

/// Answer of `POST /auth/mfa/totp/confirm` and
/// `POST /auth/mfa/recovery-codes`.
#[derive(ApiResponse)]
pub enum RecoveryCodesResponse {
    /// The codes; store them somewhere safe.
    #[oai(status = 200)]
    Ok(
        Json<RecoveryCodesBody>,
        /// Always `no-store`: the body holds secrets.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

impl From<RecoveryCodes> for RecoveryCodesResponse {
    fn from(codes: RecoveryCodes) -> Self {
        RecoveryCodesResponse::Ok(
            Json(RecoveryCodesBody {
                recovery_codes: codes.0,
            }),
            "no-store".into(),
        )
    }
}

/// Body of `POST /auth/mfa/totp/confirm`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct TotpCodeRequest {
    /// The 6-digit code the app shows now.
    pub code: StrictString,
}

/// Body of `POST /auth/mfa/enroll/setup`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct EnrollSetupRequest {
    /// The `mfa_token` of the 403 `MFA_SETUP_REQUIRED` answer.
    pub mfa_token: StrictString,
}

/// Body of `POST /auth/mfa/enroll/confirm`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct EnrollConfirmRequest {
    /// The `mfa_token` of the 403 `MFA_SETUP_REQUIRED` answer.
    pub mfa_token: StrictString,
    /// The 6-digit code the app shows now.
    pub code: StrictString,
}

/// A sign-in finished by enrolling: the token pair and the recovery codes.
#[derive(Clone, Object)]
pub struct EnrolledSignInBody {
    /// The token pair, as every sign-in answers it.
    pub tokens: TokenBody,
    /// Ten single-use recovery codes, shown this once.
    pub recovery_codes: Vec<String>,
}

/// Answer of `POST /auth/mfa/enroll/confirm`.
#[derive(ApiResponse)]
pub enum EnrolledSignInResponse {
    /// TOTP is on and the sign-in is done (cookies too with cookie
    /// transport).
    #[oai(status = 200)]
    Ok(
        Json<EnrolledSignInBody>,
        /// Always `no-store`: the body holds secrets.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// Body of `POST /auth/mfa/verify`: the challenge and exactly one answer.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct MfaVerifyRequest {
    /// The `mfa_token` of the 403 `MFA_REQUIRED` answer.
    pub mfa_token: StrictString,
    /// A 6-digit code from the authenticator app.
    pub code: Option<StrictString>,
    /// Or one of the recovery codes.
    pub recovery_code: Option<StrictString>,
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
    EnrollSetupRequest,
    EnrollConfirmRequest,
    EnrolledSignInBody,
    EnrolledSignInResponse,
    TotpSetupBody,
    TotpSetupResponse,
    RecoveryCodesBody,
    RecoveryCodesResponse,
    TotpCodeRequest,
    MfaVerifyRequest
);

impl MfaVerifyRequest {
    fn answer(self) -> Result<(String, MfaAnswer), Error> {
        let token = self.mfa_token.into_inner();
        match (self.code, self.recovery_code) {
            (Some(code), None) => Ok((token, MfaAnswer::Totp(Secret::new(code.into_inner())))),
            (None, Some(code)) => Ok((
                token,
                MfaAnswer::RecoveryCode(Secret::new(code.into_inner())),
            )),
            _ => Err(Error::validation(
                "code",
                "INVALID_MFA_ANSWER",
                "send exactly one of code and recovery_code",
            )),
        }
    }
}

/// The second-factor API, mounted by [`super::routes`].
#[derive(Debug, Clone)]
pub struct MfaApi {
    manager: AuthManager,
}

impl MfaApi {
    /// The second-factor API over `manager`.
    pub fn new(manager: &AuthManager) -> Self {
        Self {
            manager: manager.clone(),
        }
    }
}

#[OpenApi(tag = "ApiTags::Mfa")]
impl MfaApi {
    /// The caller's second factors
    ///
    /// Whether TOTP is on (or a setup pending), when it was turned on and
    /// last used, and how many recovery codes are left. No secrets.
    #[oai(path = "/auth/mfa", method = "get", operation_id = "getFactors")]
    async fn factors(
        &self,
        caller: Authenticated,
    ) -> Result<FactorStatusResponse, ApiErrors<{ AUTHED }>> {
        let status = self.manager.factor_status(&caller).await?;
        Ok(FactorStatusResponse::Ok(
            Json(status.into()),
            "private, no-store".into(),
        ))
    }

    /// Start a TOTP setup
    ///
    /// A new secret for an authenticator app, as base32 and as an
    /// `otpauth://` URI; TOTP is not on until `POST /auth/mfa/totp/confirm`.
    /// A new setup replaces a pending one. Needs a verified address (403
    /// `EMAIL_NOT_VERIFIED`) and a recent sign-in (403
    /// `REAUTHENTICATION_REQUIRED`) that passed the second factor when the
    /// account has one (403 `SECOND_FACTOR_REQUIRED`: TOTP's confirmation
    /// replaces a passkey's recovery codes); 409 `FACTOR_ALREADY_ENROLLED`
    /// when TOTP is on; 503 `MFA_NOT_CONFIGURED` without sealing keys.
    #[oai(
        path = "/auth/mfa/totp/setup",
        method = "post",
        operation_id = "beginTotpSetup"
    )]
    async fn totp_setup(
        &self,
        caller: Authenticated,
    ) -> Result<TotpSetupResponse, ApiErrors<{ AUTHED | CONFLICT }>> {
        Ok(self.manager.begin_totp_setup(&caller).await?.into())
    }

    /// Turn TOTP on
    ///
    /// Confirms the pending setup with a code from the app (±30 s): from
    /// now on every sign-in, whichever way, asks for a second factor. The
    /// answer is ten recovery codes, shown once (a set a passkey brought
    /// stops working: one set per account). 422 `INVALID_MFA_CODE` for
    /// a wrong code; 404 without a pending setup; 410 when another setup
    /// replaced it meanwhile. A notice is mailed.
    #[oai(
        path = "/auth/mfa/totp/confirm",
        method = "post",
        operation_id = "confirmTotp"
    )]
    async fn totp_confirm(
        &self,
        req: &Request,
        caller: Authenticated,
        body: Json<TotpCodeRequest>,
    ) -> Result<
        RecoveryCodesResponse,
        ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT | GONE | BODY | TOO_MANY }>,
    > {
        let code = Secret::new(body.0.code.into_inner());
        Ok(self
            .manager
            .confirm_totp(&caller, &code, &client_info(req))
            .await?
            .into())
    }

    /// Turn TOTP off
    ///
    /// Removes the authenticator app (or a pending setup). The recovery
    /// codes go too unless a passkey is left (they belong to the account's
    /// second factors); without one, sign-in needs the first factor only
    /// from now on. Needs a recent sign-in. A notice is mailed.
    #[oai(
        path = "/auth/mfa/totp",
        method = "delete",
        operation_id = "removeTotp"
    )]
    async fn totp_remove(
        &self,
        caller: Authenticated,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        self.manager.remove_totp(&caller).await?;
        Ok(NoContentResponse::Done)
    }

    /// New recovery codes
    ///
    /// Ten new codes, shown once; the old ones stop working at once. Needs
    /// a recent sign-in and a second factor on: TOTP or a passkey (404
    /// otherwise).
    #[oai(
        path = "/auth/mfa/recovery-codes",
        method = "post",
        operation_id = "regenerateRecoveryCodes"
    )]
    async fn recovery_codes(
        &self,
        caller: Authenticated,
    ) -> Result<RecoveryCodesResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        Ok(self
            .manager
            .regenerate_recovery_codes(&caller)
            .await?
            .into())
    }

    /// Finish a sign-in with a second factor
    ///
    /// The second step after any sign-in that answered 403 `MFA_REQUIRED`:
    /// its `mfa_token` and either a TOTP `code` or a `recovery_code`. A
    /// right answer gets the token pair (and cookies), like any sign-in.
    /// The challenge works once, from the client that signed in, for 5
    /// minutes and 5 wrong answers; wrong answers also count toward the
    /// account's sign-in delay (429). 422 `INVALID_MFA_CODE` for a wrong
    /// or replayed code; 410 `TOKEN_GONE` for a dead challenge; with cookie
    /// transport a cross-site request is refused (403 `CSRF_REJECTED`).
    #[oai(path = "/auth/mfa/verify", method = "post", operation_id = "verifyMfa")]
    async fn verify(
        &self,
        req: &Request,
        jar: &CookieJar,
        body: Json<MfaVerifyRequest>,
    ) -> Result<TokenResponse, ApiErrors<{ FORBIDDEN | GONE | BODY | TOO_MANY | UNAVAILABLE }>>
    {
        // Like every sign-in with cookie transport: a cross-site request
        // must not set session cookies (login CSRF).
        if self.manager.config().transport.cookies {
            check_csrf(&self.manager, req).map_err(|_| Error::CsrfRejected)?;
        }
        let (token, answer) = body.0.answer()?;
        let sign_in = self
            .manager
            .verify_mfa(&token, answer, client_info(req))
            .await?;
        Ok(TokenResponse::issue(&self.manager, jar, &sign_in))
    }

    /// Renew the session with a TOTP code (step-up)
    ///
    /// A fresh code from the authenticator app stands in for a new sign-in
    /// where a flow needs a recent one (403 `REAUTHENTICATION_REQUIRED`):
    /// the session is replaced by a new one, signed in now, with `amr` the
    /// old first factor, `otp` and `mfa`; the old session and its refresh
    /// tokens end. The answer is the new token pair (cookies too with
    /// cookie transport). 404 without TOTP on; 422 `INVALID_MFA_CODE`; a
    /// wrong code counts on the account's sign-in delay (429). A passkey
    /// user steps up by signing in with the passkey.
    #[oai(path = "/auth/mfa/step-up", method = "post", operation_id = "stepUp")]
    async fn step_up(
        &self,
        req: &Request,
        jar: &CookieJar,
        caller: Authenticated,
        body: Json<TotpCodeRequest>,
    ) -> Result<TokenResponse, ApiErrors<{ AUTHED | NOT_FOUND | BODY | TOO_MANY }>> {
        let code = Secret::new(body.0.code.into_inner());
        let sign_in = self
            .manager
            .step_up(&caller, &code, client_info(req))
            .await?;
        Ok(TokenResponse::issue(&self.manager, jar, &sign_in))
    }

    /// Set up TOTP to finish a sign-in
    ///
    /// When config requires a second factor (`mfa.required`) and the user
    /// has none, a sign-in answers 403 `MFA_SETUP_REQUIRED` with a setup
    /// challenge (method `totp_setup`, 15 minutes, from the client that
    /// signed in only). This starts the setup with it: a secret and its
    /// `otpauth://` URI, as `POST /auth/mfa/totp/setup` answers. 403
    /// `EMAIL_NOT_VERIFIED` until the address is verified (the challenge
    /// stays usable meanwhile).
    #[oai(
        path = "/auth/mfa/enroll/setup",
        method = "post",
        operation_id = "beginRequiredTotpSetup"
    )]
    async fn enroll_setup(
        &self,
        req: &Request,
        body: Json<EnrollSetupRequest>,
    ) -> Result<TotpSetupResponse, ApiErrors<{ FORBIDDEN | CONFLICT | GONE | BODY | UNAVAILABLE }>>
    {
        let token = body.0.mfa_token.into_inner();
        Ok(self
            .manager
            .begin_required_totp_setup(&token, &client_info(req))
            .await?
            .into())
    }

    /// Confirm TOTP and finish the sign-in
    ///
    /// The code from the app turns TOTP on and finishes the sign-in the
    /// setup challenge stood for: the token pair (and cookies) with the ten
    /// recovery codes, shown once. 422 `INVALID_MFA_CODE` for a wrong code
    /// (5 per challenge); 410 for a dead challenge; with cookie transport a
    /// cross-site request is refused (403 `CSRF_REJECTED`).
    #[oai(
        path = "/auth/mfa/enroll/confirm",
        method = "post",
        operation_id = "confirmRequiredTotpSetup"
    )]
    async fn enroll_confirm(
        &self,
        req: &Request,
        jar: &CookieJar,
        body: Json<EnrollConfirmRequest>,
    ) -> Result<
        EnrolledSignInResponse,
        ApiErrors<{ FORBIDDEN | NOT_FOUND | CONFLICT | GONE | BODY | TOO_MANY | UNAVAILABLE }>,
    > {
        if self.manager.config().transport.cookies {
            check_csrf(&self.manager, req).map_err(|_| Error::CsrfRejected)?;
        }
        let Json(body) = body;
        let code = Secret::new(body.code.into_inner());
        let (codes, sign_in) = self
            .manager
            .confirm_required_totp_setup(&body.mfa_token.into_inner(), &code, client_info(req))
            .await?;
        set_token_cookies(&self.manager, jar, &sign_in);
        Ok(EnrolledSignInResponse::Ok(
            Json(EnrolledSignInBody {
                tokens: TokenBody::issued(&self.manager, &sign_in.tokens),
                recovery_codes: codes.0,
            }),
            "no-store".into(),
        ))
    }
}

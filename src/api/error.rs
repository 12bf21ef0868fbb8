//! The one JSON error shape and the one place codes map to statuses.

use poem::{http::StatusCode, IntoResponse, Response};
use poem_openapi::{payload::Json, ApiResponse, Object};

use crate::error::{Error, MfaChallenge};

/// Every error answer: `{"code": "…", "message": "…"}`, plus `field` for
/// validation errors and `mfa` for 403 `MFA_REQUIRED`.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `INVALID_CREDENTIALS`.
    pub code: String,
    /// Human-readable message, safe to show.
    pub message: String,
    /// The offending input field, for validation errors.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
    /// The second step of a sign-in, with 403 `MFA_REQUIRED` (answer it at
    /// `POST /auth/mfa/verify`) and 403 `MFA_SETUP_REQUIRED` (method
    /// `totp_setup`: enrol at `POST /auth/mfa/enroll/setup`, then
    /// `/auth/mfa/enroll/confirm`) only.
    #[oai(skip_serializing_if_is_none)]
    pub mfa: Option<Box<MfaChallengeBody>>,
    /// What the caller lacks, with 403 `FORBIDDEN` from a route guard:
    /// `{"permission": "notes:write"}` or `{"role": "admin"}` (an
    /// organization role).
    #[oai(skip_serializing_if_is_none)]
    pub requires: Option<Box<MissingGrant>>,
}

/// What a route guard found missing (403 `FORBIDDEN`): one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct MissingGrant {
    /// The permission the caller's roles do not grant.
    #[oai(skip_serializing_if_is_none)]
    pub permission: Option<String>,
    /// The role the caller does not hold (in the active organization).
    #[oai(skip_serializing_if_is_none)]
    pub role: Option<String>,
}

/// A pending MFA challenge (403 `MFA_REQUIRED`): the first factor was
/// right, and the user has a second factor on.
#[derive(Clone, PartialEq, Eq, Object)]
pub struct MfaChallengeBody {
    /// The single-use challenge token for `POST /auth/mfa/verify`; it works
    /// from the client that signed in only.
    pub mfa_token: String,
    /// What can answer it: `totp`, `recovery_code`; or `totp_setup`.
    pub methods: Vec<String>,
    /// Seconds until the challenge expires.
    pub expires_in: u64,
}

impl std::fmt::Debug for MfaChallengeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallengeBody")
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl From<&MfaChallenge> for MfaChallengeBody {
    fn from(challenge: &MfaChallenge) -> Self {
        Self {
            mfa_token: challenge.token.clone(),
            methods: challenge.methods.clone(),
            expires_in: challenge.expires_in,
        }
    }
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        Self {
            code: "INVALID_CREDENTIALS".into(),
            message: "invalid credentials".into(),
            field: None,
            mfa: None,
            requires: None,
        }
    }
}

impl ErrorBody {
    /// An error body without a field.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            field: None,
            mfa: None,
            requires: None,
        }
    }
}

/// An error answer, one variant per status class.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// Not authenticated: missing, invalid, expired or revoked token, or
    /// wrong credentials (the same answer for an unknown email and a wrong
    /// password).
    #[oai(status = 401)]
    Unauthorized(
        Json<ErrorBody>,
        /// Always `Bearer`.
        #[oai(header = "WWW-Authenticate")]
        String,
    ),
    /// Not allowed: inactive user, unverified email where required,
    /// cross-site request refused, a hook's veto (with its own code), or a
    /// sign-in whose first factor was right and that needs the second:
    /// `MFA_REQUIRED` with `mfa` (`mfa_token`, `methods`, `expires_in`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource or provider.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Conflict with the current state: the email is taken (compared
    /// case-insensitively), a password is already set (or not set yet), the
    /// email is already verified.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The one-time token is expired, used or unknown.
    #[oai(status = 410)]
    Gone(Json<ErrorBody>),
    /// The request body is larger than the configured limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// Validation failed: malformed JSON, wrong types or content type,
    /// invalid email, weak or over-long password. `field` names the input.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many requests from this client or for this email; retry after
    /// the number of seconds in `Retry-After`.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        String,
    ),
    /// Unexpected server error (details are logged, never shown).
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The store is unavailable (retry later), or the flow needs email and
    /// none is configured (`EMAIL_NOT_CONFIGURED`).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl ApiError {
    /// The status and body of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(..) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn with_status(status: StatusCode, body: ErrorBody) -> Self {
        let body = Json(body);
        match status {
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized(body, "Bearer".into()),
            StatusCode::FORBIDDEN => ApiError::Forbidden(body),
            StatusCode::NOT_FOUND => ApiError::NotFound(body),
            StatusCode::CONFLICT => ApiError::Conflict(body),
            StatusCode::GONE => ApiError::Gone(body),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(body),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(body),
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(body),
            _ => ApiError::Internal(body),
        }
    }
}

/// Which error statuses an operation documents: a bit set of
/// [`error_set`] constants. Every set includes 500.
pub type ErrorSet = u16;

/// The error statuses operations declare, combined with `|` in
/// [`ApiErrors`]'s parameter.
pub mod error_set {
    use super::ErrorSet;

    /// 401: not authenticated, bad credentials or refresh token.
    pub const UNAUTHORIZED: ErrorSet = 1;
    /// 403: inactive, unverified, CSRF refusal, not allowed, a hook's veto.
    pub const FORBIDDEN: ErrorSet = 1 << 1;
    /// 404: no such resource.
    pub const NOT_FOUND: ErrorSet = 1 << 2;
    /// 409: conflicts with the current state.
    pub const CONFLICT: ErrorSet = 1 << 3;
    /// 410: one-time token used, expired or unknown.
    pub const GONE: ErrorSet = 1 << 4;
    /// 413: body too large.
    pub const TOO_LARGE: ErrorSet = 1 << 5;
    /// 422: validation.
    pub const UNPROCESSABLE: ErrorSet = 1 << 6;
    /// 503: store (or email) unavailable.
    pub const UNAVAILABLE: ErrorSet = 1 << 7;
    /// 429: rate limited, with `Retry-After`.
    pub const TOO_MANY: ErrorSet = 1 << 8;
    /// Every status class above.
    pub const ALL: ErrorSet = UNAUTHORIZED
        | FORBIDDEN
        | NOT_FOUND
        | CONFLICT
        | GONE
        | TOO_LARGE
        | UNPROCESSABLE
        | UNAVAILABLE
        | TOO_MANY;
    /// What every operation behind an access token can answer.
    pub const AUTHED: ErrorSet = UNAUTHORIZED | FORBIDDEN | UNAVAILABLE;
    /// What parsing a JSON body can answer.
    pub const BODY: ErrorSet = TOO_LARGE | UNPROCESSABLE;
    /// What any sign-in ([`AuthManager::sign_in`](crate::AuthManager::sign_in))
    /// can answer: bad proof (401), inactive, unverified, vetoed or
    /// cross-site (403), body problems, rate limits (429), store down.
    pub const SIGN_IN: ErrorSet = UNAUTHORIZED | FORBIDDEN | BODY | TOO_MANY | UNAVAILABLE;
}

fn status_bit(status: StatusCode) -> ErrorSet {
    use error_set::*;
    match status {
        StatusCode::UNAUTHORIZED => UNAUTHORIZED,
        StatusCode::FORBIDDEN => FORBIDDEN,
        StatusCode::NOT_FOUND => NOT_FOUND,
        StatusCode::CONFLICT => CONFLICT,
        StatusCode::GONE => GONE,
        StatusCode::PAYLOAD_TOO_LARGE => TOO_LARGE,
        StatusCode::UNPROCESSABLE_ENTITY => UNPROCESSABLE,
        StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
        StatusCode::TOO_MANY_REQUESTS => TOO_MANY,
        _ => 0,
    }
}

/// An [`ApiError`] whose spec lists only the statuses in `SET` (plus 500),
/// so each operation documents the errors it can really answer.
///
/// ```
/// use portcullis::api::{error_set::*, ApiErrors};
///
/// type LoginErrors = ApiErrors<{ UNAUTHORIZED | FORBIDDEN | BODY | UNAVAILABLE }>;
/// ```
///
/// Debug builds assert that an answered status is in the set, so a test
/// that reaches an undocumented error fails.
#[derive(Debug)]
pub struct ApiErrors<const SET: ErrorSet>(pub ApiError);

/// One `const` check per status class, so a refused [`ApiErrors::widen`]
/// names every class the target set lacks, each in its own error.
macro_rules! assert_subset {
    ($from:ident, $into:ident: $($class:ident $status:literal),* $(,)?) => {$(
        const {
            assert!(
                $from & !$into & error_set::$class == 0,
                concat!(
                    "ApiErrors::<A>::widen::<B>(): A has ",
                    stringify!($class),
                    " (",
                    $status,
                    ") and B does not; add it to B"
                )
            )
        };
    )*};
}

impl<const SET: ErrorSet> ApiErrors<SET> {
    /// This error as an [`ApiErrors`] of a wider set: any `WIDER` that has
    /// every status of `SET`. A helper that returns
    /// `ApiErrors<{ AUTHED }>` then serves a handler that declares
    /// `ApiErrors<{ AUTHED | BODY }>`, with `?` (the target set is
    /// inferred from the handler's return type):
    ///
    /// ```
    /// use portcullis::api::{error_set::*, ApiErrors};
    /// use portcullis::Error;
    ///
    /// fn must_be_verified(verified: bool) -> Result<(), ApiErrors<{ AUTHED }>> {
    ///     if verified { Ok(()) } else { Err(Error::EmailNotVerified.into()) }
    /// }
    ///
    /// fn handler(verified: bool) -> Result<&'static str, ApiErrors<{ AUTHED | BODY }>> {
    ///     must_be_verified(verified).map_err(ApiErrors::widen)?;
    ///     Ok("published")
    /// }
    /// # assert!(handler(true).is_ok());
    /// # assert_eq!(handler(false).unwrap_err().0.status(), 403);
    /// ```
    ///
    /// Narrowing is refused when the crate is compiled (`cargo build`,
    /// `cargo test`; `cargo check` stops before this check), with one error
    /// per missing class, e.g. `ApiErrors::<A>::widen::<B>(): A has
    /// TOO_LARGE (413) and B does not; add it to B`:
    ///
    /// ```compile_fail
    /// use portcullis::api::{error_set::*, ApiErrors};
    /// use portcullis::Error;
    ///
    /// fn parse(ok: bool) -> Result<(), ApiErrors<{ AUTHED | BODY }>> {
    ///     if ok { Ok(()) } else { Err(Error::EmailNotVerified.into()) }
    /// }
    ///
    /// // BODY (413, 422) is not in AUTHED: this does not compile.
    /// fn handler(ok: bool) -> Result<&'static str, ApiErrors<{ AUTHED }>> {
    ///     parse(ok).map_err(ApiErrors::widen)?;
    ///     Ok("published")
    /// }
    /// # handler(true).ok();
    /// ```
    pub fn widen<const WIDER: ErrorSet>(self) -> ApiErrors<WIDER> {
        assert_subset!(SET, WIDER:
            UNAUTHORIZED "401",
            FORBIDDEN "403",
            NOT_FOUND "404",
            CONFLICT "409",
            GONE "410",
            TOO_LARGE "413",
            UNPROCESSABLE "422",
            TOO_MANY "429",
            UNAVAILABLE "503",
        );
        const {
            assert!(
                SET & !WIDER & !error_set::ALL == 0,
                "ApiErrors::<A>::widen::<B>(): A has a bit that names no status class"
            )
        };
        ApiErrors(self.0)
    }
}

impl<const SET: ErrorSet> From<ApiError> for ApiErrors<SET> {
    fn from(err: ApiError) -> Self {
        let bit = status_bit(err.status());
        debug_assert!(
            bit == 0 || SET & bit != 0,
            "status {} is not documented for this operation",
            err.status()
        );
        if bit != 0 && SET & bit == 0 {
            tracing::error!(status = %err.status(), "answered an undocumented status");
        }
        Self(err)
    }
}

impl<const SET: ErrorSet> From<Error> for ApiErrors<SET> {
    fn from(err: Error) -> Self {
        ApiError::from(err).into()
    }
}

impl<const SET: ErrorSet> From<ApiErrors<SET>> for poem::Error {
    fn from(err: ApiErrors<SET>) -> Self {
        err.0.into()
    }
}

impl<const SET: ErrorSet> poem_openapi::ApiResponse for ApiErrors<SET> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        let mut meta = ApiError::meta();
        meta.responses.retain(|r| {
            r.status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .is_some_and(|s| s == StatusCode::INTERNAL_SERVER_ERROR || SET & status_bit(s) != 0)
        });
        meta
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        ApiError::register(registry);
    }
}

/// Adds 413 and 422 to every operation with a request body that does not
/// list them: whatever error set its handler declares, a body can be too
/// large ([`super::BodyLimit`]) or fail to parse, and both are answered
/// before the handler runs. An operation that documents a 400 answers its
/// parse errors in a form of its own (`/auth/token`'s RFC 6749 errors), so
/// it gets no 422. Added responses go before the first higher status.
pub(crate) fn document_body_errors(apis: &mut [poem_openapi::registry::MetaApi]) {
    let operations = apis
        .iter_mut()
        .flat_map(|api| api.paths.iter_mut())
        .flat_map(|path| path.operations.iter_mut())
        .filter(|op| op.request.is_some());
    for op in operations {
        let responses = &mut op.responses.responses;
        let own_parse_errors = responses.iter().any(|r| r.status == Some(400));
        // `MetaResponse` is not `Clone`: a fresh copy per operation.
        let body_errors = ApiError::meta()
            .responses
            .into_iter()
            .filter(|r| r.status == Some(413) || (r.status == Some(422) && !own_parse_errors));
        for missing in body_errors {
            if responses.iter().any(|r| r.status == missing.status) {
                continue;
            }
            let at = responses
                .iter()
                .position(|r| r.status.is_none_or(|s| Some(s) > missing.status))
                .unwrap_or(responses.len());
            responses.insert(at, missing);
        }
    }
}

/// The status of each error code: the one mapping.
fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::InvalidCredentials | Error::Unauthenticated | Error::InvalidRefreshToken => {
            StatusCode::UNAUTHORIZED
        }
        Error::InactiveUser
        | Error::EmailNotVerified
        | Error::Forbidden
        | Error::PermissionDenied(_)
        | Error::RoleRequired(_)
        | Error::CsrfRejected
        | Error::Vetoed(_)
        | Error::SignUpDisabled
        | Error::ProviderEmailUnverified
        | Error::ReauthenticationRequired
        | Error::MfaRequired(_)
        | Error::MfaSetupRequired(_)
        | Error::SecondFactorRequired
        | Error::InvitationNotForYou => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::EmailTaken
        | Error::AccountExists
        | Error::PasswordAlreadySet
        | Error::PasswordNotSet
        | Error::EmailAlreadyVerified
        | Error::LastSignInMethod
        | Error::FactorAlreadyEnrolled
        | Error::PasskeyAlreadyRegistered
        | Error::RoleExists
        | Error::RoleReadOnly
        | Error::LastOwner
        | Error::AlreadyMember
        | Error::InvitationPending => StatusCode::CONFLICT,
        Error::TokenGone => StatusCode::GONE,
        Error::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_)
        | Error::EmailNotConfigured
        | Error::MfaNotConfigured
        | Error::PasskeysNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let status = status_of(&err);
        let message = match &err {
            Error::Unavailable(source) => {
                tracing::error!(error = %chain(source), "store unavailable");
                "the service is temporarily unavailable".to_owned()
            }
            Error::Internal(source) => {
                tracing::error!(error = %chain(&**source), "internal error");
                "internal error".to_owned()
            }
            Error::Config(_) => {
                tracing::error!(error = %err, "configuration error at request time");
                "internal error".to_owned()
            }
            _ => err.to_string(),
        };
        let field = match &err {
            Error::Validation { field, .. } => field.as_ref().map(|f| f.to_string()),
            _ => None,
        };
        let mfa = match &err {
            Error::MfaRequired(challenge) | Error::MfaSetupRequired(challenge) => {
                Some(Box::new(MfaChallengeBody::from(&**challenge)))
            }
            _ => None,
        };
        let requires = match &err {
            Error::PermissionDenied(p) => Some(Box::new(MissingGrant {
                permission: Some(p.clone()),
                role: None,
            })),
            Error::RoleRequired(r) => Some(Box::new(MissingGrant {
                permission: None,
                role: Some(r.clone()),
            })),
            _ => None,
        };
        let body = ErrorBody {
            code: err.code().to_owned(),
            message,
            field,
            mfa,
            requires,
        };
        if let Error::RateLimited { retry_after_secs } = err {
            return ApiError::TooManyRequests(Json(body), retry_after_secs.to_string());
        }
        ApiError::with_status(status, body)
    }
}

/// Maps an error raised outside our handlers (poem's routing, body parsing,
/// security-scheme extraction, body limit) to the JSON shape; our own
/// errors pass through unchanged. Parse failures (poem's 400 and 415) become
/// 422.
pub(crate) fn poem_error_response(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let (status, code, message) = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
            parse_message(&err.to_string()),
        ),
        StatusCode::UNAUTHORIZED => (status, "UNAUTHENTICATED", "not authenticated".to_owned()),
        StatusCode::NOT_FOUND => (status, "NOT_FOUND", "not found".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            status,
            "METHOD_NOT_ALLOWED",
            "method not allowed".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            status,
            "PAYLOAD_TOO_LARGE",
            "request body is too large".to_owned(),
        ),
        s if s.is_server_error() => {
            tracing::error!(error = %err, "unhandled server error");
            (s, "INTERNAL_ERROR", "internal error".to_owned())
        }
        s => (
            s,
            "REQUEST_ERROR",
            s.canonical_reason().unwrap_or("request error").to_owned(),
        ),
    };
    let mut response = poem_openapi::payload::Json(ErrorBody::new(code, message)).into_response();
    response.set_status(status);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            poem::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// An error with its whole `source()` chain, for logs.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A parse error's message without the offending value: poem-openapi says
/// `Expected input type "string", found 12345678.`, and the value may be a
/// password.
fn parse_message(message: &str) -> String {
    match message.find(", found") {
        Some(at) => format!("{}.", &message[..at]),
        None => message.to_owned(),
    }
}

/// The answer when a handler, hook, provider or store panics: a JSON 500.
pub(crate) fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    let mut response =
        poem_openapi::payload::Json(ErrorBody::new("INTERNAL_ERROR", "internal error"))
            .into_response();
    response.set_status(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widen_keeps_the_error_in_a_superset() {
        fn caller() -> Result<(), ApiErrors<{ error_set::AUTHED }>> {
            Err(Error::CsrfRejected.into())
        }
        fn handler() -> Result<(), ApiErrors<{ error_set::AUTHED | error_set::BODY }>> {
            caller().map_err(ApiErrors::widen)?;
            Ok(())
        }
        let err = handler().unwrap_err().0;
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        let ApiError::Forbidden(body) = err else {
            panic!("not a 403: {err:?}");
        };
        assert_eq!(body.0.code, "CSRF_REJECTED");

        // The same set is a (trivial) superset of itself.
        let same: ApiErrors<{ error_set::SIGN_IN }> =
            ApiErrors::<{ error_set::SIGN_IN }>::from(Error::InvalidCredentials).widen();
        assert_eq!(same.0.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn parse_messages_drop_the_value() {
        assert_eq!(
            parse_message(
                r#"parse request payload error: Expected input type "string", found 12345678. (occurred while parsing "LoginRequest")"#
            ),
            r#"parse request payload error: Expected input type "string"."#
        );
        assert_eq!(
            parse_message("missing field `email`"),
            "missing field `email`"
        );
    }
}

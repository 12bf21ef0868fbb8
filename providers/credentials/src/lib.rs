//! # portcullis-credentials
//!
//! Email + password sign-up and sign-in for [Portcullis](portcullis):
//! [`CredentialsProvider`] proves an identity from an email and password;
//! [`CredentialsApi`] adds `POST /auth/register`, `POST /auth/login` and the
//! OAuth2 password form `POST /auth/token` to the generated API.
//!
//! Uses only the public API of `portcullis`.
//!
//! ```no_run
//! use portcullis::{api, AuthConfig, AuthManager};
//! use portcullis_credentials::{CredentialsApi, CredentialsProvider};
//!
//! # fn build(config: AuthConfig) -> portcullis::Result<()> {
//! let manager = AuthManager::builder(config)
//!     .provider(CredentialsProvider::new())
//!     .build()?;
//! let app = api::routes(&manager, CredentialsApi::new(&manager));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use async_trait::async_trait;
use poem::{web::cookie::CookieJar, Request};
use poem_openapi::{
    payload::{Form, Json},
    registry::MetaSchema,
    types::Example,
    ApiResponse, Object, OpenApi,
};
use portcullis::{
    api::{
        check_csrf, client_info, error_set, AcceptedBody, ApiErrors, ApiTags, EmailString,
        ErrorBody, ErrorSet, MfaChallengeBody, PublicUser, RegistrationProfile, Strict,
        StrictString, StringSchema, TokenBody, TokenResponse,
    },
    AuthManager, Error, Identity, Provider, ProviderCx, ProviderInfo, ProviderRequest,
    Registration, Result, SignUp,
};
use serde::Deserialize;

/// The errors a sign-in can answer (see [`error_set::SIGN_IN`]).
const SIGN_IN_ERRORS: ErrorSet = error_set::SIGN_IN;

/// Id of the credentials provider.
pub const PROVIDER_ID: &str = "credentials";

/// Signs in with email and password.
///
/// An unknown email, a user without a password and a wrong password all get
/// [`Error::InvalidCredentials`] after the same hashing work. Legacy bcrypt
/// hashes are upgraded to Argon2id on success (by the core).
#[derive(Debug, Clone, Default)]
pub struct CredentialsProvider;

impl CredentialsProvider {
    /// The provider.
    pub fn new() -> Self {
        Self
    }
}

#[derive(Deserialize)]
struct LoginInput {
    email: String,
    password: String,
}

#[async_trait]
impl Provider for CredentialsProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo::new(PROVIDER_ID, "password")
    }

    async fn authenticate(
        &self,
        cx: &ProviderCx<'_>,
        request: ProviderRequest,
    ) -> Result<Identity> {
        let input: LoginInput = request.body_as()?;
        if input.password.len() > cx.password_max_bytes() {
            // No stored password can be this long; refuse before hashing it.
            return Err(Error::InvalidCredentials);
        }
        let user = cx.find_user_by_email(&input.email).await?;
        if cx.verify_password(user.as_ref(), &input.password).await? {
            if let Some(user) = user {
                return Ok(Identity::local(PROVIDER_ID, &user));
            }
        }
        Err(Error::InvalidCredentials)
    }
}

/// Body of `POST /auth/register`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields, example)]
pub struct RegisterRequest {
    /// Email address; unique, compared case-insensitively.
    pub email: EmailString,
    /// Password: 8+ characters, at most 1,024 bytes, not a common password.
    pub password: StrictString,
    /// Display name (at most 200 characters).
    pub name: Option<StrictString>,
    /// Values of the app's own registration fields (declared with
    /// `AuthManagerBuilder::registration_field`; the schema lists them),
    /// checked before the user exists and kept as their profile
    /// `metadata`. A missing required field, a bad value or an undeclared
    /// key is a 422 naming `profile.<field>`, and no user is created.
    #[oai(skip_serializing_if_is_none)]
    pub profile: Option<RegistrationProfile>,
}

impl Example for RegisterRequest {
    fn example() -> Self {
        Self {
            email: "alice@example.com".into(),
            password: "correct horse battery staple".into(),
            name: Some("Alice".into()),
            profile: None,
        }
    }
}

/// Body of `POST /auth/login`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields, example)]
pub struct LoginRequest {
    /// Email address.
    pub email: StrictString,
    /// Password.
    pub password: StrictString,
}

impl Example for LoginRequest {
    fn example() -> Self {
        Self {
            email: "alice@example.com".into(),
            password: "correct horse battery staple".into(),
        }
    }
}

/// The schema of [`GrantType`]: only `password` (the server answers
/// `unsupported_grant_type` otherwise).
#[derive(Debug)]
pub struct GrantTypeSchema;

impl StringSchema for GrantTypeSchema {
    const NAME: &'static str = "string(grant_type)";
    fn schema() -> MetaSchema {
        MetaSchema {
            enum_items: vec![serde_json::Value::String("password".into())],
            ..MetaSchema::new("string")
        }
    }
}

/// The `grant_type` of the OAuth2 password form.
pub type GrantType = Strict<GrantTypeSchema>;

/// OAuth2 password-grant form of `POST /auth/token` (RFC 6749 §4.3).
#[derive(Clone, Object, Deserialize)]
pub struct TokenForm {
    /// `password` when given.
    pub grant_type: Option<GrantType>,
    /// The email address.
    pub username: String,
    /// The password.
    pub password: String,
    /// Ignored.
    pub scope: Option<String>,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("email", &self.email)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TokenForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenForm")
            .field("grant_type", &self.grant_type)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Answer of `POST /auth/register`.
#[derive(Debug, ApiResponse)]
pub enum RegisterResponse {
    /// The user was created (active, email not yet verified, not a
    /// superuser). Sign in with `POST /auth/login`.
    #[oai(status = 201)]
    Created(Json<PublicUser>),
    /// Enumeration-safe registration is on
    /// (`accounts.enumeration_safe_registration`): the same answer whether
    /// or not the address has an account. A new account was created and
    /// mailed its verification link, or the owner of the address was
    /// mailed a notice.
    #[oai(status = 202)]
    Accepted(Json<AcceptedBody>),
}

/// Error body of `POST /auth/token` (RFC 6749 §5.2), what OAuth2 clients
/// and Swagger UI's Authorize dialog understand.
#[derive(Debug, Clone, Object)]
pub struct OAuthErrorBody {
    /// `invalid_request` (a malformed form or a missing parameter, a
    /// cross-site request with cookie transport), `invalid_grant` (wrong
    /// email or password, an address no account can have, or a refused
    /// sign-in: inactive user, unverified email, a hook's veto), `unsupported_grant_type`, or for 429/503
    /// `temporarily_unavailable` and for 500 `server_error`; for 403
    /// `mfa_required`.
    pub error: String,
    /// A human-readable explanation.
    pub error_description: String,
    /// With `mfa_required` only: the challenge to answer at
    /// `POST /auth/mfa/verify`.
    #[oai(skip_serializing_if_is_none)]
    pub mfa: Option<MfaChallengeBody>,
}

/// Answer of `POST /auth/token`: the token pair, or an error in RFC 6749
/// §5.2 form (never `{"code", "message"}`), always with
/// `Cache-Control: no-store` and `Pragma: no-cache`.
#[derive(Debug, ApiResponse)]
#[oai(bad_request_handler = "token_bad_request")]
pub enum TokenGrantResponse {
    /// A new token pair, as `POST /auth/login` answers (cookies too when
    /// cookie transport is on).
    #[oai(status = 200)]
    Ok(
        Json<TokenBody>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
        /// Always `no-cache` (RFC 6749 §5.1).
        #[oai(header = "Pragma")]
        String,
    ),
    /// `invalid_request`, `invalid_grant` or `unsupported_grant_type`.
    #[oai(status = 400)]
    BadRequest(
        Json<OAuthErrorBody>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
        /// Always `no-cache`.
        #[oai(header = "Pragma")]
        String,
    ),
    /// `temporarily_unavailable`: too many sign-in attempts (per account
    /// or per client); retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(
        Json<OAuthErrorBody>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
        /// Seconds to wait.
        #[oai(header = "Retry-After")]
        String,
        /// Always `no-cache` (RFC 6749 §5.1).
        #[oai(header = "Pragma")]
        String,
    ),
    /// `mfa_required`: the password was right and the user has a second
    /// factor on; answer `mfa` at `POST /auth/mfa/verify` for the tokens.
    #[oai(status = 403)]
    MfaRequired(
        Json<OAuthErrorBody>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
        /// Always `no-cache` (RFC 6749 §5.1).
        #[oai(header = "Pragma")]
        String,
    ),
    /// The body is over `http.max_body_bytes`: answered before the form is
    /// read, in Portcullis's error shape (`PAYLOAD_TOO_LARGE`).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `server_error`.
    #[oai(status = 500)]
    ServerError(
        Json<OAuthErrorBody>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
        /// Always `no-cache` (RFC 6749 §5.1).
        #[oai(header = "Pragma")]
        String,
    ),
    /// `temporarily_unavailable`: the store is down.
    #[oai(status = 503)]
    Unavailable(
        Json<OAuthErrorBody>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
        /// Always `no-cache` (RFC 6749 §5.1).
        #[oai(header = "Pragma")]
        String,
    ),
}

impl TokenGrantResponse {
    fn bad_request(error: &str, description: impl Into<String>) -> Self {
        Self::BadRequest(
            Json(OAuthErrorBody {
                error: error.into(),
                error_description: description.into(),
                mfa: None,
            }),
            "no-store".into(),
            "no-cache".into(),
        )
    }

    /// The RFC 6749 form of a sign-in error.
    fn from_error(err: &Error) -> Self {
        let body = |error: &str, description: String| {
            Json(OAuthErrorBody {
                error: error.into(),
                error_description: description,
                mfa: None,
            })
        };
        match err {
            Error::MfaRequired(challenge) | Error::MfaSetupRequired(challenge) => {
                Self::MfaRequired(
                    Json(OAuthErrorBody {
                        error: if matches!(err, Error::MfaSetupRequired(_)) {
                            "mfa_setup_required".into()
                        } else {
                            "mfa_required".into()
                        },
                        error_description: err.to_string(),
                        mfa: Some(MfaChallengeBody::from(&**challenge)),
                    }),
                    "no-store".into(),
                    "no-cache".into(),
                )
            }
            Error::RateLimited { retry_after_secs } => Self::TooManyRequests(
                body(
                    "temporarily_unavailable",
                    "too many attempts; retry later".into(),
                ),
                "no-store".into(),
                retry_after_secs.to_string(),
                "no-cache".into(),
            ),
            Error::Unavailable(source) => {
                tracing::error!(error = %source, "store unavailable");
                Self::Unavailable(
                    body(
                        "temporarily_unavailable",
                        "the service is temporarily unavailable".into(),
                    ),
                    "no-store".into(),
                    "no-cache".into(),
                )
            }
            // The username is the email: one no account can have is a
            // wrong credential.
            Error::Validation { field, .. } if field.as_deref() == Some("email") => {
                Self::bad_request("invalid_grant", err.to_string())
            }
            Error::Validation { .. } | Error::CsrfRejected => {
                Self::bad_request("invalid_request", err.to_string())
            }
            Error::InvalidCredentials
            | Error::InactiveUser
            | Error::EmailNotVerified
            | Error::Forbidden
            | Error::Vetoed(_)
            | Error::ProviderEmailUnverified
            | Error::SignUpDisabled => Self::bad_request("invalid_grant", err.to_string()),
            other => {
                tracing::error!(error = %other, "token endpoint failed");
                Self::ServerError(
                    body("server_error", "internal error".into()),
                    "no-store".into(),
                    "no-cache".into(),
                )
            }
        }
    }
}

/// A form the endpoint could not read (wrong content type, a missing or
/// mistyped parameter): `invalid_request`.
fn token_bad_request(err: poem::Error) -> TokenGrantResponse {
    TokenGrantResponse::bad_request("invalid_request", format!("malformed token request: {err}"))
}

/// The credentials routes.
#[derive(Debug, Clone)]
pub struct CredentialsApi {
    manager: AuthManager,
}

impl CredentialsApi {
    /// The routes over `manager` (which must have a [`CredentialsProvider`]).
    pub fn new(manager: &AuthManager) -> Self {
        Self {
            manager: manager.clone(),
        }
    }

    async fn sign_in(
        &self,
        req: &Request,
        jar: &CookieJar,
        email: String,
        password: String,
    ) -> Result<TokenResponse> {
        // With cookie transport, a sign-in sets session cookies: refuse
        // cross-site requests so a hostile page cannot sign the browser into
        // the attacker's account (login CSRF; the form endpoint needs no
        // CORS preflight).
        if self.manager.config().transport.cookies {
            // Its only refusal is the CSRF one.
            check_csrf(&self.manager, req).map_err(|_| Error::CsrfRejected)?;
        }
        let request =
            ProviderRequest::new(serde_json::json!({ "email": email, "password": password }))
                .with_client(client_info(req));
        let sign_in = self.manager.sign_in(PROVIDER_ID, request).await?;
        Ok(TokenResponse::issue(&self.manager, jar, &sign_in))
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl CredentialsApi {
    /// Register
    ///
    /// Creates a user with email and password. The new user is active, with
    /// an unverified email and no superuser rights, whatever the body says.
    /// The app's own registration fields go in `profile` (see
    /// `RegistrationProfile`) and become the user's profile `metadata`.
    #[oai(path = "/auth/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        req: &Request,
        body: Json<RegisterRequest>,
    ) -> Result<
        RegisterResponse,
        ApiErrors<
            {
                error_set::FORBIDDEN
                    | error_set::CONFLICT
                    | error_set::BODY
                    | error_set::UNAVAILABLE
                    | error_set::TOO_MANY
            },
        >,
    > {
        let Json(body) = body;
        let mut registration =
            Registration::new(body.email.into_inner(), body.password.into_inner())
                .with_client(client_info(req));
        if let Some(name) = body.name {
            registration = registration.with_name(name.into_inner());
        }
        if let Some(profile) = body.profile {
            registration = registration.with_profile(profile.0);
        }
        Ok(match self.manager.sign_up(registration).await? {
            SignUp::Created(user) => RegisterResponse::Created(Json(PublicUser::from(&*user))),
            _ => RegisterResponse::Accepted(Json(AcceptedBody {
                message: "check your email to finish signing up".into(),
            })),
        })
    }

    /// Sign in with email and password
    ///
    /// Answers a token pair (and sets cookies when cookie transport is on).
    /// An unknown email and a wrong password get the same 401.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &Request,
        jar: &CookieJar,
        body: Json<LoginRequest>,
    ) -> Result<TokenResponse, ApiErrors<SIGN_IN_ERRORS>> {
        let Json(body) = body;
        Ok(self
            .sign_in(
                req,
                jar,
                body.email.into_inner(),
                body.password.into_inner(),
            )
            .await?)
    }

    /// OAuth2 password grant
    ///
    /// The same sign-in as `/auth/login` as an
    /// `application/x-www-form-urlencoded` form with `username` (the email)
    /// and `password`, for Swagger UI's Authorize button and OAuth2 clients.
    /// Errors are in RFC 6749 §5.2 form, `{"error", "error_description"}`:
    /// 400 `invalid_grant` for a wrong email or password (or a refused
    /// sign-in), `invalid_request` for a malformed form,
    /// `unsupported_grant_type` for a `grant_type` other than `password`;
    /// 429 `temporarily_unavailable` with `Retry-After` when rate limited.
    #[oai(path = "/auth/token", method = "post", operation_id = "token")]
    async fn token(
        &self,
        req: &Request,
        jar: &CookieJar,
        form: Form<TokenForm>,
    ) -> TokenGrantResponse {
        let Form(form) = form;
        if form.grant_type.as_deref().is_some_and(|g| g != "password") {
            return TokenGrantResponse::bad_request(
                "unsupported_grant_type",
                "only the password grant is supported",
            );
        }
        match self.sign_in(req, jar, form.username, form.password).await {
            Ok(TokenResponse::Ok(body, cache)) => {
                TokenGrantResponse::Ok(body, cache, "no-cache".into())
            }
            Err(err) => TokenGrantResponse::from_error(&err),
        }
    }
}

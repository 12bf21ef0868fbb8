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
    types::Example,
    ApiResponse, Object, OpenApi,
};
use portcullis::{
    api::{
        check_csrf, client_info, error_set, AcceptedBody, ApiErrors, ApiTags, EmailString,
        ErrorSet, GrantType, PublicUser, RegistrationProfile, StrictString, TokenResponse,
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
    ) -> Result<TokenResponse, ApiErrors<SIGN_IN_ERRORS>> {
        // With cookie transport, a sign-in sets session cookies: refuse
        // cross-site requests so a hostile page cannot sign the browser into
        // the attacker's account (login CSRF; the form endpoint needs no
        // CORS preflight).
        if self.manager.config().transport.cookies {
            check_csrf(&self.manager, req)?;
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
        self.sign_in(
            req,
            jar,
            body.email.into_inner(),
            body.password.into_inner(),
        )
        .await
    }

    /// OAuth2 password grant
    ///
    /// The same sign-in as `/auth/login` as an
    /// `application/x-www-form-urlencoded` form with `username` (the email)
    /// and `password`, for Swagger UI's Authorize button and OAuth2 clients.
    #[oai(path = "/auth/token", method = "post", operation_id = "token")]
    async fn token(
        &self,
        req: &Request,
        jar: &CookieJar,
        form: Form<TokenForm>,
    ) -> Result<TokenResponse, ApiErrors<SIGN_IN_ERRORS>> {
        let Form(form) = form;
        if form.grant_type.as_deref().is_some_and(|g| g != "password") {
            return Err(Error::validation(
                "grant_type",
                "UNSUPPORTED_GRANT_TYPE",
                "only the password grant is supported",
            )
            .into());
        }
        self.sign_in(req, jar, form.username, form.password).await
    }
}

//! The caller as a type: [`Authenticated`] and [`Superuser`], handler
//! parameters that stand for "a signed-in user" (and "a signed-in
//! superuser").
//!
//! Both are poem-openapi extractors declared with the same security schemes
//! as [`AccessToken`] (bearer header, OAuth2 password flow, access cookie),
//! so the spec and Swagger UI's Authorize button cover the operation, and
//! both run the whole check before the handler starts: the transport is on,
//! the CSRF origin check for cookie requests, the token's signature and
//! claims, and the user and session in the store.

use std::ops::Deref;

use poem::{Request, RequestBody};
use poem_openapi::{registry::Registry, ApiExtractor, ApiExtractorType, ExtractParamOptions};

use super::{auth::authenticate, AccessToken, ApiError};
use crate::{
    error::Error,
    manager::{require_superuser, AuthManager, Principal},
};

/// The signed-in caller, as a handler parameter: the checked [`Principal`]
/// (`caller.user`, `caller.session`, `caller.claims`, through `Deref`).
///
/// ```
/// use poem_openapi::{payload::PlainText, OpenApi};
/// use portcullis::api::{error_set::AUTHED, ApiErrors, Authenticated};
///
/// struct AppApi;
///
/// #[OpenApi]
/// impl AppApi {
///     /// Greets the signed-in caller.
///     #[oai(path = "/hello", method = "get")]
///     async fn hello(
///         &self,
///         caller: Authenticated,
///     ) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
///         Ok(PlainText(format!("hello {}", caller.user.email)))
///     }
/// }
/// ```
///
/// The handler only runs for a valid caller; otherwise the request is
/// answered before it, in the API's JSON error shape:
///
/// - 401 `UNAUTHENTICATED` (with `WWW-Authenticate: Bearer`) for a missing,
///   malformed, expired or revoked token, or one sent by a transport that is
///   turned off (`transport.bearer`, `transport.cookies`);
/// - 403 `USER_INACTIVE` for a deactivated user, 403 `CSRF_REJECTED` for a
///   state-changing request authenticated by cookie from an origin that is
///   not allowed (see [`check_csrf`](super::check_csrf));
/// - 503 `SERVICE_UNAVAILABLE` when the store is down.
///
/// Declare the operation's errors with at least
/// [`error_set::AUTHED`](super::error_set::AUTHED) (401, 403, 503).
///
/// # Where it works
///
/// The check needs the [`AuthManager`], which it takes from the request:
/// every operation of [`service`](super::service) and
/// [`routes`](super::routes) carries it, and [`wrap`](super::wrap) adds it
/// around any endpoint, so an API needs no manager field for this. An API
/// served by an `OpenApiService` of its own and mounted without `wrap` has
/// no manager to check with: every request to an operation that takes
/// `Authenticated` then answers 500 `CONFIG_ERROR`, and the log says why.
#[derive(Debug, Clone)]
pub struct Authenticated(Principal);

impl Authenticated {
    /// The checked caller.
    pub fn principal(&self) -> &Principal {
        &self.0
    }

    /// The checked caller, by value.
    pub fn into_principal(self) -> Principal {
        self.0
    }

    async fn check(req: &Request, token: AccessToken) -> Result<Self, ApiError> {
        let manager = manager_of(req)?;
        Ok(Self(authenticate(manager, &token, req).await?))
    }
}

impl Deref for Authenticated {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl From<Authenticated> for Principal {
    fn from(caller: Authenticated) -> Self {
        caller.0
    }
}

/// The manager [`service`](super::service) or [`wrap`](super::wrap) put in
/// the request's data.
fn manager_of(req: &Request) -> Result<&AuthManager, ApiError> {
    req.data::<AuthManager>().ok_or_else(|| {
        Error::Config(
            "an operation takes `Authenticated` but the request carries no AuthManager: \
             serve the API through `portcullis::api::service` or `portcullis::api::routes`, \
             or mount it inside `portcullis::api::wrap`"
                .into(),
        )
        .into()
    })
}

impl<'a> ApiExtractor<'a> for Authenticated {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <AccessToken as ApiExtractor<'a>>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        <AccessToken as ApiExtractor<'a>>::security_schemes()
    }

    fn has_security_fallback() -> bool {
        <AccessToken as ApiExtractor<'a>>::has_security_fallback()
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // The manager first, so a mounting mistake shows on every request,
        // not only on those that carry a token.
        manager_of(req)?;
        let token = <AccessToken as ApiExtractor<'a>>::from_request(req, body, param_opts).await?;
        Ok(Self::check(req, token).await?)
    }
}

/// A signed-in, active superuser, as a handler parameter: an
/// [`Authenticated`] caller who is also a superuser (`caller.user`,
/// `caller.session`, through `Deref`), else 403 `FORBIDDEN` before the
/// handler runs. The same rule the manager's administration methods apply
/// (they check again, for callers that do not come through HTTP).
///
/// ```
/// use poem_openapi::{payload::PlainText, OpenApi};
/// use portcullis::api::{error_set::AUTHED, ApiErrors, Superuser};
///
/// struct AdminApi;
///
/// #[OpenApi]
/// impl AdminApi {
///     /// Superusers only.
///     #[oai(path = "/admin/ping", method = "get")]
///     async fn ping(&self, admin: Superuser) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
///         Ok(PlainText(format!("pong, {}", admin.user.email)))
///     }
/// }
/// ```
///
/// Everything [`Authenticated`] says about errors and mounting holds here.
#[derive(Debug, Clone)]
pub struct Superuser(Authenticated);

impl Superuser {
    /// The checked caller.
    pub fn principal(&self) -> &Principal {
        &self.0 .0
    }

    /// The checked caller, by value.
    pub fn into_principal(self) -> Principal {
        self.0 .0
    }
}

impl Deref for Superuser {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0 .0
    }
}

impl From<Superuser> for Principal {
    fn from(admin: Superuser) -> Self {
        admin.0 .0
    }
}

impl<'a> ApiExtractor<'a> for Superuser {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Authenticated as ApiExtractor<'a>>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        <Authenticated as ApiExtractor<'a>>::security_schemes()
    }

    fn has_security_fallback() -> bool {
        <Authenticated as ApiExtractor<'a>>::has_security_fallback()
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let caller =
            <Authenticated as ApiExtractor<'a>>::from_request(req, body, param_opts).await?;
        require_superuser(&caller.user).map_err(ApiError::from)?;
        Ok(Self(caller))
    }
}

/// A signed-in caller whose session's sign-in passed a second factor, as a
/// handler parameter: an [`Authenticated`] caller whose session carries
/// `mfa` in its `amr` (see [`Session::amr`](crate::Session::amr)), else 403
/// `SECOND_FACTOR_REQUIRED` before the handler runs. How an app asks for a
/// second factor on its own sensitive routes (payouts, admin pages): a
/// user without one enrolled cannot reach them until they enrol and sign
/// in again.
///
/// ```
/// use poem_openapi::{payload::PlainText, OpenApi};
/// use portcullis::api::{error_set::AUTHED, ApiErrors, SecondFactor};
///
/// struct PayoutApi;
///
/// #[OpenApi]
/// impl PayoutApi {
///     /// Only after a second factor.
///     #[oai(path = "/payouts", method = "post")]
///     async fn payout(&self, caller: SecondFactor) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
///         Ok(PlainText(format!("paid out for {}", caller.user.email)))
///     }
/// }
/// ```
///
/// Everything [`Authenticated`] says about errors and mounting holds here.
#[derive(Debug, Clone)]
pub struct SecondFactor(Authenticated);

impl SecondFactor {
    /// The checked caller.
    pub fn principal(&self) -> &Principal {
        &self.0 .0
    }

    /// The checked caller, by value.
    pub fn into_principal(self) -> Principal {
        self.0 .0
    }
}

impl Deref for SecondFactor {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0 .0
    }
}

impl<'a> ApiExtractor<'a> for SecondFactor {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Authenticated as ApiExtractor<'a>>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        <Authenticated as ApiExtractor<'a>>::security_schemes()
    }

    fn has_security_fallback() -> bool {
        <Authenticated as ApiExtractor<'a>>::has_security_fallback()
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let caller =
            <Authenticated as ApiExtractor<'a>>::from_request(req, body, param_opts).await?;
        if !caller.session.has_second_factor() {
            return Err(ApiError::from(Error::SecondFactorRequired).into());
        }
        Ok(Self(caller))
    }
}

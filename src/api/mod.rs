//! The poem-openapi adapter: routes, error mapping, cookies and the spec.
//!
//! [`routes`] mounts the core API plus the provider APIs you pass (any
//! `poem_openapi::OpenApi`, e.g. `portcullis_credentials::CredentialsApi`)
//! with `/openapi.json`, Swagger UI at `/docs`, the body limit, cookie
//! handling and the JSON error mapping. [`service`] gives the bare
//! `OpenApiService` to combine with your own APIs; wrap whatever you mount
//! with [`wrap`].
//!
//! A handler that needs a signed-in user takes an [`Authenticated`]
//! parameter (or [`Superuser`]); the check runs before the handler, with
//! the manager that [`service`] and [`wrap`] put in every request.

mod account;
mod auth;
mod body_limit;
mod browser;
mod caller;
mod core;
mod error;
pub mod guard;
mod json;
mod mfa;
mod orgs;
mod passkeys;
mod roles;
mod spec;
mod strict;
mod types;
mod users;

use std::collections::HashMap;

use poem::{
    endpoint::{make_sync, BoxEndpoint},
    http::{header, HeaderValue, StatusCode},
    middleware::{CatchPanic, CookieJarManager},
    Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Response, Route,
};
use poem_openapi::{registry::MetaApi, OpenApi, OpenApiService};

pub use self::core::{
    ApiTags, CoreApi, JwksResponse, LogoutResponse, MeResponse, ProvidersResponse,
};
pub use account::{
    AcceptedBody, AcceptedResponse, AccountApi, ChangeEmailRequest, ChangePasswordRequest,
    DeleteAccountRequest, ForgotPasswordRequest, LinkedAccountList, LinkedAccountObject,
    LinkedAccountsResponse, NoContentResponse, ResetPasswordRequest, RevokedBody, RevokedResponse,
    SessionList, SessionObject, SessionsResponse, SetPasswordRequest, TokenRequest, UserResponse,
};
pub use auth::{
    check_csrf, check_page_csrf, clear_token_cookies, client_info, set_token_cookies, AccessToken,
    BearerAuth, CookieAuth, OAuth2Password, ACCESS_COOKIE, REFRESH_COOKIE,
};
pub use body_limit::BodyLimit;
pub use browser::{
    browser_mfa_step, escape_html, finish_browser_sign_in, redirect_origins, BrowserSignInResponse,
    HtmlPage, LinkForm, LinkPage, TokenSubmission, PAGE_REFERRER_POLICY,
};
pub use caller::{Authenticated, SecondFactor, Superuser};
pub use error::{
    error_set, ApiError, ApiErrors, ErrorBody, ErrorSet, MfaChallengeBody, MissingGrant,
};
pub use guard::{
    PermissionName, RequireOrgPermission, RequireOrgRole, RequirePermission, RoleName,
};
pub use json::SerdeJson;
pub use mfa::{
    EnrollConfirmRequest, EnrollSetupRequest, EnrolledSignInBody, EnrolledSignInResponse,
    FactorStatusBody, FactorStatusResponse, MfaApi, MfaVerifyRequest, RecoveryCodesBody,
    RecoveryCodesResponse, TotpCodeRequest, TotpSetupBody, TotpSetupResponse,
};
pub use orgs::{
    AcceptInvitationRequest, CreateOrgRoleRequest, InvitationBody, InvitationList,
    InvitationListResponse, InvitationResponse, InviteRequest, MemberBody, MemberList,
    MemberListResponse, MemberResponse, MemberRolesRequest, OrgBody, OrgList, OrgListResponse,
    OrgNameRequest, OrgResponse, OrgRoleBody, OrgRoleList, OrgRoleListResponse, OrgRoleResponse,
    OrgsApi, SwitchOrgRequest, TransferRequest, UpdateOrgRoleRequest,
};
pub use passkeys::{
    PasskeyApi, PasskeyBody, PasskeyList, PasskeyListResponse, PasskeyOptionsBody,
    PasskeyOptionsResponse, PasskeyRegisterRequest, PasskeyRenameRequest, PasskeyResponse,
    PasskeySignInOptionsRequest, PasskeySignInRequest, RegisteredPasskeyBody,
    RegisteredPasskeyResponse,
};
pub use roles::{
    CreateRoleRequest, RoleBody, RoleList, RoleListResponse, RoleResponse, RolesApi,
    UpdateRoleRequest, UserRoles, UserRolesResponse,
};
pub use strict::{
    AnyString, EmailPrefix, EmailPrefixSchema, EmailSchema, EmailString, PageLimit, Strict,
    StrictString, StringSchema,
};
pub use types::{
    JwkObject, JwkSet, ProviderList, ProviderObject, PublicUser, RefreshRequest,
    RegistrationProfile, TokenBody, TokenResponse,
};
pub use users::{AdminUserUpdate, ProfileUpdateRequest, UserPage, UserPageResponse, UsersApi};

use crate::manager::AuthManager;

/// Default title of the generated spec (set the app's own with
/// [`AuthManagerBuilder::api_info`](crate::AuthManagerBuilder::api_info)).
pub const API_TITLE: &str = "Portcullis";

pub use crate::manager::ApiInfo;

/// The built-in APIs: core routes, account flows, second factors, passkeys,
/// users, roles, organizations.
pub type BuiltIn = (
    CoreApi,
    AccountApi,
    MfaApi,
    PasskeyApi,
    UsersApi,
    RolesApi,
    OrgsApi,
);

/// The OpenAPI service: the built-in APIs and `apis` (a provider API, or a
/// tuple of them and your own), titled by the manager's
/// [`ApiInfo`] (Portcullis's own by default), as [`ServedApis`]: every
/// operation carries the manager for [`Authenticated`], and every operation
/// with a request body documents 413 and 422. It names no server: the
/// document describes the API where it is served (add one with
/// `OpenApiService::server` when you serve it elsewhere).
pub fn service<T: OpenApi>(
    manager: &AuthManager,
    apis: T,
) -> OpenApiService<ServedApis<(BuiltIn, T)>, ()> {
    service_with(manager, apis, true)
}

/// [`service`], with the manager added to each operation's request data or
/// not (when [`wrap`] adds it once around the whole service, as [`routes`]
/// does: one layer and one boxed future less per request).
fn service_with<T: OpenApi>(
    manager: &AuthManager,
    apis: T,
    data_per_operation: bool,
) -> OpenApiService<ServedApis<(BuiltIn, T)>, ()> {
    let built_in = (
        CoreApi::new(manager),
        AccountApi::new(manager),
        MfaApi::new(manager),
        PasskeyApi::new(manager),
        UsersApi::new(manager),
        RolesApi::new(manager),
        OrgsApi::new(manager),
    );
    let apis = ServedApis {
        manager: data_per_operation.then(|| manager.clone()),
        apis: (built_in, apis),
    };
    let info = manager.api_info();
    OpenApiService::new(apis, &info.title, &info.version).description(&info.description)
}

/// APIs as [`service`] serves them: each operation's endpoint carries the
/// manager as request data (what [`Authenticated`] and [`Superuser`] check
/// with), and each operation with a request body lists 413 and 422 in the
/// spec, whatever error set its handler declares: both are answered before
/// the handler runs ([`BodyLimit`], body parsing).
#[derive(Debug, Clone)]
pub struct ServedApis<T> {
    /// Added to each operation's request data; `None` under [`routes`],
    /// whose [`wrap`] adds it.
    manager: Option<AuthManager>,
    apis: T,
}

impl<T: OpenApi> OpenApi for ServedApis<T> {
    fn meta() -> Vec<MetaApi> {
        let mut meta = T::meta();
        error::document_body_errors(&mut meta);
        meta
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }

    fn add_routes(
        self,
        route_table: &mut HashMap<String, HashMap<poem::http::Method, BoxEndpoint<'static>>>,
    ) {
        let Some(manager) = self.manager else {
            return self.apis.add_routes(route_table);
        };
        let mut inner = HashMap::new();
        self.apis.add_routes(&mut inner);
        for (path, methods) in inner {
            let entry = route_table.entry(path).or_default();
            for (method, endpoint) in methods {
                entry.insert(method, endpoint.data(manager.clone()).boxed());
            }
        }
    }
}

/// The spec of [`service`] as pretty JSON, for committing and drift tests:
/// poem-openapi's document with what it leaves out added (OAuth2 `scopes`,
/// `nullable` optional properties, `additionalProperties: false` on the
/// request bodies that refuse unknown fields), the app's registration
/// fields in `RegistrationProfile`, and only the security schemes of the
/// transports that are on. [`routes`] serves this one at `/openapi.json`
/// and in Swagger UI at `/docs`.
pub fn spec_json<T: OpenApi>(manager: &AuthManager, apis: T) -> String {
    spec::finish(&service(manager, apis).spec(), manager)
}

/// Swagger UI's page over the finished spec: poem-openapi's page (its
/// bundled assets) with `raw`, the unfinished document it embeds, swapped
/// for `finished`, and the OAuth2 password dialog without the
/// `client_id` / `client_secret` / credentials-location rows, which
/// `/auth/token` does not use.
fn swagger_page(html: &str, raw: &str, finished: &str) -> String {
    // No text of the spec (an app's description, a field's) can end or
    // re-open the page's script: in JSON, `<`, `>` and `&` only occur in
    // strings, where their `\u` escapes mean the same.
    let embedded = finished
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    let hide = "<style>.auth-container div:has(> label[for=\"client_id_password\"]),\
                .auth-container div:has(> label[for=\"client_secret_password\"]),\
                .auth-container div:has(> label[for=\"password_type\"])\
                {display: none}</style>";
    let mut page = html.replacen(raw, &embedded, 1);
    // The page's own `</head>` is the last one: the inlined Swagger bundle
    // holds the text `<head></head>` in a script string.
    if let Some(end) = page.rfind("</head>") {
        page.insert_str(end, hide);
    }
    page
}

/// A ready-to-serve endpoint: the API, `/openapi.json`, Swagger UI at
/// `/docs`, wrapped by [`wrap`].
pub fn routes<T: OpenApi + 'static>(
    manager: &AuthManager,
    apis: T,
) -> impl Endpoint<Output = Response> {
    let service = service_with(manager, apis, false);
    let raw = service.spec();
    let spec = spec::finish(&raw, manager);
    let allowed = spec::AllowedMethods::from_spec(&spec);
    let page = swagger_page(&service.swagger_ui_html(), &raw, &spec);
    let docs = Route::new()
        .at(
            "/",
            make_sync(move |_| poem::web::Html(page.clone()).into_response()),
        )
        .at("/oauth-receiver.html", service.swagger_ui());
    let extras = Route::new()
        .at(
            "/openapi.json",
            make_sync(move |_| {
                Response::builder()
                    .content_type("application/json; charset=utf-8")
                    .body(spec.clone())
            }),
        )
        .nest("/docs", docs);
    wrap(
        manager,
        Mount {
            api: service.into_endpoint(),
            extras,
            allowed,
        },
    )
}

/// Sends `/openapi.json` and `/docs/…` to `extras` and everything else
/// straight to the API, without a second router in front of the API's own;
/// a 405 gets the `Allow` header RFC 9110 requires, from the spec.
struct Mount<A, X> {
    api: A,
    extras: X,
    allowed: spec::AllowedMethods,
}

impl<A: Endpoint, X: Endpoint> Endpoint for Mount<A, X> {
    type Output = Response;

    async fn call(&self, req: poem::Request) -> poem::Result<Response> {
        let path = req.uri().path();
        if path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/") {
            let mut response = self.extras.call(req).await?.into_response();
            // Swagger UI runs inline scripts, so not `HtmlPage`'s policy;
            // but like every page here it is neither framed nor sniffed.
            let headers = response.headers_mut();
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers
                .entry(header::CONTENT_SECURITY_POLICY)
                .or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
            return Ok(response);
        }
        let path = path.to_owned();
        let mut response = match self.api.call(req).await {
            Ok(response) => response.into_response(),
            Err(err) if err.status() == StatusCode::METHOD_NOT_ALLOWED => {
                error::poem_error_response(err)
            }
            Err(err) => return Err(err),
        };
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            if let Some(allow) = self.allowed.allow(&path) {
                if let Ok(value) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
            }
        }
        Ok(response)
    }
}

/// Adds what the API needs around any endpoint: the request body limit
/// (413), cookie handling, the manager as request data (for
/// [`Authenticated`] in APIs served without [`service`]), the mapping of
/// every error to the JSON shape (poem's parse errors become 422), and a
/// JSON 500 instead of a dropped connection if a hook, provider or store
/// panics.
pub fn wrap<E: IntoEndpoint>(manager: &AuthManager, endpoint: E) -> impl Endpoint<Output = Response>
where
    E::Endpoint: 'static,
{
    endpoint
        .into_endpoint()
        .data(manager.clone())
        .with(CookieJarManager::new())
        .with(BodyLimit::new(manager.config().http.max_body_bytes))
        .catch_all_error(|err| async move { error::poem_error_response(err) })
        .with(CatchPanic::new().with_handler(error::panic_response))
}

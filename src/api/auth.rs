//! Security schemes, cookie transport and the CSRF check.

use poem::{
    http::{header, Method},
    web::cookie::{Cookie, CookieJar, SameSite},
    Request,
};
use poem_openapi::{auth::ApiKey, auth::Bearer, SecurityScheme};

use super::ApiError;
use crate::{
    error::Error,
    manager::{AuthManager, Principal, SignIn},
    store::ClientInfo,
};

/// Name of the access-token cookie.
pub const ACCESS_COOKIE: &str = "portcullis_access";
/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "portcullis_refresh";

/// `Authorization: Bearer <access token>` (a JWT from any sign-in).
#[derive(Debug, SecurityScheme)]
#[oai(rename = "BearerAuth", ty = "bearer", bearer_format = "JWT")]
pub struct BearerAuth(pub Bearer);

/// OAuth2 password flow against `POST /auth/token`, for Swagger UI's
/// Authorize button and generated clients; sends the same bearer token.
#[derive(Debug, SecurityScheme)]
#[oai(
    rename = "OAuth2Password",
    ty = "oauth2",
    flows(password(token_url = "/auth/token"))
)]
pub struct OAuth2Password(pub Bearer);

/// The `portcullis_access` HttpOnly cookie, when cookie transport is on.
/// State-changing requests authenticated by cookie must come from an allowed
/// `Origin` (CSRF defence).
#[derive(Debug, SecurityScheme)]
#[oai(
    rename = "CookieAuth",
    ty = "api_key",
    key_in = "cookie",
    key_name = "portcullis_access"
)]
pub struct CookieAuth(pub ApiKey);

/// An access token from any accepted transport, unchecked. Handlers take
/// [`super::Authenticated`] instead, which declares these same schemes and
/// checks the token before the handler runs.
#[derive(Debug, SecurityScheme)]
pub enum AccessToken {
    /// Bearer header.
    Bearer(BearerAuth),
    /// Bearer header obtained through the OAuth2 password flow.
    OAuth2(OAuth2Password),
    /// Access cookie.
    Cookie(CookieAuth),
}

/// Checks the presented access token with the manager, enforcing the
/// configured transports and, for cookie-authenticated state-changing
/// requests, the CSRF origin check: what [`super::Authenticated`] runs
/// before a handler.
///
/// # Errors
///
/// 401 for a bad token or a disabled transport, 403 for an inactive user or
/// a cross-site request, 503 when the store is down.
pub(crate) async fn authenticate(
    manager: &AuthManager,
    token: &AccessToken,
    req: &Request,
) -> Result<Principal, ApiError> {
    let transport = &manager.config().transport;
    let raw = match token {
        AccessToken::Bearer(BearerAuth(b)) | AccessToken::OAuth2(OAuth2Password(b)) => {
            if !transport.bearer {
                return Err(Error::Unauthenticated.into());
            }
            &b.token
        }
        AccessToken::Cookie(CookieAuth(key)) => {
            if !transport.cookies {
                return Err(Error::Unauthenticated.into());
            }
            check_csrf(manager, req)?;
            &key.key
        }
    };
    Ok(manager.authenticate(raw).await?)
}

/// Refuses a state-changing request whose `Origin` (or, failing that,
/// `Referer`) is not an allowed origin. Allowed: the configured
/// `transport.cookie.allowed_origins`, else the origin of `public_url`, else
/// the request's own `Host`. A request with neither header is refused.
///
/// # Errors
///
/// 403 `CSRF_REJECTED`.
pub fn check_csrf(manager: &AuthManager, req: &Request) -> Result<(), ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let headers = req.headers();
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(origin_of)
        });
    let Some(origin) = origin.as_deref().and_then(origin_of) else {
        return Err(Error::CsrfRejected.into());
    };
    let config = manager.config();
    let allowed = &config.transport.cookie.allowed_origins;
    let ok = if !allowed.is_empty() {
        allowed
            .iter()
            .any(|a| origin_of(a).as_deref() == Some(origin.as_str()))
    } else if let Some(public) = &config.public_url {
        origin_of(public).as_deref() == Some(origin.as_str())
    } else {
        // HTTP/2 carries the host in the URI authority, not a Host header.
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        host.and_then(|h| origin_of(&format!("http://{h}")))
            .zip(origin_of(&origin))
            .is_some_and(|(h, o)| {
                o.split_once("://").map(|(_, a)| a) == h.split_once("://").map(|(_, a)| a)
            })
    };
    if ok {
        Ok(())
    } else {
        Err(Error::CsrfRejected.into())
    }
}

/// [`check_csrf`] for the form of one of this API's own pages (a link
/// page from [`super::LinkPage`]): also accepts the origin of `public_url`,
/// where the page was served, when `transport.cookie.allowed_origins` names
/// only the front-ends.
///
/// # Errors
///
/// 403 `CSRF_REJECTED`.
pub fn check_page_csrf(manager: &AuthManager, req: &Request) -> Result<(), ApiError> {
    let Err(err) = check_csrf(manager, req) else {
        return Ok(());
    };
    let own = manager.config().public_url.as_deref().and_then(origin_of);
    let sent = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(origin_of);
    match (own, sent) {
        (Some(own), Some(sent)) if own == sent => Ok(()),
        _ => Err(err),
    }
}

/// The normalised origin `scheme://host[:port]` of a URL: lower-cased,
/// user info dropped, default ports (80 for http, 443 for https) omitted.
pub(super) fn origin_of(url: &str) -> Option<String> {
    let uri: poem::http::Uri = url.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let host = authority.host().to_ascii_lowercase();
    match (scheme.as_str(), authority.port_u16()) {
        ("http", Some(80)) | ("https", Some(443)) | (_, None) => Some(format!("{scheme}://{host}")),
        (_, Some(port)) => Some(format!("{scheme}://{host}:{port}")),
    }
}

/// The client IP of `req`: the socket address, unless it is one of
/// `trusted_proxies`; then the right-most `X-Forwarded-For` address that is
/// not a trusted proxy (entries left of it could be forged by the client).
pub(crate) fn resolve_client_ip(req: &Request, trusted_proxies: &[String]) -> Option<String> {
    let socket = req
        .remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip().to_string())?;
    let trusted = |ip: &str| trusted_proxies.iter().any(|p| p == ip);
    if !trusted(&socket) {
        return Some(socket);
    }
    let forwarded: Vec<String> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|ip| ip.trim().to_owned())
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(socket),
    )
}

/// Client IP (the socket address, or a trusted proxy's `X-Forwarded-For`
/// per `rate_limits.trusted_proxies` of the manager [`super::wrap`] put in
/// the request) and user agent of a request. Resolved here, when a flow
/// asks, not for every request (most, like `GET /auth/me`, never do).
pub fn client_info(req: &Request) -> ClientInfo {
    let ip = match req.data::<AuthManager>() {
        Some(manager) => resolve_client_ip(req, &manager.config().rate_limits.trusted_proxies),
        None => req
            .remote_addr()
            .as_socket_addr()
            .map(|addr| addr.ip().to_string()),
    };
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect());
    ClientInfo::new(ip, user_agent)
}

/// Sets the access-token cookie, when cookie transport is on.
pub(crate) fn set_access_cookie(
    manager: &AuthManager,
    jar: &CookieJar,
    access_token: &str,
    expires_in: i64,
) {
    if !manager.config().transport.cookies {
        return;
    }
    let age = std::time::Duration::from_secs(u64::try_from(expires_in).unwrap_or_default());
    jar.add(cookie(manager, ACCESS_COOKIE, access_token, "/", age));
}

/// Sets the token cookies after a sign-in or refresh, when cookie transport
/// is on.
pub fn set_token_cookies(manager: &AuthManager, jar: &CookieJar, sign_in: &SignIn) {
    let transport = &manager.config().transport;
    if !transport.cookies {
        return;
    }
    set_access_cookie(
        manager,
        jar,
        &sign_in.tokens.access_token,
        sign_in.tokens.expires_in,
    );
    let refresh_age = (sign_in.session.expires_at - manager.now())
        .to_std()
        .unwrap_or_default();
    jar.add(cookie(
        manager,
        REFRESH_COOKIE,
        &sign_in.tokens.refresh_token,
        &transport.cookie.refresh_path,
        refresh_age,
    ));
}

/// Expires both token cookies.
pub fn clear_token_cookies(manager: &AuthManager, jar: &CookieJar) {
    let transport = &manager.config().transport;
    if !transport.cookies {
        return;
    }
    let zero = std::time::Duration::ZERO;
    jar.add(cookie(manager, ACCESS_COOKIE, "", "/", zero));
    jar.add(cookie(
        manager,
        REFRESH_COOKIE,
        "",
        &transport.cookie.refresh_path,
        zero,
    ));
}

fn cookie(
    manager: &AuthManager,
    name: &str,
    value: &str,
    path: &str,
    max_age: std::time::Duration,
) -> Cookie {
    let config = &manager.config().transport.cookie;
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_http_only(true);
    cookie.set_secure(config.secure);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path(path);
    cookie.set_max_age(max_age);
    if let Some(domain) = &config.domain {
        cookie.set_domain(domain);
    }
    cookie
}

/// The refresh token from the refresh cookie, when cookie transport is on.
pub(crate) fn refresh_cookie(manager: &AuthManager, jar: &CookieJar) -> Option<String> {
    if !manager.config().transport.cookies {
        return None;
    }
    jar.get(REFRESH_COOKIE)
        .map(|c| c.value_str().to_owned())
        .filter(|v| !v.is_empty())
}

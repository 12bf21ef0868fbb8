//! Ending a sign-in that happens in the browser (a magic link opened from
//! a mail, an OAuth callback): a redirect to the front-end, or JSON.

use poem::web::cookie::CookieJar;
use poem_openapi::{payload::Json, ApiResponse};

use super::{auth::set_token_cookies, TokenBody};
use crate::manager::{AuthManager, SignIn};

/// Answer of a browser sign-in.
#[derive(Debug, ApiResponse)]
pub enum BrowserSignInResponse {
    /// No redirect target: the token pair as JSON (and cookies when cookie
    /// transport is on).
    #[oai(status = 200)]
    Ok(
        Json<TokenBody>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
    /// Signed in; go to the front-end. With cookie transport the tokens are
    /// in the HttpOnly cookies; without it they are in the URL fragment
    /// (`#access_token=…&refresh_token=…&token_type=bearer&expires_in=…`),
    /// which browsers never send to a server.
    #[oai(status = 303)]
    SeeOther(
        /// The allowed front-end URL.
        #[oai(header = "Location")]
        String,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// The answer for a finished browser sign-in: cookies when enabled, then
/// a redirect to `target` (already checked with
/// [`AuthManager::redirect_target`]) or the JSON pair.
pub fn finish_browser_sign_in(
    manager: &AuthManager,
    jar: &CookieJar,
    sign_in: &SignIn,
    target: Option<String>,
) -> BrowserSignInResponse {
    set_token_cookies(manager, jar, sign_in);
    let no_store = || "no-store".to_owned();
    match target {
        None => BrowserSignInResponse::Ok(Json((&sign_in.tokens).into()), no_store()),
        Some(url) if manager.config().transport.cookies => {
            BrowserSignInResponse::SeeOther(url, no_store())
        }
        Some(url) => {
            let tokens = &sign_in.tokens;
            let base = url.split('#').next().unwrap_or_default();
            let location = format!(
                "{base}#access_token={}&refresh_token={}&token_type=bearer&expires_in={}",
                tokens.access_token, tokens.refresh_token, tokens.expires_in
            );
            BrowserSignInResponse::SeeOther(location, no_store())
        }
    }
}

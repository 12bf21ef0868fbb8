//! What the API answers a browser: the HTML pages (every one through
//! [`HtmlPage`], with its security headers), the pages that emailed links
//! open (a GET or HEAD consumes nothing: the page's form POSTs the token),
//! and the end of a sign-in that happens in the browser (a magic link, an
//! OAuth callback): a redirect to the front-end, or JSON.

use base64::Engine as _;
use poem::web::cookie::CookieJar;
use poem_openapi::{
    payload::{Form, Html, Json},
    ApiRequest, ApiResponse, Object,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{auth::set_token_cookies, TokenBody};
use crate::{
    error::Error,
    manager::{AuthManager, SignIn},
};

/// `Referrer-Policy` of every page. The page URL carries the token, so no
/// other origin may see it; `same-origin` rather than `no-referrer`
/// because with `no-referrer` browsers send `Origin: null` on the page's
/// own form POST, which the CSRF check (cookie transport) must refuse. The
/// pages load nothing from elsewhere, so only this API ever gets a
/// `Referer`.
pub const PAGE_REFERRER_POLICY: &str = "same-origin";

/// An HTML page of the API, always with its security headers:
/// `Content-Security-Policy` (`default-src 'none'`, `frame-ancestors
/// 'none'`, forms only to this API and the redirect targets),
/// `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
/// `Referrer-Policy` ([`PAGE_REFERRER_POLICY`]) and
/// `Cache-Control: no-store`. Build it with [`HtmlPage::new`].
#[derive(Debug, ApiResponse)]
pub enum HtmlPage {
    /// The page.
    #[oai(status = 200)]
    Ok(
        Html<String>,
        /// `default-src 'none'`, `frame-ancestors 'none'`, `form-action
        /// 'self'` (plus the redirect targets), `base-uri 'none'`, the
        /// page's style and script by hash: it loads nothing, runs nothing
        /// else, cannot be framed.
        #[oai(header = "Content-Security-Policy")]
        String,
        /// `nosniff`.
        #[oai(header = "X-Content-Type-Options")]
        String,
        /// `DENY` (for browsers without CSP `frame-ancestors`).
        #[oai(header = "X-Frame-Options")]
        String,
        /// `same-origin`: the URL carries a token; no other origin sees it.
        #[oai(header = "Referrer-Policy")]
        String,
        /// `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

impl HtmlPage {
    /// A page with `body` (HTML inside `<body>`; escape what you put in it
    /// with [`escape_html`]) and title `title`. `script`, when given, is
    /// the page's only script, allowed by its hash (and may `fetch` this
    /// API); `form_targets` are origins other than this API that the
    /// page's forms may end on (a redirect after the POST counts).
    pub fn new(title: &str, body: &str, script: Option<&str>, form_targets: &[String]) -> Self {
        let mut html = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}",
            escape_html(title)
        );
        if let Some(script) = script {
            html.push_str("<script>");
            html.push_str(script);
            html.push_str("</script>");
        }
        html.push_str("\n</body></html>");
        HtmlPage::Ok(
            Html(html),
            content_security_policy(script, form_targets),
            "nosniff".into(),
            "DENY".into(),
            PAGE_REFERRER_POLICY.into(),
            "no-store".into(),
        )
    }
}

/// The one style sheet of the pages (allowed by its hash).
const STYLE: &str =
    "body{font-family:sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}button{font-size:1rem;padding:.5rem 1rem}";

fn csp_hash(source: &str) -> String {
    let digest = Sha256::digest(source.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn content_security_policy(script: Option<&str>, form_targets: &[String]) -> String {
    let mut form_action = String::from("'self'");
    for origin in form_targets {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    let mut csp = format!(
        "default-src 'none'; style-src {}; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'",
        csp_hash(STYLE)
    );
    if let Some(script) = script {
        csp.push_str("; script-src ");
        csp.push_str(&csp_hash(script));
        csp.push_str("; connect-src 'self'");
    }
    csp
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for HTML text and
/// quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What an emailed link's page asks the person to confirm.
#[derive(Debug, Clone, Copy)]
pub struct LinkPage<'a> {
    /// Page title and heading, e.g. "Sign in".
    pub title: &'a str,
    /// One sentence saying what pressing the button does.
    pub explanation: &'a str,
    /// The button's label.
    pub button: &'a str,
    /// The form's target, relative to the page (the last path segment of
    /// the link's own path, so the POST goes to the same path).
    pub action: &'a str,
}

impl LinkPage<'_> {
    /// The page for `token`: a form that POSTs it (form-encoded, field
    /// `token`) to the same path when the person presses the button. No
    /// script submits it: opening the link (GET), a mail scanner or a
    /// prefetcher (HEAD, GET) consumes nothing, and a cross-site page that
    /// sends the browser here signs nobody in.
    pub fn render(&self, token: &str, form_targets: &[String]) -> HtmlPage {
        let body = format!(
            "<h1>{title}</h1>\n<p>{explanation}</p>\n\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <button type=\"submit\">{button}</button></form>\n\
             <p>If you did not ask for this, close this page: nothing happens.</p>",
            title = escape_html(self.title),
            explanation = escape_html(self.explanation),
            action = escape_html(self.action),
            token = escape_html(token),
            button = escape_html(self.button),
        );
        HtmlPage::new(self.title, &body, None, form_targets)
    }
}

/// The origins a page's form may end on besides this API: the front-end
/// URL and the allowed redirects (a browser sign-in's POST answers a 303
/// to one of them, and CSP `form-action` covers redirects).
pub fn redirect_origins(manager: &AuthManager) -> Vec<String> {
    let redirects = &manager.config().redirects;
    let mut origins: Vec<String> = redirects
        .frontend_url
        .iter()
        .chain(&redirects.allowed)
        .filter_map(|url| super::auth::origin_of(url))
        .collect();
    origins.sort();
    origins.dedup();
    origins
}

/// The form a link page posts (`application/x-www-form-urlencoded`).
#[derive(Clone, Object, Deserialize)]
pub struct LinkForm {
    /// The token from the link.
    pub token: String,
}

impl std::fmt::Debug for LinkForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkForm { [redacted] }")
    }
}

/// Body of a POST that consumes an emailed token: JSON from a front-end,
/// or the form of the link's own page.
#[derive(Debug, ApiRequest)]
pub enum TokenSubmission {
    /// `{"token": "…"}` from a front-end that read the token itself.
    Json(Json<super::TokenRequest>),
    /// `token=…`, from the page the link opens.
    Form(Form<LinkForm>),
}

impl TokenSubmission {
    /// The submitted token.
    pub fn token(&self) -> &str {
        match self {
            TokenSubmission::Json(Json(body)) => &body.token,
            TokenSubmission::Form(Form(form)) => &form.token,
        }
    }

    /// Whether the link's page (a browser navigation) sent it.
    pub fn from_page(&self) -> bool {
        matches!(self, TokenSubmission::Form(_))
    }
}

/// Answer of a browser sign-in.
#[derive(Debug, ApiResponse)]
pub enum BrowserSignInResponse {
    /// No redirect target: the token pair as JSON (and cookies when cookie
    /// transport is on; in cookie-only mode the body has no tokens).
    #[oai(status = 200)]
    Ok(
        Json<TokenBody>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
    /// Signed in; go to the front-end. With cookie transport the tokens are
    /// in the HttpOnly cookies and the URL carries none; without it they
    /// are in the URL fragment
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
/// [`AuthManager::redirect_target`]) or the JSON pair. With cookie
/// transport the redirect carries no token (the cookies hold the session);
/// in cookie-only mode no token appears in the body either.
pub fn finish_browser_sign_in(
    manager: &AuthManager,
    jar: &CookieJar,
    sign_in: &SignIn,
    target: Option<String>,
) -> BrowserSignInResponse {
    set_token_cookies(manager, jar, sign_in);
    let no_store = || "no-store".to_owned();
    match target {
        None => BrowserSignInResponse::Ok(
            Json(TokenBody::issued(manager, &sign_in.tokens)),
            no_store(),
        ),
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

/// A browser sign-in that ended in `err`: when it is the MFA challenge
/// ([`Error::MfaRequired`]) and there is a redirect `target`, a 303 to it
/// with the challenge in the URL fragment
/// (`#mfa_token=…&methods=totp,recovery_code&expires_in=300`), for the
/// front-end to answer at `POST /auth/mfa/verify`; any other error (or no
/// target: the JSON 403 `MFA_REQUIRED`) is handed back.
///
/// # Errors
///
/// `err`, unless it became the redirect.
pub fn browser_mfa_step(
    err: Error,
    target: Option<String>,
) -> Result<BrowserSignInResponse, Error> {
    match (err, target) {
        (Error::MfaRequired(challenge) | Error::MfaSetupRequired(challenge), Some(url)) => {
            let base = url.split('#').next().unwrap_or_default();
            let location = format!(
                "{base}#mfa_token={}&methods={}&expires_in={}",
                challenge.token,
                challenge.methods.join(","),
                challenge.expires_in
            );
            Ok(BrowserSignInResponse::SeeOther(location, "no-store".into()))
        }
        (err, _) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_leave_an_attribute() {
        assert_eq!(
            escape_html(r#""><script>x('&')</script>"#),
            "&quot;&gt;&lt;script&gt;x(&#39;&amp;&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn the_policy_allows_only_the_hashed_script_and_style() {
        let csp = content_security_policy(Some("go()"), &["https://app.example.com".into()]);
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(
            csp.contains("form-action 'self' https://app.example.com;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            csp.contains(&format!("script-src {}", csp_hash("go()"))),
            "{csp}"
        );
        assert!(!content_security_policy(None, &[]).contains("script-src"));
    }
}

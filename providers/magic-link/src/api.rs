//! The HTTP routes of both flows.

use poem::{web::cookie::CookieJar, Request};
use poem_openapi::{
    param::Query, payload::Json, registry::MetaSchema, types::Example, Object, OpenApi,
};
use portcullis::{
    api::{
        browser_mfa_step, check_csrf, check_page_csrf, client_info, error_set::*,
        finish_browser_sign_in, redirect_origins, AcceptedBody, AcceptedResponse, ApiError,
        ApiErrors, ApiTags, BrowserSignInResponse, EmailString, ErrorSet, HtmlPage, LinkPage,
        Strict, StrictString, StringSchema, TokenResponse, TokenSubmission,
    },
    AuthManager, Error, Proof, RateRule, SignIn,
};
use std::sync::Arc;

use crate::{
    email_code::{CodeProof, EmailCodeProvider, EMAIL_CODE_ID},
    magic_link::{landing, LinkProof, MagicLinkProvider, MAGIC_LINK_ID},
};

/// What a request for a link or code can answer: a before-hook's veto
/// (403), provider not enabled (404), body problems (413, 422), too many
/// requests from this client (429), store or email unavailable (503).
const REQUEST_ERRORS: ErrorSet = FORBIDDEN | NOT_FOUND | BODY | TOO_MANY | UNAVAILABLE;

/// What exchanging a link can answer besides body errors: inactive,
/// sign-up disabled, vetoed or cross-site (403), provider not enabled
/// (404), an unverified account holds the address (409), token used,
/// expired or unknown (410), rate limited (429), store down (503).
const LINK_ERRORS: ErrorSet = FORBIDDEN | NOT_FOUND | CONFLICT | GONE | TOO_MANY | UNAVAILABLE;

/// What exchanging a code can answer: any sign-in's errors (a wrong code
/// is 401) and provider not enabled (404), an unverified account holds the
/// address (409), no live code (410).
const CODE_ERRORS: ErrorSet = SIGN_IN | NOT_FOUND | CONFLICT | GONE;

/// Body of `POST /auth/magic-link`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields, example)]
pub struct MagicLinkRequest {
    /// The address to mail the link to.
    pub email: EmailString,
    /// Where the browser lands when the link is opened: the configured
    /// front-end URL (the default) or one of the allowed redirects, exactly;
    /// anything else is 422 `REDIRECT_NOT_ALLOWED`. Omitted or `null`: the
    /// default.
    #[oai(nullable)]
    pub redirect_to: Option<StrictString>,
}

impl Example for MagicLinkRequest {
    fn example() -> Self {
        Self {
            email: "alice@example.com".into(),
            redirect_to: None,
        }
    }
}

/// Body of `POST /auth/email-code`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields, example)]
pub struct EmailCodeRequest {
    /// The address to mail the code to.
    pub email: EmailString,
}

impl Example for EmailCodeRequest {
    fn example() -> Self {
        Self {
            email: "alice@example.com".into(),
        }
    }
}

/// The schema of [`CodeString`]: six ASCII digits, with ASCII spaces
/// around them allowed (the server trims them and answers `INVALID_CODE`
/// for anything else).
#[derive(Debug)]
pub struct CodeSchema;

impl StringSchema for CodeSchema {
    const NAME: &'static str = "string(code)";
    fn schema() -> MetaSchema {
        MetaSchema {
            pattern: Some("^[ \\t\\n\\f\\r]*[0-9]{6}[ \\t\\n\\f\\r]*$".into()),
            ..MetaSchema::new("string")
        }
    }
}

/// A 6-digit email code in a request.
pub type CodeString = Strict<CodeSchema>;

/// Body of `POST /auth/email-code/verify`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields, example)]
pub struct EmailCodeVerifyRequest {
    /// The address the code was mailed to.
    pub email: EmailString,
    /// The 6 digits from the email.
    pub code: CodeString,
}

impl Example for EmailCodeVerifyRequest {
    fn example() -> Self {
        Self {
            email: "alice@example.com".into(),
            code: "042137".into(),
        }
    }
}

impl std::fmt::Debug for EmailCodeVerifyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailCodeVerifyRequest")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// The page the mailed link opens.
const SIGN_IN_PAGE: LinkPage<'static> = LinkPage {
    title: "Sign in",
    explanation: "Press the button to sign in with the link that was mailed to you. \
                  Only press it if you asked for this link.",
    button: "Sign in",
    action: "verify",
};

fn accepted(message: &str) -> AcceptedResponse {
    AcceptedResponse::Accepted(Json(AcceptedBody {
        message: message.to_owned(),
    }))
}

/// The routes of the magic link and the email code.
///
/// [`MagicLinkApi::new`] serves the very providers registered with the
/// manager (their lifetimes and attempt limits included), so they are
/// configured once, on the builder. A flow whose provider is not registered
/// answers 404.
#[derive(Debug, Clone)]
pub struct MagicLinkApi {
    manager: AuthManager,
    magic_link: Option<Arc<MagicLinkProvider>>,
    email_code: Option<Arc<EmailCodeProvider>>,
}

impl MagicLinkApi {
    /// The routes over `manager`, issuing links and codes as the
    /// [`MagicLinkProvider`] and [`EmailCodeProvider`] registered with it.
    pub fn new(manager: &AuthManager) -> Self {
        Self {
            manager: manager.clone(),
            magic_link: manager.registered_provider(MAGIC_LINK_ID),
            email_code: manager.registered_provider(EMAIL_CODE_ID),
        }
    }

    /// The registered magic-link provider, or 404.
    fn magic_link(&self) -> Result<&MagicLinkProvider, Error> {
        self.magic_link
            .as_deref()
            .ok_or(Error::NotFound("provider"))
    }

    /// The registered email-code provider, or 404.
    fn email_code(&self) -> Result<&EmailCodeProvider, Error> {
        self.email_code
            .as_deref()
            .ok_or(Error::NotFound("provider"))
    }

    /// Signs in through `provider`; with cookie transport, refuses
    /// cross-site requests first (login CSRF: a hostile page must not sign
    /// the browser into the attacker's account). `from_page`: the form of
    /// the link page, which this API served from `public_url`.
    async fn sign_in(
        &self,
        req: &Request,
        provider: &str,
        proof: &dyn Proof,
        from_page: bool,
    ) -> Result<SignIn, ApiError> {
        self.refuse_cross_site(req, from_page)?;
        Ok(self
            .manager
            .sign_in_with(provider, client_info(req), proof)
            .await?)
    }

    /// With cookie transport a sign-in sets session cookies: a cross-site
    /// request is refused (login CSRF).
    fn refuse_cross_site(&self, req: &Request, from_page: bool) -> Result<(), ApiError> {
        if self.manager.config().transport.cookies {
            if from_page {
                check_page_csrf(&self.manager, req)?;
            } else {
                check_csrf(&self.manager, req)?;
            }
        }
        Ok(())
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl MagicLinkApi {
    /// Mail a sign-in link
    ///
    /// Always the same 202 answer, whether or not an account exists for the
    /// address. The link (`/auth/magic-link/verify?token=…`) works once and
    /// expires after 15 minutes by default; a new request replaces earlier
    /// links. An unknown address is signed up on first use, unless provider
    /// sign-up is disabled (then it gets no mail).
    #[oai(
        path = "/auth/magic-link",
        method = "post",
        operation_id = "requestMagicLink"
    )]
    async fn request_magic_link(
        &self,
        req: &Request,
        body: Json<MagicLinkRequest>,
    ) -> Result<AcceptedResponse, ApiErrors<REQUEST_ERRORS>> {
        let Json(body) = body;
        self.magic_link()?
            .request_link(
                &self.manager,
                &body.email,
                body.redirect_to.as_deref(),
                &client_info(req),
            )
            .await?;
        Ok(accepted(
            "if this address can sign in, a sign-in link is on its way",
        ))
    }

    /// Sign in with a magic link (link page)
    ///
    /// The target of the mailed link: a small page that says it signs in
    /// and whose button POSTs the token to `POST /auth/magic-link/verify`.
    /// Opening it (GET or HEAD: a mail scanner, a link prefetcher, a
    /// cross-site navigation) consumes nothing and signs nobody in.
    #[oai(
        path = "/auth/magic-link/verify",
        method = "get",
        operation_id = "verifyMagicLinkLink"
    )]
    async fn verify_magic_link_link(
        &self,
        /// The token from the mailed link.
        token: Query<String>,
    ) -> Result<HtmlPage, ApiErrors<UNPROCESSABLE>> {
        Ok(SIGN_IN_PAGE.render(&token.0, &redirect_origins(&self.manager)))
    }

    /// Sign in with a magic link
    ///
    /// Exchanges the token (once) for a token pair. JSON `{"token"}` from a
    /// front-end that read the token from its own page: the pair as JSON
    /// (and cookies when cookie transport is on). The form of the link
    /// page: when the link was requested with a `redirect_to`, or a
    /// front-end URL is configured, a 303 to it (tokens in HttpOnly cookies
    /// with cookie transport, else in the URL fragment); otherwise the pair
    /// as JSON. In cookie-only mode no token is in the body or the URL.
    /// With cookie transport a cross-site POST is refused (403
    /// `CSRF_REJECTED`, login CSRF). 409 `ACCOUNT_EXISTS` when an account
    /// with an unverified email holds the address (its owner resets the
    /// password instead).
    #[oai(
        path = "/auth/magic-link/verify",
        method = "post",
        operation_id = "verifyMagicLink"
    )]
    async fn verify_magic_link(
        &self,
        req: &Request,
        jar: &CookieJar,
        body: TokenSubmission,
    ) -> Result<BrowserSignInResponse, ApiErrors<{ LINK_ERRORS | BODY }>> {
        self.manager
            .rate_limit(RateRule::TokenPerIp, &client_info(req))
            .await?;
        let token = body.token().to_owned();
        let target = if body.from_page() {
            landing(&self.manager, &token).await?
        } else {
            None
        };
        self.refuse_cross_site(req, body.from_page())?;
        match self
            .manager
            .sign_in_with(MAGIC_LINK_ID, client_info(req), &LinkProof(token))
            .await
        {
            Ok(sign_in) => Ok(finish_browser_sign_in(&self.manager, jar, &sign_in, target)),
            Err(err) => Ok(browser_mfa_step(err, target)?),
        }
    }

    /// Mail a sign-in code
    ///
    /// Always the same 202 answer, whether or not an account exists for the
    /// address. The 6-digit code expires after 10 minutes by default and
    /// survives 5 wrong guesses; a new request replaces the previous code.
    /// An unknown address is signed up on first use, unless provider
    /// sign-up is disabled (then it gets no mail).
    #[oai(
        path = "/auth/email-code",
        method = "post",
        operation_id = "requestEmailCode"
    )]
    async fn request_email_code(
        &self,
        req: &Request,
        body: Json<EmailCodeRequest>,
    ) -> Result<AcceptedResponse, ApiErrors<REQUEST_ERRORS>> {
        self.email_code()?
            .request_code(&self.manager, &body.0.email, &client_info(req))
            .await?;
        Ok(accepted(
            "if this address can sign in, a sign-in code is on its way",
        ))
    }

    /// Sign in with an email code
    ///
    /// Exchanges the mailed code for a token pair (and cookies when cookie
    /// transport is on). A wrong code is 401 `INVALID_CREDENTIALS`; no live
    /// code (none requested, expired, used, or dead after too many wrong
    /// guesses) is 410 `TOKEN_GONE`: request a new one. 409
    /// `ACCOUNT_EXISTS` when an account with an unverified email holds the
    /// address.
    #[oai(
        path = "/auth/email-code/verify",
        method = "post",
        operation_id = "verifyEmailCode"
    )]
    async fn verify_email_code(
        &self,
        req: &Request,
        jar: &CookieJar,
        body: Json<EmailCodeVerifyRequest>,
    ) -> Result<TokenResponse, ApiErrors<CODE_ERRORS>> {
        let Json(body) = body;
        let sign_in = self
            .sign_in(
                req,
                EMAIL_CODE_ID,
                &CodeProof {
                    provider: self.email_code()?,
                    email: body.email.into_inner(),
                    code: body.code.into_inner(),
                },
                false,
            )
            .await?;
        Ok(TokenResponse::issue(&self.manager, jar, &sign_in))
    }
}

//! Account flows: email verification, passwords, email change, deletion,
//! sessions.

use chrono::{DateTime, Utc};
use poem::{web::cookie::CookieJar, Request};
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    types::Example,
    ApiResponse, Object, OpenApi,
};

use super::{
    auth::{clear_token_cookies, client_info},
    caller::Authenticated,
    error_set::*,
    strict::EmailString,
    ApiErrors, ApiTags, HtmlPage, LinkPage, PublicUser, StrictString, TokenResponse,
    TokenSubmission,
};
use crate::{
    manager::{AuthManager, Reauthentication, SensitiveAction},
    store::Session,
    token::Secret,
    user::SessionId,
};

/// Writes a `Debug` that shows no field: these bodies carry secrets.
macro_rules! redacted_debug {
    ($($ty:ident),* $(,)?) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($ty), " { [redacted] }"))
            }
        }
    )*};
}

redacted_debug!(
    TokenRequest,
    ResetPasswordRequest,
    SetPasswordRequest,
    ChangePasswordRequest,
    ChangeEmailRequest,
    DeleteAccountRequest,
);

fn secret(s: StrictString) -> Secret {
    Secret::new(s.into_inner())
}

/// Body of `POST /auth/verify-email`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token from the emailed link.
    pub token: StrictString,
}

/// Body of `POST /auth/forgot-password` and
/// `POST /auth/verify-email/resend`.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields, example)]
pub struct ForgotPasswordRequest {
    /// The account's email address.
    pub email: EmailString,
}

impl Example for ForgotPasswordRequest {
    fn example() -> Self {
        Self {
            email: "alice@example.com".into(),
        }
    }
}

/// Body of `POST /auth/reset-password`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token from the emailed link.
    pub token: StrictString,
    /// The new password (policy: 8+ characters, at most 1,024 bytes, not a
    /// common password).
    pub password: StrictString,
}

/// Body of `POST /auth/account/set-password`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// The password to set.
    pub password: StrictString,
}

/// Body of `POST /auth/account/change-password`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub current_password: StrictString,
    /// The new password.
    pub new_password: StrictString,
}

/// Body of `POST /auth/account/change-email`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ChangeEmailRequest {
    /// The new address; a confirmation link is mailed to it.
    pub new_email: EmailString,
    /// The current password (users who have one).
    pub password: Option<StrictString>,
    /// Or the code mailed to the current address by
    /// `POST /auth/account/change-email-code`. Users without a password
    /// send neither when they signed in recently (403
    /// `REAUTHENTICATION_REQUIRED` otherwise).
    pub code: Option<StrictString>,
}

/// Body of `DELETE /auth/account`.
#[derive(Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// The current password.
    pub password: Option<StrictString>,
    /// Or the code mailed by `POST /auth/account/delete-code` (the only way
    /// for users without a password).
    pub code: Option<StrictString>,
}

/// An accepted request whose effect arrives by email.
#[derive(Debug, Clone, Object)]
pub struct AcceptedBody {
    /// What happens next.
    pub message: String,
}

/// Answer of requests that send an email.
#[derive(Debug, ApiResponse)]
pub enum AcceptedResponse {
    /// Accepted; the email is on its way (sent in the background).
    #[oai(status = 202)]
    Accepted(Json<AcceptedBody>),
}

impl AcceptedResponse {
    fn new(message: &str) -> Self {
        AcceptedResponse::Accepted(Json(AcceptedBody {
            message: message.to_owned(),
        }))
    }
}

/// Answer of flows that return the updated user.
#[derive(Debug, ApiResponse)]
pub enum UserResponse {
    /// The user after the change.
    #[oai(status = 200)]
    Ok(
        Json<PublicUser>,
        /// `private, no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

impl UserResponse {
    pub(crate) fn new(user: &crate::User) -> Self {
        UserResponse::Ok(Json(user.into()), "private, no-store".into())
    }
}

/// The built-in reset page: the token stays in the URL and is posted with
/// the new password; nothing is consumed by opening the page.
const RESET_BODY: &str = r#"<h1>Choose a new password</h1>
<form id="f"><label>New password <input id="p" type="password" autocomplete="new-password" minlength="8" required></label>
<button>Set password</button></form><p id="m" role="status"></p>"#;

/// The reset page's script (allowed by its hash in the page's CSP).
const RESET_SCRIPT: &str = r#"
document.getElementById("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = new URLSearchParams(location.search).get("token") || "";
  const r = await fetch("reset-password", {method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({token, password: document.getElementById("p").value})});
  const m = document.getElementById("m");
  if (r.status === 204) { m.textContent = "Your password is set. Sign in with it now."; document.getElementById("f").hidden = true; }
  else { const b = await r.json().catch(() => ({})); m.textContent = b.message || "Something went wrong."; }
});
"#;

/// The page `GET /auth/verify-email` serves.
const VERIFY_EMAIL_PAGE: LinkPage<'static> = LinkPage {
    title: "Verify your email address",
    explanation: "Press the button to confirm that this email address is yours.",
    button: "Verify my email address",
    action: "verify-email",
};

/// The page `GET /auth/account/confirm-email-change` serves.
const CONFIRM_EMAIL_CHANGE_PAGE: LinkPage<'static> = LinkPage {
    title: "Confirm your new email address",
    explanation: "Press the button to make this address your account's email. \
                  Every session ends and you sign in again with the new address.",
    button: "Confirm the new address",
    action: "confirm-email-change",
};

/// Answer of flows that return nothing.
#[derive(Debug, ApiResponse)]
pub enum NoContentResponse {
    /// Done.
    #[oai(status = 204)]
    Done,
}

/// A signed-in device: one session (refresh-token family).
#[derive(Debug, Clone, Object)]
pub struct SessionObject {
    /// Session id (the access token's `sid`).
    pub id: String,
    /// Provider used to sign in.
    pub provider: String,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    pub last_used_at: DateTime<Utc>,
    /// When the session ends at the latest.
    pub expires_at: DateTime<Utc>,
    /// Client IP at sign-in; `null` when unknown.
    #[oai(nullable)]
    pub ip: Option<String>,
    /// User agent at sign-in; `null` when none was sent.
    #[oai(nullable)]
    pub user_agent: Option<String>,
    /// Whether this is the session of the calling access token.
    pub current: bool,
}

impl SessionObject {
    fn new(session: &Session, current: &SessionId) -> Self {
        Self {
            id: session.id.to_string(),
            provider: session.provider.clone(),
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            ip: session.client.ip.clone(),
            user_agent: session.client.user_agent.clone(),
            current: session.id == *current,
        }
    }
}

/// The caller's sessions.
#[derive(Debug, Clone, Object)]
pub struct SessionList {
    /// Most recently used first.
    pub sessions: Vec<SessionObject>,
}

/// Answer of `GET /auth/sessions`.
#[derive(Debug, ApiResponse)]
pub enum SessionsResponse {
    /// The caller's live sessions.
    #[oai(status = 200)]
    Ok(
        Json<SessionList>,
        /// `private, no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// How many sessions ended.
#[derive(Debug, Clone, Object)]
pub struct RevokedBody {
    /// Sessions revoked.
    pub revoked: u64,
}

/// Answer of `POST /auth/sessions/revoke-others`.
#[derive(Debug, ApiResponse)]
pub enum RevokedResponse {
    /// Every other session ended.
    #[oai(status = 200)]
    Ok(Json<RevokedBody>),
}

/// A provider identity linked to the caller.
#[derive(Debug, Clone, Object)]
pub struct LinkedAccountObject {
    /// Provider id, e.g. `github`.
    pub provider: String,
    /// The email the provider reported when linking; `null` when it
    /// reported none.
    #[oai(nullable)]
    pub email: Option<String>,
    /// Link time.
    pub created_at: DateTime<Utc>,
}

/// The caller's linked providers.
#[derive(Debug, Clone, Object)]
pub struct LinkedAccountList {
    /// By provider id.
    pub accounts: Vec<LinkedAccountObject>,
}

/// Answer of `GET /auth/account/linked`.
#[derive(Debug, ApiResponse)]
pub enum LinkedAccountsResponse {
    /// The caller's linked providers.
    #[oai(status = 200)]
    Ok(
        Json<LinkedAccountList>,
        /// `private, no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// The account API, mounted by [`super::routes`].
#[derive(Debug, Clone)]
pub struct AccountApi {
    manager: AuthManager,
}

impl AccountApi {
    /// The account API over `manager`.
    pub fn new(manager: &AuthManager) -> Self {
        Self {
            manager: manager.clone(),
        }
    }
}

#[OpenApi(tag = "ApiTags::Account")]
impl AccountApi {
    /// Re-send the verification email
    ///
    /// Mails a new verification link to the caller's address; earlier links
    /// stop working. 409 `EMAIL_ALREADY_VERIFIED` when there is nothing to
    /// verify.
    #[oai(
        path = "/auth/request-verify-email",
        method = "post",
        operation_id = "requestVerifyEmail"
    )]
    async fn request_verify_email(
        &self,
        req: &Request,
        caller: Authenticated,
    ) -> Result<AcceptedResponse, ApiErrors<{ AUTHED | CONFLICT | TOO_MANY }>> {
        self.manager
            .request_email_verification(&caller.user, &client_info(req))
            .await?;
        Ok(AcceptedResponse::new(
            "a verification link is on its way to your email address",
        ))
    }

    /// Re-send the verification email, signed out
    ///
    /// For users who cannot sign in yet (verification required) and lost
    /// the link. Always the same 202 answer; only an active, unverified
    /// account gets a new link (the previous one stops working).
    #[oai(
        path = "/auth/verify-email/resend",
        method = "post",
        operation_id = "resendVerifyEmail"
    )]
    async fn resend_verify_email(
        &self,
        req: &Request,
        body: Json<ForgotPasswordRequest>,
    ) -> Result<AcceptedResponse, ApiErrors<{ FORBIDDEN | BODY | UNAVAILABLE | TOO_MANY }>> {
        self.manager
            .resend_email_verification(&body.0.email, &client_info(req))
            .await?;
        Ok(AcceptedResponse::new(
            "if an unverified account exists for this email, a new link is on its way",
        ))
    }

    /// Verify an email address (link page)
    ///
    /// The target of the emailed link: a small page whose button POSTs the
    /// token to `POST /auth/verify-email`. Opening it (GET or HEAD, e.g. a
    /// mail scanner or a link prefetcher) consumes nothing.
    #[oai(
        path = "/auth/verify-email",
        method = "get",
        operation_id = "verifyEmailLink"
    )]
    async fn verify_email_link(
        &self,
        /// The token from the emailed link.
        token: Query<String>,
    ) -> Result<HtmlPage, ApiErrors<UNPROCESSABLE>> {
        Ok(VERIFY_EMAIL_PAGE.render(&token.0, &[]))
    }

    /// Verify an email address
    ///
    /// Marks the email verified; the token works once (410 `TOKEN_GONE`
    /// when used, expired or unknown). JSON `{"token"}` from a front-end
    /// that read the token from its own page, or the form of the link page.
    #[oai(
        path = "/auth/verify-email",
        method = "post",
        operation_id = "verifyEmail"
    )]
    async fn verify_email(
        &self,
        req: &Request,
        body: TokenSubmission,
    ) -> Result<UserResponse, ApiErrors<{ FORBIDDEN | GONE | BODY | UNAVAILABLE | TOO_MANY }>> {
        let user = self
            .manager
            .verify_email(body.token(), &client_info(req))
            .await?;
        Ok(UserResponse::new(&user))
    }

    /// Request a password reset
    ///
    /// Always the same 202 answer, whether or not an account exists for the
    /// email; a known, active account gets a link valid for 1 hour.
    #[oai(
        path = "/auth/forgot-password",
        method = "post",
        operation_id = "forgotPassword"
    )]
    async fn forgot_password(
        &self,
        req: &Request,
        body: Json<ForgotPasswordRequest>,
    ) -> Result<AcceptedResponse, ApiErrors<{ FORBIDDEN | BODY | UNAVAILABLE | TOO_MANY }>> {
        self.manager
            .forgot_password(&body.0.email, &client_info(req))
            .await?;
        Ok(AcceptedResponse::new(
            "if an account exists for this email, a reset link is on its way",
        ))
    }

    /// Reset page (link target)
    ///
    /// Where the emailed reset link points when no front-end page is
    /// configured (`email.reset_password_url`): a minimal form that posts
    /// the token from the URL with the new password. Opening it consumes
    /// nothing.
    #[oai(
        path = "/auth/reset-password",
        method = "get",
        operation_id = "resetPasswordPage"
    )]
    async fn reset_page(
        &self,
        /// The token from the emailed link (read by the page's script).
        #[oai(name = "token")]
        _token: Query<Option<String>>,
    ) -> HtmlPage {
        HtmlPage::new("Choose a new password", RESET_BODY, Some(RESET_SCRIPT), &[])
    }

    /// Reset the password
    ///
    /// Sets a new password with the emailed token (single use). Every
    /// session and access token of the user ends; the user signs in again
    /// with the new password. A notice is mailed.
    #[oai(
        path = "/auth/reset-password",
        method = "post",
        operation_id = "resetPassword"
    )]
    async fn reset_password(
        &self,
        req: &Request,
        body: Json<ResetPasswordRequest>,
    ) -> Result<NoContentResponse, ApiErrors<{ FORBIDDEN | GONE | BODY | UNAVAILABLE | TOO_MANY }>>
    {
        let Json(body) = body;
        self.manager
            .reset_password(&body.token, &secret(body.password), &client_info(req))
            .await?;
        Ok(NoContentResponse::Done)
    }

    /// Set a first password
    ///
    /// For users who signed up without a password (magic link, email code,
    /// OAuth). 409 `PASSWORD_ALREADY_SET` when one exists. The session's
    /// sign-in must be recent (15 minutes by default): 403
    /// `REAUTHENTICATION_REQUIRED` asks the user to sign in again first, so
    /// an old or stolen session cannot add a password.
    #[oai(
        path = "/auth/account/set-password",
        method = "post",
        operation_id = "setPassword"
    )]
    async fn set_password(
        &self,
        caller: Authenticated,
        body: Json<SetPasswordRequest>,
    ) -> Result<UserResponse, ApiErrors<{ AUTHED | CONFLICT | BODY }>> {
        let user = self
            .manager
            .set_password(&caller, &secret(body.0.password))
            .await?;
        Ok(UserResponse::new(&user))
    }

    /// Change the password
    ///
    /// Needs the current password (422 `WRONG_PASSWORD` otherwise). Every
    /// other session ends; this device gets a fresh token pair (and cookies)
    /// and stays signed in. A notice is mailed.
    #[oai(
        path = "/auth/account/change-password",
        method = "post",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        req: &Request,
        jar: &CookieJar,
        caller: Authenticated,
        body: Json<ChangePasswordRequest>,
    ) -> Result<TokenResponse, ApiErrors<{ AUTHED | CONFLICT | BODY | TOO_MANY }>> {
        let Json(body) = body;
        let sign_in = self
            .manager
            .change_password(
                &caller.user,
                &secret(body.current_password),
                &secret(body.new_password),
                &caller.session.provider,
                client_info(req),
            )
            .await?;
        Ok(TokenResponse::issue(&self.manager, jar, &sign_in))
    }

    /// Change the email address
    ///
    /// Re-authentication first: the password (users who have one), or the
    /// code mailed to the current address by
    /// `POST /auth/account/change-email-code`; users without a password may
    /// send neither within 15 minutes of signing in (403
    /// `REAUTHENTICATION_REQUIRED` after that). Mails a confirmation link
    /// (valid 30 minutes) to the new address and a notice to the old one;
    /// nothing changes until the link is opened, and a password reset or
    /// change meanwhile cancels it.
    #[oai(
        path = "/auth/account/change-email",
        method = "post",
        operation_id = "changeEmail"
    )]
    async fn change_email(
        &self,
        req: &Request,
        caller: Authenticated,
        body: Json<ChangeEmailRequest>,
    ) -> Result<AcceptedResponse, ApiErrors<{ AUTHED | CONFLICT | GONE | BODY | TOO_MANY }>> {
        let Json(body) = body;
        let proof = Reauthentication {
            password: body.password.map(secret),
            code: body.code.map(secret),
        };
        self.manager
            .request_email_change(&caller, &body.new_email, &proof, &client_info(req))
            .await?;
        Ok(AcceptedResponse::new(
            "a confirmation link is on its way to the new address",
        ))
    }

    /// Confirm an email change (link page)
    ///
    /// The target of the link mailed to the new address: a small page whose
    /// button POSTs the token to `POST /auth/account/confirm-email-change`.
    /// Opening it (GET or HEAD) consumes nothing.
    #[oai(
        path = "/auth/account/confirm-email-change",
        method = "get",
        operation_id = "confirmEmailChangeLink"
    )]
    async fn confirm_email_change_page(
        &self,
        /// The token from the emailed link.
        token: Query<String>,
    ) -> Result<HtmlPage, ApiErrors<UNPROCESSABLE>> {
        Ok(CONFIRM_EMAIL_CHANGE_PAGE.render(&token.0, &[]))
    }

    /// Confirm an email change
    ///
    /// With the token of the link mailed to the new address (JSON
    /// `{"token"}`, or the form of the link page). The new address becomes
    /// the (verified) email; every session ends, and the user signs in
    /// with the new address. 409 `EMAIL_TAKEN` when another account took it
    /// meanwhile.
    #[oai(
        path = "/auth/account/confirm-email-change",
        method = "post",
        operation_id = "confirmEmailChange"
    )]
    async fn confirm_email_change(
        &self,
        req: &Request,
        body: TokenSubmission,
    ) -> Result<UserResponse, ApiErrors<{ CONFLICT | GONE | BODY | UNAVAILABLE | TOO_MANY }>> {
        let user = self
            .manager
            .confirm_email_change(body.token(), &client_info(req))
            .await?;
        Ok(UserResponse::new(&user))
    }

    /// Mail an email-change code
    ///
    /// Mails a single-use code (valid 15 minutes) to the caller's *current*
    /// address that confirms `POST /auth/account/change-email`: the way
    /// users without a password confirm once their sign-in is no longer
    /// recent.
    #[oai(
        path = "/auth/account/change-email-code",
        method = "post",
        operation_id = "requestChangeEmailCode"
    )]
    async fn change_email_code(
        &self,
        req: &Request,
        caller: Authenticated,
    ) -> Result<AcceptedResponse, ApiErrors<{ AUTHED | TOO_MANY }>> {
        self.manager
            .request_reauthentication_code(
                &caller.user,
                SensitiveAction::ChangeEmail,
                &client_info(req),
            )
            .await?;
        Ok(AcceptedResponse::new(
            "a confirmation code is on its way to your current email address",
        ))
    }

    /// Mail an account-deletion code
    ///
    /// Mails a single-use code (valid 15 minutes) that confirms
    /// `DELETE /auth/account`; the way users without a password confirm.
    #[oai(
        path = "/auth/account/delete-code",
        method = "post",
        operation_id = "requestDeleteCode"
    )]
    async fn delete_code(
        &self,
        req: &Request,
        caller: Authenticated,
    ) -> Result<AcceptedResponse, ApiErrors<{ AUTHED | TOO_MANY }>> {
        self.manager
            .request_account_deletion_code(&caller.user, &client_info(req))
            .await?;
        Ok(AcceptedResponse::new(
            "a confirmation code is on its way to your email address",
        ))
    }

    /// Delete my account
    ///
    /// Confirmed with the password or a mailed code (a session alone never
    /// confirms it). By default the account is deactivated (a soft delete:
    /// its email stays reserved); servers configured with
    /// `accounts.hard_delete` remove it. Every session ends and the token
    /// cookies are cleared. A superuser cannot delete themselves (422
    /// `SELF_LOCKOUT`): another superuser demotes them first. The only
    /// owner of an organization cannot either (409 `LAST_OWNER`): they make
    /// another member owner, or delete the organization, first.
    #[oai(
        path = "/auth/account",
        method = "delete",
        operation_id = "deleteAccount"
    )]
    async fn delete_account(
        &self,
        req: &Request,
        jar: &CookieJar,
        caller: Authenticated,
        body: Json<DeleteAccountRequest>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | CONFLICT | GONE | BODY | TOO_MANY }>> {
        let Json(body) = body;
        let proof = Reauthentication {
            password: body.password.map(secret),
            code: body.code.map(secret),
        };
        self.manager
            .delete_account(&caller, &proof, &client_info(req))
            .await?;
        clear_token_cookies(&self.manager, jar);
        Ok(NoContentResponse::Done)
    }

    /// My sessions
    ///
    /// The caller's signed-in devices, most recently used first.
    #[oai(path = "/auth/sessions", method = "get", operation_id = "listSessions")]
    async fn sessions(
        &self,
        caller: Authenticated,
    ) -> Result<SessionsResponse, ApiErrors<{ AUTHED }>> {
        let sessions = self.manager.list_sessions(&caller.user).await?;
        Ok(SessionsResponse::Ok(
            Json(SessionList {
                sessions: sessions
                    .iter()
                    .map(|s| SessionObject::new(s, &caller.session.id))
                    .collect(),
            }),
            "private, no-store".into(),
        ))
    }

    /// End one session
    ///
    /// Signs one of the caller's devices out; its tokens stop working at
    /// once. 404 when it is not the caller's or already ended.
    #[oai(
        path = "/auth/sessions/:id",
        method = "delete",
        operation_id = "revokeSession"
    )]
    async fn revoke_session(
        &self,
        caller: Authenticated,
        /// The session id (from `GET /auth/sessions`).
        id: Path<String>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND }>> {
        self.manager
            .revoke_session(&caller.user, &SessionId::new(id.0))
            .await?;
        Ok(NoContentResponse::Done)
    }

    /// My linked providers
    ///
    /// The OAuth (and other) provider identities linked to the caller.
    #[oai(
        path = "/auth/account/linked",
        method = "get",
        operation_id = "listLinkedAccounts"
    )]
    async fn linked_accounts(
        &self,
        caller: Authenticated,
    ) -> Result<LinkedAccountsResponse, ApiErrors<{ AUTHED }>> {
        let accounts = self.manager.linked_accounts(&caller.user).await?;
        Ok(LinkedAccountsResponse::Ok(
            Json(LinkedAccountList {
                accounts: accounts
                    .into_iter()
                    .map(|a| LinkedAccountObject {
                        provider: a.provider,
                        email: a.email,
                        created_at: a.created_at,
                    })
                    .collect(),
            }),
            "private, no-store".into(),
        ))
    }

    /// Unlink a provider
    ///
    /// Removes the caller's link to a provider. Refused (409
    /// `LAST_SIGN_IN_METHOD`) when it would leave no way to sign in: no
    /// password, no other linked provider, and no email sign-in (enabled,
    /// and the caller's email verified).
    #[oai(
        path = "/auth/account/linked/:provider",
        method = "delete",
        operation_id = "unlinkAccount"
    )]
    async fn unlink(
        &self,
        caller: Authenticated,
        /// The provider id.
        provider: Path<String>,
    ) -> Result<NoContentResponse, ApiErrors<{ AUTHED | NOT_FOUND | CONFLICT }>> {
        self.manager
            .unlink_account(&caller.user, &provider.0)
            .await?;
        Ok(NoContentResponse::Done)
    }

    /// End every other session
    ///
    /// Signs out every device but this one.
    #[oai(
        path = "/auth/sessions/revoke-others",
        method = "post",
        operation_id = "revokeOtherSessions"
    )]
    async fn revoke_others(
        &self,
        caller: Authenticated,
    ) -> Result<RevokedResponse, ApiErrors<{ AUTHED }>> {
        let revoked = self.manager.revoke_other_sessions(&caller).await?;
        Ok(RevokedResponse::Ok(Json(RevokedBody { revoked })))
    }
}

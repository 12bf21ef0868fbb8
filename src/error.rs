//! The crate's one error type.

use std::borrow::Cow;

use std::fmt;

use crate::{hooks::Veto, store::StoreError};

/// The pending second step of a sign-in ([`Error::MfaRequired`]): a
/// single-use challenge token and the factors that can answer it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MfaChallenge {
    /// The challenge token (`mfa_token`), shown once; the store keeps its
    /// hash.
    pub token: String,
    /// What can answer it: `totp`, `recovery_code`; `totp_setup` for a
    /// setup challenge ([`Error::MfaSetupRequired`]).
    pub methods: Vec<String>,
    /// Seconds until the challenge expires.
    pub expires_in: u64,
}

impl fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a Portcullis flow can fail with.
///
/// Every variant has a stable machine-readable [`code`](Error::code); the HTTP
/// adapter maps codes to statuses in one place (`api::error`). Messages are
/// safe to show to a client: internal detail never reaches them, it is logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Email and password (or another credential) did not match. The same
    /// error answers an unknown email and a wrong password.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// No usable access token was presented, or it is expired, forged,
    /// revoked or of the wrong type.
    #[error("not authenticated")]
    Unauthenticated,
    /// The refresh token is unknown, expired, revoked or was already used.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// The user is deactivated.
    #[error("user is inactive")]
    InactiveUser,
    /// The user must verify their email first.
    #[error("email is not verified")]
    EmailNotVerified,
    /// The caller is authenticated but not allowed to do this.
    #[error("not allowed")]
    Forbidden,
    /// The caller's roles do not grant this permission (a route guard,
    /// [`RequirePermission`](crate::api::RequirePermission)); the answer
    /// names it.
    #[error("this needs the permission `{0}`")]
    PermissionDenied(String),
    /// The caller does not hold this role (in the active organization, for
    /// an organization role); the answer names it.
    #[error("this needs the role `{0}`")]
    RoleRequired(String),
    /// A role of this name exists (in config or in the store).
    #[error("a role with this name exists")]
    RoleExists,
    /// Config roles cannot be changed or deleted at run time.
    #[error("this role is defined in config and is read-only")]
    RoleReadOnly,
    /// The change would leave an organization without an owner (the last
    /// owner leaving, being removed or demoted, or deleting their account).
    #[error("an organization must keep an owner: make another member owner first")]
    LastOwner,
    /// The user is a member of the organization already.
    #[error("already a member of this organization")]
    AlreadyMember,
    /// A pending invitation of this address to this organization exists.
    #[error("this address has a pending invitation to this organization; revoke it first")]
    InvitationPending,
    /// The invitation is for another address (or the caller's address is
    /// not verified).
    #[error("this invitation is for another address: sign in with the invited, verified address")]
    InvitationNotForYou,
    /// A cookie-authenticated request failed the CSRF check.
    #[error("cross-site request refused")]
    CsrfRejected,
    /// A before-hook refused the flow.
    #[error("{}", .0.message)]
    Vetoed(Veto),
    /// An account with this email already exists.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// A provider identity has the email of an existing account, and the
    /// email is not verified on both sides, so it is not linked (blocks
    /// account pre-hijacking).
    #[error("an account with this email exists; sign in to it first to link this provider")]
    AccountExists,
    /// Sign-up through this provider is disabled.
    #[error("sign-up is disabled")]
    SignUpDisabled,
    /// The provider did not verify the email of an identity that would
    /// create a user (see `accounts.allow_unverified_provider_sign_up`).
    #[error(
        "the provider has not verified this email address; verify it there, or sign up another way"
    )]
    ProviderEmailUnverified,
    /// A resource (user, provider, …) does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A one-time token is expired, used or unknown.
    #[error("token is invalid, expired or already used")]
    TokenGone,
    /// Set-password was called for a user who already has a password
    /// (change it with the current one, or reset it).
    #[error("a password is already set; change or reset it instead")]
    PasswordAlreadySet,
    /// Change-password was called for a user without a password (set one
    /// first).
    #[error("no password is set; use set-password")]
    PasswordNotSet,
    /// The flow needs a recent sign-in and the session's is older
    /// (`accounts.recent_sign_in_secs`): sign in again, then retry.
    #[error("this needs a recent sign-in; sign in again and retry")]
    ReauthenticationRequired,
    /// The first factor was proven and the user has a second factor: no
    /// tokens yet. The challenge names the methods; finish with
    /// [`AuthManager::verify_mfa`](crate::AuthManager::verify_mfa).
    #[error("a second factor is required")]
    MfaRequired(Box<MfaChallenge>),
    /// The route needs a session whose sign-in passed a second factor
    /// ([`SecondFactor`](crate::api::SecondFactor)).
    #[error("this needs a sign-in with a second factor")]
    SecondFactorRequired,
    /// The first factor was proven, and config requires a second factor
    /// this user has not enrolled (`mfa.required`): no tokens yet. The
    /// challenge (method `totp_setup`) vouches for the user at
    /// `POST /auth/mfa/enroll/setup` and `/auth/mfa/enroll/confirm`.
    #[error("a second factor must be set up first")]
    MfaSetupRequired(Box<MfaChallenge>),
    /// The second-factor flows need sealing keys (`mfa.sealing_keys`) and
    /// none are configured.
    #[error("second factors are not configured")]
    MfaNotConfigured,
    /// A factor of this kind is already enrolled (remove it first).
    #[error("this second factor is already enrolled")]
    FactorAlreadyEnrolled,
    /// The passkey flows need a relying party (`mfa.passkeys.rp_id`) and
    /// none is configured.
    #[error("passkeys are not configured")]
    PasskeysNotConfigured,
    /// This authenticator's credential is registered already (to this
    /// account or another).
    #[error("this passkey is registered already")]
    PasskeyAlreadyRegistered,
    /// Unlinking would leave the user no way to sign in.
    #[error("this is the last way to sign in; set a password or link another provider first")]
    LastSignInMethod,
    /// The email is already verified.
    #[error("the email is already verified")]
    EmailAlreadyVerified,
    /// The flow has to send an email and no email sender is configured.
    #[error("email delivery is not configured")]
    EmailNotConfigured,
    /// Input failed validation.
    #[error("{message}")]
    Validation {
        /// The offending field, when there is one.
        field: Option<Cow<'static, str>>,
        /// Stable code, e.g. `INVALID_EMAIL`, `WEAK_PASSWORD`.
        code: &'static str,
        /// Human-readable explanation.
        message: Cow<'static, str>,
    },
    /// Too many requests; retry after this many seconds.
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// The store could not be reached.
    #[error("store unavailable")]
    Unavailable(#[source] StoreError),
    /// Configuration is invalid (raised by the builder, never at request time).
    #[error("invalid configuration: {0}")]
    Config(Cow<'static, str>),
    /// Something failed inside; detail is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidCredentials => "INVALID_CREDENTIALS",
            Error::Unauthenticated => "UNAUTHENTICATED",
            Error::InvalidRefreshToken => "INVALID_REFRESH_TOKEN",
            Error::InactiveUser => "USER_INACTIVE",
            Error::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Error::Forbidden => "FORBIDDEN",
            Error::CsrfRejected => "CSRF_REJECTED",
            Error::PermissionDenied(_) | Error::RoleRequired(_) => "FORBIDDEN",
            Error::RoleExists => "ROLE_EXISTS",
            Error::RoleReadOnly => "ROLE_READ_ONLY",
            Error::LastOwner => "LAST_OWNER",
            Error::AlreadyMember => "ALREADY_MEMBER",
            Error::InvitationPending => "INVITATION_PENDING",
            Error::InvitationNotForYou => "INVITATION_NOT_FOR_YOU",
            Error::Vetoed(veto) => veto.code,
            Error::EmailTaken => "EMAIL_TAKEN",
            Error::AccountExists => "ACCOUNT_EXISTS",
            Error::SignUpDisabled => "SIGN_UP_DISABLED",
            Error::ProviderEmailUnverified => "PROVIDER_EMAIL_UNVERIFIED",
            Error::NotFound(_) => "NOT_FOUND",
            Error::TokenGone => "TOKEN_GONE",
            Error::PasswordAlreadySet => "PASSWORD_ALREADY_SET",
            Error::PasswordNotSet => "PASSWORD_NOT_SET",
            Error::EmailAlreadyVerified => "EMAIL_ALREADY_VERIFIED",
            Error::LastSignInMethod => "LAST_SIGN_IN_METHOD",
            Error::MfaRequired(_) => "MFA_REQUIRED",
            Error::MfaNotConfigured => "MFA_NOT_CONFIGURED",
            Error::MfaSetupRequired(_) => "MFA_SETUP_REQUIRED",
            Error::SecondFactorRequired => "SECOND_FACTOR_REQUIRED",
            Error::FactorAlreadyEnrolled => "FACTOR_ALREADY_ENROLLED",
            Error::PasskeysNotConfigured => "PASSKEYS_NOT_CONFIGURED",
            Error::PasskeyAlreadyRegistered => "PASSKEY_ALREADY_REGISTERED",
            Error::ReauthenticationRequired => "REAUTHENTICATION_REQUIRED",
            Error::EmailNotConfigured => "EMAIL_NOT_CONFIGURED",
            Error::Validation { code, .. } => code,
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Error::Config(_) => "CONFIG_ERROR",
            Error::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// A validation error on `field`.
    pub fn validation(
        field: impl Into<Cow<'static, str>>,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::Validation {
            field: Some(field.into()),
            code,
            message: message.into(),
        }
    }

    /// Wraps any error as an internal one.
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(err.into())
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => Error::Unavailable(err),
            StoreError::Conflict(_) => Error::internal(err),
            StoreError::Backend(_) => Error::internal(err),
        }
    }
}

impl From<Veto> for Error {
    fn from(veto: Veto) -> Self {
        Error::Vetoed(veto)
    }
}

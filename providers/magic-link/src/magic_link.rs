//! The magic link: a mailed, single-use sign-in link.

use std::time::Duration;

use async_trait::async_trait;
use portcullis::{
    normalize_email, Action, AuthManager, ClientInfo, Error, Identity, Message, OneTimeToken,
    OpaqueToken, Proof, Provider, ProviderCx, ProviderInfo, ProviderRequest, RateRule, Result,
    TokenHash,
};
use serde::Deserialize;

use crate::{chrono_ttl, clamp_ttl, emit_requested, identity_for, recipient, require_provider};

/// Id of the magic-link provider.
pub const MAGIC_LINK_ID: &str = "magic-link";

/// Purpose of the stored one-time tokens.
const PURPOSE: &str = "magic_link";

/// Where the mailed link points (under `public_url`).
const VERIFY_PATH: &str = "/auth/magic-link/verify";

/// The event emitted when a link is mailed.
pub const MAGIC_LINK_REQUESTED_EVENT: &str = "magic_link_requested";

/// Default lifetime of a link.
const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// Signs in with a link mailed to the address.
///
/// [`request_link`](Self::request_link) mails
/// `PUBLIC_URL/auth/magic-link/verify?token=…`; the token has 256 random
/// bits, is stored only as its SHA-256 (bound to the address), works once
/// and expires after [`ttl`](Self::ttl) (15 minutes by default). A new
/// request for the same address kills the earlier links.
///
/// `authenticate` takes `{"token": "…"}`, consumes the token atomically (of
/// concurrent uses exactly one succeeds; a used, expired or unknown token is
/// [`Error::TokenGone`], 410) and returns the identity of the address (see
/// the [crate docs](crate) for existing and new users).
#[derive(Debug, Clone)]
pub struct MagicLinkProvider {
    ttl: Duration,
}

impl Default for MagicLinkProvider {
    fn default() -> Self {
        Self { ttl: DEFAULT_TTL }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyInput {
    token: String,
}

impl MagicLinkProvider {
    /// The provider, with links valid 15 minutes.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a link stays valid (whole seconds, between one second and
    /// 30 days; values outside are clamped).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = clamp_ttl(ttl);
        self
    }

    /// The configured lifetime of a link.
    pub fn link_ttl(&self) -> Duration {
        self.ttl
    }

    /// Requests a link for `email`, to land on `redirect_to` when opened in
    /// a browser (`None`: the configured front-end URL, or the JSON token
    /// pair when there is none).
    ///
    /// Checks the input and returns at once; whether the address belongs to
    /// a user, storing the token and mailing it happen in the background
    /// (see [`AuthManager::wait_for_deliveries`]), so the outcome and its
    /// timing are the same for every address. An inactive user, or an
    /// unknown address when provider sign-up is disabled, gets no mail.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (422) for a malformed email or a `redirect_to`
    /// that is not allowed (`REDIRECT_NOT_ALLOWED`), [`Error::NotFound`]
    /// (404) when this provider is not registered with `manager`,
    /// [`Error::RateLimited`] (429) when `client` passed its
    /// `email_per_ip` budget, [`Error::EmailNotConfigured`] (503) without
    /// an email sender, [`Error::Vetoed`] when a before-hook refuses
    /// [`Action::RequestSignInMail`]. Over the address's `email_per_address` budget the
    /// answer is the same and nothing new is sent.
    pub async fn request_link(
        &self,
        manager: &AuthManager,
        email: &str,
        redirect_to: Option<&str>,
        client: &ClientInfo,
    ) -> Result<()> {
        require_provider(manager, MAGIC_LINK_ID)?;
        let email = normalize_email(email)?;
        manager.redirect_target(redirect_to)?;
        let cx = manager.provider_cx();
        if !cx.can_send_email() {
            return Err(Error::EmailNotConfigured);
        }
        manager.rate_limit(RateRule::EmailPerIp, client).await?;
        cx.ask(Action::RequestSignInMail {
            provider: MAGIC_LINK_ID.into(),
            email: email.clone(),
        })
        .await?;
        let redirect_to = redirect_to.map(str::to_owned);
        let ttl = self.ttl;
        let manager = manager.clone();
        cx.in_background(async move {
            if let Err(err) = issue(&manager, ttl, &email, redirect_to).await {
                tracing::error!(error = %err, "magic link not issued");
            }
        });
        Ok(())
    }
}

/// Stores a new link token for `email` (replacing earlier ones) and mails
/// it, when the address may sign in.
async fn issue(
    manager: &AuthManager,
    ttl: Duration,
    email: &str,
    redirect_to: Option<String>,
) -> Result<()> {
    // Over the address's mail budget nothing new is sent, and the live
    // link or code stays valid: nobody locks the owner out.
    if !manager.mail_budget(email).await? {
        return Ok(());
    }
    let cx = manager.provider_cx();
    let Some(recipient) = recipient(&cx, email).await? else {
        return Ok(());
    };
    let token = OpaqueToken::generate();
    let record = OneTimeToken::new(token.hash(), PURPOSE, cx.now(), chrono_ttl(ttl))
        .for_email(email)
        .with_data(serde_json::json!({ "redirect_to": redirect_to }));
    // `false` only on a collision of 256 random bits: mail nothing.
    if cx.store_token(&record, true).await? {
        cx.send(
            &recipient.to,
            recipient.name.as_deref(),
            Message::MagicLink {
                link: cx.link(VERIFY_PATH, &token),
                expires_in_secs: ttl.as_secs(),
            },
        );
        emit_requested(
            &cx,
            MAGIC_LINK_ID,
            MAGIC_LINK_REQUESTED_EVENT,
            email,
            recipient,
        )
        .await;
    }
    Ok(())
}

/// Where a browser that opens the live link `token` lands: the
/// `redirect_to` it was requested with, if that is still allowed, else the
/// configured front-end URL; `None` (answer JSON) when there is neither or
/// the token is not live (the sign-in then fails on its own).
///
/// # Errors
///
/// [`Error::Unavailable`] when the store is down.
pub(crate) async fn landing(manager: &AuthManager, token: &str) -> Result<Option<String>> {
    let cx = manager.provider_cx();
    let Some(record) = cx.find_token(&TokenHash::of(token), PURPOSE).await? else {
        return Ok(None);
    };
    let requested = record.data.get("redirect_to").and_then(|v| v.as_str());
    // Checked again: the allow-list may have shrunk since the request.
    Ok(manager
        .redirect_target(requested)
        .or_else(|_| manager.redirect_target(None))
        .unwrap_or_default())
}

#[async_trait]
impl Provider for MagicLinkProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo::new(MAGIC_LINK_ID, "passwordless").signs_in_by_email()
    }

    async fn authenticate(
        &self,
        cx: &ProviderCx<'_>,
        request: ProviderRequest,
    ) -> Result<Identity> {
        let input: VerifyInput = request.body_as()?;
        verify(cx, &input.token).await
    }
}

/// Consumes the link token `token` (atomically, once) and returns the
/// identity of its address.
async fn verify(cx: &ProviderCx<'_>, token: &str) -> Result<Identity> {
    let token = cx
        .consume_token(&TokenHash::of(token), PURPOSE)
        .await?
        .ok_or(Error::TokenGone)?;
    let email = token.email.ok_or(Error::TokenGone)?;
    Ok(identity_for(MAGIC_LINK_ID, &email))
}

/// The token of a mailed link, as the route read it: a typed proof for
/// [`AuthManager::sign_in_with`].
pub(crate) struct LinkProof(pub(crate) String);

#[async_trait]
impl Proof for LinkProof {
    async fn prove(&self, cx: &ProviderCx<'_>) -> Result<Identity> {
        verify(cx, &self.0).await
    }
}

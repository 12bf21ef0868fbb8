use std::{fmt, sync::Arc};

use super::{access::ActiveOrg, AuthManager};
use crate::{
    authz::PermissionSet,
    error::{Error, Result},
    hooks::{Action, Event},
    store::{ClientInfo, RefreshToken, Session},
    token::{AccessClaims, OpaqueToken},
    user::{SessionId, User, UserId},
};

/// An access and refresh token pair, as answered by every sign-in.
#[derive(Clone)]
#[non_exhaustive]
pub struct TokenPair {
    /// Signed JWT.
    pub access_token: String,
    /// Opaque refresh token (shown once; the store keeps its hash).
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The result of a sign-in or refresh: who, which session, which tokens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignIn {
    /// The signed-in user.
    pub user: User,
    /// The session.
    pub session: Session,
    /// The tokens to hand to the client.
    pub tokens: TokenPair,
}

/// An authenticated caller: the checked claims, the user and their session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Principal {
    /// The user, as loaded while checking the token.
    pub user: User,
    /// The live session the token belongs to.
    pub session: Session,
    /// The verified claims.
    pub claims: Arc<AccessClaims>,
    /// What the user's roles grant, resolved for this request
    /// ([`has_permission`](Self::has_permission)).
    pub permissions: PermissionSet,
    /// The session's active organization and the user's roles in it,
    /// resolved for this request; `None` without one or when the user is no
    /// longer a member.
    pub org: Option<ActiveOrg>,
}

impl Principal {
    /// Whether the user holds the role `name` (read from the store with this
    /// request, not from the token).
    pub fn has_role(&self, name: &str) -> bool {
        self.user.roles.iter().any(|r| r == name)
    }

    /// Whether the user's roles grant the plain permission `name`
    /// (wildcards as in [`crate::authz`]). A superuser holds every
    /// permission: `is_superuser` is the break-glass flag.
    pub fn has_permission(&self, name: &str) -> bool {
        self.user.is_superuser || self.permissions.grants(name)
    }

    /// Whether the user holds the role `name` in the session's active
    /// organization.
    pub fn has_org_role(&self, name: &str) -> bool {
        self.org
            .as_ref()
            .is_some_and(|org| org.roles.iter().any(|r| r == name))
    }

    /// Whether the user's roles in the session's active organization grant
    /// `name`. Only membership grants organization permissions (a superuser
    /// without a membership has none).
    pub fn has_org_permission(&self, name: &str) -> bool {
        self.org
            .as_ref()
            .is_some_and(|org| org.permissions.grants(name))
    }
}

impl AuthManager {
    /// Checks an access token: signature, algorithm, `iss`, `aud`, `typ` and
    /// `exp`, then (in one store read) that the user exists, the session is
    /// alive, and the token's `token_version` is the user's. An inactive user
    /// gets [`Error::InactiveUser`].
    ///
    /// # Errors
    ///
    /// [`Error::Unauthenticated`] (401), [`Error::InactiveUser`] (403),
    /// [`Error::Unavailable`] (503).
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal> {
        let now = self.now();
        let claims = self.inner.jwt.verify(access_token, now)?;
        let user_id = UserId::new(claims.sub.clone());
        let session_id = SessionId::new(claims.sid.clone());
        let (user, session) = self
            .inner
            .store
            .find_session_user(&user_id, &session_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if !session.is_alive(now)
            || claims.ver != user.token_version
            || session.token_version != user.token_version
        {
            return Err(Error::Unauthenticated);
        }
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        let permissions = self.user_permissions(&user).await?;
        let org = self.active_org(&user, &session).await?;
        Ok(Principal {
            user,
            session,
            claims,
            permissions,
            org,
        })
    }

    /// Ends the caller's session: its refresh family is revoked and its
    /// access tokens stop working at once. Asks the before-hooks
    /// (`logout`). Emits `logout`.
    ///
    /// # Errors
    ///
    /// [`Error::Vetoed`] (403), [`Error::Unavailable`] (503).
    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        self.inner
            .hooks
            .before(Action::Logout {
                user: Box::new(principal.user.clone()),
                session_id: principal.session.id.clone(),
            })
            .await?;
        self.inner
            .store
            .revoke_session(&principal.session.id, self.now())
            .await?;
        self.emit(Event::LoggedOut {
            user_id: principal.user.id.clone(),
            session_id: principal.session.id.clone(),
        })
        .await;
        Ok(())
    }

    /// Ends every session of a user at once: bumps `token_version` first
    /// (so every access and refresh token dies even if the next write is cut
    /// off), then revokes the session records. Emits `sessions_revoked`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (404), [`Error::Unavailable`] (503).
    pub async fn revoke_all_sessions(&self, user_id: &UserId) -> Result<User> {
        let now = self.now();
        let user = self
            .inner
            .store
            .bump_token_version(user_id, now)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let count = self
            .inner
            .store
            .revoke_user_sessions(user_id, None, now)
            .await?;
        self.emit(Event::SessionsRevoked {
            user_id: user_id.clone(),
            count,
        })
        .await;
        Ok(user)
    }

    /// Opens a session for `user` proven by `provider` alone and issues
    /// its first token pair.
    pub(crate) async fn open_session(
        &self,
        user: &User,
        provider: &str,
        client: ClientInfo,
    ) -> Result<(Session, TokenPair)> {
        let amr = vec![self.first_factor_amr(provider)];
        self.open_session_with(user, provider, client, amr).await
    }

    /// The `amr` value of a first factor proven by `provider` (RFC 8176
    /// `pwd` for a password provider, else the provider's kind).
    pub(crate) fn first_factor_amr(&self, provider: &str) -> String {
        match self
            .inner
            .providers
            .info(provider)
            .map(|info| info.kind.as_str())
        {
            Some("password") => "pwd".to_owned(),
            Some(kind) => kind.to_owned(),
            None => "ext".to_owned(),
        }
    }

    /// Opens a session whose sign-in was proven by `amr`.
    pub(crate) async fn open_session_with(
        &self,
        user: &User,
        provider: &str,
        client: ClientInfo,
        amr: Vec<String>,
    ) -> Result<(Session, TokenPair)> {
        let now = self.now();
        let ttl = chrono::Duration::seconds(
            i64::try_from(self.inner.config.refresh.session_ttl_secs).unwrap_or(i64::MAX / 2),
        );
        let session = Session::new(user, provider, now, ttl, client).with_amr(amr);
        let refresh = OpaqueToken::generate();
        self.inner
            .store
            .insert_session(&session, &RefreshToken::new(refresh.hash(), &session, now))
            .await?;
        let tokens = TokenPair {
            access_token: self.access_token(user, &session, now).await?,
            refresh_token: refresh.expose().to_owned(),
            expires_in: self.inner.jwt.ttl_secs(),
        };
        Ok((session, tokens))
    }
}

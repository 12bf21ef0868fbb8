use super::{AuthManager, SignIn, TokenPair};
use crate::{
    error::{Error, Result},
    hooks::{Action, Event},
    store::Rotation,
    token::{OpaqueToken, TokenHash},
};

impl AuthManager {
    /// Rotates a refresh token: the presented token is used up and a new
    /// pair is issued in the same session (family). Presenting a token that
    /// was already rotated (outside the configured grace window) revokes the
    /// whole family and emits `refresh_token_reused`. The session's absolute
    /// lifetime is never extended. Asks the before-hooks (`refresh`; a veto
    /// ends the session). Emits `token_refreshed`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRefreshToken`] (401) for unknown, used, expired or
    /// revoked tokens and for sessions from before a `token_version` bump;
    /// [`Error::InactiveUser`] (403); [`Error::Unavailable`] (503).
    pub async fn refresh(&self, refresh_token: &str) -> Result<SignIn> {
        let now = self.now();
        let presented = TokenHash::of(refresh_token);
        let next = OpaqueToken::generate();
        let grace = chrono::Duration::seconds(
            i64::try_from(self.inner.config.refresh.reuse_grace_secs).unwrap_or(0),
        );
        let session = match self
            .inner
            .store
            .rotate_refresh_token(&presented, &next.hash(), now, grace)
            .await?
        {
            Rotation::Rotated(session) => session,
            Rotation::Reused(session) => {
                tracing::warn!(session = %session.id, user = %session.user_id, "refresh token reuse: session revoked");
                self.emit(Event::RefreshTokenReused {
                    user_id: session.user_id,
                    session_id: session.id,
                })
                .await;
                return Err(Error::InvalidRefreshToken);
            }
            Rotation::Invalid => return Err(Error::InvalidRefreshToken),
        };
        let user = self
            .inner
            .store
            .find_user(&session.user_id)
            .await?
            .ok_or(Error::InvalidRefreshToken)?;
        if session.token_version != user.token_version {
            self.inner.store.revoke_session(&session.id, now).await?;
            return Err(Error::InvalidRefreshToken);
        }
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        // The token is already rotated: a veto ends the whole session
        // rather than leaving it with a refresh token nobody holds.
        if let Err(veto) = self
            .inner
            .hooks
            .before(Action::Refresh {
                user: Box::new(user.clone()),
                session_id: session.id.clone(),
            })
            .await
        {
            self.inner.store.revoke_session(&session.id, now).await?;
            return Err(veto.into());
        }
        let tokens = TokenPair {
            access_token: self.access_token(&user, &session, now).await?,
            refresh_token: next.expose().to_owned(),
            expires_in: self.inner.jwt.ttl_secs(),
        };
        self.emit(Event::TokenRefreshed {
            user_id: user.id.clone(),
            session_id: session.id.clone(),
        })
        .await;
        Ok(SignIn {
            user,
            session,
            tokens,
        })
    }
}

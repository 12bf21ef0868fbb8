use super::{AuthManager, RateRule};
use crate::{
    error::{Error, Result},
    hooks::{Action, Event},
    store::{ClientInfo, StoreError},
    user::User,
};

/// Longest accepted display name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 200;

/// Input of [`AuthManager::register`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Registration {
    /// Email address.
    pub email: String,
    /// Password, checked against the policy.
    pub password: crate::Secret,
    /// Display name.
    pub name: Option<String>,
    /// Who registers (counted against `rate_limits.sign_up_per_ip`).
    pub client: ClientInfo,
}

impl Registration {
    /// A registration with email and password.
    pub fn new(email: impl Into<String>, password: impl Into<crate::Secret>) -> Self {
        Self {
            email: email.into(),
            password: password.into(),
            name: None,
            client: ClientInfo::default(),
        }
    }

    /// Sets the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets who registers (their IP is counted against
    /// `rate_limits.sign_up_per_ip`).
    pub fn with_client(mut self, client: ClientInfo) -> Self {
        self.client = client;
        self
    }
}

impl AuthManager {
    /// Creates a user with a password: validates the email, name and
    /// password policy, asks the before-hooks, hashes, and inserts (the store
    /// enforces email uniqueness atomically). Emits `user_registered`.
    ///
    /// The new user is active, unverified and not a superuser: no input can
    /// set those.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (422), [`Error::Vetoed`] (403),
    /// [`Error::EmailTaken`] (409), [`Error::RateLimited`] (429),
    /// [`Error::Unavailable`] (503).
    pub async fn register(&self, registration: Registration) -> Result<User> {
        self.rate_limit(RateRule::SignUpPerIp, &registration.client)
            .await?;
        let now = self.now();
        let mut user = User::new(&registration.email, now)?;
        user.name = validate_name(registration.name)?;
        self.inner
            .policy
            .check(registration.password.expose(), Some(&user.email))?;
        self.inner
            .hooks
            .before(Action::Register {
                email: user.email.clone(),
                name: user.name.clone(),
                provider: "credentials".into(),
            })
            .await?;
        user.password_hash = Some(
            self.inner
                .hasher
                .hash(registration.password.expose())
                .await?,
        );
        match self.inner.store.insert_user(&user).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::EmailTaken),
            Err(err) => return Err(err.into()),
        }
        self.emit(Event::UserRegistered {
            user: user.clone(),
            provider: "credentials".into(),
        })
        .await;
        if self.inner.email.is_some() && self.inner.config.email.verify_on_register {
            // The account exists either way; a failed mail is logged and the
            // user can ask for another.
            if let Err(err) = self.send_verification(&user).await {
                tracing::error!(error = %err, user = %user.id, "verification mail failed");
            }
        }
        Ok(user)
    }
}

/// Trims a display name; empty → `None`; too long or with control
/// characters → 422.
pub(crate) fn validate_name(name: Option<String>) -> Result<Option<String>> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::validation(
            "name",
            "INVALID_NAME",
            format!("name must be at most {MAX_NAME_CHARS} characters, without control characters"),
        ));
    }
    Ok(Some(name.to_owned()))
}

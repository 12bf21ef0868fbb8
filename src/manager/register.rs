use super::{AuthManager, RateRule};
use crate::{
    email::Message,
    error::{Error, Result},
    hooks::{Action, Event},
    store::{ClientInfo, StoreError},
    user::{normalize_email, User},
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

/// What [`AuthManager::sign_up`] answered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SignUp {
    /// The user was created.
    Created(Box<User>),
    /// Enumeration-safe registration
    /// (`accounts.enumeration_safe_registration`): the same answer for a
    /// new and a taken address; mail tells the owner what happened.
    Accepted,
}

impl AuthManager {
    /// Registration as the HTTP route runs it: [`register`](Self::register),
    /// or, with `accounts.enumeration_safe_registration`, the same
    /// [`SignUp::Accepted`] for a new address (created, verification mailed
    /// in the background) and a taken one (nothing created; the owner is
    /// mailed a notice in the background), so the answer never tells
    /// whether an address has an account.
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register), except that a taken address is
    /// [`Error::EmailTaken`] only when the mode is off.
    pub async fn sign_up(&self, registration: Registration) -> Result<SignUp> {
        if !self.inner.config.accounts.enumeration_safe_registration {
            return self
                .create_user(registration, false)
                .await
                .map(|user| SignUp::Created(Box::new(user)));
        }
        let email = registration.email.clone();
        match self.create_user(registration, true).await {
            Ok(_) => Ok(SignUp::Accepted),
            Err(Error::EmailTaken) => {
                let normalized = normalize_email(&email)?;
                let this = self.clone();
                self.in_background(async move {
                    match this.inner.store.find_user_by_email(&normalized).await {
                        Ok(Some(owner)) => this.deliver(
                            &owner.email,
                            owner.name.as_deref(),
                            Message::RegistrationAttempted,
                        ),
                        Ok(None) => {}
                        Err(err) => {
                            tracing::error!(error = %err, "registration notice failed");
                        }
                    }
                });
                Ok(SignUp::Accepted)
            }
            Err(err) => Err(err),
        }
    }

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
        self.create_user(registration, false).await
    }

    /// [`register`](Self::register); `quiet`: the verification mail (token
    /// included) is issued in the background, so the answer takes the same
    /// time as for a taken address.
    async fn create_user(&self, registration: Registration, quiet: bool) -> Result<User> {
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
            if quiet {
                let (this, user) = (self.clone(), user.clone());
                self.in_background(async move {
                    if let Err(err) = this.send_verification(&user).await {
                        tracing::error!(error = %err, user = %user.id, "verification mail failed");
                    }
                });
            } else if let Err(err) = self.send_verification(&user).await {
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

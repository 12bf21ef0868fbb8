use serde_json::{Map, Value};

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
    /// Values of the app-declared registration fields
    /// ([`AuthManagerBuilder::registration_field`](super::AuthManagerBuilder::registration_field)),
    /// checked before the user exists and kept as their profile metadata.
    pub profile: Map<String, Value>,
}

impl Registration {
    /// A registration with email and password.
    pub fn new(email: impl Into<String>, password: impl Into<crate::Secret>) -> Self {
        Self {
            email: email.into(),
            password: password.into(),
            name: None,
            client: ClientInfo::default(),
            profile: Map::new(),
        }
    }

    /// Sets the values of the app-declared registration fields.
    pub fn with_profile(mut self, profile: Map<String, Value>) -> Self {
        self.profile = profile;
        self
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
        user.metadata = validate_profile(&self.inner.registration_fields, registration.profile)?;
        self.inner
            .policy
            .check(registration.password.expose(), Some(&user.email))?;
        self.inner
            .hooks
            .before(Action::Register {
                email: user.email.clone(),
                name: user.name.clone(),
                provider: "credentials".into(),
                metadata: user.metadata.clone(),
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

/// The type of an app-declared registration field.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldKind {
    /// A JSON string of `min_chars..=max_chars` characters (trimmed), without
    /// control characters.
    Text {
        /// Fewest characters (after trimming).
        min_chars: usize,
        /// Most characters (after trimming).
        max_chars: usize,
    },
    /// A JSON boolean; with `must_be_true`, only `true` is accepted (terms
    /// of service, consent).
    Boolean {
        /// Only `true` is accepted.
        must_be_true: bool,
    },
    /// A JSON integer in `min..=max`.
    Integer {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
}

/// An extra field the app declares for `POST /auth/register`
/// (`profile.<name>` in the body), validated before the user exists and
/// stored in their profile metadata ([`User::metadata`]) under its name.
///
/// ```
/// use portcullis::ProfileField;
///
/// let fields = [
///     ProfileField::text("display_name").required().max_chars(50),
///     ProfileField::boolean("accept_terms").must_be_true(),
///     ProfileField::integer("birth_year").range(1900, 2100),
/// ];
/// assert!(fields[1].is_required());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileField {
    name: String,
    kind: FieldKind,
    required: bool,
    description: Option<String>,
}

/// Most characters of a text field unless
/// [`max_chars`](ProfileField::max_chars) says otherwise.
pub const DEFAULT_FIELD_CHARS: usize = 200;

impl ProfileField {
    fn new(name: &str, kind: FieldKind) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            required: false,
            description: None,
        }
    }

    /// An optional text field of up to [`DEFAULT_FIELD_CHARS`] characters.
    pub fn text(name: &str) -> Self {
        Self::new(
            name,
            FieldKind::Text {
                min_chars: 0,
                max_chars: DEFAULT_FIELD_CHARS,
            },
        )
    }

    /// An optional boolean field.
    pub fn boolean(name: &str) -> Self {
        Self::new(
            name,
            FieldKind::Boolean {
                must_be_true: false,
            },
        )
    }

    /// An optional integer field (any `i64`).
    pub fn integer(name: &str) -> Self {
        Self::new(
            name,
            FieldKind::Integer {
                min: i64::MIN,
                max: i64::MAX,
            },
        )
    }

    /// The field must be present (for text: at least one character).
    pub fn required(mut self) -> Self {
        self.required = true;
        if let FieldKind::Text { min_chars, .. } = &mut self.kind {
            *min_chars = (*min_chars).max(1);
        }
        self
    }

    /// Text: at most `max` characters.
    pub fn max_chars(mut self, max: usize) -> Self {
        if let FieldKind::Text { max_chars, .. } = &mut self.kind {
            *max_chars = max;
        }
        self
    }

    /// Text: at least `min` characters (at least 1 for a required field,
    /// whatever the order of the calls).
    pub fn min_chars(mut self, min: usize) -> Self {
        let floor = usize::from(self.required);
        if let FieldKind::Text { min_chars, .. } = &mut self.kind {
            *min_chars = min.max(floor);
        }
        self
    }

    /// Whether the bounds admit a value at all (`min <= max`).
    pub(crate) fn bounds_ok(&self) -> bool {
        match &self.kind {
            FieldKind::Text {
                min_chars,
                max_chars,
            } => min_chars <= max_chars,
            FieldKind::Integer { min, max } => min <= max,
            FieldKind::Boolean { .. } => true,
        }
    }

    /// Boolean: required and only `true` accepted.
    pub fn must_be_true(mut self) -> Self {
        self.required = true;
        if let FieldKind::Boolean { must_be_true } = &mut self.kind {
            *must_be_true = true;
        }
        self
    }

    /// Integer: between `min` and `max`, inclusive.
    pub fn range(mut self, min: i64, max: i64) -> Self {
        if let FieldKind::Integer { min: lo, max: hi } = &mut self.kind {
            (*lo, *hi) = (min, max);
        }
        self
    }

    /// What the spec says about the field.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The field's name (its key in `profile` and in the metadata).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its type and limits.
    pub fn kind(&self) -> &FieldKind {
        &self.kind
    }

    /// Whether it must be present.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// Its JSON Schema (OpenAPI 3.0), as the spec documents it.
    pub fn json_schema(&self) -> Value {
        let mut schema = match &self.kind {
            FieldKind::Text {
                min_chars,
                max_chars,
            } => serde_json::json!({
                "type": "string", "minLength": min_chars, "maxLength": max_chars,
            }),
            FieldKind::Boolean { must_be_true } => {
                let mut s = serde_json::json!({"type": "boolean"});
                if *must_be_true {
                    s["enum"] = serde_json::json!([true]);
                }
                s
            }
            FieldKind::Integer { min, max } => {
                let mut s = serde_json::json!({"type": "integer", "format": "int64"});
                if *min != i64::MIN {
                    s["minimum"] = (*min).into();
                }
                if *max != i64::MAX {
                    s["maximum"] = (*max).into();
                }
                s
            }
        };
        if let Some(text) = &self.description {
            schema["description"] = text.clone().into();
        }
        schema
    }

    /// Validates the field's value: the value to store, or the 422 naming
    /// `{object}.{name}` (`profile` at registration, `metadata` later).
    fn check(&self, object: &str, value: Value) -> Result<Value> {
        let field = format!("{object}.{}", self.name);
        let invalid =
            |message: String| Err(Error::validation(field.clone(), "INVALID_FIELD", message));
        match (&self.kind, value) {
            (
                FieldKind::Text {
                    min_chars,
                    max_chars,
                },
                Value::String(text),
            ) => {
                let text = text.trim();
                let chars = text.chars().count();
                if chars < *min_chars || chars > *max_chars || text.chars().any(char::is_control) {
                    return invalid(format!(
                        "{field} must be {min_chars} to {max_chars} characters, without control characters"
                    ));
                }
                Ok(Value::String(text.to_owned()))
            }
            (FieldKind::Boolean { must_be_true }, Value::Bool(b)) => {
                if *must_be_true && !b {
                    return invalid(format!("{field} must be true"));
                }
                Ok(Value::Bool(b))
            }
            (FieldKind::Integer { min, max }, Value::Number(n)) => match n.as_i64() {
                Some(i) if i >= *min && i <= *max => Ok(Value::Number(n)),
                _ => invalid(format!("{field} must be an integer from {min} to {max}")),
            },
            (kind, _) => invalid(format!(
                "{field} must be {}",
                match kind {
                    FieldKind::Text { .. } => "a string",
                    FieldKind::Boolean { .. } => "a boolean",
                    FieldKind::Integer { .. } => "an integer",
                }
            )),
        }
    }
}

/// Checks the registration `profile` against the declared fields: an
/// undeclared key, a missing required field or a bad value is a 422 naming
/// `profile.<name>`. Answers the values to store (trimmed text).
pub(crate) fn validate_profile(
    fields: &[ProfileField],
    mut profile: Map<String, Value>,
) -> Result<Map<String, Value>> {
    if let Some(unknown) = profile
        .keys()
        .find(|key| !fields.iter().any(|f| f.name == **key))
    {
        let field = format!("profile.{unknown}");
        let message = format!("{field} is not a registration field");
        return Err(Error::validation(field, "UNKNOWN_FIELD", message));
    }
    let mut accepted = Map::new();
    for field in fields {
        match profile.remove(&field.name) {
            // `null` is the same as absent.
            None | Some(Value::Null) => {
                if field.required {
                    let name = format!("profile.{}", field.name);
                    let message = format!("{name} is required");
                    return Err(Error::validation(name, "FIELD_REQUIRED", message));
                }
            }
            Some(value) => {
                accepted.insert(field.name.clone(), field.check("profile", value)?);
            }
        }
    }
    Ok(accepted)
}

/// Checks new profile `metadata` (which replaces `current`) against the
/// declared registration fields, so a value accepted once keeps its rule:
/// a declared key that is present must pass its check, and a required one
/// the user has cannot be removed (422 on `metadata.<name>`). Other keys
/// are the user's own and pass as they are.
pub(crate) fn validate_metadata_update(
    fields: &[ProfileField],
    current: &Map<String, Value>,
    mut metadata: Map<String, Value>,
) -> Result<Map<String, Value>> {
    for field in fields {
        match metadata.remove(&field.name) {
            None | Some(Value::Null) => {
                let had = current.get(&field.name).is_some_and(|v| !v.is_null());
                if field.required && had {
                    let name = format!("metadata.{}", field.name);
                    let message = format!("{name} is a required registration field");
                    return Err(Error::validation(name, "FIELD_REQUIRED", message));
                }
            }
            Some(value) => {
                metadata.insert(field.name.clone(), field.check("metadata", value)?);
            }
        }
    }
    Ok(metadata)
}

/// The JSON Schema of the registration `profile` object for `fields`.
pub(crate) fn profile_schema(fields: &[ProfileField]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| (f.name.clone(), f.json_schema()))
        .collect();
    let required: Vec<Value> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| Value::String(f.name.clone()))
        .collect();
    let mut schema = serde_json::json!({
        "type": "object",
        "description": if fields.is_empty() {
            "Values of the app's own registration fields. This app declares none: \
             send no `profile`, or an empty one."
                .to_owned()
        } else {
            format!(
                "Values of the app's own registration fields ({}), checked before the \
                 user exists (422 naming `profile.<field>`) and kept as their profile \
                 `metadata`. Other keys are refused.",
                fields
                    .iter()
                    .map(|f| format!("`{}`", f.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    schema
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{AuthConfig, AuthManager, Secret};

    fn build(field: ProfileField) -> Result<AuthManager> {
        let mut config = AuthConfig::default();
        config.jwt.secret = Some(Secret::new("0123456789abcdef0123456789abcdef"));
        AuthManager::builder(config)
            .registration_field(field)
            .build()
    }

    #[test]
    fn a_required_text_field_keeps_a_floor_of_one_character() {
        let field = ProfileField::text("nick").required().min_chars(0);
        let fields = [field];
        let empty = Map::from_iter([("nick".to_owned(), json!("   "))]);
        let err = validate_profile(&fields, empty).unwrap_err();
        assert_eq!(err.code(), "INVALID_FIELD");
        let ok = Map::from_iter([("nick".to_owned(), json!("n"))]);
        assert!(validate_profile(&fields, ok).is_ok());
    }

    #[test]
    fn bounds_that_admit_no_value_are_refused_at_build() {
        for field in [
            ProfileField::text("a").min_chars(10).max_chars(5),
            ProfileField::integer("b").range(10, 1),
        ] {
            match build(field) {
                Err(Error::Config(message)) => {
                    assert!(message.contains("minimum is above"), "{message}")
                }
                other => panic!("expected a config error, got {other:?}"),
            }
        }
        assert!(build(ProfileField::integer("c").range(1, 1)).is_ok());
    }
}

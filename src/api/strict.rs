//! JSON string fields that refuse other JSON types, and request fields
//! whose schema states the server's own rule while the server keeps its own
//! error code for it.

use std::{borrow::Cow, fmt, marker::PhantomData, ops::Deref};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde_json::Value;

/// What a [`Strict`] string's spec says about it: its poem-openapi type
/// name and its schema. Implement it for a unit type to give a request
/// field its own rule, e.g. a provider's code format:
///
/// ```
/// use poem_openapi::registry::MetaSchema;
/// use portcullis::api::{Strict, StringSchema};
///
/// /// A 4-letter ticket code.
/// #[derive(Debug)]
/// pub struct TicketSchema;
///
/// impl StringSchema for TicketSchema {
///     const NAME: &'static str = "string(ticket)";
///     fn schema() -> MetaSchema {
///         MetaSchema {
///             pattern: Some("^[A-Z]{4}$".into()),
///             ..MetaSchema::new("string")
///         }
///     }
/// }
///
/// pub type Ticket = Strict<TicketSchema>;
/// let ticket = Ticket::from("ABCD");
/// assert_eq!(&*ticket, "ABCD");
/// ```
pub trait StringSchema: Send + Sync + 'static {
    /// The type's name in poem-openapi's registry (e.g. `string(email)`).
    const NAME: &'static str;
    /// The schema the spec shows.
    fn schema() -> MetaSchema;
}

/// A request string that refuses every other JSON type (poem-openapi's
/// `String` turns numbers and booleans into text; this answers 422, as the
/// spec says), with the schema `S` states. The server keeps its own rule
/// and error code; the schema tells clients what that rule is.
pub struct Strict<S: StringSchema>(String, PhantomData<fn() -> S>);

impl<S: StringSchema> Strict<S> {
    /// A value (not checked: the server's rule is applied where it is used).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into(), PhantomData)
    }

    /// The inner string.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<S: StringSchema> Clone for Strict<S> {
    fn clone(&self) -> Self {
        Self::new(self.0.clone())
    }
}

impl<S: StringSchema> PartialEq for Strict<S> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<S: StringSchema> Eq for Strict<S> {}

impl<S: StringSchema> Default for Strict<S> {
    fn default() -> Self {
        Self::new(String::new())
    }
}

impl<S: StringSchema> Deref for Strict<S> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<S: StringSchema> fmt::Debug for Strict<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<S: StringSchema> From<&str> for Strict<S> {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl<S: StringSchema> From<String> for Strict<S> {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl<'de, S: StringSchema> serde::Deserialize<'de> for Strict<S> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl<S: StringSchema> Type for Strict<S> {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        S::NAME.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(S::schema()))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: StringSchema> ParseFromJSON for Strict<S> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(s) => Ok(Self::new(s)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<S: StringSchema> ToJSON for Strict<S> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

impl<S: StringSchema> ParseFromParameter for Strict<S> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self::new(value))
    }
}

/// Any string: the schema of [`StrictString`].
#[derive(Debug)]
pub struct AnyString;

impl StringSchema for AnyString {
    const NAME: &'static str = "string";
    fn schema() -> MetaSchema {
        MetaSchema::new("string")
    }
}

/// A request string: only a JSON string, never a number or boolean
/// turned into text, so `{"email": 5}` is a validation error as the spec
/// says.
pub type StrictString = Strict<AnyString>;

/// The schema of [`EmailString`]: `format: email`, at most 254 characters
/// (the server answers `INVALID_EMAIL` otherwise).
#[derive(Debug)]
pub struct EmailSchema;

impl StringSchema for EmailSchema {
    const NAME: &'static str = "string(email)";
    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(crate::user::MAX_EMAIL_LEN),
            ..MetaSchema::new_with_format("string", "email")
        }
    }
}

/// An email address in a request.
pub type EmailString = Strict<EmailSchema>;

/// The schema of [`EmailPrefix`]: at most 254 characters, the longest
/// email (the server answers `INVALID_EMAIL_PREFIX`).
#[derive(Debug)]
pub struct EmailPrefixSchema;

impl StringSchema for EmailPrefixSchema {
    const NAME: &'static str = "string(email_prefix)";
    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(crate::user::MAX_EMAIL_LEN),
            ..MetaSchema::new("string")
        }
    }
}

/// An email prefix filter (a query parameter).
pub type EmailPrefix = Strict<EmailPrefixSchema>;

/// A page size (a query parameter), 1 to [`MAX_PAGE`](crate::manager::MAX_PAGE)
/// as the schema says; out of range is the manager's `INVALID_LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(pub u64);

impl Type for PageLimit {
    const IS_REQUIRED: bool = true;
    type RawValueType = u64;
    type RawElementValueType = u64;

    fn name() -> Cow<'static, str> {
        "integer(page_limit)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            minimum: Some(1.0),
            maximum: Some(crate::manager::MAX_PAGE as f64),
            ..MetaSchema::new_with_format("integer", "uint64")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromParameter for PageLimit {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        u64::parse_from_parameter(value)
            .map(Self)
            .map_err(ParseError::propagate)
    }
}

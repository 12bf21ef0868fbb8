//! JSON string fields that refuse other JSON types, and request fields
//! whose schema states the server's own rule while the server keeps its own
//! error code for it.

use std::{borrow::Cow, fmt, ops::Deref};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde_json::Value;

macro_rules! strict_string {
    ($(#[$meta:meta])* $name:ident, $type_name:literal, $schema:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Default)]
        pub struct $name(pub String);

        impl $name {
            /// The inner string.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self)
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = String;
            type RawElementValueType = String;

            fn name() -> Cow<'static, str> {
                $type_name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                let schema: fn() -> MetaSchema = $schema;
                MetaSchemaRef::Inline(Box::new(schema()))
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

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value.unwrap_or_default() {
                    Value::String(s) => Ok(Self(s)),
                    other => Err(ParseError::expected_type(other)),
                }
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }

        impl ParseFromParameter for $name {
            fn parse_from_parameter(value: &str) -> ParseResult<Self> {
                Ok(Self(value.to_owned()))
            }
        }
    };
}

strict_string!(
    /// A request string. poem-openapi's `String` accepts numbers and booleans
    /// and turns them into text; this type answers 422 for anything but a JSON
    /// string, so `{"email": 5}` is a validation error as the spec says.
    StrictString,
    "string",
    || MetaSchema::new("string")
);

strict_string!(
    /// An email address in a request, a [`StrictString`] whose schema says
    /// what the server accepts: `format: email`, at most 254 characters
    /// (the server answers `INVALID_EMAIL` otherwise).
    EmailString,
    "string(email)",
    || MetaSchema {
        max_length: Some(crate::user::MAX_EMAIL_LEN),
        ..MetaSchema::new_with_format("string", "email")
    }
);

strict_string!(
    /// A 6-digit email code in a request: six ASCII digits, with ASCII
    /// spaces around them allowed (the server trims them and answers
    /// `INVALID_CODE` for anything else).
    CodeString,
    "string(code)",
    || MetaSchema {
        pattern: Some("^[ \\t\\n\\f\\r]*[0-9]{6}[ \\t\\n\\f\\r]*$".into()),
        ..MetaSchema::new("string")
    }
);

strict_string!(
    /// An email prefix filter (a query parameter): at most 254 characters,
    /// the longest email (the server answers `INVALID_EMAIL_PREFIX`).
    EmailPrefix,
    "string(email_prefix)",
    || MetaSchema {
        max_length: Some(crate::user::MAX_EMAIL_LEN),
        ..MetaSchema::new("string")
    }
);

strict_string!(
    /// The `grant_type` of the OAuth2 password form: only `password` (the
    /// server answers `UNSUPPORTED_GRANT_TYPE` otherwise).
    GrantType,
    "string(grant_type)",
    || MetaSchema {
        enum_items: vec![Value::String("password".into())],
        ..MetaSchema::new("string")
    }
);

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

//! [`SerdeJson`]: a JSON response body written by serde in one pass.
//!
//! poem-openapi's `Json<T>` answers by building a `serde_json::Value` of
//! the whole body (an ordered map with an owned key per field), then
//! serialising that: on `GET /auth/me`, the hottest route, that was about a
//! tenth of the server's CPU (issue 14's profile). `SerdeJson<T>` documents
//! the same schema and writes `T`'s `Serialize` straight into the body.
//! Each type that uses it has a test that its serde form equals its
//! poem-openapi form, so the spec stays the contract.

use poem::{IntoResponse, Response};
use poem_openapi::{
    payload::Payload,
    registry::{MetaSchemaRef, Registry},
    types::Type,
};
use serde::Serialize;

/// A JSON response body of `T`, serialised directly (see the module docs).
///
/// Use it only for a type whose `serde::Serialize` writes exactly what its
/// poem-openapi `Type` documents (no serde renames or skips the `#[oai]`
/// attributes do not have), and test that, as this module does for
/// [`PublicUser`](super::PublicUser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerdeJson<T>(pub T);

/// What poem-openapi's `Json` declares and poem's `Json` sends.
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

impl<T: Type> Payload for SerdeJson<T> {
    const CONTENT_TYPE: &'static str = CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Serialize + Send> IntoResponse for SerdeJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::builder().content_type(CONTENT_TYPE).body(body),
            // Never for the types that use it (strings, numbers, maps with
            // string keys). If it ever were, the JSON error body goes out
            // (the `ApiResponse` derive keeps the operation's documented
            // status, as it does for poem-openapi's own `Json`).
            Err(err) => {
                super::ApiError::from(crate::error::Error::Internal(Box::new(err))).into_response()
            }
        }
    }
}

/// RFC 3339 as poem-openapi writes a `DateTime<Utc>` (`+00:00`, not `Z`).
pub(crate) fn rfc3339<S: serde::Serializer>(
    at: &chrono::DateTime<chrono::Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use poem_openapi::types::ToJSON;

    use crate::api::PublicUser;

    /// The serde form `GET /auth/me` sends is the poem-openapi form the
    /// spec documents, field for field.
    #[test]
    fn public_user_serialises_as_its_schema() {
        let mut metadata = BTreeMap::new();
        metadata.insert(
            "theme".to_owned(),
            serde_json::json!({"dark": true, "n": [1, 2.5]}),
        );
        for (name, created_at) in [
            (
                Some("Ada \"Byron\" ✓".to_owned()),
                Utc.timestamp_millis_opt(1_796_641_199_123).unwrap(),
            ),
            (None, chrono::DateTime::UNIX_EPOCH),
        ] {
            let user = PublicUser {
                id: "01936f0e-7c1a-7cc2-9d1e-5b3f2a8e4c10".into(),
                email: "ada@example.com".into(),
                name,
                email_verified: true,
                is_active: true,
                is_superuser: false,
                has_password: false,
                created_at,
                metadata: metadata.clone(),
                app_metadata: BTreeMap::new(),
                roles: vec!["editor".into(), "billing-admin".into()],
            };
            // As values: the key order of poem-openapi's form follows
            // serde_json's `preserve_order` feature (on with `mongodb`),
            // which JSON readers do not see.
            let direct: serde_json::Value =
                serde_json::from_slice(&serde_json::to_vec(&user).unwrap()).unwrap();
            assert_eq!(Some(direct), user.to_json());
        }
    }
}

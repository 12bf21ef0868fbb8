//! What poem-openapi's generated OpenAPI 3.0 document leaves out, added
//! before it is served or committed, and the `Allow` header of 405 answers,
//! taken from the same document.
//!
//! poem-openapi 5 writes a valid-looking spec that differs from what the
//! server does in three ways, each found by schemathesis and
//! openapi-spec-validator (`scripts/fuzz.sh`):
//!
//! - an OAuth2 flow without scopes has no `scopes` member, which OpenAPI 3.0
//!   requires (an empty map is valid);
//! - an optional property (`Option<T>`, `MaybeUndefined<T>`) is answered as
//!   `null` and accepted as `null`, but is not marked `nullable`;
//! - a request body of `#[oai(deny_unknown_fields)]` refuses unknown fields
//!   (422) but its schema does not say `additionalProperties: false`. Every
//!   JSON request body of Portcullis's own operations (tagged with
//!   [`ApiTags`](super::ApiTags)) refuses unknown fields, so those schemas
//!   get it; an integrator's own operations are left as generated.

use poem::http::Method;
use serde_json::{Map, Value};

use super::ApiTags;
use crate::manager::AuthManager;

/// The tags of Portcullis's own operations.
fn own_tags() -> Vec<String> {
    use poem_openapi::Tags;
    [
        ApiTags::Auth,
        ApiTags::Account,
        ApiTags::Mfa,
        ApiTags::Passkeys,
        ApiTags::Users,
        ApiTags::Roles,
        ApiTags::Organizations,
    ]
    .iter()
    .map(|t| t.name().to_owned())
    .collect()
}

/// `spec` (poem-openapi's JSON) with the fixes above and what only the
/// manager knows (the app's registration fields, the transports that are
/// on), as pretty JSON.
pub(crate) fn finish(spec: &str, manager: &AuthManager) -> String {
    // poem-openapi writes JSON; should it ever not, serve what it wrote.
    let Ok(mut doc) = serde_json::from_str::<Value>(spec) else {
        tracing::error!("the generated OpenAPI document is not JSON; serving it unchanged");
        return spec.to_owned();
    };
    describe_registration_profile(&mut doc, manager.registration_fields());
    keep_schemes(&mut doc, &enabled_schemes(manager));
    finish_doc(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec.to_owned())
}

/// The generic fixes, without a manager.
fn finish_doc(doc: &mut Value) {
    describe_guards(doc);
    drop_empty_servers(doc);
    order_top_level(doc);
    add_oauth_scopes(doc);
    mark_optional_nullable(doc);
    close_request_bodies(doc);
}

/// Every operation object of the document (`paths.*.*`).
fn operations_mut(doc: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
}

/// Turns the route guards' security-requirement marks
/// ([`super::guard`]) into a line of the operation's description and its
/// `x-portcullis-requires` extension.
fn describe_guards(doc: &mut Value) {
    for op in operations_mut(doc) {
        let mut requires = Vec::new();
        if let Some(security) = op.get_mut("security").and_then(Value::as_array_mut) {
            security.retain(|requirement| {
                let marks: Vec<&str> = requirement
                    .as_object()
                    .map(|r| {
                        r.keys()
                            .filter_map(|k| k.strip_prefix(super::guard::MARK_PREFIX))
                            .collect()
                    })
                    .unwrap_or_default();
                for mark in &marks {
                    if let Some((kind, name)) = mark.split_once(':') {
                        requires.push((kind.to_owned(), name.to_owned()));
                    }
                }
                marks.is_empty()
            });
        }
        if requires.is_empty() {
            continue;
        }
        let lines: Vec<String> = requires
            .iter()
            .map(|(kind, name)| match kind.as_str() {
                "permission" => format!("Requires the permission `{name}` (403 `FORBIDDEN` otherwise)."),
                "org_permission" => format!(
                    "Requires the permission `{name}` in the session's active organization (403 `FORBIDDEN` otherwise)."
                ),
                _ => format!(
                    "Requires the role `{name}` in the session's active organization (403 `FORBIDDEN` otherwise)."
                ),
            })
            .collect();
        let description = match op.get("description").and_then(Value::as_str) {
            Some(d) if !d.is_empty() => format!("{d}\n\n{}", lines.join("\n\n")),
            _ => lines.join("\n\n"),
        };
        op.insert("description".into(), Value::String(description));
        op.insert(
            "x-portcullis-requires".into(),
            Value::Array(
                requires
                    .into_iter()
                    .map(|(kind, name)| {
                        let mut m = Map::new();
                        m.insert(kind, Value::String(name));
                        Value::Object(m)
                    })
                    .collect(),
            ),
        );
    }
}

/// `RegistrationProfile` as the app declared it: each field's schema, the
/// required ones, nothing else accepted.
fn describe_registration_profile(doc: &mut Value, fields: &[crate::ProfileField]) {
    let name = super::types::REGISTRATION_PROFILE_SCHEMA;
    if let Some(schema) = doc.pointer_mut(&format!("/components/schemas/{name}")) {
        *schema = crate::manager::profile_schema(fields);
    }
}

/// The security schemes of the transports that are on: bearer whenever the
/// server accepts it, and the OAuth2 password flow that obtains one unless
/// cookie-only mode puts no token in any answer; the cookie when cookie
/// transport is on.
fn enabled_schemes(manager: &AuthManager) -> Vec<&'static str> {
    let transport = &manager.config().transport;
    let mut schemes = Vec::new();
    if transport.bearer {
        schemes.push("BearerAuth");
        if !transport.cookie_only {
            schemes.push("OAuth2Password");
        }
    }
    if transport.cookies {
        schemes.push("CookieAuth");
    }
    schemes
}

/// Drops the schemes of Portcullis's transports that are off from
/// `components/securitySchemes` and from every operation's `security`
/// (the app's own schemes stay).
fn keep_schemes(doc: &mut Value, enabled: &[&str]) {
    const OURS: [&str; 3] = ["BearerAuth", "OAuth2Password", "CookieAuth"];
    let off = |name: &str| OURS.contains(&name) && !enabled.contains(&name);
    if let Some(schemes) = doc
        .pointer_mut("/components/securitySchemes")
        .and_then(Value::as_object_mut)
    {
        schemes.retain(|name, _| !off(name));
    }
    for op in operations_mut(doc) {
        let Some(security) = op.get_mut("security").and_then(Value::as_array_mut) else {
            continue;
        };
        security.retain(|requirement| {
            requirement
                .as_object()
                .is_none_or(|r| r.keys().any(|name| !off(name)))
        });
    }
}

/// poem-openapi writes `"servers": []` when none is set; without the
/// member the document describes the API where it is served (OpenAPI's
/// default server `/`).
fn drop_empty_servers(doc: &mut Value) {
    if let Some(doc) = doc.as_object_mut() {
        if doc
            .get("servers")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            doc.remove("servers");
        }
    }
}

/// The document's members in the order of the OpenAPI specification
/// (`openapi`, `info`, `servers`, `tags`, `paths`, `components`, then any
/// other), whatever order poem-openapi wrote them in, so the committed
/// spec's diffs stay small.
fn order_top_level(doc: &mut Value) {
    const ORDER: [&str; 6] = ["openapi", "info", "servers", "tags", "paths", "components"];
    let Some(map) = doc.as_object_mut() else {
        return;
    };
    let mut ordered = Map::new();
    for key in ORDER {
        if let Some(value) = map.remove(key) {
            ordered.insert(key.to_owned(), value);
        }
    }
    ordered.append(map);
    *map = ordered;
}

fn add_oauth_scopes(doc: &mut Value) {
    let Some(schemes) = doc
        .pointer_mut("/components/securitySchemes")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for scheme in schemes.values_mut() {
        let Some(flows) = scheme.get_mut("flows").and_then(Value::as_object_mut) else {
            continue;
        };
        for flow in flows.values_mut().filter_map(Value::as_object_mut) {
            flow.entry("scopes")
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
}

fn mark_optional_nullable(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    // A wrapped `$ref` says the referenced schema's `type` beside
    // `nullable` (validators such as ajv refuse `nullable` without one).
    let types: Map<String, Value> = schemas
        .iter()
        .filter_map(|(name, schema)| Some((name.clone(), schema.get("type")?.clone())))
        .collect();
    for schema in schemas.values_mut() {
        let required: Vec<Value> = schema
            .get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (name, property) in properties.iter_mut() {
            if required.iter().any(|r| r.as_str() == Some(name)) {
                continue;
            }
            let Some(property) = property.as_object_mut() else {
                continue;
            };
            if let Some(reference) = property.remove("$ref") {
                // Siblings of `$ref` are ignored in 3.0: wrap it.
                property.insert(
                    "allOf".into(),
                    Value::Array(vec![Value::Object(Map::from_iter([(
                        "$ref".to_owned(),
                        reference,
                    )]))]),
                );
            }
            if !property.contains_key("type") {
                let referenced = property
                    .get("allOf")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|part| part.get("$ref")?.as_str())
                    .filter_map(|r| types.get(r.strip_prefix("#/components/schemas/")?))
                    .next()
                    .cloned();
                if let Some(kind) = referenced {
                    property.insert("type".into(), kind);
                }
            }
            property.insert("nullable".into(), Value::Bool(true));
        }
    }
}

fn close_request_bodies(doc: &mut Value) {
    let own = own_tags();
    let mut closed = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for op in paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(|item| item.values())
        {
            let ours = op
                .get("tags")
                .and_then(Value::as_array)
                .is_some_and(|tags| {
                    tags.iter()
                        .any(|t| t.as_str().is_some_and(|t| own.iter().any(|o| o == t)))
                });
            if !ours {
                continue;
            }
            let Some(content) = op
                .pointer("/requestBody/content")
                .and_then(Value::as_object)
            else {
                continue;
            };
            for (media, body) in content {
                if !media.starts_with("application/json") {
                    continue;
                }
                if let Some(name) = body
                    .pointer("/schema/$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    closed.push(name.to_owned());
                }
            }
        }
    }
    for name in closed {
        if let Some(schema) = doc
            .pointer_mut(&format!("/components/schemas/{name}"))
            .and_then(Value::as_object_mut)
        {
            schema.insert("additionalProperties".into(), Value::Bool(false));
        }
    }
}

/// The methods of every path of a spec, to answer 405 with `Allow`.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedMethods {
    /// Path templates split into segments (`{id}` matches any one segment),
    /// with their methods in upper case.
    paths: Vec<(Vec<String>, Vec<String>)>,
}

impl AllowedMethods {
    pub(crate) fn from_spec(spec: &str) -> Self {
        let doc: Value = serde_json::from_str(spec).unwrap_or_default();
        let mut paths = Vec::new();
        if let Some(items) = doc.get("paths").and_then(Value::as_object) {
            for (path, item) in items {
                let Some(item) = item.as_object() else {
                    continue;
                };
                let mut methods: Vec<String> = item
                    .keys()
                    .filter_map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                    .map(|m| m.as_str().to_owned())
                    .collect();
                // poem answers HEAD for every GET route.
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                let segments = path.split('/').map(str::to_owned).collect();
                paths.push((segments, methods));
            }
        }
        Self { paths }
    }

    /// The `Allow` value for a request path, when the path is an operation's.
    pub(crate) fn allow(&self, path: &str) -> Option<String> {
        let is_param = |t: &str| t.starts_with('{') && t.ends_with('}');
        let segments: Vec<&str> = path.split('/').collect();
        // `/auth/sessions/revoke-others` before `/auth/sessions/{id}`: the
        // template with the most literal segments wins, as in the router.
        self.paths
            .iter()
            .filter(|(template, _)| {
                template.len() == segments.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| (is_param(t) && !s.is_empty()) || t == s)
            })
            .max_by_key(|(template, _)| template.iter().filter(|t| !is_param(t)).count())
            .map(|(_, methods)| methods.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_matches_templates_segment_by_segment() {
        let allowed = AllowedMethods::from_spec(
            r#"{"paths": {"/users/{id}": {"get": {}, "patch": {}, "delete": {}},
                          "/users/me": {"get": {}}, "/users/{id}/x": {"post": {}},
                          "/users/me/x": {"put": {}}}}"#,
        );
        assert_eq!(allowed.allow("/users/me").as_deref(), Some("GET, HEAD"));
        assert_eq!(
            allowed.allow("/users/42").as_deref(),
            Some("GET, PATCH, DELETE, HEAD")
        );
        assert_eq!(allowed.allow("/users/me/x").as_deref(), Some("PUT"));
        assert_eq!(allowed.allow("/users/42/x").as_deref(), Some("POST"));
        assert_eq!(allowed.allow("/users/"), None);
        assert_eq!(allowed.allow("/users/42/x/y"), None);
    }

    #[test]
    fn finish_adds_scopes_nullable_and_closed_bodies() {
        let spec = r##"{
          "paths": {
            "/a": {"post": {"tags": ["Auth"], "requestBody": {"content": {
              "application/json; charset=utf-8": {"schema": {"$ref": "#/components/schemas/A"}}}}}},
            "/b": {"post": {"tags": ["Mine"], "requestBody": {"content": {
              "application/json; charset=utf-8": {"schema": {"$ref": "#/components/schemas/B"}}}}}}
          },
          "components": {
            "schemas": {
              "A": {"type": "object", "required": ["x"], "properties": {
                "x": {"type": "string"}, "y": {"type": "string"},
                "z": {"$ref": "#/components/schemas/B"}}},
              "B": {"type": "object", "properties": {}}
            },
            "securitySchemes": {"O": {"type": "oauth2", "flows": {"password": {"tokenUrl": "/t"}}}}
          }
        }"##;
        let mut doc: Value = serde_json::from_str(spec).unwrap();
        finish_doc(&mut doc);
        assert_eq!(
            doc.pointer("/components/securitySchemes/O/flows/password/scopes"),
            Some(&serde_json::json!({}))
        );
        let a = &doc["components"]["schemas"]["A"];
        assert_eq!(a["additionalProperties"], false);
        assert!(a["properties"]["x"].get("nullable").is_none());
        assert_eq!(a["properties"]["y"]["nullable"], true);
        assert_eq!(
            a["properties"]["z"],
            serde_json::json!({"type": "object", "allOf": [{"$ref": "#/components/schemas/B"}], "nullable": true})
        );
        assert!(doc["components"]["schemas"]["B"]
            .get("additionalProperties")
            .is_none());
    }
}

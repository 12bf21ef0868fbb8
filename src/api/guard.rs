//! Route guards: an app declares what a route requires once, as the type
//! of a handler parameter, and the spec says so.
//!
//! | Guard | Passes when | Else |
//! |---|---|---|
//! | [`RequirePermission<P>`] | the caller's roles grant `P` (a superuser passes) | 403 `FORBIDDEN`, `requires: {permission: P}` |
//! | [`RequireOrgPermission<P>`] | the caller's roles in the session's active organization grant `P` | 403 `FORBIDDEN`, `requires: {permission: P}` |
//! | [`RequireOrgRole<R>`] | the caller holds `R` in the session's active organization | 403 `FORBIDDEN`, `requires: {role: R}` |
//!
//! Each is an [`Authenticated`] caller first (401, 403 `USER_INACTIVE`,
//! CSRF, 503 as there), resolved from the store on this request: a role
//! taken away, a role's permissions edited, a member removed from the
//! organization each apply to the very next request. Declare the names
//! with [`permission!`](crate::permission) and [`role!`](crate::role),
//! which check them at compile time:
//!
//! ```
//! use poem_openapi::{payload::PlainText, OpenApi};
//! use portcullis::api::{error_set::AUTHED, ApiErrors, RequireOrgRole, RequirePermission};
//!
//! portcullis::permission!(pub NotesWrite = "notes:write");
//! portcullis::role!(pub OrgAdmin = "admin");
//!
//! struct NotesApi;
//!
//! #[OpenApi]
//! impl NotesApi {
//!     /// Writes a note.
//!     #[oai(path = "/notes", method = "post")]
//!     async fn write(
//!         &self,
//!         caller: RequirePermission<NotesWrite>,
//!     ) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
//!         Ok(PlainText(format!("saved for {}", caller.user.email)))
//!     }
//!
//!     /// The active organization's settings.
//!     #[oai(path = "/org/settings", method = "get")]
//!     async fn settings(
//!         &self,
//!         caller: RequireOrgRole<OrgAdmin>,
//!     ) -> Result<PlainText<String>, ApiErrors<{ AUTHED }>> {
//!         let org = caller.org.as_ref().map(|o| o.id.clone()).unwrap_or_default();
//!         Ok(PlainText(org))
//!     }
//! }
//! ```
//!
//! **In the spec**: the operation's description gains a line naming the
//! requirement, and the operation carries it as an extension,
//! `x-portcullis-requires: [{"permission": "notes:write"}]` (or
//! `org_permission`, `org_role`), which generated clients and gateways can
//! read. (poem-openapi extractors cannot write the operation; the guard
//! marks its security requirement, and the spec's final pass turns the
//! mark into the line and the extension.)

use std::{marker::PhantomData, ops::Deref};

use poem::{Request, RequestBody};
use poem_openapi::{registry::Registry, ApiExtractor, ApiExtractorType, ExtractParamOptions};

use super::{caller::Authenticated, ApiError};
use crate::{error::Error, manager::Principal};

/// Prefix of the security-requirement marks the spec's final pass reads.
pub(crate) const MARK_PREFIX: &str = "x-portcullis-requires:";

/// A permission a route requires; declare one with
/// [`permission!`](crate::permission).
pub trait PermissionName: Send + Sync + 'static {
    /// The plain permission, e.g. `notes:write`.
    const NAME: &'static str;
    /// `x-portcullis-requires:permission:{NAME}` (the spec's mark).
    const MARK: &'static str;
    /// `x-portcullis-requires:org_permission:{NAME}`.
    const ORG_MARK: &'static str;
}

/// A role a route requires; declare one with [`role!`](crate::role).
pub trait RoleName: Send + Sync + 'static {
    /// The role's name, e.g. `admin`.
    const NAME: &'static str;
    /// `x-portcullis-requires:org_role:{NAME}`.
    const ORG_MARK: &'static str;
}

/// Declares a [`PermissionName`] type: `permission!(pub NotesWrite =
/// "notes:write");`. A malformed name or a pattern (`notes:*`) does not
/// compile.
#[macro_export]
macro_rules! permission {
    ($(#[$meta:meta])* $vis:vis $ty:ident = $name:literal) => {
        $(#[$meta])*
        #[doc = concat!("The permission `", $name, "`.")]
        #[derive(Debug, Clone, Copy)]
        $vis struct $ty;
        const _: () = assert!(
            $crate::authz::is_plain_permission($name),
            concat!("`", $name, "` is not a plain permission (segments of a-z, 0-9, '_', '-', '.' joined by ':', no '*')")
        );
        impl $crate::api::PermissionName for $ty {
            const NAME: &'static str = $name;
            const MARK: &'static str = concat!("x-portcullis-requires:permission:", $name);
            const ORG_MARK: &'static str = concat!("x-portcullis-requires:org_permission:", $name);
        }
    };
}

/// Declares a [`RoleName`] type: `role!(pub OrgAdmin = "admin");`. A
/// malformed name does not compile.
#[macro_export]
macro_rules! role {
    ($(#[$meta:meta])* $vis:vis $ty:ident = $name:literal) => {
        $(#[$meta])*
        #[doc = concat!("The role `", $name, "`.")]
        #[derive(Debug, Clone, Copy)]
        $vis struct $ty;
        const _: () = assert!(
            $crate::authz::is_role_name($name),
            concat!("`", $name, "` is not a role name (a-z, 0-9, '_', '-', '.')")
        );
        impl $crate::api::RoleName for $ty {
            const NAME: &'static str = $name;
            const ORG_MARK: &'static str = concat!("x-portcullis-requires:org_role:", $name);
        }
    };
}

macro_rules! guard {
    ($(#[$doc:meta])* $guard:ident<$param:ident: $bound:ident>, $mark:ident, |$p:ident| $check:expr, $err:expr) => {
        $(#[$doc])*
        pub struct $guard<$param: $bound>(Principal, PhantomData<$param>);

        impl<$param: $bound> std::fmt::Debug for $guard<$param> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($guard))
                    .field(&$param::NAME)
                    .field(&self.0)
                    .finish()
            }
        }

        impl<$param: $bound> $guard<$param> {
            /// The checked caller.
            pub fn principal(&self) -> &Principal {
                &self.0
            }

            /// The checked caller, owned.
            pub fn into_principal(self) -> Principal {
                self.0
            }
        }

        impl<$param: $bound> Deref for $guard<$param> {
            type Target = Principal;

            fn deref(&self) -> &Principal {
                &self.0
            }
        }

        impl<'a, $param: $bound> ApiExtractor<'a> for $guard<$param> {
            const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

            type ParamType = ();
            type ParamRawType = ();

            fn register(registry: &mut Registry) {
                <Authenticated as ApiExtractor<'a>>::register(registry);
            }

            fn security_schemes() -> Vec<&'static str> {
                let mut schemes = <Authenticated as ApiExtractor<'a>>::security_schemes();
                schemes.push($param::$mark);
                schemes
            }

            fn has_security_fallback() -> bool {
                <Authenticated as ApiExtractor<'a>>::has_security_fallback()
            }

            async fn from_request(
                req: &'a Request,
                body: &mut RequestBody,
                param_opts: ExtractParamOptions<Self::ParamType>,
            ) -> poem::Result<Self> {
                let caller =
                    <Authenticated as ApiExtractor<'a>>::from_request(req, body, param_opts)
                        .await?
                        .into_principal();
                let $p = &caller;
                if !$check {
                    return Err(ApiError::from($err).into());
                }
                Ok(Self(caller, PhantomData))
            }
        }
    };
}

guard!(
    /// A signed-in caller whose roles grant the permission `P` (a
    /// superuser passes), else 403 `FORBIDDEN` naming it in `requires`. See
    /// the [module docs](self).
    RequirePermission<P: PermissionName>,
    MARK,
    |caller| caller.has_permission(P::NAME),
    Error::PermissionDenied(P::NAME.to_owned())
);

guard!(
    /// A signed-in caller whose roles in the session's active organization
    /// grant `P`, else 403 `FORBIDDEN` naming it in `requires` (also without
    /// an active organization: switch to one first). See the
    /// [module docs](self).
    RequireOrgPermission<P: PermissionName>,
    ORG_MARK,
    |caller| caller.has_org_permission(P::NAME),
    Error::PermissionDenied(P::NAME.to_owned())
);

guard!(
    /// A signed-in caller holding the role `R` in the session's active
    /// organization, else 403 `FORBIDDEN` naming it in `requires`. See the
    /// [module docs](self).
    RequireOrgRole<R: RoleName>,
    ORG_MARK,
    |caller| caller.has_org_role(R::NAME),
    Error::RoleRequired(R::NAME.to_owned())
);

//! OAuth 2.0 / OpenID Connect sign-in for Portcullis.

//! Passwordless sign-in for Portcullis: magic links and email codes.

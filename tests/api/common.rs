//! The HTTP test app, the failing store and the fake providers live in
//! `portcullis-testkit` (integrators test their providers and hooks with
//! them too); the suites that include this file use them from here.

pub use portcullis_testkit::*;

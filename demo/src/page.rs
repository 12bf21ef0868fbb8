//! `GET /demo`: a small page that signs in with cookies only, by password or
//! with a passkey (it can add one once signed in). Its form
//! POSTs `/auth/login` with `fetch(…, {credentials: "include"})`, then shows
//! the email `GET /auth/me` answers; the script never holds a token (run
//! the server with `PORTCULLIS_COOKIE_ONLY=1`, and `PORTCULLIS_COOKIE_SECURE=0`
//! on plain http other than localhost). `scripts/browser.sh` drives it in a
//! real browser. Served as an [`HtmlPage`]: its script is allowed by hash,
//! `connect-src 'self'`, not framed, not sniffed, not cached.

use poem::{handler, IntoResponse};
use portcullis::api::HtmlPage;

/// The path of the page; outside `/auth`, `/users`, `/docs` and the spec.
pub(crate) const PATH: &str = "/demo";

const BODY: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");

#[handler]
pub(crate) fn page() -> impl IntoResponse {
    HtmlPage::new("Portcullis demo: sign in", BODY, Some(SCRIPT), &[])
}

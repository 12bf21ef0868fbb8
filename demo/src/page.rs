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

/// The demo page at [`PATH`] in front of `api`, which answers every other
/// path: one comparison per request instead of a router and a nest (whose
/// URI rewrite allocates) in front of the API.
pub(crate) struct WithPage<E> {
    page: poem::RouteMethod,
    api: E,
}

impl<E> WithPage<E> {
    pub(crate) fn new(api: E) -> Self {
        Self {
            page: poem::get(page),
            api,
        }
    }
}

impl<E: poem::Endpoint<Output = poem::Response>> poem::Endpoint for WithPage<E> {
    type Output = poem::Response;

    async fn call(&self, req: poem::Request) -> poem::Result<poem::Response> {
        if req.uri().path() == PATH {
            self.page
                .call(req)
                .await
                .map(poem::IntoResponse::into_response)
        } else {
            self.api.call(req).await
        }
    }
}

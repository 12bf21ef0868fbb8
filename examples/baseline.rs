//! A plain Poem handler that answers `GET /auth/me` with the same JSON shape
//! as Portcullis after reading the bearer header (401 without one), with no
//! other check: the baseline the load script compares `GET /auth/me`
//! against.
//!
//! `cargo run --release --example baseline` (listens on `PORTCULLIS_ADDR`,
//! default `127.0.0.1:8001`).

use poem::{
    get, handler, http::StatusCode, listener::TcpListener, web::Json, Request, Route, Server,
};
use serde_json::{json, Value};

#[handler]
fn me(req: &Request) -> poem::Result<Json<Value>> {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_none_or(str::is_empty) {
        return Err(poem::Error::from_status(StatusCode::UNAUTHORIZED));
    }
    Ok(Json(json!({
        "id": "01936f0e-7c1a-7cc2-9d1e-5b3f2a8e4c10",
        "email": "load@example.com",
        "name": null,
        "email_verified": false,
        "is_active": true,
        "is_superuser": false,
        "has_password": true,
        "created_at": "2026-11-22T02:24:29.601416245+00:00",
        "metadata": {},
        "app_metadata": {}
    })))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:8001".into());
    Server::new(TcpListener::bind(addr))
        .run(Route::new().at("/auth/me", get(me)))
        .await
}

//! A request body limit that also covers chunked bodies.

use poem::{
    error::ReadBodyError,
    http::StatusCode,
    web::headers::{self, HeaderMapExt},
    Endpoint, Middleware, Request, Result,
};

/// Refuses request bodies over `max` bytes with 413: by `Content-Length`
/// before reading, and by counting while reading when the length is not
/// announced (chunked).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    max: usize,
}

impl BodyLimit {
    /// A limit of `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint {
            inner,
            max: self.max,
        }
    }
}

/// The endpoint made by [`BodyLimit`].
#[derive(Debug)]
pub struct BodyLimitEndpoint<E> {
    inner: E,
    max: usize,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let too_large = || poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE);
        match req.headers().typed_get::<headers::ContentLength>() {
            Some(len) if len.0 > self.max as u64 => return Err(too_large()),
            Some(_) => {}
            None => {
                let body = req.take_body();
                if body.is_empty() {
                    req.set_body(body);
                    return self.inner.call(req).await;
                }
                match body.into_bytes_limit(self.max).await {
                    Ok(bytes) => req.set_body(bytes),
                    Err(ReadBodyError::PayloadTooLarge) => return Err(too_large()),
                    Err(err) => return Err(err.into()),
                }
            }
        }
        self.inner.call(req).await
    }
}

//! The HTTP client every provider call goes through, and how its failures
//! become Portcullis errors.

use std::{fmt, time::Duration};

use portcullis::{store::StoreError, Error};
use reqwest::{header, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

/// Largest JSON document read from a provider (discovery, JWKS, profile).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A client that never follows redirects (a provider's answer cannot send
/// the server to another host: SSRF), with connect and total timeouts.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .user_agent(concat!("portcullis-oauth/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Whether `url` may be called: `https`, or plain `http` to a loopback
/// host (local development and tests).
pub(crate) fn allowed_url(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// Why a call to a provider failed.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// Connection refused, timeout, TLS or protocol failure.
    Transport(reqwest::Error),
    /// The provider answered a non-success status.
    Status(StatusCode),
    /// The body is larger than [`MAX_BODY_BYTES`].
    TooLarge,
    /// The body is not the JSON expected.
    Json(serde_json::Error),
    /// The endpoint URL is invalid.
    Url(url::ParseError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Transport(err) => write!(f, "request failed: {err}"),
            FetchError::Status(status) => write!(f, "answered HTTP {status}"),
            FetchError::TooLarge => write!(f, "answer larger than {MAX_BODY_BYTES} bytes"),
            FetchError::Json(err) => write!(f, "unexpected answer: {err}"),
            FetchError::Url(err) => write!(f, "invalid URL: {err}"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Transport(err) => Some(err),
            FetchError::Json(err) => Some(err),
            FetchError::Url(err) => Some(err),
            FetchError::Status(_) | FetchError::TooLarge => None,
        }
    }
}

/// GETs `url` and parses its JSON answer, with an optional bearer token and
/// extra headers.
pub(crate) async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: Url,
    bearer: Option<&str>,
    headers: &[(&'static str, &'static str)],
) -> Result<T, FetchError> {
    let mut request = http.get(url);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(header::ACCEPT.as_str()))
    {
        request = request.header(header::ACCEPT, "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.map_err(FetchError::Transport)?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(FetchError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(FetchError::Json)
}

/// A provider failure, kept as the source of the error the client sees, so
/// the log names the provider and what went wrong.
#[derive(Debug)]
pub(crate) struct ProviderFailure {
    provider: String,
    what: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ProviderFailure {
    pub(crate) fn new(
        provider: &str,
        what: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            what: what.into(),
            source,
        }
    }
}

impl fmt::Display for ProviderFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OAuth provider `{}`: {}", self.provider, self.what)
    }
}

impl std::error::Error for ProviderFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<ProviderFailure> for Error {
    /// The provider cannot be used right now: 503 `SERVICE_UNAVAILABLE`
    /// (the core has no "bad gateway" error yet), with the detail logged.
    fn from(failure: ProviderFailure) -> Self {
        tracing::warn!(error = %chain(&failure), "OAuth provider unavailable");
        Error::Unavailable(StoreError::Unavailable(Box::new(failure)))
    }
}

/// `provider` failed at `what` because of `err`: 503 for the client.
pub(crate) fn unavailable(
    provider: &str,
    what: &str,
    err: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    ProviderFailure::new(provider, what, Some(Box::new(err))).into()
}

/// An error with its `source()` chain, for logs.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        for ok in [
            "https://accounts.google.com",
            "http://127.0.0.1:9400/x",
            "http://localhost:8080",
            "http://[::1]:1/",
        ] {
            assert!(allowed_url(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://accounts.google.com",
            "http://10.0.0.1/",
            "ftp://127.0.0.1/",
            "file:///etc/passwd",
        ] {
            assert!(!allowed_url(&Url::parse(bad).unwrap()), "{bad}");
        }
    }
}

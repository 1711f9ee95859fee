//! Components over HTTP(S): one GET, redirects followed a few times, the answer capped at
//! [`MAX_COMPONENT_BYTES`] as it arrives, every phase under a timeout. Errors never show
//! the URL's query or credentials.

use super::MAX_COMPONENT_BYTES;
use std::time::Duration;

pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause between two pieces of the answer.
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a whole download may take.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_REDIRECTS: usize = 5;

/// A client for fetching what a source names (a URL, a registry): connect and read
/// timeouts, and a few redirects followed, never from https to http. reqwest drops the
/// Authorization header on a redirect to another host.
pub(super) fn fetching_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let downgrade = attempt.url().scheme() == "http"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if downgrade {
                attempt.error("a redirect from https to http")
            } else {
                attempt.follow()
            }
        }))
}

/// The bytes at `url`.
pub(super) async fn get(url: &str) -> Result<Vec<u8>, String> {
    let shown = nexum_core::redact::url(url);
    let client = fetching_client()
        .timeout(TOTAL_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{shown}: {}", said(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{shown} answered {status}"));
    }
    read_capped(response, MAX_COMPONENT_BYTES, &shown).await
}

/// The body of `response`, refused as soon as it is announced or found to be more than
/// `max` bytes: a server cannot make nexum hold more than that. `shown` names the source
/// in errors.
pub(super) async fn read_capped(
    mut response: reqwest::Response,
    max: u64,
    shown: &str,
) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|n| n > max) {
        return Err(format!("{shown} announces more than {max} bytes"));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{shown}: {}", said(e)))?
    {
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(format!("{shown} sends more than {max} bytes"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// What went wrong, with its causes, without the URL (which may hold credentials).
pub(super) fn said(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut said = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        said.push_str(&format!(": {c}"));
        cause = c.source();
    }
    said
}

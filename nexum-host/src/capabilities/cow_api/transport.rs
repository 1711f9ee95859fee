//! cowprotocol's `HttpTransport` over reqwest, keeping what its own transport drops:
//! the `Retry-After` of a 429, so modules learn how long to back off.

use cowprotocol::error::{Error, Result};
use cowprotocol::transport::{HttpMethod, HttpRequest, HttpResponse, HttpTransport};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest orderbook answer accepted: a hostile or broken server cannot exhaust memory.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// One call's transport: a shared client, and the `Retry-After` the call received.
#[derive(Clone)]
pub(crate) struct CallTransport {
    client: reqwest::Client,
    retry_after: Arc<Mutex<Option<Duration>>>,
}

impl CallTransport {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            retry_after: Arc::default(),
        }
    }

    /// The `Retry-After` of the last response, if it had one.
    pub fn retry_after(&self) -> Option<Duration> {
        *self.retry_after.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HttpTransport for CallTransport {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse> {
        let mut builder = match request.method {
            HttpMethod::Get => self.client.get(request.url),
            HttpMethod::Post => self.client.post(request.url),
            HttpMethod::Put => self.client.put(request.url),
            HttpMethod::Delete => self.client.delete(request.url),
        };
        if let Some(body) = request.json_body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut response = builder.send().await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        *self.retry_after.lock().unwrap_or_else(|p| p.into_inner()) = retry_after;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(Error::ResponseTooLarge {
                    max: MAX_BODY_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

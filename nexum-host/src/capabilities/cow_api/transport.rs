//! cowprotocol's `HttpTransport` over reqwest, keeping what its own transport drops (the
//! `Retry-After` of a 429, so modules learn how long to back off) and enforcing what every
//! orderbook request must respect whichever way it was built: in a dry run only `GET`
//! leaves the host, answers are capped, and errors carry no URL.

use cowprotocol::error::{Error, Result};
use cowprotocol::transport::{HttpMethod, HttpRequest, HttpResponse, HttpTransport};
use nexum_core::host_rules::orderbook::Method;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one call learned on the way, for the caller to report.
#[derive(Debug, Default)]
struct Seen {
    retry_after: Option<Duration>,
    refused_in_dry_run: Option<Method>,
}

/// One call's transport: a shared client, the call's dry-run setting and answer cap, and
/// what the call saw.
#[derive(Clone)]
pub(crate) struct CallTransport {
    client: reqwest::Client,
    dry_run: bool,
    /// Largest answer accepted: a hostile or broken server cannot exhaust memory.
    max_body: usize,
    seen: Arc<Mutex<Seen>>,
}

impl CallTransport {
    pub fn new(client: reqwest::Client, dry_run: bool, max_body: usize) -> Self {
        Self {
            client,
            dry_run,
            max_body,
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `Retry-After` of the last response, if it had one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.seen().retry_after
    }

    /// The method of a request the dry run kept from leaving, if one was.
    pub fn refused_in_dry_run(&self) -> Option<Method> {
        self.seen().refused_in_dry_run
    }
}

impl HttpTransport for CallTransport {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse> {
        let method = match request.method {
            HttpMethod::Get => Method::Get,
            HttpMethod::Post => Method::Post,
            HttpMethod::Put => Method::Put,
            HttpMethod::Delete => Method::Delete,
        };
        if self.dry_run && method.changes_state() {
            self.seen().refused_in_dry_run = Some(method);
            return Err(Error::TransportFailed(format!(
                "dry run: {method} not sent"
            )));
        }
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
        // reqwest's errors name the URL, which may carry a key: drop it.
        let mut response = builder.send().await.map_err(|e| e.without_url())?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        self.seen().retry_after = retry_after;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url())? {
            if body.len() + chunk.len() > self.max_body {
                return Err(Error::ResponseTooLarge { max: self.max_body });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

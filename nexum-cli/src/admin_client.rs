//! Talking to a running engine through its admin API (`[admin]` in engine.toml), for the
//! commands that work on a live engine and fall back to the state files when it is stopped.

use anyhow::{Context, bail};
use nexum_host::core::{AdminConfig, EngineConfig};
use serde::de::DeserializeOwned;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long a command waits for the engine to answer (a reload compiles modules).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long connecting may take before the engine counts as not running.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest pause in a download (a backup streams for as long as it takes).
const DOWNLOAD_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A running engine's admin API.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// Whether the engine of an engine.toml can be reached.
pub enum Reach {
    /// It answers.
    Running(AdminClient),
    /// The engine.toml has no `[admin]`.
    NotConfigured,
    /// Nothing answers at the admin address (the engine is stopped).
    NotRunning(SocketAddr),
}

impl Reach {
    /// Finds the engine of `config`.
    pub async fn of(config: &EngineConfig) -> anyhow::Result<Self> {
        let Some(admin) = &config.admin else {
            return Ok(Reach::NotConfigured);
        };
        let client = AdminClient::new(admin)?;
        match client.http.get(client.url("/v1/status")).send().await {
            Ok(_) => Ok(Reach::Running(client)),
            Err(e) if e.is_connect() || e.is_timeout() => Ok(Reach::NotRunning(admin.addr)),
            Err(e) => Err(e).context(format!("admin API at {}", admin.addr)),
        }
    }

    /// The client, or a line saying why a running engine is needed.
    pub fn require(self, engine: &std::path::Path, what: &str) -> anyhow::Result<AdminClient> {
        match self {
            Reach::Running(client) => Ok(client),
            Reach::NotConfigured => bail!(
                "{}: {what} needs the admin API of the running engine; add [admin] with addr = \"127.0.0.1:PORT\" and restart it",
                engine.display()
            ),
            Reach::NotRunning(addr) => bail!(
                "{what} needs a running engine, and nothing answers at {addr}: start it (`nexum run {}`), then try again",
                engine.display()
            ),
        }
    }
}

impl AdminClient {
    fn new(admin: &AdminConfig) -> anyhow::Result<Self> {
        // An engine listening on every interface is reached on loopback.
        let addr = match admin.addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((Ipv6Addr::LOCALHOST, a.port()))
            }
            other => other,
        };
        if addr.port() == 0 {
            bail!(
                "admin.addr has port 0 (a free port picked at start): set a fixed port to reach the engine"
            );
        }
        let http = http_client()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            base: format!("http://{addr}"),
            token: admin.token.clone(),
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path?query`, answered with JSON.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let request = self.http.get(self.url(path)).query(query);
        self.send(request).await
    }

    /// `POST path`, answered with JSON.
    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.post(self.url(path))).await
    }

    /// `GET path`, its body written to `out` as it arrives; returns the bytes written. No
    /// overall deadline: only a pause longer than a minute ends it.
    pub async fn download(&self, path: &str, out: &mut impl std::io::Write) -> anyhow::Result<u64> {
        let http = http_client()
            .read_timeout(DOWNLOAD_READ_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        let context = || format!("admin API at {}", self.base);
        let mut response = self
            .with_token(http.get(self.url(path)))
            .send()
            .await
            .with_context(context)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await.with_context(context)?;
            return Err(refusal(status, &body));
        }
        let mut written = 0u64;
        while let Some(chunk) = response.chunk().await.with_context(context)? {
            out.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// `request`, with the bearer token when the config has one.
    fn with_token(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = self
            .with_token(request)
            .send()
            .await
            .with_context(|| format!("admin API at {}", self.base))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("admin API at {}", self.base))?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("admin API at {}: unexpected answer", self.base))
    }
}

/// A client for the admin API: a short connect timeout, no redirects (the address is
/// the config's, not wherever an answer points).
fn http_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
}

/// What the engine said when it refused a request: its `{"error": …}`, else the status.
fn refusal(status: reqwest::StatusCode, body: &[u8]) -> anyhow::Error {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {status}"));
    anyhow::anyhow!("{message}")
}

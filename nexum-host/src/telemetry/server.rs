//! The HTTP endpoint: `GET /metrics` (Prometheus text) and `GET /healthz` (200 or 503 with a
//! JSON verdict).
//!
//! It may be reachable by more than its scraper, so it holds out against slow or many
//! clients: headers must arrive within [`HEADER_TIMEOUT`], a connection serves one request
//! and lives at most [`CONNECTION_TIMEOUT`], at most [`MAX_CONNECTIONS`] are served at once
//! (more are answered `503` at once rather than left waiting), and a failing `accept` (out
//! of file descriptors) backs off instead of spinning.

use super::collect::collect;
use super::health::Health;
use crate::chain::ChainPool;
use crate::supervisor::HostSupervisor;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may stay open.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;
/// What a client gets when every slot is taken.
const BUSY_RESPONSE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\nconnection: close\r\n\r\nbusy\n";
/// Longest pause after a failed `accept`.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint on {addr}: {error}")]
pub struct ServeError {
    addr: SocketAddr,
    error: std::io::Error,
}

/// Binds `addr` and serves until `stop`; returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    supervisor: Arc<HostSupervisor>,
    chains: Arc<ChainPool>,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| ServeError { addr, error })?;
    let bound = listener
        .local_addr()
        .map_err(|error| ServeError { addr, error })?;
    let prometheus = super::prometheus();
    tracing::info!(addr = %bound, "serving /metrics and /healthz");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                accepted = listener.accept() => accepted,
            };
            let mut stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "metrics endpoint: accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_millis(10);
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                // Full: say so and close, so a scraper learns at once instead of waiting.
                let _ = tokio::time::timeout(
                    Duration::from_millis(100),
                    stream.write_all(BUSY_RESPONSE),
                )
                .await;
                continue;
            };
            let supervisor = supervisor.clone();
            let chains = chains.clone();
            let prometheus = prometheus.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let service = service_fn(move |request| {
                    let response = answer(&request, &supervisor, &chains, prometheus.as_ref());
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .keep_alive(false)
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            });
        }
    });
    Ok((bound, task))
}

fn answer(
    request: &Request<Incoming>,
    supervisor: &HostSupervisor,
    chains: &ChainPool,
    prometheus: Option<&PrometheusHandle>,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a static response builds")
    };
    if request.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => match prometheus {
            Some(handle) => {
                collect(supervisor);
                reply(StatusCode::OK, "text/plain; version=0.0.4", handle.render())
            }
            None => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "metrics go to the embedding application's recorder\n".into(),
            ),
        },
        "/healthz" => {
            let health = Health::of(supervisor, chains);
            let status = if health.is_ok() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(
                status,
                "application/json",
                serde_json::to_string(&health).unwrap_or_default(),
            )
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics or /healthz\n".into(),
        ),
    }
}

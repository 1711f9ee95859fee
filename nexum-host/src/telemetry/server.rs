//! The HTTP endpoint: `GET /metrics` (Prometheus text) and `GET /healthz` (200 or 503 with a
//! JSON verdict).

use super::collect::collect;
use super::health::Health;
use crate::supervisor::HostSupervisor;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint on {addr}: {source}")]
pub struct ServeError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds `addr` and serves until `stop`; returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    supervisor: Arc<HostSupervisor>,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError { addr, source })?;
    let prometheus = super::prometheus();
    tracing::info!(addr = %bound, "serving /metrics and /healthz");
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics endpoint: accept failed");
                        continue;
                    }
                },
            };
            let supervisor = supervisor.clone();
            let prometheus = prometheus.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let response = answer(&request, &supervisor, prometheus.as_ref());
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, task))
}

fn answer(
    request: &Request<Incoming>,
    supervisor: &HostSupervisor,
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
            let health = Health::of(supervisor);
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

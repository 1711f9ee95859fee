//! The telemetry endpoint: `GET /metrics` (Prometheus text) and `GET /healthz` (200 or 503
//! with a JSON verdict), served by `http_endpoint` with its limits on slow and many clients.

use super::collect::collect;
use super::health::{Health, StoreHealth};
use crate::chain::ChainPool;
use crate::http_endpoint::{self, Body, ServeError, reply};
use crate::supervisor::HostSupervisor;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Binds `addr` and serves until `stop`; returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    supervisor: Arc<HostSupervisor>,
    chains: Arc<ChainPool>,
    store: Option<Arc<StoreHealth>>,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServeError> {
    let (listener, bound) = http_endpoint::bind("metrics", addr).await?;
    let prometheus = super::prometheus();
    tracing::info!(addr = %bound, "serving /metrics and /healthz");
    let task = http_endpoint::spawn(listener, "metrics", stop, move |request| {
        let response = answer(
            &request,
            &supervisor,
            &chains,
            store.as_deref(),
            prometheus.as_ref(),
        );
        async move { response }
    });
    Ok((bound, task))
}

fn answer(
    request: &Request<Incoming>,
    supervisor: &HostSupervisor,
    chains: &ChainPool,
    store: Option<&StoreHealth>,
    prometheus: Option<&PrometheusHandle>,
) -> Response<Body> {
    if request.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
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
                "metrics go to the embedding application's recorder\n",
            ),
        },
        "/healthz" => {
            let health = Health::of(supervisor, chains, store);
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
            "try /metrics or /healthz\n",
        ),
    }
}

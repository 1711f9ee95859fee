//! The telemetry endpoint: `GET /metrics` (Prometheus text) and `GET /healthz` (200 or 503
//! with a JSON verdict), served by `http_endpoint` with its limits on slow and many clients.

use super::collect::collect;
use super::health::{Health, StoreHealth};
use crate::chain::ChainPool;
use crate::http_endpoint::{self, Body, ServeError, reply};
use crate::sources::DeliveredHeights;
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
    heights: DeliveredHeights,
    store: Option<Arc<StoreHealth>>,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServeError> {
    let (listener, bound) = http_endpoint::bind("metrics", addr).await?;
    let prometheus = super::prometheus();
    tracing::info!(addr = %bound, "serving /metrics and /healthz");
    let serving = Serving {
        supervisor,
        chains,
        heights,
        store,
        prometheus,
    };
    let task = http_endpoint::spawn(
        listener,
        "metrics",
        http_endpoint::CONNECTION_TIMEOUT,
        stop,
        move |request| {
            let response = serving.answer(&request);
            async move { response }
        },
    );
    Ok((bound, task))
}

/// What `/metrics` and `/healthz` read.
#[derive(Clone)]
struct Serving {
    supervisor: Arc<HostSupervisor>,
    chains: Arc<ChainPool>,
    heights: DeliveredHeights,
    store: Option<Arc<StoreHealth>>,
    prometheus: Option<PrometheusHandle>,
}

impl Serving {
    fn answer(&self, request: &Request<Incoming>) -> Response<Body> {
        answer(
            request,
            &self.supervisor,
            &self.chains,
            &self.heights,
            self.store.as_deref(),
            self.prometheus.as_ref(),
        )
    }
}

fn answer(
    request: &Request<Incoming>,
    supervisor: &HostSupervisor,
    chains: &ChainPool,
    heights: &DeliveredHeights,
    store: Option<&StoreHealth>,
    prometheus: Option<&PrometheusHandle>,
) -> Response<Body> {
    if request.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    match request.uri().path() {
        "/metrics" => match prometheus {
            Some(handle) => {
                collect(supervisor, chains, heights, store.is_some());
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

//! Operating the runtime: Prometheus metrics and a health check, served over HTTP when
//! `metrics_addr` is set.
//!
//! nexum records through the `metrics` facade, so an embedding service that installed its
//! own recorder receives nexum's metrics there; otherwise the runtime installs a Prometheus
//! recorder. Per-module and per-chain gauges are read from the runtime at each scrape
//! (`collect.rs`); event-driven values (dispatch latency, RPC outcomes, heads) are recorded
//! where they happen, under the names in [`names`].

mod collect;
mod health;
pub mod names;
mod server;

pub use crate::http_endpoint::ServeError;
pub use health::Health;
pub(crate) use health::StoreHealth;
pub(crate) use server::serve;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The Prometheus recorder of this process, installed on first use (if no other recorder
/// was installed before).
pub(crate) fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(names::DISPATCH_SECONDS.to_string()),
                    &[0.00001, 0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 60.0],
                )
                .expect("static buckets are valid");
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed; nexum's metrics go there");
                    None
                }
            }
        })
        .clone()
}

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

/// How long a gauge that is not set again stays in `/metrics`.
const GAUGE_IDLE_SECS: u64 = 60;

/// The newest head of each chain this process follows, set again at each scrape so the
/// gauge stays as long as the chain is followed (even when its node stops sending heads).
static CHAIN_HEADS: std::sync::Mutex<std::collections::BTreeMap<u64, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Records `chain`'s newest head.
pub(crate) fn record_chain_head(chain: u64, number: u64) {
    CHAIN_HEADS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(chain, number);
    metrics::gauge!(names::CHAIN_HEAD, "chain" => chain.to_string()).set(number as f64);
}

/// The newest head of every followed chain.
pub(crate) fn chain_heads() -> Vec<(u64, u64)> {
    CHAIN_HEADS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(c, n)| (*c, *n))
        .collect()
}

/// The Prometheus recorder of this process, installed on first use (if no other recorder
/// was installed before).
pub(crate) fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                // Gauges of a module that left (moved to another node, removed by a
                // reload) must not stay behind at their last value, where alerts would
                // read them: every gauge is set again at each scrape or more often, so
                // one not set for a while is gone.
                .idle_timeout(
                    metrics_util::MetricKindMask::GAUGE,
                    Some(std::time::Duration::from_secs(GAUGE_IDLE_SECS)),
                )
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

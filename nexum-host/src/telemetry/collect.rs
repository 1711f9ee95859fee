//! Reading the runtime's state into metrics at scrape time.

use super::names;
use crate::chain::ChainPool;
use crate::sources::DeliveredHeights;
use crate::supervisor::HostSupervisor;
use metrics::{counter, gauge};
use nexum_core::{ModuleStatus, Supervisor};

/// Sets every per-module gauge and total from the runtime's current state, and gives every
/// counter an alert watches a series from the start (at 0), so its first increase shows.
pub(crate) fn collect(
    supervisor: &HostSupervisor,
    chains: &ChainPool,
    heights: &DeliveredHeights,
    clustered: bool,
) {
    for (chain, head) in super::chain_heads() {
        gauge!(names::CHAIN_HEAD, "chain" => chain.to_string()).set(head as f64);
    }
    for ((module, chain), height) in heights.all() {
        gauge!(names::CHAIN_DELIVERED, "chain" => chain.to_string(), "module" => module)
            .set(height as f64);
    }
    for chain in chains.clients().keys() {
        counter!(names::CHAIN_RECONNECTS, "chain" => chain.to_string()).increment(0);
    }
    if clustered {
        for name in [
            names::LEASES_ACQUIRED,
            names::LEASES_LOST,
            names::FENCED_COMMITS,
        ] {
            counter!(name).increment(0);
        }
    }
    for (module, queue_depth, restarts) in supervisor.queue_and_restarts() {
        gauge!(names::QUEUE_DEPTH, "module" => module.clone()).set(queue_depth as f64);
        counter!(names::RESTARTS, "module" => module).absolute(restarts);
    }
    for info in supervisor.modules() {
        let module = info.name.clone();
        counter!(names::EVENTS_HANDLED, "module" => module.clone()).absolute(info.totals.handled);
        counter!(names::EVENTS_FAILED, "module" => module.clone()).absolute(info.totals.failed);
        counter!(names::EVENTS_TRAPPED, "module" => module.clone()).absolute(info.totals.trapped);
        counter!(names::LOG_LINES_DROPPED, "module" => module.clone())
            .absolute(info.log_lines_dropped);
        counter!(names::DEAD_LETTERS, "module" => module.clone()).increment(0);
        gauge!(names::STORE_BYTES, "module" => module.clone()).set(info.store_bytes as f64);
        gauge!(names::STORE_LIMIT_BYTES, "module" => module.clone())
            .set(info.limits.store_total_bytes as f64);
        let quarantined = if info.status == ModuleStatus::Quarantined {
            1.0
        } else {
            0.0
        };
        gauge!(names::QUARANTINED, "module" => module).set(quarantined);
    }
}

//! Reading the runtime's state into metrics at scrape time.

use super::names;
use crate::supervisor::HostSupervisor;
use metrics::{counter, gauge};
use nexum_core::{ModuleStatus, Supervisor};

/// Sets every per-module gauge and total from the supervisor's current state.
pub(crate) fn collect(supervisor: &HostSupervisor) {
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

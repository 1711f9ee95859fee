//! The health verdict behind `/healthz`: every configured chain reachable, no module
//! quarantined.

use crate::chain::ChainPool;
use crate::supervisor::HostSupervisor;
use nexum_core::{ModuleStatus, Supervisor};
use serde::Serialize;

/// What `/healthz` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `ok` or `unhealthy`.
    pub status: &'static str,
    /// Why not healthy (empty when healthy).
    pub reasons: Vec<String>,
}

impl Health {
    /// Judges the runtime: its modules and its chains.
    pub(crate) fn of(supervisor: &HostSupervisor, chains: &ChainPool) -> Self {
        let mut reasons = Vec::new();
        for (chain, problem) in chains.problems() {
            reasons.push(format!("chain {chain}: {problem}"));
        }
        for module in supervisor.modules() {
            if module.status == ModuleStatus::Quarantined {
                reasons.push(format!("module {} is quarantined", module.name));
            }
        }
        Self {
            status: if reasons.is_empty() {
                "ok"
            } else {
                "unhealthy"
            },
            reasons,
        }
    }

    /// Whether all is well.
    pub fn is_ok(&self) -> bool {
        self.reasons.is_empty()
    }
}

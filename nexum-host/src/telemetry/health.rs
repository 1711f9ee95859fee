//! The health verdict behind `/healthz`: every configured chain reachable, no module
//! quarantined, and (on nodes sharing a store) the store answering.

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

/// Whether the shared store answered the last time it was asked (nodes of a cluster).
#[derive(Debug, Default)]
pub(crate) struct StoreHealth(std::sync::Mutex<Option<String>>);

impl StoreHealth {
    /// The store answered.
    pub fn answered(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The store did not answer, for `reason`.
    pub fn failed(&self, reason: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    fn problem(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Health {
    /// Judges the runtime: its modules, its chains and its shared store.
    pub(crate) fn of(
        supervisor: &HostSupervisor,
        chains: &ChainPool,
        store: Option<&StoreHealth>,
    ) -> Self {
        let mut reasons = Vec::new();
        if let Some(problem) = store.and_then(StoreHealth::problem) {
            reasons.push(format!("shared store: {problem}"));
        }
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

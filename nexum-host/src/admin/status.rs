//! What `GET /v1/status` (and `nexum status`) reports: each module's state and how far
//! behind the chain each of its subscriptions is.

use crate::runtime::{Parts, RuntimeError};
use crate::telemetry::Health;
use nexum_core::Supervisor;
use serde::{Deserialize, Serialize};

/// The engine at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Whether `/healthz` would answer 200.
    pub healthy: bool,
    /// What is wrong, when not healthy.
    pub problems: Vec<String>,
    /// Every module, in order.
    pub modules: Vec<ModuleStatusReport>,
}

/// One module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleStatusReport {
    /// Its name.
    pub name: String,
    /// Its version, from the manifest.
    pub version: String,
    /// The sha256 of the component it runs.
    pub component: String,
    /// `running`, `restarting`, `quarantined` or `stopped`.
    pub status: String,
    /// Events handled, failed (returned `err`) and trapped in this run.
    pub handled: u64,
    /// See `handled`.
    pub failed: u64,
    /// See `handled`.
    pub trapped: u64,
    /// Bytes in its store.
    pub store_bytes: u64,
    /// Dead letters waiting.
    pub dead_letters: u64,
    /// Each subscription, in manifest order.
    pub subscriptions: Vec<SubscriptionReport>,
}

/// One subscription of a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionReport {
    /// Its index in the manifest.
    pub index: usize,
    /// What it asks for, as logs print it.
    pub subscription: String,
    /// The last block fully handled (chain subscriptions).
    pub handled_through: Option<u64>,
    /// The chain's head as the engine follows it (chain subscriptions).
    pub head: Option<u64>,
    /// Blocks between the two.
    pub lag: Option<u64>,
}

impl Parts {
    /// The engine at a glance.
    pub(crate) fn status(&self) -> Result<StatusReport, RuntimeError> {
        let health = Health::of(self.supervisor(), self.chains(), self.store_health());
        let mut modules = Vec::new();
        for info in self.supervisor().modules() {
            // A module removed meanwhile (a reload, a hand-over) is left out, not an error.
            let positions = match self.positions(&info.name) {
                Ok(positions) => positions,
                Err(RuntimeError::UnknownModule(_)) => continue,
                Err(e) => return Err(e),
            };
            let subscriptions = info
                .subscriptions
                .iter()
                .enumerate()
                .map(|(index, subscription)| {
                    let handled_through = positions
                        .iter()
                        .find(|p| p.subscription == index)
                        .and_then(|p| p.handled_through);
                    let head = subscription.chain_id().and_then(|c| self.chain_head(c));
                    SubscriptionReport {
                        index,
                        subscription: subscription.to_string(),
                        handled_through,
                        head,
                        lag: head
                            .zip(handled_through)
                            .map(|(head, handled)| head.saturating_sub(handled)),
                    }
                })
                .collect();
            modules.push(ModuleStatusReport {
                dead_letters: self.ledger().dead_letter_count(&info.name)?,
                name: info.name,
                version: info.version,
                component: info.component.to_string(),
                status: info.status.to_string(),
                handled: info.totals.handled,
                failed: info.totals.failed,
                trapped: info.totals.trapped,
                store_bytes: info.store_bytes,
                subscriptions,
            });
        }
        Ok(StatusReport {
            healthy: health.is_ok(),
            problems: health.reasons,
            modules,
        })
    }
}

//! What an operator does to one running module: restart it (out of quarantine), and hand
//! it its dead letters again once it is fixed.

use super::{Parts, RuntimeError};
use crate::ledger::{Bookkeeping, Entry};
use nexum_core::{Delivery, Outcome, Supervisor};

/// What replaying a module's dead letters did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplayReport {
    /// Letters the module handled; they are gone.
    pub handled: usize,
    /// Letters the module failed again; each was dead-lettered anew with the new reason.
    pub failed_again: usize,
    /// Letters not delivered (the module trapped or stopped); they stay as they were.
    pub kept: usize,
}

impl Parts {
    /// Stops a module's sources and worker, starts a fresh instance (`init`) and its
    /// sources again; the module resumes from its committed cursors.
    pub(super) async fn restart_module(&self, module: &str) -> Result<(), RuntimeError> {
        let _changes = self.wiring.lock().await;
        if *self.stop_shared.borrow() {
            return Err(RuntimeError::ShuttingDown);
        }
        self.loaded(module)?;
        if let Some(prepared) = self.supervisor.prepared(module) {
            self.relaunch(prepared).await;
        }
        tracing::info!(module, "module restarted by the operator");
        Ok(())
    }

    /// Hands `module` its dead letters again, oldest first, each removed in the commit of
    /// its new outcome.
    pub(super) async fn replay_dead_letters(
        &self,
        module: &str,
    ) -> Result<ReplayReport, RuntimeError> {
        // Two replays never hand out the same letters. (Not under the lock of changes: a
        // long replay must not hold up a reload or a cluster's lease renewals. A module
        // swapped meanwhile takes the rest, or they stay, counted as kept.)
        let _replaying = self.replaying.lock().await;
        self.loaded(module)?;
        let mut report = ReplayReport::default();
        for letter in self.ledger.dead_letters(Some(module))? {
            let delivery = Delivery {
                subscription: letter.subscription,
                event: letter.event,
                bookkeeping: Bookkeeping::new(vec![Entry::Replayed {
                    module: module.to_string(),
                    id: letter.id,
                }]),
            };
            match self.supervisor.dispatch(module, delivery).await {
                Ok(Outcome::Handled) => report.handled += 1,
                Ok(Outcome::Failed(_)) => report.failed_again += 1,
                Ok(Outcome::Trapped(_)) | Err(_) => report.kept += 1,
            }
        }
        tracing::info!(
            module,
            handled = report.handled,
            failed_again = report.failed_again,
            kept = report.kept,
            "dead letters replayed"
        );
        Ok(report)
    }
}

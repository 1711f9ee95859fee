//! What an operator does to one running module: restart it (out of quarantine), and hand
//! it its dead letters again once it is fixed.

use super::{Parts, RuntimeError};
use crate::ledger::{Bookkeeping, DeadLetter, Entry};
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
    /// its new outcome. Read a page at a time (a module may keep a thousand, each with its
    /// whole event): the letters there when the replay began, not those it or the module's
    /// live delivery record meanwhile (a letter failed again is recorded anew, after them).
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
        let began_ms = crate::ledger::now_ms();
        let mut left = self.ledger.dead_letter_count(module)?;
        let mut after: Option<String> = None;
        'pages: loop {
            let page = self
                .ledger
                .dead_letter_page(Some(module), after.as_deref())?;
            for letter in page.letters {
                // Letters are in the order they were recorded: the rest are newer.
                if left == 0 || letter.at_ms > began_ms {
                    break 'pages;
                }
                left -= 1;
                self.replay(module, letter, &mut report).await;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
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

    /// Hands `module` one of its dead letters again; counts what became of it in `report`.
    async fn replay(&self, module: &str, letter: DeadLetter, report: &mut ReplayReport) {
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
}

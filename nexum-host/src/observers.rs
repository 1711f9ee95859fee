//! Where module log lines and lifecycle changes are published, for embedders, tests and
//! the CLI to watch. Create it before boot to see the changes boot itself makes (modules
//! starting, or failing `init`).

use nexum_core::{LogLine, ModuleEvent};
use tokio::sync::broadcast;

/// Notifications buffered per subscriber before a slow one starts missing some.
const LINE_BUFFER: usize = 1024;

/// The two broadcast channels: log lines and lifecycle changes.
#[derive(Clone)]
pub(crate) struct Observers {
    log_lines: broadcast::Sender<LogLine>,
    lifecycle: broadcast::Sender<ModuleEvent>,
}

impl Default for Observers {
    fn default() -> Self {
        Self {
            log_lines: broadcast::channel(LINE_BUFFER).0,
            lifecycle: broadcast::channel(LINE_BUFFER).0,
        }
    }
}

impl Observers {
    /// Module log lines from now on.
    pub fn log_lines(&self) -> broadcast::Receiver<LogLine> {
        self.log_lines.subscribe()
    }

    /// Module lifecycle changes from now on.
    pub fn lifecycle(&self) -> broadcast::Receiver<ModuleEvent> {
        self.lifecycle.subscribe()
    }

    /// Where module log lines are published.
    pub fn log_line_sender(&self) -> broadcast::Sender<LogLine> {
        self.log_lines.clone()
    }

    /// Where lifecycle changes are published.
    pub fn lifecycle_sender(&self) -> broadcast::Sender<ModuleEvent> {
        self.lifecycle.clone()
    }
}

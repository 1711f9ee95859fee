//! Turning a module's log line into a `tracing` event.

use std::sync::Arc;

/// The `tracing` target of every module log line.
pub(crate) const MODULE_TARGET: &str = "nexum::module";

/// Longest line kept; longer lines are cut (and say so) so one call cannot flood the sink.
const MAX_LINE_BYTES: usize = 8 * 1024;

/// Log severity, mirroring the WIT `level` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Writes one module's lines, tagged with its name.
#[derive(Clone)]
pub(crate) struct ModuleLogger {
    module: Arc<str>,
}

impl ModuleLogger {
    pub fn new(module: &str) -> Self {
        Self {
            module: module.into(),
        }
    }

    /// Emits `message` at `level` under the module's name.
    pub fn emit(&self, level: Level, message: &str) {
        let message = truncate(message);
        let module = &*self.module;
        match level {
            Level::Trace => tracing::trace!(target: MODULE_TARGET, module, "{message}"),
            Level::Debug => tracing::debug!(target: MODULE_TARGET, module, "{message}"),
            Level::Info => tracing::info!(target: MODULE_TARGET, module, "{message}"),
            Level::Warn => tracing::warn!(target: MODULE_TARGET, module, "{message}"),
            Level::Error => tracing::error!(target: MODULE_TARGET, module, "{message}"),
        }
    }
}

fn truncate(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_LINE_BYTES {
        return message.into();
    }
    let mut end = MAX_LINE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… [cut: line was {} bytes]",
        &message[..end],
        message.len()
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let line = "é".repeat(MAX_LINE_BYTES);
        let cut = truncate(&line);
        assert!(cut.len() < line.len());
        assert!(cut.ends_with(&format!("[cut: line was {} bytes]", line.len())));
        assert_eq!(truncate("short"), "short");
    }
}

//! Turning a module's log line into a `tracing` event — capped in size and rate, so a
//! chatty module cannot flood the operator's logs or slow the engine.

use nexum_core::bounded;
use nexum_core::host_rules::log_budget::Budget;
use nexum_core::{Limits, LogLevel, LogLine};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The `tracing` target of every module log line.
pub(crate) const MODULE_TARGET: &str = "nexum::module";

/// Writes one module's lines, tagged with its name.
#[derive(Clone)]
pub(crate) struct ModuleLogger {
    module: Arc<str>,
    max_line_bytes: usize,
    budget: Arc<Mutex<Budget>>,
    /// Lines dropped by the rate limit, ever.
    dropped: Arc<AtomicU64>,
    /// Where embedders listen for module log lines.
    lines: broadcast::Sender<LogLine>,
}

impl ModuleLogger {
    pub fn new(module: &str, limits: &Limits, lines: broadcast::Sender<LogLine>) -> Self {
        Self {
            module: module.into(),
            max_line_bytes: usize::try_from(limits.log_line_bytes).unwrap_or(usize::MAX),
            budget: Arc::new(Mutex::new(Budget::new(limits))),
            dropped: Arc::default(),
            lines,
        }
    }

    /// The module's name.
    pub fn module(&self) -> &str {
        &self.module
    }

    /// Lines dropped by the rate limit so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Emits `message` at `level` under the module's name, unless over the line or byte
    /// budget. The line is escaped (one module line is one log line) and cut to size.
    pub fn emit(&self, level: LogLevel, message: &str) {
        let module = &*self.module;
        // Charged before any work on the line, so dropped lines cost (almost) nothing.
        let charge = message.len().min(self.max_line_bytes);
        let resumed_after = {
            let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
            if !budget.take(charge) {
                budget.unreported += 1;
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            std::mem::take(&mut budget.unreported)
        };
        let message = bounded::module_text(message, self.max_line_bytes);
        if resumed_after > 0 {
            tracing::warn!(
                target: MODULE_TARGET,
                module,
                dropped = resumed_after,
                "{resumed_after} log lines dropped: over the module's log budget \
                 (lines or bytes per second)"
            );
        }
        match level {
            LogLevel::Trace => tracing::trace!(target: MODULE_TARGET, module, "{message}"),
            LogLevel::Debug => tracing::debug!(target: MODULE_TARGET, module, "{message}"),
            LogLevel::Info => tracing::info!(target: MODULE_TARGET, module, "{message}"),
            LogLevel::Warn => tracing::warn!(target: MODULE_TARGET, module, "{message}"),
            LogLevel::Error => tracing::error!(target: MODULE_TARGET, module, "{message}"),
        }
        if self.lines.receiver_count() > 0 {
            let _ = self.lines.send(LogLine {
                module: module.to_string(),
                level,
                message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_drops_and_counts_the_excess() {
        let limits = Limits {
            log_lines_per_second: 10,
            ..Limits::default()
        };
        let (lines, mut seen) = broadcast::channel(1000);
        let logger = ModuleLogger::new("chatty", &limits, lines);
        for i in 0..100 {
            logger.emit(LogLevel::Info, &format!("line {i}"));
        }
        let mut passed = 0;
        while seen.try_recv().is_ok() {
            passed += 1;
        }
        assert!((10..=11).contains(&passed), "{passed} lines passed");
        assert_eq!(logger.dropped(), 100 - passed);
    }

    #[test]
    fn the_byte_budget_drops_big_lines_first() {
        let limits = Limits {
            log_lines_per_second: 1000,
            log_bytes_per_second: 1000,
            log_line_bytes: 600,
            ..Limits::default()
        };
        let (lines, mut seen) = broadcast::channel(1000);
        let logger = ModuleLogger::new("wordy", &limits, lines);
        for _ in 0..10 {
            logger.emit(LogLevel::Info, &"x".repeat(400));
        }
        let mut bytes = 0;
        while let Ok(line) = seen.try_recv() {
            bytes += line.message.len();
        }
        assert!(bytes <= 1000, "{bytes} bytes passed a budget of 1000");
        assert_eq!(logger.dropped(), 8);
    }

    #[test]
    fn lines_are_escaped_and_cut() {
        let limits = Limits {
            log_line_bytes: 64,
            ..Limits::default()
        };
        let (lines, mut seen) = broadcast::channel(10);
        let logger = ModuleLogger::new("forger", &limits, lines);
        logger.emit(LogLevel::Info, "a\nERROR forged line");
        logger.emit(LogLevel::Info, &"y".repeat(1000));
        assert_eq!(seen.try_recv().unwrap().message, "a\\nERROR forged line");
        let long = seen.try_recv().unwrap().message;
        assert!(
            long.len() < 120 && long.contains("[cut: 1000 bytes in all]"),
            "{long}"
        );
    }
}

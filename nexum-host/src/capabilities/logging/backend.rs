//! Turning a module's log line into a `tracing` event — capped in size and rate, so a
//! chatty module cannot flood the operator's logs or slow the engine.

use nexum_core::{Limits, LogLevel, LogLine};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::broadcast;

/// The `tracing` target of every module log line.
pub(crate) const MODULE_TARGET: &str = "nexum::module";

/// A token bucket: `rate` lines per second, bursts up to one second's worth.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    last: Instant,
    /// Lines dropped since the last one that got through.
    unreported: u64,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Self {
            tokens: rate as f64,
            rate: rate as f64,
            last: Instant::now(),
            unreported: 0,
        }
    }

    /// Takes a token if there is one.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Writes one module's lines, tagged with its name.
#[derive(Clone)]
pub(crate) struct ModuleLogger {
    module: Arc<str>,
    max_line_bytes: usize,
    bucket: Arc<Mutex<Bucket>>,
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
            bucket: Arc::new(Mutex::new(Bucket::new(limits.log_lines_per_second))),
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

    /// Emits `message` at `level` under the module's name, unless over the rate limit.
    pub fn emit(&self, level: LogLevel, message: &str) {
        let module = &*self.module;
        let resumed_after = {
            let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            if !bucket.take() {
                bucket.unreported += 1;
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            std::mem::take(&mut bucket.unreported)
        };
        if resumed_after > 0 {
            tracing::warn!(
                target: MODULE_TARGET,
                module,
                dropped = resumed_after,
                "{resumed_after} log lines dropped: over the limit of {} lines per second",
                self.bucket.lock().unwrap_or_else(|p| p.into_inner()).rate
            );
        }
        let message = truncate(message, self.max_line_bytes);
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
                message: message.into_owned(),
            });
        }
    }
}

fn truncate(message: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if message.len() <= max {
        return message.into();
    }
    let mut end = max;
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
        let line = "é".repeat(100);
        let cut = truncate(&line, 51);
        assert!(cut.starts_with(&"é".repeat(25)));
        assert!(cut.ends_with(&format!("[cut: line was {} bytes]", line.len())));
        assert_eq!(truncate("short", 51), "short");
    }

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
}

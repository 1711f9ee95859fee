//! A module's log budget: lines per second and bytes per second (`log_lines_per_second`,
//! `log_bytes_per_second`), each a token bucket that allows bursts of one second's worth.

use crate::limits::Limits;
use std::time::Instant;

/// A token bucket: `rate` tokens per second, bursts up to one second's worth.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Self {
            tokens: rate as f64,
            rate: rate as f64,
        }
    }

    fn refill(&mut self, elapsed_secs: f64) {
        self.tokens = (self.tokens + elapsed_secs * self.rate).min(self.rate);
    }
}

/// A module's log budget: lines per second and bytes per second, both as token buckets.
#[derive(Debug)]
pub struct Budget {
    lines: Bucket,
    bytes: Bucket,
    last: Instant,
    /// Lines dropped since the last one that got through (for the host to report).
    pub unreported: u64,
}

impl Budget {
    /// The budget `limits` allow.
    pub fn new(limits: &Limits) -> Self {
        Self {
            lines: Bucket::new(limits.log_lines_per_second),
            bytes: Bucket::new(limits.log_bytes_per_second),
            last: Instant::now(),
            unreported: 0,
        }
    }

    /// Takes one line of `len` bytes if both budgets allow it.
    pub fn take(&mut self, len: usize) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.lines.refill(elapsed);
        self.bytes.refill(elapsed);
        let len = len as f64;
        if self.lines.tokens >= 1.0 && self.bytes.tokens >= len {
            self.lines.tokens -= 1.0;
            self.bytes.tokens -= len;
            true
        } else {
            false
        }
    }
}

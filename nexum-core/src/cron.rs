//! Cron schedules: 5-field (minutes) or 6-field (with seconds), parsed once at load time.

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use std::fmt;
use std::sync::Arc;

/// A validated cron schedule, kept with the text it was written as.
#[derive(Clone)]
pub struct CronSchedule {
    text: String,
    /// Shared: a parsed schedule is large and never changes.
    cron: Arc<Cron>,
}

impl CronSchedule {
    /// Parses a 5-field (`min hour dom month dow`) or 6-field (seconds first) expression.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let fields = trimmed.split_whitespace().count();
        if !(fields == 5 || fields == 6 || trimmed.starts_with('@')) {
            return Err(format!(
                "invalid cron expression {text:?}: expected 5 fields (min hour day month weekday) \
                 or 6 (with seconds first), found {fields}"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(trimmed)
            .map_err(|e| format!("invalid cron expression {text:?}: {e}"))?;
        Ok(Self {
            text: text.to_string(),
            cron: Arc::new(cron),
        })
    }

    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first firing strictly after `after`, or `None` if the schedule never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronSchedule").field(&self.text).finish()
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for CronSchedule {}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_fields_fire_on_minutes() {
        let s = CronSchedule::parse("*/5 * * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 10, 2, 30).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 5, 0).unwrap())
        );
    }

    #[test]
    fn six_fields_fire_on_seconds() {
        let s = CronSchedule::parse("*/2 * * * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 1).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 2).unwrap())
        );
    }

    #[test]
    fn rejects_malformed_expressions() {
        for bad in ["", "* * *", "61 * * * *", "* * * * * * * *", "every minute"] {
            let err = CronSchedule::parse(bad).unwrap_err();
            assert!(err.contains("invalid cron expression"), "{bad}: {err}");
        }
    }
}

//! JSON log lines written straight to the output, in the shape of `tracing-subscriber`'s
//! JSON format with `flatten_event` and the current span:
//!
//! `{"timestamp":…,"level":…,<event fields>,"target":…,"span":{<span fields>,"name":…}}`
//!
//! `tracing-subscriber` keeps a span's fields as a JSON object in a string, and on every
//! line parses that string back into a `serde_json::Value` map to write it out again (and
//! builds that string through a map when the span is made). Every module call runs in a
//! span and a keeper logs a line or two per event, so on a live chain that was a visible
//! share of each event's cost. Here a span's fields are kept as ready `"key":value` pairs
//! that a line copies as they are. Values are written by `serde_json`.

use serde::Serializer as _;
use std::fmt;
use std::io;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats each event as one JSON object on a line.
#[derive(Debug, Default)]
pub struct JsonLines;

/// Formats fields as `"key":value` pairs separated by commas, without braces: a span's
/// stored fields, copied into each line logged inside it.
#[derive(Debug, Default)]
pub struct JsonPairs;

impl<'writer> FormatFields<'writer> for JsonPairs {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut pairs = Pairs::new(&mut writer, Naming::Span, false);
        fields.record(&mut pairs);
        pairs.result
    }

    /// Fields recorded on a span after it was made (nexum records none). Rare, so done
    /// the simple way: a field recorded again replaces its value, as in tracing-subscriber,
    /// and a record that fails to format leaves the stored fields as they were.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut added = String::new();
        let mut writer = Writer::new(&mut added);
        let mut pairs = Pairs::new(&mut writer, Naming::Span, false);
        fields.record(&mut pairs);
        pairs.result?;
        if current.fields.is_empty() {
            current.fields = added;
            return Ok(());
        }
        let object = |pairs: &str| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&format!(
                "{{{pairs}}}"
            ))
            .map_err(|_| fmt::Error)
        };
        let mut merged = object(&current.fields)?;
        merged.extend(object(&added)?);
        let merged = serde_json::to_string(&merged).map_err(|_| fmt::Error)?;
        current.fields = merged[1..merged.len() - 1].to_string();
        Ok(())
    }
}

impl<S> FormatEvent<S, JsonPairs> for JsonLines
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonPairs>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Records from the `log` crate carry their level and target as fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level().as_str())?;
        let mut pairs = Pairs::new(&mut writer, Naming::Event, true);
        event.record(&mut pairs);
        pairs.result?;
        writer.write_str(",\"target\":")?;
        json_string(&mut writer, meta.target())?;
        let span = (event.parent())
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(",\"span\":{")?;
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<JsonPairs>>()
                && !fields.fields.is_empty()
            {
                writer.write_str(&fields.fields)?;
                writer.write_char(',')?;
            }
            writer.write_str("\"name\":")?;
            json_string(&mut writer, span.name())?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

/// Whose fields are written: tracing-subscriber writes a span's a little differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// An event's fields, verbatim.
    Event,
    /// A span's fields: `Debug` values named `log.…` are left out and a raw identifier's
    /// `r#` is dropped, and bytes are an array of numbers.
    Span,
}

/// Writes each field it visits as a `"key":value` pair.
struct Pairs<'a, 'w> {
    writer: &'a mut Writer<'w>,
    naming: Naming,
    /// Whether a pair was written before the next (which then starts with a comma).
    after_pair: bool,
    result: fmt::Result,
}

impl<'a, 'w> Pairs<'a, 'w> {
    fn new(writer: &'a mut Writer<'w>, naming: Naming, after_pair: bool) -> Self {
        Self {
            writer,
            naming,
            after_pair,
            result: Ok(()),
        }
    }

    /// Writes the pair `name`: `value`, unless a write failed before.
    fn pair(&mut self, name: &str, value: impl FnOnce(&mut Writer<'w>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.after_pair { "," } else { "" };
        self.after_pair = true;
        self.result = (self.writer.write_str(separator))
            .and_then(|()| json_string(self.writer, name))
            .and_then(|()| self.writer.write_char(':'))
            .and_then(|()| value(self.writer));
    }
}

impl Visit for Pairs<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut name = field.name();
        if self.naming == Naming::Span {
            if name.starts_with("log.") {
                return;
            }
            name = name.strip_prefix("r#").unwrap_or(name);
        }
        self.pair(name, |w| json_string(w, format_args!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field.name(), |w| json_string(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.pair(field.name(), |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.pair(field.name(), |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.pair(field.name(), |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // As serde_json writes it: `null` for what JSON cannot hold.
        self.pair(field.name(), |w| json(w, |s| s.serialize_f64(value)));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        match self.naming {
            Naming::Span => self.pair(field.name(), |w| json(w, |s| s.collect_seq(value))),
            // Events: as tracing's default does it, `[0a ff]` in a string.
            Naming::Event => self.pair(field.name(), |w| json_string(w, SpacedHex(value))),
        }
    }
}

/// Bytes as `[0a ff]`.
struct SpacedHex<'a>(&'a [u8]);

impl fmt::Display for SpacedHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, byte) in self.0.iter().enumerate() {
            write!(f, "{}{byte:02x}", if i == 0 { "" } else { " " })?;
        }
        f.write_str("]")
    }
}

/// Writes one JSON value with serde_json's serializer.
fn json(
    writer: &mut Writer<'_>,
    write: impl FnOnce(&mut serde_json::Serializer<FmtToIo<'_, '_>>) -> serde_json::Result<()>,
) -> fmt::Result {
    write(&mut serde_json::Serializer::new(FmtToIo(writer))).map_err(|_| fmt::Error)
}

/// Writes `text` as a JSON string, escaped by serde_json as it is formatted.
fn json_string(writer: &mut Writer<'_>, text: impl fmt::Display) -> fmt::Result {
    json(writer, |s| s.collect_str(&text))
}

/// serde_json writes to an `io::Write`; a log line is a `fmt::Write`. serde_json writes
/// whole strings or pieces cut at ASCII escapes, so each piece is valid UTF-8.
struct FmtToIo<'a, 'w>(&'a mut Writer<'w>);

impl io::Write for FmtToIo<'_, '_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let text = std::str::from_utf8(bytes).map_err(io::Error::other)?;
        self.0.write_str(text).map_err(io::Error::other)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{JsonLines, JsonPairs};
    use serde_json::Value;
    use std::sync::{Arc, Mutex};

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(str::to_string).collect()
        }
    }

    /// Lines, spans and fields of every kind nexum logs, and some it might.
    fn scenario() {
        tracing::info!(target: "nexum::module", module = "probe", "b 298");
        let call = tracing::info_span!(
            "event",
            module = "probe",
            event = "block",
            chain = 31337u64,
            block = Some(298u64)
        );
        let _in_call = call.enter();
        tracing::info!(target: "nexum::module", module = "probe", "l 298 10");
        tracing::warn!(
            count = -3i64,
            ratio = 0.5f64,
            not_a_number = f64::NAN,
            ok = true,
            text = "quote \" back\\ nl\n tab\t bell\u{7} \u{fc}n\u{ef} \u{1F600}",
            debug = ?vec!["a\"b"],
            shown = %"display \"value\"",
            "message with \"quotes\" and {}",
            "arguments\n"
        );
        let quiet = tracing::info_span!("quiet");
        let in_quiet = quiet.enter();
        tracing::error!(r#type = "raw", "inside a span without fields");
        drop(in_quiet);
        let raw = tracing::info_span!("raw", r#type = "kind", none = None::<u64>);
        tracing::info!(parent: &raw, "with an explicit parent");
        let failure = std::io::Error::other("disk \"full\"");
        let typed = tracing::info_span!(
            "typed",
            bytes = &b"\x0a\xff"[..],
            ratio = -1.5f64,
            ok = false,
            count = -7i64,
            big = 1u128 << 100,
            error = &failure as &dyn std::error::Error,
            later = tracing::field::Empty,
        );
        typed.record("count", 8i64);
        typed.record("later", "recorded after");
        tracing::info!(
            parent: &typed,
            bytes = &b"\x0a\xff"[..],
            big = -(1i128 << 100),
            error = &failure as &dyn std::error::Error,
            "typed fields"
        );
        tracing_log::format_trace(
            &log::Record::builder()
                .level(log::Level::Warn)
                .target("fjall::journal")
                .module_path(Some("fjall::journal"))
                .file(Some("journal.rs"))
                .line(Some(7))
                .args(format_args!("from the log crate"))
                .build(),
        )
        .unwrap();
    }

    fn run(subscriber: impl tracing::Subscriber + Send + Sync + 'static) {
        tracing::subscriber::with_default(subscriber, scenario);
    }

    /// Every line parses, and says what tracing-subscriber's JSON format says: the same
    /// keys and values (the timestamp apart, which only has to be RFC 3339).
    #[test]
    fn lines_match_tracing_subscribers_json_format() {
        let ours = Captured::default();
        let writer = ours.clone();
        run(tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .fmt_fields(JsonPairs)
            .event_format(JsonLines)
            .finish());
        let theirs = Captured::default();
        let writer = theirs.clone();
        run(tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .finish());
        let (ours, theirs) = (ours.lines(), theirs.lines());
        assert_eq!(ours.len(), 7, "{ours:#?}");
        assert_eq!(ours.len(), theirs.len());
        for (line, expected) in ours.iter().zip(&theirs) {
            let mut line: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let mut expected: Value = serde_json::from_str(expected).unwrap();
            let at = line["timestamp"].take();
            chrono::DateTime::parse_from_rfc3339(at.as_str().unwrap()).unwrap();
            expected["timestamp"].take();
            assert_eq!(line, expected);
        }
        assert!(ours[2].contains(r#""not_a_number":null"#), "{}", ours[2]);
        assert!(
            ours[6].contains(r#""target":"fjall::journal""#),
            "{}",
            ours[6]
        );
        // A field recorded again has one value, the last (parsing would hide a duplicate).
        assert_eq!(ours[5].matches(r#""count":"#).count(), 1, "{}", ours[5]);
        assert!(ours[5].contains(r#""count":8"#), "{}", ours[5]);
        assert!(ours[5].contains(r#""bytes":[10,255]"#), "{}", ours[5]);
        assert!(ours[5].contains(r#""bytes":"[0a ff]""#), "{}", ours[5]);
    }
}

//! Capturing `tracing` output, to check what modules and the engine log.

use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// One captured log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its level.
    pub level: Level,
    /// Its target (module lines use `nexum::module`).
    pub target: String,
    /// The `module` field, if any.
    pub module: Option<String>,
    /// The message.
    pub message: String,
    /// Every other field, as `name=value`, in the order recorded.
    pub fields: Vec<String>,
}

impl Line {
    /// The whole line as one text: message and every field (to search for a string
    /// anywhere in what was logged).
    pub fn text(&self) -> String {
        let mut text = self.message.clone();
        for field in &self.fields {
            text.push(' ');
            text.push_str(field);
        }
        text
    }
}

/// Lines captured so far (shared with the capturing layer).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<Line>>>);

impl Captured {
    /// A snapshot of every line so far.
    pub fn lines(&self) -> Vec<Line> {
        self.0.lock().unwrap().clone()
    }

    /// Lines logged for `module`.
    pub fn of_module(&self, module: &str) -> Vec<Line> {
        self.lines()
            .into_iter()
            .filter(|l| l.module.as_deref() == Some(module))
            .collect()
    }
}

/// Captures every event on the current thread until the guard is dropped. Use it with a
/// `current_thread` runtime so module workers log on this thread too.
pub fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(CaptureLayer(captured.clone()));
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

struct CaptureLayer(Captured);

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        self.0.0.lock().unwrap().push(Line {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            module: visitor.module,
            message: visitor.message,
            fields: visitor.fields,
        });
    }
}

#[derive(Default)]
struct Fields {
    module: Option<String>,
    message: String,
    fields: Vec<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "module" => self.module = Some(value.to_string()),
            "message" => self.message = value.to_string(),
            name => self.fields.push(format!("{name}={value}")),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "module" => self.module = Some(format!("{value:?}")),
            "message" => self.message = format!("{value:?}"),
            name => self.fields.push(format!("{name}={value:?}")),
        }
    }
}

/// Prints log lines to the test's output when `RUST_LOG` is set (for debugging a test).
pub fn print_from_env() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

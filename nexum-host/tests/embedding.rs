//! nexum-host as a Rust service uses it: a runtime built in code, modules from bytes,
//! events from the service's own source, state read back, lifecycle and log streams, and
//! a host interface of the service's own linked into modules.

use nexum_host::core::EngineConfig;
use nexum_host::core::{Event, Lifecycle, LogLevel, Outcome, Tick};
use nexum_host::extension::HostExtension;
use nexum_host::wasmtime::component::{HasSelf, Linker};
use nexum_host::{ModuleState, Runtime, RuntimeBuilder};
use nexum_tests::guests::wasm_bytes;
use std::time::Duration;
use tempfile::TempDir;

mod greeter {
    nexum_host::wasmtime::component::bindgen!({
        path: "../tests/fixtures/ext-user/wit",
        world: "greeter-user",
        wasmtime_crate: nexum_host::wasmtime,
    });
}
use greeter::acme::greeter::greet;

/// The embedder's own host interface: greets by name, and says which module asked.
impl greet::Host for ModuleState {
    fn hello(&mut self, name: String) -> String {
        format!("hello {name}, from the host of {}", self.module_name())
    }
}

struct Greeter;

impl HostExtension for Greeter {
    fn interfaces(&self) -> Vec<String> {
        vec!["acme:greeter/greet".to_string()]
    }

    fn link(&self, linker: &mut Linker<ModuleState>) -> nexum_host::wasmtime::Result<()> {
        greet::add_to_linker::<ModuleState, HasSelf<ModuleState>>(linker, |state| state)
    }
}

/// An engine config with its state in a fresh directory and quick restarts.
fn config() -> (EngineConfig, TempDir) {
    let dir = tempfile::tempdir().expect("creating a state directory");
    let mut config = EngineConfig {
        state_dir: dir.path().join("state"),
        ..EngineConfig::default()
    };
    config.supervision.retry_attempts = 0;
    config.supervision.restart_backoff_ms = 10;
    config.supervision.restart_backoff_max_ms = 20;
    (config, dir)
}

fn manifest(name: &str, extra: &str) -> String {
    format!(
        "[module]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n\
         [capabilities]\nrequired = [\"local-store\", \"logging\"]\n\n{extra}\n"
    )
}

/// A tick carrying a `probe` script in its schedule field.
fn script(commands: &str) -> Event {
    tick(commands)
}

fn tick(schedule: &str) -> Event {
    Event::Tick(Tick {
        fired_at: 1_000,
        schedule: schedule.to_string(),
    })
}

fn text(value: Option<Vec<u8>>) -> Option<String> {
    value.map(|v| String::from_utf8(v).expect("test values are UTF-8"))
}

#[tokio::test]
async fn boot_from_bytes_dispatch_events_and_read_the_store() {
    let (config, _dir) = config();
    let runtime = Runtime::builder(config)
        .module_bytes(wasm_bytes("probe"), &manifest("probe", ""), "probe.toml")
        .expect("the manifest parses")
        .start()
        .await
        .expect("the runtime starts");

    let outcome = runtime
        .dispatch("probe", script("set colour blue; set size 3"))
        .await;
    assert_eq!(outcome, Ok(Outcome::Handled));
    assert_eq!(
        text(runtime.read("probe", "colour").unwrap()).as_deref(),
        Some("blue")
    );
    let listed: Vec<String> = runtime
        .list("probe", "")
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(listed, ["colour", "size"]);

    // A failed call commits nothing.
    let outcome = runtime
        .dispatch("probe", script("set colour red; fail"))
        .await;
    assert!(matches!(outcome, Ok(Outcome::Failed(_))), "{outcome:?}");
    assert_eq!(
        text(runtime.read("probe", "colour").unwrap()).as_deref(),
        Some("blue")
    );

    assert!(runtime.dispatch("nobody", script("")).await.is_err());
    assert!(runtime.read("nobody", "colour").is_err());
    assert!(runtime.read("Not A Name", "colour").is_err());

    let summary = runtime.shutdown().await;
    assert_eq!(summary.modules.len(), 1);
    let totals = &summary.modules[0];
    assert_eq!(
        (totals.handled, totals.failed, totals.trapped),
        (1, 1, 0),
        "{totals:?}"
    );
}

#[tokio::test]
async fn broadcast_reaches_the_modules_subscribed_to_the_event() {
    let (config, _dir) = config();
    let cron =
        |schedule: &str| format!("[[subscription]]\nkind = \"cron\"\nschedule = \"{schedule}\"");
    let runtime = Runtime::builder(config)
        .module_bytes(
            wasm_bytes("heartbeat"),
            &manifest("new-year", &cron("0 0 1 1 *")),
            "a.toml",
        )
        .unwrap()
        .module_bytes(
            wasm_bytes("heartbeat"),
            &manifest("second-jan", &cron("0 0 2 1 *")),
            "b.toml",
        )
        .unwrap()
        .start()
        .await
        .unwrap();

    let outcomes = runtime.broadcast(tick("0 0 1 1 *")).await;
    assert_eq!(outcomes, [("new-year".to_string(), Ok(Outcome::Handled))]);
    assert_eq!(
        text(runtime.read("new-year", "beats").unwrap()).as_deref(),
        Some("1")
    );
    assert_eq!(runtime.read("second-jan", "beats").unwrap(), None);
    assert!(runtime.broadcast(tick("0 0 3 1 *")).await.is_empty());
    runtime.shutdown().await;
}

#[tokio::test]
async fn lifecycle_and_log_streams_report_what_modules_do() {
    let (mut config, _dir) = config();
    config.supervision.quarantine_after = 2;
    let builder = RuntimeBuilder::new(config)
        .module_bytes(wasm_bytes("probe"), &manifest("probe", ""), "probe.toml")
        .unwrap();
    let mut lifecycle = builder.lifecycle();
    let mut log_lines = builder.log_lines();
    let runtime = builder.start().await.unwrap();

    runtime
        .dispatch("probe", script("log hello from probe"))
        .await
        .unwrap();
    // A trap restarts the module and retries the event; the second trap quarantines it.
    let outcome = runtime.dispatch("probe", script("panic")).await;
    assert!(matches!(outcome, Ok(Outcome::Trapped(_))), "{outcome:?}");
    assert!(runtime.dispatch("probe", script("")).await.is_err());

    let line = tokio::time::timeout(Duration::from_secs(5), log_lines.recv())
        .await
        .expect("a log line arrives")
        .unwrap();
    assert_eq!(line.module, "probe");
    assert_eq!(line.level, LogLevel::Info);
    assert_eq!(line.message, "hello from probe");

    let mut changes = Vec::new();
    while !matches!(changes.last(), Some(Lifecycle::Quarantined { .. })) {
        let event = tokio::time::timeout(Duration::from_secs(5), lifecycle.recv())
            .await
            .unwrap_or_else(|_| panic!("no quarantine; saw {changes:?}"))
            .unwrap();
        assert_eq!(event.module, "probe");
        changes.push(event.change);
    }
    assert!(matches!(changes[0], Lifecycle::Started), "{changes:?}");
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Lifecycle::Trapped { .. })),
        "{changes:?}"
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn an_extension_links_the_embedder_s_own_interface() {
    let (config, _dir) = config();
    let runtime = Runtime::builder(config.clone())
        .module_bytes(
            wasm_bytes("ext-user"),
            &manifest("greeter", ""),
            "greeter.toml",
        )
        .unwrap()
        .extension(Greeter)
        .start()
        .await
        .expect("a module importing the extension's interface boots");
    let outcome = runtime.dispatch("greeter", tick("world")).await;
    assert_eq!(outcome, Ok(Outcome::Handled));
    assert_eq!(
        text(runtime.read("greeter", "greeting").unwrap()).as_deref(),
        Some("hello world, from the host of greeter")
    );
    runtime.shutdown().await;

    // Without the extension, the import is refused at load, naming it.
    let (config, _dir) = self::config();
    let error = Runtime::builder(config)
        .module_bytes(
            wasm_bytes("ext-user"),
            &manifest("greeter", ""),
            "greeter.toml",
        )
        .unwrap()
        .start()
        .await
        .err()
        .expect("the unknown import is refused");
    let message = error.to_string();
    assert!(
        message.contains("imports `acme:greeter/greet@0.1.0`, which nexum does not provide"),
        "{message}"
    );
}

/// Claims a nexum interface without linking anything.
struct Impostor;

impl HostExtension for Impostor {
    fn interfaces(&self) -> Vec<String> {
        vec!["nexum:host/chain@0.2.1".to_string()]
    }

    fn link(&self, _linker: &mut Linker<ModuleState>) -> nexum_host::wasmtime::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_extension_cannot_claim_an_interface_nexum_provides() {
    let (config, _dir) = config();
    let error = Runtime::builder(config)
        .module_bytes(wasm_bytes("probe"), &manifest("probe", ""), "probe.toml")
        .unwrap()
        .extension(Impostor)
        .start()
        .await
        .err()
        .expect("the claim is refused");
    assert_eq!(
        error.to_string(),
        "wasm engine: an extension claims `nexum:host/chain`, which nexum provides itself"
    );
}

//! Starting a real runtime — through `RuntimeBuilder`, as an embedder does — with compiled
//! guests on a fresh store.

use crate::guests;
use nexum_core::{EngineConfig, Event, ModuleName, Outcome, Tick};
use nexum_host::{Ledger, Runtime, RuntimeBuilder, RuntimeError};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A module to boot: which compiled guest, under which manifest.
pub struct TestModule {
    /// The guest crate.
    pub guest: &'static str,
    /// The manifest's text.
    pub manifest: String,
}

impl TestModule {
    /// Guest `guest` named `name`, with `capabilities` and extra manifest text (subscriptions,
    /// `[limits]`, `[config]`).
    pub fn new(guest: &'static str, name: &str, capabilities: &[&str], extra: &str) -> Self {
        let capabilities: Vec<String> = capabilities.iter().map(|c| format!("\"{c}\"")).collect();
        Self {
            guest,
            manifest: format!(
                "[module]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [{}]\n\n{extra}\n",
                capabilities.join(", ")
            ),
        }
    }

    /// The `probe` fixture with `local-store` and `logging`.
    pub fn probe(name: &str) -> Self {
        Self::new("probe", name, &["local-store", "logging"], "")
    }
}

/// A started runtime and the directory holding its state.
pub struct TestEngine {
    /// The runtime under test.
    pub runtime: Runtime,
    /// Holds the store; removed when the engine is dropped.
    pub dir: TempDir,
}

/// Engine defaults for tests: quick retries and restarts so failures show up fast.
pub fn test_config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.supervision.retry_attempts = 0;
    config.supervision.retry_backoff_ms = 10;
    config.supervision.restart_backoff_ms = 10;
    config.supervision.restart_backoff_max_ms = 50;
    config
}

/// Starts `modules` under `config` (its `state_dir` is replaced by a temporary directory).
pub async fn boot(
    modules: Vec<TestModule>,
    config: EngineConfig,
) -> Result<TestEngine, RuntimeError> {
    let dir = tempfile::tempdir().expect("creating a temporary state directory");
    boot_in(dir, modules, config).await
}

/// Starts `modules` with their state in `dir` (to restart on existing state).
pub async fn boot_in(
    dir: TempDir,
    modules: Vec<TestModule>,
    config: EngineConfig,
) -> Result<TestEngine, RuntimeError> {
    let runtime = start(&dir.path().join("state"), dir.path(), modules, config).await?;
    Ok(TestEngine { runtime, dir })
}

/// Starts `modules` with their state at `state_dir`, manifests written to `scratch` (the
/// caller keeps both: to look at what a failed start left behind).
pub async fn boot_at(
    state_dir: &Path,
    scratch: &Path,
    modules: Vec<TestModule>,
    config: EngineConfig,
) -> Result<TestEngineAt, RuntimeError> {
    let runtime = start(state_dir, scratch, modules, config).await?;
    Ok(TestEngineAt { runtime })
}

/// A runtime started by [`boot_at`] (its directory belongs to the caller).
pub struct TestEngineAt {
    /// The runtime under test.
    pub runtime: Runtime,
}

/// Starts a runtime through the public builder, as an embedder would.
async fn start(
    state_dir: &Path,
    scratch: &Path,
    modules: Vec<TestModule>,
    mut config: EngineConfig,
) -> Result<Runtime, RuntimeError> {
    config.state_dir = state_dir.to_path_buf();
    let mut builder = RuntimeBuilder::new(config);
    for module in modules {
        let manifest = manifest_path(scratch, &module);
        builder = builder.module_file(guests::wasm(module.guest), &manifest)?;
    }
    builder.start().await
}

/// Writes the manifest into `dir` (so errors can name it) and returns its path.
fn manifest_path(dir: &Path, module: &TestModule) -> PathBuf {
    let path = dir.join(format!(
        "{}-{}.toml",
        module.guest,
        dir.read_dir().map(|d| d.count()).unwrap_or(0)
    ));
    std::fs::write(&path, &module.manifest).expect("writing a test manifest");
    path
}

/// A tick whose `schedule` carries a `probe` script.
pub fn command(script: &str) -> Event {
    Event::Tick(Tick {
        fired_at: 0,
        schedule: script.to_string(),
    })
}

/// `module`'s committed value of `key` in `runtime`, as text.
fn read_text(runtime: &Runtime, module: &str, key: &str) -> Option<String> {
    runtime
        .read(module, key)
        .expect("reading the store")
        .map(|v| String::from_utf8(v).expect("test values are UTF-8"))
}

impl TestEngine {
    /// Runs a `probe` script in `module` (as a tick) and returns the outcome.
    pub async fn run(&self, module: &str, script: &str) -> Outcome {
        self.runtime
            .dispatch(module, command(script))
            .await
            .unwrap_or_else(|e| panic!("dispatching to {module}: {e}"))
    }

    /// The committed value of `key` in `module`'s store.
    pub fn read(&self, module: &str, key: &str) -> Option<String> {
        read_text(&self.runtime, module, key)
    }
}

/// A whole runtime (supervisor plus cron and chain sources) on a fresh store.
pub struct TestRuntime {
    /// The runtime under test.
    pub runtime: nexum_host::Runtime,
    /// Holds the store; removed when dropped.
    pub dir: TempDir,
}

/// Starts `modules` with their sources under `config` on a fresh store.
pub async fn run(modules: Vec<TestModule>, config: EngineConfig) -> TestRuntime {
    let dir = tempfile::tempdir().expect("creating a temporary state directory");
    run_in(dir, modules, config).await
}

/// Starts `modules` with their sources, with state in `dir`.
pub async fn run_in(dir: TempDir, modules: Vec<TestModule>, config: EngineConfig) -> TestRuntime {
    let runtime = start(&dir.path().join("state"), dir.path(), modules, config)
        .await
        .unwrap_or_else(|e| panic!("runtime did not start: {e}"));
    TestRuntime { runtime, dir }
}

impl TestRuntime {
    /// The committed value of `key` in `module`'s store.
    pub fn read(&self, module: &str, key: &str) -> Option<String> {
        read_text(&self.runtime, module, key)
    }

    /// What a `recorder` module recorded, in arrival order.
    pub fn recorded(&self, module: &str) -> Vec<serde_json::Value> {
        let n: usize = self.read(module, "n").map_or(0, |n| n.parse().unwrap());
        (0..n)
            .map(|i| {
                let text = self
                    .read(module, &format!("e/{i:08}"))
                    .unwrap_or_else(|| panic!("{module} is missing event {i}"));
                serde_json::from_str(&text).unwrap()
            })
            .collect()
    }

    /// The `(block, log index)` a `recorder` module currently holds as canonical
    /// (its `live/` keys).
    pub fn live_logs(&self, module: &str) -> std::collections::BTreeSet<(u64, u64)> {
        live_keys(
            self.runtime
                .list(module, "live/")
                .expect("reading the store"),
        )
    }

    /// Reloads the runtime with `modules` under `config`, as `nexum reload` does with a
    /// rewritten engine.toml (`config` must be the one it started with, but for modules).
    pub async fn reload(
        &self,
        modules: Vec<TestModule>,
        mut config: EngineConfig,
    ) -> Result<nexum_host::ReloadReport, nexum_host::ReloadError> {
        config.state_dir = self.dir.path().join("state");
        let mut specs = Vec::new();
        for module in modules {
            let manifest = manifest_path(self.dir.path(), &module);
            specs.push(nexum_core::ModuleSpec {
                wasm: nexum_core::WasmSource::File(guests::wasm(module.guest)),
                manifest: nexum_core::ModuleManifest::load(&manifest)?,
                pin: None,
            });
        }
        let plan = nexum_core::BootPlan {
            config,
            modules: specs,
        };
        self.runtime.reload(plan).await
    }

    /// Shuts the runtime down cleanly and returns its state directory.
    pub async fn stop(self) -> TempDir {
        self.runtime.shutdown().await;
        self.dir
    }

    /// Waits until delivery to `module` has handled `chain` through block `number` in this
    /// run (or panics after 30 s).
    pub async fn wait_delivered(&self, module: &str, chain: u64, number: u64) {
        let reached = wait_until(std::time::Duration::from_secs(30), || {
            self.runtime
                .delivered_height(module, chain)
                .is_some_and(|n| n >= number)
        })
        .await;
        assert!(
            reached,
            "{module} never got through block {number}: at {:?}",
            self.runtime.delivered_height(module, chain)
        );
    }

    /// Waits until `module`'s block subscription on `chain` has handled (and committed)
    /// block `number` (or panics after 30 s).
    pub async fn wait_handled(&self, module: &str, chain: u64, number: u64) {
        let handled = |runtime: &nexum_host::Runtime| {
            runtime
                .positions(module)
                .expect("reading positions")
                .iter()
                .any(|p| p.chain_id == chain && p.handled_through.is_some_and(|n| n >= number))
        };
        let reached = wait_until(std::time::Duration::from_secs(30), || {
            handled(&self.runtime)
        })
        .await;
        assert!(
            reached,
            "{module} never handled block {number}: {:?}",
            self.runtime.positions(module)
        );
    }

    /// Waits until `module` has recorded a block event for `number` (or panics after 30 s).
    pub async fn wait_for_block(&self, module: &str, number: u64) {
        let found = wait_until(std::time::Duration::from_secs(30), || {
            self.recorded(module)
                .iter()
                .any(|e| e["kind"] == "block" && e["number"] == number)
        })
        .await;
        assert!(
            found,
            "{module} never recorded block {number}: {:#?}",
            self.recorded(module)
        );
    }
}

/// Polls `condition` every 25 ms until it holds (true) or `timeout` passes (false).
pub async fn wait_until(timeout: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The `(block, log index)` a `recorder` module holds as canonical in `ledger`.
pub fn live_logs_in(ledger: &Ledger, module: &str) -> std::collections::BTreeSet<(u64, u64)> {
    live_keys(
        ledger
            .list(
                &ModuleName::new(module).expect("valid module name"),
                "live/",
            )
            .expect("reading the store"),
    )
}

fn live_keys(entries: Vec<(String, Vec<u8>)>) -> std::collections::BTreeSet<(u64, u64)> {
    entries
        .into_iter()
        .map(|(key, _)| {
            let mut parts = key.trim_start_matches("live/").split('/');
            let block = parts.next().unwrap().parse().unwrap();
            let index = parts.next().unwrap().parse().unwrap();
            (block, index)
        })
        .collect()
}

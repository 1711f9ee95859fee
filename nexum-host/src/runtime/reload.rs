//! Reload: a new set of modules applied in place, while the others keep delivering.
//!
//! Everything is checked first — the engine settings are unchanged, every manifest is
//! valid, every component loads and is admitted, every new subscription's start is
//! committed — and only then does anything change, so a refused reload leaves the running
//! engine exactly as it was. Then, by module name:
//!
//! - **unchanged** (same component digest, manifest and limits): untouched, not paused;
//! - **upgraded**: its sources stop, its worker finishes the call in flight (which
//!   commits), the new version starts (`init`) and resumes from the committed cursors. Its
//!   store is kept. A subscription that is unchanged keeps its cursor; a new or changed one
//!   starts like any new subscription (its `start_block`, or the head now); the records of
//!   one that was dropped stay, so putting it back resumes where it stopped;
//! - **added**: started like at boot; **removed**: stopped, its store and records kept.

use super::Parts;
use crate::boot::{BootError, load_all};
use crate::module::LoadedModule;
use crate::sources::fix_start_positions;
use nexum_core::{
    BootPlan, ConfigError, EngineConfig, ModuleManifest, ModuleSpec, Subscription, Supervisor,
};
use std::collections::BTreeSet;

/// What a reload changed, by module name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadReport {
    /// Modules started that were not running.
    pub added: Vec<String>,
    /// Modules restarted on a new component, manifest or limits.
    pub upgraded: Vec<String>,
    /// Modules stopped (their stores are kept).
    pub removed: Vec<String>,
    /// Modules left running untouched.
    pub unchanged: Vec<String>,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |names: &[String]| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        write!(
            f,
            "added: {}; upgraded: {}; removed: {}; unchanged: {}",
            list(&self.added),
            list(&self.upgraded),
            list(&self.removed),
            list(&self.unchanged)
        )
    }
}

/// Why a reload was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Settings outside `[[modules]]` changed; they apply at the next start.
    #[error(
        "reload refused, nothing changed: {file}: {settings} changed; engine settings apply only at a restart"
    )]
    EngineSettings {
        /// The engine config file.
        file: String,
        /// The sections or fields that differ.
        settings: String,
    },
    /// The engine config or a manifest is invalid.
    #[error("reload refused, nothing changed: {0}")]
    Config(#[from] ConfigError),
    /// A module could not be loaded, admitted or wired, or a start position not fixed.
    #[error("reload refused, nothing changed: {0}")]
    Modules(#[from] BootError),
    /// A module's component could not be fetched from its source, or is not the pinned one.
    #[error("reload refused, nothing changed: {0}")]
    Fetch(#[from] crate::content::FetchError),
    /// The runtime was built in code, so there is no file to re-read.
    #[error("reload refused: this runtime was not started from an engine.toml file")]
    NoConfigFile,
    /// Nodes sharing a store do not reload yet.
    #[error(
        "reload refused: nodes sharing a store ([engine] store) do not reload yet; restart them one at a time (their modules move to the others meanwhile)"
    )]
    Cluster,
    /// The runtime is shutting down.
    #[error("reload refused: the engine is shutting down")]
    ShuttingDown,
}

impl Parts {
    /// Re-reads the engine.toml the runtime started from, then [`Parts::reload`].
    pub(super) async fn reload_config_file(&self) -> Result<ReloadReport, ReloadError> {
        let file = {
            let wiring = self.wiring.lock().await;
            wiring
                .config
                .file
                .clone()
                .ok_or(ReloadError::NoConfigFile)?
        };
        let config = EngineConfig::load(&file)?;
        let (plan, warnings) = BootPlan::from_config(&config)?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        self.reload(plan).await
    }

    /// Applies `plan`; see the module docs.
    pub(super) async fn reload(&self, plan: BootPlan) -> Result<ReloadReport, ReloadError> {
        // A changed source is fetched first, into the content store only (nothing runs
        // from it until it loads), and before taking the lock that a stop needs: a slow
        // registry holds up this reload, never a shutdown.
        crate::content::fetch_sources(&plan.config).await?;
        let mut wiring = self.wiring.lock().await;
        if *self.stop_shared.borrow() {
            return Err(ReloadError::ShuttingDown);
        }
        if self.cluster.is_some() {
            return Err(ReloadError::Cluster);
        }
        let BootPlan { config, modules } = plan;
        let changed = engine_settings_changed(&wiring.config, &config);
        if !changed.is_empty() {
            return Err(ReloadError::EngineSettings {
                file: config.source_name().display().to_string(),
                settings: changed.join(", "),
            });
        }

        let names: BTreeSet<String> = modules.iter().map(spec_name).collect();
        // Compiling a changed component takes a while: not on the workers that deliver.
        let loaded = {
            let (engine, config) = (wiring.engine.clone(), config.clone());
            tokio::task::spawn_blocking(move || load_all(&engine, &config, modules))
                .await
                .expect("loading modules does not panic")?
        };
        let mut report = ReloadReport::default();
        let (mut upgrades, mut additions) = (Vec::new(), Vec::new());
        for module in loaded {
            let name = module.manifest.name.to_string();
            match self.supervisor.prepared(&name) {
                Some(running) if same_module(&running.module, &module) => {
                    report.unchanged.push(name)
                }
                Some(_) => {
                    upgrades.push(wiring.prepare(module)?);
                    report.upgraded.push(name);
                }
                None => {
                    additions.push(wiring.prepare(module)?);
                    report.added.push(name);
                }
            }
        }
        report.removed = self
            .supervisor
            .modules()
            .into_iter()
            .map(|m| m.name)
            .filter(|name| !names.contains(name))
            .collect();
        let starting: Vec<(&str, &[Subscription])> = upgrades
            .iter()
            .chain(&additions)
            .map(|p| {
                let manifest = &p.module.manifest;
                (manifest.name.as_str(), manifest.subscriptions.as_slice())
            })
            .collect();
        fix_start_positions(&starting, self.chains.clients(), &self.ledger)
            .await
            .map_err(BootError::from)?;

        // Apply: each module changes alone; the others keep delivering.
        for name in &report.removed {
            self.retire(name).await;
            tracing::info!(module = name, "reload: module removed (its store is kept)");
        }
        for prepared in upgrades {
            let name = prepared.module.manifest.name.to_string();
            let digest = prepared.module.digest;
            self.relaunch(prepared).await;
            tracing::info!(module = name, component = %digest, "reload: module upgraded; it resumes from its cursors");
        }
        for prepared in additions {
            let name = prepared.module.manifest.name.to_string();
            self.launch(prepared).await;
            tracing::info!(module = name, "reload: module added");
        }
        wiring.config = config;
        tracing::info!("reload applied: {report}");
        warn_if_modules_outnumber_workers(names.len());
        Ok(report)
    }
}

/// Says so when a reload leaves more modules than a multi-threaded runtime has workers, on
/// a machine with cores to spare and no worker count chosen (`TOKIO_WORKER_THREADS`):
/// `nexum run` starts no more workers than the modules it starts with, and a runtime cannot
/// add workers. The modules still take turns (each guest yields every slice of fuel), but
/// no longer run side by side. An embedder's single-threaded runtime is its own choice.
fn warn_if_modules_outnumber_workers(modules: usize) {
    let runtime = tokio::runtime::Handle::current();
    if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread
        || std::env::var_os("TOKIO_WORKER_THREADS").is_some()
    {
        return;
    }
    let workers = runtime.metrics().num_workers();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if modules > workers && workers < cores {
        tracing::warn!(
            "{modules} modules now share {workers} runtime worker(s) on {cores} cores: they take turns instead of running side by side until a restart (`nexum run` starts one worker per module, at most one per core; TOKIO_WORKER_THREADS sets it)"
        );
    }
}

fn spec_name(spec: &ModuleSpec) -> String {
    spec.manifest.name.to_string()
}

/// Whether a reload would run `new` exactly as `running` runs: same bytes, same manifest
/// content (wherever the file now lives), same limits.
fn same_module(running: &LoadedModule, new: &LoadedModule) -> bool {
    let content = |m: &ModuleManifest| ModuleManifest {
        file: Default::default(),
        ..m.clone()
    };
    running.digest == new.digest
        && content(&running.manifest) == content(&new.manifest)
        && running.limits == new.limits
}

/// The engine settings (everything but `[[modules]]`) that differ, named as in engine.toml.
fn engine_settings_changed(running: &EngineConfig, new: &EngineConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("engine.state_dir", running.state_dir != new.state_dir);
    check("engine.log_level", running.log_level != new.log_level);
    check("engine.log_format", running.log_format != new.log_format);
    check("engine.durability", running.durability != new.durability);
    check(
        "engine.durability_window_ms",
        running.durability_window_ms != new.durability_window_ms,
    );
    check(
        "engine.metrics_addr",
        running.metrics_addr != new.metrics_addr,
    );
    check("engine.dry_run", running.dry_run != new.dry_run);
    check("engine.compiler", running.compiler != new.compiler);
    check("engine.store", running.store != new.store);
    check("[cluster]", running.cluster != new.cluster);
    check("[admin]", running.admin != new.admin);
    check("[chains]", running.chains != new.chains);
    check("[limits]", running.limits != new.limits);
    check("[supervision]", running.supervision != new.supervision);
    check("[delivery]", running.delivery != new.delivery);
    changed
}

#[cfg(test)]
mod tests {
    use super::engine_settings_changed;
    use nexum_core::EngineConfig;
    use std::path::Path;

    fn parse(text: &str) -> EngineConfig {
        EngineConfig::parse(Path::new("engine.toml"), text, &|_| None).expect("valid config")
    }

    #[test]
    fn only_module_lists_may_change() {
        let base = "[engine]\nstate_dir = \"s\"\n[chains.1]\nrpc_url = \"http://127.0.0.1:8545\"\n";
        let running = parse(base);
        let with_module = parse(&format!("{base}[[modules]]\npath = \"m.wasm\"\n"));
        assert!(engine_settings_changed(&running, &with_module).is_empty());

        let other_node = parse(&base.replace("8545", "8546"));
        assert_eq!(engine_settings_changed(&running, &other_node), ["[chains]"]);
        let several = parse(&format!(
            "{}[limits]\nfuel_per_event = 5\n",
            base.replace("\"s\"", "\"t\"\nlog_level = \"debug\"")
        ));
        assert_eq!(
            engine_settings_changed(&running, &several),
            ["engine.state_dir", "engine.log_level", "[limits]"]
        );
        // Moving the state to a shared store, or joining a cluster, takes a restart.
        let shared = parse(&base.replace(
            "\"s\"\n",
            "\"s\"\nstore = \"postgres://nexum@127.0.0.1/nexum\"\n[cluster]\nnode = \"a\"\n",
        ));
        assert_eq!(
            engine_settings_changed(&running, &shared),
            ["engine.store", "[cluster]"]
        );
        // Compiled code comes from the engine built at boot: another compiler takes a restart.
        let other = match running.compiler {
            nexum_core::Compiler::Winch => "cranelift",
            nexum_core::Compiler::Cranelift => "winch",
        };
        let other_compiler =
            parse(&base.replace("\"s\"\n", &format!("\"s\"\ncompiler = \"{other}\"\n")));
        assert_eq!(
            engine_settings_changed(&running, &other_compiler),
            ["engine.compiler"]
        );
        // Pins are module settings: they may change, and turning them on is checked then.
        let pinned = parse(&format!(
            "{}[[modules]]\npath = \"m.wasm\"\nsha256 = \"sha256:{}\"\n",
            base.replace("\"s\"\n", "\"s\"\nrequire_pins = true\n"),
            "ab".repeat(32)
        ));
        assert!(engine_settings_changed(&running, &pinned).is_empty());
    }
}

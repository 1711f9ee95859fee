//! Turning a [`BootPlan`] into running parts, in the order that keeps every promise:
//!
//! 1. the wasm engine, linking every capability and the embedder's extensions;
//! 2. every module loaded and checked before anything starts (nothing starts half-loaded);
//! 3. the state directory and the [`Ledger`];
//! 4. the chains, connected and checked;
//! 5. where each subscription starts, committed before any module runs `init`;
//! 6. each capability configured, then scoped to each module;
//! 7. the supervisor, which starts the modules.
//!
//! When any step fails nothing is left behind: a state directory boot created (with its
//! compile cache) is removed again, and the store's lock is released. Content fetched into
//! it stays, and so does a store another process holds or created meanwhile
//! (`remove_state_dir`).

use crate::capabilities::{EngineContext, Factors, ModuleContext};
use crate::chain::{ChainPool, ConnectError};
use crate::cluster::{Cluster, default_node_name};
use crate::engine::{EngineError, WasmEngine};
use crate::extension::HostExtension;
use crate::ledger::{HeldLeases, Ledger, PostgresStorage, StoreError};
use crate::module::{ComponentCache, LoadError, LoadedModule, load};
use crate::observers::Observers;
use crate::sources::{StartError, fix_start_positions};
use crate::supervisor::{HostSupervisor, Prepared};
use nexum_core::{BootPlan, ConfigError, EngineConfig, Subscription};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where compiled components are cached, inside the state directory.
const COMPILE_CACHE_DIR: &str = "compile-cache";

/// Why the runtime could not boot.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A module (or the engine config) was refused; nothing was started.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The state directory could not be created.
    #[error("state directory {dir}: cannot create it: {reason}")]
    StateDir {
        /// The directory from `engine.state_dir`.
        dir: String,
        /// Why.
        reason: String,
    },
    /// The state directory could not be opened.
    #[error("state directory {dir}: {error}")]
    Store {
        /// The directory from `engine.state_dir`.
        dir: String,
        /// The store's error.
        error: StoreError,
    },
    /// The shared store (`[engine] store`) could not be opened.
    #[error("shared store {store}: {error}")]
    SharedStore {
        /// The store, shown without credentials.
        store: String,
        /// The store's error.
        error: StoreError,
    },
    /// A module's component could not be fetched from its source, or is not the pinned one.
    #[error(transparent)]
    Fetch(#[from] crate::content::FetchError),
    /// The wasm engine could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A chain could not be connected, or serves the wrong chain.
    #[error(transparent)]
    Chain(#[from] ConnectError),
    /// Where subscriptions start could not be decided and committed.
    #[error(transparent)]
    Start(#[from] StartError),
}

/// What boot produces: the supervisor and what the sources and operators need beside it.
pub(crate) struct Booted {
    pub supervisor: HostSupervisor,
    pub chains: Arc<ChainPool>,
    pub ledger: Ledger,
    /// What a reload needs to load and wire more modules the same way.
    pub wiring: Wiring,
    /// On a shared store: the cluster, holding every module until its lease comes here
    /// (the supervisor then starts with none).
    pub cluster: Option<Cluster>,
}

/// The engine-wide parts modules are loaded and wired with, kept for reloads.
pub(crate) struct Wiring {
    pub engine: Arc<WasmEngine>,
    pub factors: Factors,
    pub config: EngineConfig,
}

impl Wiring {
    /// Gives `module` what it may reach.
    pub fn prepare(&self, module: Arc<LoadedModule>) -> Result<Prepared, BootError> {
        let capabilities = self.factors.for_module(&ModuleContext {
            manifest: &module.manifest,
            limits: &module.limits,
        })?;
        Ok(Prepared {
            module,
            capabilities,
        })
    }
}

/// Boots `plan` with embedder `extensions` linked in; see the module docs.
pub(crate) async fn boot(
    plan: BootPlan,
    extensions: Vec<Arc<dyn HostExtension>>,
    observers: &Observers,
) -> Result<Booted, BootError> {
    let state_dir = plan.config.state_dir.clone();
    let fresh = holds_no_state(&state_dir);
    let mut created_store = false;
    let booted = assemble(plan, extensions, observers, &mut created_store).await;
    // A store another process holds is that process's, however fresh it looked.
    let held_elsewhere = matches!(
        &booted,
        Err(BootError::Store {
            error: StoreError::Locked,
            ..
        })
    );
    if booted.is_err() && fresh && !held_elsewhere {
        remove_state_dir(&state_dir, created_store);
    }
    booted
}

async fn assemble(
    plan: BootPlan,
    extensions: Vec<Arc<dyn HostExtension>>,
    observers: &Observers,
    created_store: &mut bool,
) -> Result<Booted, BootError> {
    let BootPlan { config, modules } = plan;
    crate::content::fetch_sources(&config).await?;
    let engine = Arc::new(WasmEngine::new(&extensions, config.compiler)?);
    let loaded = load_all(&engine, &config, modules)?;

    std::fs::create_dir_all(&config.state_dir).map_err(|e| BootError::StateDir {
        dir: config.state_dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let (ledger, shared) = open_ledger(&config, created_store).await?;
    let chains = Arc::new(ChainPool::connect(&config.chains).await?);

    // On a shared store, where a module starts is fixed by the node that takes its lease.
    if shared.is_none() {
        let subscribed: Vec<(&str, &[Subscription])> = loaded
            .iter()
            .map(|m| {
                (
                    m.manifest.name.as_str(),
                    m.manifest.subscriptions.as_slice(),
                )
            })
            .collect();
        fix_start_positions(&subscribed, chains.clients(), &ledger).await?;
    }

    let factors = Factors::configure(&EngineContext {
        config: &config,
        ledger: &ledger,
        chains: &chains,
        observers,
    })?;
    let wiring = Wiring {
        engine,
        factors,
        config,
    };
    let mut prepared = loaded
        .into_iter()
        .map(|module| wiring.prepare(module))
        .collect::<Result<Vec<_>, _>>()?;
    let cluster = shared.map(|(db, held)| {
        Cluster::new(
            db,
            held,
            &wiring.config.cluster,
            std::mem::take(&mut prepared),
        )
    });
    let supervisor = HostSupervisor::start(
        wiring.engine.clone(),
        prepared,
        wiring.config.supervision,
        observers,
    )
    .await;
    Ok(Booted {
        supervisor,
        chains,
        ledger,
        wiring,
        cluster,
    })
}

/// The shared database and the leases this node holds, on a cluster.
type Shared = (Arc<PostgresStorage>, Arc<HeldLeases>);

/// The ledger: embedded in the state directory, or in the shared database of `[engine]
/// store` (whose schema is created or migrated here). `created_store`: whether this opened
/// the embedded store by creating it.
async fn open_ledger(
    config: &EngineConfig,
    created_store: &mut bool,
) -> Result<(Ledger, Option<Shared>), BootError> {
    match &config.store {
        None => {
            let existed = crate::ledger::holds_store(&config.state_dir);
            let opened = Ledger::open_durable(
                &config.state_dir,
                config.durability,
                std::time::Duration::from_millis(config.durability_window_ms),
            );
            // Even when the open failed part-way: what it made is this start's to remove.
            *created_store = !existed;
            let ledger = opened.map_err(|error| BootError::Store {
                dir: config.state_dir.display().to_string(),
                error,
            })?;
            Ok((ledger, None))
        }
        Some(store) => {
            let node = config
                .cluster
                .node
                .clone()
                .unwrap_or_else(default_node_name);
            let held = Arc::new(HeldLeases::default());
            // The database client blocks: not on the async workers.
            let (url, name, leases) = (
                store.connection_string().to_string(),
                node.clone(),
                held.clone(),
            );
            let opened =
                tokio::task::spawn_blocking(move || PostgresStorage::open(&url, &name, leases))
                    .await
                    .unwrap_or_else(|e| Err(StoreError::Backend(format!("database task: {e}"))));
            let db = Arc::new(opened.map_err(|error| BootError::SharedStore {
                store: store.to_string(),
                error,
            })?);
            tracing::info!(node, store = %store, "sharing the store with other nodes");
            Ok((Ledger::shared(db.clone()), Some((db, held))))
        }
    }
}

/// Loads every module before any starts (compile cache, admission under the engine's
/// limits); names must be unique in an engine.
pub(crate) fn load_all(
    engine: &WasmEngine,
    config: &EngineConfig,
    specs: Vec<nexum_core::ModuleSpec>,
) -> Result<Vec<Arc<LoadedModule>>, BootError> {
    let mut loaded = Vec::with_capacity(specs.len());
    let mut compiled = ComponentCache::on_disk(config.state_dir.join(COMPILE_CACHE_DIR));
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for spec in specs {
        let manifest = &spec.manifest;
        if let Some(first) = seen.get(manifest.name.as_str()) {
            return Err(LoadError::from(ConfigError::new(
                &manifest.file,
                "module.name",
                format!(
                    "`{}` is already the name of the module in {}; names must be unique in an engine",
                    manifest.name,
                    first.display()
                ),
            ))
            .into());
        }
        seen.insert(manifest.name.to_string(), manifest.file.clone());
        // Checked here, not only when engine.toml is read: modules also come from
        // embedders' builders and from plans handed to `Runtime::reload`.
        if config.require_pins && spec.pin.is_none() {
            return Err(LoadError::from(ConfigError::new(
                config.source_name(),
                "engine.require_pins",
                format!(
                    "module `{}` has no sha256 pin from the engine's config (embedders: pass a ModuleSpec with its pin to RuntimeBuilder::module)",
                    manifest.name
                ),
            ))
            .into());
        }
        let limits = config.admit(manifest).map_err(LoadError::from)?;
        loaded.push(Arc::new(load(engine, &mut compiled, spec, limits)?));
    }
    compiled.prune();
    compiled.release_compile_memory();
    Ok(loaded)
}

/// Removes what a failed start created in `dir`; fetched content stays. Everything stays
/// when the store there is another process's: one that holds its lock, or one that created
/// it while this start ran (both started on the same empty directory) — unless
/// `created_store`, this start created it — and when the lock cannot be taken at all. The
/// lock is held until the end and its file removed last: a process starting meanwhile
/// finds the store locked (one that opened the lock's file just before it went may still
/// take it afterwards, and finds an empty folder).
fn remove_state_dir(dir: &Path, created_store: bool) {
    let lock = match crate::ledger::lock_store(dir) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            tracing::warn!(dir = %dir.display(), "the failed start leaves the state directory alone: another process holds the store in it");
            return;
        }
        // Nothing was left there.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "the failed start leaves the state directory alone: its store's lock cannot be taken");
            return;
        }
    };
    if !created_store && crate::ledger::holds_store(dir) {
        tracing::warn!(dir = %dir.display(), "the failed start leaves the state directory alone: another process created the store in it meanwhile");
        return;
    }
    let (content, lock_file) = (
        dir.join(nexum_core::source::CONTENT_DIR),
        dir.join(crate::ledger::STORE_LOCK),
    );
    // Every entry is tried; what is already gone is not a failure.
    let remove = |path: &Path, is_dir: bool| {
        let removed = if is_dir {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        removed.or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        })
    };
    let mut failed = None;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path == content || path == lock_file {
            continue;
        }
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if let Err(e) = remove(&path, is_dir) {
            failed.get_or_insert(e);
        }
    }
    if failed.is_none()
        && let Err(e) = remove(&lock_file, false)
    {
        failed = Some(e);
    }
    drop(lock);
    if let Some(e) = failed {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove the state directory of a failed start");
        return;
    }
    // The folder itself, when nothing is left in it (something that appeared since the
    // lock's file went is another process's).
    if !content.is_dir() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Whether `dir` holds no state yet: absent, empty, or only a content store filled ahead
/// of the first start.
fn holds_no_state(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .all(|e| e.file_name() == nexum_core::source::CONTENT_DIR),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::{holds_no_state, remove_state_dir};
    use crate::ledger::Ledger;
    use std::path::Path;

    /// A state directory with a store another process created (and closed).
    fn with_a_store(state: &Path) {
        Ledger::open(state).unwrap();
        assert!(crate::ledger::holds_store(state));
    }

    #[test]
    fn a_failed_start_leaves_a_store_another_process_holds() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::write(state.join("0.jnl"), b"").unwrap();
        let held = crate::ledger::lock_store(&state).unwrap().unwrap();
        remove_state_dir(&state, false);
        assert!(state.join("0.jnl").exists());
        drop(held);
        remove_state_dir(&state, false);
        assert!(!state.exists());
    }

    #[test]
    fn a_failed_start_leaves_a_store_another_process_created_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        with_a_store(&state);
        remove_state_dir(&state, false);
        assert!(crate::ledger::holds_store(&state));
        // The store this start created itself goes.
        remove_state_dir(&state, true);
        assert!(!state.exists());
    }

    #[test]
    fn a_failed_start_keeps_fetched_content_and_leaves_no_state_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        with_a_store(&state);
        std::fs::create_dir(state.join("compile-cache")).unwrap();
        std::fs::create_dir(state.join(nexum_core::source::CONTENT_DIR)).unwrap();
        std::fs::write(state.join(nexum_core::source::CONTENT_DIR).join("c"), b"c").unwrap();
        remove_state_dir(&state, true);
        assert!(holds_no_state(&state));
        assert!(
            state
                .join(nexum_core::source::CONTENT_DIR)
                .join("c")
                .exists()
        );
    }

    #[test]
    fn a_failed_start_that_left_no_directory_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        remove_state_dir(&state, true);
        assert!(!state.exists());
        assert!(dir.path().exists());
    }
}

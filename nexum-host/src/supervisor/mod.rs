//! [`HostSupervisor`]: the wasmtime implementation of `nexum_core::Supervisor`.
//!
//! Each module gets a bounded queue and a worker task of its own ([`worker`]), so modules
//! run concurrently and each sees its events one at a time, in dispatch order. A trap or
//! limit hit in one module is confined to that module's worker.

mod worker;

use crate::capabilities::chain::ChainAccess;
use crate::capabilities::cow_api::{CowAccess, Orderbooks};
use crate::capabilities::local_store::{StateStore, StoreError};
use crate::capabilities::logging::ModuleLogger;
use crate::chain::{ChainPool, ConnectError};
use crate::engine::{EngineError, WasmEngine};
use crate::extension::HostExtension;
use crate::module::{ComponentCache, LoadError, load};
use crate::sources::{StartError, fix_start_positions};
use crate::state::ModuleCapabilities;
use nexum_core::{
    BootPlan, ConfigError, Delivery, DispatchError, LogLine, ModuleEvent, ModuleInfo, ModuleStatus,
    ModuleTotals, Outcome, ShutdownSummary, Supervisor,
};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use worker::{Job, Worker, WorkerShared};

/// Why the supervisor could not boot.
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
    #[error("state directory {dir}: {source}")]
    Store {
        /// The directory from `engine.state_dir`.
        dir: String,
        /// The store's error.
        source: StoreError,
    },
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

/// A running module as the supervisor sees it.
struct ModuleHandle {
    info: ModuleInfo,
    queue: mpsc::Sender<Job>,
    shared: Arc<WorkerShared>,
    capabilities: ModuleCapabilities,
}

impl ModuleHandle {
    fn totals(&self) -> ModuleTotals {
        ModuleTotals {
            name: self.info.name.clone(),
            handled: self.shared.handled.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            trapped: self.shared.trapped.load(Ordering::Relaxed),
        }
    }
}

/// Runs modules as wasmtime components; see the module docs.
pub struct HostSupervisor {
    modules: Vec<ModuleHandle>,
    by_name: BTreeMap<String, usize>,
    store: StateStore,
    chains: Arc<ChainPool>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    log_lines: broadcast::Sender<LogLine>,
    lifecycle: broadcast::Sender<ModuleEvent>,
}

/// Where compiled components are cached, inside the state directory.
const COMPILE_CACHE_DIR: &str = "compile-cache";

/// Notifications buffered per subscriber before a slow one starts missing some.
const LINE_BUFFER: usize = 1024;

/// Where module log lines and lifecycle changes are published; create it before boot to
/// see the changes boot itself makes (modules starting, or failing `init`).
#[derive(Clone)]
pub(crate) struct Observers {
    log_lines: broadcast::Sender<LogLine>,
    lifecycle: broadcast::Sender<ModuleEvent>,
}

impl Default for Observers {
    fn default() -> Self {
        Self {
            log_lines: broadcast::channel(LINE_BUFFER).0,
            lifecycle: broadcast::channel(LINE_BUFFER).0,
        }
    }
}

impl Observers {
    /// Module log lines from now on.
    pub fn log_lines(&self) -> broadcast::Receiver<LogLine> {
        self.log_lines.subscribe()
    }

    /// Module lifecycle changes from now on.
    pub fn lifecycle(&self) -> broadcast::Receiver<ModuleEvent> {
        self.lifecycle.subscribe()
    }
}

impl HostSupervisor {
    /// The state database, for read-only views (`nexum store`, embedders).
    pub fn state(&self) -> &StateStore {
        &self.store
    }

    /// Every module's log lines, as they are written (lines a slow receiver misses are
    /// dropped for it alone).
    pub fn log_lines(&self) -> broadcast::Receiver<LogLine> {
        self.log_lines.subscribe()
    }

    /// Every module's lifecycle changes (started, failed, trapped, restarting, skipped,
    /// quarantined, stopped).
    pub fn lifecycle(&self) -> broadcast::Receiver<ModuleEvent> {
        self.lifecycle.subscribe()
    }

    /// Per module: events waiting in its queue, and instance restarts so far.
    pub(crate) fn queue_and_restarts(&self) -> Vec<(String, usize, u64)> {
        self.modules
            .iter()
            .map(|m| {
                let waiting = m.queue.max_capacity() - m.queue.capacity();
                (
                    m.info.name.clone(),
                    waiting,
                    m.shared.restarts.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// The chain clients, shared with the chain event sources.
    pub(crate) fn chains(&self) -> &Arc<ChainPool> {
        &self.chains
    }

    /// Whether a module of this name is loaded.
    pub fn has_module(&self, module: &str) -> bool {
        self.by_name.contains_key(module)
    }

    fn handle(&self, module: &str) -> Result<&ModuleHandle, DispatchError> {
        self.by_name
            .get(module)
            .map(|i| &self.modules[*i])
            .ok_or_else(|| DispatchError::UnknownModule(module.to_string()))
    }
}

impl HostSupervisor {
    /// Boots `plan` with embedder `extensions` linked in (see [`crate::extension`]). When
    /// boot fails, nothing is left behind: a state directory it created (with its compile
    /// cache) is removed again, and the store's lock is released.
    pub(crate) async fn boot_with(
        plan: BootPlan,
        extensions: Vec<Arc<dyn HostExtension>>,
        observers: Observers,
    ) -> Result<Self, BootError> {
        let state_dir = plan.config.state_dir.clone();
        let fresh = !state_dir.exists();
        let booted = Self::assemble(plan, extensions, observers).await;
        if booted.is_err() && fresh {
            remove_state_dir(&state_dir);
        }
        booted
    }

    async fn assemble(
        plan: BootPlan,
        extensions: Vec<Arc<dyn HostExtension>>,
        observers: Observers,
    ) -> Result<Self, BootError> {
        let Observers {
            log_lines,
            lifecycle,
        } = observers;
        let BootPlan {
            config,
            modules: specs,
        } = plan;
        let engine = Arc::new(WasmEngine::new(&extensions)?);

        // Load everything before starting anything: nothing starts half-loaded.
        let mut loaded = Vec::with_capacity(specs.len());
        let mut compiled = ComponentCache::on_disk(config.state_dir.join(COMPILE_CACHE_DIR));
        let mut seen: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
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
            let limits = config.admit(manifest).map_err(LoadError::from)?;
            loaded.push(Arc::new(load(&engine, &mut compiled, spec, limits)?));
        }
        compiled.prune();

        std::fs::create_dir_all(&config.state_dir).map_err(|e| BootError::StateDir {
            dir: config.state_dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let store = StateStore::open(&config.state_dir).map_err(|source| BootError::Store {
            dir: config.state_dir.display().to_string(),
            source,
        })?;

        let chains = Arc::new(ChainPool::connect(&config.chains).await?);
        // Where each subscription starts is committed before any module runs `init` or is
        // announced started: from then on nothing the chain does is lost.
        let subscribed: Vec<(&str, &[nexum_core::Subscription])> = loaded
            .iter()
            .map(|m| {
                (
                    m.manifest.name.as_str(),
                    m.manifest.subscriptions.as_slice(),
                )
            })
            .collect();
        fix_start_positions(&subscribed, &chains, &store).await?;
        let orderbooks = Arc::new(Orderbooks::configure(&config));

        let (shutdown, _) = watch::channel(false);
        let mut modules = Vec::with_capacity(loaded.len());
        let mut tasks = Vec::with_capacity(loaded.len());
        for module in loaded {
            let manifest = &module.manifest;
            let module_store = store
                .module(&manifest.name, &module.limits)
                .map_err(|source| BootError::Store {
                    dir: config.state_dir.display().to_string(),
                    source,
                })?;
            let shared = Arc::new(WorkerShared::default());
            let info = ModuleInfo {
                name: manifest.name.to_string(),
                version: manifest.version.clone(),
                capabilities: manifest.capabilities.clone(),
                subscriptions: manifest.subscriptions.clone(),
                limits: module.limits,
                component: module.digest.clone(),
                status: ModuleStatus::Running,
                store_bytes: 0,
                log_lines_dropped: 0,
                totals: ModuleTotals::default(),
            };
            let capabilities = ModuleCapabilities {
                logger: ModuleLogger::new(
                    manifest.name.as_str(),
                    &module.limits,
                    log_lines.clone(),
                ),
                store: module_store,
                chain: ChainAccess::new(chains.clone(), manifest.chains(), &module.limits),
                cow: CowAccess::new(
                    orderbooks.clone(),
                    manifest.name.as_str(),
                    manifest.chains(),
                    &module.limits,
                ),
            };
            let mut worker = Worker::new(
                engine.clone(),
                module.clone(),
                capabilities.clone(),
                config.supervision,
                shared.clone(),
                lifecycle.clone(),
            );
            // A failed init is reported (and quarantines the module); the others still start.
            let _ = worker.boot().await;
            let (queue, receiver) = mpsc::channel(config.supervision.queue_capacity);
            tasks.push(tokio::spawn(worker.run(receiver, shutdown.subscribe())));
            modules.push(ModuleHandle {
                info,
                queue,
                shared,
                capabilities,
            });
        }

        let by_name = modules
            .iter()
            .enumerate()
            .map(|(i, m)| (m.info.name.clone(), i))
            .collect();
        Ok(Self {
            modules,
            by_name,
            store,
            chains,
            shutdown,
            tasks: Mutex::new(tasks),
            log_lines,
            lifecycle,
        })
    }
}

/// Removes a state directory a failed start created.
pub(crate) fn remove_state_dir(dir: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove the state directory of a failed start");
    }
}

impl Supervisor for HostSupervisor {
    type BootError = BootError;

    async fn boot(plan: BootPlan) -> Result<Self, BootError> {
        Self::boot_with(plan, Vec::new(), Observers::default()).await
    }

    fn modules(&self) -> Vec<ModuleInfo> {
        self.modules
            .iter()
            .map(|m| ModuleInfo {
                status: m.shared.status(),
                store_bytes: m.capabilities.store.used_bytes(),
                log_lines_dropped: m.capabilities.logger.dropped(),
                totals: m.totals(),
                ..m.info.clone()
            })
            .collect()
    }

    fn try_dispatch(&self, module: &str, delivery: Delivery) -> Result<(), DispatchError> {
        let handle = self.handle(module)?;
        if *self.shutdown.borrow() || handle.shared.status() == ModuleStatus::Quarantined {
            return Err(DispatchError::Closed);
        }
        handle
            .queue
            .try_send(Job {
                delivery,
                reply: None,
                queued_at: std::time::Instant::now(),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => DispatchError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => DispatchError::Closed,
            })
    }

    async fn dispatch(&self, module: &str, delivery: Delivery) -> Result<Outcome, DispatchError> {
        let handle = self.handle(module)?;
        if *self.shutdown.borrow() || handle.shared.status() == ModuleStatus::Quarantined {
            return Err(DispatchError::Closed);
        }
        let (reply, outcome) = oneshot::channel();
        handle
            .queue
            .send(Job {
                delivery,
                reply: Some(reply),
                queued_at: std::time::Instant::now(),
            })
            .await
            .map_err(|_| DispatchError::Closed)?;
        outcome.await.map_err(|_| DispatchError::Closed)
    }

    async fn shutdown(&self) -> ShutdownSummary {
        self.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a module worker ended abnormally");
            }
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "flushing the store at shutdown failed");
        }
        ShutdownSummary {
            modules: self.modules.iter().map(ModuleHandle::totals).collect(),
        }
    }
}

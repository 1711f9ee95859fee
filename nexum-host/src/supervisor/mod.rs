//! [`HostSupervisor`]: the wasmtime implementation of `nexum_core::Supervisor`. It only
//! supervises: what modules may reach is wired by `boot`, where events come from by
//! `sources`.
//!
//! Each module gets a bounded queue and a worker task of its own ([`worker`]), so modules
//! run concurrently and each sees its events one at a time, in dispatch order. A trap or
//! limit hit in one module is confined to that module's worker.

mod worker;

use crate::capabilities::ModuleCapabilities;
use crate::engine::WasmEngine;
use crate::ledger::Bookkeeping;
use crate::module::LoadedModule;
use crate::observers::Observers;
use nexum_core::{
    Delivery, DispatchError, ModuleInfo, ModuleStatus, ModuleTotals, Outcome, ShutdownSummary,
    Supervision, Supervisor,
};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use worker::{Job, Worker, WorkerShared};

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
pub(crate) struct HostSupervisor {
    modules: Vec<ModuleHandle>,
    by_name: BTreeMap<String, usize>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl HostSupervisor {
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

/// A module ready to run: loaded, and given what it may reach.
pub(crate) struct Prepared {
    pub module: Arc<LoadedModule>,
    pub capabilities: ModuleCapabilities,
}

impl HostSupervisor {
    /// Starts a worker per module (running `init`; a module whose `init` fails is
    /// quarantined and the others still start), under `policy`.
    pub(crate) async fn start(
        engine: Arc<WasmEngine>,
        modules: Vec<Prepared>,
        policy: Supervision,
        observers: &Observers,
    ) -> Self {
        let lifecycle = observers.lifecycle_sender();
        let (shutdown, _) = watch::channel(false);
        let mut handles = Vec::with_capacity(modules.len());
        let mut tasks = Vec::with_capacity(modules.len());
        for Prepared {
            module,
            capabilities,
        } in modules
        {
            let manifest = &module.manifest;
            let shared = Arc::new(WorkerShared::default());
            let info = ModuleInfo {
                name: manifest.name.to_string(),
                version: manifest.version.clone(),
                capabilities: manifest.capabilities.clone(),
                subscriptions: manifest.subscriptions.clone(),
                limits: module.limits,
                component: module.digest,
                status: ModuleStatus::Running,
                store_bytes: 0,
                log_lines_dropped: 0,
                totals: ModuleTotals::default(),
            };
            let mut worker = Worker::new(
                engine.clone(),
                module.clone(),
                capabilities.clone(),
                policy,
                shared.clone(),
                lifecycle.clone(),
            );
            // A failed init is reported (and quarantines the module); the others still start.
            let _ = worker.boot().await;
            let (queue, receiver) = mpsc::channel(policy.queue_capacity);
            tasks.push(tokio::spawn(worker.run(receiver, shutdown.subscribe())));
            handles.push(ModuleHandle {
                info,
                queue,
                shared,
                capabilities,
            });
        }
        let by_name = handles
            .iter()
            .enumerate()
            .map(|(i, m)| (m.info.name.clone(), i))
            .collect();
        Self {
            modules: handles,
            by_name,
            shutdown,
            tasks: Mutex::new(tasks),
        }
    }
}

impl Supervisor for HostSupervisor {
    type Bookkeeping = Bookkeeping;

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

    fn try_dispatch(
        &self,
        module: &str,
        delivery: Delivery<Bookkeeping>,
    ) -> Result<(), DispatchError> {
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

    async fn dispatch(
        &self,
        module: &str,
        delivery: Delivery<Bookkeeping>,
    ) -> Result<Outcome, DispatchError> {
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
        ShutdownSummary {
            modules: self.modules.iter().map(ModuleHandle::totals).collect(),
        }
    }
}

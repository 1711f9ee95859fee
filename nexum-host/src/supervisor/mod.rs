//! [`HostSupervisor`]: the wasmtime implementation of `nexum_core::Supervisor`. It only
//! supervises: what modules may reach is wired by `boot`, where events come from by
//! `sources`.
//!
//! Each module gets a bounded queue and a worker task of its own ([`worker`]), so modules
//! run concurrently and each sees its events one at a time, in dispatch order. A trap or
//! limit hit in one module is confined to that module's worker.
//!
//! The set of modules can change while the others run (a reload adds, removes and
//! upgrades modules; an operator restarts a quarantined one): each module has its own stop
//! signal, and the table of modules is swapped under a short lock that no call holds.

mod worker;

use crate::capabilities::ModuleCapabilities;
use crate::engine::WasmEngine;
use crate::ledger::Bookkeeping;
use crate::module::LoadedModule;
use crate::observers::Observers;
use nexum_core::{
    Delivery, DispatchError, ModuleEvent, ModuleInfo, ModuleStatus, ModuleTotals, Outcome,
    ShutdownSummary, Supervision, Supervisor,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use worker::{Job, Worker, WorkerShared};

/// A running module as the supervisor sees it.
struct ModuleHandle {
    info: ModuleInfo,
    prepared: Prepared,
    queue: mpsc::Sender<Job>,
    shared: Arc<WorkerShared>,
    /// Stops this module's worker alone.
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
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

    /// Stops the worker after its current call (whose commit completes) and waits for it.
    /// Events still queued are not run; their sources deliver them again from the cursor.
    async fn stop(&self) {
        self.stop.send_replace(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(module = self.info.name, error = %e, "a module worker ended abnormally");
        }
    }
}

/// The modules, in order, with an index by name.
#[derive(Default)]
struct Table {
    modules: Vec<Arc<ModuleHandle>>,
    by_name: BTreeMap<String, usize>,
}

impl Table {
    fn reindex(&mut self) {
        self.by_name = self
            .modules
            .iter()
            .enumerate()
            .map(|(i, m)| (m.info.name.clone(), i))
            .collect();
    }

    fn get(&self, name: &str) -> Option<&Arc<ModuleHandle>> {
        self.by_name.get(name).map(|i| &self.modules[*i])
    }
}

/// Runs modules as wasmtime components; see the module docs.
pub(crate) struct HostSupervisor {
    engine: Arc<WasmEngine>,
    policy: Supervision,
    lifecycle: broadcast::Sender<ModuleEvent>,
    table: RwLock<Table>,
    /// Set once by `shutdown`, read at every dispatch: an atomic, so that a dispatch takes
    /// no lock to read it.
    shutting_down: AtomicBool,
    /// Modules starting together run their `init`s side by side, this many at a time.
    starts: Arc<tokio::sync::Semaphore>,
}

/// How many modules run their `init` at once: twice the cores, four at least. Side by side
/// so that a slow `init` holds up no other; not all at once, or `init`s computing on a few
/// cores would each take many times longer, against their own deadlines.
fn concurrent_starts() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).max(4)
}

/// A module ready to run: loaded, and given what it may reach.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub module: Arc<LoadedModule>,
    pub capabilities: ModuleCapabilities,
}

impl HostSupervisor {
    /// Starts a worker per module (running `init`; a module whose `init` fails is
    /// quarantined and the others still start), under `policy`. The modules start side by
    /// side: a slow `init` holds up no other module's.
    pub(crate) async fn start(
        engine: Arc<WasmEngine>,
        modules: Vec<Prepared>,
        policy: Supervision,
        observers: &Observers,
    ) -> Self {
        let supervisor = Self {
            engine,
            policy,
            lifecycle: observers.lifecycle_sender(),
            table: RwLock::default(),
            shutting_down: AtomicBool::new(false),
            starts: Arc::new(tokio::sync::Semaphore::new(concurrent_starts())),
        };
        supervisor.add_all(modules).await;
        supervisor
    }

    /// Starts each of `modules` side by side (running `init`; see [`concurrent_starts`])
    /// and puts them last, in order; a module of the same name is replaced in place instead
    /// (stop it first).
    pub(crate) async fn add_all(&self, modules: Vec<Prepared>) {
        let launches = modules.into_iter().map(|prepared| self.launch(prepared));
        let handles = futures::future::join_all(launches).await;
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        for handle in handles.into_iter().map(Arc::new) {
            match table.by_name.get(&handle.info.name) {
                Some(&i) => table.modules[i] = handle,
                None => table.modules.push(handle),
            }
            table.reindex();
        }
    }

    /// Starts `prepared` (running `init`) and puts it last; a module of the same name is
    /// replaced in place instead (call [`HostSupervisor::stop_module`] on it first).
    pub(crate) async fn add(&self, prepared: Prepared) {
        self.add_all(vec![prepared]).await;
    }

    /// Stops a module's worker (its current call finishes and commits) and takes it out.
    /// Returns whether it was there.
    pub(crate) async fn remove(&self, name: &str) -> bool {
        let Some(handle) = self.stop_module(name).await else {
            return false;
        };
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        table.modules.retain(|m| !Arc::ptr_eq(m, &handle));
        table.reindex();
        true
    }

    /// Stops a module's worker and waits for it, leaving it in the table (it takes no
    /// more events until replaced by [`HostSupervisor::add`]).
    async fn stop_module(&self, name: &str) -> Option<Arc<ModuleHandle>> {
        let handle = self.find(name)?;
        handle.stop().await;
        Some(handle)
    }

    /// Replaces a module with `prepared`: the old worker finishes its current call, then the
    /// new one starts (running `init`). Other modules are not touched.
    pub(crate) async fn replace(&self, prepared: Prepared) {
        self.stop_module(prepared.module.manifest.name.as_str())
            .await;
        self.add(prepared).await;
    }

    /// What a module was started from (to start it again with a fresh instance: how an
    /// operator takes a module out of quarantine).
    pub(crate) fn prepared(&self, name: &str) -> Option<Prepared> {
        self.find(name).map(|h| h.prepared.clone())
    }

    fn find(&self, name: &str) -> Option<Arc<ModuleHandle>> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        table.get(name).cloned()
    }

    /// A worker for `prepared`, booted and running.
    async fn launch(&self, prepared: Prepared) -> ModuleHandle {
        let module = &prepared.module;
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
        let worker = Worker::new(
            self.engine.clone(),
            module.clone(),
            prepared.capabilities.clone(),
            self.policy,
            shared.clone(),
            self.lifecycle.clone(),
        );
        // A failed init is reported (and quarantines the module); the others still start.
        // In a task of its own, so that modules started together run their `init`s on
        // every runtime thread, and one that computes until its deadline holds up no other.
        let starts = self.starts.clone();
        let booted = tokio::spawn(async move {
            // Its deadline starts once its turn has come.
            let _turn = starts.acquire_owned().await;
            let mut worker = worker;
            let _ = worker.boot().await;
            worker
        });
        let worker = match booted.await {
            Ok(worker) => worker,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a module's start was cancelled: {e}"),
        };
        let (queue, receiver) = mpsc::channel(self.policy.queue_capacity);
        let (stop, stopped) = watch::channel(self.shutting_down.load(Ordering::Acquire));
        let task = tokio::spawn(worker.run(receiver, stopped));
        ModuleHandle {
            info,
            prepared,
            queue,
            shared,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Every module, in order.
    fn handles(&self) -> Vec<Arc<ModuleHandle>> {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .modules
            .clone()
    }

    /// Per module: events waiting in its queue, and instance restarts so far.
    pub(crate) fn queue_and_restarts(&self) -> Vec<(String, usize, u64)> {
        self.handles()
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
        self.find(module).is_some()
    }

    /// Puts `delivery` in `module`'s queue when it has room (the usual case), or hands back
    /// the wait for room to await first. Not async, so that neither the handle nor the job
    /// is part of the caller's future.
    fn enqueue(
        &self,
        module: &str,
        delivery: Delivery<Bookkeeping>,
    ) -> Result<(Handled, Option<WaitForRoom>), DispatchError> {
        let handle = self.accepting(module)?;
        let (reply, outcome) = oneshot::channel();
        let job = Job {
            delivery,
            reply: Some(reply),
            queued_at: std::time::Instant::now(),
        };
        // With room in the queue the job goes in at once; waiting for room takes the
        // queue's turn like any sender, behind those already waiting (a queue with waiters
        // has no room to give).
        match handle.queue.try_send(job) {
            Ok(()) => Ok((Handled(outcome), None)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(DispatchError::Closed),
            Err(mpsc::error::TrySendError::Full(job)) => Ok((
                Handled(outcome),
                Some(wait_for_room(handle.queue.clone(), job)),
            )),
        }
    }

    /// `module`'s handle, if it takes events: loaded, not quarantined, and the engine not
    /// shutting down.
    fn accepting(&self, module: &str) -> Result<Arc<ModuleHandle>, DispatchError> {
        let handle = self.handle(module)?;
        if self.shutting_down.load(Ordering::Acquire)
            || handle.shared.status() == ModuleStatus::Quarantined
        {
            return Err(DispatchError::Closed);
        }
        Ok(handle)
    }

    fn handle(&self, module: &str) -> Result<Arc<ModuleHandle>, DispatchError> {
        self.find(module)
            .ok_or_else(|| DispatchError::UnknownModule(module.to_string()))
    }
}

/// The outcome of a queued delivery, once its module handled it: [`DispatchError::Closed`]
/// when the worker stopped without an outcome for it (before it came to it, or while it
/// waited for a retry or restart, or because another node runs the module now).
pub(crate) struct Handled(oneshot::Receiver<Outcome>);

impl std::future::Future for Handled {
    type Output = Result<Outcome, DispatchError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.map_err(|_| DispatchError::Closed))
    }
}

/// A wait for room in a full queue, after which the job is in it. Boxed: tokio's send
/// future holds the job and a wait on the queue's semaphore, and inline it would make every
/// dispatch's future (moved whole on its way to the runtime) that much larger, for a wait
/// that is rare. `Sync`, as the send future is: an embedder may hold a dispatch in a
/// structure shared between threads.
type WaitForRoom =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), DispatchError>> + Send + Sync>>;

fn wait_for_room(queue: mpsc::Sender<Job>, job: Job) -> WaitForRoom {
    Box::pin(async move { queue.send(job).await.map_err(|_| DispatchError::Closed) })
}

impl Supervisor for HostSupervisor {
    type Bookkeeping = Bookkeeping;

    fn modules(&self) -> Vec<ModuleInfo> {
        self.handles()
            .iter()
            .map(|m| ModuleInfo {
                status: m.shared.status(),
                store_bytes: m.prepared.capabilities.store.used_bytes(),
                log_lines_dropped: m.prepared.capabilities.logger.dropped(),
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
        self.accepting(module)?
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

    type Handled = Handled;

    async fn queue(
        &self,
        module: &str,
        delivery: Delivery<Bookkeeping>,
    ) -> Result<Handled, DispatchError> {
        let (handled, room) = self.enqueue(module, delivery)?;
        if let Some(room) = room {
            room.await?;
        }
        Ok(handled)
    }

    /// As the trait's own, but without a `queue` future nested inside a second one: the
    /// future stays small, and it is moved whole on its way to the runtime.
    async fn dispatch(
        &self,
        module: &str,
        delivery: Delivery<Bookkeeping>,
    ) -> Result<Outcome, DispatchError> {
        let (handled, room) = self.enqueue(module, delivery)?;
        if let Some(room) = room {
            room.await?;
        }
        handled.await
    }

    async fn shutdown(&self) -> ShutdownSummary {
        self.shutting_down.store(true, Ordering::Release);
        let handles = self.handles();
        for handle in &handles {
            handle.stop.send_replace(true);
        }
        for handle in &handles {
            handle.stop().await;
        }
        ShutdownSummary {
            modules: handles.iter().map(|m| m.totals()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HostSupervisor;
    use crate::ledger::Bookkeeping;
    use nexum_core::{Delivery, Supervisor};

    /// Not run: it compiles only while the futures of a dispatch are `Send + Sync`, as an
    /// embedder holding one across its own awaits, or in a structure its threads share,
    /// needs them to be.
    #[allow(dead_code)]
    fn dispatch_futures_are_send_and_sync(
        supervisor: &HostSupervisor,
        runtime: &crate::Runtime,
        delivery: Delivery<Bookkeeping>,
    ) {
        fn shareable<T: Send + Sync>(_: T) {}
        let event = delivery.event.clone();
        shareable(supervisor.queue("module", delivery.clone()));
        shareable(supervisor.dispatch("module", delivery));
        shareable(runtime.dispatch("module", event.clone()));
        shareable(runtime.broadcast(event));
    }
}

//! [`Runtime`]: a supervisor plus the sources that feed it, started and stopped together,
//! and changed while it runs.
//!
//! - this file: the handle embedders hold, starting, reading, dispatching, shutting down;
//! - `module_sources`: each module's own sources (chain drivers, cron timers), started and
//!   stopped with it;
//! - `reload`: applying a new set of modules in place;
//! - `operate`: what an operator does to one module (restart it, replay its dead letters);
//! - `placement`: on a shared store, keeping this node's share of the modules running.

mod module_sources;
mod operate;
mod placement;
mod reload;

pub use operate::ReplayReport;
pub use reload::{ReloadError, ReloadReport};

use crate::boot::{BootError, Wiring, boot};
use crate::builder::RuntimeBuilder;
use crate::chain::{ChainClient, ChainPool};
use crate::cluster::Cluster;
use crate::extension::HostExtension;
use crate::ledger::{BackupError, BackupSummary, Ledger, Position};
use crate::observers::Observers;
use crate::sources::{ChainSources, DeliveredHeights};
use crate::supervisor::HostSupervisor;
use crate::telemetry;
use module_sources::ModuleSources;
use nexum_core::{
    BootPlan, ChainId, ChainLogs, ConfigError, Delivery, DispatchError, EngineConfig, Event,
    LogLine, ModuleEvent, ModuleInfo, ModuleName, Outcome, ShutdownSummary, Subscription,
    Supervisor,
};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The supervisor refused to boot.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The metrics or admin endpoint could not listen.
    #[error(transparent)]
    Metrics(#[from] crate::telemetry::ServeError),
    /// A configuration or manifest was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state could not be read.
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    /// No module has this name (or it is not a valid name).
    #[error("no module named {0:?}")]
    UnknownModule(String),
    /// The runtime is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
}

/// The part of `event` that `subscription` asks for, if any.
fn routed(subscription: &Subscription, event: &Event) -> Option<Event> {
    match (subscription, event) {
        (Subscription::Block { chain_id }, Event::Block(block)) if *chain_id == block.chain_id => {
            Some(event.clone())
        }
        (Subscription::Log(log), Event::ChainLogs(logs)) if log.chain_id == logs.chain_id => {
            let matching: Vec<_> = logs
                .logs
                .iter()
                .filter(|l| log.filter.matches(l))
                .cloned()
                .collect();
            (!matching.is_empty()).then(|| {
                Event::ChainLogs(ChainLogs {
                    chain_id: logs.chain_id,
                    logs: matching,
                })
            })
        }
        (Subscription::Cron(schedule), Event::Tick(tick)) if schedule.as_str() == tick.schedule => {
            Some(event.clone())
        }
        _ => None,
    }
}

/// A running engine: modules booted, sources delivering.
pub struct Runtime {
    parts: Arc<Parts>,
    metrics_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
}

/// Everything a running engine is made of, shared with its admin endpoint.
pub(crate) struct Parts {
    supervisor: Arc<HostSupervisor>,
    chains: Arc<ChainPool>,
    ledger: Ledger,
    observers: Observers,
    heights: DeliveredHeights,
    chain_sources: ChainSources<ChainClient>,
    module_sources: ModuleSources,
    /// Stops what is shared by all modules: followers, feeds, the HTTP endpoints.
    stop_shared: watch::Sender<bool>,
    shared_tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Changes to the set of modules (reloads, restarts, shutdown) happen one at a time.
    wiring: tokio::sync::Mutex<Wiring>,
    /// On a shared store: this node's part in the cluster.
    cluster: Option<Arc<Cluster>>,
    /// Replays of dead letters happen one at a time.
    replaying: tokio::sync::Mutex<()>,
    /// The engine's ceiling on a call's deadline (`limits.event_timeout_ms`): no module,
    /// now or after a reload, may run a call longer.
    longest_call: std::time::Duration,
}

impl Runtime {
    /// A builder: engine config, modules from files or bytes, extensions.
    pub fn builder(config: EngineConfig) -> RuntimeBuilder {
        RuntimeBuilder::new(config)
    }

    /// Boots every module of `plan`, with embedder extensions linked in and observers
    /// attached, and starts the sources their subscriptions need ([`RuntimeBuilder::start`]).
    pub(crate) async fn start_with(
        plan: BootPlan,
        extensions: Vec<Arc<dyn HostExtension>>,
        observers: Observers,
    ) -> Result<Self, RuntimeError> {
        let delivery = plan.config.delivery;
        let longest_call = std::time::Duration::from_millis(plan.config.limits.event_timeout_ms);
        let metrics_addr = plan.config.metrics_addr;
        let admin = plan.config.admin.clone();
        let booted = boot(plan, extensions, &observers).await?;
        let supervisor = Arc::new(booted.supervisor);
        let (chains, ledger) = (booted.chains, booted.ledger);
        let (stop_shared, stop) = watch::channel(false);
        // The metrics recorder goes in before any source runs: a value recorded before it
        // (a chain's first head) would be lost.
        let mut shared_tasks = Vec::new();
        let heights = DeliveredHeights::default();
        let metrics_addr = match metrics_addr {
            Some(addr) => {
                let store = booted.cluster.as_ref().map(|c| c.health.clone());
                let (bound, task) = telemetry::serve(
                    addr,
                    supervisor.clone(),
                    chains.clone(),
                    heights.clone(),
                    store,
                    stop.clone(),
                )
                .await?;
                shared_tasks.push(task);
                Some(bound)
            }
            None => None,
        };
        let chain_sources = ChainSources::new(
            chains.clients().clone(),
            ledger.clone(),
            heights.clone(),
            delivery,
            stop.clone(),
        );
        let parts = Arc::new(Parts {
            supervisor,
            chains,
            ledger,
            observers,
            heights,
            chain_sources,
            module_sources: ModuleSources::default(),
            stop_shared,
            shared_tasks: Mutex::new(shared_tasks),
            wiring: tokio::sync::Mutex::new(booted.wiring),
            cluster: booted.cluster.map(Arc::new),
            replaying: tokio::sync::Mutex::new(()),
            longest_call,
        });
        for module in parts.supervisor.modules() {
            parts.start_sources(&module);
        }
        let admin_addr = match admin {
            Some(admin) => {
                let (bound, task) = crate::admin::serve(admin, parts.clone(), stop.clone()).await?;
                parts
                    .shared_tasks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(task);
                Some(bound)
            }
            None => None,
        };
        // Last, so a start that fails above leaves no lease taken.
        if let Some(cluster) = &parts.cluster {
            // Renewals go on until the modules have stopped (`leave_cluster`), not with
            // the shared tasks: a module draining at shutdown still holds its lease.
            cluster.start_keeper().map_err(|e| {
                crate::StoreError::Backend(format!("starting the lease keeper: {e}"))
            })?;
            let placement = tokio::spawn(parts.clone().run_placement(stop.clone()));
            parts
                .shared_tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(placement);
        }
        Ok(Self {
            parts,
            metrics_addr,
            admin_addr,
        })
    }

    /// The counters of `chain` (subscriptions, requests), if it is configured.
    pub fn chain_status(&self, chain: nexum_core::ChainId) -> Option<crate::chain::ChainStatus> {
        self.parts.chains.status(chain)
    }

    /// Where `/metrics` and `/healthz` are served, when `metrics_addr` is set (the bound
    /// address: port 0 in the config picks a free port).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Where the admin API is served, when `[admin]` is set (the bound address).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The runtime's health, as `/healthz` reports it.
    pub fn health(&self) -> telemetry::Health {
        telemetry::Health::of(
            &self.parts.supervisor,
            &self.parts.chains,
            self.parts.store_health(),
        )
    }

    /// The loaded modules: status, subscriptions, limits, counters.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        self.parts.supervisor.modules()
    }

    /// The longest [`Runtime::shutdown`] can take once it has begun: the calls in flight
    /// finish within their deadline (at most the engine's `limits.event_timeout_ms`, which
    /// modules may only lower, and a reload cannot change), then the store is flushed and
    /// leases handed back. A service manager's stop timeout must exceed it, or a stop
    /// becomes a kill and calls in flight run again after the restart. A stop that arrives
    /// during a reload waits for the reload first.
    pub fn shutdown_drain(&self) -> std::time::Duration {
        self.parts.longest_call + SHUTDOWN_MARGIN
    }

    /// Queues `event` (produced by the embedding service) for `module` without waiting;
    /// fails with [`DispatchError::QueueFull`] rather than wait for room.
    pub fn try_dispatch(&self, module: &str, event: Event) -> Result<(), DispatchError> {
        self.parts
            .supervisor
            .try_dispatch(module, Delivery::new(None, event))
    }

    /// Hands `event` (produced by the embedding service) to `module` and waits for the
    /// outcome. It is queued behind the module's other events, like any event.
    pub async fn dispatch(&self, module: &str, event: Event) -> Result<Outcome, DispatchError> {
        self.parts
            .supervisor
            .dispatch(module, Delivery::new(None, event))
            .await
    }

    /// Hands `event` to every module with a subscription it matches — a block to the chain's
    /// block subscribers, logs (only the matching ones) to matching log subscriptions, a
    /// tick to subscribers of the same schedule — and waits for every outcome. Modules run
    /// it concurrently; the outcomes come in module order.
    pub async fn broadcast(&self, event: Event) -> Vec<(String, Result<Outcome, DispatchError>)> {
        let supervisor = &self.parts.supervisor;
        let mut calls = Vec::new();
        for module in supervisor.modules() {
            for (index, subscription) in module.subscriptions.iter().enumerate() {
                if let Some(event) = routed(subscription, &event) {
                    let name = module.name.clone();
                    calls.push(async move {
                        let outcome = supervisor
                            .dispatch(&name, Delivery::new(Some(index), event))
                            .await;
                        (name, outcome)
                    });
                }
            }
        }
        futures::future::join_all(calls).await
    }

    /// A loaded module's committed value of `key` (read-only).
    pub fn read(&self, module: &str, key: &str) -> Result<Option<Vec<u8>>, RuntimeError> {
        Ok(self.parts.ledger.read(&self.parts.loaded(module)?, key)?)
    }

    /// A loaded module's committed entries under `prefix`, sorted by key (read-only).
    pub fn list(&self, module: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, RuntimeError> {
        Ok(self
            .parts
            .ledger
            .list(&self.parts.loaded(module)?, prefix)?)
    }

    /// The last block of `chain` that delivery to `module` has handled in this run (every
    /// subscription of the module on that chain is past it), or `None` before the first.
    pub fn delivered_height(&self, module: &str, chain: ChainId) -> Option<u64> {
        self.parts.heights.get(module, chain)
    }

    /// Where each chain subscription of a loaded module stands, in manifest order.
    pub fn positions(&self, module: &str) -> Result<Vec<Position>, RuntimeError> {
        self.parts.positions(module)
    }

    /// The engine at a glance: each module's state, and each subscription's position and
    /// lag behind the chain (what `nexum status` and the admin API show).
    pub fn status(&self) -> Result<crate::admin::StatusReport, RuntimeError> {
        self.parts.status()
    }

    /// Module lifecycle changes from now on (started, failed, trapped, restarting, skipped,
    /// quarantined, stopped).
    pub fn lifecycle(&self) -> broadcast::Receiver<ModuleEvent> {
        self.parts.observers.lifecycle()
    }

    /// Module log lines from now on.
    pub fn log_lines(&self) -> broadcast::Receiver<LogLine> {
        self.parts.observers.log_lines()
    }

    /// Skipped events, oldest first (of one module, or of all), all at once: up to a
    /// thousand per module, each with its whole event. [`Runtime::dead_letter_page`]
    /// reads them a page at a time.
    pub fn dead_letters(
        &self,
        module: Option<&str>,
    ) -> Result<Vec<crate::DeadLetter>, RuntimeError> {
        Ok(self.parts.ledger.dead_letters(module)?)
    }

    /// A page of skipped events (of one module, or of all; by module, each oldest first)
    /// after the cursor `after`, a page's `next` (from the first when `None`): at most 100
    /// letters and about 1 MiB, as `GET /v1/dead-letters` serves them.
    pub fn dead_letter_page(
        &self,
        module: Option<&str>,
        after: Option<&str>,
    ) -> Result<crate::DeadLetterPage, RuntimeError> {
        Ok(self.parts.ledger.dead_letter_page(module, after)?)
    }

    /// Applies a new set of modules in place: see [`ReloadReport`] for what changes and
    /// [`ReloadError`] for what is refused (a refused reload changes nothing).
    pub async fn reload(&self, plan: BootPlan) -> Result<ReloadReport, ReloadError> {
        let parts = self.parts.clone();
        to_the_end(async move { parts.reload(plan).await }).await
    }

    /// Re-reads the `engine.toml` this runtime was started from (and its modules'
    /// manifests) and applies it like [`Runtime::reload`].
    pub async fn reload_config_file(&self) -> Result<ReloadReport, ReloadError> {
        self.parts.clone().reload_config_file_to_the_end().await
    }

    /// Starts a module again with a fresh instance (running `init`): how an operator takes
    /// it out of quarantine after fixing what it depends on.
    pub async fn restart_module(&self, module: &str) -> Result<(), RuntimeError> {
        self.parts.clone().restart_module_to_the_end(module).await
    }

    /// Hands a module its dead letters again, oldest first. A letter the module now handles
    /// is removed in the same commit as the module's writes; one it fails again is
    /// dead-lettered anew (with the new reason), so none is lost.
    pub async fn replay_dead_letters(&self, module: &str) -> Result<ReplayReport, RuntimeError> {
        self.parts.clone().replay_to_the_end(module).await
    }

    /// Writes a backup of the whole state (every module's store, cursors, dead letters) as
    /// of one instant to `out`, while everything keeps running; `Ledger::restore` puts it
    /// back into an empty state directory. Blocking: call it off async workers. On a
    /// shared store it refuses: PostgreSQL's own tools back that up.
    pub fn backup(&self, out: impl std::io::Write) -> Result<BackupSummary, BackupError> {
        self.parts.backup(out)
    }

    /// Stops intake (sources first), lets in-flight calls finish, flushes the store.
    pub async fn shutdown(self) -> ShutdownSummary {
        self.parts.shutdown().await
    }
}

/// What a shutdown takes beyond the calls in flight: flushing the store and, on a shared
/// store, handing the leases back (5 s at most, whatever the lease).
const SHUTDOWN_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `work` to its end even if the caller stops waiting (a dropped future, a closed
/// connection): a reload or restart abandoned half-way would leave a module stopped.
async fn to_the_end<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    match tokio::spawn(work).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => panic!("the async runtime shut down during an operator action"),
    }
}

impl Parts {
    /// [`Runtime::reload_config_file`], carried through even if the caller goes away.
    pub(crate) async fn reload_config_file_to_the_end(
        self: Arc<Self>,
    ) -> Result<ReloadReport, ReloadError> {
        to_the_end(async move { self.reload_config_file().await }).await
    }

    /// [`Runtime::restart_module`], carried through even if the caller goes away.
    pub(crate) async fn restart_module_to_the_end(
        self: Arc<Self>,
        module: &str,
    ) -> Result<(), RuntimeError> {
        let module = module.to_string();
        to_the_end(async move { self.restart_module(&module).await }).await
    }

    /// [`Runtime::replay_dead_letters`], carried through even if the caller goes away.
    pub(crate) async fn replay_to_the_end(
        self: Arc<Self>,
        module: &str,
    ) -> Result<ReplayReport, RuntimeError> {
        let module = module.to_string();
        to_the_end(async move { self.replay_dead_letters(&module).await }).await
    }

    /// The name of a module this runtime runs; any other name is most likely a typo.
    pub(crate) fn loaded(&self, module: &str) -> Result<ModuleName, RuntimeError> {
        ModuleName::new(module)
            .ok()
            .filter(|_| self.supervisor.has_module(module))
            .ok_or_else(|| RuntimeError::UnknownModule(module.to_string()))
    }

    pub(crate) fn supervisor(&self) -> &HostSupervisor {
        &self.supervisor
    }

    pub(crate) fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Whether the state lives in a store shared with other nodes.
    pub(crate) fn shares_store(&self) -> bool {
        self.cluster.is_some()
    }

    /// [`Runtime::backup`].
    pub(crate) fn backup(&self, out: impl std::io::Write) -> Result<BackupSummary, BackupError> {
        if self.shares_store() {
            return Err(BackupError::Shared);
        }
        self.ledger.backup(out)
    }

    pub(crate) fn chains(&self) -> &ChainPool {
        &self.chains
    }

    /// On a shared store: whether it answered the lease keeper's last round.
    pub(crate) fn store_health(&self) -> Option<&telemetry::StoreHealth> {
        self.cluster.as_deref().map(|c| &*c.health)
    }

    /// The chain's head as its follower knows it.
    pub(crate) fn chain_head(&self, chain: ChainId) -> Option<u64> {
        self.chain_sources.head(chain)
    }

    /// Where each chain subscription of a loaded module stands, in manifest order.
    pub(crate) fn positions(&self, module: &str) -> Result<Vec<Position>, RuntimeError> {
        let name = self.loaded(module)?;
        let info = self
            .info(module)
            .ok_or_else(|| RuntimeError::UnknownModule(module.to_string()))?;
        Ok(self.ledger.positions(&name, &info.subscriptions)?)
    }

    /// Stops intake (sources first), lets in-flight calls finish, flushes the store.
    async fn shutdown(&self) -> ShutdownSummary {
        // No reload or restart starts a module behind shutdown's back.
        let _changes = self.wiring.lock().await;
        self.stop_shared.send_replace(true);
        self.module_sources.stop_all().await;
        let mut tasks =
            std::mem::take(&mut *self.shared_tasks.lock().unwrap_or_else(|p| p.into_inner()));
        tasks.extend(self.chain_sources.take_shared_tasks());
        for task in tasks {
            let _ = task.await;
        }
        let summary = self.supervisor.shutdown().await;
        if let Err(e) = self.ledger.flush() {
            tracing::error!(error = %e, "flushing the store at shutdown failed");
        }
        self.leave_cluster().await;
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::routed;
    use alloy_primitives::{Address, B256};
    use nexum_core::{
        Block, ChainLog, ChainLogs, CronSchedule, Event, LogFilter, LogSubscription, Subscription,
        Tick,
    };

    fn log(address: u8, index: u64) -> ChainLog {
        ChainLog {
            address: Address::repeat_byte(address),
            log_index: Some(index),
            ..ChainLog::default()
        }
    }

    #[test]
    fn logs_are_narrowed_to_those_the_subscription_matches() {
        let subscription = Subscription::Log(LogSubscription {
            chain_id: 1,
            filter: LogFilter {
                addresses: vec![Address::repeat_byte(0xaa)],
                topics: Vec::new(),
            },
            start_block: None,
        });
        let event = |chain_id, logs| Event::ChainLogs(ChainLogs { chain_id, logs });
        let mixed = event(1, vec![log(0xaa, 0), log(0xbb, 1), log(0xaa, 2)]);
        assert_eq!(
            routed(&subscription, &mixed),
            Some(event(1, vec![log(0xaa, 0), log(0xaa, 2)]))
        );
        assert_eq!(routed(&subscription, &event(1, vec![log(0xbb, 0)])), None);
        assert_eq!(routed(&subscription, &event(2, vec![log(0xaa, 0)])), None);
    }

    #[test]
    fn blocks_go_by_chain_and_ticks_by_schedule() {
        let block = |chain_id| {
            Event::Block(Block {
                chain_id,
                number: 7,
                hash: B256::ZERO,
                parent_hash: B256::ZERO,
                timestamp: 0,
            })
        };
        let blocks = Subscription::Block { chain_id: 1 };
        assert_eq!(routed(&blocks, &block(1)), Some(block(1)));
        assert_eq!(routed(&blocks, &block(2)), None);

        let cron = Subscription::Cron(CronSchedule::parse("0 0 1 1 *").unwrap());
        let tick = |schedule: &str| {
            Event::Tick(Tick {
                fired_at: 0,
                schedule: schedule.to_string(),
            })
        };
        assert_eq!(routed(&cron, &tick("0 0 1 1 *")), Some(tick("0 0 1 1 *")));
        assert_eq!(routed(&cron, &tick("0 0 2 1 *")), None);
        assert_eq!(routed(&cron, &block(1)), None);
    }
}

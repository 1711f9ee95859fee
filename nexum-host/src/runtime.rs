//! [`Runtime`]: a supervisor plus the sources that feed it, started and stopped together.

use crate::boot::{BootError, boot};
use crate::builder::RuntimeBuilder;
use crate::chain::ChainPool;
use crate::extension::HostExtension;
use crate::ledger::Ledger;
use crate::ledger::SubscriptionId;
use crate::observers::Observers;
use crate::sources::{CronSource, DeliveredHeights, spawn_chain_sources};
use crate::supervisor::HostSupervisor;
use crate::telemetry;
use nexum_core::{
    BootPlan, ChainId, ChainLogs, ConfigError, Delivery, DispatchError, EngineConfig, Event,
    LogLine, ModuleEvent, ModuleInfo, ModuleName, Outcome, ShutdownSummary, Subscription,
    Supervisor,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The supervisor refused to boot.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The metrics endpoint could not listen.
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

/// Where one chain subscription of a module stands, as committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The subscription's index in the module's manifest.
    pub subscription: usize,
    /// The chain it reads.
    pub chain_id: ChainId,
    /// The last block fully handled; `None` until the first. Block subscriptions record
    /// every block; log subscriptions record the blocks they deliver, and their progress
    /// through quiet stretches at least every 64 blocks.
    pub handled_through: Option<u64>,
    /// The block delivery started at, fixed when the subscription was first seen.
    pub starts_at: Option<u64>,
}

/// A running engine: modules booted, sources delivering.
pub struct Runtime {
    supervisor: Arc<HostSupervisor>,
    chains: Arc<ChainPool>,
    ledger: Ledger,
    observers: Observers,
    stop_sources: watch::Sender<bool>,
    sources: Vec<JoinHandle<()>>,
    metrics_addr: Option<SocketAddr>,
    heights: DeliveredHeights,
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
        let metrics_addr = plan.config.metrics_addr;
        let booted = boot(plan, extensions, &observers).await?;
        let supervisor = Arc::new(booted.supervisor);
        let (chains, ledger) = (booted.chains, booted.ledger);
        let (stop_sources, stop) = watch::channel(false);
        // The metrics recorder goes in before any source runs: a value recorded before it
        // (a chain's first head) would be lost.
        let mut sources = Vec::new();
        let metrics_addr = match metrics_addr {
            Some(addr) => {
                let (bound, task) =
                    telemetry::serve(addr, supervisor.clone(), chains.clone(), stop.clone())
                        .await?;
                sources.push(task);
                Some(bound)
            }
            None => None,
        };
        let heights = DeliveredHeights::default();
        sources.extend(spawn_chain_sources(
            &supervisor,
            chains.clients(),
            &ledger,
            &heights,
            delivery,
            &stop,
        ));
        let cron = CronSource::new(&supervisor.modules());
        if !cron.is_empty() {
            sources.push(tokio::spawn(cron.run(supervisor.clone(), stop)));
        }
        Ok(Self {
            supervisor,
            chains,
            ledger,
            observers,
            stop_sources,
            sources,
            metrics_addr,
            heights,
        })
    }

    /// The counters of `chain` (subscriptions, requests), if it is configured.
    pub fn chain_status(&self, chain: nexum_core::ChainId) -> Option<crate::chain::ChainStatus> {
        self.chains.status(chain)
    }

    /// Where `/metrics` and `/healthz` are served, when `metrics_addr` is set (the bound
    /// address: port 0 in the config picks a free port).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The runtime's health, as `/healthz` reports it.
    pub fn health(&self) -> telemetry::Health {
        telemetry::Health::of(&self.supervisor, &self.chains)
    }

    /// The loaded modules: status, subscriptions, limits, counters.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        self.supervisor.modules()
    }

    /// Queues `event` (produced by the embedding service) for `module` without waiting;
    /// fails with [`DispatchError::QueueFull`] rather than wait for room.
    pub fn try_dispatch(&self, module: &str, event: Event) -> Result<(), DispatchError> {
        self.supervisor
            .try_dispatch(module, Delivery::new(None, event))
    }

    /// Hands `event` (produced by the embedding service) to `module` and waits for the
    /// outcome. It is queued behind the module's other events, like any event.
    pub async fn dispatch(&self, module: &str, event: Event) -> Result<Outcome, DispatchError> {
        self.supervisor
            .dispatch(module, Delivery::new(None, event))
            .await
    }

    /// Hands `event` to every module with a subscription it matches — a block to the chain's
    /// block subscribers, logs (only the matching ones) to matching log subscriptions, a
    /// tick to subscribers of the same schedule — and waits for every outcome. Modules run
    /// it concurrently; the outcomes come in module order.
    pub async fn broadcast(&self, event: Event) -> Vec<(String, Result<Outcome, DispatchError>)> {
        let mut calls = Vec::new();
        for module in self.supervisor.modules() {
            for (index, subscription) in module.subscriptions.iter().enumerate() {
                if let Some(event) = routed(subscription, &event) {
                    let name = module.name.clone();
                    calls.push(async move {
                        let outcome = self
                            .supervisor
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
        Ok(self.ledger.read(&self.loaded(module)?, key)?)
    }

    /// A loaded module's committed entries under `prefix`, sorted by key (read-only).
    pub fn list(&self, module: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, RuntimeError> {
        Ok(self.ledger.list(&self.loaded(module)?, prefix)?)
    }

    /// The last block of `chain` that delivery to `module` has handled in this run (every
    /// subscription of the module on that chain is past it), or `None` before the first.
    pub fn delivered_height(&self, module: &str, chain: ChainId) -> Option<u64> {
        self.heights.get(module, chain)
    }

    /// Where each chain subscription of a loaded module stands, in manifest order.
    pub fn positions(&self, module: &str) -> Result<Vec<Position>, RuntimeError> {
        let name = self.loaded(module)?;
        let info = self
            .supervisor
            .modules()
            .into_iter()
            .find(|m| m.name == module)
            .ok_or_else(|| RuntimeError::UnknownModule(module.to_string()))?;
        let ledger = &self.ledger;
        let mut positions = Vec::new();
        for (index, subscription) in info.subscriptions.iter().enumerate() {
            let (Some(key), Some(chain_id)) =
                (subscription.position_key(), subscription.chain_id())
            else {
                continue;
            };
            let id = SubscriptionId {
                module: name.to_string(),
                position: key,
            };
            positions.push(Position {
                subscription: index,
                chain_id,
                handled_through: ledger.cursor(&id)?.map(|c| c.number),
                starts_at: ledger.start(&id)?.map(|s| s.next),
            });
        }
        Ok(positions)
    }

    /// The name of a module this runtime runs; any other name is most likely a typo.
    fn loaded(&self, module: &str) -> Result<ModuleName, RuntimeError> {
        ModuleName::new(module)
            .ok()
            .filter(|_| self.supervisor.has_module(module))
            .ok_or_else(|| RuntimeError::UnknownModule(module.to_string()))
    }

    /// Module lifecycle changes from now on (started, failed, trapped, restarting, skipped,
    /// quarantined, stopped).
    pub fn lifecycle(&self) -> broadcast::Receiver<ModuleEvent> {
        self.observers.lifecycle()
    }

    /// Module log lines from now on.
    pub fn log_lines(&self) -> broadcast::Receiver<LogLine> {
        self.observers.log_lines()
    }

    /// Skipped events, oldest first (of one module, or of all).
    pub fn dead_letters(
        &self,
        module: Option<&str>,
    ) -> Result<Vec<crate::DeadLetter>, RuntimeError> {
        Ok(self.ledger.dead_letters(module)?)
    }

    /// Stops intake (sources first), lets in-flight calls finish, flushes the store.
    pub async fn shutdown(self) -> ShutdownSummary {
        self.stop_sources.send_replace(true);
        for source in self.sources {
            let _ = source.await;
        }
        let summary = self.supervisor.shutdown().await;
        if let Err(e) = self.ledger.flush() {
            tracing::error!(error = %e, "flushing the store at shutdown failed");
        }
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

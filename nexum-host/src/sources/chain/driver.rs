//! Delivering one module's chain events, block by block, in chain order.
//!
//! For each block: the `block` event (if subscribed), then one `chain-logs` event per log
//! subscription with matching logs, ordered by their first log index. The driver waits for
//! each event to be handled before the next, so a slow module holds up only itself, and
//! memory stays flat: when it falls out of the follower's window it reads from the chain.

use super::feed::LogFeed;
use super::follower::CanonicalView;
use crate::chain::wire::LogRange;
use crate::chain::{BlockRecord, ChainClient, NodeError};
use nexum_core::{ChainLogs, Delivery, DispatchError, Event, LogFilter, Supervisor};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What one of the module's subscriptions on this chain wants.
pub(crate) enum Wanted {
    Blocks,
    Logs {
        filter: LogFilter,
        /// The shared live feed, on websocket chains.
        feed: Option<Arc<LogFeed>>,
    },
}

/// One subscription of the module on this chain.
pub(crate) struct DriverSubscription {
    /// Its index in the manifest.
    pub index: usize,
    pub wanted: Wanted,
}

/// Hands one module the events of one chain.
pub(crate) struct ModuleChainDriver<S> {
    pub supervisor: Arc<S>,
    pub module: String,
    pub client: Arc<ChainClient>,
    pub view: watch::Receiver<Arc<CanonicalView>>,
    pub subscriptions: Vec<DriverSubscription>,
}

/// Why the driver stopped.
enum Halt {
    /// The module takes no more events (quarantined or shut down).
    ModuleClosed,
}

impl<S: Supervisor> ModuleChainDriver<S> {
    /// Delivers until `stop` turns true or the module stops taking events.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let chain = self.client.chain_id();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {}
            result = self.deliver_forever() => match result {
                Halt::ModuleClosed => tracing::debug!(module = self.module, chain, "module closed; chain delivery stopped"),
            },
        }
    }

    async fn deliver_forever(&mut self) -> Halt {
        let mut next = self.starting_block().await;
        loop {
            let block = self.block_at(next).await;
            let events = self.events_of(&block).await;
            for (subscription, event) in events {
                let delivery = Delivery {
                    subscription: Some(subscription),
                    event,
                };
                match self.supervisor.dispatch(&self.module, delivery).await {
                    Ok(_) => {}
                    Err(DispatchError::Closed | DispatchError::UnknownModule(_)) => {
                        return Halt::ModuleClosed;
                    }
                    Err(DispatchError::QueueFull) => unreachable!("dispatch waits for room"),
                }
            }
            next += 1;
        }
    }

    /// Where delivery starts: the current head.
    async fn starting_block(&mut self) -> u64 {
        loop {
            if let Some(tip) = self.view.borrow_and_update().tip() {
                return tip.number();
            }
            if self.view.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The canonical block at `number`, waiting for the chain to reach it.
    async fn block_at(&mut self, number: u64) -> Arc<BlockRecord> {
        loop {
            let (in_window, below_window) = {
                let view = self.view.borrow_and_update();
                (
                    view.get(number).cloned(),
                    view.oldest().is_some_and(|oldest| number < oldest),
                )
            };
            if let Some(block) = in_window {
                return block;
            }
            if below_window
                && let Some(block) = retry_node(|| self.client.block_by_number(number)).await
            {
                return Arc::new(block);
            }
            if self.view.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The events block `block` holds for this module, in delivery order.
    async fn events_of(&self, block: &BlockRecord) -> Vec<(usize, Event)> {
        let mut blocks = Vec::new();
        let mut logs = Vec::new();
        for subscription in &self.subscriptions {
            match &subscription.wanted {
                Wanted::Blocks => {
                    blocks.push((subscription.index, Event::Block(block.block.clone())))
                }
                Wanted::Logs { filter, feed } => {
                    let matching = self.logs_of(block, filter, feed.as_deref()).await;
                    let matching: Vec<_> =
                        matching.into_iter().filter(|l| filter.matches(l)).collect();
                    if let Some(first) = matching.first().and_then(|l| l.log_index) {
                        logs.push((
                            first,
                            subscription.index,
                            Event::ChainLogs(ChainLogs {
                                chain_id: block.block.chain_id,
                                logs: matching,
                            }),
                        ));
                    }
                }
            }
        }
        logs.sort_by_key(|(first, index, _)| (*first, *index));
        blocks
            .into_iter()
            .chain(logs.into_iter().map(|(_, index, event)| (index, event)))
            .collect()
    }

    async fn logs_of(
        &self,
        block: &BlockRecord,
        filter: &LogFilter,
        feed: Option<&LogFeed>,
    ) -> Vec<nexum_core::ChainLog> {
        loop {
            let result = match feed {
                Some(feed) => feed.logs_of(block, &self.view).await,
                None if !block.may_contain(filter) => Ok(Vec::new()),
                None => {
                    self.client
                        .logs(filter, LogRange::Block(block.hash()))
                        .await
                }
            };
            match result {
                Ok(mut logs) => {
                    logs.sort_by_key(|l| l.log_index);
                    return logs;
                }
                Err(e) => {
                    tracing::warn!(module = self.module, block = block.number(), error = %e, "cannot read logs; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Calls `read` until the node answers (logging failures), returning its answer.
async fn retry_node<T, F, Fut>(mut read: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, NodeError>>,
{
    let mut wait = Duration::from_millis(250);
    loop {
        match read().await {
            Ok(value) => return value,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "chain read failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

//! Delivering one module's chain events, block by block, in chain order, exactly once.
//!
//! For each block: the `block` event (if subscribed), then one `chain-logs` event per log
//! subscription with matching logs, ordered by their first log index. Each event carries
//! its engine records (cursor, delivery record), committed with the module's writes, so a
//! restart resumes right after the last handled position.
//!
//! The driver queues one block's events and waits until they are handled before it goes on
//! to the next block: a slow module holds up only itself, and memory stays flat. Queuing
//! the block's events together (the module still takes them one at a time) lets the live
//! path read a block's logs while the module handles its block event, and the driver
//! waits once per block rather than once per event. Blocks still in the follower's window come from
//! memory (the latency path); anything older is read from the chain in ranges (catch-up).
//! When blocks it handled are no longer canonical, it sends their logs again with
//! `removed = true` (newest first) and resumes from the fork point.
//!
//! - this file: the driver's state, its step loop, resuming, and handing events over;
//! - `order`: the events of one block, in order;
//! - `live`: blocks still in the follower's window;
//! - `catch_up`: blocks behind the window, read from the chain in ranges;
//! - `rewind`: noticing that handled blocks stopped being canonical, and undoing them.

mod catch_up;
mod live;
mod order;
mod rewind;

use super::feed::FeedClaim;
use super::follower::CanonicalView;
use super::progress::SubscriptionProgress;
use super::reader::ChainReader;
use crate::chain::{BloomProbe, NodeError};
use crate::ledger::{Bookkeeping, Ledger, StoreError, SubscriptionId};
use crate::telemetry::names;
use alloy_primitives::B256;
use nexum_core::{ChainLog, Delivery, DeliveryPolicy, Event, LogFilter, Outcome, Supervisor};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Blocks passed without a delivery before a subscription's cursor is saved anyway.
const PROGRESS_EVERY: u64 = 64;

/// First and longest pause before delivery resumes after the store could not be read.
const STORE_RETRY_MIN: std::time::Duration = std::time::Duration::from_millis(250);
const STORE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// The wait before delivery starts over after a store outage halted a drive that ran for
/// `ran`, the wait last time having been `last`: a drive that ran as long as the longest
/// wait met a new outage, which starts from the shortest wait again (not from wherever
/// an outage days ago left it).
fn store_retry_after(last: std::time::Duration, ran: std::time::Duration) -> std::time::Duration {
    if ran >= STORE_RETRY_MAX {
        STORE_RETRY_MIN
    } else {
        last
    }
}

/// What one of the module's subscriptions on this chain wants.
pub(crate) enum Wanted<C> {
    Blocks,
    Logs {
        filter: LogFilter,
        /// `filter` as blooms index it: a subscription without a feed reads only the
        /// blocks whose bloom may hold its logs (a feed has a probe of its own).
        probe: BloomProbe,
        /// This subscription's claim on the shared live feed, on websocket chains that
        /// cross-check logs (`cross_check_logs`).
        feed: Option<Arc<FeedClaim<C>>>,
    },
}

impl<C> Wanted<C> {
    /// A log subscription's wants, with its filter's probe made from the same filter.
    pub fn logs(filter: LogFilter, feed: Option<Arc<FeedClaim<C>>>) -> Self {
        Wanted::Logs {
            probe: BloomProbe::new(&filter),
            filter,
            feed,
        }
    }
}

// By hand: the derive would ask `C: Clone`, and only `Arc<C>` is cloned.
impl<C> Clone for Wanted<C> {
    fn clone(&self) -> Self {
        match self {
            Wanted::Blocks => Wanted::Blocks,
            Wanted::Logs {
                filter,
                probe,
                feed,
            } => Wanted::Logs {
                filter: filter.clone(),
                probe: probe.clone(),
                feed: feed.clone(),
            },
        }
    }
}

/// One subscription of the module on this chain.
pub(crate) struct DriverSubscription<C> {
    /// Its index in the manifest.
    pub index: usize,
    /// Its position key (its records' name).
    pub position: String,
    pub wanted: Wanted<C>,
}

impl<C> Clone for DriverSubscription<C> {
    fn clone(&self) -> Self {
        Self {
            index: self.index,
            position: self.position.clone(),
            wanted: self.wanted.clone(),
        }
    }
}

/// Hands one module the events of one chain.
pub(crate) struct ModuleChainDriver<S, C> {
    pub supervisor: Arc<S>,
    pub module: String,
    pub heights: super::DeliveredHeights,
    pub client: Arc<C>,
    pub view: watch::Receiver<Arc<CanonicalView>>,
    pub subscriptions: Vec<DriverSubscription<C>>,
    pub ledger: Ledger,
    pub policy: DeliveryPolicy,
}

/// Why delivery stopped.
enum Halt {
    /// The module takes no more events (quarantined, or shutting down).
    ModuleClosed,
    /// The engine's records could not be read.
    Store(StoreError),
}

/// The driver at work.
struct Driving<S: Supervisor, C> {
    supervisor: Arc<S>,
    module: String,
    heights: super::DeliveredHeights,
    client: Arc<C>,
    view: watch::Receiver<Arc<CanonicalView>>,
    ledger: Ledger,
    policy: DeliveryPolicy,
    progress: Vec<SubscriptionProgress<C>>,
    /// Hashes of recently handled blocks, to notice that they stopped being canonical.
    processed: BTreeMap<u64, B256>,
    /// Current `eth_getLogs` span (shrinks when the node refuses a range).
    span: u64,
    /// Events queued for the module and not yet known to be handled: one block's at most
    /// ([`Driving::settle`] empties it before the block counts as processed). Empty
    /// whenever the driver reads or writes the engine's records, or stops with
    /// [`Halt::Store`]: the next drive starts from those records, and must not find the
    /// worker still committing events this one queued.
    in_flight: Vec<S::Handled>,
}

impl<S, C> Clone for ModuleChainDriver<S, C> {
    fn clone(&self) -> Self {
        Self {
            supervisor: self.supervisor.clone(),
            module: self.module.clone(),
            heights: self.heights.clone(),
            client: self.client.clone(),
            view: self.view.clone(),
            subscriptions: self.subscriptions.clone(),
            ledger: self.ledger.clone(),
            policy: self.policy,
        }
    }
}

impl<S: Supervisor<Bookkeeping = Bookkeeping>, C: ChainReader> ModuleChainDriver<S, C> {
    /// Delivers until `stop` turns true or the module stops taking events. When the
    /// engine's records cannot be read (a store outage), delivery starts over from the
    /// committed records after a backoff, rather than stopping for good.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let module = self.module.clone();
        let chain = self.client.chain_id();
        let mut backoff = STORE_RETRY_MIN;
        loop {
            let started = tokio::time::Instant::now();
            let outcome = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                outcome = self.clone().drive() => outcome,
            };
            backoff = store_retry_after(backoff, started.elapsed());
            match outcome {
                Halt::ModuleClosed => {
                    tracing::debug!(module, chain, "module closed; chain delivery stopped");
                    return;
                }
                Halt::Store(error) => tracing::error!(
                    module,
                    chain,
                    %error,
                    retry_in_ms = backoff.as_millis() as u64,
                    "chain delivery paused: the engine's records are unreadable; resuming from them later"
                ),
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(STORE_RETRY_MAX);
        }
    }

    async fn drive(self) -> Halt {
        let mut driving = match Driving::resume(self).await {
            Ok(driving) => driving,
            Err(halt) => return halt,
        };
        loop {
            if let Err(halt) = driving.step().await {
                // The next drive starts from the engine's records: nothing this one queued
                // may still be on its way to them.
                debug_assert!(
                    !matches!(halt, Halt::Store(_)) || driving.in_flight.is_empty(),
                    "a store halt left events queued"
                );
                return halt;
            }
        }
    }
}

impl<S: Supervisor<Bookkeeping = Bookkeeping>, C: ChainReader> Driving<S, C> {
    /// Loads every subscription's position and decides where each starts.
    async fn resume(driver: ModuleChainDriver<S, C>) -> Result<Self, Halt> {
        let ModuleChainDriver {
            supervisor,
            module,
            heights,
            client,
            mut view,
            subscriptions,
            ledger,
            policy,
        } = driver;
        let tip = loop {
            if let Some(tip) = view.borrow_and_update().tip() {
                break tip.number();
            }
            if view.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };

        let mut progress = Vec::with_capacity(subscriptions.len());
        let mut processed = BTreeMap::new();
        for DriverSubscription {
            index,
            position,
            wanted,
        } in subscriptions
        {
            let id = SubscriptionId {
                module: module.clone(),
                position,
            };
            let sub = SubscriptionProgress::load(&ledger, id, index, wanted, policy.reorg_depth)
                .map_err(Halt::Store)?;
            if let Some(cursor) = sub.cursor {
                processed.insert(cursor.number, cursor.hash);
            }
            for (number, hash) in &sub.delivered {
                processed.insert(*number, *hash);
            }
            progress.push(sub);
        }
        let mut driving = Self {
            supervisor,
            module,
            heights,
            client,
            view,
            ledger,
            policy,
            progress,
            processed,
            span: policy.get_logs_max_blocks.min(super::ranges::FIRST_SPAN),
            in_flight: Vec::new(),
        };
        driving.cap_block_catchup(tip);
        // Where delivery stands after a restart, before any new block is handled.
        if let Some(handled) = driving.next_block().checked_sub(1) {
            driving.publish_delivered(handled);
        }
        Ok(driving)
    }

    /// One step: undo a reorg, deliver the next block from memory, catch up a range from
    /// the chain, or wait for the chain to grow.
    async fn step(&mut self) -> Result<(), Halt> {
        debug_assert!(self.in_flight.is_empty(), "a block's events left unsettled");
        let view = self.view.borrow_and_update().clone();
        let Some(tip) = view.tip().map(|t| t.number()) else {
            return self.wait_for_change().await;
        };
        self.cap_block_catchup(tip);
        if let Some(fork) = self.find_fork(&view).await {
            return self.rewind(fork).await;
        }
        let next = self.next_block();
        if next > tip {
            return self.wait_for_change().await;
        }
        if let Some(block) = view.get(next) {
            return self.deliver_live(block.clone()).await;
        }
        // Below the window (or the window is still empty below `next`): read from the chain.
        let window_start = view.oldest().unwrap_or(tip + 1);
        let to = tip
            .min(window_start.saturating_sub(1).max(next))
            .min(next + self.span - 1);
        self.catch_up(next, to).await
    }

    fn next_block(&self) -> u64 {
        self.progress
            .iter()
            .map(|s| s.next)
            .min()
            .unwrap_or(u64::MAX)
    }

    async fn wait_for_change(&mut self) -> Result<(), Halt> {
        if self.view.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    /// Hands one event to the module and waits until it is handled (or skipped).
    async fn send(
        &mut self,
        subscription: usize,
        event: Event,
        bookkeeping: Bookkeeping,
    ) -> Result<(), Halt> {
        self.queue(subscription, event, bookkeeping).await?;
        self.settle().await
    }

    /// Queues one event for the module; [`Driving::settle`] waits until it is handled.
    async fn queue(
        &mut self,
        subscription: usize,
        event: Event,
        bookkeeping: Bookkeeping,
    ) -> Result<(), Halt> {
        let delivery = Delivery {
            subscription: Some(subscription),
            event,
            bookkeeping,
        };
        let handled = self
            .supervisor
            .queue(&self.module, delivery)
            .await
            .map_err(|_| Halt::ModuleClosed)?;
        self.in_flight.push(handled);
        Ok(())
    }

    /// Waits until every queued event is handled (or skipped). The last is awaited first:
    /// the module takes them in order, so once it is answered the others are too, and the
    /// driver wakes once.
    async fn settle(&mut self) -> Result<(), Halt> {
        for handled in std::mem::take(&mut self.in_flight).into_iter().rev() {
            match handled.await {
                // Handled, or skipped as a dead letter: either way its records are committed.
                Ok(Outcome::Handled | Outcome::Failed(_)) => {}
                // The module was quarantined on this event (nothing committed, and the
                // events after it are not handled), or it stopped taking events.
                Ok(Outcome::Trapped(_)) | Err(_) => return Err(Halt::ModuleClosed),
            }
        }
        Ok(())
    }

    fn publish_delivered(&self, number: u64) {
        self.heights
            .set(&self.module, self.client.chain_id(), number);
        metrics::gauge!(
            names::CHAIN_DELIVERED,
            "chain" => self.client.chain_id().to_string(),
            "module" => self.module.clone(),
        )
        .set(number as f64);
    }

    fn mark_processed(&mut self, number: u64, hash: B256) {
        self.publish_delivered(number);
        self.processed.insert(number, hash);
        let depth = self.policy.reorg_depth;
        self.processed.retain(|n, _| n + depth > number);
    }

    /// Saves the cursors of subscriptions that went a while without a delivery (or every
    /// pending one, with `all`), so a restart does not re-scan those blocks.
    fn save_idle_progress(&mut self, number: u64, hash: B256, all: bool) {
        if hash == B256::ZERO {
            return;
        }
        let entries: Vec<_> = self
            .progress
            .iter_mut()
            .filter(|s| s.unsaved > 0 && (all || s.unsaved >= PROGRESS_EVERY))
            .map(|s| s.progress(number, hash))
            .collect();
        if !entries.is_empty()
            && let Err(e) = self.ledger.record(&entries)
        {
            tracing::warn!(module = self.module, error = %e, "saving delivery progress failed; it will be retried");
        }
    }
}

fn matching(filter: &LogFilter, logs: Vec<ChainLog>) -> Vec<ChainLog> {
    let mut logs: Vec<ChainLog> = logs
        .into_iter()
        .filter(|l| !l.removed && filter.matches(l))
        .collect();
    logs.sort_by_key(|l| (l.block_number, l.log_index));
    logs
}

/// Calls `read` until the node answers (logging failures), returning its answer.
async fn retry_node<T, F, Fut>(module: &str, read: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, NodeError>>,
{
    super::retry::until_ok(read, |e, wait| {
        tracing::warn!(module, error = %e, retry_in_ms = wait.as_millis() as u64, "chain read failed; retrying")
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::{STORE_RETRY_MAX, STORE_RETRY_MIN, store_retry_after};
    use std::time::Duration;

    #[test]
    fn a_new_store_outage_after_a_healthy_spell_starts_from_the_shortest_wait() {
        // Failing again at once: the wait goes on growing from where it was.
        let grown = Duration::from_secs(8);
        assert_eq!(store_retry_after(grown, Duration::from_millis(3)), grown);
        assert_eq!(
            store_retry_after(STORE_RETRY_MAX, Duration::from_secs(29)),
            STORE_RETRY_MAX
        );
        // After delivering for as long as the longest wait: a new outage, a short wait.
        assert_eq!(
            store_retry_after(STORE_RETRY_MAX, STORE_RETRY_MAX),
            STORE_RETRY_MIN
        );
        assert_eq!(
            store_retry_after(grown, Duration::from_secs(86_400)),
            STORE_RETRY_MIN
        );
    }
}

//! Delivering one module's chain events, block by block, in chain order, exactly once.
//!
//! For each block: the `block` event (if subscribed), then one `chain-logs` event per log
//! subscription with matching logs, ordered by their first log index. Each event carries
//! its engine records (cursor, delivery record), committed with the module's writes, so a
//! restart resumes right after the last handled position.
//!
//! The driver waits for each event to be handled before the next: a slow module holds up
//! only itself, and memory stays flat. Blocks still in the follower's window come from
//! memory (the latency path); anything older is read from the chain in ranges (catch-up).
//! When blocks it handled are no longer canonical, it sends their logs again with
//! `removed = true` (newest first) and resumes from the fork point.

use super::feed::LogFeed;
use super::follower::CanonicalView;
use super::progress::SubscriptionProgress;
use super::ranges::{logs_in_range, next_span};
use crate::capabilities::local_store::StateStore;
use crate::chain::wire::LogRange;
use crate::chain::{BlockRecord, ChainClient, NodeError};
use crate::telemetry::names;
use alloy_primitives::B256;
use nexum_core::{
    ChainLog, ChainLogs, Delivery, DeliveryPolicy, EngineRecord, Event, LogFilter, Outcome,
    Supervisor,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Blocks passed without a delivery before a subscription's cursor is saved anyway.
const PROGRESS_EVERY: u64 = 64;

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
    /// Its position key (its records' name).
    pub position: String,
    pub wanted: Wanted,
}

/// Hands one module the events of one chain.
pub(crate) struct ModuleChainDriver<S> {
    pub supervisor: Arc<S>,
    pub module: String,
    pub heights: super::DeliveredHeights,
    pub client: Arc<ChainClient>,
    pub view: watch::Receiver<Arc<CanonicalView>>,
    pub subscriptions: Vec<DriverSubscription>,
    pub store: StateStore,
    pub policy: DeliveryPolicy,
}

/// Why delivery stopped.
enum Halt {
    /// The module takes no more events (quarantined, or shutting down).
    ModuleClosed,
    /// The engine's records could not be read.
    Store(String),
}

/// The driver at work.
struct Driving<S> {
    supervisor: Arc<S>,
    module: String,
    heights: super::DeliveredHeights,
    client: Arc<ChainClient>,
    view: watch::Receiver<Arc<CanonicalView>>,
    store: StateStore,
    policy: DeliveryPolicy,
    progress: Vec<SubscriptionProgress>,
    /// Hashes of recently handled blocks, to notice that they stopped being canonical.
    processed: BTreeMap<u64, B256>,
    /// Current `eth_getLogs` span (shrinks when the node refuses a range).
    span: u64,
}

impl<S: Supervisor> ModuleChainDriver<S> {
    /// Delivers until `stop` turns true or the module stops taking events.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let module = self.module.clone();
        let chain = self.client.chain_id();
        let outcome = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            outcome = self.drive() => outcome,
        };
        match outcome {
            Halt::ModuleClosed => {
                tracing::debug!(module, chain, "module closed; chain delivery stopped")
            }
            Halt::Store(reason) => tracing::error!(
                module,
                chain,
                reason,
                "chain delivery stopped: the engine's records are unreadable"
            ),
        }
    }

    async fn drive(self) -> Halt {
        let mut driving = match Driving::resume(self).await {
            Ok(driving) => driving,
            Err(halt) => return halt,
        };
        loop {
            if let Err(halt) = driving.step().await {
                return halt;
            }
        }
    }
}

impl<S: Supervisor> Driving<S> {
    /// Loads every subscription's position and decides where each starts.
    async fn resume(driver: ModuleChainDriver<S>) -> Result<Self, Halt> {
        let ModuleChainDriver {
            supervisor,
            module,
            heights,
            client,
            mut view,
            subscriptions,
            store,
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
            let sub = SubscriptionProgress::load(
                &store,
                &module,
                index,
                position,
                wanted,
                policy.reorg_depth,
            )
            .map_err(|e| Halt::Store(e.to_string()))?;
            if let Some(cursor) = sub.cursor {
                processed.insert(cursor.number, cursor.hash);
            }
            for (number, delivered) in &sub.delivered {
                processed.insert(*number, delivered.hash);
            }
            progress.push(sub);
        }
        let mut driving = Self {
            supervisor,
            module,
            heights,
            client,
            view,
            store,
            policy,
            progress,
            processed,
            span: policy.get_logs_max_blocks,
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

    /// Blocks are clocks: a block subscription more than `max_block_catchup` behind skips
    /// the oldest missed blocks, and says so.
    fn cap_block_catchup(&mut self, tip: u64) {
        let cap = self.policy.max_block_catchup;
        for sub in self.progress.iter_mut().filter(|s| s.is_blocks()) {
            let behind = (tip + 1).saturating_sub(sub.next);
            if behind > cap {
                let skipped = behind - cap;
                tracing::warn!(
                    module = self.module,
                    chain = self.client.chain_id(),
                    skipped,
                    from = sub.next,
                    resume_at = tip + 1 - cap,
                    max_block_catchup = cap,
                    "block subscription is too far behind; skipping {skipped} missed blocks"
                );
                sub.next = tip + 1 - cap;
            }
        }
    }

    /// The highest handled block that is still canonical, when a handled block is not.
    async fn find_fork(&mut self, view: &CanonicalView) -> Option<u64> {
        let (&top, &hash) = self.processed.last_key_value()?;
        if self.canonical_hash(top, view).await == Some(hash) {
            return None;
        }
        let handled: Vec<(u64, B256)> =
            self.processed.iter().rev().map(|(n, h)| (*n, *h)).collect();
        for (number, hash) in handled {
            if self.canonical_hash(number, view).await == Some(hash) {
                return Some(number);
            }
        }
        let lowest = *self.processed.keys().next().expect("not empty");
        tracing::error!(
            module = self.module,
            chain = self.client.chain_id(),
            reorg_depth = self.policy.reorg_depth,
            "reorg deeper than the tracked depth; re-reading from block {lowest}"
        );
        Some(lowest.saturating_sub(1))
    }

    async fn canonical_hash(&self, number: u64, view: &CanonicalView) -> Option<B256> {
        if let Some(block) = view.get(number) {
            return Some(block.hash());
        }
        retry_node(&self.module, || self.client.block_by_number(number))
            .await
            .map(|b| b.hash())
    }

    /// Retracts everything delivered above `fork` (logs again with `removed = true`,
    /// newest first) and moves every subscription back to the block after it.
    async fn rewind(&mut self, fork: u64) -> Result<(), Halt> {
        let chain_id = self.client.chain_id();
        let highest = self
            .progress
            .iter()
            .filter_map(|s| s.delivered.keys().next_back().copied())
            .max()
            .unwrap_or(fork);
        tracing::info!(
            module = self.module,
            chain = chain_id,
            fork_point = fork,
            "undoing deliveries above the fork point"
        );
        for number in (fork + 1..=highest).rev() {
            let below_hash = self
                .processed
                .get(&(number - 1))
                .copied()
                .unwrap_or(B256::ZERO);
            for position in 0..self.progress.len() {
                let sub = &self.progress[position];
                let Some(delivered) = sub.delivered.get(&number) else {
                    continue;
                };
                if sub.is_blocks() {
                    // New blocks at these heights are delivered again; nothing to take back.
                    continue;
                }
                let logs: Vec<ChainLog> = delivered
                    .logs
                    .iter()
                    .rev()
                    .map(|l| ChainLog {
                        removed: true,
                        ..l.clone()
                    })
                    .collect();
                let records = sub.records_for_retraction(number, below_hash);
                let index = sub.index;
                self.send(
                    index,
                    Event::ChainLogs(ChainLogs { chain_id, logs }),
                    records,
                )
                .await?;
                self.progress[position].retracted(number, below_hash);
            }
        }
        for sub in &mut self.progress {
            sub.delivered.retain(|n, _| *n <= fork);
            sub.next = sub.next.min(fork + 1);
        }
        self.processed.retain(|n, _| *n <= fork);
        Ok(())
    }

    /// Delivers `block` (in the window) to every subscription that needs it.
    async fn deliver_live(&mut self, block: Arc<BlockRecord>) -> Result<(), Halt> {
        let number = block.number();
        let mut logs_by_sub = Vec::with_capacity(self.progress.len());
        for sub in &self.progress {
            let logs = match &sub.wanted {
                Wanted::Logs { filter, feed } if sub.next <= number => {
                    self.live_logs(&block, filter, feed.as_deref()).await
                }
                _ => Vec::new(),
            };
            logs_by_sub.push(logs);
        }
        self.deliver_block(number, block.hash(), Some(&block), logs_by_sub)
            .await?;
        self.mark_processed(number, block.hash());
        self.save_idle_progress(number, block.hash(), false);
        Ok(())
    }

    async fn live_logs(
        &self,
        block: &BlockRecord,
        filter: &LogFilter,
        feed: Option<&LogFeed>,
    ) -> Vec<ChainLog> {
        let logs = retry_node(&self.module, || async {
            match feed {
                Some(feed) => feed.logs_of(block).await,
                None if !block.may_contain(filter) => Ok(Vec::new()),
                None => {
                    self.client
                        .logs(filter, LogRange::Block(block.hash()))
                        .await
                }
            }
        })
        .await;
        matching(filter, logs)
    }

    /// Reads `from..=to` from the chain and delivers it block by block.
    async fn catch_up(&mut self, from: u64, to: u64) -> Result<(), Halt> {
        tracing::debug!(
            module = self.module,
            chain = self.client.chain_id(),
            from,
            to,
            "catching up from the chain"
        );
        // Logs of every log subscription that still needs part of the range.
        let mut found = 0;
        let mut logs_by_sub: Vec<BTreeMap<u64, Vec<ChainLog>>> =
            Vec::with_capacity(self.progress.len());
        for position in 0..self.progress.len() {
            let sub = &self.progress[position];
            let mut by_block: BTreeMap<u64, Vec<ChainLog>> = BTreeMap::new();
            if let Wanted::Logs { filter, .. } = &sub.wanted
                && sub.next <= to
            {
                let start = from.max(sub.next);
                let filter = filter.clone();
                let logs = self.logs_between(&filter, start, to).await;
                found += logs.len();
                for log in matching(&filter, logs) {
                    by_block
                        .entry(log.block_number.unwrap_or_default())
                        .or_default()
                        .push(log);
                }
            }
            logs_by_sub.push(by_block);
        }
        self.span = next_span(to - from + 1, found, self.policy.get_logs_max_blocks);
        // Headers of the blocks block subscriptions need, and of the range's end.
        let mut wanted_headers: Vec<u64> = (from..=to)
            .filter(|n| self.progress.iter().any(|s| s.is_blocks() && s.next <= *n))
            .collect();
        if wanted_headers.last() != Some(&to) {
            wanted_headers.push(to);
        }
        let mut headers = BTreeMap::new();
        for number in wanted_headers {
            if let Some(block) =
                retry_node(&self.module, || self.client.block_by_number(number)).await
            {
                headers.insert(number, block);
            }
        }

        let with_logs: Vec<u64> = logs_by_sub.iter().flat_map(|m| m.keys().copied()).collect();
        let mut numbers: Vec<u64> = headers
            .keys()
            .copied()
            .filter(|n| *n != to || self.progress.iter().any(|s| s.is_blocks() && s.next <= to))
            .chain(with_logs)
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        for number in numbers {
            let logs: Vec<Vec<ChainLog>> = logs_by_sub
                .iter_mut()
                .map(|m| m.remove(&number).unwrap_or_default())
                .collect();
            let hash = headers
                .get(&number)
                .map(|h| h.hash())
                .or_else(|| logs.iter().flatten().find_map(|l| l.block_hash))
                .unwrap_or(B256::ZERO);
            let header = headers.get(&number).cloned().map(Arc::new);
            self.deliver_block(number, hash, header.as_deref(), logs)
                .await?;
            self.mark_processed(number, hash);
        }
        let end_hash = headers.get(&to).map_or(B256::ZERO, |h| h.hash());
        for sub in &mut self.progress {
            sub.passed(to);
        }
        if end_hash != B256::ZERO {
            self.mark_processed(to, end_hash);
        }
        self.save_idle_progress(to, end_hash, true);
        Ok(())
    }

    async fn logs_between(&mut self, filter: &LogFilter, from: u64, to: u64) -> Vec<ChainLog> {
        let client = self.client.clone();
        let mut wait = Duration::from_millis(250);
        loop {
            let fetch = |a: u64, b: u64| {
                let client = client.clone();
                let filter = filter.clone();
                async move {
                    client
                        .logs(&filter, LogRange::Numbers { from: a, to: b })
                        .await
                }
            };
            match logs_in_range(fetch, from, to, &mut self.span).await {
                Ok(logs) => return logs,
                Err(e) => {
                    tracing::warn!(module = self.module, from, to, error = %e, "cannot read logs; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Sends block `number`'s events: the block event first, then each subscription's logs
    /// ordered by their first log index. `logs[i]` are subscription `i`'s logs.
    async fn deliver_block(
        &mut self,
        number: u64,
        hash: B256,
        header: Option<&BlockRecord>,
        logs: Vec<Vec<ChainLog>>,
    ) -> Result<(), Halt> {
        let chain_id = self.client.chain_id();
        let mut order: Vec<(u64, usize)> = Vec::new();
        for (position, sub) in self.progress.iter().enumerate() {
            if sub.next > number {
                continue;
            }
            if sub.is_blocks() {
                if header.is_some() {
                    order.push((0, position));
                }
            } else if let Some(first) = logs[position].first() {
                order.push((1 + first.log_index.unwrap_or_default(), position));
            }
        }
        order.sort_unstable();
        let mut logs = logs;
        for (_, position) in order {
            let sub = &self.progress[position];
            let (event, delivered_logs) = if sub.is_blocks() {
                let block = header.expect("ordered only with a header").block.clone();
                (Event::Block(block), Vec::new())
            } else {
                let batch = std::mem::take(&mut logs[position]);
                (
                    Event::ChainLogs(ChainLogs {
                        chain_id,
                        logs: batch.clone(),
                    }),
                    batch,
                )
            };
            let records = sub.records_for_delivery(number, hash, &delivered_logs);
            let index = sub.index;
            self.send(index, event, records).await?;
            self.progress[position].delivered(number, hash, delivered_logs);
        }
        for sub in &mut self.progress {
            sub.passed(number);
        }
        Ok(())
    }

    /// Hands one event to the module and waits until it is handled (or skipped).
    async fn send(
        &self,
        subscription: usize,
        event: Event,
        records: Vec<EngineRecord>,
    ) -> Result<(), Halt> {
        let delivery = Delivery {
            subscription: Some(subscription),
            event,
            records,
        };
        match self.supervisor.dispatch(&self.module, delivery).await {
            // Handled, or skipped as a dead letter: either way its records are committed.
            Ok(Outcome::Handled | Outcome::Failed(_)) => Ok(()),
            // The module was quarantined on this event: nothing committed, nothing more to do.
            Ok(Outcome::Trapped(_)) | Err(_) => Err(Halt::ModuleClosed),
        }
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
        let records: Vec<EngineRecord> = self
            .progress
            .iter_mut()
            .filter(|s| s.unsaved > 0 && (all || s.unsaved >= PROGRESS_EVERY))
            .map(|s| s.progress_record(number, hash))
            .collect();
        if !records.is_empty()
            && let Err(e) = self.store.engine_commit(&records)
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
async fn retry_node<T, F, Fut>(module: &str, mut read: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, NodeError>>,
{
    let mut wait = Duration::from_millis(250);
    loop {
        match read().await {
            Ok(value) => return value,
            Err(e) => {
                tracing::warn!(module, error = %e, retry_in_ms = wait.as_millis() as u64, "chain read failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

//! A shared `logs` subscription for one filter on one websocket chain.
//!
//! Logs are buffered per block. The logs of block N are taken from the buffer once N is
//! settled: a later block's log arrived, the chain moved past N, or nothing new came for a
//! short while. A block whose bloom rules the filter out needs no waiting at all; a block
//! the bloom allows but for which the stream brought nothing is read with `eth_getLogs`
//! (that covers notifications lost while the socket was down).

use super::follower::CanonicalView;
use crate::chain::client::Next;
use crate::chain::wire::LogRange;
use crate::chain::{BlockRecord, ChainClient, NodeError};
use alloy_primitives::B256;
use nexum_core::{ChainLog, LogFilter};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// Logs received for one block.
#[derive(Debug, Default)]
struct BufferedBlock {
    number: u64,
    logs: Vec<ChainLog>,
    last_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct Buffer {
    blocks: BTreeMap<B256, BufferedBlock>,
    /// The highest block number any log arrived for.
    highest: u64,
    /// Stream data for blocks at or below this number is not trusted (notifications were
    /// missed around then).
    distrust_through: u64,
}

/// One distinct filter's live logs.
pub(crate) struct LogFeed {
    client: Arc<ChainClient>,
    filter: LogFilter,
    settle: Duration,
    depth: u64,
    buffer: Mutex<Buffer>,
    arrived: Notify,
}

impl LogFeed {
    pub fn new(client: Arc<ChainClient>, filter: LogFilter, settle: Duration, depth: u64) -> Self {
        Self {
            client,
            filter,
            settle,
            depth,
            buffer: Mutex::default(),
            arrived: Notify::new(),
        }
    }

    /// Keeps the subscription open until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {}
            _ = self.follow() => {}
        }
    }

    async fn follow(&self) {
        let chain = self.client.chain_id();
        let mut retry = Duration::from_millis(250);
        loop {
            let mut logs = match self.client.subscribe_logs(&self.filter).await {
                Ok(logs) => logs,
                Err(e) => {
                    tracing::warn!(chain, filter = %self.filter, error = %e, "cannot subscribe to logs");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            retry = Duration::from_millis(250);
            loop {
                match logs.next().await {
                    Next::Item(log) => self.receive(log),
                    Next::Missed => self.distrust_recent(),
                    Next::Closed => {
                        self.distrust_recent();
                        break;
                    }
                }
            }
        }
    }

    fn receive(&self, log: ChainLog) {
        // Retractions are worked out from the canonical chain, not from the node's
        // `removed` notifications (some nodes send none, others do: no doubles either way).
        if log.removed {
            return;
        }
        let (Some(hash), Some(number)) = (log.block_hash, log.block_number) else {
            return;
        };
        {
            let mut buffer = self.lock();
            buffer.highest = buffer.highest.max(number);
            let entry = buffer.blocks.entry(hash).or_insert_with(|| BufferedBlock {
                number,
                ..BufferedBlock::default()
            });
            entry.logs.push(log);
            entry.last_at = Some(Instant::now());
            let keep_from = buffer.highest.saturating_sub(self.depth);
            buffer.blocks.retain(|_, b| b.number >= keep_from);
        }
        self.arrived.notify_waiters();
    }

    /// After lost notifications nobody knows which recent blocks are incomplete in the
    /// buffer: the next `depth` blocks are read from the node instead.
    fn distrust_recent(&self) {
        let mut buffer = self.lock();
        buffer.distrust_through = buffer.highest.max(buffer.distrust_through) + self.depth;
        tracing::warn!(
            chain = self.client.chain_id(),
            filter = %self.filter,
            "log notifications were missed; recent blocks will be read from the chain"
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The logs of `block` matching this feed's filter, in log-index order.
    pub async fn logs_of(
        &self,
        block: &BlockRecord,
        view: &watch::Receiver<Arc<CanonicalView>>,
    ) -> Result<Vec<ChainLog>, NodeError> {
        if !block.may_contain(&self.filter) {
            return Ok(Vec::new());
        }
        let mut view = view.clone();
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let chain_moved_on = view
                .borrow_and_update()
                .tip()
                .is_some_and(|t| t.number() > block.number());
            match self.settled(block, chain_moved_on) {
                Settled::FromStream(logs) => return Ok(sorted(logs)),
                Settled::AskNode => {
                    let logs = self
                        .client
                        .logs(&self.filter, LogRange::Block(block.hash()))
                        .await?;
                    return Ok(sorted(logs));
                }
                Settled::NotYet => {}
            }
            let wait = self
                .settle
                .saturating_sub(block.seen_at.elapsed())
                .max(Duration::from_millis(5));
            tokio::select! {
                _ = arrived => {}
                _ = view.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn settled(&self, block: &BlockRecord, chain_moved_on: bool) -> Settled {
        let buffer = self.lock();
        if block.number() <= buffer.distrust_through {
            return Settled::AskNode;
        }
        let entry = buffer.blocks.get(&block.hash());
        let quiet = entry
            .and_then(|e| e.last_at)
            .is_none_or(|at| at.elapsed() >= self.settle / 2);
        let done = buffer.highest > block.number()
            || chain_moved_on
            || (block.seen_at.elapsed() >= self.settle && quiet);
        match entry {
            _ if !done => Settled::NotYet,
            Some(e) if !e.logs.is_empty() => Settled::FromStream(e.logs.clone()),
            _ => Settled::AskNode,
        }
    }
}

/// Whether a block's logs can be handed out yet, and from where.
enum Settled {
    NotYet,
    FromStream(Vec<ChainLog>),
    AskNode,
}

fn sorted(mut logs: Vec<ChainLog>) -> Vec<ChainLog> {
    logs.sort_by_key(|l| l.log_index);
    logs.dedup_by_key(|l| l.log_index);
    logs
}

//! A shared `logs` subscription for one filter on one websocket chain.
//!
//! The logs of a block are always read with `eth_getLogs` by block hash — the node's answer
//! is complete by construction. What a subscription streams is not: under load we saw a
//! block's notifications cut short while the chain moved on, so the stream serves as a
//! cross-check instead. If it announced logs that the read did not return (a load-balanced
//! provider answering from a backend that lags behind), the read is repeated, and what the
//! stream saw is kept rather than lost. The stream has a connection of its own (so a block's
//! many notifications never hold up heads or answers), so its notifications for a block may
//! still be on their way when the read returns: an empty answer for a block whose bloom says
//! it may hold matches — what a lagging backend answers — waits briefly for the stream to
//! reach that block before it is believed. A block whose bloom rules the filter out needs no
//! request at all.

use super::reader::{ChainReader, LogStream};
use crate::chain::client::Next;
use crate::chain::wire::LogRange;
use crate::chain::{BlockRecord, NodeError};
use alloy_primitives::B256;
use nexum_core::{ChainLog, LogFilter};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Times a read that missed streamed logs is repeated before the two are merged.
const REREADS: u32 = 3;
/// Pause between such reads.
const REREAD_PAUSE: Duration = Duration::from_millis(200);
/// How long an empty answer waits for the stream to reach its block.
const STREAM_GRACE: Duration = Duration::from_millis(25);

/// Logs streamed for recent blocks, by block hash.
#[derive(Debug, Default)]
struct Streamed {
    blocks: BTreeMap<B256, (u64, Vec<ChainLog>)>,
}

/// One distinct filter's subscription.
pub(crate) struct LogFeed<C> {
    client: Arc<C>,
    filter: LogFilter,
    depth: u64,
    streamed: Mutex<Streamed>,
    /// The highest block the stream has announced logs of (what is kept, and what an
    /// empty answer waits for, follow it).
    reached: watch::Sender<u64>,
}

impl<C: ChainReader> LogFeed<C> {
    pub fn new(client: Arc<C>, filter: LogFilter, depth: u64) -> Self {
        Self {
            client,
            filter,
            depth,
            streamed: Mutex::default(),
            reached: watch::Sender::new(0),
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
        loop {
            let mut logs = super::retry::until_ok(
                || self.client.subscribe_logs(&self.filter),
                |e, wait| tracing::warn!(chain, filter = %self.filter, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot subscribe to logs"),
            )
            .await;
            loop {
                match logs.next().await {
                    Next::Item(log) => self.receive(log),
                    // Missed notifications only weaken the cross-check; reads stay complete.
                    Next::Missed => {
                        tracing::debug!(chain, filter = %self.filter, "missed log notifications")
                    }
                    Next::Closed => break,
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
        self.reached.send_if_modified(|reached| {
            let moved = *reached < number;
            *reached = number.max(*reached);
            moved
        });
        let keep_from = self.reached.borrow().saturating_sub(self.depth);
        let mut streamed = self.lock();
        streamed
            .blocks
            .entry(hash)
            .or_insert_with(|| (number, Vec::new()))
            .1
            .push(log);
        streamed.blocks.retain(|_, (n, _)| *n >= keep_from);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streamed> {
        self.streamed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The logs of `block` matching this feed's filter, in log-index order.
    pub async fn logs_of(&self, block: &BlockRecord) -> Result<Vec<ChainLog>, NodeError> {
        if !block.may_contain(&self.filter) {
            return Ok(Vec::new());
        }
        let mut attempt = 0;
        loop {
            let read = self
                .client
                .logs(&self.filter, LogRange::Block(block.hash()))
                .await?;
            if read.is_empty() && attempt == 0 {
                let mut reached = self.reached.subscribe();
                let _ = tokio::time::timeout(
                    STREAM_GRACE,
                    reached.wait_for(|highest| *highest >= block.number()),
                )
                .await;
            }
            let streamed = self
                .lock()
                .blocks
                .get(&block.hash())
                .map(|(_, logs)| logs.clone())
                .unwrap_or_default();
            let missing: Vec<ChainLog> = streamed
                .into_iter()
                .filter(|s| !read.iter().any(|r| r.log_index == s.log_index))
                .collect();
            if missing.is_empty() {
                return Ok(read);
            }
            attempt += 1;
            if attempt > REREADS {
                tracing::warn!(
                    chain = self.client.chain_id(),
                    block = block.number(),
                    missing = missing.len(),
                    "the node's eth_getLogs keeps missing logs its subscription announced; keeping both"
                );
                let mut merged = read;
                merged.extend(missing);
                merged.sort_by_key(|l| l.log_index);
                return Ok(merged);
            }
            tokio::time::sleep(REREAD_PAUSE).await;
        }
    }
}

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
//!
//! For each recent block the feed keeps the indices the stream announced and, of the
//! announced logs, only those no read has returned yet (all a merge could add): a busy
//! block costs a few bytes a log for `reorg_depth` blocks, not the whole log. When a reader
//! misses logs that an earlier read returned (two modules' reads served by different
//! backends), it reads again until its answer has them.

use super::reader::{ChainReader, LogStream};
use crate::chain::client::Next;
use crate::chain::wire::LogRange;
use crate::chain::{BlockRecord, NodeError};
use alloy_primitives::B256;
use nexum_core::{ChainLog, LogFilter};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Times a read that missed streamed logs is repeated before the two are merged.
const REREADS: u32 = 3;
/// Pause between such reads.
const REREAD_PAUSE: Duration = Duration::from_millis(200);
/// How long an empty answer waits for the stream to reach its block.
const STREAM_GRACE: Duration = Duration::from_millis(25);

/// What the stream announced for recent blocks, by block hash.
#[derive(Debug, Default)]
struct Streamed {
    blocks: BTreeMap<B256, StreamedBlock>,
}

/// What the stream announced for one block.
#[derive(Debug)]
struct StreamedBlock {
    number: u64,
    /// Indices of the logs announced: what a complete read returns.
    announced: BTreeSet<Option<u64>>,
    /// Indices some read of the block returned.
    read: BTreeSet<Option<u64>>,
    /// Announced logs no read has returned: what a merge would add.
    unread: Vec<ChainLog>,
}

impl StreamedBlock {
    fn new(number: u64) -> Self {
        Self {
            number,
            announced: BTreeSet::new(),
            read: BTreeSet::new(),
            unread: Vec::new(),
        }
    }

    fn announce(&mut self, log: ChainLog) {
        if self.announced.insert(log.log_index) && !self.read.contains(&log.log_index) {
            self.unread.push(log);
        }
    }

    /// Records a read's answer; returns the announced logs it lacks, and how many more it
    /// lacks that only an earlier read returned (those the feed no longer holds).
    fn check(&mut self, answer: &[ChainLog]) -> (Vec<ChainLog>, usize) {
        let returned: BTreeSet<Option<u64>> = answer.iter().map(|l| l.log_index).collect();
        self.unread.retain(|l| !returned.contains(&l.log_index));
        self.read.extend(returned.iter().copied());
        let lacking = self.announced.difference(&returned).count();
        let missing = self.unread.clone();
        let held_elsewhere = lacking.saturating_sub(missing.len());
        (missing, held_elsewhere)
    }
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
            .or_insert_with(|| StreamedBlock::new(number))
            .announce(log);
        streamed.blocks.retain(|_, block| block.number >= keep_from);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streamed> {
        self.streamed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what a read of `block` returned (so notifications that come after it are
    /// not kept) and compares it with what the stream announced.
    fn check(&self, block: &BlockRecord, read: &[ChainLog]) -> (Vec<ChainLog>, usize) {
        let keep_from = (*self.reached.borrow())
            .max(block.number())
            .saturating_sub(self.depth);
        let mut streamed = self.lock();
        streamed.blocks.retain(|_, kept| kept.number >= keep_from);
        if block.number() < keep_from {
            return (Vec::new(), 0);
        }
        streamed
            .blocks
            .entry(block.hash())
            .or_insert_with(|| StreamedBlock::new(block.number()))
            .check(read)
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
            let (missing, held_elsewhere) = self.check(block, &read);
            if missing.is_empty() && held_elsewhere == 0 {
                return Ok(read);
            }
            attempt += 1;
            if attempt > REREADS && held_elsewhere == 0 {
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
            if attempt > REREADS {
                return Err(NodeError::Unavailable(format!(
                    "eth_getLogs for block {} keeps missing {held_elsewhere} logs an earlier read returned",
                    block.number()
                )));
            }
            tokio::time::sleep(REREAD_PAUSE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scripted::{EMITTER, ScriptedChain, event_topic};
    use super::{LogFeed, StreamedBlock};
    use alloy_primitives::{Address, B256, Bytes};
    use nexum_core::{ChainLog, LogFilter};
    use std::sync::Arc;

    /// The stream's notifications may come after the read of their block (they travel on a
    /// connection of their own): the read's logs are then not kept for the cross-check.
    #[tokio::test]
    async fn logs_read_before_the_stream_announced_them_are_not_kept() {
        let chain = Arc::new(ScriptedChain::new(true));
        chain.hold_streams();
        let block = chain.mine(3);
        let filter = LogFilter {
            addresses: vec![EMITTER],
            topics: vec![vec![event_topic()]],
        };
        let feed = LogFeed::new(chain.clone(), filter, 16);
        let read = feed.logs_of(&block).await.unwrap();
        assert_eq!(read.len(), 3);
        for log in read {
            feed.receive(log);
        }
        let streamed = feed.lock();
        let kept = &streamed.blocks[&block.hash()];
        assert_eq!(kept.announced.len(), 3);
        assert!(kept.unread.is_empty(), "{} logs kept", kept.unread.len());
    }

    fn log(index: u64) -> ChainLog {
        ChainLog {
            address: Address::repeat_byte(1),
            topics: vec![B256::repeat_byte(2)],
            data: Bytes::from(vec![3; 32]),
            block_number: Some(7),
            block_hash: Some(B256::repeat_byte(7)),
            transaction_hash: Some(B256::repeat_byte(9)),
            transaction_index: Some(0),
            log_index: Some(index),
            removed: false,
        }
    }

    fn indices(logs: &[ChainLog]) -> Vec<u64> {
        logs.iter().filter_map(|l| l.log_index).collect()
    }

    #[test]
    fn a_complete_read_leaves_only_indices_behind() {
        let mut block = StreamedBlock::new(7);
        for i in 0..3 {
            block.announce(log(i));
        }
        let (missing, held_elsewhere) = block.check(&[log(0), log(1), log(2)]);
        assert!(missing.is_empty());
        assert_eq!(held_elsewhere, 0);
        assert!(block.unread.is_empty());
        // Notifications that come after the read returned them are not kept either.
        block.announce(log(1));
        assert!(block.unread.is_empty());
    }

    #[test]
    fn a_short_read_is_told_what_the_stream_saw() {
        let mut block = StreamedBlock::new(7);
        for i in 0..4 {
            block.announce(log(i));
        }
        let (missing, held_elsewhere) = block.check(&[log(0), log(2)]);
        assert_eq!(indices(&missing), vec![1, 3]);
        assert_eq!(held_elsewhere, 0);
        // A later read that returns them confirms them.
        let (missing, held_elsewhere) = block.check(&[log(0), log(1), log(2), log(3)]);
        assert!(missing.is_empty() && held_elsewhere == 0);
        assert!(block.unread.is_empty());
    }

    #[test]
    fn a_read_lacking_what_an_earlier_read_returned_is_not_complete() {
        let mut block = StreamedBlock::new(7);
        for i in 0..3 {
            block.announce(log(i));
        }
        block.check(&[log(0), log(1), log(2)]);
        // Another module's read, served by a lagging backend.
        let (missing, held_elsewhere) = block.check(&[log(0)]);
        assert!(missing.is_empty());
        assert_eq!(held_elsewhere, 2);
    }

    #[test]
    fn a_log_announced_twice_counts_once() {
        let mut block = StreamedBlock::new(7);
        block.announce(log(0));
        block.announce(log(0));
        let (missing, _) = block.check(&[]);
        assert_eq!(indices(&missing), vec![0]);
    }
}

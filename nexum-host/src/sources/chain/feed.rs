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
//! For each recent block the feed holds the announced logs until every log subscription
//! reading the feed (each holds a [`FeedReader`]) has read the block and the stream is a
//! few blocks past it, then only their indices: a busy block costs some 30 bytes a log for
//! `reorg_depth` blocks, not the whole log. A read that keeps missing logs whose copies
//! were let go fails, and is tried again later.

use super::reader::{ChainReader, LogStream};
use crate::chain::client::Next;
use crate::chain::wire::LogRange;
use crate::chain::{BlockRecord, NodeError};
use alloy_primitives::B256;
use nexum_core::{ChainLog, LogFilter};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Times a read that missed streamed logs is repeated before the two are merged (or, when
/// the streamed copies were let go, the read fails).
const REREADS: u32 = 3;
/// Pause between such reads.
const REREAD_PAUSE: Duration = Duration::from_millis(200);
/// Blocks a block's streamed logs stay held after every reader has read it: a reader that
/// reads it again (after a reload, a store error or a reorg back to it) reads from its
/// committed cursor, a block or two behind the stream.
const HOLD_BLOCKS: u64 = 8;
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
    /// The announced logs, whole, until every reader of the feed has read the block: a
    /// reader answered by a lagging backend gets them merged in.
    logs: Vec<ChainLog>,
    /// Indices of the announced logs, still compared with reads once the logs are let go.
    announced: BTreeSet<Option<u64>>,
    /// Reads of the block that ended with every announced log.
    reads: usize,
    /// The logs were let go: every reader has read the block.
    released: bool,
}

impl StreamedBlock {
    fn new(number: u64) -> Self {
        Self {
            number,
            logs: Vec::new(),
            announced: BTreeSet::new(),
            reads: 0,
            released: false,
        }
    }

    fn announce(&mut self, log: ChainLog) {
        let fresh = self.announced.insert(log.log_index);
        if (fresh || log.log_index.is_none()) && !self.released {
            self.logs.push(log);
        }
    }

    /// Compares a read's answer with what was announced: the announced logs it lacks that
    /// are held, and how many more it lacks that were let go.
    fn check(&self, answer: &[ChainLog]) -> (Vec<ChainLog>, usize) {
        let returned: BTreeSet<Option<u64>> = answer.iter().map(|l| l.log_index).collect();
        let missing: Vec<ChainLog> = (self.logs.iter())
            .filter(|l| !returned.contains(&l.log_index))
            .cloned()
            .collect();
        let held: BTreeSet<Option<u64>> = missing.iter().map(|l| l.log_index).collect();
        let let_go = (self.announced.difference(&returned))
            .filter(|index| !held.contains(index))
            .count();
        (missing, let_go)
    }

    /// Counts a read that ended with every announced log.
    fn read_complete(&mut self) {
        self.reads += 1;
    }

    /// Lets the logs go, keeping their indices, once `readers` reads ended complete and
    /// the stream is [`HOLD_BLOCKS`] past the block.
    fn release_if_read(&mut self, readers: usize, reached: u64) {
        if !self.released
            && self.reads >= readers.max(1)
            && self.number.saturating_add(HOLD_BLOCKS) <= reached
        {
            self.released = true;
            self.logs = Vec::new();
        }
    }
}

/// A log subscription's claim on the feed it reads (held by its driver's task): while it
/// lasts, the feed holds each block's streamed logs until this reader has read it too.
pub(crate) struct FeedReader<C> {
    feed: Arc<LogFeed<C>>,
}

impl<C> Drop for FeedReader<C> {
    fn drop(&mut self) {
        self.feed.readers.fetch_sub(1, Ordering::AcqRel);
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
    /// Drivers reading this feed ([`FeedReader`]s alive).
    readers: AtomicUsize,
}

impl<C: ChainReader> LogFeed<C> {
    pub fn new(client: Arc<C>, filter: LogFilter, depth: u64) -> Self {
        Self {
            client,
            filter,
            depth,
            streamed: Mutex::default(),
            reached: watch::Sender::new(0),
            readers: AtomicUsize::new(0),
        }
    }

    /// Registers a driver that reads this feed, for as long as the returned claim lives.
    pub fn reader(self: &Arc<Self>) -> FeedReader<C> {
        self.readers.fetch_add(1, Ordering::AcqRel);
        FeedReader { feed: self.clone() }
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
        let reached = *self.reached.borrow();
        let keep_from = self.keep_from();
        let readers = self.readers.load(Ordering::Acquire);
        let mut streamed = self.lock();
        streamed
            .blocks
            .entry(hash)
            .or_insert_with(|| StreamedBlock::new(number))
            .announce(log);
        streamed.blocks.retain(|_, block| {
            block.release_if_read(readers, reached);
            block.number >= keep_from
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streamed> {
        self.streamed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Compares what a read of `block` returned with what the stream announced (see
    /// [`StreamedBlock::check`]); a block out of the window was announced nothing.
    fn check(&self, block: &BlockRecord, read: &[ChainLog]) -> (Vec<ChainLog>, usize) {
        let streamed = self.lock();
        match streamed.blocks.get(&block.hash()) {
            Some(announced) => announced.check(read),
            None => (Vec::new(), 0),
        }
    }

    /// Counts a read of `block` that ended with every announced log. A block the stream
    /// has not announced yet gets its entry now, so logs announced after the read are not
    /// held for it.
    fn read_complete(&self, block: &BlockRecord) {
        // Bounded by the block read as well: a stream that announces nothing leaves
        // `reached` behind.
        let keep_from = (*self.reached.borrow())
            .max(block.number())
            .saturating_sub(self.depth);
        let readers = self.readers.load(Ordering::Acquire);
        let reached = *self.reached.borrow();
        let mut streamed = self.lock();
        streamed.blocks.retain(|_, kept| kept.number >= keep_from);
        if block.number() < keep_from {
            return;
        }
        let kept = streamed
            .blocks
            .entry(block.hash())
            .or_insert_with(|| StreamedBlock::new(block.number()));
        kept.read_complete();
        kept.release_if_read(readers, reached);
    }

    /// The oldest block number the feed keeps anything for.
    fn keep_from(&self) -> u64 {
        self.reached.borrow().saturating_sub(self.depth)
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
            let (missing, let_go) = self.check(block, &read);
            if missing.is_empty() && let_go == 0 {
                self.read_complete(block);
                return Ok(read);
            }
            attempt += 1;
            if attempt > REREADS && let_go == 0 {
                tracing::warn!(
                    chain = self.client.chain_id(),
                    block = block.number(),
                    missing = missing.len(),
                    "the node's eth_getLogs keeps missing logs its subscription announced; keeping both"
                );
                let mut merged = read;
                merged.extend(missing);
                merged.sort_by_key(|l| l.log_index);
                self.read_complete(block);
                return Ok(merged);
            }
            if attempt > REREADS {
                // Every registered reader had this block complete, so its logs were let
                // go (a reorg back to a block already read, say): read it again later.
                tracing::warn!(
                    chain = self.client.chain_id(),
                    block = block.number(),
                    missing = missing.len() + let_go,
                    "the node's eth_getLogs keeps missing logs its subscription announced; reading again"
                );
                return Err(NodeError::Unavailable(format!(
                    "eth_getLogs for block {} keeps missing {} announced logs",
                    block.number(),
                    missing.len() + let_go
                )));
            }
            tokio::time::sleep(REREAD_PAUSE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scripted::{EMITTER, ScriptedChain, event_topic};
    use super::{HOLD_BLOCKS, LogFeed, StreamedBlock};
    use alloy_primitives::{Address, B256, Bytes};
    use nexum_core::{ChainLog, LogFilter};
    use std::sync::Arc;

    fn feed(chain: &Arc<ScriptedChain>) -> Arc<LogFeed<ScriptedChain>> {
        let filter = LogFilter {
            addresses: vec![EMITTER],
            topics: vec![vec![event_topic()]],
        };
        Arc::new(LogFeed::new(chain.clone(), filter, 16))
    }

    /// The stream's notifications may come after the read of their block (they travel on a
    /// connection of their own): once its one reader has the block and the stream has
    /// moved on, only their indices are kept.
    #[tokio::test]
    async fn logs_read_before_the_stream_announced_them_are_let_go_once_it_moves_on() {
        let chain = Arc::new(ScriptedChain::new(true));
        let block = chain.mine(3);
        let feed = feed(&chain);
        let _reader = feed.reader();
        let read = feed.logs_of(&block).await.unwrap();
        assert_eq!(read.len(), 3);
        for log in read {
            feed.receive(log);
        }
        let mut later = ChainLog::clone(&feed.lock().blocks[&block.hash()].logs[0]);
        later.block_number = Some(block.number() + HOLD_BLOCKS);
        later.block_hash = Some(B256::repeat_byte(0x77));
        feed.receive(later);
        let streamed = feed.lock();
        let kept = &streamed.blocks[&block.hash()];
        assert_eq!(kept.announced.len(), 3);
        assert!(kept.logs.is_empty(), "{} logs held", kept.logs.len());
    }

    /// Two modules share a feed; the second one's reads come from a backend that lags and
    /// keep missing two logs: it gets them from the stream, as the first read them.
    #[tokio::test(start_paused = true)]
    async fn a_second_reader_answered_short_gets_the_streamed_logs() {
        let chain = Arc::new(ScriptedChain::new(true));
        let block = chain.mine(3);
        let feed = feed(&chain);
        let (_first, _second) = (feed.reader(), feed.reader());
        let first = feed.logs_of(&block).await.unwrap();
        for log in first.clone() {
            feed.receive(log);
        }
        chain.cut_short(block.hash(), 2, 100);
        let second = feed.logs_of(&block).await.unwrap();
        assert_eq!(second, first);
        // Both have read it: once the stream is far enough past it, only indices are left.
        assert!(!feed.lock().blocks[&block.hash()].logs.is_empty());
        let mut later = first[0].clone();
        later.block_number = Some(block.number() + HOLD_BLOCKS);
        later.block_hash = Some(B256::repeat_byte(0x77));
        feed.receive(later);
        assert!(feed.lock().blocks[&block.hash()].logs.is_empty());
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
    fn a_short_read_is_told_what_the_stream_saw() {
        let mut block = StreamedBlock::new(7);
        for i in 0..4 {
            block.announce(log(i));
        }
        let (missing, let_go) = block.check(&[log(0), log(2)]);
        assert_eq!(indices(&missing), vec![1, 3]);
        assert_eq!(let_go, 0);
    }

    #[test]
    fn once_every_reader_has_a_block_only_its_indices_are_compared() {
        let mut block = StreamedBlock::new(7);
        for i in 0..3 {
            block.announce(log(i));
        }
        let far_past = 7 + HOLD_BLOCKS;
        block.read_complete();
        block.release_if_read(2, far_past);
        assert_eq!(block.logs.len(), 3, "one of two readers still to come");
        block.read_complete();
        block.release_if_read(2, far_past - 1);
        assert_eq!(block.logs.len(), 3, "the stream is not far enough past it");
        block.release_if_read(2, far_past);
        assert!(block.logs.is_empty());
        block.announce(log(3));
        assert!(block.logs.is_empty());
        let (missing, let_go) = block.check(&[log(0)]);
        assert!(missing.is_empty());
        assert_eq!(let_go, 3);
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

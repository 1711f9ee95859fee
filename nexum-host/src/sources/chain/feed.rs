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
//! reach that block before it is believed. Reaching it means announcing logs of that very
//! block, or of a later block on its chain (canonical in the follower's view): after a reorg
//! the stream has long passed the replacement's number on the old chain, which says nothing
//! about the replacement. A block whose bloom rules the filter out needs no request at all.
//!
//! Each log subscription reading the feed holds a [`FeedClaim`] and reports the blocks its
//! module is past (their deliveries committed). An announced log is read only as far as
//! its position (block and index); its JSON is held as the node sent it, until every claim
//! is past the block and the stream is a few blocks further on. It is read in full only
//! when the last re-read of a short read still lacks it (to merge it in), or as the block
//! is let go if no read returned it (to forget it if it is not a log). Once let go, only
//! the indices are kept: a busy block costs some 30 bytes a log for `reorg_depth` blocks,
//! not the whole log. A read that keeps missing logs whose copies were let go (a module
//! reading again a block it had passed, after a reorg back to it) fails, and is tried again
//! later.

use super::follower::CanonicalView;
use super::reader::{ChainReader, LogStream};
use crate::chain::client::Next;
use crate::chain::wire::{LogRange, StreamedLog};
use crate::chain::{BlockRecord, BloomProbe, NodeError};
use alloy_primitives::B256;
use nexum_core::{ChainLog, LogFilter};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Times a read that missed streamed logs is repeated before the two are merged (or, when
/// the streamed copies were let go, the read fails).
const REREADS: u32 = 3;
/// Pause between such reads.
const REREAD_PAUSE: Duration = Duration::from_millis(200);
/// Blocks a block's streamed logs stay held after every claim is past it (a margin for a
/// reorg that comes back to it).
const HOLD_BLOCKS: u64 = 8;
/// How long an empty answer waits for the stream to reach its block.
const STREAM_GRACE: Duration = Duration::from_millis(25);
/// How long a feed no module reads keeps its subscription (and what it announced) before it
/// stops: longer than a module takes to restart.
const LINGER: Duration = Duration::from_secs(120);

/// What the stream announced for recent blocks, by block hash, and how far each claim
/// has got.
#[derive(Debug, Default)]
struct Streamed {
    blocks: BTreeMap<B256, StreamedBlock>,
    /// Per live claim: the newest block its module is past (0 before any).
    claims: BTreeMap<u64, u64>,
    next_claim: u64,
    /// The highest block the stream has announced logs of (what is kept follows it).
    reached: u64,
    /// The feed went unread for [`LINGER`] and stopped: it takes no new claim.
    closed: bool,
}

impl Streamed {
    /// The newest block every live claim is past (0 without claims: nothing is let go).
    fn passed_by_all(&self) -> u64 {
        self.claims.values().copied().min().unwrap_or(0)
    }

    /// Whether the stream has reached `block`: announced its logs, or those of a later
    /// block, both canonical in `view` (so on one chain: the node sent them after
    /// `block`'s). A block the view has moved past is judged by number, as a reorg that deep
    /// is out of reach anyway.
    fn has_reached(&self, block: &BlockRecord, view: &CanonicalView) -> bool {
        if (self.blocks.get(&block.hash())).is_some_and(StreamedBlock::was_announced) {
            return true;
        }
        if view.oldest().is_some_and(|oldest| block.number() < oldest) {
            return self.reached >= block.number();
        }
        view.is_canonical(block.number(), block.hash()) == Some(true)
            && self.blocks.iter().any(|(hash, announced)| {
                announced.number > block.number()
                    && announced.was_announced()
                    && view.is_canonical(announced.number, *hash) == Some(true)
            })
    }
}

/// What the stream announced for one block.
#[derive(Debug)]
struct StreamedBlock {
    number: u64,
    /// The announced logs, as the node sent them, until every claim is past the block: a
    /// reader answered by a lagging backend gets them merged in.
    logs: Vec<StreamedLog>,
    /// Indices of the announced logs, still compared with reads once the logs are let go
    /// (less those forgotten, see [`StreamedBlock::check`]).
    announced: BTreeSet<Option<u64>>,
    /// Indices some read of the block returned, until the logs are let go: a log a read
    /// confirmed need not be read in full before it goes.
    confirmed: BTreeSet<Option<u64>>,
    /// The stream announced logs of the block, even if all were since forgotten as
    /// unreadable: it has reached the block all the same.
    heard: bool,
    /// The logs were let go.
    released: bool,
}

impl StreamedBlock {
    fn new(number: u64) -> Self {
        Self {
            number,
            logs: Vec::new(),
            announced: BTreeSet::new(),
            confirmed: BTreeSet::new(),
            heard: false,
            released: false,
        }
    }

    /// Whether the stream announced logs of the block (a read that found logs makes an
    /// entry first, to note which it returned).
    fn was_announced(&self) -> bool {
        self.heard
    }

    fn announce(&mut self, log: StreamedLog) {
        self.heard = true;
        let fresh = self.announced.insert(log.log_index);
        if (fresh || log.log_index.is_none()) && !self.released {
            self.logs.push(log);
        }
    }

    /// Compares a read's answer with what was announced (see [`Shortfall`]). Only
    /// positions are compared; on the `last` re-read of [`LogFeed::logs_of`], the held
    /// logs the read lacks are read in full, to be merged in. One that does not read as a
    /// log is then forgotten, its index with it (unless another held log has that index):
    /// it cannot be merged, and the read is believed for it, as when alloy's typed
    /// subscriptions passed such notifications over on arrival; a readable copy of its
    /// index announced later counts as fresh.
    fn check(&mut self, answer: &[ChainLog], last: bool) -> Shortfall {
        let returned: BTreeSet<Option<u64>> = answer.iter().map(|l| l.log_index).collect();
        if !self.released {
            self.confirmed.extend(returned.iter().copied());
        }
        let (missing, unreadable, first_error) = if last {
            self.read_in_full(|log| returned.contains(&log.log_index))
        } else {
            (Vec::new(), 0, None)
        };
        let mut lacking = 0;
        let mut held = BTreeSet::new();
        for log in self
            .logs
            .iter()
            .filter(|l| !returned.contains(&l.log_index))
        {
            lacking += 1;
            held.insert(log.log_index);
        }
        let let_go = (self.announced.difference(&returned))
            .filter(|index| !held.contains(index))
            .count();
        Shortfall {
            lacking,
            missing,
            let_go,
            unreadable,
            first_error,
        }
    }

    /// Reads in full the held logs `passed_over` does not pass over, and forgets those
    /// that do not read as logs (their index with them, unless another held log has it).
    /// Returns the logs that read, how many were forgotten, and why the first was.
    fn read_in_full(
        &mut self,
        passed_over: impl Fn(&StreamedLog) -> bool,
    ) -> (Vec<ChainLog>, usize, Option<serde_json::Error>) {
        let mut whole = Vec::new();
        let mut first_error = None;
        let mut forgotten = BTreeSet::new();
        self.logs.retain(|log| {
            if passed_over(log) {
                return true;
            }
            match log.to_chain_log() {
                Ok(log) => {
                    whole.push(log);
                    true
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                    forgotten.insert(log.log_index);
                    false
                }
            }
        });
        let count = forgotten.len();
        for index in &forgotten {
            if !self.logs.iter().any(|l| l.log_index == *index) {
                self.announced.remove(index);
            }
        }
        (whole, count, first_error)
    }

    /// Lets the logs go, keeping their indices, once every claim is past the block
    /// (`passed_by_all`) and the stream is [`HOLD_BLOCKS`] past it. The logs no read
    /// returned (announced after the block was read, say) are read in full first, and
    /// those that do not read as logs are forgotten: a later read of the block is not
    /// held to them. Returns how many were forgotten, and why the first was.
    fn release_if_passed(
        &mut self,
        passed_by_all: u64,
        reached: u64,
    ) -> (usize, Option<serde_json::Error>) {
        if self.released
            || self.number > passed_by_all
            || self.number.saturating_add(HOLD_BLOCKS) > reached
        {
            return (0, None);
        }
        let confirmed = std::mem::take(&mut self.confirmed);
        let (_, forgotten, first_error) =
            self.read_in_full(|log| confirmed.contains(&log.log_index));
        self.released = true;
        self.logs = Vec::new();
        (forgotten, first_error)
    }
}

/// What a read of a block lacks of what the stream announced for it.
#[derive(Debug, Default)]
struct Shortfall {
    /// How many announced logs the read lacks whose copies are held.
    lacking: usize,
    /// Those logs read in full (on the last re-read only, see [`LogFeed::logs_of`]).
    missing: Vec<ChainLog>,
    /// How many more announced logs it lacks whose copies were let go.
    let_go: usize,
    /// How many held logs it lacks did not read as logs and were forgotten (on a block's
    /// last re-read only), and why the first did not.
    unreadable: usize,
    first_error: Option<serde_json::Error>,
}

/// A log subscription's claim on the feed it reads, shared by its driver's clones: while it
/// lasts, the feed holds each block's streamed logs until the claim reports it is past it.
pub(crate) struct FeedClaim<C> {
    feed: Arc<LogFeed<C>>,
    id: u64,
}

impl<C: ChainReader> FeedClaim<C> {
    /// The logs of `block` (see [`LogFeed::logs_of`]).
    pub async fn logs_of(&self, block: &BlockRecord) -> Result<Vec<ChainLog>, NodeError> {
        self.feed.logs_of(block).await
    }
}

impl<C> FeedClaim<C> {
    /// Reports that the module is past block `number`: its deliveries up to it committed.
    pub fn passed(&self, number: u64) {
        if let Some(through) = self.feed.lock().claims.get_mut(&self.id) {
            *through = (*through).max(number);
        }
    }

    /// Reports that the module went back to being past only `number` (a reorg undone, or
    /// delivery resumed from its committed cursor): what the stream announces above it from
    /// now on is held for it (logs already let go stay so).
    pub fn back_to(&self, number: u64) {
        if let Some(through) = self.feed.lock().claims.get_mut(&self.id) {
            *through = (*through).min(number);
        }
    }
}

impl<C> Drop for FeedClaim<C> {
    fn drop(&mut self) {
        let mut streamed = self.feed.lock();
        streamed.claims.remove(&self.id);
        self.feed.readers.send_replace(streamed.claims.len());
    }
}

/// One distinct filter's subscription.
pub(crate) struct LogFeed<C> {
    client: Arc<C>,
    filter: LogFilter,
    /// `filter` as blooms index it: a block its bloom rules out needs no read.
    probe: BloomProbe,
    depth: u64,
    streamed: Mutex<Streamed>,
    /// Counts the blocks the stream announced: an empty answer waiting for the stream wakes
    /// on it.
    announcements: watch::Sender<u64>,
    /// The follower's view of the chain: which announced blocks are on a read block's chain.
    view: watch::Receiver<Arc<CanonicalView>>,
    /// How many claims there are: a feed unread for [`LINGER`] stops.
    readers: watch::Sender<usize>,
}

impl<C> LogFeed<C> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Streamed> {
        self.streamed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<C: ChainReader> LogFeed<C> {
    pub fn new(
        client: Arc<C>,
        filter: LogFilter,
        depth: u64,
        view: watch::Receiver<Arc<CanonicalView>>,
    ) -> Self {
        Self {
            client,
            probe: BloomProbe::new(&filter),
            filter,
            depth,
            streamed: Mutex::default(),
            announcements: watch::Sender::new(0),
            view,
            readers: watch::Sender::new(0),
        }
    }

    /// A claim for a log subscription that reads this feed, for as long as it lives; `None`
    /// once the feed stopped, unread for [`LINGER`].
    pub fn claim(self: &Arc<Self>) -> Option<FeedClaim<C>> {
        let mut streamed = self.lock();
        if streamed.closed {
            return None;
        }
        let id = streamed.next_claim;
        streamed.next_claim += 1;
        streamed.claims.insert(id, 0);
        self.readers.send_replace(streamed.claims.len());
        Some(FeedClaim {
            feed: self.clone(),
            id,
        })
    }

    /// Keeps the subscription open until `stop` turns true or the feed goes unread for
    /// [`LINGER`].
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {}
            _ = self.close_when_unread() => {
                tracing::debug!(chain = self.client.chain_id(), filter = %self.filter, "log feed stopped: no module reads it");
            }
            _ = self.follow() => {}
        }
    }

    /// Returns once the feed has had no claim for [`LINGER`], having marked it closed (and
    /// let go of what it held). A module restarted by a reload or by its operator claims it
    /// again well within that, and finds what the stream announced meanwhile: a new feed
    /// would know nothing of the blocks it reads again, and would believe a lagging
    /// backend's short answer for them. A module away longer (quarantined until its
    /// operator restarts it, stopped while its cluster store is silent) comes back to a
    /// new feed, with that risk for the blocks it reads again.
    async fn close_when_unread(&self) {
        let mut readers = self.readers.subscribe();
        loop {
            let _ = readers.wait_for(|n| *n == 0).await;
            // Any claim taken or let go meanwhile starts the wait over.
            tokio::select! {
                biased;
                _ = readers.changed() => {}
                _ = tokio::time::sleep(LINGER) => {
                    let mut streamed = self.lock();
                    if streamed.claims.is_empty() {
                        streamed.closed = true;
                        streamed.blocks.clear();
                        return;
                    }
                }
            }
        }
    }

    /// Whether the feed stopped, unread (see [`LogFeed::claim`]).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
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

    fn receive(&self, log: StreamedLog) {
        // Retractions are worked out from the canonical chain, not from the node's
        // `removed` notifications (some nodes send none, others do: no doubles either way).
        if log.removed {
            return;
        }
        let (Some(hash), Some(number)) = (log.block_hash, log.block_number) else {
            return;
        };
        let mut streamed = self.lock();
        let moved = streamed.reached < number;
        streamed.reached = streamed.reached.max(number);
        let announced = (streamed.blocks.entry(hash)).or_insert_with(|| StreamedBlock::new(number));
        let first_of_block = !announced.was_announced();
        announced.announce(log);
        // What is let go and what is kept change only as the stream moves on.
        let mut forgotten = 0;
        let mut first_error = None;
        if moved {
            let keep_from = number.saturating_sub(self.depth);
            let passed_by_all = streamed.passed_by_all();
            // An entry that goes is not released first: nothing would read what it kept.
            streamed.blocks.retain(|_, block| {
                let keep = block.number >= keep_from;
                if keep {
                    let (count, error) = block.release_if_passed(passed_by_all, number);
                    forgotten += count;
                    if let Some(error) = error {
                        first_error.get_or_insert(error);
                    }
                }
                keep
            });
        }
        drop(streamed);
        if let Some(error) = first_error {
            tracing::warn!(
                chain = self.client.chain_id(),
                forgotten,
                %error,
                "the node's logs subscription announced logs nexum cannot read, and no read returned them; forgetting them"
            );
        }
        // A waiting read looks only at which blocks were announced: it is woken by a block's
        // first log, once that log is in.
        if first_of_block {
            self.announcements
                .send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    /// Waits, at most [`STREAM_GRACE`], until the stream has reached `block` (see
    /// [`Streamed::has_reached`]); the follower's view may grow meanwhile.
    async fn wait_for_stream(&self, block: &BlockRecord) {
        let mut announcements = self.announcements.subscribe();
        let mut view = self.view.clone();
        let reached = async {
            loop {
                let current = view.borrow_and_update().clone();
                if self.lock().has_reached(block, &current) {
                    return;
                }
                tokio::select! {
                    _ = announcements.changed() => {}
                    changed = view.changed() => if changed.is_err() {
                        // The follower is gone (shutdown): its view grows no more.
                        let _ = announcements.changed().await;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(STREAM_GRACE, reached).await;
    }

    /// Compares what a read of `block` returned with what the stream announced (see
    /// [`StreamedBlock::check`]); a block out of the window was announced nothing.
    /// A read that found logs of a block the stream has not announced yet makes its entry,
    /// so the logs announced later that it returned are not read in full as the block is
    /// let go; entries further back than the window the stream keeps (see
    /// [`LogFeed::receive`]) go then.
    fn check(&self, block: &BlockRecord, read: &[ChainLog], last: bool) -> Shortfall {
        let shortfall = {
            let mut streamed = self.lock();
            let blocks = &mut streamed.blocks;
            if !read.is_empty() && !blocks.contains_key(&block.hash()) {
                let depth = self.depth;
                // The window the stream's own pruning keeps (see `receive`).
                blocks.retain(|_, b| b.number.saturating_add(depth) >= block.number());
                blocks.insert(block.hash(), StreamedBlock::new(block.number()));
            }
            match blocks.get_mut(&block.hash()) {
                Some(announced) => announced.check(read, last),
                None => Shortfall::default(),
            }
        };
        if let Some(error) = &shortfall.first_error {
            tracing::warn!(
                chain = self.client.chain_id(),
                block = block.number(),
                unreadable = shortfall.unreadable,
                %error,
                "the node's logs subscription announced logs nexum cannot read; forgetting them"
            );
        }
        shortfall
    }

    /// The logs of `block` matching this feed's filter, in log-index order.
    pub async fn logs_of(&self, block: &BlockRecord) -> Result<Vec<ChainLog>, NodeError> {
        if !block.may_contain(&self.probe) {
            return Ok(Vec::new());
        }
        let mut attempt = 0;
        loop {
            let read = self
                .client
                .logs(&self.filter, LogRange::Block(block.hash()))
                .await?;
            if read.is_empty() && attempt == 0 {
                self.wait_for_stream(block).await;
            }
            let Shortfall {
                lacking,
                missing,
                let_go,
                ..
            } = self.check(block, &read, attempt == REREADS);
            if lacking == 0 && let_go == 0 {
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
                return Ok(merged);
            }
            if attempt > REREADS {
                // Every claim was past this block, so its logs were let go (a reorg back
                // to a block already delivered, say): read it again later.
                tracing::warn!(
                    chain = self.client.chain_id(),
                    block = block.number(),
                    missing = lacking + let_go,
                    "the node's eth_getLogs keeps missing logs its subscription announced; reading again"
                );
                return Err(NodeError::Unavailable(format!(
                    "eth_getLogs for block {} keeps missing {} announced logs",
                    block.number(),
                    lacking + let_go
                )));
            }
            tokio::time::sleep(REREAD_PAUSE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::follower::CanonicalView;
    use super::super::reader::ChainReader;
    use super::super::scripted::{EMITTER, ScriptedChain, event_topic};
    use super::{
        BlockRecord, HOLD_BLOCKS, LINGER, LogFeed, LogRange, REREAD_PAUSE, REREADS, STREAM_GRACE,
        Shortfall, StreamedBlock, StreamedLog,
    };
    use alloy_primitives::{Address, B256, Bytes};
    use nexum_core::{ChainLog, LogFilter};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::watch;

    fn feed(chain: &Arc<ScriptedChain>) -> Arc<LogFeed<ScriptedChain>> {
        feed_seeing(chain, watch::channel(Arc::new(CanonicalView::default())).1)
    }

    /// A feed whose follower's view is `view`.
    fn feed_seeing(
        chain: &Arc<ScriptedChain>,
        view: watch::Receiver<Arc<CanonicalView>>,
    ) -> Arc<LogFeed<ScriptedChain>> {
        Arc::new(LogFeed::new(chain.clone(), feed_filter(), 16, view))
    }

    fn feed_filter() -> LogFilter {
        LogFilter {
            addresses: vec![EMITTER],
            topics: vec![vec![event_topic()]],
        }
    }

    /// The logs of `block` the feeds' filter matches: what a stream announces for it.
    async fn logs_in(chain: &ScriptedChain, block: &BlockRecord) -> Vec<ChainLog> {
        let filter = feed_filter();
        chain
            .logs(&filter, LogRange::Block(block.hash()))
            .await
            .unwrap()
    }

    /// `feed`'s stream announces `block`'s logs.
    async fn announce(feed: &LogFeed<ScriptedChain>, chain: &ScriptedChain, block: &BlockRecord) {
        for log in logs_in(chain, block).await {
            feed.receive(StreamedLog::of(&log));
        }
    }

    /// A notification for a block `ahead` of `log`'s (the stream moving on).
    fn later(log: &ChainLog, ahead: u64) -> ChainLog {
        let mut later = log.clone();
        later.block_number = log.block_number.map(|n| n + ahead);
        later.block_hash = Some(B256::with_last_byte(ahead as u8));
        later
    }

    fn held(feed: &LogFeed<ScriptedChain>, hash: B256) -> usize {
        feed.lock().blocks[&hash].logs.len()
    }

    /// A feed no module reads stops after [`LINGER`], and takes no new reader after that (the
    /// sources start a new feed for one); a reader coming back within it finds it running.
    #[tokio::test(start_paused = true)]
    async fn a_feed_unread_for_a_while_stops() {
        let chain = Arc::new(ScriptedChain::new(true));
        let feed = feed(&chain);
        let (first, second) = (feed.claim().unwrap(), feed.claim().unwrap());
        let (_stop, stop) = watch::channel(false);
        let mut task = tokio::spawn(feed.clone().run(stop));
        drop(first);
        let still = tokio::time::timeout(LINGER * 2, &mut task).await;
        assert!(still.is_err(), "the feed stopped with a reader left");
        drop(second);
        let still = tokio::time::timeout(LINGER / 2, &mut task).await;
        assert!(still.is_err(), "the feed stopped at once, unread");
        // A reader back within the linger finds it running; it leaves again.
        drop(feed.claim().expect("the feed still runs"));
        let still = tokio::time::timeout(LINGER * 3 / 4, &mut task).await;
        assert!(still.is_err(), "the linger did not start over");
        tokio::time::timeout(LINGER, task)
            .await
            .expect("the feed stopped")
            .unwrap();
        assert!(feed.is_closed());
        assert!(feed.claim().is_none(), "a stopped feed took a claim");
    }

    /// Two modules share a feed; the second one's reads come from a backend that lags and
    /// keep missing two logs, after the first module is done with the block and even gone:
    /// the second still gets them from the stream.
    #[tokio::test(start_paused = true)]
    async fn a_module_answered_short_gets_the_streamed_logs_whoever_else_is_done() {
        let chain = Arc::new(ScriptedChain::new(true));
        let block = chain.mine(3);
        let feed = feed(&chain);
        let (first, second) = (feed.claim().unwrap(), feed.claim().unwrap());
        // A module that went before reading anything holds nothing back.
        drop(feed.claim());
        let read = first.logs_of(&block).await.unwrap();
        for log in &read {
            feed.receive(StreamedLog::of(log));
        }
        first.passed(block.number());
        feed.receive(StreamedLog::of(&later(&read[0], HOLD_BLOCKS)));
        assert_eq!(held(&feed, block.hash()), 3, "the second is not past it");
        drop(first);
        feed.receive(StreamedLog::of(&later(&read[0], HOLD_BLOCKS + 1)));
        assert_eq!(held(&feed, block.hash()), 3, "nor when the first is gone");
        chain.cut_short(block.hash(), 2, 100);
        assert_eq!(second.logs_of(&block).await.unwrap(), read);
        // Once it is past the block and the stream has moved on, only indices are left.
        second.passed(block.number());
        feed.receive(StreamedLog::of(&later(&read[0], HOLD_BLOCKS + 2)));
        assert_eq!(held(&feed, block.hash()), 0);
    }

    /// A module reading a block again before it is past it (after a store error, a reload
    /// or a crash its cursor is behind) still finds the streamed logs held, however far the
    /// stream has moved on.
    #[tokio::test(start_paused = true)]
    async fn a_block_is_held_until_every_claim_is_past_it() {
        let chain = Arc::new(ScriptedChain::new(true));
        let block = chain.mine(3);
        let feed = feed(&chain);
        let claim = feed.claim().unwrap();
        let read = claim.logs_of(&block).await.unwrap();
        for log in &read {
            feed.receive(StreamedLog::of(log));
        }
        claim.passed(block.number() - 1);
        feed.receive(StreamedLog::of(&later(&read[0], 10)));
        chain.cut_short(block.hash(), 1, 100);
        assert_eq!(claim.logs_of(&block).await.unwrap(), read);
    }

    /// After a reorg the module goes back below the fork: the replacement blocks' logs are
    /// held for it, though it had been past their numbers.
    #[tokio::test]
    async fn a_module_sent_back_by_a_reorg_has_the_replacement_held() {
        let chain = Arc::new(ScriptedChain::new(true));
        let block = chain.mine(2);
        let feed = feed(&chain);
        let claim = feed.claim().unwrap();
        let read = claim.logs_of(&block).await.unwrap();
        claim.passed(block.number() + 3);
        claim.back_to(block.number() - 1);
        let mut replacement: Vec<ChainLog> = read.clone();
        for log in &mut replacement {
            log.block_hash = Some(B256::repeat_byte(0x55));
            feed.receive(StreamedLog::of(log));
        }
        feed.receive(StreamedLog::of(&later(&read[0], HOLD_BLOCKS + 1)));
        assert_eq!(held(&feed, B256::repeat_byte(0x55)), 2);
    }

    /// After a reorg the stream has long passed the replacement's number on the old chain.
    /// A lagging backend answers nothing for the replacement, whose logs the stream
    /// announces a moment later: the answer waits for them, not for the number.
    #[tokio::test(start_paused = true)]
    async fn an_empty_answer_for_a_replacement_block_waits_for_its_own_logs() {
        let chain = Arc::new(ScriptedChain::new(true));
        let (view, seen) = watch::channel(Arc::new(chain.view()));
        let feed = feed_seeing(&chain, seen);
        let _claim = feed.claim().unwrap();
        let replaced = [chain.mine(2), chain.mine(2)];
        for block in &replaced {
            announce(&feed, &chain, block).await;
        }
        let replacement = chain.reorg(2, &[2, 0]);
        view.send_replace(Arc::new(chain.view()));
        let block = &replacement[0];
        let streamed = logs_in(&chain, block).await;
        let late = feed.clone();
        tokio::spawn(async move {
            tokio::time::sleep(STREAM_GRACE / 2).await;
            for log in streamed {
                late.receive(StreamedLog::of(&log));
            }
        });
        chain.cut_short_once(block.hash(), 2);
        let read = feed.logs_of(block).await.unwrap();
        assert_eq!(read.len(), 2, "{read:?}");
    }

    /// An empty answer for a block the stream has passed on its own chain is believed at
    /// once; a feed whose follower has shown no blocks yet waits out the grace.
    #[tokio::test(start_paused = true)]
    async fn an_empty_answer_is_believed_once_the_stream_passed_its_block() {
        let chain = Arc::new(ScriptedChain::new(true));
        let empty = chain.mine(0);
        let later = chain.mine(1);
        let (_view, seen) = watch::channel(Arc::new(chain.view()));
        let feed = feed_seeing(&chain, seen);
        announce(&feed, &chain, &later).await;
        let started = tokio::time::Instant::now();
        assert!(feed.logs_of(&empty).await.unwrap().is_empty());
        assert_eq!(started.elapsed(), Duration::ZERO);

        let elsewhere = feed_seeing(&chain, watch::channel(Arc::default()).1);
        announce(&elsewhere, &chain, &later).await;
        assert!(elsewhere.logs_of(&empty).await.unwrap().is_empty());
        assert!(started.elapsed() >= STREAM_GRACE);
    }

    /// A block the follower's window has moved past is judged by number: the stream having
    /// announced a later block is enough.
    #[tokio::test(start_paused = true)]
    async fn a_block_below_the_window_is_judged_by_number() {
        let chain = Arc::new(ScriptedChain::new(true));
        let old = chain.mine(0);
        let later = chain.mine(1);
        let recent = chain.mine(0);
        let (_view, seen) = watch::channel(Arc::new(CanonicalView::of([recent])));
        let feed = feed_seeing(&chain, seen);
        announce(&feed, &chain, &later).await;
        let started = tokio::time::Instant::now();
        assert!(feed.logs_of(&old).await.unwrap().is_empty());
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    /// The stream announced the next block before the follower saw its head: the wait ends
    /// when the view gains it, not at the end of the grace.
    #[tokio::test(start_paused = true)]
    async fn an_empty_answer_waits_for_the_view_to_place_what_the_stream_saw() {
        let chain = Arc::new(ScriptedChain::new(true));
        let empty = chain.mine(0);
        let (view, seen) = watch::channel(Arc::new(chain.view()));
        let later = chain.mine(1);
        let feed = feed_seeing(&chain, seen);
        announce(&feed, &chain, &later).await;
        let grown = Arc::new(chain.view());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            view.send_replace(grown);
        });
        let started = tokio::time::Instant::now();
        assert!(feed.logs_of(&empty).await.unwrap().is_empty());
        assert_eq!(started.elapsed(), Duration::from_millis(5));
    }

    /// What the stream announced on another fork says nothing about a block: its empty
    /// answer waits out the grace.
    #[tokio::test(start_paused = true)]
    async fn the_stream_on_another_fork_has_not_reached_a_block() {
        let chain = Arc::new(ScriptedChain::new(true));
        chain.mine(0);
        let old = chain.mine(1);
        let streamed = chain
            .logs(&feed(&chain).filter, LogRange::Block(old.hash()))
            .await
            .unwrap();
        // The chain forks below `old`; the view holds the new branch.
        let replacement = chain.reorg(2, &[0, 0, 0]);
        let (_view, seen) = watch::channel(Arc::new(chain.view()));
        let feed = feed_seeing(&chain, seen);
        for log in streamed {
            feed.receive(StreamedLog::of(&log));
        }
        let started = tokio::time::Instant::now();
        assert!(feed.logs_of(&replacement[0]).await.unwrap().is_empty());
        assert!(started.elapsed() >= STREAM_GRACE);
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

    /// A short read is told how many held logs it lacks; on its last re-read, which
    /// logs, read in full.
    #[test]
    fn a_short_read_is_told_what_the_stream_saw() {
        let mut block = StreamedBlock::new(7);
        for i in 0..4 {
            block.announce(StreamedLog::of(&log(i)));
        }
        let early = block.check(&[log(0), log(2)], false);
        assert_eq!((early.lacking, early.let_go), (2, 0));
        assert!(
            early.missing.is_empty(),
            "read in full before the last read"
        );
        let Shortfall {
            lacking,
            missing,
            let_go,
            ..
        } = block.check(&[log(0), log(2)], true);
        assert_eq!(indices(&missing), vec![1, 3]);
        assert_eq!((lacking, let_go), (2, 0));
    }

    #[test]
    fn once_let_go_only_the_indices_are_compared() {
        let mut block = StreamedBlock::new(7);
        for i in 0..3 {
            block.announce(StreamedLog::of(&log(i)));
        }
        assert_eq!(block.release_if_passed(6, 7 + HOLD_BLOCKS).0, 0);
        assert_eq!(block.logs.len(), 3, "a claim is not past it");
        block.release_if_passed(7, 7 + HOLD_BLOCKS - 1);
        assert_eq!(block.logs.len(), 3, "the stream is not far enough past it");
        block.release_if_passed(7, 7 + HOLD_BLOCKS);
        assert!(block.logs.is_empty());
        block.announce(StreamedLog::of(&log(3)));
        assert!(block.logs.is_empty());
        let Shortfall {
            lacking,
            missing,
            let_go,
            ..
        } = block.check(&[log(0)], true);
        assert!(missing.is_empty());
        assert_eq!((lacking, let_go), (0, 3));
    }

    /// A notification for block 7 whose position reads but whose other fields do not.
    fn unreadable(index: Option<u64>) -> StreamedLog {
        let json = serde_json::json!({
            "address": "nonsense", "topics": [], "data": "0x",
            "blockHash": B256::repeat_byte(7), "blockNumber": "0x7",
            "transactionIndex": null, "logIndex": index.map(|i| format!("{i:#x}")),
        });
        StreamedLog::parse(serde_json::value::to_raw_value(&json).unwrap()).unwrap()
    }

    /// The same for `block` of a scripted chain.
    fn unreadable_in(block: &BlockRecord, index: Option<u64>) -> StreamedLog {
        let mut odd = unreadable(index);
        odd.block_hash = Some(block.hash());
        odd.block_number = Some(block.number());
        odd
    }

    /// A held log that does not read as a log counts as lacking until the last
    /// read, which forgets it: not merged in, not counted as let go (then, or once the
    /// block is let go), and a readable copy of its index announced later is held.
    #[test]
    fn a_held_log_that_is_not_a_log_is_forgotten_on_the_last_read() {
        let mut block = StreamedBlock::new(7);
        block.announce(StreamedLog::of(&log(0)));
        block.announce(unreadable(Some(1)));
        let early = block.check(&[log(0)], false);
        assert_eq!(
            (early.lacking, early.unreadable),
            (1, 0),
            "not yet forgotten"
        );
        let last = block.check(&[log(0)], true);
        assert_eq!((last.lacking, last.let_go, last.unreadable), (0, 0, 1));
        assert!(last.missing.is_empty() && last.first_error.is_some());
        assert_eq!(block.check(&[log(0)], true).unreadable, 0, "forgotten once");

        block.announce(StreamedLog::of(&log(1)));
        assert_eq!(indices(&block.check(&[log(0)], true).missing), vec![1]);

        let mut released = StreamedBlock::new(7);
        released.announce(unreadable(Some(2)));
        assert_eq!(released.check(&[], true).unreadable, 1);
        released.release_if_passed(7, 7 + HOLD_BLOCKS);
        let after = released.check(&[], true);
        assert_eq!((after.lacking, after.let_go), (0, 0));
    }

    /// Logs without an index share one announced index: forgetting an unreadable one keeps
    /// it while a readable one is held, so the read still answers for that one once it is
    /// let go.
    #[test]
    fn forgetting_an_unreadable_log_keeps_an_index_another_log_holds() {
        let mut block = StreamedBlock::new(7);
        let mut without_index = log(0);
        without_index.log_index = None;
        block.announce(StreamedLog::of(&without_index));
        block.announce(unreadable(None));
        let last = block.check(&[], true);
        assert_eq!((last.missing.len(), last.unreadable), (1, 1));
        assert_eq!((last.lacking, last.let_go), (1, 0));
        block.release_if_passed(7, 7 + HOLD_BLOCKS);
        assert_eq!(block.check(&[], true).let_go, 1);
    }

    /// A log announced after the block's reads, which no read returned, is read in full as
    /// the block is let go: an unreadable one is forgotten then (a later read of the block
    /// is not held to it), a readable one is still compared by its index.
    #[test]
    fn an_unreadable_log_no_read_returned_is_forgotten_as_the_block_is_let_go() {
        let mut block = StreamedBlock::new(7);
        block.announce(StreamedLog::of(&log(0)));
        assert_eq!(block.check(&[log(0)], false).lacking, 0);
        block.announce(unreadable(Some(1)));
        block.announce(StreamedLog::of(&log(2)));
        let (forgotten, error) = block.release_if_passed(7, 7 + HOLD_BLOCKS);
        assert_eq!(forgotten, 1);
        assert!(error.is_some(), "the warning says why");
        let after = block.check(&[log(0), log(2)], true);
        assert_eq!((after.lacking, after.let_go), (0, 0));
        assert_eq!(block.check(&[log(0)], true).let_go, 1);
    }

    /// A read that found logs before the stream announced them notes what it returned:
    /// the logs announced later are not read in full as the block is let go (an unreadable
    /// one keeps its index), and the entry does not count as the stream reaching the block.
    #[tokio::test(start_paused = true)]
    async fn a_read_ahead_of_the_stream_confirms_what_it_returned() {
        let chain = Arc::new(ScriptedChain::new(true));
        let block = chain.mine(2);
        let (_view, seen) = watch::channel(Arc::new(chain.view()));
        let feed = feed_seeing(&chain, seen);
        let claim = feed.claim().unwrap();
        let read = claim.logs_of(&block).await.unwrap();
        assert_eq!(read.len(), 2);
        assert!(
            !feed.lock().has_reached(&block, &chain.view()),
            "a read is not the stream"
        );
        feed.receive(unreadable_in(&block, read[0].log_index));
        feed.receive(StreamedLog::of(&read[1]));
        assert!(feed.lock().has_reached(&block, &chain.view()));
        claim.passed(block.number());
        feed.receive(StreamedLog::of(&later(&read[0], HOLD_BLOCKS)));
        let streamed = feed.lock();
        let let_go = &streamed.blocks[&block.hash()];
        assert!(let_go.released);
        assert_eq!(
            let_go.announced.len(),
            2,
            "a log a read returned was forgotten"
        );
    }

    /// A read lacking only a log the node announced but nexum cannot read is read again,
    /// as any short read is (a lagging backend looks the same), then believed.
    #[tokio::test(start_paused = true)]
    async fn a_read_lacking_only_an_unreadable_log_is_read_again_then_believed() {
        let chain = Arc::new(ScriptedChain::new(true));
        let block = chain.mine(2);
        let feed = feed(&chain);
        announce(&feed, &chain, &block).await;
        // The block's own position on the scripted chain, not block 7's.
        feed.receive(unreadable_in(&block, Some(9)));
        let expected = logs_in(&chain, &block).await;
        let reads = chain.log_reads();
        let started = tokio::time::Instant::now();
        let read = feed.logs_of(&block).await.unwrap();
        assert_eq!(read, expected);
        assert_eq!(started.elapsed(), REREAD_PAUSE * REREADS);
        assert_eq!(chain.log_reads(), reads + 1 + u64::from(REREADS));
        // Forgotten: the next read of the block is believed at once.
        let started = tokio::time::Instant::now();
        assert_eq!(feed.logs_of(&block).await.unwrap(), expected);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[test]
    fn a_log_announced_twice_counts_once() {
        let mut block = StreamedBlock::new(7);
        block.announce(StreamedLog::of(&log(0)));
        block.announce(StreamedLog::of(&log(0)));
        let Shortfall { missing, .. } = block.check(&[], true);
        assert_eq!(indices(&missing), vec![0]);
    }

    /// A block whose announced logs were all unreadable, and forgotten, was still reached
    /// by the stream: an empty read of it is believed at once, not after the grace.
    #[tokio::test(start_paused = true)]
    async fn a_block_whose_announced_logs_were_all_forgotten_was_still_reached() {
        let mut block = StreamedBlock::new(7);
        block.announce(unreadable(Some(1)));
        assert_eq!(block.check(&[], true).unreadable, 1);
        assert!(block.announced.is_empty());
        assert!(block.was_announced(), "forgetting a log unheard the block");

        let chain = Arc::new(ScriptedChain::new(true));
        let mined = chain.mine(1);
        let (_view, seen) = watch::channel(Arc::new(chain.view()));
        let feed = feed_seeing(&chain, seen);
        feed.receive(unreadable_in(&mined, Some(9)));
        assert_eq!(feed.check(&mined, &[], true).unreadable, 1);
        chain.cut_short_once(mined.hash(), 1);
        let started = tokio::time::Instant::now();
        assert!(feed.logs_of(&mined).await.unwrap().is_empty());
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    /// An entry a read made for a later block is not the stream reaching it: an earlier
    /// block's empty read waits, and wakes on the stream's first log into that entry.
    #[tokio::test(start_paused = true)]
    async fn a_later_block_only_read_is_not_the_stream_reaching_an_earlier_one() {
        let chain = Arc::new(ScriptedChain::new(true));
        let earlier = chain.mine(1);
        let later = chain.mine(1);
        let (_view, seen) = watch::channel(Arc::new(chain.view()));
        let feed = feed_seeing(&chain, seen);
        let read = feed.logs_of(&later).await.unwrap();
        assert_eq!(read.len(), 1);
        assert!(feed.lock().blocks.contains_key(&later.hash()));
        assert!(!feed.lock().has_reached(&earlier, &chain.view()));

        let streamed = feed.clone();
        let log = read[0].clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            streamed.receive(StreamedLog::of(&log));
        });
        chain.cut_short_once(earlier.hash(), 1);
        let started = tokio::time::Instant::now();
        assert!(feed.logs_of(&earlier).await.unwrap().is_empty());
        assert_eq!(started.elapsed(), Duration::from_millis(5));
    }

    /// A read that makes an entry drops those the window has left behind: the window the
    /// stream keeps as it moves on (16 blocks back here).
    #[tokio::test(start_paused = true)]
    async fn a_read_making_an_entry_drops_those_out_of_the_window() {
        let chain = Arc::new(ScriptedChain::new(true));
        let old = chain.mine(1);
        let feed = feed(&chain);
        announce(&feed, &chain, &old).await;
        chain.mine_quietly(15, 0);
        let within = chain.mine(1);
        assert_eq!(within.number(), old.number() + 16);
        feed.logs_of(&within).await.unwrap();
        assert!(
            feed.lock().blocks.contains_key(&old.hash()),
            "dropped too early"
        );
        let beyond = chain.mine(1);
        feed.logs_of(&beyond).await.unwrap();
        let streamed = feed.lock();
        assert!(!streamed.blocks.contains_key(&old.hash()));
        assert!(streamed.blocks.contains_key(&within.hash()));
        assert!(streamed.blocks.contains_key(&beyond.hash()));
    }
}

//! A chain in memory that a test scripts: blocks with logs, reorgs of any depth, heads that
//! are announced or skipped, logs a node announces itself as removed, ranges refused as too
//! large, answers cut short, and failures — what delivery must survive and a local node
//! does not produce on demand.

use super::follower::CanonicalView;
use super::reader::{ChainReader, HeadStream, LogStream};
use crate::chain::client::Next;
use crate::chain::wire::{LogRange, StreamedLog};
use crate::chain::{BlockRecord, NodeError};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use nexum_core::{Block, ChainId, ChainLog, LogFilter};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;

/// The contract every scripted log comes from.
pub(crate) const EMITTER: Address = Address::repeat_byte(0xee);

/// Topic 0 of every scripted log.
pub(crate) fn event_topic() -> B256 {
    keccak256("Scripted(uint256)")
}

#[derive(Default)]
struct State {
    /// The canonical chain, by number.
    canonical: BTreeMap<u64, BlockRecord>,
    /// Every block ever made, orphans included, by hash.
    known: HashMap<B256, BlockRecord>,
    /// Each block's logs, by block hash.
    logs: HashMap<B256, Vec<ChainLog>>,
    heads: Vec<mpsc::UnboundedSender<BlockRecord>>,
    log_streams: Vec<(LogFilter, mpsc::UnboundedSender<ChainLog>)>,
    /// `eth_getLogs` over more blocks than this is refused as too large.
    max_range: Option<u64>,
    /// The next reads that fail.
    failures: u32,
    /// Blocks whose next reads by hash leave out their last `n` logs: (n, reads left).
    short_answers: HashMap<B256, (usize, u32)>,
    /// Makes the blocks of each fork differ from the blocks they replace.
    fork: u64,
    /// A sequence number for every log ever made.
    sequence: u64,
    /// How many log reads were made (`eth_getLogs`).
    log_reads: u64,
    /// Log reads fail while this is set (the rest of the node answers).
    logs_down: bool,
    /// Log notifications wait here while set, until released.
    streams_held: bool,
    held: Vec<ChainLog>,
}

impl State {
    /// Announces `log` on every log stream whose filter it matches.
    fn stream(&self, log: &ChainLog) {
        for (filter, stream) in &self.log_streams {
            if filter.matches(log) {
                let _ = stream.send(log.clone());
            }
        }
    }
}

/// A chain a test scripts; see the module docs.
pub(crate) struct ScriptedChain {
    chain_id: ChainId,
    pushes: bool,
    state: Mutex<State>,
}

impl ScriptedChain {
    /// A chain with a genesis block; `pushes` says whether heads and logs are pushed.
    pub fn new(pushes: bool) -> Self {
        let chain = Self {
            chain_id: 1,
            pushes,
            state: Mutex::default(),
        };
        chain.append(0, false);
        chain
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest block's number.
    pub fn head(&self) -> u64 {
        *self.lock().canonical.keys().next_back().expect("genesis")
    }

    /// Mines a block holding `logs` logs of [`EMITTER`] and announces it.
    pub fn mine(&self, logs: usize) -> BlockRecord {
        self.append(logs, true)
    }

    /// Mines `blocks` blocks of `logs` logs each without announcing them (a dropped
    /// subscription); the next announced head leaves a gap.
    pub fn mine_quietly(&self, blocks: usize, logs: usize) {
        for _ in 0..blocks {
            self.append(logs, false);
        }
    }

    /// The canonical chain as a follower would see it.
    pub fn view(&self) -> CanonicalView {
        CanonicalView::of(self.lock().canonical.values().cloned())
    }

    /// Replaces the newest `depth` blocks with as many new ones holding `logs[i]` logs, and
    /// announces the new head; returns the new blocks.
    pub fn reorg(&self, depth: u64, logs: &[usize]) -> Vec<BlockRecord> {
        {
            let mut state = self.lock();
            state.fork += 1;
            let head = *state.canonical.keys().next_back().expect("genesis");
            for number in head + 1 - depth..=head {
                state.canonical.remove(&number);
            }
        }
        (logs.iter().enumerate())
            .map(|(i, count)| self.append(*count, i + 1 == logs.len()))
            .collect()
    }

    /// Sends, on every log stream, `removed: true` copies of the logs block `hash` held —
    /// what geth does on a reorg.
    pub fn announce_removed(&self, hash: B256) {
        let state = self.lock();
        for log in state
            .logs
            .get(&hash)
            .cloned()
            .unwrap_or_default()
            .iter()
            .rev()
        {
            let removed = ChainLog {
                removed: true,
                ..log.clone()
            };
            for (filter, stream) in &state.log_streams {
                if filter.matches(&removed) {
                    let _ = stream.send(removed.clone());
                }
            }
        }
    }

    /// Refuses `eth_getLogs` over more than `blocks` blocks, as providers do.
    pub fn refuse_ranges_over(&self, blocks: u64) {
        self.lock().max_range = Some(blocks);
    }

    /// Fails the next `reads` reads.
    pub fn fail_next(&self, reads: u32) {
        self.lock().failures = reads;
    }

    /// Leaves the last `missing` logs of block `hash` out of its next read by hash (a
    /// load-balanced node answering from a lagging backend).
    pub fn cut_short_once(&self, hash: B256, missing: usize) {
        self.cut_short(hash, missing, 1);
    }

    /// The same for the next `reads` reads of block `hash`.
    pub fn cut_short(&self, hash: B256, missing: usize, reads: u32) {
        self.lock().short_answers.insert(hash, (missing, reads));
    }

    /// Holds back log notifications (they arrive late, as on a connection of their own).
    pub fn hold_streams(&self) {
        self.lock().streams_held = true;
    }

    /// Sends the held notifications, and every later one at once.
    pub fn release_streams(&self) {
        let mut state = self.lock();
        state.streams_held = false;
        for log in std::mem::take(&mut state.held) {
            state.stream(&log);
        }
    }

    /// Makes every `eth_getLogs` fail (`true`) or answer again (`false`).
    pub fn logs_down(&self, down: bool) {
        self.lock().logs_down = down;
    }

    /// How many `eth_getLogs` reads were made so far.
    pub fn log_reads(&self) -> u64 {
        self.lock().log_reads
    }

    /// The canonical `(block, log index)` of every log from block `from` on.
    pub fn canonical_logs(&self, from: u64) -> Vec<(u64, u64)> {
        let state = self.lock();
        state
            .canonical
            .range(from..)
            .flat_map(|(number, block)| {
                state.logs[&block.hash()]
                    .iter()
                    .map(|l| (*number, l.log_index.unwrap()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn append(&self, logs: usize, announce: bool) -> BlockRecord {
        let mut state = self.lock();
        let (number, parent_hash) = match state.canonical.last_key_value() {
            Some((number, parent)) => (number + 1, parent.hash()),
            None => (0, B256::ZERO),
        };
        let hash = keccak256(
            [
                number.to_be_bytes(),
                state.fork.to_be_bytes(),
                parent_hash.0[..8].try_into().unwrap(),
            ]
            .concat(),
        );
        let record = BlockRecord {
            block: Block {
                chain_id: self.chain_id,
                number,
                hash,
                parent_hash,
                timestamp: number * 12_000,
            },
            bloom: None,
        };
        let mut made = Vec::with_capacity(logs);
        for index in 0..logs {
            state.sequence += 1;
            made.push(ChainLog {
                address: EMITTER,
                topics: vec![event_topic(), B256::from(U256::from(state.sequence))],
                data: Bytes::new(),
                block_number: Some(number),
                block_hash: Some(hash),
                transaction_hash: Some(keccak256(state.sequence.to_be_bytes())),
                transaction_index: Some(index as u64),
                log_index: Some(index as u64),
                removed: false,
            });
        }
        state.canonical.insert(number, record.clone());
        state.known.insert(hash, record.clone());
        state.logs.insert(hash, made.clone());
        if announce {
            state.heads.retain(|h| h.send(record.clone()).is_ok());
            if state.streams_held {
                state.held.extend(made.iter().cloned());
            } else {
                for log in &made {
                    state.stream(log);
                }
            }
        }
        record
    }

    /// Counts a read and fails it if the script says so.
    fn read(&self) -> Result<std::sync::MutexGuard<'_, State>, NodeError> {
        let mut state = self.lock();
        if state.failures > 0 {
            state.failures -= 1;
            return Err(NodeError::Unavailable("scripted failure".into()));
        }
        Ok(state)
    }
}

/// A stream fed by the scripted chain.
pub(crate) struct Fed<T>(mpsc::UnboundedReceiver<T>);

impl HeadStream for Fed<BlockRecord> {
    async fn next(&mut self) -> Next<BlockRecord> {
        match self.0.recv().await {
            Some(item) => Next::Item(item),
            None => Next::Closed,
        }
    }
}

impl LogStream for Fed<ChainLog> {
    async fn next(&mut self) -> Next<StreamedLog> {
        match self.0.recv().await {
            Some(item) => Next::Item(StreamedLog::of(&item)),
            None => Next::Closed,
        }
    }
}

impl ChainReader for ScriptedChain {
    type Heads = Fed<BlockRecord>;
    type Logs = Fed<ChainLog>;

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    fn pushes(&self) -> bool {
        self.pushes
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(50)
    }

    async fn latest_block(&self) -> Result<BlockRecord, NodeError> {
        let state = self.read()?;
        Ok(state.canonical.last_key_value().expect("genesis").1.clone())
    }

    async fn block_by_number(&self, number: u64) -> Result<Option<BlockRecord>, NodeError> {
        Ok(self.read()?.canonical.get(&number).cloned())
    }

    async fn block_by_hash(&self, hash: B256) -> Result<Option<BlockRecord>, NodeError> {
        Ok(self.read()?.known.get(&hash).cloned())
    }

    fn logs(
        &self,
        filter: &LogFilter,
        range: LogRange,
    ) -> impl Future<Output = Result<Vec<ChainLog>, NodeError>> + Send {
        let answer = (|| {
            let mut state = self.read()?;
            state.log_reads += 1;
            if state.logs_down {
                return Err(NodeError::Unavailable("scripted: logs unavailable".into()));
            }
            let hashes: Vec<B256> = match range {
                LogRange::Block(hash) => vec![hash],
                LogRange::Numbers { from, to } => {
                    if let Some(max) = state.max_range
                        && to - from + 1 > max
                    {
                        return Err(NodeError::Rpc {
                            code: -32005,
                            message: format!("query exceeds max block range {max}"),
                            data: None,
                        });
                    }
                    state
                        .canonical
                        .range(from..=to)
                        .map(|(_, b)| b.hash())
                        .collect()
                }
            };
            let mut out = Vec::new();
            for hash in hashes {
                let mut logs = state.logs.get(&hash).cloned().unwrap_or_default();
                if let LogRange::Block(_) = range
                    && let Some((missing, reads)) = state.short_answers.get_mut(&hash)
                {
                    logs.truncate(logs.len().saturating_sub(*missing));
                    *reads = reads.saturating_sub(1);
                    if *reads == 0 {
                        state.short_answers.remove(&hash);
                    }
                }
                out.extend(logs.into_iter().filter(|l| filter.matches(l)));
            }
            Ok(out)
        })();
        std::future::ready(answer)
    }

    async fn subscribe_heads(&self) -> Result<Fed<BlockRecord>, NodeError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.read()?.heads.push(sender);
        Ok(Fed(receiver))
    }

    fn subscribe_logs(
        &self,
        filter: &LogFilter,
    ) -> impl Future<Output = Result<Fed<ChainLog>, NodeError>> + Send {
        let answer = self.read().map(|mut state| {
            let (sender, receiver) = mpsc::unbounded_channel();
            state.log_streams.push((filter.clone(), sender));
            Fed(receiver)
        });
        std::future::ready(answer)
    }
}

//! Delivery without a node: the follower, feeds and driver wired as in the runtime, over a
//! [`ScriptedChain`], handing events to a recording supervisor that commits their
//! bookkeeping to an in-memory ledger. Time is paused, so backoffs cost nothing.

use super::scripted::{EMITTER, ScriptedChain, event_topic};
use super::{DeliveredHeights, fix_start_positions, spawn};
use crate::ledger::{Bookkeeping, Ledger};
use nexum_core::{
    Capability, ChainLogs, Delivery, DeliveryPolicy, DispatchError, Event, Limits, LogFilter,
    LogSubscription, ModuleInfo, ModuleStatus, ModuleTotals, Outcome, ShutdownSummary,
    Subscription, Supervisor,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const MODULE: &str = "m";

/// A supervisor with one module that records what it is given and commits the engine's
/// bookkeeping the way the worker does.
struct Recording {
    info: ModuleInfo,
    ledger: Ledger,
    events: Mutex<Vec<Event>>,
    /// Takes this many events, then answers as a module that closed (nothing committed).
    accept: Option<usize>,
    refused: AtomicBool,
    /// Every event is taken (and its bookkeeping committed) as it is queued; an outcome
    /// awaited while the gate is closed is answered only once it opens: a module busy.
    gate: watch::Sender<bool>,
}

impl Supervisor for Recording {
    type Bookkeeping = Bookkeeping;

    fn modules(&self) -> Vec<ModuleInfo> {
        vec![self.info.clone()]
    }

    fn try_dispatch(&self, _: &str, delivery: Delivery<Bookkeeping>) -> Result<(), DispatchError> {
        self.take(delivery)
    }

    type Handled =
        std::pin::Pin<Box<dyn Future<Output = Result<Outcome, DispatchError>> + Send + Sync>>;

    async fn queue(
        &self,
        _: &str,
        delivery: Delivery<Bookkeeping>,
    ) -> Result<Self::Handled, DispatchError> {
        self.take(delivery)?;
        let mut gate = self.gate.subscribe();
        Ok(Box::pin(async move {
            let _ = gate.wait_for(|open| *open).await;
            Ok(Outcome::Handled)
        }))
    }

    async fn shutdown(&self) -> ShutdownSummary {
        ShutdownSummary::default()
    }
}

impl Recording {
    fn take(&self, delivery: Delivery<Bookkeeping>) -> Result<(), DispatchError> {
        let mut events = self.events.lock().unwrap();
        if self.accept.is_some_and(|n| events.len() >= n) {
            self.refused.store(true, Ordering::SeqCst);
            return Err(DispatchError::Closed);
        }
        self.ledger
            .record(&delivery.bookkeeping.0)
            .expect("committing bookkeeping");
        events.push(delivery.event);
        Ok(())
    }

    /// Every log entry received, in order: `(block, log index, removed)`.
    fn journal(&self) -> Vec<(u64, u64, bool)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::ChainLogs(ChainLogs { logs, .. }) => Some(logs.clone()),
                _ => None,
            })
            .flatten()
            .map(|l| (l.block_number.unwrap(), l.log_index.unwrap(), l.removed))
            .collect()
    }

    /// The logs retracted (`removed: true`) after the first `since` journal entries, in the
    /// order they came.
    fn retracted_since(&self, since: usize) -> Vec<(u64, u64)> {
        self.journal()[since..]
            .iter()
            .filter(|e| e.2)
            .map(|e| (e.0, e.1))
            .collect()
    }

    /// The logs the module holds as canonical: received, and not retracted since.
    fn live(&self) -> BTreeSet<(u64, u64)> {
        let mut live = BTreeSet::new();
        for (block, index, removed) in self.journal() {
            if removed {
                assert!(
                    live.remove(&(block, index)),
                    "retracted ({block}, {index}) it never had"
                );
            } else {
                assert!(
                    live.insert((block, index)),
                    "({block}, {index}) delivered twice"
                );
            }
        }
        live
    }

    /// Whether every block's logs came after that block's own block event.
    fn each_block_before_its_logs(&self) -> bool {
        let mut blocks = BTreeSet::new();
        self.events.lock().unwrap().iter().all(|event| match event {
            Event::Block(b) => {
                blocks.insert(b.number);
                true
            }
            Event::ChainLogs(ChainLogs { logs, .. }) => logs
                .iter()
                .all(|l| blocks.contains(&l.block_number.unwrap())),
            Event::Tick(_) => true,
        })
    }

    /// Block numbers received, in order.
    fn blocks(&self) -> Vec<u64> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Block(b) => Some(b.number),
                _ => None,
            })
            .collect()
    }
}

/// Delivery to one module over `chain`, running.
struct Running {
    chain: Arc<ScriptedChain>,
    module: Arc<Recording>,
    stop: watch::Sender<bool>,
    heights: DeliveredHeights,
}

/// A block subscription and a log subscription of chain 1.
fn blocks_and_logs() -> Vec<Subscription> {
    vec![Subscription::Block { chain_id: 1 }, logs_subscription(None)]
}

fn logs_subscription(start_block: Option<u64>) -> Subscription {
    Subscription::Log(LogSubscription {
        chain_id: 1,
        filter: LogFilter {
            addresses: vec![EMITTER],
            topics: vec![vec![event_topic()]],
        },
        start_block,
    })
}

async fn start(
    chain: Arc<ScriptedChain>,
    subscriptions: Vec<Subscription>,
    policy: DeliveryPolicy,
) -> Running {
    start_on(chain, subscriptions, policy, Ledger::in_memory(), None).await
}

/// [`start`] over `ledger` (what an earlier run committed), with a module that takes
/// `accept` events and then closes.
async fn start_on(
    chain: Arc<ScriptedChain>,
    subscriptions: Vec<Subscription>,
    policy: DeliveryPolicy,
    ledger: Ledger,
    accept: Option<usize>,
) -> Running {
    let info = ModuleInfo {
        name: MODULE.into(),
        version: "1".into(),
        capabilities: [Capability::Logging].into(),
        subscriptions,
        limits: Limits::default(),
        component: nexum_core::ComponentDigest([0; 32]),
        status: ModuleStatus::Running,
        store_bytes: 0,
        log_lines_dropped: 0,
        totals: ModuleTotals::default(),
    };
    let chains = BTreeMap::from([(1, chain.clone())]);
    fix_start_positions(&[(MODULE, info.subscriptions.as_slice())], &chains, &ledger)
        .await
        .expect("start positions");
    let module = Arc::new(Recording {
        info,
        ledger: ledger.clone(),
        events: Mutex::default(),
        accept,
        refused: AtomicBool::new(false),
        gate: watch::channel(true).0,
    });
    let (stop, stopped) = watch::channel(false);
    let heights = DeliveredHeights::default();
    spawn(&module, &chains, &ledger, &heights, policy, &stopped);
    Running {
        chain,
        module,
        stop,
        heights,
    }
}

impl Running {
    /// Waits (in paused time) until delivery has handled the chain's head and `check`
    /// holds; fails with what the module holds otherwise.
    async fn settle(&self, mut check: impl FnMut(&Recording) -> bool) {
        for _ in 0..2_000 {
            let head = self.chain.head();
            if self.heights.get(MODULE, 1).is_some_and(|h| h >= head) && check(&self.module) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "delivery never settled: at {:?} of {}; holds {:?}",
            self.heights.get(MODULE, 1),
            self.chain.head(),
            self.module.journal()
        );
    }

    /// Waits until the module holds exactly the chain's logs from `from` on.
    async fn settle_on_canonical(&self, from: u64) {
        let expected: BTreeSet<(u64, u64)> = self.chain.canonical_logs(from).into_iter().collect();
        self.settle(|m| m.live() == expected).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

fn policy() -> DeliveryPolicy {
    DeliveryPolicy {
        reorg_depth: 16,
        get_logs_max_blocks: 100,
        max_block_catchup: 128,
    }
}

#[tokio::test(start_paused = true)]
async fn blocks_and_logs_arrive_once_in_chain_order() {
    let chain = Arc::new(ScriptedChain::new(true));
    let start_at = chain.head();
    let running = start(chain.clone(), blocks_and_logs(), policy()).await;
    for logs in [2, 0, 3, 1] {
        chain.mine(logs);
    }
    running.settle_on_canonical(start_at).await;
    let blocks = running.module.blocks();
    assert_eq!(blocks, (start_at..=chain.head()).collect::<Vec<_>>());
    assert!(running.module.each_block_before_its_logs());
    let journal = running.module.journal();
    assert!(
        journal
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
    );
}

#[tokio::test(start_paused = true)]
async fn a_block_event_does_not_wait_for_its_logs_to_be_read() {
    let chain = Arc::new(ScriptedChain::new(true));
    let start_at = chain.head();
    let running = start(chain.clone(), blocks_and_logs(), policy()).await;
    running.settle_on_canonical(start_at).await;
    chain.logs_down(true);
    let block = chain.mine(2).number();
    for _ in 0..2_000 {
        if running.module.blocks().contains(&block) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        running.module.blocks().contains(&block),
        "the block event waited for its logs"
    );
    assert!(running.module.journal().iter().all(|l| l.0 < block));
    // Once the logs can be read they follow, once, in order.
    chain.logs_down(false);
    running.settle_on_canonical(start_at).await;
    let journal = running.module.journal();
    assert!(
        journal
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
    );
    assert_eq!(
        running.module.blocks(),
        (start_at..=block).collect::<Vec<_>>()
    );
}

/// A block's events are queued together (its logs read while the module handles its block
/// event), and the next block's only once the module has handled them.
#[tokio::test(start_paused = true)]
async fn a_blocks_events_are_queued_together_and_the_next_block_waits_for_them() {
    let chain = Arc::new(ScriptedChain::new(true));
    let start_at = chain.head();
    let running = start(chain.clone(), blocks_and_logs(), policy()).await;
    running.settle_on_canonical(start_at).await;
    running.module.gate.send_replace(false);
    let block = chain.mine(2).number();
    chain.mine(1);
    for _ in 0..2_000 {
        if running.module.journal().iter().any(|l| l.0 == block) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        running.module.journal().iter().any(|l| l.0 == block),
        "the block's logs waited for its block event to be handled"
    );
    // Given time, nothing of the next block is queued while this one's are in hand, and
    // the block does not count as delivered.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(running.module.blocks().last(), Some(&block));
    assert!(running.module.journal().iter().all(|l| l.0 <= block));
    assert_eq!(running.heights.get(MODULE, 1), Some(block - 1));
    running.module.gate.send_replace(true);
    running.settle_on_canonical(start_at).await;
    assert_eq!(
        running.module.blocks(),
        (start_at..=chain.head()).collect::<Vec<_>>()
    );
    assert!(running.module.each_block_before_its_logs());
}

#[tokio::test(start_paused = true)]
async fn an_empty_answer_waits_briefly_for_the_stream_to_reach_its_block() {
    let chain = Arc::new(ScriptedChain::new(true));
    let start_at = chain.head();
    let running = start(chain.clone(), blocks_and_logs(), policy()).await;
    chain.mine(1);
    running.settle_on_canonical(start_at).await;
    // A lagging backend answers nothing for the new block, and the stream (on a connection
    // of its own) announces its logs a moment after that answer.
    chain.hold_streams();
    let block = chain.mine(2);
    chain.cut_short_once(block.hash(), 2);
    let late = chain.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        late.release_streams();
    });
    running.settle_on_canonical(start_at).await;
    assert_eq!(chain.canonical_logs(block.number()).len(), 2);
}

/// The stream has announced the old block at a replacement's height, so it is past that
/// number; a lagging backend answers nothing for the replacement, whose logs the stream
/// announces a moment later. They are delivered.
#[tokio::test(start_paused = true)]
async fn an_empty_answer_for_a_replacement_block_waits_for_the_stream() {
    let chain = Arc::new(ScriptedChain::new(true));
    let start_at = chain.head();
    let running = start(chain.clone(), vec![logs_subscription(None)], policy()).await;
    chain.mine(2);
    running.settle_on_canonical(start_at).await;
    // Mined once the stream is up: the stream announces the block to be replaced.
    chain.mine(2);
    running.settle_on_canonical(start_at).await;
    chain.hold_streams();
    let replacement = chain.reorg(1, &[3]);
    chain.cut_short_once(replacement[0].hash(), 3);
    let late = chain.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        late.release_streams();
    });
    running.settle_on_canonical(start_at).await;
}

#[tokio::test(start_paused = true)]
async fn a_reorg_of_one_block_retracts_it_then_delivers_the_replacement() {
    let chain = Arc::new(ScriptedChain::new(true));
    let start_at = chain.head();
    let running = start(chain.clone(), vec![logs_subscription(None)], policy()).await;
    for _ in 0..4 {
        chain.mine(2);
    }
    running.settle_on_canonical(start_at).await;
    let before = running.module.journal().len();
    let retracted: Vec<(u64, u64)> = chain.canonical_logs(chain.head());

    chain.reorg(1, &[3]);
    running.settle_on_canonical(start_at).await;
    let after = running.module.journal()[before..].to_vec();
    let removed = running.module.retracted_since(before);
    let mut newest_first = retracted;
    newest_first.reverse();
    assert_eq!(removed, newest_first);
    assert!(after[removed.len()..].iter().all(|e| !e.2), "{after:?}");
}

#[tokio::test(start_paused = true)]
async fn a_reorg_deeper_than_the_window_undoes_what_the_window_holds() {
    let chain = Arc::new(ScriptedChain::new(true));
    let start_at = chain.head();
    let shallow = DeliveryPolicy {
        reorg_depth: 4,
        ..policy()
    };
    let running = start(chain.clone(), vec![logs_subscription(None)], shallow).await;
    for _ in 0..10 {
        chain.mine(1);
    }
    running.settle_on_canonical(start_at).await;
    let tip = chain.head();
    let before: BTreeSet<(u64, u64)> = chain.canonical_logs(start_at).into_iter().collect();
    let journal_before = running.module.journal().len();

    // The new blocks hold two logs where the old held one, so what the module ends up
    // holding shows which blocks were read again.
    chain.reorg(6, &[2, 2, 2, 2, 2, 2]);
    chain.mine(1);
    // The four blocks it remembers are undone and read again; the two below keep what they
    // delivered (it can no longer know what they held).
    let window_start = tip + 1 - 4;
    let expected: BTreeSet<(u64, u64)> = before
        .into_iter()
        .filter(|(block, _)| *block < window_start)
        .chain(chain.canonical_logs(window_start))
        .collect();
    running.settle(|m| m.live() == expected).await;
    let removed = running.module.retracted_since(journal_before);
    let window_newest_first: Vec<(u64, u64)> =
        (window_start..=tip).rev().map(|block| (block, 0)).collect();
    assert_eq!(removed, window_newest_first, "retracted exactly the window");
}

#[tokio::test(start_paused = true)]
async fn a_gap_in_announced_heads_is_filled_from_the_chain() {
    let chain = Arc::new(ScriptedChain::new(true));
    let start_at = chain.head();
    let running = start(chain.clone(), blocks_and_logs(), policy()).await;
    chain.mine(1);
    chain.mine_quietly(5, 2);
    chain.mine(1);
    running.settle_on_canonical(start_at).await;
    assert_eq!(
        running.module.blocks(),
        (start_at..=chain.head()).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn a_node_that_announces_removed_logs_causes_no_double_retraction() {
    let chain = Arc::new(ScriptedChain::new(true));
    let start_at = chain.head();
    let running = start(chain.clone(), vec![logs_subscription(None)], policy()).await;
    for _ in 0..3 {
        chain.mine(2);
    }
    running.settle_on_canonical(start_at).await;
    let replaced = [chain.head() - 1, chain.head()];
    let hashes: Vec<_> = {
        let mut hashes = Vec::new();
        for number in replaced {
            hashes.push(
                crate::sources::chain::reader::ChainReader::block_by_number(&*chain, number)
                    .await
                    .unwrap()
                    .unwrap()
                    .hash(),
            );
        }
        hashes
    };
    let retracted = chain.canonical_logs(replaced[0]);
    let before = running.module.journal().len();
    chain.reorg(2, &[1, 1]);
    for hash in hashes.iter().rev() {
        chain.announce_removed(*hash);
    }
    chain.mine(1);
    running.settle_on_canonical(start_at).await;
    let removed = running.module.retracted_since(before);
    let mut newest_first = retracted;
    newest_first.reverse();
    assert_eq!(removed, newest_first, "each retraction exactly once");
}

#[tokio::test(start_paused = true)]
async fn a_partial_log_answer_is_read_again_until_complete() {
    let chain = Arc::new(ScriptedChain::new(true));
    let start_at = chain.head();
    let running = start(chain.clone(), vec![logs_subscription(None)], policy()).await;
    chain.mine(1);
    running.settle_on_canonical(start_at).await;
    // The node announces four logs, but its first read by hash returns only two (nothing
    // runs before the next await, so the driver has not read the block yet).
    let record = chain.mine(4);
    chain.cut_short_once(record.hash(), 2);
    let reads = chain.log_reads();
    running.settle_on_canonical(start_at).await;
    assert!(
        chain.log_reads() >= reads + 2,
        "the short answer was not read again"
    );
}

#[tokio::test(start_paused = true)]
async fn catch_up_shrinks_a_refused_range_and_reads_everything() {
    let chain = Arc::new(ScriptedChain::new(true));
    chain.mine_quietly(60, 1);
    chain.refuse_ranges_over(7);
    let running = start(chain.clone(), vec![logs_subscription(Some(1))], policy()).await;
    running.settle_on_canonical(1).await;
    assert_eq!(running.module.live().len(), 60);
}

#[tokio::test(start_paused = true)]
async fn a_failure_in_the_middle_of_catch_up_is_retried_without_loss_or_double() {
    let chain = Arc::new(ScriptedChain::new(true));
    chain.mine_quietly(40, 2);
    chain.refuse_ranges_over(10);
    let running = start(chain.clone(), vec![logs_subscription(Some(1))], policy()).await;
    // Let a read or two through, then fail several in a row mid-way.
    while chain.log_reads() < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    chain.fail_next(5);
    running.settle_on_canonical(1).await;
    assert_eq!(running.module.live().len(), 80);
}

#[tokio::test(start_paused = true)]
async fn a_node_without_push_is_polled_for_blocks_and_logs() {
    let chain = Arc::new(ScriptedChain::new(false));
    let start_at = chain.head();
    let running = start(chain.clone(), blocks_and_logs(), policy()).await;
    for logs in [1, 0, 2] {
        chain.mine(logs);
    }
    chain.mine_quietly(3, 1);
    running.settle_on_canonical(start_at).await;
    assert_eq!(
        running.module.blocks(),
        (start_at..=chain.head()).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn a_module_that_closes_mid_catch_up_resumes_from_its_last_commit() {
    let chain = Arc::new(ScriptedChain::new(true));
    chain.mine_quietly(30, 2);
    let ledger = Ledger::in_memory();
    let first = start_on(
        chain.clone(),
        vec![logs_subscription(Some(1))],
        policy(),
        ledger.clone(),
        Some(11),
    )
    .await;
    while !first.module.refused.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let handled = first.module.live();
    assert_eq!(
        handled.len(),
        22,
        "eleven blocks of two logs before closing"
    );
    drop(first);

    // A fresh driver over what the first committed: the rest, and nothing twice.
    let second = start_on(
        chain.clone(),
        vec![logs_subscription(Some(1))],
        policy(),
        ledger,
        None,
    )
    .await;
    let rest: BTreeSet<(u64, u64)> = chain
        .canonical_logs(1)
        .into_iter()
        .filter(|log| !handled.contains(log))
        .collect();
    second.settle(|m| m.live() == rest).await;
}

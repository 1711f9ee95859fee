//! Chain event sources, in three layers with narrow types between them:
//!
//! - [`follower`]: one per chain; follows the canonical head (a `newHeads` subscription on
//!   websockets, polling on HTTP), fills gaps, notices reorgs, and publishes a window of
//!   recent canonical blocks ([`CanonicalView`]);
//! - [`feed`]: one per distinct log filter on a websocket chain (unless its
//!   `cross_check_logs` is off); a shared `logs` subscription that cross-checks the
//!   `eth_getLogs` read of each block;
//! - [`driver`]: one per module and chain; walks the chain block by block and hands the
//!   module its block and log events, in chain order.
//!
//! All three read the chain through [`reader::ChainReader`], so unit tests
//! (`tests.rs`, over a scripted chain in `scripted.rs`) drive them through reorgs, gaps,
//! refusals and failures no local node produces on demand.

mod driver;
mod feed;
mod follower;
mod progress;
mod ranges;
pub(crate) mod reader;
mod retry;
#[cfg(test)]
mod scripted;
#[cfg(test)]
mod tests;

use driver::{DriverSubscription, ModuleChainDriver, Wanted};
use feed::LogFeed;
use follower::ChainFollower;

use crate::chain::NodeError;
use crate::ledger::{Bookkeeping, Entry, Ledger, Start, StoreError, SubscriptionId};
use nexum_core::{ChainId, DeliveryPolicy, LogFilter, ModuleInfo, Subscription, Supervisor};
use reader::ChainReader;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why start positions could not be fixed at boot.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The engine's records could not be read or written.
    #[error("fixing where subscriptions start: {0}")]
    Store(#[from] StoreError),
    /// The chain's head could not be read.
    #[error("fixing where subscriptions start: chain {chain}: {error}")]
    Chain {
        /// The chain.
        chain: ChainId,
        /// What the node said.
        error: NodeError,
    },
}

/// Decides, once, where each chain subscription of `modules` (name and subscriptions)
/// starts — its `start_block`, or else the chain's head now — and commits it, so that a
/// restart before the first event loses nothing. Subscriptions that have a cursor or a
/// start already keep them (an older store's records, kept under manifest indices, are
/// adopted first, once per module).
pub(crate) async fn fix_start_positions<C: ChainReader>(
    modules: &[(&str, &[Subscription])],
    chains: &BTreeMap<ChainId, Arc<C>>,
    ledger: &Ledger,
) -> Result<(), StartError> {
    let mut heads: BTreeMap<ChainId, u64> = BTreeMap::new();
    let mut starts = Vec::new();
    for &(module, subscriptions) in modules {
        let positions: Vec<(usize, String)> = subscriptions
            .iter()
            .enumerate()
            .filter_map(|(index, s)| s.position_key().map(|key| (index, key)))
            .collect();
        ledger.adopt_legacy_positions(module, &positions)?;
        for (index, position) in positions {
            let subscription = &subscriptions[index];
            let chain = subscription
                .chain_id()
                .expect("chain subscriptions have a chain");
            let id = SubscriptionId {
                module: module.to_string(),
                position,
            };
            if ledger.cursor(&id)?.is_some() || ledger.start(&id)?.is_some() {
                continue;
            }
            let next = match subscription {
                Subscription::Log(log) if log.start_block.is_some() => log.start_block,
                _ => None,
            };
            let next = match next {
                Some(block) => block,
                None => match heads.get(&chain) {
                    Some(head) => *head,
                    None => {
                        let client = chains
                            .get(&chain)
                            .expect("admitted modules read configured chains");
                        let head = read_head(client.as_ref())
                            .await
                            .map_err(|error| StartError::Chain { chain, error })?;
                        heads.insert(chain, head);
                        head
                    }
                },
            };
            tracing::info!(
                module,
                subscription = %subscription,
                start = next,
                "new subscription: delivery starts at block {next}"
            );
            starts.push(Entry::Start {
                id,
                start: Start { next },
            });
        }
    }
    ledger.record(&starts)?;
    Ok(())
}

/// The chain's head, read with a few retries: a node that answers `eth_chainId` but
/// stumbles once (a rate limit at boot) should not fail the start.
async fn read_head<C: ChainReader>(client: &C) -> Result<u64, NodeError> {
    use backon::Retryable;
    let policy = backon::ExponentialBuilder::new()
        .with_min_delay(std::time::Duration::from_millis(250))
        .with_max_delay(std::time::Duration::from_secs(2))
        .with_max_times(4);
    (|| async { client.latest_block().await.map(|b| b.number()) })
        .retry(policy)
        .notify(|e, wait| {
            tracing::warn!(chain = client.chain_id(), error = %e, retry_in_ms = wait.as_millis() as u64, "cannot read the head to fix where subscriptions start; retrying")
        })
        .await
}

/// How far delivery got, per module and chain: the last block handled. Shared by the
/// drivers (which write it) and the runtime (which reports it).
#[derive(Clone, Default)]
pub(crate) struct DeliveredHeights(Arc<std::sync::Mutex<BTreeMap<(String, ChainId), u64>>>);

impl DeliveredHeights {
    pub fn set(&self, module: &str, chain: ChainId, number: u64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((module.to_string(), chain), number);
    }

    /// Forgets a module that no longer runs.
    pub fn forget(&self, module: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(m, _), _| m != module);
    }

    /// Every module's delivered height on every chain.
    pub fn all(&self) -> Vec<((String, ChainId), u64)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub fn get(&self, module: &str, chain: ChainId) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(module.to_string(), chain))
            .copied()
    }
}

/// The chain side of the sources: one follower per chain and one feed per distinct log
/// filter, shared by every module and started when a module first needs them; and, per
/// module, its drivers, started and stopped with that module (a reload or a restart of one
/// module leaves the others' delivery untouched).
pub(crate) struct ChainSources<C> {
    chains: BTreeMap<ChainId, Arc<C>>,
    ledger: Ledger,
    heights: DeliveredHeights,
    policy: DeliveryPolicy,
    /// Stops the shared followers and feeds (at shutdown).
    stop: watch::Receiver<bool>,
    shared: std::sync::Mutex<Shared<C>>,
}

/// Followers and feeds, and their tasks.
struct Shared<C> {
    views: BTreeMap<ChainId, watch::Receiver<Arc<follower::CanonicalView>>>,
    feeds: HashMap<(ChainId, LogFilter), Arc<LogFeed<C>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl<C: ChainReader> ChainSources<C> {
    pub fn new(
        chains: BTreeMap<ChainId, Arc<C>>,
        ledger: Ledger,
        heights: DeliveredHeights,
        policy: DeliveryPolicy,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self {
            chains,
            ledger,
            heights,
            policy,
            stop,
            shared: std::sync::Mutex::new(Shared {
                views: BTreeMap::new(),
                feeds: HashMap::new(),
                tasks: Vec::new(),
            }),
        }
    }

    /// Starts `module`'s drivers (one per chain it reads), and the followers and feeds they
    /// need that are not running yet. The drivers stop when `stop` turns true or the
    /// module stops taking events.
    pub fn spawn_module<S>(
        &self,
        supervisor: &Arc<S>,
        module: &ModuleInfo,
        stop: &watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>>
    where
        S: Supervisor<Bookkeeping = Bookkeeping> + 'static,
    {
        let policy = self.policy;
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let Shared {
            views,
            feeds,
            tasks: shared_tasks,
        } = &mut *shared;
        // Feeds that stopped, unread, are let go.
        feeds.retain(|_, feed| !feed.is_closed());
        shared_tasks.retain(|task| !task.is_finished());
        // A chain's follower starts with the first module reading the chain; feeds read its
        // view too.
        let view_of =
            |views: &mut BTreeMap<ChainId, watch::Receiver<Arc<follower::CanonicalView>>>,
             tasks: &mut Vec<JoinHandle<()>>,
             client: &Arc<C>| {
                views
                    .entry(client.chain_id())
                    .or_insert_with(|| {
                        let follower = ChainFollower::new(client.clone(), policy.reorg_depth);
                        let view = follower.subscribe();
                        tasks.push(tokio::spawn(follower.run(self.stop.clone())));
                        view
                    })
                    .clone()
            };
        let mut per_chain: BTreeMap<ChainId, Vec<DriverSubscription<C>>> = BTreeMap::new();
        for (index, subscription) in module.subscriptions.iter().enumerate() {
            let Some(client) = subscription.chain_id().and_then(|c| self.chains.get(&c)) else {
                continue;
            };
            let Some(position) = subscription.position_key() else {
                continue;
            };
            let wanted = match subscription {
                Subscription::Block { .. } => Wanted::Blocks,
                Subscription::Log(log) => {
                    let claim = client.streams_logs().then(|| {
                        let key = (client.chain_id(), log.filter.clone());
                        // A feed that went unread long enough has stopped: a new one takes its
                        // place.
                        if let Some(claim) = feeds.get(&key).and_then(|feed| feed.claim()) {
                            return claim;
                        }
                        let feed = Arc::new(LogFeed::new(
                            client.clone(),
                            log.filter.clone(),
                            policy.reorg_depth,
                            view_of(views, shared_tasks, client),
                        ));
                        shared_tasks.push(tokio::spawn(feed.clone().run(self.stop.clone())));
                        let claim = feed.claim().expect("a new feed takes claims");
                        feeds.insert(key, feed);
                        claim
                    });
                    Wanted::logs(log.filter.clone(), claim.map(Arc::new))
                }
                Subscription::Cron(_) => continue,
            };
            per_chain
                .entry(client.chain_id())
                .or_default()
                .push(DriverSubscription {
                    index,
                    position,
                    wanted,
                });
        }
        let mut tasks = Vec::new();
        for (chain, subscriptions) in per_chain {
            let client = self
                .chains
                .get(&chain)
                .expect("grouped by configured chains")
                .clone();
            let view = view_of(views, shared_tasks, &client);
            let driver = ModuleChainDriver {
                supervisor: supervisor.clone(),
                module: module.name.clone(),
                heights: self.heights.clone(),
                client,
                view,
                subscriptions,
                ledger: self.ledger.clone(),
                policy,
            };
            tasks.push(tokio::spawn(driver.run(stop.clone())));
        }
        tasks
    }

    /// The newest canonical block the follower of `chain` knows, once it runs.
    pub fn head(&self, chain: ChainId) -> Option<u64> {
        let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let view = shared.views.get(&chain)?.borrow();
        view.tip().map(|tip| tip.number())
    }

    /// The followers' and feeds' tasks, to wait for at shutdown (after `stop`).
    pub fn take_shared_tasks(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.shared.lock().unwrap_or_else(|p| p.into_inner()).tasks)
    }
}

/// Starts chain delivery for every module of `supervisor`, all stopping with `stop` (the
/// unit tests' way in).
#[cfg(test)]
pub(crate) fn spawn<S, C>(
    supervisor: &Arc<S>,
    chains: &BTreeMap<ChainId, Arc<C>>,
    ledger: &Ledger,
    heights: &DeliveredHeights,
    policy: DeliveryPolicy,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>>
where
    S: Supervisor<Bookkeeping = Bookkeeping> + 'static,
    C: ChainReader,
{
    let sources = ChainSources::new(
        chains.clone(),
        ledger.clone(),
        heights.clone(),
        policy,
        stop.clone(),
    );
    let mut tasks = Vec::new();
    for module in supervisor.modules() {
        tasks.extend(sources.spawn_module(supervisor, &module, stop));
    }
    tasks.extend(sources.take_shared_tasks());
    tasks
}

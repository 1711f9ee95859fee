//! Chain event sources, in three layers with narrow types between them:
//!
//! - [`follower`]: one per chain; follows the canonical head (a `newHeads` subscription on
//!   websockets, polling on HTTP), fills gaps, notices reorgs, and publishes a window of
//!   recent canonical blocks ([`CanonicalView`]);
//! - [`feed`]: one per distinct log filter on a websocket chain; a shared `logs`
//!   subscription that cross-checks the `eth_getLogs` read of each block;
//! - [`driver`]: one per module and chain; walks the chain block by block and hands the
//!   module its block and log events, in chain order.

mod driver;
mod feed;
mod follower;
mod progress;
mod ranges;

use driver::{DriverSubscription, ModuleChainDriver, Wanted};
use feed::LogFeed;
use follower::ChainFollower;

use crate::capabilities::local_store::{StateStore, StoreError};
use crate::chain::{ChainPool, NodeError};
use crate::records;
use nexum_core::{ChainId, DeliveryPolicy, LogFilter, ModuleInfo, Subscription, Supervisor};
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
    #[error("fixing where subscriptions start: chain {chain}: {source}")]
    Chain {
        /// The chain.
        chain: ChainId,
        /// What the node said.
        source: NodeError,
    },
}

/// Decides, once, where each chain subscription of `modules` starts — its `start_block`, or
/// else the chain's head now — and commits it, so that a restart before the first event
/// loses nothing. Subscriptions that have a cursor or a start already keep them (records of
/// an older store, kept under manifest indices, are adopted first).
pub(crate) async fn fix_start_positions(
    modules: &[ModuleInfo],
    pool: &ChainPool,
    store: &StateStore,
) -> Result<(), StartError> {
    let mut heads: BTreeMap<ChainId, u64> = BTreeMap::new();
    let mut starts = Vec::new();
    for module in modules {
        for (index, subscription) in module.subscriptions.iter().enumerate() {
            let (Some(position), Some(chain)) =
                (subscription.position_key(), subscription.chain_id())
            else {
                continue;
            };
            store.adopt_legacy_positions(&module.name, index, &position)?;
            if store.cursor(&module.name, &position)?.is_some()
                || store.start(&module.name, &position)?.is_some()
            {
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
                        let client = pool
                            .get(chain)
                            .expect("admitted modules read configured chains");
                        let head = client
                            .latest_block()
                            .await
                            .map_err(|source| StartError::Chain { chain, source })?
                            .number();
                        heads.insert(chain, head);
                        head
                    }
                },
            };
            tracing::info!(
                module = module.name,
                subscription = %subscription,
                start = next,
                "new subscription: delivery starts at block {next}"
            );
            starts.push(records::put(
                records::start_key(&module.name, &position),
                &records::Start { next },
            ));
        }
    }
    store.engine_commit(&starts)?;
    Ok(())
}

/// Starts a follower per chain that has subscribers, a feed per distinct log filter on
/// websocket chains, and a driver per module and chain. Everything stops when `stop` does.
pub(crate) fn spawn<S: Supervisor + 'static>(
    supervisor: &Arc<S>,
    pool: &ChainPool,
    store: &StateStore,
    policy: DeliveryPolicy,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut views = BTreeMap::new();
    let mut feeds: HashMap<(ChainId, LogFilter), Arc<LogFeed>> = HashMap::new();

    for module in supervisor.modules() {
        let mut per_chain: BTreeMap<ChainId, Vec<DriverSubscription>> = BTreeMap::new();
        for (index, subscription) in module.subscriptions.iter().enumerate() {
            let Some(client) = subscription.chain_id().and_then(|c| pool.get(c)) else {
                continue;
            };
            let Some(position) = subscription.position_key() else {
                continue;
            };
            let wanted = match subscription {
                Subscription::Block { .. } => Wanted::Blocks,
                Subscription::Log(log) => {
                    let feed = client.is_websocket().then(|| {
                        feeds
                            .entry((client.chain_id(), log.filter.clone()))
                            .or_insert_with(|| {
                                let feed = Arc::new(LogFeed::new(
                                    client.clone(),
                                    log.filter.clone(),
                                    policy.reorg_depth,
                                ));
                                tasks.push(tokio::spawn(feed.clone().run(stop.clone())));
                                feed
                            })
                            .clone()
                    });
                    Wanted::Logs {
                        filter: log.filter.clone(),
                        feed,
                    }
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
        for (chain, subscriptions) in per_chain {
            let client = pool
                .get(chain)
                .expect("grouped by configured chains")
                .clone();
            let view = views
                .entry(chain)
                .or_insert_with(|| {
                    let follower = ChainFollower::new(client.clone(), policy.reorg_depth);
                    let view = follower.subscribe();
                    tasks.push(tokio::spawn(follower.run(stop.clone())));
                    view
                })
                .clone();
            let driver = ModuleChainDriver {
                supervisor: supervisor.clone(),
                module: module.name.clone(),
                client,
                view,
                subscriptions,
                store: store.clone(),
                policy,
            };
            tasks.push(tokio::spawn(driver.run(stop.clone())));
        }
    }
    tasks
}

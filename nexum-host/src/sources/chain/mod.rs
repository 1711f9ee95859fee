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

use crate::capabilities::local_store::StateStore;
use crate::chain::ChainPool;
use nexum_core::{ChainId, DeliveryPolicy, LogFilter, Subscription, Supervisor};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
            let mut start_block = None;
            let wanted = match subscription {
                Subscription::Block { .. } => Wanted::Blocks,
                Subscription::Log(log) => {
                    start_block = log.start_block;
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
                    wanted,
                    start_block,
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

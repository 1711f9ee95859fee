//! Following one chain's canonical head.
//!
//! The follower keeps the last `reorg_depth` canonical blocks. A new head whose parent is
//! not the block it knows at that height is a reorg (or a gap after a reconnect): it walks
//! back by parent hash to a block it knows and replaces everything above. Drivers compare
//! what they delivered against this window to notice that they must undo something.

use super::reader::{ChainReader, HeadStream};
use crate::chain::{BlockRecord, client::Next};
use crate::telemetry::names;
use alloy_primitives::B256;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// The recent canonical blocks of one chain, contiguous by number.
#[derive(Debug, Default, Clone)]
pub(crate) struct CanonicalView {
    blocks: BTreeMap<u64, Arc<BlockRecord>>,
}

impl CanonicalView {
    /// The newest block.
    pub fn tip(&self) -> Option<&Arc<BlockRecord>> {
        self.blocks.values().next_back()
    }

    /// The oldest block still remembered.
    pub fn oldest(&self) -> Option<u64> {
        self.blocks.keys().next().copied()
    }

    /// The canonical block at `number`, if remembered.
    pub fn get(&self, number: u64) -> Option<&Arc<BlockRecord>> {
        self.blocks.get(&number)
    }

    /// Whether `hash` is the canonical block at `number`: `None` when out of the window.
    pub fn is_canonical(&self, number: u64, hash: B256) -> Option<bool> {
        self.blocks.get(&number).map(|b| b.hash() == hash)
    }

    /// A view of exactly `blocks`.
    #[cfg(test)]
    pub fn of(blocks: impl IntoIterator<Item = BlockRecord>) -> Self {
        Self {
            blocks: (blocks.into_iter())
                .map(|b| (b.number(), Arc::new(b)))
                .collect(),
        }
    }
}

/// Whether the new blocks start more than one above the old tip (a gap was filled).
fn head_gap(segment: &[Arc<BlockRecord>], tip: u64) -> bool {
    segment
        .first()
        .is_some_and(|first| first.number() > tip + 1)
        || segment.len() > 1 && segment[0].number() > tip
}

/// Follows one chain and publishes its [`CanonicalView`].
pub(crate) struct ChainFollower<C> {
    client: Arc<C>,
    depth: u64,
    view: watch::Sender<Arc<CanonicalView>>,
}

impl<C: ChainReader> ChainFollower<C> {
    pub fn new(client: Arc<C>, depth: u64) -> Self {
        let (view, _) = watch::channel(Arc::new(CanonicalView::default()));
        Self {
            client,
            depth,
            view,
        }
    }

    /// A receiver of every new view.
    pub fn subscribe(&self) -> watch::Receiver<Arc<CanonicalView>> {
        self.view.subscribe()
    }

    /// Follows the head until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let chain = self.client.chain_id();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {}
            _ = async {
                if self.client.pushes() {
                    self.follow_subscription().await
                } else {
                    self.follow_polling().await
                }
            } => {}
        }
        tracing::debug!(chain, "chain follower stopped");
    }

    async fn follow_polling(&self) {
        loop {
            self.refresh().await;
            tokio::time::sleep(self.client.poll_interval()).await;
        }
    }

    async fn follow_subscription(&self) {
        let chain = self.client.chain_id();
        loop {
            let mut heads = super::retry::until_ok(
                || self.client.subscribe_heads(),
                |e, wait| tracing::warn!(chain, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot subscribe to new heads"),
            )
            .await;
            // Anything that happened before the subscription started.
            self.refresh().await;
            loop {
                // A quiet socket is checked against the chain every poll interval: the
                // client reconnects on its own, and what happened meanwhile shows up only here.
                let next = tokio::select! {
                    next = heads.next() => next,
                    _ = tokio::time::sleep(self.client.poll_interval()) => {
                        self.refresh().await;
                        continue;
                    }
                };
                match next {
                    Next::Item(head) => self.advance(head).await,
                    Next::Missed => {
                        tracing::warn!(
                            chain,
                            "missed new-head notifications; catching up from the chain"
                        );
                        self.refresh().await;
                    }
                    Next::Closed => {
                        self.count_reconnect();
                        tracing::warn!(chain, "new-head subscription closed; resubscribing");
                        break;
                    }
                }
            }
        }
    }

    fn count_reconnect(&self) {
        metrics::counter!(names::CHAIN_RECONNECTS, "chain" => self.client.chain_id().to_string())
            .increment(1);
    }

    /// Reads the latest block and advances to it.
    async fn refresh(&self) {
        match self.client.latest_block().await {
            Ok(head) => self.advance(head).await,
            Err(e) => {
                tracing::warn!(chain = self.client.chain_id(), error = %e, "cannot read the latest block")
            }
        }
    }

    /// Makes `head` the tip, filling any gap and replacing any blocks a reorg retracted.
    async fn advance(&self, head: BlockRecord) {
        let chain = self.client.chain_id();
        let current = self.view.borrow().clone();
        if current.is_canonical(head.number(), head.hash()) == Some(true) {
            return;
        }
        let tip = current.tip().map(|t| t.number());
        if tip.is_some_and(|tip| head.number() + self.depth < tip) {
            // A head far below what we know: a lagging node behind a load balancer.
            tracing::debug!(
                chain,
                number = head.number(),
                "ignoring a head far below the tip"
            );
            return;
        }

        // Walk back from `head` until it connects to a block we know; a gap longer than the
        // window is not walked (drivers read what they miss from the chain by number).
        let far_ahead = tip.is_some_and(|tip| head.number() > tip + self.depth);
        let mut segment = vec![Arc::new(head)];
        let connected = !far_ahead
            && loop {
                let first = &segment[0];
                let number = first.number();
                if number == 0 || current.blocks.is_empty() {
                    break true;
                }
                if current.is_canonical(number - 1, first.block.parent_hash) == Some(true) {
                    break true;
                }
                let below_window = current.oldest().is_none_or(|oldest| number - 1 < oldest);
                if below_window || segment.len() as u64 > self.depth {
                    break false;
                }
                match self.client.block_by_hash(first.block.parent_hash).await {
                    Ok(Some(parent)) => segment.insert(0, Arc::new(parent)),
                    Ok(None) => break false,
                    Err(e) => {
                        tracing::warn!(chain, error = %e, "cannot read a parent block; will retry on the next head");
                        return;
                    }
                }
            };

        let first = segment[0].number();
        if let Some(tip) = tip {
            if head_gap(&segment, tip) && self.client.pushes() {
                // The subscription skipped blocks: the socket dropped and came back.
                self.count_reconnect();
            }
            if !connected {
                tracing::warn!(
                    chain,
                    from = first,
                    to = segment.last().map(|b| b.number()),
                    "the new head does not connect to the remembered chain (long gap or deep reorg); starting a fresh window"
                );
            } else if first <= tip {
                tracing::info!(
                    chain,
                    depth = tip - first + 1,
                    fork_point = first.saturating_sub(1),
                    "reorg"
                );
            }
        }

        let mut next = if connected {
            let mut blocks = current.blocks.clone();
            blocks.retain(|number, _| *number < first);
            CanonicalView { blocks }
        } else {
            CanonicalView::default()
        };
        for block in segment {
            next.blocks.insert(block.number(), block);
        }
        let newest = next.tip().map_or(0, |t| t.number());
        crate::telemetry::record_chain_head(chain, newest);
        next.blocks.retain(|number, _| number + self.depth > newest);
        self.view.send_replace(Arc::new(next));
    }
}

//! Noticing that blocks a module handled stopped being canonical, and undoing them: their
//! logs come again with `removed = true`, newest first, and delivery resumes from the
//! fork point.

use super::{Driving, Halt, retry_node};
use crate::ledger::Bookkeeping;
use crate::sources::chain::follower::CanonicalView;
use crate::sources::chain::reader::ChainReader;
use alloy_primitives::B256;
use nexum_core::{ChainLog, ChainLogs, Event, Supervisor};

impl<S: Supervisor<Bookkeeping = Bookkeeping>, C: ChainReader> Driving<S, C> {
    /// The highest handled block that is still canonical, when a handled block is not.
    pub(super) async fn find_fork(&mut self, view: &CanonicalView) -> Option<u64> {
        let (&top, &hash) = self.processed.last_key_value()?;
        if self.canonical_hash(top, view).await == Some(hash) {
            return None;
        }
        let handled: Vec<(u64, B256)> =
            self.processed.iter().rev().map(|(n, h)| (*n, *h)).collect();
        for (number, hash) in handled {
            if self.canonical_hash(number, view).await == Some(hash) {
                return Some(number);
            }
        }
        let lowest = *self.processed.keys().next().expect("not empty");
        tracing::error!(
            module = self.module,
            chain = self.client.chain_id(),
            reorg_depth = self.policy.reorg_depth,
            "reorg deeper than the tracked depth; re-reading from block {lowest}"
        );
        Some(lowest.saturating_sub(1))
    }

    pub(super) async fn canonical_hash(&self, number: u64, view: &CanonicalView) -> Option<B256> {
        if let Some(block) = view.get(number) {
            return Some(block.hash());
        }
        retry_node(&self.module, || self.client.block_by_number(number))
            .await
            .map(|b| b.hash())
    }

    /// Retracts everything delivered above `fork` (logs again with `removed = true`,
    /// newest first) and moves every subscription back to the block after it.
    pub(super) async fn rewind(&mut self, fork: u64) -> Result<(), Halt> {
        debug_assert!(self.in_flight.is_empty(), "a block's events left unsettled");
        let chain_id = self.client.chain_id();
        let highest = self
            .progress
            .iter()
            .filter_map(|s| s.delivered.keys().next_back().copied())
            .max()
            .unwrap_or(fork);
        tracing::info!(
            module = self.module,
            chain = chain_id,
            fork_point = fork,
            "undoing deliveries above the fork point"
        );
        for number in (fork + 1..=highest).rev() {
            let below_hash = self
                .processed
                .get(&(number - 1))
                .copied()
                .unwrap_or(B256::ZERO);
            for position in 0..self.progress.len() {
                let sub = &self.progress[position];
                let Some(&hash) = sub.delivered.get(&number) else {
                    continue;
                };
                if sub.is_blocks() {
                    // New blocks at these heights are delivered again; nothing to take back.
                    continue;
                }
                let delivered = sub
                    .delivered_logs(&self.ledger, number, hash)
                    .map_err(Halt::Store)?;
                let logs: Vec<ChainLog> = delivered
                    .into_iter()
                    .rev()
                    .map(|l| ChainLog { removed: true, ..l })
                    .collect();
                let records = sub.retraction(number, below_hash);
                let index = sub.index;
                // One at a time, not queued together: the next retraction's logs are read
                // from the engine's records, and a store outage there ends the drive, which
                // must leave nothing queued behind it (see `Driving::in_flight`).
                self.send(
                    index,
                    Event::ChainLogs(ChainLogs { chain_id, logs }),
                    records,
                )
                .await?;
                self.progress[position].retracted(number, below_hash);
            }
        }
        for sub in &mut self.progress {
            sub.delivered.retain(|n, _| *n <= fork);
            sub.back_to(fork + 1);
        }
        self.processed.retain(|n, _| *n <= fork);
        Ok(())
    }
}

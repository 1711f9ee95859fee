//! Blocks behind the follower's window (after a restart, or for a module slower than the
//! chain): logs read from the chain in ranges that shrink when the node refuses them,
//! headers by number, and block catch-up capped by `max_block_catchup`.

use super::{Driving, Halt, Wanted, matching, retry_node};
use crate::chain::LogRange;
use crate::ledger::Bookkeeping;
use crate::sources::chain::ranges::{logs_in_range, next_span};
use crate::sources::chain::reader::ChainReader;
use crate::sources::chain::retry;
use alloy_primitives::B256;
use nexum_core::{ChainLog, LogFilter, Supervisor};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

impl<S: Supervisor<Bookkeeping = Bookkeeping>, C: ChainReader> Driving<S, C> {
    /// Blocks are clocks: a block subscription more than `max_block_catchup` behind skips
    /// the oldest missed blocks, and says so.
    pub(super) fn cap_block_catchup(&mut self, tip: u64) {
        let cap = self.policy.max_block_catchup;
        for sub in self.progress.iter_mut().filter(|s| s.is_blocks()) {
            let behind = (tip + 1).saturating_sub(sub.next);
            if behind > cap {
                let skipped = behind - cap;
                tracing::warn!(
                    module = self.module,
                    chain = self.client.chain_id(),
                    skipped,
                    from = sub.next,
                    resume_at = tip + 1 - cap,
                    max_block_catchup = cap,
                    "block subscription is too far behind; skipping {skipped} missed blocks"
                );
                sub.next = tip + 1 - cap;
            }
        }
    }

    /// Reads `from..=to` from the chain and delivers it block by block.
    pub(super) async fn catch_up(&mut self, from: u64, to: u64) -> Result<(), Halt> {
        tracing::debug!(
            module = self.module,
            chain = self.client.chain_id(),
            from,
            to,
            "catching up from the chain"
        );
        // Logs of every log subscription that still needs part of the range.
        let mut found = 0;
        let mut logs_by_sub: Vec<BTreeMap<u64, Vec<ChainLog>>> =
            Vec::with_capacity(self.progress.len());
        for position in 0..self.progress.len() {
            let sub = &self.progress[position];
            let mut by_block: BTreeMap<u64, Vec<ChainLog>> = BTreeMap::new();
            if let Wanted::Logs { filter, .. } = &sub.wanted
                && sub.next <= to
            {
                let start = from.max(sub.next);
                let filter = filter.clone();
                let logs = self.logs_between(&filter, start, to).await;
                found += logs.len();
                for log in matching(&filter, logs) {
                    by_block
                        .entry(log.block_number.unwrap_or_default())
                        .or_default()
                        .push(log);
                }
            }
            logs_by_sub.push(by_block);
        }
        self.span = next_span(to - from + 1, found, self.policy.get_logs_max_blocks);
        // Headers of the blocks block subscriptions need, and of the range's end.
        let mut wanted_headers: Vec<u64> = (from..=to)
            .filter(|n| self.progress.iter().any(|s| s.is_blocks() && s.next <= *n))
            .collect();
        if wanted_headers.last() != Some(&to) {
            wanted_headers.push(to);
        }
        let mut headers = BTreeMap::new();
        for number in wanted_headers {
            if let Some(block) =
                retry_node(&self.module, || self.client.block_by_number(number)).await
            {
                headers.insert(number, block);
            }
        }

        let with_logs: Vec<u64> = logs_by_sub.iter().flat_map(|m| m.keys().copied()).collect();
        let mut numbers: Vec<u64> = headers
            .keys()
            .copied()
            .filter(|n| *n != to || self.progress.iter().any(|s| s.is_blocks() && s.next <= to))
            .chain(with_logs)
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        for number in numbers {
            let logs: Vec<Vec<ChainLog>> = logs_by_sub
                .iter_mut()
                .map(|m| m.remove(&number).unwrap_or_default())
                .collect();
            let hash = headers
                .get(&number)
                .map(|h| h.hash())
                .or_else(|| logs.iter().flatten().find_map(|l| l.block_hash))
                .unwrap_or(B256::ZERO);
            let header = headers.get(&number).cloned().map(Arc::new);
            self.deliver_block(number, hash, header.as_deref(), logs)
                .await?;
            self.mark_processed(number, hash);
        }
        let end_hash = headers.get(&to).map_or(B256::ZERO, |h| h.hash());
        for sub in &mut self.progress {
            sub.passed(to);
        }
        if end_hash != B256::ZERO {
            self.mark_processed(to, end_hash);
        }
        self.save_idle_progress(to, end_hash, true);
        Ok(())
    }

    pub(super) async fn logs_between(
        &mut self,
        filter: &LogFilter,
        from: u64,
        to: u64,
    ) -> Vec<ChainLog> {
        let client = self.client.clone();
        let mut waits = retry::backoff();
        loop {
            let fetch = |a: u64, b: u64| {
                let client = client.clone();
                let filter = filter.clone();
                async move {
                    client
                        .logs(&filter, LogRange::Numbers { from: a, to: b })
                        .await
                }
            };
            // The span learnt from refusals outlives one attempt, so a retry is not a loop.
            match logs_in_range(fetch, from, to, &mut self.span).await {
                Ok(logs) => return logs,
                Err(e) => {
                    let wait = waits.next().unwrap_or(Duration::from_secs(30));
                    tracing::warn!(module = self.module, from, to, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot read logs; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

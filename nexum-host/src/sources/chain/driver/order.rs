//! The events of one block, in order: the `block` event first, then each log
//! subscription's logs, subscriptions ordered by their first log index.

use super::{Driving, Halt};
use crate::chain::BlockRecord;
use crate::ledger::Bookkeeping;
use crate::sources::chain::reader::ChainReader;
use alloy_primitives::B256;
use nexum_core::{ChainLog, ChainLogs, Event, Supervisor};

impl<S: Supervisor<Bookkeeping = Bookkeeping>, C: ChainReader> Driving<S, C> {
    /// Queues block `number`'s events: the block event first (when `header` is given; the
    /// live path queues it itself, before reading the logs), then each subscription's logs
    /// ordered by their first log index, and waits until all of them are handled.
    /// `logs[i]` are subscription `i`'s logs.
    pub(super) async fn deliver_block(
        &mut self,
        number: u64,
        hash: B256,
        header: Option<&BlockRecord>,
        logs: Vec<Vec<ChainLog>>,
    ) -> Result<(), Halt> {
        if let Some(header) = header {
            self.queue_block_event(header).await?;
        }
        let chain_id = self.client.chain_id();
        let mut order: Vec<(u64, usize)> = Vec::new();
        for (position, sub) in self.progress.iter().enumerate() {
            if sub.next > number || sub.is_blocks() {
                continue;
            }
            if let Some(first) = logs[position].first() {
                order.push((first.log_index.unwrap_or_default(), position));
            }
        }
        order.sort_unstable();
        let mut logs = logs;
        for (_, position) in order {
            let sub = &self.progress[position];
            let batch = std::mem::take(&mut logs[position]);
            let records = sub.delivery(number, hash, &batch);
            let last = batch.last().and_then(|l| l.log_index);
            let event = Event::ChainLogs(ChainLogs {
                chain_id,
                logs: batch,
            });
            let index = sub.index;
            self.queue(index, event, records).await?;
            self.progress[position].delivered(number, hash, last);
        }
        self.settle().await?;
        for sub in &mut self.progress {
            sub.passed(number);
        }
        Ok(())
    }

    /// Queues `block`'s block event for every block subscription that still needs it (the
    /// block's [`Driving::deliver_block`] waits for it). It comes before the block's logs,
    /// so the live path queues it before reading them: a block never waits on a log read,
    /// and the read overlaps the module's handling of the block.
    pub(super) async fn queue_block_event(&mut self, block: &BlockRecord) -> Result<(), Halt> {
        let (number, hash) = (block.number(), block.hash());
        for position in 0..self.progress.len() {
            let sub = &self.progress[position];
            if !sub.is_blocks() || sub.next > number {
                continue;
            }
            let records = sub.delivery(number, hash, &[]);
            let index = sub.index;
            self.queue(index, Event::Block(block.block.clone()), records)
                .await?;
            self.progress[position].delivered(number, hash, None);
        }
        Ok(())
    }
}

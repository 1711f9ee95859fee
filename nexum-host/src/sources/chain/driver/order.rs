//! The events of one block, in order: the `block` event first, then each log
//! subscription's logs, subscriptions ordered by their first log index.

use super::{Driving, Halt};
use crate::chain::BlockRecord;
use crate::ledger::Bookkeeping;
use crate::sources::chain::reader::ChainReader;
use alloy_primitives::B256;
use nexum_core::{ChainLog, ChainLogs, Event, Supervisor};

impl<S: Supervisor<Bookkeeping = Bookkeeping>, C: ChainReader> Driving<S, C> {
    /// Sends block `number`'s events: the block event first, then each subscription's logs
    /// ordered by their first log index. `logs[i]` are subscription `i`'s logs.
    pub(super) async fn deliver_block(
        &mut self,
        number: u64,
        hash: B256,
        header: Option<&BlockRecord>,
        logs: Vec<Vec<ChainLog>>,
    ) -> Result<(), Halt> {
        let chain_id = self.client.chain_id();
        let mut order: Vec<(u64, usize)> = Vec::new();
        for (position, sub) in self.progress.iter().enumerate() {
            if sub.next > number {
                continue;
            }
            if sub.is_blocks() {
                if header.is_some() {
                    order.push((0, position));
                }
            } else if let Some(first) = logs[position].first() {
                order.push((1 + first.log_index.unwrap_or_default(), position));
            }
        }
        order.sort_unstable();
        let mut logs = logs;
        for (_, position) in order {
            let sub = &self.progress[position];
            let (event, delivered_logs) = if sub.is_blocks() {
                let block = header.expect("ordered only with a header").block.clone();
                (Event::Block(block), Vec::new())
            } else {
                let batch = std::mem::take(&mut logs[position]);
                (
                    Event::ChainLogs(ChainLogs {
                        chain_id,
                        logs: batch.clone(),
                    }),
                    batch,
                )
            };
            let records = sub.delivery(number, hash, &delivered_logs);
            let index = sub.index;
            self.send(index, event, records).await?;
            self.progress[position].delivered(number, hash, delivered_logs);
        }
        for sub in &mut self.progress {
            sub.passed(number);
        }
        Ok(())
    }
}

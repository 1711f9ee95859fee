//! Blocks still in the follower's window: the latency path. The block event goes out as
//! soon as the head arrives; then the block's logs are read by its hash (through the shared
//! feed on push chains that cross-check logs), and blocks whose bloom rules a filter out
//! cost nothing.

use super::{Driving, Halt, Wanted, matching, retry_node};
use crate::chain::{BlockRecord, BloomProbe, LogRange};
use crate::ledger::Bookkeeping;
use crate::sources::chain::feed::FeedClaim;
use crate::sources::chain::reader::ChainReader;
use nexum_core::{ChainLog, LogFilter, Supervisor};
use std::sync::Arc;

impl<S: Supervisor<Bookkeeping = Bookkeeping>, C: ChainReader> Driving<S, C> {
    /// Delivers `block` (in the window) to every subscription that needs it.
    pub(super) async fn deliver_live(&mut self, block: Arc<BlockRecord>) -> Result<(), Halt> {
        let number = block.number();
        // The block event needs no read: it is queued first, and the module handles it
        // while the logs are read.
        self.queue_block_event(&block).await?;
        let mut logs_by_sub = Vec::with_capacity(self.progress.len());
        for sub in &self.progress {
            let logs = match &sub.wanted {
                Wanted::Logs {
                    filter,
                    probe,
                    feed,
                } if sub.next <= number => {
                    self.live_logs(&block, filter, probe, feed.as_deref()).await
                }
                _ => Vec::new(),
            };
            logs_by_sub.push(logs);
        }
        self.deliver_block(number, block.hash(), None, logs_by_sub)
            .await?;
        self.mark_processed(number, block.hash());
        self.save_idle_progress(number, block.hash(), false);
        Ok(())
    }

    pub(super) async fn live_logs(
        &self,
        block: &BlockRecord,
        filter: &LogFilter,
        probe: &BloomProbe,
        feed: Option<&FeedClaim<C>>,
    ) -> Vec<ChainLog> {
        let logs = retry_node(&self.module, || async {
            match feed {
                Some(feed) => feed.logs_of(block).await,
                None if !block.may_contain(probe) => Ok(Vec::new()),
                None => {
                    self.client
                        .logs(filter, LogRange::Block(block.hash()))
                        .await
                }
            }
        })
        .await;
        matching(filter, logs)
    }
}

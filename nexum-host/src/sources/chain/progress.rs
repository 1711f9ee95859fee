//! Where one subscription of one module stands: its cursor, what it was recently given
//! (to undo a reorg), and the next block it needs — plus the ledger entries that move it
//! forward or back, committed atomically with the module's call.

use super::driver::Wanted;
use crate::ledger::{
    Bookkeeping, Cursor, DeliveredBlock, Entry, Ledger, StoreError, SubscriptionId,
};
use alloy_primitives::B256;
use nexum_core::ChainLog;
use std::collections::BTreeMap;

/// One subscription's position.
pub(crate) struct SubscriptionProgress<C> {
    /// Its index in the manifest (what deliveries name).
    pub index: usize,
    /// Whose records these are.
    id: SubscriptionId,
    pub wanted: Wanted<C>,
    /// The next block this subscription needs.
    pub next: u64,
    pub cursor: Option<Cursor>,
    /// The hashes of the blocks it was given something from, for the last `depth` blocks.
    /// What it was given is in the ledger only (read back to undo a reorg): holding every
    /// delivered log in memory as well cost megabytes on a busy chain.
    pub delivered: BTreeMap<u64, B256>,
    /// Blocks passed without a delivery since the cursor was last written.
    pub unsaved: u64,
    depth: u64,
}

impl<C> SubscriptionProgress<C> {
    /// Loads the subscription's cursor and delivery record; without a cursor it starts at
    /// its start position, which boot committed.
    pub fn load(
        ledger: &Ledger,
        id: SubscriptionId,
        index: usize,
        wanted: Wanted<C>,
        depth: u64,
    ) -> Result<Self, StoreError> {
        let cursor = ledger.cursor(&id)?;
        let delivered = ledger
            .delivered(&id)?
            .into_iter()
            .map(|(number, block)| (number, block.hash))
            .collect();
        let next = match cursor {
            Some(cursor) => cursor.number + 1,
            None => {
                ledger
                    .start(&id)?
                    .ok_or_else(|| StoreError::Corrupt {
                        key: format!("start of {}/{}", id.module, id.position),
                        reason: "missing: start positions are committed at boot".into(),
                    })?
                    .next
            }
        };
        let progress = Self {
            index,
            id,
            wanted,
            next,
            cursor,
            delivered,
            unsaved: 0,
            depth,
        };
        // Delivery resumes from what was committed: the feed must hold from there again.
        progress.report_back(next);
        Ok(progress)
    }

    /// Moves this subscription back to block `next` (a reorg undone), telling its feed
    /// claim, so the blocks it will read again are held for it.
    pub fn back_to(&mut self, next: u64) {
        self.next = self.next.min(next);
        self.report_back(self.next);
    }

    fn report_back(&self, next: u64) {
        if let Wanted::Logs {
            feed: Some(claim), ..
        } = &self.wanted
        {
            claim.back_to(next.saturating_sub(1));
        }
    }

    pub fn is_blocks(&self) -> bool {
        matches!(self.wanted, Wanted::Blocks)
    }

    /// What goes with delivering block `number` (`hash`) — its `logs` for a log
    /// subscription: the new cursor, the delivery record, and forgetting the oldest one.
    pub fn delivery(&self, number: u64, hash: B256, logs: &[ChainLog]) -> Bookkeeping {
        let cursor = Cursor {
            number,
            hash,
            log_index: logs.last().and_then(|l| l.log_index),
        };
        let mut entries = vec![
            Entry::Advance {
                id: self.id.clone(),
                cursor,
            },
            Entry::Delivered {
                id: self.id.clone(),
                number,
                block: DeliveredBlock {
                    hash,
                    logs: logs.to_vec(),
                },
            },
        ];
        for old in self.delivered.keys().filter(|n| **n + self.depth <= number) {
            entries.push(Entry::Forget {
                id: self.id.clone(),
                number: *old,
            });
        }
        Bookkeeping::new(entries)
    }

    /// Notes that the delivery of `number` was queued (`log_index`: of its last log); the
    /// driver waits for it to be committed before the block counts as processed.
    pub fn delivered(&mut self, number: u64, hash: B256, log_index: Option<u64>) {
        self.cursor = Some(Cursor {
            number,
            hash,
            log_index,
        });
        self.delivered.insert(number, hash);
        let depth = self.depth;
        self.delivered.retain(|n, _| n + depth > number);
        self.next = number + 1;
        self.unsaved = 0;
    }

    /// Notes that block `number` held nothing for this subscription.
    pub fn passed(&mut self, number: u64) {
        if self.next <= number {
            self.next = number + 1;
            self.unsaved += 1;
        }
        if let Wanted::Logs {
            feed: Some(claim), ..
        } = &self.wanted
        {
            claim.passed(number);
        }
    }

    /// The entry that saves progress through `number` (`hash`) when nothing was delivered.
    pub fn progress(&mut self, number: u64, hash: B256) -> Entry {
        let cursor = Cursor {
            number,
            hash,
            log_index: None,
        };
        self.cursor = Some(cursor);
        self.unsaved = 0;
        Entry::Advance {
            id: self.id.clone(),
            cursor,
        }
    }

    /// The logs block `number` (`hash`) delivered, read back from the ledger to retract them.
    pub fn delivered_logs(
        &self,
        ledger: &Ledger,
        number: u64,
        hash: B256,
    ) -> Result<Vec<ChainLog>, StoreError> {
        ledger.delivered_logs(&self.id, number, hash)
    }

    /// What goes with retracting what block `number` delivered: its record goes, and the
    /// cursor steps below it (with a hash that is checked again on resume).
    pub fn retraction(&self, number: u64, below_hash: B256) -> Bookkeeping {
        Bookkeeping::new(vec![
            Entry::Forget {
                id: self.id.clone(),
                number,
            },
            Entry::Advance {
                id: self.id.clone(),
                cursor: Cursor {
                    number: number.saturating_sub(1),
                    hash: below_hash,
                    log_index: None,
                },
            },
        ])
    }

    /// Notes that block `number`'s delivery was retracted.
    pub fn retracted(&mut self, number: u64, below_hash: B256) {
        self.delivered.remove(&number);
        self.cursor = Some(Cursor {
            number: number.saturating_sub(1),
            hash: below_hash,
            log_index: None,
        });
        self.back_to(number);
    }
}

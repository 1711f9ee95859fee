//! Where one subscription of one module stands: its cursor, what it was recently given
//! (to undo a reorg), and the next block it needs — plus the engine records that move it
//! forward or back, committed atomically with the module's call.

use super::driver::Wanted;
use crate::capabilities::local_store::{StateStore, StoreError};
use crate::records::{self, Cursor, DeliveredBlock};
use alloy_primitives::B256;
use nexum_core::{ChainLog, EngineRecord};
use std::collections::BTreeMap;

/// One subscription's position.
pub(crate) struct SubscriptionProgress {
    /// Its index in the manifest (what deliveries name).
    pub index: usize,
    /// Its position key (what its records are kept under).
    position: String,
    pub wanted: Wanted,
    /// The next block this subscription needs.
    pub next: u64,
    pub cursor: Option<Cursor>,
    /// What it was given, by block number, for the last `depth` blocks.
    pub delivered: BTreeMap<u64, DeliveredBlock>,
    /// Blocks passed without a delivery since the cursor was last written.
    pub unsaved: u64,
    module: String,
    depth: u64,
}

impl SubscriptionProgress {
    /// Loads the subscription's cursor and delivery record; without a cursor it starts at
    /// its committed start position (block 0 if none was committed).
    pub fn load(
        store: &StateStore,
        module: &str,
        index: usize,
        position: String,
        wanted: Wanted,
        depth: u64,
    ) -> Result<Self, StoreError> {
        let cursor = store.cursor(module, &position)?;
        let delivered = store.delivered(module, &position)?.into_iter().collect();
        let next = match cursor {
            Some(cursor) => cursor.number + 1,
            None => {
                let start = store.start(module, &position)?;
                start
                    .ok_or_else(|| StoreError::Corrupt {
                        key: records::start_key(module, &position),
                        reason: "missing: start positions are committed at boot".into(),
                    })?
                    .next
            }
        };
        Ok(Self {
            index,
            position,
            wanted,
            next,
            cursor,
            delivered,
            unsaved: 0,
            module: module.to_string(),
            depth,
        })
    }

    pub fn is_blocks(&self) -> bool {
        matches!(self.wanted, Wanted::Blocks)
    }

    /// The records that go with delivering block `number` (`hash`) — its `logs` for a log
    /// subscription: the new cursor, the delivery record, and pruning of the oldest one.
    pub fn records_for_delivery(
        &self,
        number: u64,
        hash: B256,
        logs: &[ChainLog],
    ) -> Vec<EngineRecord> {
        let cursor = Cursor {
            number,
            hash,
            log_index: logs.last().and_then(|l| l.log_index),
        };
        let mut out = vec![
            records::put(records::cursor_key(&self.module, &self.position), &cursor),
            records::put(
                records::delivered_key(&self.module, &self.position, number),
                &DeliveredBlock {
                    hash,
                    logs: logs.to_vec(),
                },
            ),
        ];
        for old in self.delivered.keys().filter(|n| **n + self.depth <= number) {
            out.push(records::remove(records::delivered_key(
                &self.module,
                &self.position,
                *old,
            )));
        }
        out
    }

    /// Notes that the delivery of `number` was committed.
    pub fn delivered(&mut self, number: u64, hash: B256, logs: Vec<ChainLog>) {
        self.cursor = Some(Cursor {
            number,
            hash,
            log_index: logs.last().and_then(|l| l.log_index),
        });
        self.delivered.insert(number, DeliveredBlock { hash, logs });
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
    }

    /// The record that saves progress through `number` (`hash`) when nothing was delivered.
    pub fn progress_record(&mut self, number: u64, hash: B256) -> EngineRecord {
        let cursor = Cursor {
            number,
            hash,
            log_index: None,
        };
        self.cursor = Some(cursor);
        self.unsaved = 0;
        records::put(records::cursor_key(&self.module, &self.position), &cursor)
    }

    /// The records that go with retracting what block `number` delivered: its record goes,
    /// and the cursor steps below it (with a hash that is checked again on resume).
    pub fn records_for_retraction(&self, number: u64, below_hash: B256) -> Vec<EngineRecord> {
        vec![
            records::remove(records::delivered_key(&self.module, &self.position, number)),
            records::put(
                records::cursor_key(&self.module, &self.position),
                &Cursor {
                    number: number.saturating_sub(1),
                    hash: below_hash,
                    log_index: None,
                },
            ),
        ]
    }

    /// Notes that block `number`'s delivery was retracted.
    pub fn retracted(&mut self, number: u64, below_hash: B256) {
        self.delivered.remove(&number);
        self.cursor = Some(Cursor {
            number: number.saturating_sub(1),
            hash: below_hash,
            log_index: None,
        });
        self.next = self.next.min(number);
    }
}

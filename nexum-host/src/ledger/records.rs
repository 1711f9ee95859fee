//! The shapes of the engine's records, and the typed entries a delivery commits.

use super::StoreError;
use alloy_primitives::B256;
use nexum_core::{ChainLog, Event};
use serde::{Deserialize, Serialize};

/// The last position of a subscription that is fully handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The block.
    pub number: u64,
    /// Its hash when it was handled (a different canonical hash means a reorg).
    pub hash: B256,
    /// For logs: the last log index handled in that block.
    pub log_index: Option<u64>,
}

/// Where a subscription starts when it has no cursor yet: decided once, the first time the
/// subscription is seen, and committed before the engine reports it running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Start {
    /// The first block to deliver.
    pub next: u64,
}

/// What one subscription was given from one block (kept for `reorg_depth` blocks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeliveredBlock {
    pub hash: B256,
    /// The logs delivered (empty for block subscriptions).
    pub logs: Vec<ChainLog>,
}

/// First byte of a delivery record in its compact form; JSON (what nexum wrote before, and
/// still reads) never starts with it.
const COMPACT_DELIVERED: u8 = 0x01;

/// A delivery record as stored: compact binary (postcard) behind a marker byte. These are
/// written with every delivery and hold every delivered log (to undo a reorg), so their
/// size is the store's write volume on a busy chain: under half the JSON form, and
/// cheaper to write.
pub(crate) fn encode_delivered(block: &DeliveredBlock) -> Vec<u8> {
    // Sized up front (the marker, the hash and the list's length, then the logs' variable
    // parts plus a bound on the rest of each) rather than grown a few bytes at a time as
    // postcard writes.
    let estimate = 1
        + 1
        + block.hash.len()
        + 10
        + block
            .logs
            .iter()
            .map(|log| log.data.len() + 33 * log.topics.len() + 160)
            .sum::<usize>();
    let mut bytes = Vec::with_capacity(estimate);
    bytes.push(COMPACT_DELIVERED);
    postcard::to_io(block, &mut bytes).expect("a delivery record serialises into memory");
    bytes
}

/// Reads a delivery record in either form (JSON from stores written by older versions).
pub(crate) fn decode_delivered(key: &str, bytes: &[u8]) -> Result<DeliveredBlock, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: key.to_string(),
        reason,
    };
    match bytes.split_first() {
        Some((&COMPACT_DELIVERED, rest)) => match postcard::take_from_bytes(rest) {
            Ok((block, [])) => Ok(block),
            Ok((_, trailing)) => Err(corrupt(format!(
                "{} bytes after the record",
                trailing.len()
            ))),
            Err(e) => Err(corrupt(e.to_string())),
        },
        _ => serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string())),
    }
}

/// An event a module failed to handle and that was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Names this letter among its module's (what replaying it removes); not stored.
    #[serde(skip)]
    pub id: String,
    /// The module.
    pub module: String,
    /// The subscription index it came through, if any.
    pub subscription: Option<usize>,
    /// The event itself.
    pub event: Event,
    /// The module's last error.
    pub reason: String,
    /// How many times it was tried.
    pub attempts: u32,
    /// When it was skipped (ms since the Unix epoch).
    pub at_ms: u64,
}

/// One page of dead letters (see [`Ledger::dead_letter_page`](super::Ledger::dead_letter_page)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterPage {
    /// By module, each module's oldest first.
    pub letters: Vec<DeadLetter>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Names one subscription's records: the module and the subscription's position key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SubscriptionId {
    pub module: String,
    pub position: String,
}

/// One change to the engine's records. Only the engine builds these; what a delivery
/// commits is a list of them ([`Bookkeeping`]), never raw keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A subscription's start position, fixed when it is first seen.
    Start { id: SubscriptionId, start: Start },
    /// A subscription has handled everything up to `cursor`.
    Advance { id: SubscriptionId, cursor: Cursor },
    /// What a subscription was given from block `number`.
    Delivered {
        id: SubscriptionId,
        number: u64,
        block: DeliveredBlock,
    },
    /// Forget what block `number` delivered (out of the reorg window, or retracted).
    Forget { id: SubscriptionId, number: u64 },
    /// An event skipped after failing; the module's oldest dead letters beyond the cap go.
    DeadLetter(Box<DeadLetter>),
    /// A dead letter was handed to its module again (and handled, or dead-lettered anew).
    Replayed { module: String, id: String },
}

/// What a delivery commits with the module's writes: where the subscription stands and what
/// it was given. Nothing outside the engine can build one with content, so no caller of
/// `dispatch` can write the engine's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bookkeeping(pub(crate) Vec<Entry>);

impl Bookkeeping {
    pub(crate) fn new(entries: Vec<Entry>) -> Self {
        Self(entries)
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        self.0.push(entry);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where one chain subscription of a module stands, as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The subscription's index in the module's manifest.
    pub subscription: usize,
    /// The chain it reads.
    pub chain_id: nexum_core::ChainId,
    /// The last block fully handled; `None` until the first. Block subscriptions record
    /// every block; log subscriptions record the blocks they deliver, and their progress
    /// through quiet stretches at least every 64 blocks.
    pub handled_through: Option<u64>,
    /// The block delivery started at, fixed when the subscription was first seen.
    pub starts_at: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, Bytes};

    fn block() -> DeliveredBlock {
        let log = |i: u64| ChainLog {
            address: Address::repeat_byte(0x11),
            topics: vec![B256::repeat_byte(1), B256::repeat_byte(2)],
            data: Bytes::from(vec![7u8; 64]),
            block_number: Some(19_000_000),
            block_hash: Some(B256::repeat_byte(0xab)),
            transaction_hash: Some(B256::repeat_byte(0xcd)),
            transaction_index: Some(i),
            log_index: Some(i),
            removed: false,
        };
        DeliveredBlock {
            hash: B256::repeat_byte(0xab),
            logs: (0..10).map(log).collect(),
        }
    }

    #[test]
    fn a_delivery_record_comes_back_as_written_and_is_smaller_than_json() {
        let block = block();
        let compact = encode_delivered(&block);
        assert_eq!(decode_delivered("k", &compact).unwrap(), block);
        let json = serde_json::to_vec(&block).unwrap();
        assert!(
            compact.len() * 2 < json.len(),
            "{} vs {}",
            compact.len(),
            json.len()
        );
    }

    /// The stored layout, byte for byte: postcard writes no field names, so reordering or
    /// adding a field of `DeliveredBlock` or `ChainLog` would misread every stored record.
    /// If this fails, the layout changed: give the new one its own marker byte and keep
    /// reading this one.
    #[test]
    fn the_compact_layout_is_pinned() {
        let block = DeliveredBlock {
            hash: B256::repeat_byte(0xab),
            logs: vec![ChainLog {
                address: Address::repeat_byte(0x11),
                topics: vec![B256::repeat_byte(0x01)],
                data: Bytes::from(vec![7u8, 7]),
                block_number: Some(5),
                block_hash: None,
                transaction_hash: None,
                transaction_index: Some(0),
                log_index: Some(300),
                removed: true,
            }],
        };
        let mut expected = vec![COMPACT_DELIVERED, 32];
        expected.extend([0xab; 32]);
        expected.extend([1, 20]); // one log; its address
        expected.extend([0x11; 20]);
        expected.extend([1, 32]); // one topic
        expected.extend([0x01; 32]);
        expected.extend([2, 7, 7]); // data
        expected.extend([1, 5, 0, 0, 1, 0]); // block number, no hashes, transaction index
        expected.extend([1, 0xac, 0x02, 1]); // log index 300 as a varint; removed
        assert_eq!(encode_delivered(&block), expected);
        assert_eq!(decode_delivered("k", &expected).unwrap(), block);
    }

    #[test]
    fn records_written_as_json_by_older_versions_still_read() {
        let block = block();
        let json = serde_json::to_vec(&block).unwrap();
        assert_eq!(decode_delivered("k", &json).unwrap(), block);
    }

    #[test]
    fn a_damaged_record_is_reported_with_its_key_not_a_panic() {
        let compact = encode_delivered(&block());
        for damaged in [
            &compact[..compact.len() / 2],
            &[COMPACT_DELIVERED][..],
            &[
                COMPACT_DELIVERED,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0x7f,
            ][..],
            &[compact.as_slice(), &[0]].concat()[..],
            &b"{\"hash\": 1"[..],
            &[][..],
        ] {
            match decode_delivered("delivered/m/0/7", damaged) {
                Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "delivered/m/0/7"),
                other => panic!("{damaged:?}: {other:?}"),
            }
        }
    }
}

//! The JSON shapes nexum reads from nodes (headers, logs), the `eth_getLogs` filter it
//! writes, and bloom checks that spare a request when a block cannot hold matching logs.

use alloy_primitives::{Address, B256, Bloom, BloomInput, Bytes, U64};
use nexum_core::{Block, ChainId, ChainLog, LogFilter};
use serde::Deserialize;

/// A block header as `eth_getBlockBy*` and `newHeads` return it (the fields nexum uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcHeader {
    pub number: U64,
    pub hash: B256,
    pub parent_hash: B256,
    pub timestamp: U64,
    #[serde(default)]
    pub logs_bloom: Option<Bloom>,
}

/// A log as `eth_getLogs` and `logs` subscriptions return it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcLog {
    pub address: Address,
    pub topics: Vec<B256>,
    pub data: Bytes,
    pub block_number: Option<U64>,
    pub block_hash: Option<B256>,
    pub transaction_hash: Option<B256>,
    pub transaction_index: Option<U64>,
    pub log_index: Option<U64>,
    #[serde(default)]
    pub removed: bool,
}

impl From<RpcLog> for ChainLog {
    fn from(log: RpcLog) -> Self {
        ChainLog {
            address: log.address,
            topics: log.topics,
            data: log.data,
            block_number: log.block_number.map(|n| n.to()),
            block_hash: log.block_hash,
            transaction_hash: log.transaction_hash,
            transaction_index: log.transaction_index.map(|n| n.to()),
            log_index: log.log_index.map(|n| n.to()),
            removed: log.removed,
        }
    }
}

/// A canonical block as the chain follower knows it.
#[derive(Debug, Clone)]
pub(crate) struct BlockRecord {
    /// The header as delivered to modules.
    pub block: Block,
    /// `None` when the node sent no bloom: then every filter may match.
    pub bloom: Option<Bloom>,
}

impl BlockRecord {
    pub fn from_header(chain_id: ChainId, header: RpcHeader) -> Self {
        BlockRecord {
            block: Block {
                chain_id,
                number: header.number.to(),
                hash: header.hash,
                parent_hash: header.parent_hash,
                timestamp: header.timestamp.to::<u64>().saturating_mul(1000),
            },
            bloom: header.logs_bloom,
        }
    }

    pub fn number(&self) -> u64 {
        self.block.number
    }

    pub fn hash(&self) -> B256 {
        self.block.hash
    }

    /// False only when the bloom proves the block has no log matching `filter`.
    pub fn may_contain(&self, filter: &LogFilter) -> bool {
        let Some(bloom) = &self.bloom else {
            return true;
        };
        let has = |bytes: &[u8]| bloom.contains_input(BloomInput::Raw(bytes));
        let address_ok =
            filter.addresses.is_empty() || filter.addresses.iter().any(|a| has(a.as_slice()));
        address_ok
            && filter.topics.iter().all(|alternatives| {
                alternatives.is_empty() || alternatives.iter().any(|t| has(t.as_slice()))
            })
    }
}

/// Which blocks an `eth_getLogs` covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogRange {
    /// One block, by hash (safe across reorgs).
    Block(B256),
    /// An inclusive range of block numbers.
    Numbers { from: u64, to: u64 },
}

/// The filter object of `eth_getLogs` / `eth_subscribe("logs")`.
pub(crate) fn filter_json(filter: &LogFilter, range: Option<LogRange>) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    if !filter.addresses.is_empty() {
        object.insert("address".into(), serde_json::json!(filter.addresses));
    }
    if !filter.topics.is_empty() {
        let topics: Vec<serde_json::Value> = filter
            .topics
            .iter()
            .map(|alternatives| {
                if alternatives.is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::json!(alternatives)
                }
            })
            .collect();
        object.insert("topics".into(), serde_json::Value::Array(topics));
    }
    match range {
        Some(LogRange::Block(hash)) => {
            object.insert("blockHash".into(), serde_json::json!(hash));
        }
        Some(LogRange::Numbers { from, to }) => {
            object.insert("fromBlock".into(), serde_json::json!(format!("{from:#x}")));
            object.insert("toBlock".into(), serde_json::json!(format!("{to:#x}")));
        }
        None => {}
    }
    serde_json::Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256};

    #[test]
    fn filter_json_has_nulls_for_wildcard_positions() {
        let filter = LogFilter {
            addresses: vec![address!("0x00000000000000000000000000000000000000aa")],
            topics: vec![
                vec![],
                vec![b256!(
                    "0x0000000000000000000000000000000000000000000000000000000000000001"
                )],
            ],
        };
        let json = filter_json(&filter, Some(LogRange::Numbers { from: 16, to: 31 }));
        assert_eq!(
            json,
            serde_json::json!({
                "address": ["0x00000000000000000000000000000000000000aa"],
                "topics": [null, ["0x0000000000000000000000000000000000000000000000000000000000000001"]],
                "fromBlock": "0x10",
                "toBlock": "0x1f",
            })
        );
    }

    #[test]
    fn bloom_rules_out_blocks_without_the_address() {
        let emitter = address!("0x00000000000000000000000000000000000000aa");
        let mut bloom = Bloom::default();
        bloom.accrue(BloomInput::Raw(emitter.as_slice()));
        let record = |bloom| BlockRecord {
            block: Block {
                chain_id: 1,
                number: 1,
                hash: B256::ZERO,
                parent_hash: B256::ZERO,
                timestamp: 0,
            },
            bloom,
        };
        let wants = |a| LogFilter {
            addresses: vec![a],
            topics: vec![],
        };
        assert!(record(Some(bloom)).may_contain(&wants(emitter)));
        assert!(!record(Some(bloom)).may_contain(&wants(Address::repeat_byte(0xbb))));
        assert!(record(None).may_contain(&wants(Address::repeat_byte(0xbb))));
    }

    #[test]
    fn parses_a_node_log() {
        let log: RpcLog = serde_json::from_str(
            r#"{"address":"0x00000000000000000000000000000000000000aa","topics":[],"data":"0x01",
                "blockNumber":"0x5","blockHash":"0x0000000000000000000000000000000000000000000000000000000000000005",
                "transactionHash":null,"transactionIndex":"0x0","logIndex":"0x2","removed":false}"#,
        )
        .unwrap();
        let log = ChainLog::from(log);
        assert_eq!(log.block_number, Some(5));
        assert_eq!(log.log_index, Some(2));
        assert_eq!(log.data.as_ref(), &[1]);
    }
}

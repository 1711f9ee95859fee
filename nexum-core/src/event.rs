//! The events nexum delivers to modules, mirroring `nexum:host/types` in the WIT contract.

use alloy_primitives::{Address, B256, Bytes};
use serde::{Deserialize, Serialize};

/// An EVM chain id (1 = Ethereum mainnet).
pub type ChainId = u64;

/// Everything a module can be woken up for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// A new canonical block on a chain the module subscribed to.
    Block(Block),
    /// The logs of one block that match one log subscription.
    ChainLogs(ChainLogs),
    /// A cron tick.
    Tick(Tick),
}

impl Event {
    /// A short name of the event's kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Block(_) => "block",
            Event::ChainLogs(_) => "logs",
            Event::Tick(_) => "tick",
        }
    }

    /// The chain the event comes from, if it comes from a chain.
    pub fn chain_id(&self) -> Option<ChainId> {
        match self {
            Event::Block(b) => Some(b.chain_id),
            Event::ChainLogs(l) => Some(l.chain_id),
            Event::Tick(_) => None,
        }
    }
}

/// A block header. `timestamp` is milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The chain this block belongs to.
    pub chain_id: ChainId,
    /// Block height.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// The parent's hash; lets a module notice a fork.
    pub parent_hash: B256,
    /// Milliseconds since the Unix epoch, UTC.
    pub timestamp: u64,
}

/// One log entry, mirroring the JSON-RPC log object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChainLog {
    /// The emitting contract.
    pub address: Address,
    /// Up to four topics; topic 0 is the event signature hash for non-anonymous events.
    pub topics: Vec<B256>,
    /// The unindexed data.
    pub data: Bytes,
    /// The block the log is in.
    pub block_number: Option<u64>,
    /// Hash of the block the log is in.
    pub block_hash: Option<B256>,
    /// The transaction that emitted it.
    pub transaction_hash: Option<B256>,
    /// The transaction's index in its block.
    pub transaction_index: Option<u64>,
    /// The log's index in its block.
    pub log_index: Option<u64>,
    /// True when a reorg retracts a log that was delivered before.
    pub removed: bool,
}

/// One delivery of logs: those of one block matching one subscription, in log-index order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLogs {
    /// The chain the logs come from.
    pub chain_id: ChainId,
    /// The logs, in log-index order.
    pub logs: Vec<ChainLog>,
}

/// A cron tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// When the schedule fired, in milliseconds since the Unix epoch, UTC.
    pub fired_at: u64,
    /// The schedule as written in the manifest.
    pub schedule: String,
}

//! Conversions between `nexum-core` types and the generated WIT types.

use crate::bindings::types as wit;
use nexum_core::{Block, ChainLog, ChainLogs, Event, Tick};

impl From<&Event> for wit::Event {
    fn from(event: &Event) -> Self {
        match event {
            Event::Block(block) => wit::Event::Block(block.into()),
            Event::ChainLogs(logs) => wit::Event::ChainLogs(logs.into()),
            Event::Tick(tick) => wit::Event::Tick(tick.into()),
        }
    }
}

impl From<&Block> for wit::Block {
    fn from(b: &Block) -> Self {
        wit::Block {
            chain_id: b.chain_id,
            number: b.number,
            hash: b.hash.to_vec(),
            parent_hash: b.parent_hash.to_vec(),
            timestamp: b.timestamp,
        }
    }
}

impl From<&ChainLogs> for wit::ChainLogs {
    fn from(l: &ChainLogs) -> Self {
        wit::ChainLogs {
            chain_id: l.chain_id,
            logs: l.logs.iter().map(Into::into).collect(),
        }
    }
}

impl From<&ChainLog> for wit::ChainLog {
    fn from(l: &ChainLog) -> Self {
        wit::ChainLog {
            address: l.address.to_vec(),
            topics: l.topics.iter().map(|t| t.to_vec()).collect(),
            data: l.data.to_vec(),
            block_number: l.block_number,
            block_hash: l.block_hash.map(|h| h.to_vec()),
            transaction_hash: l.transaction_hash.map(|h| h.to_vec()),
            transaction_index: l.transaction_index,
            log_index: l.log_index,
            removed: l.removed,
        }
    }
}

impl From<&Tick> for wit::Tick {
    fn from(t: &Tick) -> Self {
        wit::Tick {
            fired_at: t.fired_at,
            schedule: t.schedule.clone(),
        }
    }
}

/// A one-line description of a fault a module returned.
pub(crate) fn describe_fault(fault: &wit::Fault) -> String {
    match fault {
        wit::Fault::Unsupported(m) => format!("unsupported: {m}"),
        wit::Fault::Unavailable(m) => format!("unavailable: {m}"),
        wit::Fault::Denied(m) => format!("denied: {m}"),
        wit::Fault::RateLimited(r) => match r.retry_after_ms {
            Some(ms) => format!("rate limited (retry after {ms} ms)"),
            None => "rate limited".to_string(),
        },
        wit::Fault::Timeout => "timeout".to_string(),
        wit::Fault::InvalidInput(m) => format!("invalid input: {m}"),
        wit::Fault::Internal(m) => format!("internal: {m}"),
    }
}

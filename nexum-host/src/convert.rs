//! Conversions between `nexum-core` types and the generated WIT types.

use crate::bindings::types as wit;
use nexum_core::{Block, ChainLog, Event};

/// An event as the module's `on-event` takes it, borrowing the event's own bytes: the
/// lowering copies them straight into the module's memory, with no owned copy of each hash,
/// topic and data field in between (for ten logs that was some eighty allocations a call,
/// a sixth of a call's cost). Built in three steps, each borrowing the last: [`topics`],
/// [`logs`], then [`event`].
pub(crate) fn event<'a>(event: &'a Event, logs: &'a [wit::ChainLog<'a>]) -> wit::Event<'a> {
    match event {
        Event::Block(b) => wit::Event::Block(block(b)),
        Event::ChainLogs(l) => wit::Event::ChainLogs(wit::ChainLogs {
            chain_id: l.chain_id,
            logs,
        }),
        Event::Tick(t) => wit::Event::Tick(wit::Tick {
            fired_at: t.fired_at,
            schedule: &t.schedule,
        }),
    }
}

/// Every topic of `event`'s logs, in order (none for other events): each log's topics are
/// a run of this list.
pub(crate) fn topics(event: &Event) -> Vec<&[u8]> {
    match event {
        Event::ChainLogs(l) => (l.logs.iter())
            .flat_map(|log| log.topics.iter().map(|t| t.as_slice()))
            .collect(),
        Event::Block(_) | Event::Tick(_) => Vec::new(),
    }
}

/// `event`'s logs (none for other events), their topics taken from `topics` (see
/// [`topics`]).
pub(crate) fn logs<'a>(event: &'a Event, topics: &'a [&'a [u8]]) -> Vec<wit::ChainLog<'a>> {
    let Event::ChainLogs(l) = event else {
        return Vec::new();
    };
    let mut rest = topics;
    (l.logs.iter())
        .map(|log| {
            let (own, after) = rest.split_at(log.topics.len());
            rest = after;
            chain_log(log, own)
        })
        .collect()
}

fn block(b: &Block) -> wit::Block<'_> {
    wit::Block {
        chain_id: b.chain_id,
        number: b.number,
        hash: b.hash.as_slice(),
        parent_hash: b.parent_hash.as_slice(),
        timestamp: b.timestamp,
    }
}

fn chain_log<'a>(l: &'a ChainLog, topics: &'a [&'a [u8]]) -> wit::ChainLog<'a> {
    wit::ChainLog {
        address: l.address.as_slice(),
        topics,
        data: &l.data,
        block_number: l.block_number,
        block_hash: l.block_hash.as_ref().map(|h| h.as_slice()),
        transaction_hash: l.transaction_hash.as_ref().map(|h| h.as_slice()),
        transaction_index: l.transaction_index,
        log_index: l.log_index,
        removed: l.removed,
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

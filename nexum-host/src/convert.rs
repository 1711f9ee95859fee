//! Conversions between `nexum-core` types and the generated WIT types.

use crate::bindings::types as wit;
use nexum_core::{Block, ChainLog, Event};

/// An event as the module's `on-event` takes it, borrowing the event's own bytes: the
/// lowering copies them straight into the module's memory, with no owned copy of each hash,
/// topic and data field in between (for ten logs that was some eighty allocations a
/// call). Built in three steps from one event, each borrowing the last: [`topics`],
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
    let logs = (l.logs.iter())
        .map(|log| {
            let (own, after) = rest.split_at(log.topics.len());
            rest = after;
            chain_log(log, own)
        })
        .collect();
    debug_assert!(rest.is_empty(), "`topics` came from another event");
    logs
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

#[cfg(test)]
mod tests {
    use super::*;
    use nexum_core::{Address, B256, Bytes, ChainLogs};

    fn log(index: u8, topics: usize) -> ChainLog {
        ChainLog {
            address: Address::repeat_byte(index),
            topics: (0..topics)
                .map(|t| B256::repeat_byte(index * 16 + t as u8))
                .collect(),
            data: Bytes::from(vec![index; usize::from(index)]),
            block_number: Some(7),
            block_hash: Some(B256::repeat_byte(0xbb)),
            transaction_hash: index.is_multiple_of(2).then(|| B256::repeat_byte(index)),
            transaction_index: Some(u64::from(index)),
            log_index: Some(u64::from(index)),
            removed: index == 3,
        }
    }

    #[test]
    fn each_log_gets_its_own_topics_in_order() {
        let logs: Vec<ChainLog> = [(1, 0), (2, 1), (3, 3), (4, 4), (5, 0), (6, 2)]
            .into_iter()
            .map(|(index, topics)| log(index, topics))
            .collect();
        let event = Event::ChainLogs(ChainLogs {
            chain_id: 5,
            logs: logs.clone(),
        });
        let topics = topics(&event);
        let lowered = super::logs(&event, &topics);
        let wit::Event::ChainLogs(chain_logs) = super::event(&event, &lowered) else {
            panic!("a chain-logs event stays one");
        };
        assert_eq!(chain_logs.chain_id, 5);
        assert_eq!(chain_logs.logs.len(), logs.len());
        for (lowered, log) in chain_logs.logs.iter().zip(&logs) {
            let expected: Vec<&[u8]> = log.topics.iter().map(|t| t.as_slice()).collect();
            assert_eq!(lowered.topics, expected.as_slice());
            assert_eq!(lowered.address, log.address.as_slice());
            assert_eq!(lowered.data, &log.data[..]);
            assert_eq!(lowered.block_number, log.block_number);
            assert_eq!(
                lowered.block_hash,
                log.block_hash.as_ref().map(|h| h.as_slice())
            );
            assert_eq!(
                lowered.transaction_hash,
                log.transaction_hash.as_ref().map(|h| h.as_slice())
            );
            assert_eq!(lowered.transaction_index, log.transaction_index);
            assert_eq!(lowered.log_index, log.log_index);
            assert_eq!(lowered.removed, log.removed);
        }
    }

    #[test]
    fn blocks_and_ticks_have_no_logs() {
        let block = Event::Block(nexum_core::Block {
            chain_id: 1,
            number: 2,
            hash: B256::repeat_byte(3),
            parent_hash: B256::repeat_byte(4),
            timestamp: 5,
        });
        assert!(topics(&block).is_empty());
        assert!(logs(&block, &[]).is_empty());
        let wit::Event::Block(lowered) = event(&block, &[]) else {
            panic!("a block stays one");
        };
        assert_eq!(lowered.hash, [3u8; 32].as_slice());
        assert_eq!(lowered.parent_hash, [4u8; 32].as_slice());
    }
}

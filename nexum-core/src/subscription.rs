//! What a module subscribes to, and the log-filter matching shared by every log source.

use crate::cron::CronSchedule;
use crate::event::{ChainId, ChainLog};
use alloy_primitives::{Address, B256};
use std::fmt;

/// Topic positions a log filter can constrain (topic 0 to topic 3).
pub const MAX_TOPIC_POSITIONS: usize = 4;

/// One `[[subscription]]` of a module manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// Every new canonical block of a chain.
    Block {
        /// The chain to follow.
        chain_id: ChainId,
    },
    /// Logs matching a filter, grouped per block.
    Log(LogSubscription),
    /// Ticks on a cron schedule.
    Cron(CronSchedule),
}

impl Subscription {
    /// The chain this subscription reads, if any.
    pub fn chain_id(&self) -> Option<ChainId> {
        match self {
            Subscription::Block { chain_id } => Some(*chain_id),
            Subscription::Log(log) => Some(log.chain_id),
            Subscription::Cron(_) => None,
        }
    }

    /// The name of this subscription's delivery position (its cursor and records): what it
    /// reads — kind, chain and filter — and not its place in the manifest, so reordering,
    /// adding or removing other subscriptions leaves it where it was. `start_block` is not
    /// part of it: it only decides where a subscription starts the first time it is seen.
    /// Cron subscriptions have no position (ticks are not replayed).
    pub fn position_key(&self) -> Option<String> {
        match self {
            Subscription::Block { chain_id } => Some(format!("block-{chain_id}")),
            Subscription::Log(log) => {
                Some(format!("log-{}-{}", log.chain_id, log.filter.fingerprint()))
            }
            Subscription::Cron(_) => None,
        }
    }

    /// The manifest's `kind` for this subscription.
    pub fn kind(&self) -> &'static str {
        match self {
            Subscription::Block { .. } => "block",
            Subscription::Log(_) => "log",
            Subscription::Cron(_) => "cron",
        }
    }
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subscription::Block { chain_id } => write!(f, "blocks on chain {chain_id}"),
            Subscription::Log(log) => write!(f, "logs on chain {}: {}", log.chain_id, log.filter),
            Subscription::Cron(schedule) => write!(f, "cron \"{schedule}\""),
        }
    }
}

/// A log subscription: which chain, which logs, and where to start the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSubscription {
    /// The chain to read.
    pub chain_id: ChainId,
    /// Which logs.
    pub filter: LogFilter,
    /// On the first run (no cursor yet), backfill from this block.
    pub start_block: Option<u64>,
}

/// Which logs a subscription wants: emitting addresses and up to four topic positions.
///
/// An empty address list matches any address; an empty position matches any topic
/// (including a missing one); a non-empty position matches any of its alternatives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LogFilter {
    /// Emitting contracts; empty = any.
    pub addresses: Vec<Address>,
    /// Alternatives per topic position; at most [`MAX_TOPIC_POSITIONS`] positions.
    pub topics: Vec<Vec<B256>>,
}

impl LogFilter {
    /// 16 hex digits naming what this filter matches: equal for filters that match the same
    /// logs however they are written (address and alternative order, duplicates, trailing
    /// wildcard positions).
    pub fn fingerprint(&self) -> String {
        let mut addresses = self.addresses.clone();
        addresses.sort_unstable();
        addresses.dedup();
        let mut topics: Vec<Vec<B256>> = self
            .topics
            .iter()
            .map(|alternatives| {
                let mut alternatives = alternatives.clone();
                alternatives.sort_unstable();
                alternatives.dedup();
                alternatives
            })
            .collect();
        while topics.last().is_some_and(Vec::is_empty) {
            topics.pop();
        }
        // Counts before each list keep the encoding unambiguous.
        let mut canonical = Vec::new();
        canonical.extend_from_slice(&(addresses.len() as u32).to_be_bytes());
        for address in &addresses {
            canonical.extend_from_slice(address.as_slice());
        }
        canonical.extend_from_slice(&(topics.len() as u32).to_be_bytes());
        for alternatives in &topics {
            canonical.extend_from_slice(&(alternatives.len() as u32).to_be_bytes());
            for topic in alternatives {
                canonical.extend_from_slice(topic.as_slice());
            }
        }
        let digest = alloy_primitives::keccak256(&canonical);
        alloy_primitives::hex::encode(&digest[..8])
    }

    /// Whether `log` is one this filter asks for.
    pub fn matches(&self, log: &ChainLog) -> bool {
        if !self.addresses.is_empty() && !self.addresses.contains(&log.address) {
            return false;
        }
        self.topics
            .iter()
            .enumerate()
            .all(|(position, alternatives)| {
                alternatives.is_empty()
                    || log
                        .topics
                        .get(position)
                        .is_some_and(|topic| alternatives.contains(topic))
            })
    }
}

impl fmt::Display for LogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.addresses.is_empty() {
            f.write_str("any address")?;
        } else {
            let addresses: Vec<String> = self.addresses.iter().map(|a| a.to_string()).collect();
            write!(f, "{}", addresses.join("|"))?;
        }
        for (position, alternatives) in self.topics.iter().enumerate() {
            if alternatives.is_empty() {
                continue;
            }
            let shown: Vec<String> = alternatives
                .iter()
                .map(|t| {
                    let hex = t.to_string();
                    format!("{}…", &hex[..10])
                })
                .collect();
            write!(f, " topic{position}={}", shown.join("|"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256};

    const TOKEN: Address = address!("0x00000000000000000000000000000000000000aa");
    const OTHER: Address = address!("0x00000000000000000000000000000000000000bb");
    const TRANSFER: B256 =
        b256!("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
    const APPROVAL: B256 =
        b256!("0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925");
    const ALICE: B256 = b256!("0x000000000000000000000000000000000000000000000000000000000000a11c");

    fn log(address: Address, topics: &[B256]) -> ChainLog {
        ChainLog {
            address,
            topics: topics.to_vec(),
            ..ChainLog::default()
        }
    }

    #[test]
    fn address_list_matches_any_of_its_members() {
        let filter = LogFilter {
            addresses: vec![TOKEN, OTHER],
            topics: vec![],
        };
        assert!(filter.matches(&log(TOKEN, &[TRANSFER])));
        assert!(filter.matches(&log(OTHER, &[])));
        assert!(!filter.matches(&log(Address::ZERO, &[TRANSFER])));
    }

    #[test]
    fn topic_alternatives_and_wildcards() {
        let filter = LogFilter {
            addresses: vec![],
            topics: vec![vec![TRANSFER, APPROVAL], vec![], vec![ALICE]],
        };
        assert!(filter.matches(&log(TOKEN, &[TRANSFER, B256::ZERO, ALICE])));
        assert!(filter.matches(&log(TOKEN, &[APPROVAL, B256::ZERO, ALICE])));
        assert!(!filter.matches(&log(TOKEN, &[TRANSFER, ALICE, B256::ZERO])));
        // A constrained position must be present.
        assert!(!filter.matches(&log(TOKEN, &[TRANSFER, B256::ZERO])));
    }

    #[test]
    fn position_keys_name_what_is_read_not_how_it_is_written() {
        let filter =
            |addresses: Vec<Address>, topics: Vec<Vec<B256>>| LogFilter { addresses, topics };
        let a = filter(vec![TOKEN, OTHER], vec![vec![TRANSFER, APPROVAL], vec![]]);
        let b = filter(vec![OTHER, TOKEN, TOKEN], vec![vec![APPROVAL, TRANSFER]]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        // Pinned: the fingerprint names stored positions, so its encoding must never drift
        // (every subscription would lose its place and restart at the head).
        assert_eq!(a.fingerprint(), "2cbc12292eeccc50");
        assert_ne!(
            a.fingerprint(),
            filter(vec![TOKEN], vec![vec![TRANSFER, APPROVAL]]).fingerprint()
        );
        // A position is not an address: moving a topic changes the filter.
        assert_ne!(
            filter(vec![], vec![vec![TRANSFER]]).fingerprint(),
            filter(vec![], vec![vec![], vec![TRANSFER]]).fingerprint()
        );
        let log = |start_block| {
            Subscription::Log(LogSubscription {
                chain_id: 1,
                filter: a.clone(),
                start_block,
            })
        };
        assert_eq!(log(None).position_key(), log(Some(5)).position_key());
        assert_eq!(
            Subscription::Block { chain_id: 7 }
                .position_key()
                .as_deref(),
            Some("block-7")
        );
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(LogFilter::default().matches(&log(TOKEN, &[])));
    }
}

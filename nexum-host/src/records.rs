//! The engine's own records, in its keyspace (which no module can reach): where each
//! module's chain delivery starts and stands (start positions, cursors), what it was
//! recently given (to undo reorgs), and the events it had to skip (dead letters). The key
//! layout lives here and nowhere else.
//!
//! A subscription's records are keyed by its position key
//! ([`Subscription::position_key`](nexum_core::Subscription::position_key)): what it reads,
//! not its place in the manifest. Stores written before that used the manifest index; they
//! are adopted once by [`StateStore::adopt_legacy_positions`].

use crate::capabilities::local_store::{StateStore, StoreError};
use alloy_primitives::B256;
use nexum_core::{ChainLog, EngineRecord, Event};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

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

/// What one subscription was given from one block (kept for `reorg_depth` blocks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeliveredBlock {
    pub hash: B256,
    /// The logs delivered (empty for block subscriptions).
    pub logs: Vec<ChainLog>,
}

/// An event a module failed to handle and that was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
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

/// Where a subscription starts when it has no cursor yet: decided once, the first time the
/// subscription is seen, and committed before the engine reports it running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Start {
    /// The first block to deliver.
    pub next: u64,
}

pub(crate) fn cursor_key(module: &str, position: &str) -> String {
    format!("cursor/{module}/{position}")
}

pub(crate) fn start_key(module: &str, position: &str) -> String {
    format!("start/{module}/{position}")
}

pub(crate) fn delivered_prefix(module: &str, position: &str) -> String {
    format!("delivered/{module}/{position}/")
}

pub(crate) fn delivered_key(module: &str, position: &str, number: u64) -> String {
    format!("{}{number:020}", delivered_prefix(module, position))
}

fn dead_letter_prefix(module: Option<&str>) -> String {
    match module {
        Some(module) => format!("deadletter/{module}/"),
        None => "deadletter/".to_string(),
    }
}

/// A record setting `key` to `value` as JSON.
pub(crate) fn put<T: Serialize>(key: String, value: &T) -> EngineRecord {
    EngineRecord {
        key,
        value: Some(serde_json::to_vec(value).expect("engine records serialise")),
    }
}

/// A record removing `key`.
pub(crate) fn remove(key: String) -> EngineRecord {
    EngineRecord { key, value: None }
}

/// Dead letters kept per module: a module that fails every event must not grow the
/// engine's records without end; the oldest go first.
pub(crate) const MAX_DEAD_LETTERS: usize = 1000;

/// The records that add `letter`, dropping the oldest of `existing` (the module's dead
/// letter keys, oldest first) beyond [`MAX_DEAD_LETTERS`].
pub(crate) fn dead_letter_with_pruning(
    letter: &DeadLetter,
    existing: &[String],
) -> Vec<EngineRecord> {
    let excess = (existing.len() + 1).saturating_sub(MAX_DEAD_LETTERS);
    let mut records: Vec<EngineRecord> = existing[..excess]
        .iter()
        .map(|key| remove(key.clone()))
        .collect();
    records.push(dead_letter(letter));
    records
}

/// The prefix of `module`'s dead letters.
pub(crate) fn dead_letters_of(module: &str) -> String {
    dead_letter_prefix(Some(module))
}

/// The record of a skipped event.
fn dead_letter(letter: &DeadLetter) -> EngineRecord {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    put(
        format!(
            "{}{:020}-{seq:010}",
            dead_letter_prefix(Some(&letter.module)),
            letter.at_ms
        ),
        letter,
    )
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

impl StateStore {
    /// The cursor of `module`'s subscription at `position`, if it has one.
    pub(crate) fn cursor(
        &self,
        module: &str,
        position: &str,
    ) -> Result<Option<Cursor>, StoreError> {
        let key = cursor_key(module, position);
        self.engine_get(&key)?
            .map(|bytes| decode(&key, &bytes))
            .transpose()
    }

    /// Where `module`'s subscription at `position` starts, if that was decided.
    pub(crate) fn start(&self, module: &str, position: &str) -> Result<Option<Start>, StoreError> {
        let key = start_key(module, position);
        self.engine_get(&key)?
            .map(|bytes| decode(&key, &bytes))
            .transpose()
    }

    /// Adopts, once per module, the records a store of an older version kept under manifest
    /// indices: each goes to the position key of the subscription now at that index
    /// (`positions`: index and key of each chain subscription), records of indices with no
    /// such subscription are dropped, and a marker says it is done — in one batch. Never
    /// over a subscription that already has records of its own. This assumes the manifest
    /// did not change in the same upgrade (upgrade nexum and a module's manifest apart).
    pub(crate) fn adopt_legacy_positions(
        &self,
        module: &str,
        positions: &[(usize, String)],
    ) -> Result<(), StoreError> {
        let marker = format!("adopted/{module}");
        if self.engine_get(&marker)?.is_some() {
            return Ok(());
        }
        let mut records = vec![put(marker, &true)];
        for prefix in [format!("cursor/{module}/"), format!("delivered/{module}/")] {
            for (key, value) in self.engine_scan(&prefix)? {
                let rest = &key[prefix.len()..];
                let (legacy, tail) = rest.split_once('/').unwrap_or((rest, ""));
                let Ok(index) = legacy.parse::<usize>() else {
                    continue; // already a position key
                };
                if legacy.len() != 4 {
                    continue;
                }
                records.push(remove(key.clone()));
                let Some((_, position)) = positions.iter().find(|(i, _)| *i == index) else {
                    tracing::warn!(
                        module,
                        index,
                        "dropping the old records of a subscription the manifest no longer has"
                    );
                    continue;
                };
                if self.start(module, position)?.is_some()
                    || self.cursor(module, position)?.is_some()
                {
                    continue;
                }
                let adopted = if tail.is_empty() {
                    cursor_key(module, position)
                } else {
                    format!("{}{tail}", delivered_prefix(module, position))
                };
                records.push(EngineRecord {
                    key: adopted,
                    value: Some(value),
                });
            }
        }
        self.engine_commit(&records)
    }

    /// What `module`'s subscription at `position` was recently given, by block number.
    pub(crate) fn delivered(
        &self,
        module: &str,
        position: &str,
    ) -> Result<Vec<(u64, DeliveredBlock)>, StoreError> {
        let prefix = delivered_prefix(module, position);
        self.engine_scan(&prefix)?
            .into_iter()
            .map(|(key, bytes)| {
                let number = key[prefix.len()..]
                    .parse()
                    .map_err(|_| StoreError::Corrupt {
                        key: key.clone(),
                        reason: "not a block number".into(),
                    })?;
                Ok((number, decode(&key, &bytes)?))
            })
            .collect()
    }

    /// Skipped events, oldest first; of one module, or of all.
    pub fn dead_letters(&self, module: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        self.engine_scan(&dead_letter_prefix(module))?
            .into_iter()
            .map(|(key, bytes)| decode(&key, &bytes))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_index_records_are_adopted_once_and_never_over_newer_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let cursor = |number: u64| Cursor {
            number,
            hash: alloy_primitives::B256::ZERO,
            log_index: None,
        };
        let block = DeliveredBlock {
            hash: alloy_primitives::B256::ZERO,
            logs: Vec::new(),
        };
        store
            .engine_commit(&[
                put("cursor/m/0000".into(), &cursor(9)),
                put(format!("delivered/m/0000/{:020}", 9), &block),
                put("cursor/m/0001".into(), &cursor(4)),
                put("cursor/m/0002".into(), &cursor(2)),
            ])
            .unwrap();
        // Index 1 already has a start of its own; index 2 no longer exists.
        store
            .engine_commit(&[put(start_key("m", "log-1-b"), &Start { next: 100 })])
            .unwrap();
        let positions = [(0, "block-1".to_string()), (1, "log-1-b".to_string())];
        store.adopt_legacy_positions("m", &positions).unwrap();
        assert_eq!(store.cursor("m", "block-1").unwrap(), Some(cursor(9)));
        assert_eq!(store.delivered("m", "block-1").unwrap().len(), 1);
        assert_eq!(store.cursor("m", "log-1-b").unwrap(), None);
        for legacy in ["cursor/m/0000", "cursor/m/0001", "cursor/m/0002"] {
            assert_eq!(
                store.engine_get(legacy).unwrap(),
                None,
                "{legacy} left behind"
            );
        }
        // Once: records written under the old names later are left alone.
        store
            .engine_commit(&[put("cursor/m/0000".into(), &cursor(1))])
            .unwrap();
        store.adopt_legacy_positions("m", &positions).unwrap();
        assert_eq!(store.cursor("m", "block-1").unwrap(), Some(cursor(9)));
    }

    #[test]
    fn dead_letters_are_capped_oldest_first() {
        let letter = DeadLetter {
            module: "m".into(),
            subscription: None,
            event: Event::Tick(nexum_core::Tick {
                fired_at: 0,
                schedule: String::new(),
            }),
            reason: "failed".into(),
            attempts: 1,
            at_ms: 7,
        };
        let existing: Vec<String> = (0..MAX_DEAD_LETTERS)
            .map(|i| format!("deadletter/m/{i:05}"))
            .collect();
        let records = dead_letter_with_pruning(&letter, &existing);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0], remove("deadletter/m/00000".into()));
        assert!(records[1].key.starts_with("deadletter/m/"));
        assert_eq!(dead_letter_with_pruning(&letter, &existing[..10]).len(), 1);
    }
}

//! The engine's own records, in its keyspace (which no module can reach): where each
//! module's chain delivery stands (cursors), what it was recently given (to undo reorgs),
//! and the events it had to skip (dead letters). The key layout lives here and nowhere else.

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

pub(crate) fn cursor_key(module: &str, subscription: usize) -> String {
    format!("cursor/{module}/{subscription:04}")
}

pub(crate) fn delivered_prefix(module: &str, subscription: usize) -> String {
    format!("delivered/{module}/{subscription:04}/")
}

pub(crate) fn delivered_key(module: &str, subscription: usize, number: u64) -> String {
    format!("{}{number:020}", delivered_prefix(module, subscription))
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

/// The record of a skipped event.
pub(crate) fn dead_letter(letter: &DeadLetter) -> EngineRecord {
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
    /// The cursor of `module`'s subscription `subscription`, if it has one.
    pub(crate) fn cursor(
        &self,
        module: &str,
        subscription: usize,
    ) -> Result<Option<Cursor>, StoreError> {
        let key = cursor_key(module, subscription);
        self.engine_get(&key)?
            .map(|bytes| decode(&key, &bytes))
            .transpose()
    }

    /// What `module`'s subscription was recently given, by block number.
    pub(crate) fn delivered(
        &self,
        module: &str,
        subscription: usize,
    ) -> Result<Vec<(u64, DeliveredBlock)>, StoreError> {
        let prefix = delivered_prefix(module, subscription);
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

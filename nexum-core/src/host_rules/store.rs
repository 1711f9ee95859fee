//! What a module may do with `local-store`, and the write set of one call.
//!
//! A call's writes are held in a [`WriteSet`] until the call ends: it reads its own writes,
//! and they commit together on `ok`. The set enforces the store limits: key and value
//! sizes, the module's quota (its committed bytes plus what the call adds), and the bytes
//! the set itself holds (writes and deletes alike, so churn inside one call cannot grow
//! it). Deleting a key that was never committed costs nothing and leaves nothing to write.
//!
//! The backend (fjall in the runtime, a map in the SDK's test host) supplies the committed
//! side; both apply these same rules.

use crate::limits::Limits;
use std::collections::BTreeMap;

/// Why a store call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreRule {
    /// The key (or a `list-keys` prefix) is longer than `store_key_bytes`.
    #[error("key is {len} bytes; the limit is {max}")]
    KeyTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: u64,
    },
    /// Keys must not be empty.
    #[error("keys must not be empty")]
    EmptyKey,
    /// The value is larger than `store_value_bytes`.
    #[error("value is {len} bytes; the limit is {max}")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: u64,
    },
    /// The module's committed bytes plus this call's would exceed `store_total_bytes`.
    #[error("the store quota of {max} bytes would be exceeded ({used} bytes in use)")]
    QuotaExceeded {
        /// Bytes committed.
        used: u64,
        /// The quota.
        max: u64,
    },
    /// The call's pending writes and deletes would hold more than the quota.
    #[error(
        "this call's pending writes would hold more than the store quota of {max} bytes; \
         commit in smaller steps"
    )]
    PendingTooLarge {
        /// The quota.
        max: u64,
    },
    /// More keys match than `list_keys_max`.
    #[error("more than {max} keys start with {prefix:?}; list a narrower prefix")]
    TooManyKeys {
        /// The prefix asked for.
        prefix: String,
        /// The limit.
        max: usize,
    },
}

impl StoreRule {
    /// Whether the refusal is about the module's quota (a `denied` fault) rather than its
    /// input (`invalid-input`).
    pub fn is_quota(&self) -> bool {
        matches!(
            self,
            StoreRule::QuotaExceeded { .. } | StoreRule::PendingTooLarge { .. }
        )
    }
}

/// The store limits of one module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// `store_key_bytes`.
    pub key_bytes: u64,
    /// `store_value_bytes`.
    pub value_bytes: u64,
    /// `store_total_bytes`.
    pub total_bytes: u64,
    /// `list_keys_max`.
    pub list_keys: usize,
}

impl From<&Limits> for StoreLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            key_bytes: limits.store_key_bytes,
            value_bytes: limits.store_value_bytes,
            total_bytes: limits.store_total_bytes,
            list_keys: usize::try_from(limits.list_keys_max).unwrap_or(usize::MAX),
        }
    }
}

impl StoreLimits {
    /// Checks a key (and a `list-keys` prefix, which may be empty).
    pub fn check_key(&self, key: &str) -> Result<(), StoreRule> {
        if key.is_empty() {
            return Err(StoreRule::EmptyKey);
        }
        self.check_prefix(key)
    }

    /// Checks a `list-keys` prefix: bounded like a key, and may be empty.
    pub fn check_prefix(&self, prefix: &str) -> Result<(), StoreRule> {
        if prefix.len() as u64 > self.key_bytes {
            return Err(StoreRule::KeyTooLong {
                len: prefix.len(),
                max: self.key_bytes,
            });
        }
        Ok(())
    }
}

/// The size a key and value count for in the quota.
pub fn entry_size(key: usize, value: usize) -> u64 {
    (key + value) as u64
}

/// What one pending write costs the host beyond its bytes (its map node and allocations):
/// counted in what a call's write set holds, so a million one-byte keys cost what they
/// really take.
pub const PENDING_ENTRY_OVERHEAD: u64 = 64;

/// The least a call's write set may hold whatever the quota, so that a module with a tiny
/// quota can still write (the quota itself still applies to what it commits).
pub const MIN_PENDING_BYTES: u64 = 1024 * 1024;

/// The writes of one in-flight call, newest value per key (`None` = deleted).
#[derive(Debug, Default)]
pub struct WriteSet {
    writes: BTreeMap<String, Option<Vec<u8>>>,
    /// How many bytes the writes add to (or take from) the module's committed usage.
    delta: i64,
    /// Bytes the set holds: keys and values of sets, keys of deletes, and
    /// [`PENDING_ENTRY_OVERHEAD`] per entry.
    held: u64,
}

impl WriteSet {
    /// Whether the call has written nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// How many keys the call wrote or deleted.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// What the call wrote for `key`: `Some(None)` for a delete, `None` if untouched.
    pub fn get(&self, key: &str) -> Option<Option<&[u8]>> {
        self.writes.get(key).map(Option::as_deref)
    }

    /// Whether the call wrote or deleted `key` (so the committed value is hidden).
    pub fn touches(&self, key: &str) -> bool {
        self.writes.contains_key(key)
    }

    /// How many bytes committing the set adds to the module's usage (negative: frees).
    pub fn delta(&self) -> i64 {
        self.delta
    }

    /// The writes, in key order, to commit.
    pub fn into_writes(self) -> impl Iterator<Item = (String, Option<Vec<u8>>)> {
        self.writes.into_iter()
    }

    /// The quota size of `key` as the call sees it, given its committed size.
    fn visible(&self, key: &str, committed: Option<u64>) -> u64 {
        match self.writes.get(key) {
            Some(write) => write
                .as_ref()
                .map_or(0, |value| entry_size(key.len(), value.len())),
            None => committed.unwrap_or(0),
        }
    }

    fn held_by(&self, key: &str) -> u64 {
        self.writes.get(key).map_or(0, |write| {
            entry_size(key.len(), write.as_ref().map_or(0, Vec::len)) + PENDING_ENTRY_OVERHEAD
        })
    }

    /// Sets `key` to `value`. `committed` is the committed entry's quota size (key plus
    /// value) if there is one; `used` is the module's committed usage.
    pub fn set(
        &mut self,
        limits: &StoreLimits,
        used: u64,
        key: String,
        value: Vec<u8>,
        committed: Option<u64>,
    ) -> Result<(), StoreRule> {
        limits.check_key(&key)?;
        if value.len() as u64 > limits.value_bytes {
            return Err(StoreRule::ValueTooLarge {
                len: value.len(),
                max: limits.value_bytes,
            });
        }
        let size = entry_size(key.len(), value.len());
        let delta = self.delta - self.visible(&key, committed) as i64 + size as i64;
        let held = self.held - self.held_by(&key) + size + PENDING_ENTRY_OVERHEAD;
        self.check_budget(limits, used, delta, held)?;
        self.delta = delta;
        self.held = held;
        self.writes.insert(key, Some(value));
        Ok(())
    }

    /// Deletes `key`. A key that was never committed costs nothing: the call's own write
    /// of it, if any, is dropped, and nothing is left to write.
    pub fn delete(
        &mut self,
        limits: &StoreLimits,
        used: u64,
        key: String,
        committed: Option<u64>,
    ) -> Result<(), StoreRule> {
        limits.check_key(&key)?;
        let visible = self.visible(&key, committed) as i64;
        if committed.is_none() {
            let held = self.held_by(&key);
            if self.writes.remove(&key).is_some() {
                self.held -= held;
                self.delta -= visible;
            }
            return Ok(());
        }
        let delta = self.delta - visible;
        let held =
            self.held - self.held_by(&key) + entry_size(key.len(), 0) + PENDING_ENTRY_OVERHEAD;
        self.check_budget(limits, used, delta, held)?;
        self.delta = delta;
        self.held = held;
        self.writes.insert(key, None);
        Ok(())
    }

    /// Refuses a write that would take the module over its quota, or make the set hold more
    /// than the quota.
    fn check_budget(
        &self,
        limits: &StoreLimits,
        used: u64,
        delta: i64,
        held: u64,
    ) -> Result<(), StoreRule> {
        let grows = delta > self.delta;
        if grows && delta > 0 && used.saturating_add(delta as u64) > limits.total_bytes {
            return Err(StoreRule::QuotaExceeded {
                used,
                max: limits.total_bytes,
            });
        }
        let max_held = limits.total_bytes.max(MIN_PENDING_BYTES);
        if held > max_held {
            return Err(StoreRule::PendingTooLarge { max: max_held });
        }
        Ok(())
    }

    /// The keys under `prefix` as the call sees them, sorted: `committed` (the committed
    /// keys under `prefix` the call did not touch, gathered by the backend, which stops
    /// once it has more than the limit) plus the call's own live writes. A match larger
    /// than the limit is refused, never truncated.
    pub fn merge_keys(
        &self,
        limits: &StoreLimits,
        prefix: &str,
        mut committed: Vec<String>,
    ) -> Result<Vec<String>, StoreRule> {
        let too_many = || StoreRule::TooManyKeys {
            prefix: crate::bounded::cut(prefix, 256).into_owned(),
            max: limits.list_keys,
        };
        if committed.len() > limits.list_keys {
            return Err(too_many());
        }
        let room = limits.list_keys + 1 - committed.len();
        committed.extend(
            self.writes
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| k.clone())
                .take(room),
        );
        if committed.len() > limits.list_keys {
            return Err(too_many());
        }
        committed.sort_unstable();
        Ok(committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: u64) -> StoreLimits {
        StoreLimits {
            key_bytes: 16,
            value_bytes: 32,
            total_bytes: total,
            list_keys: 3,
        }
    }

    #[test]
    fn the_quota_counts_overwrites_and_deletes() {
        let limits = limits(20);
        let mut set = WriteSet::default();
        set.set(&limits, 0, "k1".into(), vec![0; 8], None).unwrap(); // 10
        set.set(&limits, 0, "k1".into(), vec![0; 4], None).unwrap(); // overwrite: 6
        set.set(&limits, 0, "k2".into(), vec![0; 8], None).unwrap(); // 16
        assert_eq!(
            set.set(&limits, 0, "k3".into(), vec![0; 8], None),
            Err(StoreRule::QuotaExceeded { used: 0, max: 20 })
        );
        assert_eq!(set.delta(), 16);
        // Deleting a committed entry of 10 frees it.
        set.delete(&limits, 0, "old".into(), Some(10)).unwrap();
        assert_eq!(set.delta(), 6);
    }

    #[test]
    fn deleting_what_was_never_committed_leaves_nothing() {
        let limits = limits(64);
        let mut set = WriteSet::default();
        for i in 0..10_000 {
            set.delete(&limits, 0, format!("missing/{i:05}"), None)
                .unwrap();
        }
        assert!(set.is_empty());
        set.set(&limits, 0, "fresh".into(), vec![1; 8], None)
            .unwrap();
        set.delete(&limits, 0, "fresh".into(), None).unwrap();
        assert!(set.is_empty());
        assert_eq!((set.delta, set.held), (0, 0));
    }

    #[test]
    fn deletes_of_committed_keys_are_held_against_the_quota() {
        // Four deletes of 6-byte keys hold 4 × (6 + overhead); a value must fit beside them
        // in what a call may hold.
        let limits = StoreLimits {
            value_bytes: u64::MAX,
            ..limits(MIN_PENDING_BYTES)
        };
        let mut set = WriteSet::default();
        for k in ["key-01", "key-02", "key-03", "key-04"] {
            set.delete(&limits, 24, k.into(), Some(6)).unwrap();
        }
        let room =
            MIN_PENDING_BYTES - 4 * (6 + PENDING_ENTRY_OVERHEAD) - PENDING_ENTRY_OVERHEAD - 1;
        assert_eq!(
            set.set(&limits, 24, "v".into(), vec![0; room as usize + 1], None),
            Err(StoreRule::PendingTooLarge {
                max: MIN_PENDING_BYTES
            })
        );
        set.set(&limits, 24, "v".into(), vec![0; room as usize], None)
            .unwrap();
    }

    #[test]
    fn keys_values_and_prefixes_are_bounded() {
        let limits = limits(1024);
        let mut set = WriteSet::default();
        assert_eq!(
            set.set(&limits, 0, "k".repeat(17), vec![], None),
            Err(StoreRule::KeyTooLong { len: 17, max: 16 })
        );
        assert_eq!(
            set.set(&limits, 0, String::new(), vec![], None),
            Err(StoreRule::EmptyKey)
        );
        assert_eq!(
            set.set(&limits, 0, "k".into(), vec![0; 33], None),
            Err(StoreRule::ValueTooLarge { len: 33, max: 32 })
        );
        assert!(limits.check_prefix("").is_ok());
        assert!(limits.check_prefix(&"p".repeat(17)).is_err());
        assert!(set.is_empty());
    }

    #[test]
    fn listing_merges_the_calls_writes_and_refuses_a_big_match() {
        let limits = limits(1024);
        let mut set = WriteSet::default();
        set.set(&limits, 0, "p/2".into(), vec![2], None).unwrap();
        set.delete(&limits, 0, "p/3".into(), Some(4)).unwrap();
        let committed = vec!["p/1".to_string()]; // p/3 is touched, so the backend skips it
        assert_eq!(
            set.merge_keys(&limits, "p/", committed).unwrap(),
            vec!["p/1", "p/2"]
        );
        set.set(&limits, 0, "p/4".into(), vec![], None).unwrap();
        set.set(&limits, 0, "p/5".into(), vec![], None).unwrap();
        assert!(matches!(
            set.merge_keys(&limits, "p/", vec!["p/1".into()]),
            Err(StoreRule::TooManyKeys { max: 3, .. })
        ));
    }
}

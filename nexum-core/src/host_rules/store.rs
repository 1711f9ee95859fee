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
use std::ops::Bound;

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
    /// A batch (`apply`) holds more than [`BATCH_MAX_WRITES`] writes.
    #[error("a batch of {len} writes is over the limit of {max}; apply it in parts")]
    BatchTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More keys match than `list_keys_max`.
    #[error(
        "more than {max} keys start with {prefix:?}; list a narrower prefix, or page through them with list-entries"
    )]
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

    /// Checks the length of a batch.
    pub fn check_batch(&self, len: usize) -> Result<(), StoreRule> {
        if len > BATCH_MAX_WRITES {
            return Err(StoreRule::BatchTooLarge {
                len,
                max: BATCH_MAX_WRITES,
            });
        }
        Ok(())
    }

    /// Checks a batch before anything of it is looked up: its length, then each write's
    /// key and value size, in order.
    pub fn check_writes(&self, ops: &[WriteOp]) -> Result<(), StoreRule> {
        self.check_batch(ops.len())?;
        for op in ops {
            self.check_key(op.key())?;
            if let WriteOp::Set(_, value) = op
                && value.len() as u64 > self.value_bytes
            {
                return Err(StoreRule::ValueTooLarge {
                    len: value.len(),
                    max: self.value_bytes,
                });
            }
        }
        Ok(())
    }

    /// Checks a `list-entries` cursor: any key the storage may hold.
    pub fn check_cursor(&self, after: &str) -> Result<(), StoreRule> {
        if after.len() > CURSOR_MAX_BYTES {
            return Err(StoreRule::KeyTooLong {
                len: after.len(),
                max: CURSOR_MAX_BYTES as u64,
            });
        }
        Ok(())
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

/// The most entries one `list-entries` page holds, whatever the module asks for.
pub const PAGE_MAX_ENTRIES: u32 = 1000;

/// The most bytes of keys and values one `list-entries` page holds; a page always holds at
/// least one entry, so a single large value is still reachable.
pub const PAGE_MAX_BYTES: u64 = 1024 * 1024;

/// The most committed entries, and bytes, one page may pass over because the call's own
/// writes hide them (deleted or rewritten in the call): what one `list-entries` call may
/// read without showing anything is bounded too.
pub const PAGE_SCAN_ENTRIES: usize = 4 * PAGE_MAX_ENTRIES as usize;
/// See [`PAGE_SCAN_ENTRIES`].
pub const PAGE_SCAN_BYTES: u64 = 4 * PAGE_MAX_BYTES;

/// The longest `after` cursor accepted: the longest key the storage holds, so a cursor
/// from a key written under an older, larger `store_key_bytes` still resumes a walk.
pub const CURSOR_MAX_BYTES: usize = 65_536;

/// The most writes one batch (`apply`) may hold: each is looked up in the store before
/// the batch is judged, so the count bounds the host's work per call.
pub const BATCH_MAX_WRITES: usize = 10_000;

/// One page of a range scan, as the call sees the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Keys and values in key order.
    pub entries: Vec<(String, Vec<u8>)>,
    /// The key to resume after for the next page; `None` when nothing is left.
    pub next: Option<String>,
}

/// One write of a batch (`apply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Set the key to the value.
    Set(String, Vec<u8>),
    /// Remove the key.
    Delete(String),
}

impl WriteOp {
    /// The key it writes.
    pub fn key(&self) -> &str {
        match self {
            WriteOp::Set(key, _) | WriteOp::Delete(key) => key,
        }
    }
}

/// Where a scan under `prefix` resumes: right after `after` when that lies at or beyond
/// the prefix, else at the prefix itself.
pub fn scan_start(prefix: &str, after: Option<&str>) -> Bound<String> {
    match after {
        Some(after) if after >= prefix => Bound::Excluded(after.to_string()),
        _ => Bound::Included(prefix.to_string()),
    }
}

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

    /// One page of the entries under `prefix` after `after`, as the call sees them: the
    /// call's own live writes merged, in key order, with `committed` (the committed entries
    /// under `prefix` after `after`, in key order; the backend may fetch them lazily, and
    /// only as many are pulled as the page needs). At most `limit` entries (at least one, at
    /// most [`PAGE_MAX_ENTRIES`]) and [`PAGE_MAX_BYTES`], a single larger entry excepted.
    ///
    /// Committed entries the call's own writes hide are passed over, at most
    /// [`PAGE_SCAN_ENTRIES`] or [`PAGE_SCAN_BYTES`] of them per page: a page can hold fewer
    /// entries than asked, even none, and still have a `next` cursor.
    pub fn page<E>(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        committed: impl Iterator<Item = Result<(String, Vec<u8>), E>>,
    ) -> Result<Page, E> {
        let max_entries = limit.clamp(1, PAGE_MAX_ENTRIES) as usize;
        let mut own = self
            .writes
            .range((scan_start(prefix, after), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter_map(|(key, write)| write.as_ref().map(|value| (key, value)))
            .peekable();
        let mut committed = committed.peekable();
        let mut page = Page::default();
        let mut bytes = 0u64;
        let (mut passed, mut passed_bytes) = (0usize, 0u64);
        // The last key this page dealt with, shown or passed over: where the next starts.
        let mut cursor: Option<String> = None;
        loop {
            let own_first = match (own.peek(), committed.peek()) {
                (None, None) => return Ok(page),
                (_, Some(Err(_))) => {
                    return Err(committed.next().and_then(Result::err).expect("peeked"));
                }
                (Some(_), None) => true,
                (None, Some(_)) => false,
                // On a tie the call's write comes first; the committed entry is then hidden.
                (Some((own_key, _)), Some(Ok((key, _)))) => own_key.as_str() <= key.as_str(),
            };
            let (key, size) = match (own_first, own.peek(), committed.peek()) {
                (true, Some((key, value)), _) => (key.as_str(), entry_size(key.len(), value.len())),
                (false, _, Some(Ok((key, value)))) => {
                    (key.as_str(), entry_size(key.len(), value.len()))
                }
                _ => unreachable!("a candidate was peeked"),
            };
            if !own_first && self.touches(key) {
                if passed >= PAGE_SCAN_ENTRIES || passed_bytes >= PAGE_SCAN_BYTES {
                    page.next = cursor;
                    return Ok(page);
                }
                passed += 1;
                passed_bytes += size;
                cursor = committed.next().and_then(Result::ok).map(|(key, _)| key);
                continue;
            }
            if !page.entries.is_empty()
                && (page.entries.len() == max_entries || bytes + size > PAGE_MAX_BYTES)
            {
                page.next = cursor;
                return Ok(page);
            }
            let (key, value) = if own_first {
                let (key, value) = own.next().expect("peeked");
                (key.clone(), value.clone())
            } else {
                committed.next().and_then(Result::ok).expect("peeked Ok")
            };
            bytes += size;
            cursor = Some(key.clone());
            page.entries.push((key, value));
        }
    }

    /// How many keys under `prefix` the call sees, given the committed count and a way to
    /// ask whether a key is committed (asked only for keys the call wrote).
    pub fn count<E>(
        &self,
        prefix: &str,
        committed: u64,
        mut is_committed: impl FnMut(&str) -> Result<bool, E>,
    ) -> Result<u64, E> {
        let mut count = committed;
        for (key, write) in self
            .writes
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
        {
            match (write.is_some(), is_committed(key)?) {
                (true, false) => count += 1,
                (false, true) => count = count.saturating_sub(1),
                _ => {}
            }
        }
        Ok(count)
    }

    /// Applies `ops` in order as one: all of them, or — when any breaks a limit or the
    /// batch as a whole would go over the quota — none. Each op comes with its key's
    /// committed quota size, as for [`Self::set`] and [`Self::delete`].
    pub fn apply(
        &mut self,
        limits: &StoreLimits,
        used: u64,
        ops: Vec<(WriteOp, Option<u64>)>,
    ) -> Result<(), StoreRule> {
        let (writes, committed): (Vec<WriteOp>, Vec<Option<u64>>) = ops.into_iter().unzip();
        limits.check_writes(&writes)?;
        // The last write of each key is the one that counts.
        let mut last: BTreeMap<String, (Option<Vec<u8>>, Option<u64>)> = BTreeMap::new();
        for (op, committed) in writes.into_iter().zip(committed) {
            let (key, value) = match op {
                WriteOp::Set(key, value) => (key, Some(value)),
                WriteOp::Delete(key) => (key, None),
            };
            last.insert(key, (value, committed));
        }
        let mut delta = self.delta;
        let mut held = self.held;
        for (key, (value, committed)) in &last {
            delta -= self.visible(key, *committed) as i64;
            held -= self.held_by(key);
            match (value, committed) {
                (Some(value), _) => {
                    let size = entry_size(key.len(), value.len());
                    delta += size as i64;
                    held += size + PENDING_ENTRY_OVERHEAD;
                }
                (None, Some(_)) => held += entry_size(key.len(), 0) + PENDING_ENTRY_OVERHEAD,
                // Deleting what was never committed leaves nothing to write.
                (None, None) => {}
            }
        }
        self.check_budget(limits, used, delta, held)?;
        for (key, (value, committed)) in last {
            if value.is_none() && committed.is_none() {
                self.writes.remove(&key);
            } else {
                self.writes.insert(key, value);
            }
        }
        self.delta = delta;
        self.held = held;
        Ok(())
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

    fn committed(
        map: &BTreeMap<String, Vec<u8>>,
        prefix: &str,
        after: Option<&str>,
    ) -> Vec<Result<(String, Vec<u8>), ()>> {
        map.range((scan_start(prefix, after), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect()
    }

    #[test]
    fn paging_while_the_call_writes_returns_each_live_key_once() {
        let limits = StoreLimits {
            key_bytes: 16,
            value_bytes: 32,
            total_bytes: 1 << 20,
            list_keys: 3,
        };
        let mut store: BTreeMap<String, Vec<u8>> =
            (0..20).map(|i| (format!("p/{i:02}"), vec![1])).collect();
        store.insert("q/00".into(), vec![1]);
        let size = |map: &BTreeMap<String, Vec<u8>>, k: &str| {
            map.get(k).map(|v| entry_size(k.len(), v.len()))
        };
        let mut set = WriteSet::default();
        // Before the walk: one committed key deleted, one new key between committed ones.
        set.delete(&limits, 0, "p/03".into(), size(&store, "p/03"))
            .unwrap();
        set.set(&limits, 0, "p/045".into(), vec![2], None).unwrap();

        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = set
                .page(
                    "p/",
                    after.as_deref(),
                    3,
                    committed(&store, "p/", after.as_deref()).into_iter(),
                )
                .unwrap();
            assert!(page.entries.len() <= 3, "a page holds more than asked");
            seen.extend(page.entries.iter().map(|(k, _)| k.clone()));
            // While walking: delete a key ahead, add one ahead and one behind.
            if seen.len() == 3 {
                set.delete(&limits, 0, "p/10".into(), size(&store, "p/10"))
                    .unwrap();
                set.set(&limits, 0, "p/155".into(), vec![3], None).unwrap();
                set.set(&limits, 0, "p/005".into(), vec![3], None).unwrap();
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..20)
            .map(|i| format!("p/{i:02}"))
            .filter(|k| k != "p/03" && k != "p/10")
            .chain(["p/045".to_string(), "p/155".to_string()])
            .collect();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_page_stops_at_the_entry_and_byte_caps_but_holds_at_least_one() {
        let set = WriteSet::default();
        let many: Vec<Result<(String, Vec<u8>), ()>> = (0..3000)
            .map(|i| Ok((format!("k{i:05}"), vec![])))
            .collect();
        let page = set.page("", None, u32::MAX, many.into_iter()).unwrap();
        assert_eq!(page.entries.len(), PAGE_MAX_ENTRIES as usize);
        assert_eq!(page.next.as_deref(), Some("k00999"));

        let big = vec![0u8; (PAGE_MAX_BYTES as usize) * 2 / 3];
        let large: Vec<Result<(String, Vec<u8>), ()>> =
            (0..3).map(|i| Ok((format!("b{i}"), big.clone()))).collect();
        let page = set.page("", None, 0, large.clone().into_iter()).unwrap();
        assert_eq!(page.entries.len(), 1, "limit 0 still returns one entry");
        let page = set.page("", None, 10, large.into_iter()).unwrap();
        assert_eq!(
            page.entries.len(),
            1,
            "a second large value would pass the byte cap"
        );
        assert_eq!(page.next.as_deref(), Some("b0"));
        let last = set
            .page(
                "",
                Some("b1"),
                10,
                vec![Ok::<_, ()>(("b2".to_string(), big.clone()))].into_iter(),
            )
            .unwrap();
        assert_eq!((last.entries.len(), last.next), (1, None));
    }

    #[test]
    fn counting_sees_the_calls_own_writes() {
        let limits = limits(1024);
        let committed = ["c/1", "c/2", "c/3"];
        let is_committed = |k: &str| Ok::<_, ()>(committed.contains(&k));
        let mut set = WriteSet::default();
        set.set(&limits, 0, "c/1".into(), vec![1], Some(4)).unwrap(); // overwrite: same count
        set.set(&limits, 0, "c/9".into(), vec![1], None).unwrap(); // new
        set.delete(&limits, 0, "c/2".into(), Some(4)).unwrap(); // gone
        set.set(&limits, 0, "d/1".into(), vec![1], None).unwrap(); // another prefix
        assert_eq!(set.count("c/", 3, is_committed), Ok(3));
        assert_eq!(set.count("", 3, is_committed), Ok(4));
    }

    #[test]
    fn a_batch_applies_whole_or_not_at_all() {
        let limits = limits(40);
        let mut set = WriteSet::default();
        set.set(&limits, 0, "a".into(), vec![0; 9], None).unwrap(); // 10
        let before = (set.delta, set.held, set.len());
        // 10 + 3 × 11 = 43 > 40: refused whole, nothing of it applied.
        let over = (1..=3)
            .map(|i| (WriteOp::Set(format!("k{i}"), vec![0; 9]), None))
            .collect();
        assert_eq!(
            set.apply(&limits, 0, over),
            Err(StoreRule::QuotaExceeded { used: 0, max: 40 })
        );
        assert_eq!((set.delta, set.held, set.len()), before);
        // A value over the limit anywhere refuses the batch.
        let bad = vec![
            (WriteOp::Set("ok".into(), vec![1]), None),
            (WriteOp::Set("big".into(), vec![0; 33]), None),
        ];
        assert!(matches!(
            set.apply(&limits, 0, bad),
            Err(StoreRule::ValueTooLarge { .. })
        ));
        assert_eq!(set.len(), 1);
        // Within the quota once the batch frees what it overwrites: the last write wins.
        let fits = vec![
            (WriteOp::Set("a".into(), vec![0; 30]), None),
            (WriteOp::Delete("a".into()), None),
            (WriteOp::Set("k1".into(), vec![0; 9]), None),
            (WriteOp::Delete("never".into()), None),
        ];
        set.apply(&limits, 0, fits).unwrap();
        assert_eq!(
            set.get("a"),
            None,
            "a write never committed, then deleted, leaves nothing"
        );
        assert_eq!(set.get("k1"), Some(Some(&[0u8; 9][..])));
        assert_eq!(set.delta(), 11);
        let too_many = (0..=BATCH_MAX_WRITES)
            .map(|i| (WriteOp::Delete(format!("d{i}")), None))
            .collect();
        assert!(matches!(
            set.apply(&limits, 0, too_many),
            Err(StoreRule::BatchTooLarge { .. })
        ));
    }

    fn walk(
        set: &WriteSet,
        map: &BTreeMap<String, Vec<u8>>,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Page {
        set.page(
            prefix,
            after,
            limit,
            committed(map, prefix, after).into_iter(),
        )
        .unwrap()
    }

    fn keys(page: &Page) -> Vec<&str> {
        page.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn cursors_before_at_and_past_the_prefix_and_a_key_equal_to_it() {
        let limits = limits(1024);
        let map: BTreeMap<String, Vec<u8>> = ["a", "p", "p/1", "p/2", "q"]
            .iter()
            .map(|k| (k.to_string(), vec![1]))
            .collect();
        let set = WriteSet::default();
        assert_eq!(
            keys(&walk(&set, &map, "p", Some("a"), 10)),
            ["p", "p/1", "p/2"]
        );
        assert_eq!(keys(&walk(&set, &map, "p", Some("p"), 10)), ["p/1", "p/2"]);
        assert_eq!(
            keys(&walk(&set, &map, "p", Some("p/2"), 10)),
            Vec::<&str>::new()
        );
        assert_eq!(walk(&set, &map, "p", Some("pz"), 10), Page::default());
        assert_eq!(
            keys(&walk(&set, &map, "", None, 10)),
            ["a", "p", "p/1", "p/2", "q"]
        );

        // The last key is the call's own: the page ends there, with nothing after it.
        let mut set = WriteSet::default();
        set.set(&limits, 0, "p/3".into(), vec![3], None).unwrap();
        let page = walk(&set, &map, "p/", Some("p/1"), 2);
        assert_eq!(
            (keys(&page), page.next.as_deref()),
            (vec!["p/2", "p/3"], None)
        );
        let page = walk(&set, &map, "p/", None, 3);
        assert_eq!(
            (keys(&page), page.next.as_deref()),
            (vec!["p/1", "p/2", "p/3"], None)
        );
    }

    #[test]
    fn hidden_entries_are_passed_over_within_a_budget() {
        let limits = StoreLimits {
            total_bytes: 64 << 20,
            ..limits(64 << 20)
        };
        let hidden = PAGE_SCAN_ENTRIES * 2 + 10;
        let map: BTreeMap<String, Vec<u8>> = (0..hidden + 1)
            .map(|i| (format!("h/{i:06}"), vec![1]))
            .collect();
        let mut set = WriteSet::default();
        for i in 0..hidden {
            set.delete(&limits, 0, format!("h/{i:06}"), Some(9))
                .unwrap();
        }
        let mut after: Option<String> = None;
        let mut pages = 0;
        let mut seen = Vec::new();
        loop {
            let page = walk(&set, &map, "h/", after.as_deref(), 10);
            pages += 1;
            seen.extend(page.entries.iter().map(|(k, _)| k.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, vec![format!("h/{hidden:06}")]);
        assert_eq!(
            pages, 3,
            "each page passes over at most PAGE_SCAN_ENTRIES hidden entries"
        );
    }
}

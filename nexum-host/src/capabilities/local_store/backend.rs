//! One module's store as a view over the engine's [`Ledger`]: reads, the rules a call's
//! writes obey (shared with the SDK's test host through `nexum_core::host_rules::store`),
//! and the atomic commit of a call's writes with the engine's records for it.

use crate::ledger::{Bookkeeping, Ledger, StoreError};
use nexum_core::host_rules::store::{Page, StoreLimits, StoreRule, WriteOp, WriteSet, entry_size};
use nexum_core::{Limits, ModuleName};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Why a module's store call was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreRefusal {
    /// A rule every host applies (sizes, quota, list length).
    #[error(transparent)]
    Rule(#[from] StoreRule),
    /// The storage backend failed.
    #[error(transparent)]
    Backend(#[from] StoreError),
}

/// A commit that failed, to ask about: it may have landed.
#[derive(Clone, Copy)]
struct FailedCommit {
    id: u64,
    /// The usage it set, if it wrote anything.
    usage: Option<u64>,
}

/// One module's view of the ledger.
#[derive(Clone)]
pub(crate) struct ModuleStore {
    ledger: Ledger,
    module: ModuleName,
    limits: StoreLimits,
    /// Bytes of keys and values committed, shared by every instance of the module.
    used: Arc<AtomicU64>,
    /// A storage failure a call ran into: the call then counts as the store's failure
    /// (run again), never as the module's (retried, then dead-lettered).
    backend_failure: Arc<std::sync::Mutex<Option<String>>>,
    /// A read this call made ended after the call's deadline.
    past_deadline: Arc<AtomicBool>,
    /// The module's last commit, if it failed: its id, and the usage it would have set.
    failed_commit: Arc<std::sync::Mutex<Option<FailedCommit>>>,
}

impl ModuleStore {
    /// The store of module `module`, enforcing `limits` on its writes.
    pub fn open(ledger: &Ledger, module: &ModuleName, limits: &Limits) -> Result<Self, StoreError> {
        Ok(Self {
            ledger: ledger.clone(),
            module: module.clone(),
            limits: StoreLimits::from(limits),
            used: ledger.module_usage(module)?,
            backend_failure: Arc::default(),
            past_deadline: Arc::default(),
            failed_commit: Arc::default(),
        })
    }

    /// Notes that this call ran into a storage failure.
    pub fn note_backend_failure(&self, error: &StoreError) {
        *self
            .backend_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
    }

    /// Notes that a read of this call ended after the call's deadline.
    pub fn note_past_deadline(&self) {
        self.past_deadline.store(true, Ordering::Relaxed);
    }

    /// Whether a read of this call ended after its deadline (and forgets it).
    pub fn take_past_deadline(&self) -> bool {
        self.past_deadline.swap(false, Ordering::Relaxed)
    }

    /// The storage failure this call ran into, if any (and forgets it).
    pub fn take_backend_failure(&self) -> Option<String> {
        self.backend_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The quota size of `key`'s committed entry, if it has one.
    fn committed_size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .ledger
            .module_value_len(&self.module, key)?
            .map(|len| entry_size(key.len(), len)))
    }

    /// The value of `key` as this call sees it: its own pending write first, then the store.
    pub fn get(&self, pending: &WriteSet, key: &str) -> Result<Option<Vec<u8>>, StoreRefusal> {
        self.limits.check_key(key)?;
        if let Some(write) = pending.get(key) {
            return Ok(write.map(<[u8]>::to_vec));
        }
        Ok(self.ledger.module_get(&self.module, key)?)
    }

    pub fn set(
        &self,
        pending: &mut WriteSet,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), StoreRefusal> {
        self.limits.check_key(&key)?;
        let committed = self.committed_size(&key)?;
        Ok(pending.set(&self.limits, self.used_bytes(), key, value, committed)?)
    }

    pub fn delete(&self, pending: &mut WriteSet, key: String) -> Result<(), StoreRefusal> {
        self.limits.check_key(&key)?;
        let committed = self.committed_size(&key)?;
        Ok(pending.delete(&self.limits, self.used_bytes(), key, committed)?)
    }

    /// Keys starting with `prefix`, sorted, merging committed keys with this call's writes.
    /// A match larger than the module's `list_keys_max` is refused (never truncated), and
    /// the scan stops there, so a huge prefix cannot exhaust host memory.
    pub fn list_keys(&self, pending: &WriteSet, prefix: &str) -> Result<Vec<String>, StoreRefusal> {
        self.limits.check_prefix(prefix)?;
        // Enough to tell "over the limit" even when the call deleted some of them.
        let room = self.limits.list_keys + 1 + pending.len();
        let committed = self
            .ledger
            .module_keys(&self.module, prefix, room)?
            .into_iter()
            .filter(|key| !pending.touches(key))
            .collect();
        Ok(pending.merge_keys(&self.limits, prefix, committed)?)
    }

    /// One page of the entries under `prefix` after `after`, as the call sees them (see
    /// [`WriteSet::page`]). Committed entries are read in small chunks as the merge needs
    /// them, so host memory stays within a page and a chunk however many keys match.
    pub fn list_entries(
        &self,
        pending: &WriteSet,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, StoreRefusal> {
        self.limits.check_prefix(prefix)?;
        if let Some(after) = after {
            self.limits.check_cursor(after)?;
        }
        let committed = CommittedEntries {
            store: self,
            prefix,
            after: after.map(str::to_string),
            chunk: VecDeque::new(),
            exhausted: false,
        };
        Ok(pending.page(prefix, after, limit, committed)?)
    }

    /// How many keys under `prefix` the call sees.
    pub fn count(&self, pending: &WriteSet, prefix: &str) -> Result<u64, StoreRefusal> {
        self.limits.check_prefix(prefix)?;
        let committed = self.ledger.module_count(&self.module, prefix)?;
        Ok(pending.count(prefix, committed, |key| {
            Ok::<_, StoreError>(self.ledger.module_value_len(&self.module, key)?.is_some())
        })?)
    }

    /// The length of `key`'s value as the call sees it, without reading the value.
    pub fn value_len(&self, pending: &WriteSet, key: &str) -> Result<Option<u64>, StoreRefusal> {
        self.limits.check_key(key)?;
        if let Some(write) = pending.get(key) {
            return Ok(write.map(|value| value.len() as u64));
        }
        Ok(self
            .ledger
            .module_value_len(&self.module, key)?
            .map(|len| len as u64))
    }

    /// Applies `ops` to the call's writes as one: all, or none (see [`WriteSet::apply`]).
    pub fn apply(&self, pending: &mut WriteSet, ops: Vec<WriteOp>) -> Result<(), StoreRefusal> {
        // Judged before any store lookup (wasmtime's hostcall fuel already bounded what
        // it copied to the module's memory size). Each distinct key is looked up once.
        self.limits.check_writes(&ops)?;
        let mut sizes: HashMap<String, Option<u64>> = HashMap::new();
        let mut sized = Vec::with_capacity(ops.len());
        for op in ops {
            let committed = match sizes.get(op.key()) {
                Some(size) => *size,
                None => {
                    let size = self.committed_size(op.key())?;
                    sizes.insert(op.key().to_string(), size);
                    size
                }
            };
            sized.push((op, committed));
        }
        Ok(pending.apply(&self.limits, self.used_bytes(), sized)?)
    }

    /// Commits `pending` and the engine's `bookkeeping` for the call in one atomic batch.
    pub fn commit(&self, pending: WriteSet, bookkeeping: &Bookkeeping) -> Result<(), StoreError> {
        if self.failed().is_some() {
            // A failed commit nobody asked about (an `init` run again): settled first, so
            // the usage this commit builds on counts it if it landed.
            self.commit_in_doubt()?;
        }
        if pending.is_empty() && bookkeeping.is_empty() {
            return Ok(());
        }
        let usage = (!pending.is_empty()).then(|| {
            (
                &*self.used,
                self.used_bytes().saturating_add_signed(pending.delta()),
            )
        });
        let id = crate::ledger::next_commit_id();
        let failed = FailedCommit {
            id,
            usage: usage.map(|(_, used)| used),
        };
        let committed =
            self.ledger
                .commit_call(&self.module, pending.into_writes(), usage, bookkeeping, id);
        if committed.is_err() {
            *self.failed() = Some(failed);
        }
        committed
    }

    fn failed(&self) -> std::sync::MutexGuard<'_, Option<FailedCommit>> {
        self.failed_commit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets a failed commit nobody will ask about (a new worker starts afresh: the
    /// event it was for is delivered again from the store's cursors, if it did not land).
    pub fn forget_failed_commit(&self) {
        *self.failed() = None;
    }

    /// Whether the module's last commit, which failed, landed after all (its answer lost
    /// on the way back): `None` when it certainly did not, or none failed. A call is run
    /// again only once its commit is known not to have landed.
    pub fn commit_in_doubt(&self) -> Result<Option<bool>, StoreError> {
        let Some(failed) = *self.failed() else {
            return Ok(None);
        };
        let answer = self.ledger.commit_in_doubt(&self.module, failed.id)?;
        if let (Some(true), Some(used)) = (answer, failed.usage) {
            // It landed with the usage it carried.
            self.used.store(used, Ordering::Relaxed);
        }
        // Answered once: a later failure (a read's) must not take this answer for its own.
        self.forget_failed_commit();
        Ok(answer)
    }

    /// Bytes of keys and values the module has committed.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// Committed entries read this many at a time (and no more than [`CHUNK_BYTES`]).
const CHUNK_ENTRIES: usize = 256;
const CHUNK_BYTES: u64 = 256 * 1024;

/// A module's committed entries under a prefix, from a start key on, read lazily in chunks.
struct CommittedEntries<'a> {
    store: &'a ModuleStore,
    prefix: &'a str,
    /// The last key read (the next chunk starts after it).
    after: Option<String>,
    chunk: VecDeque<(String, Vec<u8>)>,
    exhausted: bool,
}

impl Iterator for CommittedEntries<'_> {
    type Item = Result<(String, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.chunk.is_empty() && !self.exhausted {
            let read = self.store.ledger.module_entries_after(
                &self.store.module,
                self.prefix,
                self.after.as_deref(),
                CHUNK_ENTRIES,
                CHUNK_BYTES,
            );
            match read {
                Ok(chunk) => {
                    self.exhausted = chunk.is_empty();
                    if let Some((key, _)) = chunk.last() {
                        self.after = Some(key.clone());
                    }
                    self.chunk = chunk.into();
                }
                Err(e) => {
                    self.exhausted = true;
                    return Some(Err(e));
                }
            }
        }
        self.chunk.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexum_core::host_rules::store::{PAGE_MAX_BYTES, PAGE_MAX_ENTRIES};
    use std::collections::BTreeSet;

    fn module(ledger: &Ledger, name: &str, limits: &Limits) -> ModuleStore {
        ModuleStore::open(ledger, &ModuleName::new(name).unwrap(), limits).unwrap()
    }

    #[test]
    fn a_call_reads_its_own_writes_and_commits_atomically() {
        let ledger = Ledger::in_memory();
        let m = module(&ledger, "a", &Limits::default());
        let mut pending = WriteSet::default();
        m.set(&mut pending, "k".into(), b"v1".to_vec()).unwrap();
        assert_eq!(m.get(&pending, "k").unwrap(), Some(b"v1".to_vec()));
        // Not visible outside the call until committed.
        assert_eq!(m.get(&WriteSet::default(), "k").unwrap(), None);
        m.commit(pending, &Bookkeeping::default()).unwrap();
        assert_eq!(
            m.get(&WriteSet::default(), "k").unwrap(),
            Some(b"v1".to_vec())
        );
    }

    #[test]
    fn list_keys_merges_pending_writes_and_deletes() {
        let ledger = Ledger::in_memory();
        let m = module(&ledger, "a", &Limits::default());
        let mut first = WriteSet::default();
        for k in ["p/1", "p/3", "q/1"] {
            m.set(&mut first, k.into(), vec![1]).unwrap();
        }
        m.commit(first, &Bookkeeping::default()).unwrap();

        let mut call = WriteSet::default();
        m.set(&mut call, "p/2".into(), vec![2]).unwrap();
        m.delete(&mut call, "p/3".into()).unwrap();
        assert_eq!(m.list_keys(&call, "p/").unwrap(), vec!["p/1", "p/2"]);
        assert_eq!(m.list_keys(&call, "").unwrap(), vec!["p/1", "p/2", "q/1"]);
    }

    #[test]
    fn modules_do_not_see_each_others_keys() {
        let ledger = Ledger::in_memory();
        let a = module(&ledger, "a", &Limits::default());
        let b = module(&ledger, "b", &Limits::default());
        let mut pending = WriteSet::default();
        a.set(&mut pending, "shared".into(), b"from a".to_vec())
            .unwrap();
        a.commit(pending, &Bookkeeping::default()).unwrap();
        assert_eq!(b.get(&WriteSet::default(), "shared").unwrap(), None);
        assert!(b.list_keys(&WriteSet::default(), "").unwrap().is_empty());
        assert_eq!(
            a.list_keys(&WriteSet::default(), "").unwrap(),
            vec!["shared"]
        );
    }

    #[test]
    fn the_quota_survives_reopening_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            store_total_bytes: 20,
            ..Limits::default()
        };
        {
            let ledger = Ledger::open(dir.path()).unwrap();
            let m = module(&ledger, "a", &limits);
            let mut pending = WriteSet::default();
            m.set(&mut pending, "k1".into(), vec![0; 8]).unwrap();
            m.set(&mut pending, "k2".into(), vec![0; 6]).unwrap();
            assert!(matches!(
                m.set(&mut pending, "k3".into(), vec![0; 8]),
                Err(StoreRefusal::Rule(StoreRule::QuotaExceeded {
                    used: 0,
                    max: 20
                }))
            ));
            m.commit(pending, &Bookkeeping::default()).unwrap();
            assert_eq!(m.used_bytes(), 18);
            ledger.flush().unwrap();
        }
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(module(&ledger, "a", &limits).used_bytes(), 18);
        assert_eq!(
            ledger.read(&ModuleName::new("a").unwrap(), "k1").unwrap(),
            Some(vec![0; 8])
        );
    }

    #[test]
    fn list_keys_refuses_a_match_larger_than_the_limit() {
        let ledger = Ledger::in_memory();
        let limits = Limits {
            list_keys_max: 3,
            ..Limits::default()
        };
        let m = module(&ledger, "a", &limits);
        let mut pending = WriteSet::default();
        for k in ["x/1", "x/2", "x/3", "y/1"] {
            m.set(&mut pending, k.into(), vec![]).unwrap();
        }
        m.commit(pending, &Bookkeeping::default()).unwrap();
        assert_eq!(m.list_keys(&WriteSet::default(), "x/").unwrap().len(), 3);
        assert!(matches!(
            m.list_keys(&WriteSet::default(), ""),
            Err(StoreRefusal::Rule(StoreRule::TooManyKeys { max: 3, .. }))
        ));
    }

    fn on_disk(limits: &Limits) -> (tempfile::TempDir, ModuleStore) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let store = module(&ledger, "pager", limits);
        (dir, store)
    }

    fn commit_keys(m: &ModuleStore, keys: impl IntoIterator<Item = String>, value: &[u8]) {
        let mut call = WriteSet::default();
        let ops = keys
            .into_iter()
            .map(|k| WriteOp::Set(k, value.to_vec()))
            .collect();
        m.apply(&mut call, ops).unwrap();
        m.commit(call, &Bookkeeping::default()).unwrap();
    }

    #[test]
    fn paging_while_the_call_writes_and_deletes_returns_each_live_key_once() {
        let (_dir, m) = on_disk(&Limits::default());
        let committed: Vec<String> = (0..1000).map(|i| format!("p/{i:04}")).collect();
        commit_keys(&m, committed.clone(), b"1");
        commit_keys(&m, ["o/1".to_string(), "q/1".to_string()], b"1");

        let mut call = WriteSet::default();
        let (mut seen, mut deleted, mut added) = (Vec::new(), BTreeSet::new(), BTreeSet::new());
        let mut after: Option<String> = None;
        loop {
            let page = m.list_entries(&call, "p/", after.as_deref(), 7).unwrap();
            assert!(page.entries.len() <= 7, "a page holds more than asked for");
            seen.extend(page.entries.iter().map(|(k, _)| k.clone()));
            let Some(next) = page.next else { break };
            // Inside the walk: delete a committed key ahead, add one ahead and one behind.
            let n: usize = next[2..6].parse().unwrap();
            if n + 13 < 1000 {
                let gone = format!("p/{:04}", n + 13);
                m.delete(&mut call, gone.clone()).unwrap();
                deleted.insert(gone);
            }
            let ahead = format!("p/{:04}x", n + 3);
            m.set(&mut call, ahead.clone(), b"2".to_vec()).unwrap();
            added.insert(ahead);
            let behind = format!("p/{:04}y", n.saturating_sub(2));
            m.set(&mut call, behind, b"3".to_vec()).unwrap();
            after = Some(next);
        }
        let expected: Vec<String> = committed
            .into_iter()
            .filter(|k| !deleted.contains(k))
            .chain(
                added
                    .into_iter()
                    .filter(|k| k[2..6].parse::<usize>().unwrap() < 1000),
            )
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_page_never_exceeds_the_host_cap() {
        let limits = Limits {
            store_value_bytes: 700 * 1024,
            store_total_bytes: 64 * 1024 * 1024,
            ..Limits::default()
        };
        let (_dir, m) = on_disk(&limits);
        commit_keys(&m, (0..2500).map(|i| format!("k/{i:04}")), b"v");
        let page = m
            .list_entries(&WriteSet::default(), "k/", None, u32::MAX)
            .unwrap();
        assert_eq!(page.entries.len(), PAGE_MAX_ENTRIES as usize);
        assert_eq!(page.next.as_deref(), Some("k/0999"));

        commit_keys(&m, (0..3).map(|i| format!("big/{i}")), &vec![7; 600 * 1024]);
        let page = m
            .list_entries(&WriteSet::default(), "big/", None, 10)
            .unwrap();
        assert_eq!(
            page.entries.len(),
            1,
            "two 600 KiB values pass the 1 MiB page cap"
        );
        let bytes: usize = page.entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(bytes as u64 <= PAGE_MAX_BYTES.max(600 * 1024 + 5));
    }

    #[test]
    fn a_batch_over_the_quota_is_refused_whole() {
        let limits = Limits {
            store_total_bytes: 100,
            ..Limits::default()
        };
        let (_dir, m) = on_disk(&limits);
        commit_keys(&m, ["a".to_string()], &[0; 9]); // 10 bytes used
        let mut call = WriteSet::default();
        m.set(&mut call, "b".into(), vec![0; 9]).unwrap();
        let over = (0..10)
            .map(|i| WriteOp::Set(format!("k{i}"), vec![0; 8]))
            .collect();
        let refused = m.apply(&mut call, over).unwrap_err();
        assert!(
            matches!(refused, StoreRefusal::Rule(StoreRule::QuotaExceeded { .. })),
            "{refused}"
        );
        assert_eq!(call.len(), 1, "a refused batch left writes behind");
        assert_eq!(m.count(&call, "k").unwrap(), 0);

        // Reads see a batch that fits at once, before it commits.
        let fits = vec![
            WriteOp::Set("k1".into(), vec![1; 5]),
            WriteOp::Delete("a".into()),
        ];
        m.apply(&mut call, fits).unwrap();
        assert_eq!(m.count(&call, "").unwrap(), 2); // b, k1
        assert_eq!(m.value_len(&call, "k1").unwrap(), Some(5));
        assert_eq!(m.value_len(&call, "a").unwrap(), None);
        m.commit(call, &Bookkeeping::default()).unwrap();
        assert_eq!(m.count(&WriteSet::default(), "").unwrap(), 2);
        assert_eq!(m.used_bytes(), 10 + 7);
    }
}

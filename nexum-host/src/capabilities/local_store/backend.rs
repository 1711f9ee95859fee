//! One module's store as a view over the engine's [`Ledger`]: reads, the rules a call's
//! writes obey (shared with the SDK's test host through `nexum_core::host_rules::store`),
//! and the atomic commit of a call's writes with the engine's records for it.

use crate::ledger::{Bookkeeping, Ledger, StoreError};
use nexum_core::host_rules::store::{StoreLimits, StoreRule, WriteSet, entry_size};
use nexum_core::{Limits, ModuleName};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// One module's view of the ledger.
#[derive(Clone)]
pub(crate) struct ModuleStore {
    ledger: Ledger,
    module: ModuleName,
    limits: StoreLimits,
    /// Bytes of keys and values committed, shared by every instance of the module.
    used: Arc<AtomicU64>,
}

impl ModuleStore {
    /// The store of module `module`, enforcing `limits` on its writes.
    pub fn open(ledger: &Ledger, module: &ModuleName, limits: &Limits) -> Result<Self, StoreError> {
        Ok(Self {
            ledger: ledger.clone(),
            module: module.clone(),
            limits: StoreLimits::from(limits),
            used: ledger.module_usage(module)?,
        })
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

    /// Commits `pending` and the engine's `bookkeeping` for the call in one atomic batch.
    pub fn commit(&self, pending: WriteSet, bookkeeping: &Bookkeeping) -> Result<(), StoreError> {
        if pending.is_empty() && bookkeeping.is_empty() {
            return Ok(());
        }
        let usage = (!pending.is_empty()).then(|| {
            (
                &*self.used,
                self.used_bytes().saturating_add_signed(pending.delta()),
            )
        });
        self.ledger
            .commit_call(&self.module, pending.into_writes(), usage, bookkeeping)
    }

    /// Bytes of keys and values the module has committed.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

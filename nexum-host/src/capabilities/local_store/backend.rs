//! The fjall side of `local-store`: opening the database, per-module keyspaces, the pending
//! write set of one call and its atomic commit.

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use nexum_core::host_rules::store::{StoreLimits, StoreRule, WriteSet, entry_size};
use nexum_core::{EngineRecord, Limits, ModuleName};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The engine's own keyspace; its name cannot collide with `module.<name>`.
const ENGINE_KEYSPACE: &str = "nexum.engine";

/// Largest in-memory write buffer per keyspace before it is flushed to disk. fjall's default
/// (64 MiB) is sized for one big database; an engine has a keyspace per module, so memory
/// would grow with the number of modules. Keeping it small keeps memory flat.
const MEMTABLE_BYTES: u64 = 4 * 1024 * 1024;

/// The block cache shared by every keyspace.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

fn keyspace_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
}

/// A failure of the storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine reported an error (I/O, corruption, a lock held by another process).
    #[error("store: {0}")]
    Backend(String),
    /// An engine record does not decode (written by another version, or damaged).
    #[error("store: engine record `{key}` is unreadable: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// Why it does not decode.
        reason: String,
    },
    /// A stored key is not UTF-8 (keys are strings in the contract).
    #[error("store: key in `{keyspace}` is not valid UTF-8")]
    NonUtf8Key {
        /// The keyspace holding the key.
        keyspace: String,
    },
}

impl From<fjall::Error> for StoreError {
    fn from(error: fjall::Error) -> Self {
        StoreError::Backend(error.to_string())
    }
}

/// The engine's state database: every module's keyspace plus the engine's own.
#[derive(Clone)]
pub struct StateStore {
    db: Database,
    engine: Keyspace,
}

impl StateStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = Database::builder(dir).cache_size(CACHE_BYTES).open()?;
        let engine = db.keyspace(ENGINE_KEYSPACE, keyspace_options)?;
        Ok(Self { db, engine })
    }

    /// The store of module `name`, enforcing `limits` on its writes.
    pub(crate) fn module(
        &self,
        name: &ModuleName,
        limits: &Limits,
    ) -> Result<ModuleStore, StoreError> {
        let keyspace = self
            .db
            .keyspace(&format!("module.{name}"), keyspace_options)?;
        let usage_key = format!("usage/{name}");
        let used = match self.engine.get(&usage_key)? {
            Some(bytes) => {
                u64::from_le_bytes(bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    key: usage_key.clone(),
                    reason: "not a byte count".into(),
                })?)
            }
            // First boot with this store (or an older one): count once.
            None => scan(&keyspace, "")?
                .iter()
                .map(|(k, v)| entry_size(k.len(), v.len()))
                .sum(),
        };
        Ok(ModuleStore {
            db: self.db.clone(),
            keyspace,
            engine: self.engine.clone(),
            limits: StoreLimits::from(limits),
            usage_key: usage_key.into(),
            used: Arc::new(AtomicU64::new(used)),
        })
    }

    /// Reads a module's committed value, outside any call (for operators and embedders).
    pub fn read(&self, module: &ModuleName, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = format!("module.{module}");
        if !self.db.keyspace_exists(&name) {
            return Ok(None);
        }
        let keyspace = self.db.keyspace(&name, keyspace_options)?;
        Ok(keyspace.get(key)?.map(|v| v.to_vec()))
    }

    /// Reads an engine record.
    pub(crate) fn engine_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.engine.get(key)?.map(|v| v.to_vec()))
    }

    /// Every engine record whose key starts with `prefix`, sorted by key.
    pub(crate) fn engine_scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        scan(&self.engine, prefix)
    }

    /// Commits engine records on their own (bookkeeping that goes with no module call).
    pub(crate) fn engine_commit(&self, records: &[EngineRecord]) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        for record in records {
            match &record.value {
                Some(value) => batch.insert(&self.engine, record.key.as_str(), value.as_slice()),
                None => batch.remove(&self.engine, record.key.as_str()),
            }
        }
        batch.commit()?;
        Ok(())
    }

    /// A module's committed entries whose key starts with `prefix`, sorted by key
    /// (for operators and embedders; modules use `list-keys`).
    pub fn list(
        &self,
        module: &ModuleName,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let name = format!("module.{module}");
        if !self.db.keyspace_exists(&name) {
            return Ok(Vec::new());
        }
        let keyspace = self.db.keyspace(&name, keyspace_options)?;
        scan(&keyspace, prefix)
    }

    /// Makes everything committed so far durable on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

fn scan(keyspace: &Keyspace, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut entries = Vec::new();
    for entry in keyspace.prefix(prefix) {
        let (key, value) = entry.into_inner()?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| StoreError::NonUtf8Key {
            keyspace: keyspace.name().to_string(),
        })?;
        entries.push((key, value.to_vec()));
    }
    Ok(entries)
}

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

impl From<fjall::Error> for StoreRefusal {
    fn from(error: fjall::Error) -> Self {
        StoreRefusal::Backend(error.into())
    }
}

/// One module's view of the state database.
#[derive(Clone)]
pub(crate) struct ModuleStore {
    db: Database,
    keyspace: Keyspace,
    engine: Keyspace,
    limits: StoreLimits,
    /// The engine record holding `used` (committed with every batch).
    usage_key: Arc<str>,
    /// Bytes of keys and values committed, shared by every instance of the module.
    used: Arc<AtomicU64>,
}

impl ModuleStore {
    /// The quota size of `key`'s committed entry, if it has one.
    fn committed_size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .keyspace
            .get(key)?
            .map(|v| entry_size(key.len(), v.len())))
    }

    /// The value of `key` as this call sees it: its own pending write first, then the store.
    pub fn get(&self, pending: &WriteSet, key: &str) -> Result<Option<Vec<u8>>, StoreRefusal> {
        self.limits.check_key(key)?;
        if let Some(write) = pending.get(key) {
            return Ok(write.map(<[u8]>::to_vec));
        }
        Ok(self.keyspace.get(key)?.map(|v| v.to_vec()))
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
        let mut committed = Vec::new();
        for entry in self.keyspace.prefix(prefix) {
            if committed.len() > self.limits.list_keys {
                break;
            }
            let key = entry.key()?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| StoreError::NonUtf8Key {
                keyspace: self.keyspace.name().to_string(),
            })?;
            if !pending.touches(&key) {
                committed.push(key);
            }
        }
        Ok(pending.merge_keys(&self.limits, prefix, committed)?)
    }

    /// Commits `pending` and `engine` records in one atomic batch.
    pub fn commit(&self, pending: WriteSet, engine: &[EngineRecord]) -> Result<(), StoreError> {
        if pending.is_empty() && engine.is_empty() {
            return Ok(());
        }
        let used = self
            .used
            .load(Ordering::Relaxed)
            .saturating_add_signed(pending.delta());
        let mut batch = self.db.batch();
        if !pending.is_empty() {
            batch.insert(&self.engine, &*self.usage_key, used.to_le_bytes());
        }
        for (key, value) in pending.into_writes() {
            match value {
                Some(value) => batch.insert(&self.keyspace, key, value),
                None => batch.remove(&self.keyspace, key),
            }
        }
        for write in engine {
            match &write.value {
                Some(value) => batch.insert(&self.engine, write.key.as_str(), value.as_slice()),
                None => batch.remove(&self.engine, write.key.as_str()),
            }
        }
        batch.commit()?;
        self.used.store(used, Ordering::Relaxed);
        Ok(())
    }

    /// The engine's record keys under `prefix`, sorted (the module's own bookkeeping, such
    /// as its dead letters).
    pub fn engine_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(scan(&self.engine, prefix)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Bytes of keys and values the module has committed.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn module(store: &StateStore, name: &str) -> ModuleStore {
        store
            .module(&ModuleName::new(name).unwrap(), &Limits::default())
            .unwrap()
    }

    #[test]
    fn a_call_reads_its_own_writes_and_commits_atomically() {
        let (_dir, store) = open();
        let m = module(&store, "a");
        let mut pending = WriteSet::default();
        m.set(&mut pending, "k".into(), b"v1".to_vec()).unwrap();
        assert_eq!(m.get(&pending, "k").unwrap(), Some(b"v1".to_vec()));
        // Not visible outside the call until committed.
        assert_eq!(m.get(&WriteSet::default(), "k").unwrap(), None);
        m.commit(pending, &[]).unwrap();
        assert_eq!(
            m.get(&WriteSet::default(), "k").unwrap(),
            Some(b"v1".to_vec())
        );
    }

    #[test]
    fn list_keys_merges_pending_writes_and_deletes() {
        let (_dir, store) = open();
        let m = module(&store, "a");
        let mut first = WriteSet::default();
        for k in ["p/1", "p/3", "q/1"] {
            m.set(&mut first, k.into(), vec![1]).unwrap();
        }
        m.commit(first, &[]).unwrap();

        let mut call = WriteSet::default();
        m.set(&mut call, "p/2".into(), vec![2]).unwrap();
        m.delete(&mut call, "p/3".into()).unwrap();
        assert_eq!(m.list_keys(&call, "p/").unwrap(), vec!["p/1", "p/2"]);
        assert_eq!(m.list_keys(&call, "").unwrap(), vec!["p/1", "p/2", "q/1"]);
    }

    #[test]
    fn modules_and_engine_are_separate_keyspaces() {
        let (_dir, store) = open();
        let a = module(&store, "a");
        let b = module(&store, "b");
        let mut pending = WriteSet::default();
        a.set(&mut pending, "shared".into(), b"from a".to_vec())
            .unwrap();
        a.commit(
            pending,
            &[EngineRecord {
                key: "cursor/a/0".into(),
                value: Some(b"7".to_vec()),
            }],
        )
        .unwrap();
        assert_eq!(b.get(&WriteSet::default(), "shared").unwrap(), None);
        assert!(b.list_keys(&WriteSet::default(), "").unwrap().is_empty());
        assert_eq!(
            a.list_keys(&WriteSet::default(), "").unwrap(),
            vec!["shared"]
        );
        assert_eq!(store.engine_get("cursor/a/0").unwrap(), Some(b"7".to_vec()));
    }

    #[test]
    fn the_total_quota_counts_overwrites_and_deletes_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            store_total_bytes: 20,
            ..Limits::default()
        };
        let name = ModuleName::new("a").unwrap();
        {
            let store = StateStore::open(dir.path()).unwrap();
            let m = store.module(&name, &limits).unwrap();
            let mut pending = WriteSet::default();
            m.set(&mut pending, "k1".into(), vec![0; 8]).unwrap(); // 10
            m.set(&mut pending, "k1".into(), vec![0; 4]).unwrap(); // overwrite: 6
            m.set(&mut pending, "k2".into(), vec![0; 8]).unwrap(); // 16
            assert!(matches!(
                m.set(&mut pending, "k3".into(), vec![0; 8]),
                Err(StoreRefusal::Rule(StoreRule::QuotaExceeded {
                    used: 0,
                    max: 20
                }))
            ));
            m.commit(pending, &[]).unwrap();
            assert_eq!(m.used_bytes(), 16);
            let mut pending = WriteSet::default();
            m.delete(&mut pending, "k2".into()).unwrap();
            m.set(&mut pending, "k3".into(), vec![0; 8]).unwrap();
            m.commit(pending, &[]).unwrap();
            assert_eq!(m.used_bytes(), 16);
        }
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.module(&name, &limits).unwrap().used_bytes(), 16);
    }

    #[test]
    fn list_keys_refuses_a_match_larger_than_the_limit() {
        let (_dir, store) = open();
        let limits = Limits {
            list_keys_max: 3,
            ..Limits::default()
        };
        let m = store
            .module(&ModuleName::new("a").unwrap(), &limits)
            .unwrap();
        let mut pending = WriteSet::default();
        for k in ["x/1", "x/2", "x/3", "y/1"] {
            m.set(&mut pending, k.into(), vec![]).unwrap();
        }
        m.commit(pending, &[]).unwrap();
        assert_eq!(m.list_keys(&WriteSet::default(), "x/").unwrap().len(), 3);
        assert!(matches!(
            m.list_keys(&WriteSet::default(), ""),
            Err(StoreRefusal::Rule(StoreRule::TooManyKeys { max: 3, .. }))
        ));
    }

    #[test]
    fn committed_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = StateStore::open(dir.path()).unwrap();
            let m = module(&store, "a");
            let mut pending = WriteSet::default();
            m.set(&mut pending, "k".into(), b"v".to_vec()).unwrap();
            m.commit(pending, &[]).unwrap();
            store.flush().unwrap();
        }
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(
            store.read(&ModuleName::new("a").unwrap(), "k").unwrap(),
            Some(b"v".to_vec())
        );
    }
}

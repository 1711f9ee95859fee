//! The fjall side of `local-store`: opening the database, per-module keyspaces, the pending
//! write set of one call and its atomic commit.

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use nexum_core::{EngineRecord, Limits, ModuleName};
use std::collections::BTreeMap;
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
            max_key_bytes: limits.store_key_bytes,
            max_value_bytes: limits.store_value_bytes,
            max_total_bytes: limits.store_total_bytes,
            max_list_keys: usize::try_from(limits.list_keys_max).unwrap_or(usize::MAX),
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

/// The size a key and value count for in the store quota.
fn entry_size(key: usize, value: usize) -> u64 {
    (key + value) as u64
}

/// The writes of one in-flight call, newest value per key (`None` = deleted).
#[derive(Debug, Default)]
pub struct PendingWrites {
    writes: BTreeMap<String, Option<Vec<u8>>>,
    /// How many bytes the writes add to (or take from) the module's committed usage.
    delta: i64,
    /// Bytes the write set itself holds in host memory: keys and values of sets, keys of
    /// deletes. Bounded by the quota too, so churn inside one call cannot grow it.
    held: u64,
}

impl PendingWrites {
    /// Whether the call has written nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Bytes the pending write of `key` holds, if there is one.
    fn held_by(&self, key: &str) -> u64 {
        self.writes
            .get(key)
            .map_or(0, |write| held_size(key, write))
    }
}

/// What one pending write holds in memory.
fn held_size(key: &str, write: &Option<Vec<u8>>) -> u64 {
    entry_size(key.len(), write.as_ref().map_or(0, Vec::len))
}

/// Why a module's store call was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreRefusal {
    #[error("key is {len} bytes; the limit is {max}")]
    KeyTooLong { len: usize, max: u64 },
    #[error("keys must not be empty")]
    EmptyKey,
    #[error("value is {len} bytes; the limit is {max}")]
    ValueTooLarge { len: usize, max: u64 },
    #[error("the store quota of {max} bytes would be exceeded ({used} bytes in use)")]
    QuotaExceeded { used: u64, max: u64 },
    #[error(
        "this call's pending writes would hold more than the store quota of {max} bytes; \
         commit in smaller steps"
    )]
    PendingTooLarge { max: u64 },
    #[error("more than {max} keys start with {prefix:?}; list a narrower prefix")]
    TooManyKeys { prefix: String, max: usize },
    #[error(transparent)]
    Backend(#[from] StoreError),
}

/// One module's view of the state database.
#[derive(Clone)]
pub(crate) struct ModuleStore {
    db: Database,
    keyspace: Keyspace,
    engine: Keyspace,
    max_key_bytes: u64,
    max_value_bytes: u64,
    max_total_bytes: u64,
    max_list_keys: usize,
    /// The engine record holding `used` (committed with every batch).
    usage_key: Arc<str>,
    /// Bytes of keys and values committed, shared by every instance of the module.
    used: Arc<AtomicU64>,
}

impl ModuleStore {
    /// The value of `key` as this call sees it: its own pending write first, then the store.
    pub fn get(&self, pending: &PendingWrites, key: &str) -> Result<Option<Vec<u8>>, StoreRefusal> {
        self.check_key(key)?;
        if let Some(write) = pending.writes.get(key) {
            return Ok(write.clone());
        }
        Ok(self
            .keyspace
            .get(key)
            .map_err(StoreError::from)?
            .map(|v| v.to_vec()))
    }

    pub fn set(
        &self,
        pending: &mut PendingWrites,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), StoreRefusal> {
        self.check_key(&key)?;
        if value.len() as u64 > self.max_value_bytes {
            return Err(StoreRefusal::ValueTooLarge {
                len: value.len(),
                max: self.max_value_bytes,
            });
        }
        let size = entry_size(key.len(), value.len());
        let delta = pending.delta - self.visible_size(pending, &key)? as i64 + size as i64;
        let held = pending.held - pending.held_by(&key) + size;
        self.check_budget(pending, delta, held)?;
        pending.delta = delta;
        pending.held = held;
        pending.writes.insert(key, Some(value));
        Ok(())
    }

    /// Deletes `key`. A key that was never committed costs nothing: the call's own write
    /// of it (if any) is simply dropped, so deletes cannot pile up tombstones on disk.
    pub fn delete(&self, pending: &mut PendingWrites, key: String) -> Result<(), StoreRefusal> {
        self.check_key(&key)?;
        let visible = self.visible_size(pending, &key)? as i64;
        if !self.keyspace.contains_key(&key).map_err(StoreError::from)? {
            if let Some(write) = pending.writes.remove(&key) {
                pending.held -= held_size(&key, &write);
                pending.delta -= visible;
            }
            return Ok(());
        }
        let delta = pending.delta - visible;
        let held = pending.held - pending.held_by(&key) + entry_size(key.len(), 0);
        self.check_budget(pending, delta, held)?;
        pending.delta = delta;
        pending.held = held;
        pending.writes.insert(key, None);
        Ok(())
    }

    /// Refuses a write that would take the module over its quota, or make the call's
    /// pending set hold more than the quota.
    fn check_budget(
        &self,
        pending: &PendingWrites,
        delta: i64,
        held: u64,
    ) -> Result<(), StoreRefusal> {
        let used = self.used.load(Ordering::Relaxed);
        let grows = delta > pending.delta;
        if grows && delta > 0 && used.saturating_add(delta as u64) > self.max_total_bytes {
            return Err(StoreRefusal::QuotaExceeded {
                used,
                max: self.max_total_bytes,
            });
        }
        if held > self.max_total_bytes {
            return Err(StoreRefusal::PendingTooLarge {
                max: self.max_total_bytes,
            });
        }
        Ok(())
    }

    /// The quota size of `key` as this call sees it (0 when absent).
    fn visible_size(&self, pending: &PendingWrites, key: &str) -> Result<u64, StoreError> {
        Ok(match pending.writes.get(key) {
            Some(Some(value)) => entry_size(key.len(), value.len()),
            Some(None) => 0,
            None => self
                .keyspace
                .get(key)?
                .map_or(0, |v| entry_size(key.len(), v.len())),
        })
    }

    /// Keys starting with `prefix`, sorted, merging committed keys with this call's writes.
    /// A match larger than the module's `list_keys_max` is refused (never truncated), and
    /// the scan stops there, so a huge prefix cannot exhaust host memory.
    pub fn list_keys(
        &self,
        pending: &PendingWrites,
        prefix: &str,
    ) -> Result<Vec<String>, StoreRefusal> {
        if prefix.len() as u64 > self.max_key_bytes {
            return Err(StoreRefusal::KeyTooLong {
                len: prefix.len(),
                max: self.max_key_bytes,
            });
        }
        let too_many = || StoreRefusal::TooManyKeys {
            prefix: prefix.to_string(),
            max: self.max_list_keys,
        };
        let mut keys = Vec::new();
        for entry in self.keyspace.prefix(prefix) {
            if keys.len() > self.max_list_keys {
                return Err(too_many());
            }
            let key = entry.key().map_err(StoreError::from)?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| StoreError::NonUtf8Key {
                keyspace: self.keyspace.name().to_string(),
            })?;
            if !pending.writes.contains_key(&key) {
                keys.push(key);
            }
        }
        let pending_live = pending
            .writes
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone());
        keys.extend(pending_live);
        if keys.len() > self.max_list_keys {
            return Err(too_many());
        }
        keys.sort_unstable();
        Ok(keys)
    }

    /// Commits `pending` and `engine` records in one atomic batch.
    pub fn commit(
        &self,
        pending: PendingWrites,
        engine: &[EngineRecord],
    ) -> Result<(), StoreError> {
        if pending.is_empty() && engine.is_empty() {
            return Ok(());
        }
        let used = self
            .used
            .load(Ordering::Relaxed)
            .saturating_add_signed(pending.delta);
        let mut batch = self.db.batch();
        if !pending.is_empty() {
            batch.insert(&self.engine, &*self.usage_key, used.to_le_bytes());
        }
        for (key, value) in pending.writes {
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

    /// Bytes of keys and values the module has committed.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn check_key(&self, key: &str) -> Result<(), StoreRefusal> {
        if key.is_empty() {
            return Err(StoreRefusal::EmptyKey);
        }
        if key.len() as u64 > self.max_key_bytes {
            return Err(StoreRefusal::KeyTooLong {
                len: key.len(),
                max: self.max_key_bytes,
            });
        }
        Ok(())
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
        let mut pending = PendingWrites::default();
        m.set(&mut pending, "k".into(), b"v1".to_vec()).unwrap();
        assert_eq!(m.get(&pending, "k").unwrap(), Some(b"v1".to_vec()));
        // Not visible outside the call until committed.
        assert_eq!(m.get(&PendingWrites::default(), "k").unwrap(), None);
        m.commit(pending, &[]).unwrap();
        assert_eq!(
            m.get(&PendingWrites::default(), "k").unwrap(),
            Some(b"v1".to_vec())
        );
    }

    #[test]
    fn list_keys_merges_pending_writes_and_deletes() {
        let (_dir, store) = open();
        let m = module(&store, "a");
        let mut first = PendingWrites::default();
        for k in ["p/1", "p/3", "q/1"] {
            m.set(&mut first, k.into(), vec![1]).unwrap();
        }
        m.commit(first, &[]).unwrap();

        let mut call = PendingWrites::default();
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
        let mut pending = PendingWrites::default();
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
        assert_eq!(b.get(&PendingWrites::default(), "shared").unwrap(), None);
        assert!(
            b.list_keys(&PendingWrites::default(), "")
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            a.list_keys(&PendingWrites::default(), "").unwrap(),
            vec!["shared"]
        );
        assert_eq!(store.engine_get("cursor/a/0").unwrap(), Some(b"7".to_vec()));
    }

    #[test]
    fn limits_refuse_without_touching_pending_writes() {
        let (_dir, store) = open();
        let limits = Limits {
            store_key_bytes: 4,
            store_value_bytes: 2,
            ..Limits::default()
        };
        let m = store
            .module(&ModuleName::new("a").unwrap(), &limits)
            .unwrap();
        let mut pending = PendingWrites::default();
        assert!(matches!(
            m.set(&mut pending, "toolong".into(), vec![]),
            Err(StoreRefusal::KeyTooLong { len: 7, max: 4 })
        ));
        assert!(matches!(
            m.set(&mut pending, "k".into(), vec![0; 3]),
            Err(StoreRefusal::ValueTooLarge { len: 3, max: 2 })
        ));
        assert!(matches!(m.get(&pending, ""), Err(StoreRefusal::EmptyKey)));
        assert!(pending.is_empty());
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
            let mut pending = PendingWrites::default();
            m.set(&mut pending, "k1".into(), vec![0; 8]).unwrap(); // 10
            m.set(&mut pending, "k1".into(), vec![0; 4]).unwrap(); // overwrite: 6
            m.set(&mut pending, "k2".into(), vec![0; 8]).unwrap(); // 16
            assert!(matches!(
                m.set(&mut pending, "k3".into(), vec![0; 8]),
                Err(StoreRefusal::QuotaExceeded { used: 0, max: 20 })
            ));
            m.commit(pending, &[]).unwrap();
            assert_eq!(m.used_bytes(), 16);
            let mut pending = PendingWrites::default();
            m.delete(&mut pending, "k2".into()).unwrap();
            m.set(&mut pending, "k3".into(), vec![0; 8]).unwrap();
            m.commit(pending, &[]).unwrap();
            assert_eq!(m.used_bytes(), 16);
        }
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.module(&name, &limits).unwrap().used_bytes(), 16);
    }

    #[test]
    fn deleting_what_was_never_stored_costs_nothing_and_writes_nothing() {
        let (_dir, store) = open();
        let limits = Limits {
            store_total_bytes: 64,
            ..Limits::default()
        };
        let m = store
            .module(&ModuleName::new("a").unwrap(), &limits)
            .unwrap();
        let mut pending = PendingWrites::default();
        // Far more key bytes than the quota: none of them exists, so none is kept.
        for i in 0..10_000 {
            m.delete(&mut pending, format!("missing/{i:08}")).unwrap();
        }
        assert!(pending.is_empty());
        // Set-then-delete inside one call leaves nothing either.
        m.set(&mut pending, "fresh".into(), vec![1; 8]).unwrap();
        m.delete(&mut pending, "fresh".into()).unwrap();
        assert!(pending.is_empty());
        assert_eq!((pending.delta, pending.held), (0, 0));
    }

    #[test]
    fn deletes_of_stored_keys_count_against_the_call() {
        let (_dir, store) = open();
        let limits = Limits {
            store_total_bytes: 40,
            ..Limits::default()
        };
        let m = store
            .module(&ModuleName::new("a").unwrap(), &limits)
            .unwrap();
        let mut first = PendingWrites::default();
        for k in ["key-01", "key-02", "key-03", "key-04"] {
            m.set(&mut first, k.into(), vec![]).unwrap();
        }
        m.commit(first, &[]).unwrap();
        // Deleting frees quota, but the deletes themselves are held until commit: 4 keys
        // of 6 bytes, then a 20-byte value would make the pending set hold 44 > 40.
        let mut call = PendingWrites::default();
        for k in ["key-01", "key-02", "key-03", "key-04"] {
            m.delete(&mut call, k.into()).unwrap();
        }
        assert!(matches!(
            m.set(&mut call, "v".into(), vec![0; 19]),
            Err(StoreRefusal::PendingTooLarge { max: 40 })
        ));
        m.set(&mut call, "v".into(), vec![0; 15]).unwrap();
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
        let mut pending = PendingWrites::default();
        for k in ["x/1", "x/2", "x/3", "y/1"] {
            m.set(&mut pending, k.into(), vec![]).unwrap();
        }
        m.commit(pending, &[]).unwrap();
        assert_eq!(
            m.list_keys(&PendingWrites::default(), "x/").unwrap().len(),
            3
        );
        assert!(matches!(
            m.list_keys(&PendingWrites::default(), ""),
            Err(StoreRefusal::TooManyKeys { max: 3, .. })
        ));
    }

    #[test]
    fn committed_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = StateStore::open(dir.path()).unwrap();
            let m = module(&store, "a");
            let mut pending = PendingWrites::default();
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

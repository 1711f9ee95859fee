//! Storage in memory: for unit tests of the ledger and of delivery, which need the
//! ledger's behaviour without a database on disk.

use super::backup::BackupError;
use super::storage::{Batch, EntryVisitor, Space, Storage, StoreError};
use nexum_core::host_rules::store::scan_start;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

/// Every space as a sorted map; a batch applies under one lock (atomic).
#[derive(Default)]
pub(crate) struct MemoryStorage {
    spaces: Mutex<BTreeMap<Space, BTreeMap<String, Vec<u8>>>>,
}

impl MemoryStorage {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<Space, BTreeMap<String, Vec<u8>>>) -> T) -> T {
        f(&mut self.spaces.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Storage for MemoryStorage {
    fn get(&self, space: &Space, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.with(|s| s.get(space).and_then(|m| m.get(key)).cloned()))
    }

    fn value_len(&self, space: &Space, key: &str) -> Result<Option<usize>, StoreError> {
        Ok(self.with(|s| s.get(space).and_then(|m| m.get(key)).map(Vec::len)))
    }

    fn scan(
        &self,
        space: &Space,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self.with(|s| {
            s.get(space)
                .map(|m| {
                    m.range(prefix.to_string()..)
                        .take_while(|(k, _)| k.starts_with(prefix))
                        .take(limit)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        }))
    }

    fn scan_after(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        max_entries: usize,
        max_bytes: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self.with(|s| {
            let mut out = Vec::new();
            let mut bytes = 0u64;
            let Some(map) = s.get(space) else {
                return out;
            };
            for (key, value) in map
                .range((scan_start(prefix, after), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
            {
                if out.len() >= max_entries || bytes >= max_bytes {
                    break;
                }
                bytes += (key.len() + value.len()) as u64;
                out.push((key.clone(), value.clone()));
            }
            out
        }))
    }

    fn count(&self, space: &Space, prefix: &str) -> Result<u64, StoreError> {
        Ok(self.with(|s| {
            s.get(space).map_or(0, |m| {
                m.range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .count() as u64
            })
        }))
    }

    fn keys(&self, space: &Space, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self
            .scan(space, prefix, limit)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.with(|s| {
            for write in batch.writes {
                let map = s.entry(write.space).or_default();
                match write.value {
                    Some(value) => map.insert(write.key, value),
                    None => map.remove(&write.key),
                };
            }
        });
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn each_entry(&self, visit: &mut EntryVisitor<'_>) -> Result<(), BackupError> {
        // A copy taken under the lock is the one instant.
        let spaces = self.with(|s| s.clone());
        for (space, entries) in &spaces {
            for (key, value) in entries {
                visit(space, key, value)?;
            }
        }
        Ok(())
    }
}

//! The engine's ledger: its own records — where each subscription starts and stands, what
//! it was recently given (to undo reorgs), the events it had to skip, and how many bytes
//! each module stores — behind typed operations, and the module stores beside them.
//!
//! Everything lives in one [`storage::Storage`] (fjall by default): the engine's records
//! in a space no module reaches, each module's keys in a space of its own. A module call's
//! writes and the engine's records for it ([`Bookkeeping`]) commit in one atomic batch, so
//! a crash never leaves one without the other. Nothing else writes the engine's records:
//! callers hand over typed [`Entry`]s, and the key layout ([`keys`]) stays in here.
//!
//! - [`records`]: the record shapes and the entries a delivery commits;
//! - [`keys`]: the key layout;
//! - [`storage`]: the storage seam; [`fjall`] implements it embedded, `postgres` shared by
//!   the nodes of a cluster (and, in unit tests, `memory`);
//! - [`read_deadline`]: how long a read made for a module's call may wait;
//! - [`backup`]: a whole ledger as one checked file, taken while it runs, restored into an
//!   empty state directory.

mod backup;
mod commit_chain;
mod fjall;
mod keys;
#[cfg(test)]
pub(crate) mod memory;
mod postgres;
pub(crate) mod read_deadline;
mod records;
pub(crate) mod storage;

pub use backup::{BackupError, BackupSummary};
pub(crate) use fjall::{STORE_LOCK, holds_store, lock_store};
pub(crate) use postgres::{
    HeldLeases, PostgresStorage, no_answer, no_answer_within, ran_out_of_time,
};
pub(crate) use records::{Bookkeeping, Cursor, DeliveredBlock, Entry, Start, SubscriptionId};
pub use records::{DeadLetter, DeadLetterPage, Position};
pub use storage::StoreError;
pub(crate) use storage::{Batch, Space};

use alloy_primitives::B256;
use nexum_core::ChainLog;
use nexum_core::Durability;
use nexum_core::ModuleName;
use nexum_core::engine_config::DEFAULT_DURABILITY_WINDOW_MS;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use storage::Storage;

/// Dead letters kept per module: a module that fails every event must not grow the
/// engine's records without end; the oldest go first.
pub(crate) const MAX_DEAD_LETTERS: usize = 1000;

/// Dead letters in one page at most: each holds a whole event (a block's logs can be
/// hundreds of kilobytes), and a module may have a thousand of them.
pub(crate) const DEAD_LETTERS_PAGE: usize = 100;

/// The wall clock in ms since the Unix epoch: when a dead letter is recorded.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default()
}

/// No scan of the engine's records is ever bounded by a module.
const UNBOUNDED: usize = usize::MAX;

/// The engine's records and the module stores, over one storage.
#[derive(Clone)]
pub struct Ledger {
    storage: Arc<dyn Storage>,
    /// Each module's usage counter, shared by every instance of it this process runs: an
    /// upgraded or restarted module counts on from where the one before it stopped.
    usage: Arc<std::sync::Mutex<BTreeMap<String, Arc<AtomicU64>>>>,
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`, with the default (buffered) durability.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_durable(
            dir,
            Durability::default(),
            Duration::from_millis(DEFAULT_DURABILITY_WINDOW_MS),
        )
    }

    /// Opens (or creates) the ledger in `dir`, committing with `durability` (buffered
    /// commits reach the disk within `window`).
    pub(crate) fn open_durable(
        dir: &Path,
        durability: Durability,
        window: Duration,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            storage: Arc::new(fjall::FjallStorage::open(dir, durability, window)?),
            usage: Arc::default(),
        })
    }

    /// The ledger in the shared store of a cluster, to read it (as `nexum store` does): one
    /// connection, no lease (so it can commit nothing for a module), and it never creates
    /// or migrates the schema under the nodes. Blocking: call it off async workers.
    pub fn open_shared(store: &nexum_core::SharedStore) -> Result<Self, StoreError> {
        let db = PostgresStorage::open_reader(store.connection_string())?;
        Ok(Self::shared(Arc::new(db)))
    }

    /// Writes a backup of every module's store and all the engine's records, as of one
    /// instant, to `out`; the engine may go on committing meanwhile. Blocking: call it off
    /// async workers. A backup is whole only when this returns `Ok`.
    pub fn backup(&self, out: impl std::io::Write) -> Result<BackupSummary, BackupError> {
        let mut writer = backup::BackupWriter::new(out)?;
        self.storage
            .each_entry(&mut |space, key, value| Ok(writer.entry(space, key, value)?))?;
        Ok(writer.finish()?)
    }

    /// Checks that `input` is a whole, unaltered backup, and says what it holds.
    pub fn verify_backup(input: impl std::io::Read) -> Result<BackupSummary, BackupError> {
        backup::read_backup(input, |_, _, _| Ok(()))
    }

    /// Restores the backup in `file` into the state directory `dir`, which must be empty
    /// or absent (a content store filled ahead by `nexum fetch` may be there, and is kept):
    /// the whole file is checked before anything is written, the state is built beside
    /// `dir` and moved into place only once it is complete and on disk, so a restore that
    /// fails or is interrupted never leaves half a state where an engine would find it.
    pub fn restore(dir: &Path, file: &Path) -> Result<BackupSummary, BackupError> {
        let not_empty = || BackupError::NotEmpty(dir.display().to_string());
        let content = dir.join(nexum_core::source::CONTENT_DIR);
        let exists = match std::fs::read_dir(dir) {
            Ok(entries) => {
                if entries.flatten().any(|e| e.path() != content) {
                    return Err(not_empty());
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e.into()),
        };
        Self::verify_backup(std::fs::File::open(file)?)?;
        let name = dir.file_name().ok_or_else(not_empty)?;
        let mut staging_name = name.to_os_string();
        staging_name.push(format!(".restoring-{}", std::process::id()));
        let staging = dir.with_file_name(staging_name);
        let built = (|| {
            let storage = fjall::FjallStorage::open(
                &staging,
                Durability::Sync,
                Duration::from_millis(DEFAULT_DURABILITY_WINDOW_MS),
            )?;
            backup::restore_into(&storage, std::fs::File::open(file)?)
        })();
        let placed = built.and_then(|summary| {
            if content.is_dir() {
                std::fs::rename(&content, staging.join(nexum_core::source::CONTENT_DIR))?;
            }
            if exists {
                // Fails if something was put there meanwhile: then nothing is replaced.
                std::fs::remove_dir(dir).map_err(|_| not_empty())?;
            }
            std::fs::rename(&staging, dir)?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(summary)
        });
        if placed.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        placed
    }

    /// The ledger in a shared PostgreSQL database, for nodes of a cluster.
    pub(crate) fn shared(storage: Arc<PostgresStorage>) -> Self {
        Self {
            storage,
            usage: Arc::default(),
        }
    }

    /// A ledger in memory, gone when dropped (for tests of what stands on it).
    #[cfg(test)]
    pub(crate) fn in_memory() -> Self {
        Self {
            storage: Arc::new(memory::MemoryStorage::default()),
            usage: Arc::default(),
        }
    }

    /// A module's committed value, outside any call (for operators and embedders).
    pub fn read(&self, module: &ModuleName, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.storage.get(&Space::Module(module.clone()), key)
    }

    /// A module's committed entries whose key starts with `prefix`, sorted by key (for
    /// operators and embedders; modules use `list-keys`).
    pub fn list(
        &self,
        module: &ModuleName,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.storage
            .scan(&Space::Module(module.clone()), prefix, UNBOUNDED)
    }

    /// Skipped events, oldest first; of one module, or of all.
    ///
    /// Reads them all at once: up to a thousand per module, each with its whole event.
    /// [`Ledger::dead_letter_page`] reads them a page at a time.
    pub fn dead_letters(&self, module: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        self.engine_scan(&keys::dead_letters(module))?
            .into_iter()
            .map(|(key, bytes)| decode_dead_letter(&key, &bytes))
            .collect()
    }

    /// A page of the skipped events of one module, or of all (by module, each oldest
    /// first), after the one whose key is `after` (from the first when `None`): at most
    /// `max_entries`, and none past the one that brings it to `max_bytes`. Each comes with
    /// its key, to pass as `after` for the next page; `true` when there may be more.
    fn dead_letters_page(
        &self,
        module: Option<&str>,
        after: Option<&str>,
        max_entries: usize,
        max_bytes: u64,
    ) -> Result<(Vec<(String, DeadLetter)>, bool), StoreError> {
        let mut found = self.storage.scan_after(
            &Space::Engine,
            &keys::dead_letters(module),
            after,
            max_entries.saturating_add(1),
            max_bytes,
        )?;
        let bytes: u64 = found.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
        let more = found.len() > max_entries || bytes >= max_bytes;
        found.truncate(max_entries);
        let letters = found
            .into_iter()
            .map(|(key, bytes)| {
                let letter = decode_dead_letter(&key, &bytes)?;
                Ok((key, letter))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((letters, more))
    }

    /// A page of the skipped events of one module, or of all (by module, each oldest
    /// first), after the cursor `after` (a page's `next`; from the first when `None`):
    /// 100 letters at most, and none past the one that brings the page to 1 MiB.
    pub fn dead_letter_page(
        &self,
        module: Option<&str>,
        after: Option<&str>,
    ) -> Result<DeadLetterPage, StoreError> {
        let (letters, more) = self.dead_letters_page(
            module,
            after,
            DEAD_LETTERS_PAGE,
            nexum_core::host_rules::store::PAGE_MAX_BYTES,
        )?;
        let next = more
            .then(|| letters.last().map(|(key, _)| key.clone()))
            .flatten();
        Ok(DeadLetterPage {
            letters: letters.into_iter().map(|(_, letter)| letter).collect(),
            next,
        })
    }

    /// How many dead letters `module` has (without reading them).
    pub fn dead_letter_count(&self, module: &str) -> Result<u64, StoreError> {
        self.storage
            .count(&Space::Engine, &keys::dead_letters(Some(module)))
    }

    /// Where each chain subscription of `subscriptions` (a module's, in manifest order)
    /// stands, as committed.
    pub fn positions(
        &self,
        module: &ModuleName,
        subscriptions: &[nexum_core::Subscription],
    ) -> Result<Vec<Position>, StoreError> {
        let mut positions = Vec::new();
        for (index, subscription) in subscriptions.iter().enumerate() {
            let (Some(key), Some(chain_id)) =
                (subscription.position_key(), subscription.chain_id())
            else {
                continue;
            };
            let id = SubscriptionId {
                module: module.to_string(),
                position: key,
            };
            positions.push(Position {
                subscription: index,
                chain_id,
                handled_through: self.cursor(&id)?.map(|c| c.number),
                starts_at: self.start(&id)?.map(|s| s.next),
            });
        }
        Ok(positions)
    }

    /// Makes everything committed so far durable on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.storage.flush()
    }

    // The module stores' side.

    pub(crate) fn module_get(
        &self,
        module: &ModuleName,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.storage.get(&Space::Module(module.clone()), key)
    }

    pub(crate) fn module_value_len(
        &self,
        module: &ModuleName,
        key: &str,
    ) -> Result<Option<usize>, StoreError> {
        self.storage.value_len(&Space::Module(module.clone()), key)
    }

    /// A module's entries under `prefix` after `after`, in key order: at most
    /// `max_entries`, and no more once they hold `max_bytes`.
    pub(crate) fn module_entries_after(
        &self,
        module: &ModuleName,
        prefix: &str,
        after: Option<&str>,
        max_entries: usize,
        max_bytes: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.storage.scan_after(
            &Space::Module(module.clone()),
            prefix,
            after,
            max_entries,
            max_bytes,
        )
    }

    /// How many of a module's keys start with `prefix`.
    pub(crate) fn module_count(
        &self,
        module: &ModuleName,
        prefix: &str,
    ) -> Result<u64, StoreError> {
        self.storage.count(&Space::Module(module.clone()), prefix)
    }

    /// At most `limit` of a module's keys under `prefix`, sorted.
    pub(crate) fn module_keys(
        &self,
        module: &ModuleName,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.storage
            .keys(&Space::Module(module.clone()), prefix, limit)
    }

    /// What `module` has committed, in bytes of keys and values: recorded with every
    /// commit, counted once for a store that has no record yet. One counter per module.
    pub(crate) fn module_usage(&self, module: &ModuleName) -> Result<Arc<AtomicU64>, StoreError> {
        let mut counters = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(counter) = counters.get(module.as_str()) {
            return Ok(counter.clone());
        }
        let counter = Arc::new(AtomicU64::new(self.stored_usage(module)?));
        counters.insert(module.to_string(), counter.clone());
        Ok(counter)
    }

    /// Reads `module`'s usage from the storage again (on a shared store, another node may
    /// have committed for it since this node counted).
    pub(crate) fn refresh_usage(&self, module: &ModuleName) -> Result<(), StoreError> {
        let used = self.stored_usage(module)?;
        self.module_usage(module)?.store(used, Ordering::Relaxed);
        Ok(())
    }

    /// `module`'s usage as the storage records it (counted once when never recorded).
    fn stored_usage(&self, module: &ModuleName) -> Result<u64, StoreError> {
        let key = keys::usage(module.as_str());
        let used = match self.storage.get(&Space::Engine, &key)? {
            Some(bytes) => u64::from_le_bytes(bytes.as_slice().try_into().map_err(|_| {
                StoreError::Corrupt {
                    key: key.clone(),
                    reason: "not a byte count".into(),
                }
            })?),
            None => self
                .list(module, "")?
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum(),
        };
        Ok(used)
    }

    /// Commits one call of `module`: its writes, its new usage and the engine's records
    /// for it, in one atomic batch; `usage` is updated once that succeeded. `id` is the caller's for the commit, to ask how it was settled should it fail
    /// without an answer ([`Ledger::commit_in_doubt`]).
    pub(crate) fn commit_call(
        &self,
        module: &ModuleName,
        writes: impl IntoIterator<Item = (String, Option<Vec<u8>>)>,
        usage: Option<(&AtomicU64, u64)>,
        bookkeeping: &Bookkeeping,
        id: u64,
    ) -> Result<(), StoreError> {
        let mut batch = self.batch_for(&bookkeeping.0)?;
        batch.fence = Some(module.to_string());
        batch.id = id;
        let space = Space::Module(module.clone());
        for (key, value) in writes {
            match value {
                Some(value) => batch.set(space.clone(), key, value),
                None => batch.remove(space.clone(), key),
            }
        }
        if let Some((_, used)) = usage {
            batch.set(
                Space::Engine,
                keys::usage(module.as_str()),
                used.to_le_bytes().to_vec(),
            );
        }
        self.storage.commit(batch)?;
        if let Some((counter, used)) = usage {
            counter.store(used, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether `module`'s commit made with `id`, which failed, landed: `None` when it was
    /// never in doubt.
    pub(crate) fn commit_in_doubt(
        &self,
        module: &ModuleName,
        id: u64,
    ) -> Result<Option<bool>, StoreError> {
        self.storage.commit_in_doubt(module.as_str(), id)
    }

    // The engine's side.

    /// Commits engine records that go with no module call (progress through quiet blocks,
    /// start positions).
    pub(crate) fn record(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let mut batch = self.batch_for(entries)?;
        batch.fence = one_module(entries);
        self.storage.commit(batch)
    }

    /// Where a subscription stands: its cursor, if it handled anything.
    pub(crate) fn cursor(&self, id: &SubscriptionId) -> Result<Option<Cursor>, StoreError> {
        self.engine_get(&keys::cursor(id))
    }

    /// Where a subscription starts, if that was decided.
    pub(crate) fn start(&self, id: &SubscriptionId) -> Result<Option<Start>, StoreError> {
        self.engine_get(&keys::start(id))
    }

    /// What a subscription was recently given, by block number.
    pub(crate) fn delivered(
        &self,
        id: &SubscriptionId,
    ) -> Result<BTreeMap<u64, DeliveredBlock>, StoreError> {
        let prefix = keys::delivered_prefix(id);
        self.engine_scan(&prefix)?
            .into_iter()
            .map(|(key, bytes)| {
                let number = key[prefix.len()..]
                    .parse()
                    .map_err(|_| StoreError::Corrupt {
                        key: key.clone(),
                        reason: "not a block number".into(),
                    })?;
                Ok((number, records::decode_delivered(&key, &bytes)?))
            })
            .collect()
    }

    /// The logs a subscription was given from block `number` (hash `hash`), read back to
    /// retract them. The record must be there and be that block's: one that is missing or
    /// names another block (on a shared store, another node may own the module now) is
    /// refused rather than retracting logs the module never got.
    pub(crate) fn delivered_logs(
        &self,
        id: &SubscriptionId,
        number: u64,
        hash: B256,
    ) -> Result<Vec<ChainLog>, StoreError> {
        let key = keys::delivered(id, number);
        let corrupt = |reason: &str| StoreError::Corrupt {
            key: key.clone(),
            reason: reason.to_string(),
        };
        let bytes = self
            .storage
            .get(&Space::Engine, &key)?
            .ok_or_else(|| corrupt("missing, though its delivery was committed"))?;
        let block = records::decode_delivered(&key, &bytes)?;
        if block.hash != hash {
            return Err(corrupt(
                "the record is of another block than the one delivered (another node may run this module now)",
            ));
        }
        Ok(block.logs)
    }

    /// Adopts, once per module, the records an older store kept under manifest indices:
    /// each goes to the position key of the subscription now at that index (`positions`:
    /// index and key of each chain subscription), records of indices with no such
    /// subscription are dropped, and a marker says it is done — in one batch. Never over a
    /// subscription that already has records of its own. This assumes the manifest did not
    /// change in the same upgrade (upgrade nexum and a module's manifest apart).
    pub(crate) fn adopt_legacy_positions(
        &self,
        module: &str,
        positions: &[(usize, String)],
    ) -> Result<(), StoreError> {
        let marker = keys::adopted(module);
        if self.storage.get(&Space::Engine, &marker)?.is_some() {
            return Ok(());
        }
        let mut batch = Batch::default();
        batch.set(Space::Engine, marker, json(&true));
        for prefix in [keys::cursors_of(module), keys::delivered_of(module)] {
            for (key, value) in self.engine_scan(&prefix)? {
                let rest = &key[prefix.len()..];
                let (legacy, tail) = rest.split_once('/').unwrap_or((rest, ""));
                if legacy.len() != 4 || legacy.parse::<usize>().is_err() {
                    continue; // a position key already
                }
                let index: usize = legacy.parse().expect("checked");
                batch.remove(Space::Engine, key.clone());
                let Some((_, position)) = positions.iter().find(|(i, _)| *i == index) else {
                    tracing::warn!(
                        module,
                        index,
                        "dropping the old records of a subscription the manifest no longer has"
                    );
                    continue;
                };
                let id = SubscriptionId {
                    module: module.to_string(),
                    position: position.clone(),
                };
                if self.start(&id)?.is_some() || self.cursor(&id)?.is_some() {
                    continue;
                }
                let adopted = if tail.is_empty() {
                    keys::cursor(&id)
                } else {
                    format!("{}{tail}", keys::delivered_prefix(&id))
                };
                batch.set(Space::Engine, adopted, value);
            }
        }
        self.storage.commit(batch)
    }

    /// The batch that applies `entries` to the engine's records.
    fn batch_for(&self, entries: &[Entry]) -> Result<Batch, StoreError> {
        let mut batch = Batch::default();
        for entry in entries {
            match entry {
                Entry::Start { id, start } => {
                    batch.set(Space::Engine, keys::start(id), json(start))
                }
                Entry::Advance { id, cursor } => {
                    batch.set(Space::Engine, keys::cursor(id), json(cursor))
                }
                Entry::Delivered { id, number, block } => batch.set(
                    Space::Engine,
                    keys::delivered(id, *number),
                    records::encode_delivered(block),
                ),
                Entry::Forget { id, number } => {
                    batch.remove(Space::Engine, keys::delivered(id, *number))
                }
                Entry::DeadLetter(letter) => {
                    // Counted first: only the oldest letters past the cap are listed, not
                    // all of them for every letter of a failure storm.
                    let prefix = keys::dead_letters(Some(&letter.module));
                    let kept = self.storage.count(&Space::Engine, &prefix)?;
                    let excess = usize::try_from(kept)
                        .unwrap_or(usize::MAX)
                        .saturating_add(1)
                        .saturating_sub(MAX_DEAD_LETTERS);
                    if excess > 0 {
                        for key in self.storage.keys(&Space::Engine, &prefix, excess)? {
                            batch.remove(Space::Engine, key);
                        }
                    }
                    batch.set(
                        Space::Engine,
                        keys::dead_letter(&letter.module, letter.at_ms, next_sequence()),
                        json(letter.as_ref()),
                    );
                }
                Entry::Replayed { module, id } => batch.remove(
                    Space::Engine,
                    format!("{}{id}", keys::dead_letters(Some(module))),
                ),
            }
        }
        Ok(batch)
    }

    fn engine_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.storage
            .get(&Space::Engine, key)?
            .map(|bytes| decode(key, &bytes))
            .transpose()
    }

    fn engine_scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.storage.scan(&Space::Engine, prefix, UNBOUNDED)
    }
}

/// The module all of `entries` belong to, if they all belong to one (such a commit is
/// fenced by that module's lease on a shared storage).
fn one_module(entries: &[Entry]) -> Option<String> {
    let module_of = |entry: &Entry| -> String {
        match entry {
            Entry::Start { id, .. }
            | Entry::Advance { id, .. }
            | Entry::Delivered { id, .. }
            | Entry::Forget { id, .. } => id.module.clone(),
            Entry::DeadLetter(letter) => letter.module.clone(),
            Entry::Replayed { module, .. } => module.clone(),
        }
    };
    let first = module_of(entries.first()?);
    entries
        .iter()
        .all(|e| module_of(e) == first)
        .then_some(first)
}

/// An id for a commit, for its maker to ask about should it fail without an answer (never
/// 0, which stands for nobody asking).
pub(crate) fn next_commit_id() -> u64 {
    static SEQUENCE: AtomicU64 = AtomicU64::new(1);
    SEQUENCE.fetch_add(1, Ordering::Relaxed)
}

/// A sequence that orders dead letters of the same millisecond.
fn next_sequence() -> u64 {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    SEQUENCE.fetch_add(1, Ordering::Relaxed)
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("engine records serialise")
}

/// A stored dead letter, named by the last part of its key.
fn decode_dead_letter(key: &str, bytes: &[u8]) -> Result<DeadLetter, StoreError> {
    let mut letter: DeadLetter = decode(key, bytes)?;
    letter.id = key.rsplit('/').next().unwrap_or_default().to_string();
    Ok(letter)
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexum_core::{Event, Tick};

    fn id(position: &str) -> SubscriptionId {
        SubscriptionId {
            module: "m".into(),
            position: position.into(),
        }
    }

    fn letter(at_ms: u64) -> DeadLetter {
        DeadLetter {
            id: String::new(),
            module: "m".into(),
            subscription: None,
            event: Event::Tick(Tick {
                fired_at: 0,
                schedule: String::new(),
            }),
            reason: "failed".into(),
            attempts: 1,
            at_ms,
        }
    }

    #[test]
    fn entries_become_typed_records_again() {
        let ledger = Ledger::in_memory();
        let cursor = Cursor {
            number: 7,
            hash: alloy_primitives::B256::repeat_byte(7),
            log_index: Some(2),
        };
        let block = DeliveredBlock {
            hash: cursor.hash,
            logs: Vec::new(),
        };
        ledger
            .record(&[
                Entry::Start {
                    id: id("log-1-ab"),
                    start: Start { next: 5 },
                },
                Entry::Advance {
                    id: id("log-1-ab"),
                    cursor,
                },
                Entry::Delivered {
                    id: id("log-1-ab"),
                    number: 7,
                    block: block.clone(),
                },
                Entry::Delivered {
                    id: id("log-1-ab"),
                    number: 6,
                    block: block.clone(),
                },
                Entry::Forget {
                    id: id("log-1-ab"),
                    number: 6,
                },
            ])
            .unwrap();
        assert_eq!(
            ledger.start(&id("log-1-ab")).unwrap(),
            Some(Start { next: 5 })
        );
        assert_eq!(ledger.cursor(&id("log-1-ab")).unwrap(), Some(cursor));
        assert_eq!(
            ledger
                .delivered(&id("log-1-ab"))
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![(7, block.clone())]
        );
        // One record read back alone (to undo a reorg): only as the block delivered.
        let logs = |number, hash| ledger.delivered_logs(&id("log-1-ab"), number, hash);
        assert_eq!(logs(7, block.hash).unwrap(), block.logs);
        for (number, hash) in [(7, B256::repeat_byte(8)), (6, block.hash)] {
            assert!(matches!(
                logs(number, hash),
                Err(StoreError::Corrupt { key, .. }) if key.ends_with(&format!("{number:020}"))
            ));
        }
        // Another subscription of the module sees none of it.
        assert_eq!(ledger.cursor(&id("log-1-abc")).unwrap(), None);
        assert!(ledger.delivered(&id("log-1-a")).unwrap().is_empty());
    }

    #[test]
    fn dead_letters_are_capped_oldest_first() {
        let ledger = Ledger::in_memory();
        for at in 0..MAX_DEAD_LETTERS as u64 + 5 {
            ledger
                .record(&[Entry::DeadLetter(Box::new(letter(at)))])
                .unwrap();
        }
        let kept = ledger.dead_letters(Some("m")).unwrap();
        assert_eq!(kept.len(), MAX_DEAD_LETTERS);
        assert_eq!(kept[0].at_ms, 5);
    }

    #[test]
    fn every_instance_of_a_module_counts_usage_on_one_counter() {
        let ledger = Ledger::in_memory();
        let name = ModuleName::new("m").unwrap();
        let before_upgrade = ledger.module_usage(&name).unwrap();
        let after_upgrade = ledger.module_usage(&name).unwrap();
        ledger
            .commit_call(
                &name,
                [("k".to_string(), Some(b"value".to_vec()))],
                Some((&before_upgrade, 6)),
                &Bookkeeping::default(),
                0,
            )
            .unwrap();
        assert_eq!(after_upgrade.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_replayed_letter_goes_and_only_it() {
        let ledger = Ledger::in_memory();
        for at in [1, 2, 3] {
            ledger
                .record(&[Entry::DeadLetter(Box::new(letter(at)))])
                .unwrap();
        }
        let letters = ledger.dead_letters(Some("m")).unwrap();
        ledger
            .record(&[Entry::Replayed {
                module: "m".into(),
                id: letters[1].id.clone(),
            }])
            .unwrap();
        let left: Vec<u64> = ledger
            .dead_letters(Some("m"))
            .unwrap()
            .iter()
            .map(|l| l.at_ms)
            .collect();
        assert_eq!(left, [1, 3]);
    }

    #[test]
    fn a_call_commits_module_writes_usage_and_records_together() {
        let ledger = Ledger::in_memory();
        let module = ModuleName::new("m").unwrap();
        let usage = ledger.module_usage(&module).unwrap();
        let bookkeeping = Bookkeeping::new(vec![Entry::Advance {
            id: id("block-1"),
            cursor: Cursor {
                number: 1,
                hash: alloy_primitives::B256::ZERO,
                log_index: None,
            },
        }]);
        ledger
            .commit_call(
                &module,
                [("k".to_string(), Some(b"v".to_vec()))],
                Some((&usage, 2)),
                &bookkeeping,
                0,
            )
            .unwrap();
        assert_eq!(ledger.read(&module, "k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(ledger.cursor(&id("block-1")).unwrap().unwrap().number, 1);
        assert_eq!(
            ledger
                .module_usage(&module)
                .unwrap()
                .load(Ordering::Relaxed),
            2
        );
        assert_eq!(usage.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn legacy_index_records_are_adopted_once_and_never_over_newer_ones() {
        let ledger = Ledger::in_memory();
        let cursor = |number: u64| Cursor {
            number,
            hash: alloy_primitives::B256::ZERO,
            log_index: None,
        };
        let block = DeliveredBlock {
            hash: alloy_primitives::B256::ZERO,
            logs: Vec::new(),
        };
        ledger
            .record(&[
                Entry::Advance {
                    id: id("0000"),
                    cursor: cursor(9),
                },
                Entry::Delivered {
                    id: id("0000"),
                    number: 9,
                    block,
                },
                Entry::Advance {
                    id: id("0001"),
                    cursor: cursor(4),
                },
                Entry::Advance {
                    id: id("0002"),
                    cursor: cursor(2),
                },
                // Index 1's subscription already has a start of its own.
                Entry::Start {
                    id: id("log-1-b"),
                    start: Start { next: 100 },
                },
            ])
            .unwrap();
        let positions = [(0, "block-1".to_string()), (1, "log-1-b".to_string())];
        ledger.adopt_legacy_positions("m", &positions).unwrap();
        assert_eq!(ledger.cursor(&id("block-1")).unwrap(), Some(cursor(9)));
        assert_eq!(ledger.delivered(&id("block-1")).unwrap().len(), 1);
        assert_eq!(ledger.cursor(&id("log-1-b")).unwrap(), None);
        for legacy in ["0000", "0001", "0002"] {
            assert_eq!(
                ledger.cursor(&id(legacy)).unwrap(),
                None,
                "{legacy} left behind"
            );
            assert!(ledger.delivered(&id(legacy)).unwrap().is_empty());
        }
        // Once: records written under the old names later are left alone.
        ledger
            .record(&[Entry::Advance {
                id: id("0000"),
                cursor: cursor(1),
            }])
            .unwrap();
        ledger.adopt_legacy_positions("m", &positions).unwrap();
        assert_eq!(ledger.cursor(&id("block-1")).unwrap(), Some(cursor(9)));
    }
}

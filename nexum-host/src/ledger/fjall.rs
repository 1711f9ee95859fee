//! The embedded storage: one fjall database per engine, a keyspace per module
//! (`module.<name>`) and one for the engine (`nexum.engine`), which no module name can
//! produce.

use super::backup::BackupError;
use super::storage::{Batch, EntryVisitor, Space, Storage, StoreError};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use nexum_core::Durability;
use nexum_core::host_rules::store::scan_start;
use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

/// The engine's own keyspace; its name cannot collide with `module.<name>`.
const ENGINE_KEYSPACE: &str = "nexum.engine";

/// Largest in-memory write buffer per keyspace before it is flushed to disk. fjall's default
/// (64 MiB) is sized for one big database; an engine has a keyspace per module, so memory
/// would grow with the number of modules. Keeping it small keeps memory flat.
const MEMTABLE_BYTES: u64 = 4 * 1024 * 1024;

/// The block cache shared by every keyspace.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The `version` marker fjall 3 writes: its magic bytes and format version 3. A unit test
/// checks it against a store fjall makes, so an upgrade that changes it is noticed.
const FJALL_VERSION_MARKER: &[u8] = b"FJL\x03";

/// The file fjall locks while a process has the store open (or creates it).
pub(crate) const STORE_LOCK: &str = "lock";

/// Takes the lock of the store in `dir` as fjall takes it (its `lock` file, made if
/// missing), held until the file returned is dropped: `None` when another process holds it
/// (the store there is that process's).
pub(crate) fn lock_store(dir: &Path) -> std::io::Result<Option<std::fs::File>> {
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(STORE_LOCK))?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether `dir` holds a store whose creation completed (its `version` marker is whole).
pub(crate) fn holds_store(dir: &Path) -> bool {
    std::fs::read(dir.join("version")).is_ok_and(|marker| marker == FJALL_VERSION_MARKER)
}

/// Removes what a creation of the database that was killed part-way left in `dir`, which
/// fjall would otherwise refuse to open for good ("File exists", or an invalid version).
/// fjall takes its lock, creates an empty `keyspaces` folder and the first journal, then
/// writes its `version` marker, and only then its first keyspace: a marker that is missing
/// or cut short, with no keyspace, means no database was ever opened there, so nothing was
/// ever committed to that journal. Anything else (any journal but the first, too) is
/// left for fjall to recover or refuse; so is a creation still running in another process
/// (it holds the lock). What is not fjall's is ignored and kept: the store lives in the
/// state directory, where boot writes the compile cache and fetched content before it
/// opens the store.
fn clear_interrupted_creation(dir: &Path) -> Result<(), StoreError> {
    let fail = |what: &str, e: std::io::Error| {
        StoreError::Backend(format!(
            "clearing what an interrupted creation of the store left: {what}: {e}"
        ))
    };
    let (marker, keyspaces, journal) = (
        dir.join("version"),
        dir.join("keyspaces"),
        dir.join("0.jnl"),
    );
    let interrupted = || -> Result<bool, StoreError> {
        let written = match std::fs::read(&marker) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(fail("version", e)),
        };
        // Cut short: killed while fjall wrote it.
        let unmarked = written.as_deref().is_none_or(|written| {
            written.len() < FJALL_VERSION_MARKER.len() && FJALL_VERSION_MARKER.starts_with(written)
        });
        // Every store that opened has its whole marker: nothing more to read for it.
        if !unmarked {
            return Ok(false);
        }
        let no_keyspace = match std::fs::read_dir(&keyspaces) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(fail("keyspaces", e)),
        };
        // What a creation leaves; any journal but the first means the store ran.
        let mut left_over = false;
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(fail("the store's folder", e)),
        };
        for entry in entries {
            let name = entry
                .map_err(|e| fail("the store's folder", e))?
                .file_name();
            match name.to_str() {
                Some("version" | "keyspaces" | "0.jnl") => left_over = true,
                Some(journal) if journal.ends_with(".jnl") => return Ok(false),
                _ => {}
            }
        }
        Ok(no_keyspace && left_over)
    };
    if !interrupted()? {
        return Ok(());
    }
    // A creation or an open in another process holds fjall's lock.
    let Some(_lock) = lock_store(dir).map_err(|e| fail("lock", e))? else {
        return Err(StoreError::Locked);
    };
    // Judged again under the lock: another process may have finished creating it since.
    if !interrupted()? {
        return Ok(());
    }
    tracing::warn!(
        dir = %dir.display(),
        "the store's creation was interrupted before its version marker was complete (nothing was committed in it): creating it again"
    );
    // Removed or already gone.
    let gone = |removed: std::io::Result<()>, what: &str| match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(fail(what, e)),
        _ => Ok(()),
    };
    // The marker first: a kill while clearing leaves a layout this still recognises.
    gone(std::fs::remove_file(&marker), "version")?;
    // `remove_dir` refuses a folder that is not empty: no keyspace is ever removed.
    gone(std::fs::remove_dir(&keyspaces), "keyspaces")?;
    gone(std::fs::remove_file(&journal), "0.jnl")
}

fn keyspace_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
}

impl From<fjall::Error> for StoreError {
    fn from(error: fjall::Error) -> Self {
        match error {
            fjall::Error::Locked => StoreError::Locked,
            // The OS's own words ("Permission denied (os error 13)"), not a debug value.
            fjall::Error::Io(e) | fjall::Error::Storage(fjall::LsmError::Io(e)) => {
                StoreError::Backend(e.to_string())
            }
            other => StoreError::Backend(format!("{other:?}")),
        }
    }
}

/// fjall behind the [`Storage`] seam.
pub(crate) struct FjallStorage {
    db: Database,
    engine: Keyspace,
    /// Module keyspaces opened so far.
    modules: Mutex<HashMap<String, Keyspace>>,
    /// Each commit is fsynced before it returns (`durability = "sync"`).
    sync: bool,
    /// With buffered durability: forces commits to disk every window.
    flusher: Option<WindowFlusher>,
}

impl FjallStorage {
    /// Opens (or creates) the database in `dir` with `durability`; buffered commits are
    /// forced to disk every `window`.
    pub fn open(dir: &Path, durability: Durability, window: Duration) -> Result<Self, StoreError> {
        clear_interrupted_creation(dir)?;
        // fjall's background threads stay at its default (one per core, up to four): with
        // a single one fjall 3.1 can deadlock, as that worker handles a memtable rotation
        // by queueing a flush on the bounded queue only it reads.
        let db = Database::builder(dir).cache_size(CACHE_BYTES).open()?;
        let engine = db.keyspace(ENGINE_KEYSPACE, keyspace_options)?;
        let sync = durability == Durability::Sync;
        Ok(Self {
            flusher: (!sync).then(|| WindowFlusher::start(db.clone(), window)),
            db,
            engine,
            modules: Mutex::default(),
            sync,
        })
    }

    /// The keyspace of `space`; `None` for a module keyspace that does not exist yet (and
    /// `create` is false).
    fn keyspace(&self, space: &Space, create: bool) -> Result<Option<Keyspace>, StoreError> {
        let name = match space {
            Space::Engine => return Ok(Some(self.engine.clone())),
            Space::Module(module) => format!("module.{module}"),
        };
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(keyspace) = modules.get(&name) {
            return Ok(Some(keyspace.clone()));
        }
        if !create && !self.db.keyspace_exists(&name) {
            return Ok(None);
        }
        let keyspace = self.db.keyspace(&name, keyspace_options)?;
        modules.insert(name, keyspace.clone());
        Ok(Some(keyspace))
    }

    fn prefix_walk<T>(
        &self,
        space: &Space,
        prefix: &str,
        limit: usize,
        mut take: impl FnMut(fjall::Guard) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let Some(keyspace) = self.keyspace(space, false)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in keyspace.prefix(prefix) {
            if out.len() >= limit {
                break;
            }
            out.push(take(entry)?);
        }
        Ok(out)
    }
}

impl Drop for FjallStorage {
    fn drop(&mut self) {
        // Joined before the database closes, so its lock goes with the storage.
        if let Some(flusher) = self.flusher.take() {
            flusher.stop();
        }
    }
}

/// A thread that forces buffered commits to disk every window: how much a power cut can
/// take is bounded by the window (fjall alone only writes them to the OS).
struct WindowFlusher {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl WindowFlusher {
    fn start(db: Database, window: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("nexum-store-sync".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(window) {
                    if let Err(e) = db.persist(PersistMode::SyncAll) {
                        tracing::error!(error = %StoreError::from(e), "forcing commits to disk failed");
                    }
                }
            })
            .expect("spawning the store sync thread");
        Self { stop, thread }
    }

    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

fn utf8(key: &[u8], space: &Space) -> Result<String, StoreError> {
    String::from_utf8(key.to_vec()).map_err(|_| StoreError::NonUtf8Key {
        space: match space {
            Space::Engine => "the engine's records".to_string(),
            Space::Module(module) => format!("module {module}"),
        },
    })
}

impl Storage for FjallStorage {
    fn get(&self, space: &Space, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(keyspace) = self.keyspace(space, false)? else {
            return Ok(None);
        };
        Ok(keyspace.get(key)?.map(|v| v.to_vec()))
    }

    fn value_len(&self, space: &Space, key: &str) -> Result<Option<usize>, StoreError> {
        let Some(keyspace) = self.keyspace(space, false)? else {
            return Ok(None);
        };
        Ok(keyspace.size_of(key)?.map(|n| n as usize))
    }

    fn scan(
        &self,
        space: &Space,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.prefix_walk(space, prefix, limit, |entry| {
            let (key, value) = entry.into_inner()?;
            Ok((utf8(&key, space)?, value.to_vec()))
        })
    }

    fn scan_after(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        max_entries: usize,
        max_bytes: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let Some(keyspace) = self.keyspace(space, false)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for entry in keyspace.range((scan_start(prefix, after), Bound::<String>::Unbounded)) {
            if out.len() >= max_entries || bytes >= max_bytes {
                break;
            }
            let (key, value) = entry.into_inner()?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            bytes += (key.len() + value.len()) as u64;
            out.push((utf8(&key, space)?, value.to_vec()));
        }
        Ok(out)
    }

    fn count(&self, space: &Space, prefix: &str) -> Result<u64, StoreError> {
        let Some(keyspace) = self.keyspace(space, false)? else {
            return Ok(0);
        };
        let mut count = 0;
        for entry in keyspace.prefix(prefix) {
            entry.key()?;
            count += 1;
        }
        Ok(count)
    }

    fn keys(&self, space: &Space, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.prefix_walk(space, prefix, limit, |entry| utf8(&entry.key()?, space))
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut fjall_batch = self.db.batch();
        if self.sync {
            fjall_batch = fjall_batch.durability(Some(PersistMode::SyncAll));
        }
        for write in batch.writes {
            let keyspace = self
                .keyspace(&write.space, true)?
                .expect("created when missing");
            match write.value {
                Some(value) => fjall_batch.insert(&keyspace, write.key, value),
                None => fjall_batch.remove(&keyspace, write.key),
            }
        }
        fjall_batch.commit()?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    fn each_entry(&self, visit: &mut EntryVisitor<'_>) -> Result<(), BackupError> {
        // One sequence number for every keyspace: what a backup holds was all true at once.
        let snapshot = self.db.snapshot();
        let mut spaces = Vec::new();
        for name in self.db.list_keyspace_names() {
            let name: &str = &name;
            let module = name
                .strip_prefix("module.")
                .and_then(|m| nexum_core::ModuleName::new(m).ok());
            let space = match module {
                _ if name == ENGINE_KEYSPACE => Space::Engine,
                Some(module) => Space::Module(module),
                // A backup that left something out would look whole: refuse instead.
                None => {
                    return Err(StoreError::Backend(format!(
                        "keyspace {name:?} is not one nexum writes; refusing a backup that would leave it out"
                    ))
                    .into());
                }
            };
            spaces.push(space);
        }
        spaces.sort();
        for space in spaces {
            let Some(keyspace) = self.keyspace(&space, false)? else {
                continue;
            };
            for entry in snapshot.iter(&keyspace) {
                let (key, value) = entry.into_inner().map_err(StoreError::from)?;
                visit(&space, &utf8(&key, &space)?, &value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(5);

    fn module_m() -> Space {
        Space::Module(nexum_core::ModuleName::new("m").unwrap())
    }

    /// Opens the store in `dir`, commits `k` = `v` for module `m`, and closes it.
    fn commit_k(dir: &Path, durability: Durability) {
        let storage = FjallStorage::open(dir, durability, WINDOW).unwrap();
        let mut batch = Batch::default();
        batch.set(module_m(), "k", b"v".to_vec());
        storage.commit(batch).unwrap();
    }

    /// Asserts that the store in `dir` opens and holds `k` = `v` for module `m`.
    fn assert_holds_k(dir: &Path, durability: Durability) {
        let reopened = FjallStorage::open(dir, durability, WINDOW).unwrap();
        assert_eq!(reopened.get(&module_m(), "k").unwrap(), Some(b"v".to_vec()));
    }

    fn round_trip(durability: Durability) {
        let dir = tempfile::tempdir().unwrap();
        commit_k(dir.path(), durability);
        // Dropping stops the sync thread before the database closes: the lock is free at once.
        assert_holds_k(dir.path(), durability);
    }

    #[test]
    fn both_durabilities_commit_and_release_the_store_when_dropped() {
        round_trip(Durability::Buffered);
        round_trip(Durability::Sync);
    }

    /// What fjall leaves when killed while creating the database: its lock, an empty
    /// `keyspaces` folder and the first journal (64 MiB of zeros, sparse), and no `version`
    /// marker yet.
    fn interrupted_creation(dir: &Path) {
        std::fs::write(dir.join("lock"), b"").unwrap();
        std::fs::create_dir(dir.join("keyspaces")).unwrap();
        first_journal(dir);
    }

    /// fjall's first journal as its creation makes it: 64 MiB of zeros (sparse).
    fn first_journal(dir: &Path) {
        std::fs::File::create(dir.join("0.jnl"))
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
    }

    #[test]
    fn a_creation_killed_before_it_finished_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        interrupted_creation(dir.path());
        commit_k(dir.path(), Durability::Buffered);
        assert_holds_k(dir.path(), Durability::Buffered);
    }

    #[test]
    fn a_creation_killed_while_it_wrote_its_version_marker_is_made_again() {
        for written in [&b""[..], b"F", b"FJL"] {
            let dir = tempfile::tempdir().unwrap();
            interrupted_creation(dir.path());
            std::fs::write(dir.path().join("version"), written).unwrap();
            commit_k(dir.path(), Durability::Buffered);
            assert_holds_k(dir.path(), Durability::Buffered);
        }
    }

    /// Killed after the marker was complete, before the first keyspace: fjall recovers it.
    #[test]
    fn a_creation_killed_after_its_version_marker_opens() {
        let dir = tempfile::tempdir().unwrap();
        interrupted_creation(dir.path());
        std::fs::write(dir.path().join("version"), FJALL_VERSION_MARKER).unwrap();
        commit_k(dir.path(), Durability::Buffered);
        assert_holds_k(dir.path(), Durability::Buffered);
    }

    /// On a first start boot has written the compile cache (and fetched content) into the
    /// state directory before it opens the store there: they are not the store's, and stay.
    #[test]
    fn a_creation_killed_beside_nexums_own_folders_is_made_again_and_they_stay() {
        let dir = tempfile::tempdir().unwrap();
        interrupted_creation(dir.path());
        let cached = dir.path().join("compile-cache").join("m.cwasm");
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        std::fs::write(&cached, b"compiled").unwrap();
        std::fs::create_dir(dir.path().join("content")).unwrap();
        commit_k(dir.path(), Durability::Buffered);
        assert_holds_k(dir.path(), Durability::Buffered);
        assert_eq!(std::fs::read(&cached).unwrap(), b"compiled");
        assert!(dir.path().join("content").is_dir());
    }

    /// Each layout a kill while clearing an interrupted creation can leave.
    #[test]
    fn a_clearing_killed_part_way_is_finished_at_the_next_open() {
        for (keyspaces, journal) in [(true, true), (false, true), (true, false)] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("lock"), b"").unwrap();
            if keyspaces {
                std::fs::create_dir(dir.path().join("keyspaces")).unwrap();
            }
            if journal {
                first_journal(dir.path());
            }
            commit_k(dir.path(), Durability::Buffered);
            assert_holds_k(dir.path(), Durability::Buffered);
        }
    }

    #[test]
    fn a_layout_with_more_than_a_creation_leaves_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        interrupted_creation(dir.path());
        std::fs::write(dir.path().join("1.jnl"), b"").unwrap();
        // Not cleared: fjall refuses it as it finds it (its first journal is there).
        assert!(FjallStorage::open(dir.path(), Durability::Buffered, WINDOW).is_err());
        assert!(dir.path().join("0.jnl").exists());
        assert!(dir.path().join("keyspaces").is_dir());
    }

    #[test]
    fn the_version_marker_is_the_one_fjall_writes() {
        let dir = tempfile::tempdir().unwrap();
        commit_k(dir.path(), Durability::Buffered);
        assert_eq!(
            std::fs::read(dir.path().join("version")).unwrap(),
            FJALL_VERSION_MARKER
        );
    }

    #[test]
    fn a_marker_that_is_not_fjalls_is_left_for_fjall_to_refuse() {
        let dir = tempfile::tempdir().unwrap();
        interrupted_creation(dir.path());
        std::fs::write(dir.path().join("version"), b"FJL\x02").unwrap();
        assert!(FjallStorage::open(dir.path(), Durability::Buffered, WINDOW).is_err());
        assert!(dir.path().join("version").exists());
        assert!(dir.path().join("0.jnl").exists());
    }

    #[test]
    fn a_creation_another_process_holds_the_lock_of_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        interrupted_creation(dir.path());
        let held = std::fs::File::open(dir.path().join("lock")).unwrap();
        held.try_lock().unwrap();
        let opened = FjallStorage::open(dir.path(), Durability::Buffered, WINDOW);
        assert!(
            matches!(opened, Err(StoreError::Locked)),
            "{:?}",
            opened.err()
        );
        assert!(dir.path().join("0.jnl").exists());
    }

    #[test]
    fn a_store_that_lost_its_version_marker_keeps_what_it_committed() {
        let dir = tempfile::tempdir().unwrap();
        commit_k(dir.path(), Durability::Sync);
        let marker = dir.path().join("version");
        let version = std::fs::read(&marker).unwrap();
        std::fs::remove_file(&marker).unwrap();
        // fjall decides what a store without its marker is; nexum removes nothing of it.
        let _ = FjallStorage::open(dir.path(), Durability::Sync, WINDOW);
        std::fs::write(&marker, version).unwrap();
        assert_holds_k(dir.path(), Durability::Sync);
    }
}

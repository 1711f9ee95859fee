//! Backups of a whole ledger as one file: every entry of every space, read at one instant
//! while the engine keeps running, and restored only into an empty state directory.
//!
//! The file is `NXBACKUP` and a format version, then one record per entry (space, key,
//! value, each length-prefixed), then a trailer with the number of entries and the sha256
//! of everything before it. A file cut short or damaged fails the trailer check, and a
//! restore reads the whole file once to check it before it writes anything. The checksum
//! is not a signature: whoever can write a backup can write a valid one, so backups belong
//! where only operators can write.

use super::storage::{Batch, Space, StoreError};
use nexum_core::ModuleName;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};

const MAGIC: &[u8; 8] = b"NXBACKUP";
const VERSION: u32 = 1;
const ENTRY: u8 = 1;
const TRAILER: u8 = 0;
/// Longest space name: `module:` and the longest module name, with room to spare.
const MAX_SPACE_BYTES: usize = 256;
/// Longest key a backup may hold: the most the embedded store can keep (and far above any
/// key limit a module runs under).
const MAX_KEY_BYTES: usize = 65_535;
/// Largest value a backup may hold: far above any value limit a store accepts, so a
/// damaged length cannot make a restore allocate without bound.
const MAX_VALUE_BYTES: usize = 1024 * 1024 * 1024;
/// A restore commits every this many entries…
const RESTORE_BATCH: usize = 1000;
/// …or as soon as the batch holds this many bytes.
const RESTORE_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// What a backup holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupSummary {
    /// Entries, the engine's records and the modules' keys together.
    pub entries: u64,
    /// The modules whose stores it holds, in order.
    pub modules: Vec<String>,
    /// Bytes of keys and values.
    pub bytes: u64,
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} entries, {} bytes of keys and values, modules: {}",
            self.entries,
            self.bytes,
            if self.modules.is_empty() {
                "none".to_string()
            } else {
                self.modules.join(", ")
            }
        )
    }
}

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backup file could not be read or written.
    #[error("backup file: {0}")]
    Io(#[from] io::Error),
    /// The file is not a whole, unaltered nexum backup.
    #[error("not a valid nexum backup: {0}")]
    Invalid(String),
    /// The state directory to restore into already holds something.
    #[error(
        "{0} is not empty; a restore goes only into an empty state directory (move the old one aside first)"
    )]
    NotEmpty(String),
    /// The store is PostgreSQL's to back up.
    #[error(
        "the shared store lives in PostgreSQL: back it up with PostgreSQL's tools (pg_dump, or the provider's snapshots)"
    )]
    Shared,
}

fn space_name(space: &Space) -> String {
    match space {
        Space::Engine => "engine".to_string(),
        Space::Module(module) => format!("module:{module}"),
    }
}

fn parse_space(name: &str) -> Result<Space, BackupError> {
    match name {
        "engine" => Ok(Space::Engine),
        other => other
            .strip_prefix("module:")
            .and_then(|m| ModuleName::new(m).ok())
            .map(Space::Module)
            .ok_or_else(|| BackupError::Invalid(format!("unknown space {other:?}"))),
    }
}

/// Writes a backup, entry by entry, hashing as it goes.
pub(crate) struct BackupWriter<W: Write> {
    out: W,
    hash: Sha256,
    summary: BackupSummary,
}

impl<W: Write> BackupWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut hash = Sha256::new();
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&VERSION.to_le_bytes());
        out.write_all(&header)?;
        hash.update(&header);
        Ok(Self {
            out,
            hash,
            summary: BackupSummary::default(),
        })
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.out.write_all(bytes)
    }

    pub fn entry(&mut self, space: &Space, key: &str, value: &[u8]) -> io::Result<()> {
        let space_name = space_name(space);
        self.put(&[ENTRY])?;
        self.put(&(space_name.len() as u16).to_le_bytes())?;
        self.put(space_name.as_bytes())?;
        self.put(&(key.len() as u32).to_le_bytes())?;
        self.put(key.as_bytes())?;
        self.put(&(value.len() as u32).to_le_bytes())?;
        self.put(value)?;
        self.summary.entries += 1;
        self.summary.bytes += (key.len() + value.len()) as u64;
        if let Space::Module(module) = space
            && self.summary.modules.last().map(String::as_str) != Some(module.as_str())
        {
            self.summary.modules.push(module.to_string());
        }
        Ok(())
    }

    /// Writes the trailer and flushes; the backup is whole only after this.
    pub fn finish(mut self) -> io::Result<BackupSummary> {
        let mut trailer = vec![TRAILER];
        trailer.extend_from_slice(&self.summary.entries.to_le_bytes());
        self.hash.update(&trailer);
        trailer.extend_from_slice(&self.hash.finalize());
        self.out.write_all(&trailer)?;
        self.out.flush()?;
        self.summary.modules.sort();
        self.summary.modules.dedup();
        Ok(self.summary)
    }
}

/// Reads a backup from `input`, handing each entry to `each`, and checks its trailer;
/// entries handed over before a failed check must be discarded by the caller.
pub(crate) fn read_backup(
    input: impl Read,
    mut each: impl FnMut(Space, String, Vec<u8>) -> Result<(), BackupError>,
) -> Result<BackupSummary, BackupError> {
    let mut input = HashingReader {
        inner: io::BufReader::new(input),
        hash: Sha256::new(),
    };
    let cut =
        |what: &str| BackupError::Invalid(format!("the file ends inside {what} (cut short?)"));
    let mut header = [0u8; 12];
    input
        .read_exact(&mut header)
        .map_err(|_| cut("the header"))?;
    if &header[..8] != MAGIC {
        return Err(BackupError::Invalid(
            "it does not start with NXBACKUP".into(),
        ));
    }
    let version = u32::from_le_bytes(header[8..].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(BackupError::Invalid(format!(
            "format version {version}; this nexum reads version {VERSION}"
        )));
    }
    let mut summary = BackupSummary::default();
    loop {
        let mut tag = [0u8; 1];
        input.read_exact(&mut tag).map_err(|_| cut("an entry"))?;
        match tag[0] {
            ENTRY => {
                let space = input.field(2, MAX_SPACE_BYTES, "a space name")?;
                let space = parse_space(&String::from_utf8_lossy(&space))?;
                let key = input.field(4, MAX_KEY_BYTES, "a key")?;
                let key = String::from_utf8(key)
                    .map_err(|_| BackupError::Invalid("a key is not UTF-8".into()))?;
                if key.is_empty() {
                    return Err(BackupError::Invalid("a key is empty".into()));
                }
                let value = input.field(4, MAX_VALUE_BYTES, "a value")?;
                summary.entries += 1;
                summary.bytes += (key.len() + value.len()) as u64;
                if let Space::Module(module) = &space
                    && summary.modules.last().map(String::as_str) != Some(module.as_str())
                {
                    summary.modules.push(module.to_string());
                }
                each(space, key, value)?;
            }
            TRAILER => {
                let mut count = [0u8; 8];
                input
                    .read_exact(&mut count)
                    .map_err(|_| cut("the trailer"))?;
                let expected = input.hash.clone().finalize();
                let mut stored = [0u8; 32];
                input
                    .inner
                    .read_exact(&mut stored)
                    .map_err(|_| cut("the trailer"))?;
                if u64::from_le_bytes(count) != summary.entries {
                    return Err(BackupError::Invalid(format!(
                        "the trailer counts {} entries, the file holds {}",
                        u64::from_le_bytes(count),
                        summary.entries
                    )));
                }
                if stored[..] != expected[..] {
                    return Err(BackupError::Invalid(
                        "its checksum does not match its content (altered or damaged)".into(),
                    ));
                }
                let mut rest = [0u8; 1];
                if input.inner.read(&mut rest)? != 0 {
                    return Err(BackupError::Invalid("bytes follow the trailer".into()));
                }
                summary.modules.sort();
                summary.modules.dedup();
                return Ok(summary);
            }
            other => {
                return Err(BackupError::Invalid(format!(
                    "unknown record tag {other} (altered or damaged)"
                )));
            }
        }
    }
}

/// Restores the backup read from `input` into `storage`, in batches; the caller checked
/// the file first and restores only into an empty store.
pub(crate) fn restore_into(
    storage: &dyn super::storage::Storage,
    input: impl Read,
) -> Result<BackupSummary, BackupError> {
    let mut batch = Batch::default();
    let mut batch_bytes = 0;
    let summary = read_backup(input, |space, key, value| {
        batch_bytes += key.len() + value.len();
        batch.set(space, key, value);
        if batch.writes.len() >= RESTORE_BATCH || batch_bytes >= RESTORE_BATCH_BYTES {
            storage.commit(std::mem::take(&mut batch))?;
            batch_bytes = 0;
        }
        Ok(())
    })?;
    storage.commit(batch)?;
    storage.flush()?;
    Ok(summary)
}

/// A reader that hashes what passes through it.
struct HashingReader<R: Read> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> HashingReader<R> {
    /// A length-prefixed field: a little-endian length of `width` bytes (2 or 4), then that
    /// many bytes, refused above `max`.
    fn field(&mut self, width: usize, max: usize, what: &str) -> Result<Vec<u8>, BackupError> {
        let cut = || BackupError::Invalid(format!("the file ends inside {what} (cut short?)"));
        let mut len = [0u8; 4];
        self.read_exact(&mut len[..width]).map_err(|_| cut())?;
        let len = u32::from_le_bytes(len) as usize;
        if len > max {
            return Err(BackupError::Invalid(format!(
                "{what} of {len} bytes (at most {max})"
            )));
        }
        let mut bytes = vec![0u8; len];
        self.read_exact(&mut bytes).map_err(|_| cut())?;
        Ok(bytes)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = BackupWriter::new(&mut out).unwrap();
        writer.entry(&Space::Engine, "cursor/a/0", b"{}").unwrap();
        let a = Space::Module(ModuleName::new("a").unwrap());
        writer.entry(&a, "k1", b"v1").unwrap();
        writer.entry(&a, "k2", &[0, 1, 2]).unwrap();
        let summary = writer.finish().unwrap();
        assert_eq!(summary.entries, 3);
        assert_eq!(summary.modules, ["a"]);
        out
    }

    fn read(bytes: &[u8]) -> Result<Vec<(Space, String, Vec<u8>)>, BackupError> {
        let mut seen = Vec::new();
        read_backup(bytes, |s, k, v| {
            seen.push((s, k, v));
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn a_backup_reads_back_entry_for_entry() {
        let seen = read(&sample()).unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2].1, "k2");
        assert_eq!(seen[2].2, [0, 1, 2]);
    }

    #[test]
    fn a_cut_altered_or_foreign_file_is_refused() {
        let whole = sample();
        for cut in [0, 5, 12, whole.len() / 2, whole.len() - 1] {
            let err = read(&whole[..cut]).unwrap_err().to_string();
            assert!(err.contains("cut short"), "cut at {cut}: {err}");
        }
        let mut altered = whole.clone();
        let at = whole.len() - 43; // inside the last value (the trailer is 41 bytes)
        altered[at] ^= 1;
        let err = read(&altered).unwrap_err().to_string();
        assert!(err.contains("checksum") || err.contains("tag"), "{err}");
        let mut longer = whole.clone();
        longer.push(0);
        assert!(read(&longer).unwrap_err().to_string().contains("follow"));
        assert!(
            read(b"PK\x03\x04 a zip file")
                .unwrap_err()
                .to_string()
                .contains("NXBACKUP")
        );
    }

    #[test]
    fn a_hostile_length_or_space_is_refused_before_allocating() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.push(ENTRY);
        bytes.extend_from_slice(&6u16.to_le_bytes());
        bytes.extend_from_slice(b"engine");
        let mut empty_key = bytes.clone();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = read(&bytes).unwrap_err().to_string();
        assert!(err.contains("a key of 4294967295 bytes"), "{err}");
        empty_key.extend_from_slice(&0u32.to_le_bytes());
        let err = read(&empty_key).unwrap_err().to_string();
        assert!(err.contains("a key is empty"), "{err}");

        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.push(ENTRY);
        bytes.extend_from_slice(&12u16.to_le_bytes());
        bytes.extend_from_slice(b"module:../x\0");
        let err = read(&bytes).unwrap_err().to_string();
        assert!(err.contains("unknown space"), "{err}");
    }
}

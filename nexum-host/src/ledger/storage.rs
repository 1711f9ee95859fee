//! The seam between the engine's ledger and where its bytes live: a key-value storage with
//! one space for the engine's records and one per module, and atomic batches across them.
//!
//! fjall is the embedded default ([`super::fjall::FjallStorage`]); PostgreSQL is the shared
//! backend for several nodes (`postgres.rs`); an in-memory storage (`memory.rs`) serves
//! unit tests.

use super::backup::BackupError;
use nexum_core::ModuleName;

/// Which space a key lives in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Space {
    /// The engine's own records (cursors, deliveries, dead letters, usage): no module
    /// reaches it.
    Engine,
    /// One module's store.
    Module(ModuleName),
}

/// One write: set `key` to `value`, or remove it (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub space: Space,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// Writes that commit together or not at all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub writes: Vec<Write>,
    /// The module these writes belong to: a shared storage commits them only while this
    /// node holds the module's lease (an embedded one has no one else to fence).
    pub fence: Option<String>,
    /// Its maker's id for it, to ask how it was settled should it fail without an answer
    /// ([`Storage::commit_in_doubt`]); 0 when nobody will ask.
    pub id: u64,
}

impl Batch {
    pub fn set(&mut self, space: Space, key: impl Into<String>, value: Vec<u8>) {
        self.writes.push(Write {
            space,
            key: key.into(),
            value: Some(value),
        });
    }

    pub fn remove(&mut self, space: Space, key: impl Into<String>) {
        self.writes.push(Write {
            space,
            key: key.into(),
            value: None,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// A failure of the storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the state (a running engine, or `nexum store` beside one).
    #[error("store: in use by another process")]
    Locked,
    /// The storage engine reported an error (I/O, corruption).
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
    /// Another node took the module over: this node may no longer commit for it.
    #[error(
        "store: module `{module}` is owned by another node now; this node's commit was refused"
    )]
    Fenced {
        /// The module.
        module: String,
    },
    /// A stored key is not UTF-8 (keys are strings in the contract).
    #[error("store: a key in {space} is not valid UTF-8")]
    NonUtf8Key {
        /// The space holding the key.
        space: String,
    },
}

/// What [`Storage::each_entry`] hands every entry to: its space, key and value.
pub(crate) type EntryVisitor<'a> = dyn FnMut(&Space, &str, &[u8]) -> Result<(), BackupError> + 'a;

/// Where the ledger's bytes live.
pub(crate) trait Storage: Send + Sync {
    /// The value of `key`.
    fn get(&self, space: &Space, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// The length of `key`'s value, without reading it.
    fn value_len(&self, space: &Space, key: &str) -> Result<Option<usize>, StoreError>;

    /// Entries whose key starts with `prefix`, in key order; at most `limit` of them.
    fn scan(
        &self,
        space: &Space,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Entries whose key starts with `prefix` and comes after `after` (all of the prefix
    /// when `None`), in key order: at most `max_entries`, and no more once they hold
    /// `max_bytes` of keys and values.
    fn scan_after(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        max_entries: usize,
        max_bytes: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// How many keys start with `prefix`.
    fn count(&self, space: &Space, prefix: &str) -> Result<u64, StoreError>;

    /// Keys starting with `prefix`, in key order; at most `limit` of them.
    fn keys(&self, space: &Space, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Applies `batch` atomically.
    fn commit(&self, batch: Batch) -> Result<(), StoreError>;

    /// Whether the commit of `module` made with `id`, which failed, landed: `None` when it
    /// was never in doubt (it certainly did not). Only a store across a network can lose a
    /// commit's answer; an embedded one never has one in doubt.
    fn commit_in_doubt(&self, _module: &str, _id: u64) -> Result<Option<bool>, StoreError> {
        Ok(None)
    }

    /// Makes everything committed so far durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// Hands every entry of every space to `visit`, as of one instant (commits made
    /// meanwhile are not seen), space by space in key order: the source of a backup.
    fn each_entry(&self, visit: &mut EntryVisitor<'_>) -> Result<(), BackupError>;
}

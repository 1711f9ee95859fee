//! The module's private key-value store.
//!
//! Keys are strings (sorted by [`list_keys`]); values are bytes, or any serde value with
//! the `_json` helpers. Writes become durable only when the current handler returns `Ok`,
//! and a handler always reads its own writes.
//!
//! For modules that keep one key per tracked item: [`entries`] walks any number of keys a
//! page at a time, [`count`], [`contains`] and [`value_len`] answer without reading
//! values, and a [`Batch`] writes many keys in one host call.

use crate::Fault;
use crate::host;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The value of `key`, if set.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Fault> {
    host::store_get(key)
}

/// Sets `key` to `value`.
pub fn set(key: &str, value: &[u8]) -> Result<(), Fault> {
    host::store_set(key, value)
}

/// Removes `key` (no error if it was not set).
pub fn delete(key: &str) -> Result<(), Fault> {
    host::store_delete(key)
}

/// Every key starting with `prefix`, sorted.
pub fn list_keys(prefix: &str) -> Result<Vec<String>, Fault> {
    host::store_list_keys(prefix)
}

/// The value of `key` decoded from JSON, if set.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Fault> {
    get(key)?.map(|bytes| decode_json(key, &bytes)).transpose()
}

/// Sets `key` to `value` encoded as JSON.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Fault> {
    set(key, &encode_json(key, value)?)
}

fn decode_json<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Fault> {
    serde_json::from_slice(bytes).map_err(|e| {
        Fault::Internal(format!(
            "store key `{key}` does not hold a valid {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

fn encode_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, Fault> {
    serde_json::to_vec(value)
        .map_err(|e| Fault::InvalidInput(format!("store key `{key}`: cannot encode value: {e}")))
}
/// The most entries one page holds, whatever [`page`] asks for (the host's cap).
pub const PAGE_MAX_ENTRIES: u32 = 1000;

/// The most writes one [`Batch`] may hold.
pub const BATCH_MAX_WRITES: usize = 10_000;

/// One page of entries: see [`page`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Keys and values, in key order.
    pub entries: Vec<(String, Vec<u8>)>,
    /// Pass as `after` to read the next page; `None` when nothing is left.
    pub next: Option<String>,
}

/// One page of the entries whose key starts with `prefix` and comes after `after` (from the
/// start of the prefix when `None`), in key order: at most `limit` entries and never more
/// than the host's cap ([`PAGE_MAX_ENTRIES`], 1 MiB of keys and values). A page may hold
/// fewer, even none, when this handler's own deletes hide many stored keys: read on while
/// `next` is set. [`entries`] walks every page for you.
pub fn page(prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, Fault> {
    host::store_page(prefix, after, limit)
}

/// Every entry under `prefix`, in key order, read a page at a time: memory stays bounded by
/// one page however many keys match. Each page is read when the previous one is used up, so
/// writes this handler makes during the walk show only from the next page on: a key is
/// never returned twice, keys before the walk's position are not revisited, and entries of
/// the page in hand are as they were when it was read.
pub fn entries(prefix: &str) -> Entries {
    Entries {
        prefix: prefix.to_string(),
        after: None,
        page: Vec::new().into_iter(),
        done: false,
    }
}

/// Every entry under `prefix` with its value decoded from JSON, in key order.
pub fn entries_json<T: DeserializeOwned>(
    prefix: &str,
) -> impl Iterator<Item = Result<(String, T), Fault>> {
    entries(prefix).map(|entry| {
        let (key, bytes) = entry?;
        let value = decode_json(&key, &bytes)?;
        Ok((key, value))
    })
}

/// The iterator of [`entries`].
#[derive(Debug)]
pub struct Entries {
    prefix: String,
    after: Option<String>,
    page: std::vec::IntoIter<(String, Vec<u8>)>,
    done: bool,
}

impl Iterator for Entries {
    type Item = Result<(String, Vec<u8>), Fault>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.page.next() {
                return Some(Ok(entry));
            }
            if self.done {
                return None;
            }
            match page(&self.prefix, self.after.as_deref(), PAGE_MAX_ENTRIES) {
                Ok(Page { entries, next }) => {
                    self.done = next.is_none();
                    self.after = next;
                    self.page = entries.into_iter();
                }
                Err(fault) => {
                    self.done = true;
                    return Some(Err(fault));
                }
            }
        }
    }
}

/// How many keys start with `prefix`.
pub fn count(prefix: &str) -> Result<u64, Fault> {
    host::store_count(prefix)
}

/// Whether `key` is set.
pub fn contains(key: &str) -> Result<bool, Fault> {
    host::store_contains(key)
}

/// The length of `key`'s value in bytes, without reading it.
pub fn value_len(key: &str) -> Result<Option<u64>, Fault> {
    host::store_value_len(key)
}

/// Several sets and deletes written in one host call, as one: [`Batch::apply`] writes all
/// of them or, when one breaks a limit or the whole would go over the quota, none.
///
/// ```ignore
/// let mut batch = store::Batch::new();
/// for order in &due {
///     batch.set_json(&format!("orders/{}", order.id), order)?;
/// }
/// batch.delete("orders/expired");
/// batch.apply()?;
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    writes: Vec<StoreWrite>,
}

/// One write of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWrite {
    /// Set the key to the value.
    Set(String, Vec<u8>),
    /// Remove the key.
    Delete(String),
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a set of `key` to `value`.
    pub fn set(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.writes
            .push(StoreWrite::Set(key.to_string(), value.to_vec()));
        self
    }

    /// Adds a set of `key` to `value` encoded as JSON.
    pub fn set_json<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<&mut Self, Fault> {
        let bytes = encode_json(key, value)?;
        self.writes.push(StoreWrite::Set(key.to_string(), bytes));
        Ok(self)
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: &str) -> &mut Self {
        self.writes.push(StoreWrite::Delete(key.to_string()));
        self
    }

    /// How many writes the batch holds.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether the batch holds no writes.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Writes the batch in one host call, and empties it. On a refusal nothing was
    /// written and the batch is kept.
    pub fn apply(&mut self) -> Result<(), Fault> {
        if self.writes.is_empty() {
            return Ok(());
        }
        host::store_apply(&self.writes)?;
        self.writes.clear();
        Ok(())
    }
}

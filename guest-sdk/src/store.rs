//! The module's private key-value store.
//!
//! Keys are strings (sorted by [`list_keys`]); values are bytes, or any serde value with
//! the `_json` helpers. Writes become durable only when the current handler returns `Ok`,
//! and a handler always reads its own writes.

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
    get(key)?
        .map(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| {
                Fault::Internal(format!(
                    "store key `{key}` does not hold a valid {}: {e}",
                    std::any::type_name::<T>()
                ))
            })
        })
        .transpose()
}

/// Sets `key` to `value` encoded as JSON.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Fault> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Fault::InvalidInput(format!("store key `{key}`: cannot encode value: {e}")))?;
    set(key, &bytes)
}

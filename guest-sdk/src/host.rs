//! The one place the SDK's helpers reach the host: the real imports inside wasm, the
//! in-memory [`testing`](crate::testing) host in native builds.

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::Fault;
    use crate::bindings::nexum::host::{local_store, logging};

    pub fn store_get(key: &str) -> Result<Option<Vec<u8>>, Fault> {
        local_store::get(key)
    }

    pub fn store_set(key: &str, value: &[u8]) -> Result<(), Fault> {
        local_store::set(key, value)
    }

    pub fn store_delete(key: &str) -> Result<(), Fault> {
        local_store::delete(key)
    }

    pub fn store_list_keys(prefix: &str) -> Result<Vec<String>, Fault> {
        local_store::list_keys(prefix)
    }

    pub fn log(level: logging::Level, message: &str) {
        logging::log(level, message)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use crate::Fault;
    use crate::bindings::nexum::host::logging::Level;
    use crate::testing::with_host;

    pub fn store_get(key: &str) -> Result<Option<Vec<u8>>, Fault> {
        with_host(|h| h.store_get(key))
    }

    pub fn store_set(key: &str, value: &[u8]) -> Result<(), Fault> {
        with_host(|h| h.store_set(key, value))
    }

    pub fn store_delete(key: &str) -> Result<(), Fault> {
        with_host(|h| h.store_delete(key))
    }

    pub fn store_list_keys(prefix: &str) -> Result<Vec<String>, Fault> {
        with_host(|h| h.store_list_keys(prefix))
    }

    pub fn log(level: Level, message: &str) {
        with_host(|h| h.log(level, message))
    }
}

pub(crate) use imp::*;

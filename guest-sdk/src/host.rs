//! The one place the SDK's helpers reach the host: the real imports inside wasm, the
//! in-memory [`testing`](crate::testing) host in native builds.

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::Fault;
    use crate::bindings::nexum::cow::cow_api;
    use crate::bindings::nexum::host::{chain, local_store, logging};
    use crate::store::{Page, StoreWrite};

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

    pub fn store_page(prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, Fault> {
        let page = local_store::list_entries(prefix, after, limit)?;
        Ok(Page {
            entries: page
                .entries
                .into_iter()
                .map(|entry| (entry.key, entry.value))
                .collect(),
            next: page.next,
        })
    }

    pub fn store_count(prefix: &str) -> Result<u64, Fault> {
        local_store::count(prefix)
    }

    pub fn store_contains(key: &str) -> Result<bool, Fault> {
        local_store::contains(key)
    }

    pub fn store_value_len(key: &str) -> Result<Option<u64>, Fault> {
        local_store::value_len(key)
    }

    pub fn store_apply(writes: &[StoreWrite]) -> Result<(), Fault> {
        let writes: Vec<local_store::WriteOp> = writes
            .iter()
            .map(|write| match write {
                StoreWrite::Set(key, value) => local_store::WriteOp::Set(local_store::Entry {
                    key: key.clone(),
                    value: value.clone(),
                }),
                StoreWrite::Delete(key) => local_store::WriteOp::Delete(key.clone()),
            })
            .collect();
        local_store::apply(&writes)
    }

    pub fn log(level: logging::Level, message: &str) {
        logging::log(level, message)
    }

    pub fn chain_request(
        chain_id: u64,
        method: &str,
        params: &str,
    ) -> Result<String, chain::ChainError> {
        chain::request(chain_id, method, params)
    }

    pub fn chain_request_batch(
        chain_id: u64,
        requests: &[chain::RpcRequest],
    ) -> Result<Vec<Result<String, chain::ChainError>>, chain::ChainError> {
        chain::request_batch(chain_id, requests)
    }

    // Used by `cow`, which is behind the `cow` feature.
    #[cfg_attr(not(feature = "cow"), allow(dead_code))]
    pub fn cow_request(
        chain_id: u64,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, cow_api::CowApiError> {
        cow_api::request(chain_id, method, path, body)
    }

    // Used by `cow`, which is behind the `cow` feature.
    #[cfg_attr(not(feature = "cow"), allow(dead_code))]
    pub fn cow_submit_order(chain_id: u64, order: &[u8]) -> Result<String, cow_api::CowApiError> {
        cow_api::submit_order(chain_id, order)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use crate::Fault;
    use crate::bindings::nexum::cow::cow_api::CowApiError;
    use crate::bindings::nexum::host::chain::{ChainError, RpcRequest};
    use crate::bindings::nexum::host::logging::Level;
    use crate::store::{Page, StoreWrite};
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

    pub fn store_page(prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, Fault> {
        with_host(|h| h.store_page(prefix, after, limit))
    }

    pub fn store_count(prefix: &str) -> Result<u64, Fault> {
        with_host(|h| h.store_count(prefix))
    }

    pub fn store_contains(key: &str) -> Result<bool, Fault> {
        with_host(|h| h.store_value_len(key)).map(|len| len.is_some())
    }

    pub fn store_value_len(key: &str) -> Result<Option<u64>, Fault> {
        with_host(|h| h.store_value_len(key))
    }

    pub fn store_apply(writes: &[StoreWrite]) -> Result<(), Fault> {
        with_host(|h| h.store_apply(writes))
    }

    pub fn log(level: Level, message: &str) {
        with_host(|h| h.log(level, message))
    }

    pub fn chain_request(chain_id: u64, method: &str, params: &str) -> Result<String, ChainError> {
        with_host(|h| h.chain_request(chain_id, method, params))
    }

    pub fn chain_request_batch(
        chain_id: u64,
        requests: &[RpcRequest],
    ) -> Result<Vec<Result<String, ChainError>>, ChainError> {
        with_host(|h| h.chain_request_batch(chain_id, requests))
    }

    // Used by `cow`, which is behind the `cow` feature.
    #[cfg_attr(not(feature = "cow"), allow(dead_code))]
    pub fn cow_request(
        chain_id: u64,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, CowApiError> {
        with_host(|h| h.cow_request(chain_id, method, path, body))
    }

    // Used by `cow`, which is behind the `cow` feature.
    #[cfg_attr(not(feature = "cow"), allow(dead_code))]
    pub fn cow_submit_order(chain_id: u64, order: &[u8]) -> Result<String, CowApiError> {
        with_host(|h| h.cow_submit_order(chain_id, order))
    }
}

pub(crate) use imp::*;

//! The one place the SDK's helpers reach the host: the real imports inside wasm, the
//! in-memory [`testing`](crate::testing) host in native builds.

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::Fault;
    use crate::bindings::nexum::cow::cow_api;
    use crate::bindings::nexum::host::{chain, local_store, logging};

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

    pub fn cow_request(
        chain_id: u64,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, cow_api::CowApiError> {
        cow_api::request(chain_id, method, path, body)
    }

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

    pub fn chain_request(chain_id: u64, method: &str, params: &str) -> Result<String, ChainError> {
        with_host(|h| h.chain_request(chain_id, method, params))
    }

    pub fn chain_request_batch(
        chain_id: u64,
        requests: &[RpcRequest],
    ) -> Result<Vec<Result<String, ChainError>>, ChainError> {
        with_host(|h| h.chain_request_batch(chain_id, requests))
    }

    pub fn cow_request(
        chain_id: u64,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, CowApiError> {
        with_host(|h| h.cow_request(chain_id, method, path, body))
    }

    pub fn cow_submit_order(chain_id: u64, order: &[u8]) -> Result<String, CowApiError> {
        with_host(|h| h.cow_submit_order(chain_id, order))
    }
}

pub(crate) use imp::*;

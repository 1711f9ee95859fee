//! WIT glue for `nexum:cow/cow-api`.

use crate::bindings::cow_api::{self, CowApiError, Host};
use crate::bindings::types::{ChainId, Fault};
use crate::state::ModuleState;
use wasmtime::component::{HasData, Linker};

/// Marker tying the `cow-api` bindings to the module state.
pub(crate) struct CowApi;

impl HasData for CowApi {
    type Data<'a> = CowApiCtx;
}

/// What `cow-api` calls work on.
pub(crate) struct CowApiCtx;

fn not_configured(chain_id: ChainId) -> CowApiError {
    CowApiError::Fault(Fault::Unsupported(format!(
        "cow-api on chain {chain_id}: no orderbook configured; add [chains.{chain_id}] with an orderbook_url to engine.toml"
    )))
}

impl Host for CowApiCtx {
    async fn request(
        &mut self,
        chain_id: ChainId,
        _method: String,
        _path: String,
        _body: Option<String>,
    ) -> Result<String, CowApiError> {
        Err(not_configured(chain_id))
    }

    async fn submit_order(
        &mut self,
        chain_id: ChainId,
        _order: Vec<u8>,
    ) -> Result<String, CowApiError> {
        Err(not_configured(chain_id))
    }
}

/// Adds `nexum:cow/cow-api` to `linker`.
pub(crate) fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    cow_api::add_to_linker::<ModuleState, CowApi>(linker, |_| CowApiCtx)
}

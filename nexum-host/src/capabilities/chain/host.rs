//! WIT glue for `nexum:host/chain`.

use crate::bindings::chain::{self, ChainError, Host, RpcRequest};
use crate::bindings::types::{ChainId, Fault};
use crate::state::ModuleState;
use wasmtime::component::{HasData, Linker};

/// Marker tying the `chain` bindings to the module state.
pub(crate) struct Chain;

impl HasData for Chain {
    type Data<'a> = ChainCtx;
}

/// What `chain` calls work on.
pub(crate) struct ChainCtx;

fn not_configured(chain_id: ChainId) -> ChainError {
    ChainError::Fault(Fault::Unsupported(format!(
        "chain {chain_id}: no RPC configured; add [chains.{chain_id}] with an rpc_url to engine.toml"
    )))
}

impl Host for ChainCtx {
    async fn request(
        &mut self,
        chain_id: ChainId,
        _method: String,
        _params: String,
    ) -> Result<String, ChainError> {
        Err(not_configured(chain_id))
    }

    async fn request_batch(
        &mut self,
        chain_id: ChainId,
        _requests: Vec<RpcRequest>,
    ) -> Result<Vec<Result<String, ChainError>>, ChainError> {
        Err(not_configured(chain_id))
    }
}

/// Adds `nexum:host/chain` to `linker`.
pub(crate) fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    chain::add_to_linker::<ModuleState, Chain>(linker, |_| ChainCtx)
}

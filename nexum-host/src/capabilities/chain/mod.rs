//! `chain`: read-only JSON-RPC against the chains a module declared.
//!
//! The backend ([`ChainAccess`]) checks the chain and the method, validates params and
//! forwards raw JSON through the provider pool; the glue maps every failure to the WIT
//! `chain-error` in one place.

mod backend;
mod host;

pub(crate) use backend::ChainAccess;

use super::{EngineContext, Factor, ModuleContext};
use crate::boot::BootError;
use crate::chain::ChainPool;
use crate::state::ModuleState;
use std::sync::Arc;
use wasmtime::component::Linker;

/// `chain` for the engine: the provider pool, shared with the chain sources.
pub(crate) struct ChainFactor {
    pool: Arc<ChainPool>,
}

impl Factor for ChainFactor {
    type Module = ChainAccess;

    fn configure(engine: &EngineContext<'_>) -> Result<Self, BootError> {
        Ok(Self {
            pool: engine.chains.clone(),
        })
    }

    fn for_module(&self, module: &ModuleContext<'_>) -> Result<ChainAccess, BootError> {
        Ok(ChainAccess::new(
            self.pool.clone(),
            module.manifest.chains(),
            module.limits,
        ))
    }

    fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
        host::link(linker)
    }
}

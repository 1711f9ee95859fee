//! `local-store`: each module's private, persistent key-value store.
//!
//! A module's keys live in its own space of the engine's [`Ledger`](crate::ledger::Ledger),
//! which no other module reaches, nor the engine's records. Writes made during one call are
//! held in a `WriteSet` (`nexum_core::host_rules::store`) and committed in one atomic batch
//! when the call returns `ok` — together with the engine's records for that call — or
//! dropped when it fails.

mod backend;
mod host;

pub(crate) use backend::ModuleStore;
pub(crate) use host::LocalStoreCtx;

use super::{EngineContext, Factor, ModuleContext};
use crate::boot::BootError;
use crate::ledger::Ledger;
use crate::state::ModuleState;
use wasmtime::component::Linker;

/// `local-store` for the engine: the ledger every module store is a view of.
pub(crate) struct StoreFactor {
    ledger: Ledger,
    dir: String,
}

impl Factor for StoreFactor {
    type Module = ModuleStore;

    fn configure(engine: &EngineContext<'_>) -> Result<Self, BootError> {
        Ok(Self {
            ledger: engine.ledger.clone(),
            dir: engine.config.state_dir.display().to_string(),
        })
    }

    fn for_module(&self, module: &ModuleContext<'_>) -> Result<ModuleStore, BootError> {
        ModuleStore::open(&self.ledger, &module.manifest.name, module.limits).map_err(|error| {
            BootError::Store {
                dir: self.dir.clone(),
                error,
            }
        })
    }

    fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
        host::link(linker)
    }
}

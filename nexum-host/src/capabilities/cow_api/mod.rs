//! `cow-api`: the CoW Protocol orderbook, through the `cowprotocol` crate.
//!
//! - the methods and paths a module may use are `nexum_core::host_rules::orderbook`;
//! - [`transport`]: cowprotocol's `HttpTransport` over reqwest, keeping `Retry-After`;
//! - [`backend`]: one orderbook per chain (the crate's deployment, or `orderbook_url`),
//!   generic requests, order submission with validation, and dry runs;
//! - [`host`]: the WIT glue and the one mapping of failures to `cow-api-error`.

mod backend;
mod host;
mod transport;

pub(crate) use backend::CowAccess;

use super::{EngineContext, Factor, ModuleContext};
use crate::boot::BootError;
use crate::state::ModuleState;
use backend::Orderbooks;
use std::sync::Arc;
use wasmtime::component::Linker;

/// `cow-api` for the engine: one orderbook per configured chain.
pub(crate) struct CowFactor {
    orderbooks: Arc<Orderbooks>,
}

impl Factor for CowFactor {
    type Module = CowAccess;

    fn configure(engine: &EngineContext<'_>) -> Result<Self, BootError> {
        Ok(Self {
            orderbooks: Arc::new(Orderbooks::configure(engine.config)),
        })
    }

    fn for_module(&self, module: &ModuleContext<'_>) -> Result<CowAccess, BootError> {
        Ok(CowAccess::new(
            self.orderbooks.clone(),
            module.manifest.name.as_str(),
            module.manifest.chains(),
            module.limits,
        ))
    }

    fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
        host::link(linker)
    }
}

//! The host capabilities a module can import, one module each, all shaped the same way
//! ([`Factor`]), so a fifth is obvious from the first four:
//!
//! 1. **configure**: build its engine-wide part from the engine's context — the ledger, the
//!    chain pool, the engine config, the observers ([`EngineContext`]);
//! 2. **per module**: derive what one module may reach (its keyspace, its logger, its
//!    declared chains) ([`ModuleContext`]);
//! 3. **link**: add its WIT interface to the shared linker.
//!
//! Each capability keeps its backend (`backend.rs`) apart from its WIT glue (`host.rs`),
//! and maps backend errors to WIT faults in one place. Adding one means: a module here, a
//! field in [`Factors`] and [`ModuleCapabilities`], and a line in [`link_all`].

pub(crate) mod chain;
pub(crate) mod cow_api;
pub(crate) mod local_store;
pub(crate) mod logging;

use crate::boot::BootError;
use crate::chain::ChainPool;
use crate::ledger::Ledger;
use crate::observers::Observers;
use crate::state::ModuleState;
use nexum_core::{EngineConfig, Limits, ModuleManifest};
use std::sync::Arc;
use wasmtime::component::Linker;

/// What a capability is configured from, once per engine.
pub(crate) struct EngineContext<'a> {
    pub config: &'a EngineConfig,
    pub ledger: &'a Ledger,
    pub chains: &'a Arc<ChainPool>,
    pub observers: &'a Observers,
}

/// The module a capability is scoped to.
pub(crate) struct ModuleContext<'a> {
    pub manifest: &'a ModuleManifest,
    pub limits: &'a Limits,
}

/// One host capability: configured once, scoped per module, linked once.
pub(crate) trait Factor: Sized {
    /// What one module may reach through this capability (cloned into each instance).
    type Module: Clone + Send + Sync + 'static;

    /// The capability's engine-wide part.
    fn configure(engine: &EngineContext<'_>) -> Result<Self, BootError>;

    /// What `module` may reach.
    fn for_module(&self, module: &ModuleContext<'_>) -> Result<Self::Module, BootError>;

    /// Adds the capability's WIT interface to the linker.
    fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()>;
}

/// Every capability's engine-wide part.
pub(crate) struct Factors {
    logging: logging::LoggingFactor,
    store: local_store::StoreFactor,
    chain: chain::ChainFactor,
    cow: cow_api::CowFactor,
}

/// What one module may reach through each capability; cloned into each fresh instance.
#[derive(Clone)]
pub(crate) struct ModuleCapabilities {
    pub logger: <logging::LoggingFactor as Factor>::Module,
    pub store: <local_store::StoreFactor as Factor>::Module,
    pub chain: <chain::ChainFactor as Factor>::Module,
    pub cow: <cow_api::CowFactor as Factor>::Module,
}

impl Factors {
    pub fn configure(engine: &EngineContext<'_>) -> Result<Self, BootError> {
        Ok(Self {
            logging: Factor::configure(engine)?,
            store: Factor::configure(engine)?,
            chain: Factor::configure(engine)?,
            cow: Factor::configure(engine)?,
        })
    }

    pub fn for_module(&self, module: &ModuleContext<'_>) -> Result<ModuleCapabilities, BootError> {
        Ok(ModuleCapabilities {
            logger: self.logging.for_module(module)?,
            store: self.store.for_module(module)?,
            chain: self.chain.for_module(module)?,
            cow: self.cow.for_module(module)?,
        })
    }
}

/// Adds every capability's WIT interface to `linker`.
pub(crate) fn link_all(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    logging::LoggingFactor::link(linker)?;
    local_store::StoreFactor::link(linker)?;
    chain::ChainFactor::link(linker)?;
    cow_api::CowFactor::link(linker)
}

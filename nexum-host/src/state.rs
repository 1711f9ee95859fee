//! [`ModuleState`]: the data inside one module's wasmtime `Store`.

use crate::bindings;
use crate::capabilities::chain::ChainAccess;
use crate::capabilities::cow_api::CowAccess;
use crate::capabilities::local_store::{LocalStoreCtx, ModuleStore, PendingWrites};
use crate::capabilities::logging::{ModuleLogger, ModuleOutput};
use crate::module::ModuleLimiter;
use nexum_core::Limits;
use std::time::Instant;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// What one module may reach through its capabilities; cloned into each fresh instance.
#[derive(Clone)]
pub(crate) struct ModuleCapabilities {
    pub logger: ModuleLogger,
    pub store: ModuleStore,
    pub chain: ChainAccess,
    pub cow: CowAccess,
}

/// Everything one module instance can reach, plus the bookkeeping of its current call.
pub struct ModuleState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: ModuleLimiter,
    pub(crate) logger: ModuleLogger,
    store: ModuleStore,
    pub(crate) chain: ChainAccess,
    pub(crate) cow: CowAccess,
    pending: PendingWrites,
    /// When the current call must stop; checked on every epoch tick.
    pub(crate) deadline: Instant,
}

impl ModuleState {
    pub(crate) fn new(capabilities: ModuleCapabilities, limits: &Limits) -> Self {
        let ModuleCapabilities {
            logger,
            store,
            chain,
            cow,
        } = capabilities;
        // WASI with nothing granted: no files, no environment, no arguments, no sockets.
        // Clocks and randomness work; stdout and stderr become log lines.
        let wasi = WasiCtxBuilder::new()
            .stdout(ModuleOutput::stdout(logger.clone()))
            .stderr(ModuleOutput::stderr(logger.clone()))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let memory = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
        Self {
            wasi,
            table: ResourceTable::new(),
            limits: ModuleLimiter::new(memory),
            logger,
            store,
            chain,
            cow,
            pending: PendingWrites::default(),
            deadline: Instant::now(),
        }
    }

    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
    }

    /// Starts a call: no pending writes yet.
    pub(crate) fn begin_call(&mut self, deadline: Instant) {
        self.pending = PendingWrites::default();
        self.deadline = deadline;
    }

    /// Ends a call, handing back the writes it made.
    pub(crate) fn take_writes(&mut self) -> PendingWrites {
        std::mem::take(&mut self.pending)
    }

    pub(crate) fn module_store(&self) -> &ModuleStore {
        &self.store
    }

    pub(crate) fn local_store(&mut self) -> LocalStoreCtx<'_> {
        LocalStoreCtx {
            store: &self.store,
            pending: &mut self.pending,
        }
    }
}

impl ModuleState {
    /// The name of the module this state belongs to (for extensions serving several
    /// modules).
    pub fn module_name(&self) -> &str {
        self.logger.module()
    }
}

impl WasiView for ModuleState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// `nexum:host/types` has no functions; this satisfies its (empty) host trait.
impl bindings::types::Host for ModuleState {}

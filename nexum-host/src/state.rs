//! [`ModuleState`]: the data inside one module's wasmtime `Store`.

use crate::bindings;
use crate::capabilities::ModuleCapabilities;
use crate::capabilities::chain::ChainAccess;
use crate::capabilities::cow_api::CowAccess;
use crate::capabilities::local_store::{LocalStoreCtx, ModuleStore};
use crate::capabilities::logging::{ModuleLogger, ModuleOutput};
use crate::extension::HostExtension;
use crate::module::ModuleLimiter;
use nexum_core::Limits;
use nexum_core::host_rules::store::WriteSet;
use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Host resources (WASI streams, pollables…) one instance may hold at once.
const MAX_RESOURCES: usize = 10_000;
/// Largest `wasi:random` request.
const MAX_RANDOM_BYTES: u64 = 1024 * 1024;

/// Everything one module instance can reach, plus the bookkeeping of its current call.
pub struct ModuleState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: ModuleLimiter,
    pub(crate) logger: ModuleLogger,
    store: ModuleStore,
    pub(crate) chain: ChainAccess,
    pub(crate) cow: CowAccess,
    pending: WriteSet,
    /// When the current call must stop; checked whenever the engine's epoch advances.
    pub(crate) deadline: Instant,
    /// The current call's whole time, up to `deadline`.
    budget: Duration,
    /// What each embedder extension keeps for this instance.
    extensions: Vec<Box<dyn Any + Send>>,
}

impl ModuleState {
    pub(crate) fn new(
        capabilities: ModuleCapabilities,
        limits: &Limits,
        extensions: &[Arc<dyn HostExtension>],
    ) -> Self {
        let ModuleCapabilities {
            logger,
            store,
            chain,
            cow,
        } = capabilities;
        let extensions = extensions
            .iter()
            .filter_map(|e| e.module_state(logger.module()))
            .collect();
        // WASI with nothing granted: no files, no environment, no arguments, no sockets.
        // Clocks and randomness work; stdout and stderr become log lines.
        let wasi = WasiCtxBuilder::new()
            .stdout(ModuleOutput::stdout(logger.clone()))
            .stderr(ModuleOutput::stderr(logger.clone()))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let memory = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
        // Host-side resources (WASI streams, pollables) live outside the module's memory.
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Self {
            wasi,
            table,
            limits: ModuleLimiter::new(memory),
            logger,
            store,
            chain,
            cow,
            pending: WriteSet::default(),
            deadline: Instant::now(),
            budget: Duration::ZERO,
            extensions,
        }
    }

    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
    }

    /// Starts a call that must end by `deadline`, `budget` from now: no pending writes yet.
    /// The caller has just read the clock to set the deadline, so it passes both.
    pub(crate) fn begin_call(&mut self, deadline: Instant, budget: Duration) {
        self.pending = WriteSet::default();
        self.deadline = deadline;
        self.budget = budget;
    }

    /// Ends a call, handing back the writes it made.
    pub(crate) fn take_writes(&mut self) -> WriteSet {
        std::mem::take(&mut self.pending)
    }

    pub(crate) fn module_store(&self) -> &ModuleStore {
        &self.store
    }

    pub(crate) fn local_store(&mut self) -> LocalStoreCtx<'_> {
        LocalStoreCtx {
            store: &self.store,
            pending: &mut self.pending,
            deadline: self.deadline,
            budget: self.budget,
        }
    }
}

impl ModuleState {
    /// The name of the module this state belongs to (for extensions serving several
    /// modules).
    pub fn module_name(&self) -> &str {
        self.logger.module()
    }

    /// The state an extension made for this instance ([`HostExtension::module_state`]),
    /// found by its type: give each extension a state type of its own (a newtype), or two
    /// extensions would find the first one's state.
    pub fn extension_state<T: Any>(&mut self) -> Option<&mut T> {
        self.extensions
            .iter_mut()
            .find_map(|state| state.downcast_mut::<T>())
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

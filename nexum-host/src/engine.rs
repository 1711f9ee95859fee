//! The process-wide wasmtime engine, its epoch clock and the linker shared by all modules.

use crate::bindings::types;
use crate::capabilities;
use crate::extension::HostExtension;
use crate::state::ModuleState;
use nexum_core::Compiler;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Strategy};

/// How often running guests are interrupted to yield to the executor and check their
/// deadline. Short enough that a spinning module cannot hold a worker thread for long.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// One wasmtime `Engine` per process and the `Linker` every module is instantiated from.
pub(crate) struct WasmEngine {
    pub engine: Engine,
    pub linker: Linker<ModuleState>,
    /// Interfaces embedders' extensions provide (imports of these are allowed).
    pub extension_interfaces: Vec<String>,
    /// The extensions themselves, which give each instance its state.
    pub extensions: Vec<Arc<dyn HostExtension>>,
    ticker: EpochTicker,
}

/// Why the wasm engine could not be built.
#[derive(Debug, thiserror::Error)]
#[error("wasm engine: {0}")]
pub struct EngineError(String);

impl WasmEngine {
    /// The engine, compiling with `compiler`, with `extensions` linked beside nexum's own
    /// capabilities.
    pub fn new(
        extensions: &[Arc<dyn HostExtension>],
        compiler: Compiler,
    ) -> Result<Self, EngineError> {
        let mut config = Config::new();
        config.strategy(match compiler {
            Compiler::Cranelift => Strategy::Cranelift,
            Compiler::Winch => Strategy::Winch,
        });
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            // Proposals a keeper does not need and whose limits are harder to reason about:
            // 64-bit memories and tables, shared memories, custom page sizes.
            .wasm_memory64(false)
            .wasm_threads(false)
            .wasm_shared_everything_threads(false)
            .wasm_custom_page_sizes(false);
        let engine = Engine::new(&config).map_err(|e| EngineError(e.to_string()))?;
        let mut linker = build_linker(&engine).map_err(|e| EngineError(e.to_string()))?;
        let mut extension_interfaces = Vec::new();
        for extension in extensions {
            extension
                .link(&mut linker)
                .map_err(|e| EngineError(format!("linking an extension: {e:#}")))?;
            for interface in extension.interfaces() {
                // Compared with imports without their version, like the loader does.
                let interface = interface.split('@').next().unwrap_or_default().to_string();
                if interface.starts_with("nexum:") || interface.starts_with("wasi:") {
                    // Claiming one would let modules import it without declaring it.
                    return Err(EngineError(format!(
                        "an extension claims `{interface}`, which nexum provides itself"
                    )));
                }
                extension_interfaces.push(interface);
            }
        }
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            extension_interfaces,
            extensions: extensions.to_vec(),
            ticker,
        })
    }

    /// What every guest call registers with while it runs, so the epoch advances for it.
    pub fn calls_in_flight(&self) -> Arc<CallsInFlight> {
        self.ticker.calls.clone()
    }

    /// Compiles a component from its binary form. wasmtime would also take the text format
    /// (whose parse errors span many lines) and report a core module as a parse error; both
    /// are refused first with one line that says what the file is.
    pub fn compile(&self, bytes: &[u8]) -> wasmtime::Result<Component> {
        const MAGIC: &[u8] = b"\0asm";
        /// Bytes 4..8 of a core module: version 1, layer 0.
        const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
        if bytes.len() < 8 || &bytes[..4] != MAGIC {
            wasmtime::bail!(
                "not a WebAssembly binary (components are loaded in binary form only; build for wasm32-wasip2)"
            );
        }
        if bytes[4..8] == CORE_MODULE {
            wasmtime::bail!(
                "a core WebAssembly module, not a component (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)"
            );
        }
        Component::new(&self.engine, bytes)
    }
}

fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<ModuleState>> {
    let mut linker = Linker::new(engine);
    // The whole WASI p2 surface, inert (see `ModuleState::new`): guests built by other
    // toolchains import all of it even when they use none.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    types::add_to_linker::<ModuleState, HasSelf<ModuleState>>(&mut linker, |state| state)?;
    capabilities::link_all(&mut linker)?;
    Ok(linker)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a small thread of its own, while
/// some guest code runs: an idle engine (most of a keeper's life) does not wake every tick.
struct EpochTicker {
    calls: Arc<CallsInFlight>,
}

/// How many guest calls are running; the epoch thread sleeps while there are none.
#[derive(Default)]
pub(crate) struct CallsInFlight {
    state: Mutex<Calls>,
    changed: Condvar,
}

#[derive(Default)]
struct Calls {
    running: usize,
    /// The epoch thread waits for a call (only then does a call need to wake it).
    parked: bool,
    stopped: bool,
}

impl CallsInFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a call as running until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> RunningCall {
        let mut calls = self.lock();
        calls.running += 1;
        if calls.parked {
            calls.parked = false;
            self.changed.notify_one();
        }
        RunningCall(self.clone())
    }
}

/// A guest call in flight (see [`CallsInFlight::enter`]).
pub(crate) struct RunningCall(Arc<CallsInFlight>);

impl Drop for RunningCall {
    fn drop(&mut self) {
        self.0.lock().running -= 1;
    }
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let calls = Arc::new(CallsInFlight::default());
        let watched = calls.clone();
        std::thread::Builder::new()
            .name("nexum-epoch".into())
            .spawn(move || {
                loop {
                    {
                        let mut state = watched.lock();
                        while state.running == 0 && !state.stopped {
                            state.parked = true;
                            state = watched
                                .changed
                                .wait(state)
                                .unwrap_or_else(|p| p.into_inner());
                        }
                        if state.stopped {
                            return;
                        }
                    }
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self { calls }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        let mut calls = self.calls.lock();
        calls.stopped = true;
        self.calls.changed.notify_one();
    }
}

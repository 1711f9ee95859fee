//! The process-wide wasmtime engine and the linker shared by all modules.

use crate::bindings::types;
use crate::capabilities;
use crate::extension::HostExtension;
use crate::state::ModuleState;
use nexum_core::Compiler;
use std::sync::Arc;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Strategy};

/// How much fuel a guest burns between yields to the executor (about a millisecond of
/// guest code): a spinning module cannot hold a worker thread for long, and its call's
/// deadline (a timer around the call) is checked at every yield. Counted in the guest
/// itself, so no clock thread has to wake for every call.
pub(crate) const FUEL_PER_SLICE: u64 = 1_000_000;

/// One wasmtime `Engine` per process and the `Linker` every module is instantiated from.
pub(crate) struct WasmEngine {
    pub engine: Engine,
    pub linker: Linker<ModuleState>,
    /// Interfaces embedders' extensions provide (imports of these are allowed).
    pub extension_interfaces: Vec<String>,
    /// The extensions themselves, which give each instance its state.
    pub extensions: Vec<Arc<dyn HostExtension>>,
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
        Ok(Self {
            engine,
            linker,
            extension_interfaces,
            extensions: extensions.to_vec(),
        })
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

//! The process-wide wasmtime engine, the watchdog that cuts calls at their deadline, and the
//! linker shared by all modules.

use crate::bindings::types;
use crate::capabilities;
use crate::extension::HostExtension;
use crate::state::ModuleState;
use nexum_core::Compiler;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Strategy};

/// How much fuel a guest burns between yields to the executor (about a millisecond of
/// ordinary guest code), so a spinning module lets other tasks run. Fuel counts
/// instructions, not time (one `memory.fill` of 64 MiB costs one unit), so deadlines are
/// the [`DeadlineWatchdog`]'s job, not this.
pub(crate) const FUEL_PER_SLICE: u64 = 1_000_000;

/// How often the epoch advances again while a call is past its deadline and still running
/// (inside a host call, or its guest saw the last advance a moment too early).
const OVERDUE_TICK: Duration = Duration::from_millis(5);

/// One wasmtime `Engine` per process and the `Linker` every module is instantiated from.
pub(crate) struct WasmEngine {
    pub engine: Engine,
    pub linker: Linker<ModuleState>,
    /// Interfaces embedders' extensions provide (imports of these are allowed).
    pub extension_interfaces: Vec<String>,
    /// The extensions themselves, which give each instance its state.
    pub extensions: Vec<Arc<dyn HostExtension>>,
    /// What `compile` compiles with (its errors say what Winch cannot compile).
    compiler: Compiler,
    watchdog: DeadlineWatchdog,
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
            .wasm_custom_page_sizes(false)
            // The component model's async ABI: no module needs it, and with it every call
            // runs through wasmtime's concurrent scheduler, whose completion wakes the
            // calling task from inside its own poll (a cross-thread wake-up per event).
            .concurrency_support(false);
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
        let watchdog = DeadlineWatchdog::start(engine.clone())
            .map_err(|e| EngineError(format!("starting the deadline watchdog: {e}")))?;
        Ok(Self {
            engine,
            linker,
            extension_interfaces,
            extensions: extensions.to_vec(),
            compiler,
            watchdog,
        })
    }

    /// Where calls register their deadline with the watchdog.
    pub fn deadlines(&self) -> DeadlineWatch {
        DeadlineWatch(self.watchdog.deadlines.clone())
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
        let compile = || Component::new(&self.engine, bytes);
        // A caller already on a rayon pool (an embedder's) compiles on that pool.
        let pool = rayon::current_thread_index()
            .is_none()
            .then(compile_pool)
            .flatten();
        let compiled = match pool {
            Some(pool) => pool.install(compile),
            None => compile(),
        };
        compiled.map_err(|e| {
            // wasmparser's wording for every async ABI refusal; a unit test notices a change.
            if format!("{e:#}").contains("component model async feature") {
                e.context("the component uses the component model's async ABI, which nexum does not run (build it without async exports or imports)")
            } else if self.compiler == Compiler::Winch && winch_cannot_compile(&e) {
                e.context("Winch (the default compiler on x86-64) does not compile what this component uses: WebAssembly tail calls, exceptions, GC types, function references, relaxed SIMD, or SIMD on a CPU without AVX; Cranelift does (`[engine] compiler = \"cranelift\"`)")
            } else {
                e
            }
        })
    }
}

/// Whether `error` is Winch refusing what Cranelift would compile: a proposal wasmtime turns
/// off for Winch, or an instruction Winch has no code for. Judged by wasmparser's and
/// Winch's wording (a unit test notices a change); a malformed component, or a proposal
/// nexum turns off for both compilers (64-bit memories, threads), gets no hint.
pub(crate) fn winch_cannot_compile(error: &wasmtime::Error) -> bool {
    const REFUSALS: [&str; 14] = [
        "tail calls support is not enabled",
        "exceptions proposal not enabled",
        "exceptions support is not enabled",
        "gc types are disallowed",
        "gc support is not enabled",
        "without the gc feature",
        "function references required",
        "function references support is not enabled",
        "relaxed simd support is not enabled",
        "unsupported wasm type",
        "unimplemented wasm instruction",
        "unimplemented masm instruction",
        "not implemented for cpus without avx",
        "unsupported eager initialization of tables",
    ];
    let text = format!("{error:#}").to_lowercase();
    // The legacy exceptions proposal is off for both compilers (wasmparser names it
    // "legacy exceptions support", which would match "exceptions support" above).
    !text.contains("legacy exceptions") && REFUSALS.iter().any(|refusal| text.contains(refusal))
}

/// The threads wasmtime spreads a component's functions over, alive only while some
/// compilation runs. Left to itself wasmtime uses rayon's global pool, whose threads (one
/// per core) then idle for the rest of the process's life once boot has compiled.
/// Compilations at the same time share one pool; the last to finish lets it go. `None`
/// when no thread could be started: rayon's global pool then compiles.
fn compile_pool() -> Option<Arc<rayon::ThreadPool>> {
    static POOL: Mutex<Weak<rayon::ThreadPool>> = Mutex::new(Weak::new());
    let mut shared = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pool) = shared.upgrade() {
        return Some(pool);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("nexum-compile-{i}"))
        .build()
        .ok()
        .map(Arc::new)?;
    *shared = Arc::downgrade(&pool);
    Some(pool)
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

/// Cuts guest calls that outlive their deadline. Each call registers its deadline; one
/// thread sleeps until the earliest and then advances the engine's epoch, which makes every
/// running guest check its own deadline at its next loop header or function entry (the
/// instance's epoch callback): the overdue call traps, the others carry on. Until an overdue
/// call ends, the epoch advances again every [`OVERDUE_TICK`], so no single advance has to
/// land at the right moment. A call wakes the thread only when its deadline comes before
/// the one the thread already sleeps towards: with one timeout for all calls, that is the
/// first call after an idle spell, not every call (a clock that ticked while calls ran cost
/// two context switches each).
struct DeadlineWatchdog {
    deadlines: Arc<Deadlines>,
}

/// The deadlines of the calls in flight, shared with the watchdog thread.
#[derive(Default)]
struct Deadlines {
    state: Mutex<Pending>,
    changed: Condvar,
}

#[derive(Default)]
struct Pending {
    /// Deadlines not yet reached, by call id. The calls in flight are a handful: a vector
    /// keeps its room and is scanned in place, where an ordered set walked and rebalanced
    /// its nodes on every call's watch and end (and the watchdog, which wants the earliest,
    /// runs rarely).
    calls: Vec<(u64, Instant)>,
    /// Calls past their deadline that have not ended yet, by id.
    overdue: Vec<u64>,
    next_id: u64,
    /// When the thread wakes next (`None`: it waits for a call).
    wake_at: Option<Instant>,
    stopped: bool,
}

impl Deadlines {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn watch(self: &Arc<Self>, deadline: Instant) -> WatchedCall {
        let mut pending = self.lock();
        let id = pending.next_id;
        pending.next_id += 1;
        pending.calls.push((id, deadline));
        if pending.wake_at.is_none_or(|wake| deadline < wake) {
            pending.wake_at = Some(deadline);
            self.changed.notify_one();
        }
        WatchedCall {
            deadlines: self.clone(),
            id,
        }
    }
}

/// A handle on the watchdog for one instance's calls.
#[derive(Clone)]
pub(crate) struct DeadlineWatch(Arc<Deadlines>);

impl DeadlineWatch {
    /// Watches a call that must end by `deadline`, until the returned guard is dropped.
    pub fn watch(&self, deadline: Instant) -> WatchedCall {
        self.0.watch(deadline)
    }
}

/// A call in flight (see [`DeadlineWatch::watch`]); dropping it ends the watch.
pub(crate) struct WatchedCall {
    deadlines: Arc<Deadlines>,
    id: u64,
}

impl Drop for WatchedCall {
    fn drop(&mut self) {
        // The thread is not woken: it finds the deadline gone when it wakes.
        let mut pending = self.deadlines.lock();
        // Searched from the end: the call that ends is most often the last one watched.
        if let Some(at) = pending.calls.iter().rposition(|&(id, _)| id == self.id) {
            pending.calls.swap_remove(at);
        } else if let Some(at) = pending.overdue.iter().position(|&id| id == self.id) {
            pending.overdue.swap_remove(at);
        }
    }
}

impl DeadlineWatchdog {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let deadlines = Arc::new(Deadlines::default());
        let watched = deadlines.clone();
        std::thread::Builder::new()
            .name("nexum-deadline".into())
            .spawn(move || watch_deadlines(&watched, &engine))?;
        Ok(Self { deadlines })
    }
}

/// The watchdog thread: sleeps until the earliest deadline, then advances the epoch, again
/// every [`OVERDUE_TICK`] while some call past its deadline is still running.
fn watch_deadlines(deadlines: &Deadlines, engine: &Engine) {
    let mut pending = deadlines.lock();
    loop {
        if pending.stopped {
            return;
        }
        let now = Instant::now();
        let Pending { calls, overdue, .. } = &mut *pending;
        calls.retain(|&(id, deadline)| {
            let reached = deadline <= now;
            if reached {
                overdue.push(id);
            }
            !reached
        });
        if !pending.overdue.is_empty() {
            engine.increment_epoch();
        }
        let until_next = (pending.calls.iter())
            .map(|&(_, deadline)| deadline)
            .min()
            .map(|deadline| deadline - now);
        let sleep = match (pending.overdue.is_empty(), until_next) {
            (true, until_next) => until_next,
            (false, None) => Some(OVERDUE_TICK),
            (false, Some(until_next)) => Some(until_next.min(OVERDUE_TICK)),
        };
        pending.wake_at = sleep.map(|sleep| now + sleep);
        pending = match sleep {
            None => deadlines
                .changed
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner()),
            Some(sleep) => {
                deadlines
                    .changed
                    .wait_timeout(pending, sleep)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
}

impl Drop for DeadlineWatchdog {
    fn drop(&mut self) {
        self.deadlines.lock().stopped = true;
        self.deadlines.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::{Compiler, WasmEngine};
    use wasmtime::component::Component;

    /// A component using one of the async ABI's builtins.
    const ASYNC_ABI: &str = r#"
        (component
          (core module $m (import "" "backpressure.inc" (func)))
          (core func $inc (canon backpressure.inc))
          (core instance (instantiate $m (with "" (instance (export "backpressure.inc" (func $inc))))))
        )"#;

    #[test]
    fn components_using_the_async_abi_are_refused() {
        let binary = wat::parse_str(ASYNC_ABI).unwrap();
        let wasmtime_default = wasmtime::Engine::default();
        Component::new(&wasmtime_default, &binary).expect("valid with wasmtime's defaults");
        let nexum = WasmEngine::new(&[], Compiler::Cranelift).unwrap();
        let refused = format!("{:#}", nexum.compile(&binary).unwrap_err());
        assert!(
            refused.starts_with("the component uses the component model's async ABI"),
            "{refused}"
        );
        assert!(
            refused.contains("requires the component model async feature"),
            "{refused}"
        );
    }

    /// A component whose one function makes a tail call.
    const TAIL_CALL: &str = r#"
        (component
          (core module $m
            (func $f (result i32) (return_call $g))
            (func $g (result i32) i32.const 1)
            (export "f" (func $f))))"#;

    /// A component with a core module of 64-bit memory, which nexum turns off.
    const MEMORY64: &str = r#"
        (component
          (core module $m (memory i64 1)))"#;

    /// Components that use a proposal Winch does not compile (Winch runs on x86-64 only).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn what_winch_cannot_compile_names_the_compiler_that_can() {
        let cranelift = WasmEngine::new(&[], Compiler::Cranelift).unwrap();
        let winch = WasmEngine::new(&[], Compiler::Winch).unwrap();
        let exceptions = r#"(component (core module (tag $t) (func (throw $t))))"#;
        let gc = r#"(component (core module (func (param externref))))"#;
        let function_references = r#"(component (core module
            (type $f (func))
            (func (param (ref null $f)) (call_ref $f (local.get 0)))))"#;
        let relaxed_simd = r#"(component (core module
            (func (param v128) (result v128)
              (f32x4.relaxed_madd (local.get 0) (local.get 0) (local.get 0)))))"#;
        for (wat, cause) in [
            (TAIL_CALL, "tail calls support is not enabled"),
            (exceptions, "exceptions proposal not enabled"),
            (gc, "gc types are disallowed"),
            (function_references, "function references"),
            (relaxed_simd, "relaxed simd"),
        ] {
            let binary = wat::parse_str(wat).unwrap();
            cranelift.compile(&binary).expect("Cranelift compiles it");
            let refused = format!("{:#}", winch.compile(&binary).unwrap_err());
            assert!(
                refused.starts_with("Winch (the default compiler on x86-64) does not compile")
                    && refused.contains("compiler = \"cranelift\"")
                    && refused.to_lowercase().contains(cause),
                "{refused}"
            );
        }
    }

    /// What neither compiler takes is not blamed on Winch.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn what_no_compiler_takes_gets_no_winch_hint() {
        let cranelift = WasmEngine::new(&[], Compiler::Cranelift).unwrap();
        let winch = WasmEngine::new(&[], Compiler::Winch).unwrap();
        let mut truncated = wat::parse_str(TAIL_CALL).unwrap();
        truncated.truncate(truncated.len() - 3);
        let legacy_exceptions = r#"(component (core module (func try catch_all end)))"#;
        for binary in [
            wat::parse_str(MEMORY64).unwrap(),
            wat::parse_str(legacy_exceptions).unwrap(),
            truncated,
        ] {
            cranelift
                .compile(&binary)
                .expect_err("Cranelift refuses it too");
            let refused = format!("{:#}", winch.compile(&binary).unwrap_err());
            assert!(!refused.contains("Winch"), "{refused}");
        }
    }
}

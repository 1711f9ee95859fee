//! `logging`: a module's log lines, and its stdout/stderr, as `tracing` events.
//!
//! Every line carries the module's name in the `module` field, under the target
//! `nexum::module`, so operators can filter one module with `RUST_LOG`.

mod backend;
mod host;
mod stdio;

pub(crate) use backend::ModuleLogger;
pub(crate) use stdio::ModuleOutput;

use super::{EngineContext, Factor, ModuleContext};
use crate::boot::BootError;
use crate::state::ModuleState;
use nexum_core::LogLine;
use tokio::sync::broadcast;
use wasmtime::component::Linker;

/// `logging` for the engine: where module lines are published to watchers.
pub(crate) struct LoggingFactor {
    lines: broadcast::Sender<LogLine>,
}

impl Factor for LoggingFactor {
    type Module = ModuleLogger;

    fn configure(engine: &EngineContext<'_>) -> Result<Self, BootError> {
        Ok(Self {
            lines: engine.observers.log_line_sender(),
        })
    }

    fn for_module(&self, module: &ModuleContext<'_>) -> Result<ModuleLogger, BootError> {
        Ok(ModuleLogger::new(
            module.manifest.name.as_str(),
            module.limits,
            self.lines.clone(),
        ))
    }

    fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
        host::link(linker)
    }
}

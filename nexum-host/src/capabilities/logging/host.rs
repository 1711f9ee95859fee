//! WIT glue for `nexum:host/logging`.

use super::backend::{Level, ModuleLogger};
use crate::bindings::logging::{self, Host};
use crate::state::ModuleState;
use wasmtime::component::{HasData, Linker};

/// Marker tying the `logging` bindings to [`ModuleLogger`].
pub(crate) struct Logging;

impl HasData for Logging {
    type Data<'a> = &'a ModuleLogger;
}

impl Host for &ModuleLogger {
    fn log(&mut self, level: logging::Level, message: String) {
        let level = match level {
            logging::Level::Trace => Level::Trace,
            logging::Level::Debug => Level::Debug,
            logging::Level::Info => Level::Info,
            logging::Level::Warn => Level::Warn,
            logging::Level::Error => Level::Error,
        };
        self.emit(level, &message);
    }
}

/// Adds `nexum:host/logging` to `linker`.
pub(crate) fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    logging::add_to_linker::<ModuleState, Logging>(linker, |state| &state.logger)
}

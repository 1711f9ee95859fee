//! WIT glue for `nexum:host/logging`.

use super::backend::ModuleLogger;
use crate::bindings::logging::{self, Host};
use crate::state::ModuleState;
use nexum_core::LogLevel;
use wasmtime::component::{HasData, Linker};

/// Marker tying the `logging` bindings to [`ModuleLogger`].
pub(crate) struct Logging;

impl HasData for Logging {
    type Data<'a> = &'a ModuleLogger;
}

impl Host for &ModuleLogger {
    fn log(&mut self, level: logging::Level, message: String) {
        let level = match level {
            logging::Level::Trace => LogLevel::Trace,
            logging::Level::Debug => LogLevel::Debug,
            logging::Level::Info => LogLevel::Info,
            logging::Level::Warn => LogLevel::Warn,
            logging::Level::Error => LogLevel::Error,
        };
        self.emit(level, &message);
    }
}

/// Adds `nexum:host/logging` to `linker`.
pub(crate) fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    logging::add_to_linker::<ModuleState, Logging>(linker, |state| &state.logger)
}

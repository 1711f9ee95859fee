//! `logging`: a module's log lines, and its stdout/stderr, as `tracing` events.
//!
//! Every line carries the module's name in the `module` field, under the target
//! `nexum::module`, so operators can filter one module with `RUST_LOG`.

mod backend;
mod host;
mod stdio;

pub(crate) use backend::ModuleLogger;
pub(crate) use host::link;
pub(crate) use stdio::ModuleOutput;

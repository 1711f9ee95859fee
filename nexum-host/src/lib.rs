//! The nexum runtime as a library: runs keeper modules — WebAssembly components — on
//! events from EVM chains and cron schedules.
//!
//! - [`HostSupervisor`] implements [`nexum_core::Supervisor`]: one wasmtime engine, one
//!   store per module, a queue and worker task per module, limits, retries and restarts.
//! - [`capabilities`] holds the host interfaces a module can import (`local-store`,
//!   `logging`, `chain`, `cow-api`), each a backend plus its WIT glue.
//! - [`sources`] produces events (cron ticks) and hands them to a supervisor.
//! - [`Runtime`] wires a supervisor and its sources together; it is what the `nexum`
//!   command runs and what an embedding service should start from.
//!
//! Configuration types and events come from `nexum-core`, re-exported as [`core`].

mod bindings;
pub mod capabilities;
pub mod chain;
mod check;
mod convert;
mod engine;
mod inspect;
mod module;
mod records;
mod runtime;
pub mod sources;
mod state;
mod supervisor;
pub mod telemetry;

pub use check::{CheckReport, ModuleCheck, check};
pub use engine::EngineError;
pub use inspect::{ComponentReport, Import, InspectError, digest, inspect};
pub use module::LoadError;
pub use nexum_core as core;
pub use records::DeadLetter;
pub use runtime::{Runtime, RuntimeError};
pub use supervisor::{BootError, HostSupervisor};

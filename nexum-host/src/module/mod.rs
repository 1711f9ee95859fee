//! Modules: loading a component from its manifest, and running calls into one instance.

mod call_deadline;
mod compile_cache;
mod instance;
mod limiter;
mod loader;

pub(crate) use compile_cache::ComponentCache;
pub(crate) use instance::{CallError, CallResult, ModuleInstance, StartFailure};
pub(crate) use limiter::ModuleLimiter;
pub use loader::LoadError;
pub(crate) use loader::{LoadedModule, load};

//! The extension seam: an embedding service adds a host interface of its own (its own WIT
//! package) to every module's linker, without forking nexum.
//!
//! Generate host bindings for the interface with [`wasmtime::component::bindgen!`] (use the
//! [`wasmtime`] re-exported here, so versions always match), implement them, and link them
//! in [`HostExtension::link`]. Modules may then import the interfaces the extension names.
//! The host state of every module is a [`ModuleState`]; [`ModuleState::module_name`] tells
//! an implementation which module is calling, and [`ModuleState::extension_state`] gives it
//! the per-module state it made in [`HostExtension::module_state`] (a fresh one for each
//! instance, so a restarted module starts clean).

use crate::state::ModuleState;
use std::any::Any;
use wasmtime::component::Linker;

/// A host interface an embedding service provides to modules.
pub trait HostExtension: Send + Sync + 'static {
    /// The WIT interfaces it provides, without version (e.g. `acme:prices/oracle`). Modules
    /// importing them are accepted; any other unknown import is still refused at load.
    fn interfaces(&self) -> Vec<String>;

    /// Adds the interfaces to the linker every module is instantiated from. Host functions
    /// are plain or `async` ones (`func_wrap`, `func_wrap_async`, bindgen's `async`
    /// imports): modules run without the component model's async ABI, so concurrent host
    /// functions (`func_wrap_concurrent`, WIT `async func`, streams and futures) are
    /// refused when the engine starts.
    fn link(&self, linker: &mut Linker<ModuleState>) -> wasmtime::Result<()>;

    /// The state one instance of `module` keeps for this extension, if it keeps any
    /// (reached from host functions with [`ModuleState::extension_state`]).
    fn module_state(&self, module: &str) -> Option<Box<dyn Any + Send>> {
        let _ = module;
        None
    }
}

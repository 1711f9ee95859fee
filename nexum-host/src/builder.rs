//! [`RuntimeBuilder`]: what a Rust service uses to start nexum — an engine config (from
//! TOML or built in code), modules (from files, or bytes plus a manifest), extensions.

use crate::extension::HostExtension;
use crate::observers::Observers;
use crate::runtime::{Runtime, RuntimeError};
use nexum_core::{
    BootPlan, ConfigError, EngineConfig, LogLine, ModuleEvent, ModuleManifest, ModuleSpec,
    WasmSource,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Collects everything a [`Runtime`] needs, then starts it.
pub struct RuntimeBuilder {
    config: EngineConfig,
    modules: Vec<ModuleSpec>,
    extensions: Vec<Arc<dyn HostExtension>>,
    observers: Observers,
}

impl RuntimeBuilder {
    /// Starts from `config`. Its `[[modules]]` are not loaded; add modules with
    /// [`RuntimeBuilder::module_file`] / [`RuntimeBuilder::module_bytes`], or start from
    /// [`RuntimeBuilder::from_engine_toml`].
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            modules: Vec::new(),
            extensions: Vec::new(),
            observers: Observers::default(),
        }
    }

    /// Starts from an `engine.toml` file, with the modules it lists.
    pub fn from_engine_toml(path: &Path) -> Result<Self, ConfigError> {
        Self::from_engine_config(EngineConfig::load(path)?)
    }

    /// Starts from a parsed engine config, reading the manifests of the modules it lists.
    pub fn from_engine_config(config: EngineConfig) -> Result<Self, ConfigError> {
        let (plan, warnings) = BootPlan::from_config(&config)?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        Ok(Self {
            config: plan.config,
            modules: plan.modules,
            extensions: Vec::new(),
            observers: Observers::default(),
        })
    }

    /// Adds the module at `wasm`, described by the manifest at `manifest`.
    pub fn module_file(
        mut self,
        wasm: impl Into<PathBuf>,
        manifest: &Path,
    ) -> Result<Self, ConfigError> {
        let manifest = ModuleManifest::load(manifest)?;
        self.modules.push(ModuleSpec {
            wasm: WasmSource::File(wasm.into()),
            manifest,
            pin: None,
        });
        Ok(self)
    }

    /// Adds a module from its component bytes and its manifest's text (`module.toml`);
    /// `origin` names the manifest in error messages.
    pub fn module_bytes(
        mut self,
        wasm: Vec<u8>,
        manifest: &str,
        origin: &str,
    ) -> Result<Self, ConfigError> {
        let manifest = ModuleManifest::parse(Path::new(origin), manifest)?;
        self.modules.push(ModuleSpec {
            wasm: WasmSource::Bytes(wasm),
            manifest,
            pin: None,
        });
        Ok(self)
    }

    /// Adds a module as a whole [`ModuleSpec`]: its component, manifest and, where the
    /// config sets `require_pins`, the sha256 pin it must match.
    pub fn module(mut self, spec: ModuleSpec) -> Self {
        self.modules.push(spec);
        self
    }

    /// Links an extra host interface into every module's linker.
    pub fn extension(mut self, extension: impl HostExtension) -> Self {
        self.extensions.push(Arc::new(extension));
        self
    }

    /// Module lifecycle changes, from boot on (modules starting, or failing `init`).
    pub fn lifecycle(&self) -> broadcast::Receiver<ModuleEvent> {
        self.observers.lifecycle()
    }

    /// Module log lines, from boot on.
    pub fn log_lines(&self) -> broadcast::Receiver<LogLine> {
        self.observers.log_lines()
    }

    /// Boots the modules and starts their sources.
    pub async fn start(self) -> Result<Runtime, RuntimeError> {
        let plan = BootPlan {
            config: self.config,
            modules: self.modules,
        };
        Runtime::start_with(plan, self.extensions, self.observers).await
    }
}

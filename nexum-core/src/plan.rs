//! What a runtime boots from: the engine config and, for each module, its component and
//! validated manifest.

use crate::engine_config::EngineConfig;
use crate::error::ConfigError;
use crate::manifest::{LEGACY_MANIFEST_FILE, MANIFEST_FILE, ManifestLocation, ModuleManifest};
use std::path::PathBuf;

/// Where a module's component comes from.
#[derive(Debug, Clone)]
pub enum WasmSource {
    /// A `.wasm` file on disk.
    File(PathBuf),
    /// Component bytes already in memory (an embedder's own packaging).
    Bytes(Vec<u8>),
}

/// One module to boot: its component and its validated manifest.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// The component.
    pub wasm: WasmSource,
    /// Its manifest.
    pub manifest: ModuleManifest,
}

/// What a runtime boots from.
#[derive(Debug, Clone)]
pub struct BootPlan {
    /// The engine configuration.
    pub config: EngineConfig,
    /// The modules to run.
    pub modules: Vec<ModuleSpec>,
}

impl BootPlan {
    /// The modules of `[[modules]]` with their manifests read and validated, ready to boot.
    /// Also returns warnings worth showing (a legacy `nexum.toml` manifest name).
    pub fn from_config(config: &EngineConfig) -> Result<(BootPlan, Vec<String>), ConfigError> {
        let mut modules = Vec::with_capacity(config.modules.len());
        let mut warnings = Vec::new();
        for (i, entry) in config.modules.iter().enumerate() {
            let manifest_path = match &entry.manifest {
                Some(path) => path.clone(),
                None => {
                    let found = ManifestLocation::beside(&entry.path).map_err(|_| {
                        ConfigError::new(
                            config.source_name(),
                            format!("modules[{i}].manifest"),
                            format!(
                                "no {MANIFEST_FILE} beside {}; put one there or set `manifest`",
                                entry.path.display()
                            ),
                        )
                    })?;
                    if found.legacy {
                        warnings.push(format!(
                            "{}: the manifest name `{LEGACY_MANIFEST_FILE}` is deprecated; rename it to `{MANIFEST_FILE}`",
                            found.path.display()
                        ));
                    }
                    found.path
                }
            };
            let manifest = ModuleManifest::load(&manifest_path)?;
            modules.push(ModuleSpec {
                wasm: WasmSource::File(entry.path.clone()),
                manifest,
            });
        }
        Ok((
            BootPlan {
                config: config.clone(),
                modules,
            },
            warnings,
        ))
    }
}

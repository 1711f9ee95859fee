//! What a runtime boots from: the engine config and, for each module, its component and
//! validated manifest.

use crate::engine_config::EngineConfig;
use crate::error::ConfigError;
use crate::manifest::{
    ComponentDigest, LEGACY_MANIFEST_FILE, MANIFEST_FILE, ManifestLocation, ModuleManifest,
};
use std::path::PathBuf;

/// Where a module's component comes from.
#[derive(Debug, Clone)]
pub enum WasmSource {
    /// A `.wasm` file on disk.
    File(PathBuf),
    /// Component bytes already in memory (an embedder's own packaging).
    Bytes(Vec<u8>),
}

/// One module to boot: its component, its validated manifest, and the operator's pin.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// The component.
    pub wasm: WasmSource,
    /// Its manifest.
    pub manifest: ModuleManifest,
    /// The sha256 the engine config pins the component to, checked before the manifest's
    /// own pin (which ships with the artifact and so proves less).
    pub pin: Option<Pin>,
}

/// A sha256 pin and where it was written, so a mismatch names the file and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// What the component's bytes must hash to.
    pub digest: ComponentDigest,
    /// The file that pins it.
    pub file: PathBuf,
    /// The field within it, such as `modules[2].sha256`.
    pub field: String,
}

impl Pin {
    /// The pin of `config`'s `[[modules]]` entry number `index`, if it has one.
    pub fn of_entry(config: &EngineConfig, index: usize) -> Option<Pin> {
        let entry = config.modules.get(index)?;
        entry.sha256.map(|digest| Pin {
            digest,
            file: config.source_name(),
            field: format!("modules[{index}].sha256"),
        })
    }
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
                pin: Pin::of_entry(config, i),
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

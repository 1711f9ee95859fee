//! Offline validation of an engine config (`nexum check`): every manifest, digest,
//! component world and import, limit and chain reference — without a node, without
//! touching the state directory, and reporting every problem rather than the first.

use crate::engine::WasmEngine;
use crate::module::{ComponentCache, load};
use nexum_core::{
    Capability, ComponentDigest, EngineConfig, ManifestLocation, ModuleManifest, ModuleSpec, Pin,
    WasmSource,
};
use std::collections::BTreeSet;

/// The verdict on one `[[modules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleCheck {
    /// The module's name (or its path, when the manifest could not be read).
    pub module: String,
    /// `Ok(summary)` or `Err(problem)`.
    pub result: Result<String, String>,
    /// What is allowed but likely a mistake: capabilities declared and never imported
    /// (least privilege: grant only what the component uses).
    pub warnings: Vec<String>,
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// One entry per module, in config order.
    pub modules: Vec<ModuleCheck>,
    /// Problems not tied to one module (duplicate names, the engine itself).
    pub problems: Vec<String>,
}

impl CheckReport {
    /// Whether everything passed.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.modules.iter().all(|m| m.result.is_ok())
    }
}

/// Loads everything `config` names, as a boot would, stopping short of running anything.
pub fn check(config: &EngineConfig) -> CheckReport {
    let mut report = CheckReport::default();
    let engine = match WasmEngine::new(&[], config.compiler) {
        Ok(engine) => engine,
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    let mut compiled = ComponentCache::default();
    let mut names = std::collections::BTreeMap::new();
    for (i, entry) in config.modules.iter().enumerate() {
        let manifest_path = match &entry.manifest {
            Some(path) => Ok(path.clone()),
            None => ManifestLocation::beside(&entry.path).map(|l| l.path),
        };
        let manifest = manifest_path.and_then(|path| ModuleManifest::load(&path));
        let mut warnings = Vec::new();
        let (module, result) = match manifest {
            Err(e) => (entry.path.display().to_string(), Err(e.to_string())),
            Ok(manifest) => {
                let name = manifest.name.to_string();
                if let Some(first) = names.insert(name.clone(), i) {
                    report
                        .problems
                        .push(format!("modules[{first}] and modules[{i}] are both named `{name}`; names must be unique"));
                }
                let result = config
                    .admit(&manifest)
                    .map_err(|e| e.to_string())
                    .and_then(|limits| {
                        if let Some(source) = &entry.source
                            && !entry.path.is_file()
                        {
                            // Offline: what is not fetched yet is said, not fetched.
                            return Err(format!(
                                "its component ({source}) is not in the content store yet; `nexum fetch {}` fetches it",
                                config.source_name().display()
                            ));
                        }
                        let spec = ModuleSpec {
                            wasm: WasmSource::File(entry.path.clone()),
                            manifest,
                            pin: Pin::of_entry(config, i),
                        };
                        load(&engine, &mut compiled, spec, limits).map_err(|e| e.to_string())
                    })
                    .map(|loaded| {
                        warnings = unused_capabilities(&loaded.manifest, &loaded.imported);
                        summary(&loaded.manifest, &loaded.digest)
                    });
                (name, result)
            }
        };
        report.modules.push(ModuleCheck {
            module,
            result,
            warnings,
        });
    }
    report
}

fn unused_capabilities(manifest: &ModuleManifest, imported: &BTreeSet<Capability>) -> Vec<String> {
    manifest
        .capabilities
        .iter()
        .filter(|c| !imported.contains(c))
        .map(|c| {
            format!(
                "{}: `capabilities.required` declares \"{c}\", which the component does not import; remove it",
                manifest.file.display()
            )
        })
        .collect()
}

fn summary(manifest: &ModuleManifest, digest: &ComponentDigest) -> String {
    let capabilities: Vec<&str> = manifest.capabilities.iter().map(|c| c.name()).collect();
    let subscriptions: Vec<String> = manifest
        .subscriptions
        .iter()
        .map(ToString::to_string)
        .collect();
    format!(
        "{} {} [{}] {}; subscriptions: {}",
        manifest.name,
        manifest.version,
        capabilities.join(", "),
        digest,
        if subscriptions.is_empty() {
            "none".to_string()
        } else {
            subscriptions.join("; ")
        }
    )
}

//! Loading a module: read the component, check its digest and imports against the
//! manifest, compile it once and pre-link it (`InstancePre`) so restarts are cheap.

use crate::bindings::CowModulePre;
use crate::engine::WasmEngine;
use crate::module::ComponentCache;
use crate::state::ModuleState;
use nexum_core::{
    Capability, ComponentDigest, ConfigError, Limits, ModuleManifest, ModuleSpec, WasmSource,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

/// Why a module could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest (or the engine config) refuses the module; names file, field and reason.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The component could not be read.
    #[error("{}: cannot read component: {reason}", path.display())]
    Read {
        /// The component file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error("{}: not a valid WebAssembly component: {reason}", path.display())]
    Invalid {
        /// The component (file name, or `<bytes>` for in-memory components).
        path: PathBuf,
        /// Why, as wasmtime reports it.
        reason: String,
    },
    /// The component imports something nexum does not provide.
    #[error("{}: imports `{import}`, which nexum does not provide", path.display())]
    UnknownImport {
        /// The component.
        path: PathBuf,
        /// The import name.
        import: String,
    },
    /// The component does not have the exports of a nexum module.
    #[error("{}: not a nexum module (it must export `init` and `on-event` of nexum:host/event-module): {reason}", path.display())]
    NotAModule {
        /// The component.
        path: PathBuf,
        /// Why, as wasmtime reports it.
        reason: String,
    },
}

/// A module ready to be instantiated any number of times.
pub(crate) struct LoadedModule {
    pub manifest: ModuleManifest,
    pub limits: Limits,
    /// The sha256 of the component bytes.
    pub digest: ComponentDigest,
    /// The capabilities the component imports (a subset of what the manifest declares).
    pub imported: BTreeSet<Capability>,
    pub pre: CowModulePre<ModuleState>,
}

/// Loads `spec` into `engine` under `limits`.
pub(crate) fn load(
    engine: &WasmEngine,
    compiled: &mut ComponentCache,
    spec: ModuleSpec,
    limits: Limits,
) -> Result<LoadedModule, LoadError> {
    let ModuleSpec {
        wasm,
        manifest,
        pin,
    } = spec;
    let (path, bytes) = match wasm {
        WasmSource::File(path) => {
            let bytes = std::fs::read(&path).map_err(|e| LoadError::Read {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            (path, bytes)
        }
        WasmSource::Bytes(bytes) => (PathBuf::from(format!("<{} bytes>", manifest.name)), bytes),
    };

    let _module = tracing::info_span!("load", module = %manifest.name).entered();
    let digest = ComponentDigest::of(&bytes);
    if let Some(pin) = pin
        && pin.digest != digest
    {
        return Err(ConfigError::new(
            &pin.file,
            pin.field,
            format!(
                "sha256 mismatch: pinned to {} but {} is {digest}; refusing it",
                pin.digest,
                path.display()
            ),
        )
        .into());
    }
    if let Some(pinned) = manifest.component
        && pinned != digest
    {
        return Err(ConfigError::new(
            &manifest.file,
            "module.component",
            format!(
                "sha256 mismatch: the manifest pins {pinned} but {} is {digest}",
                path.display()
            ),
        )
        .into());
    }

    let component = compiled
        .get_or_compile(engine, &digest, &bytes)
        .map_err(|e| LoadError::Invalid {
            path: path.clone(),
            reason: format!("{e:#}"),
        })?;
    let imported = check_imports(engine, &component, &manifest, &path)?;

    let pre = engine
        .linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::Invalid {
            path: path.clone(),
            reason: format!("{e:#}"),
        })?;
    let pre = CowModulePre::new(pre).map_err(|e| LoadError::NotAModule {
        path: path.clone(),
        reason: format!("{e:#}"),
    })?;
    Ok(LoadedModule {
        manifest,
        limits,
        digest,
        imported,
        pre,
    })
}

/// Refuses imports of capabilities the manifest did not declare, and anything unknown;
/// returns the capabilities the component does import.
fn check_imports(
    engine: &WasmEngine,
    component: &Component,
    manifest: &ModuleManifest,
    path: &Path,
) -> Result<BTreeSet<Capability>, LoadError> {
    let mut imported = BTreeSet::new();
    for (import, _) in component.component_type().imports(&engine.engine) {
        let unversioned = import.split('@').next().unwrap_or(import);
        if engine.extension_interfaces.iter().any(|i| i == unversioned) {
            continue;
        }
        match classify_import(import) {
            ImportKind::Free => {}
            ImportKind::Capability(capability) if manifest.capabilities.contains(&capability) => {
                imported.insert(capability);
            }
            ImportKind::Capability(capability) => {
                return Err(ConfigError::new(
                    &manifest.file,
                    "capabilities.required",
                    format!(
                        "{} imports `{import}`, which needs the `{capability}` capability; \
                         add \"{capability}\" to [capabilities] required",
                        path.display()
                    ),
                )
                .into());
            }
            ImportKind::Unknown => {
                return Err(LoadError::UnknownImport {
                    path: path.to_path_buf(),
                    import: import.to_string(),
                });
            }
        }
    }
    Ok(imported)
}

enum ImportKind {
    /// Always available: WASI (inert) and the type-only `nexum:host/types`.
    Free,
    Capability(Capability),
    Unknown,
}

fn classify_import(import: &str) -> ImportKind {
    if let Some(capability) = Capability::from_import(import) {
        ImportKind::Capability(capability)
    } else if import.starts_with("wasi:") || import.starts_with("nexum:host/types@") {
        ImportKind::Free
    } else {
        ImportKind::Unknown
    }
}

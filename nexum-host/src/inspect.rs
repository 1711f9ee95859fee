//! What a component is: its world, imports and exports, size and digest — for
//! `nexum inspect` and `nexum hash`, and for anyone vetting a module before running it.

use crate::engine::{EngineError, WasmEngine, winch_cannot_compile};
use nexum_core::{Capability, Compiler, ComponentDigest};

/// One import of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The import name, e.g. `nexum:host/chain@0.2.1`.
    pub name: String,
    /// The capability it needs declared, if it is a nexum capability.
    pub capability: Option<Capability>,
}

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentReport {
    /// Size in bytes.
    pub size: usize,
    /// Its sha256, as `module.toml` pins it.
    pub digest: ComponentDigest,
    /// The nexum world it fits (`nexum:cow/cow-module`, `nexum:host/event-module`), or a note
    /// that it is not a nexum module.
    pub world: String,
    /// Its imports.
    pub imports: Vec<Import>,
    /// Its exports.
    pub exports: Vec<String>,
}

/// Why a component could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The engine could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The bytes are not a valid component.
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
}

/// Compiles `bytes` (nothing is run) and describes the component.
pub fn inspect(bytes: &[u8]) -> Result<ComponentReport, InspectError> {
    // A component is judged for what nexum can run, whichever compiler an engine picks:
    // what the default compiler (Winch on x86-64, the faster to compile) refuses and
    // Cranelift takes is compiled again with Cranelift.
    let mut engine = WasmEngine::new(&[], Compiler::default())?;
    let component = match engine.compile(bytes) {
        Ok(component) => component,
        Err(e) if Compiler::default() == Compiler::Winch && winch_cannot_compile(&e) => {
            // The component's types belong to the engine that compiled it.
            engine = WasmEngine::new(&[], Compiler::Cranelift)?;
            engine
                .compile(bytes)
                .map_err(|e| InspectError::Invalid(format!("{e:#}")))?
        }
        Err(e) => return Err(InspectError::Invalid(format!("{e:#}"))),
    };
    let ty = component.component_type();
    let imports: Vec<Import> = ty
        .imports(&engine.engine)
        .map(|(name, _)| Import {
            name: name.to_string(),
            capability: Capability::from_import(name),
        })
        .collect();
    let exports: Vec<String> = ty
        .exports(&engine.engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let is_module = ["init", "on-event"]
        .iter()
        .all(|e| exports.iter().any(|x| x == e));
    let world = if !is_module {
        "not a nexum module (no `init` and `on-event` exports)".to_string()
    } else if imports
        .iter()
        .any(|i| i.capability == Some(Capability::CowApi))
    {
        "nexum:cow/cow-module@0.2.1".to_string()
    } else {
        "nexum:host/event-module@0.2.1".to_string()
    };
    Ok(ComponentReport {
        size: bytes.len(),
        digest: ComponentDigest::of(bytes),
        world,
        imports,
        exports,
    })
}

#[cfg(test)]
mod tests {
    use super::{InspectError, inspect};

    #[test]
    fn what_only_cranelift_compiles_is_inspected_with_cranelift() {
        // A tail call: Winch (the default on x86-64) refuses it, Cranelift compiles it.
        let tail_call = wat::parse_str(
            r#"(component
                 (core module
                   (func $f (result i32) (return_call $g))
                   (func $g (result i32) i32.const 1)))"#,
        )
        .unwrap();
        let report = inspect(&tail_call).expect("inspected with Cranelift");
        assert!(report.world.starts_with("not a nexum module"), "{report:?}");

        let truncated = &tail_call[..tail_call.len() - 3];
        assert!(matches!(inspect(truncated), Err(InspectError::Invalid(_))));
    }
}

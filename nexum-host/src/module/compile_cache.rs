//! Compiled components, kept in memory for one boot and on disk across restarts.
//!
//! The disk cache is written synchronously while a module loads, by this thread and no
//! other. wasmtime's own cache updates its files from a background thread, so a failed
//! boot could not reliably remove the state directory it had created: the thread wrote
//! into it again after the removal.

use crate::engine::WasmEngine;
use nexum_core::ComponentDigest;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

/// Components compiled in this boot by digest (modules sharing a component compile it
/// once), backed by a directory of precompiled artifacts when one is given.
#[derive(Default)]
pub(crate) struct ComponentCache {
    by_digest: HashMap<ComponentDigest, Component>,
    dir: Option<PathBuf>,
    /// Entries of `dir` read or written in this boot; [`Self::prune`] keeps only these.
    used: HashSet<PathBuf>,
    /// Whether anything was compiled (rather than read) in this boot.
    compiled_any: bool,
}

impl ComponentCache {
    /// A cache that also keeps precompiled components in `dir` (created on first write).
    pub fn on_disk(dir: PathBuf) -> Self {
        Self {
            dir: Some(dir),
            ..Self::default()
        }
    }

    /// Removes every entry this boot did not use: components of modules no longer
    /// configured, and artifacts of older nexum versions, so the cache does not grow with
    /// every upgrade.
    pub fn prune(&self) {
        let Some(entries) = self.dir.as_deref().and_then(|d| std::fs::read_dir(d).ok()) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if self.used.contains(&path) {
                continue;
            }
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed {
                tracing::warn!(file = %path.display(), error = %e, "could not prune the compile cache");
            }
        }
    }

    /// Hands back to the operating system the heap that compiling used, if anything was
    /// compiled. Compiling is the one burst of allocation in an engine's life (tens of MiB
    /// for a large component); glibc keeps what was freed, so without this a process that
    /// compiled at boot stays that much bigger for good.
    pub fn release_compile_memory(&self) {
        if !self.compiled_any {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        #[allow(unsafe_code)]
        // SAFETY: malloc_trim has no preconditions; it only returns free heap pages.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    /// The component whose bytes are `bytes` (with sha256 `digest`): from memory, from
    /// disk, or compiled now. Only compilation errors are returned; a cache entry that
    /// cannot be read, or was written by another wasmtime build, is compiled again.
    pub fn get_or_compile(
        &mut self,
        engine: &WasmEngine,
        digest: &ComponentDigest,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        if let Some(component) = self.by_digest.get(digest) {
            return Ok(component.clone());
        }
        let file = self
            .dir
            .as_deref()
            .map(|dir| entry_path(dir, engine, digest));
        let component = match file.as_deref().and_then(|f| read_entry(engine, f)) {
            Some(component) => component,
            None => {
                // Large components (JavaScript, Python) take a while: say why boot waits.
                tracing::info!(
                    component = %digest,
                    bytes = bytes.len(),
                    "compiling the component (a large one takes a while)"
                );
                let component = engine.compile(bytes)?;
                self.compiled_any = true;
                if let Some(file) = &file {
                    write_entry(file, &component);
                }
                component
            }
        };
        self.used.extend(file);
        self.by_digest.insert(*digest, component.clone());
        Ok(component)
    }
}

/// `<dir>/<digest hex>-<engine settings hash>.cwasm`: a different wasmtime or engine
/// configuration gets a file of its own instead of overwriting another's.
fn entry_path(dir: &Path, engine: &WasmEngine, digest: &ComponentDigest) -> PathBuf {
    let mut hasher = std::hash::DefaultHasher::new();
    engine
        .engine
        .precompile_compatibility_hash()
        .hash(&mut hasher);
    let digest = digest.to_string();
    let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
    dir.join(format!("{hex}-{:016x}.cwasm", hasher.finish()))
}

fn read_entry(engine: &WasmEngine, file: &Path) -> Option<Component> {
    if !file.exists() {
        return None;
    }
    // SAFETY: the file is one this cache wrote from `Component::serialize` into the
    // engine's state directory, which only the operator can write; wasmtime checks its
    // header and refuses artifacts from another version or configuration.
    #[allow(unsafe_code)]
    let read = unsafe { Component::deserialize_file(&engine.engine, file) };
    match read {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "compile cache entry unusable; compiling again");
            let _ = std::fs::remove_file(file);
            None
        }
    }
}

/// Writes through a temporary file and a rename, so a crash never leaves half an entry.
/// A cache that cannot be written only costs the next boot a compilation.
fn write_entry(file: &Path, component: &Component) {
    let written = (|| -> std::io::Result<()> {
        let bytes = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let dir = file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = file.with_extension(format!("cwasm.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, file).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    })();
    if let Err(e) = written {
        tracing::warn!(file = %file.display(), error = %e, "could not write the compile cache");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_COMPONENT: &str = "(component)";

    #[test]
    fn a_second_cache_reads_what_the_first_wrote_and_survives_corruption() {
        let engine = WasmEngine::new(&[], nexum_core::Compiler::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bytes = wat::parse_str(EMPTY_COMPONENT).unwrap();
        let digest = &ComponentDigest::of(&bytes);

        ComponentCache::on_disk(dir.path().to_path_buf())
            .get_or_compile(&engine, digest, &bytes)
            .unwrap();
        let file = entry_path(dir.path(), &engine, digest);
        assert!(file.exists(), "the first boot wrote no cache entry");
        assert!(read_entry(&engine, &file).is_some());

        std::fs::write(&file, b"not a precompiled component").unwrap();
        ComponentCache::on_disk(dir.path().to_path_buf())
            .get_or_compile(&engine, digest, &bytes)
            .unwrap();
        assert!(
            read_entry(&engine, &file).is_some(),
            "a corrupt entry was not replaced by a fresh compilation"
        );
    }

    #[test]
    fn pruning_keeps_only_what_this_boot_used() {
        let engine = WasmEngine::new(&[], nexum_core::Compiler::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bytes = wat::parse_str(EMPTY_COMPONENT).unwrap();
        let stale_file = dir.path().join("old-module.cwasm");
        let stale_dir = dir.path().join("modules-wasmtime-old");
        std::fs::write(&stale_file, b"x").unwrap();
        std::fs::create_dir(&stale_dir).unwrap();

        let mut cache = ComponentCache::on_disk(dir.path().to_path_buf());
        let digest = ComponentDigest::of(&bytes);
        cache.get_or_compile(&engine, &digest, &bytes).unwrap();
        cache.prune();

        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, vec![entry_path(dir.path(), &engine, &digest)]);
    }
}

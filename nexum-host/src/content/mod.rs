//! The content store: components named by `[[modules]] source` (an OCI registry or an
//! HTTP(S) URL), fetched once into `<state_dir>/content/sha256/<hex>.wasm` and checked
//! against their pin before they are stored. The transport is not trusted, only the digest:
//! a registry that serves other bytes under the same tag is refused before anything is
//! compiled. A component already in the store boots without the network; a damaged entry
//! is noticed (its hash no longer matches) and fetched again.
//!
//! - `oci`: OCI registries (`oci-client`), pull and push, credentials from the environment
//!   or the docker config;
//! - `http`: plain HTTP(S) downloads with a size cap and timeouts.

mod http;
mod oci;

pub use oci::push;

use nexum_core::{ComponentDigest, EngineConfig, ModuleManifest, ModuleSource};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The largest component nexum fetches (a JavaScript or Python component is tens of MB).
pub const MAX_COMPONENT_BYTES: u64 = 256 * 1024 * 1024;

/// The longest one component's fetch may take, from the first request to the last byte:
/// a server that trickles cannot hold a boot or a reload forever.
pub const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// How long a temporary file of a fetch may sit in the store before `prune` takes it for
/// the leftover of a crash.
const PARTIAL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Why a module's component could not be had.
#[derive(Debug, thiserror::Error)]
#[error("module {module} (source {origin}): {reason}")]
pub struct FetchError {
    /// The module's name (from its manifest), or its `[[modules]]` entry.
    pub module: String,
    /// Where it was to come from (its `source`, shown without credentials).
    pub origin: String,
    /// What went wrong.
    pub reason: String,
}

/// What making every source present did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// Components downloaded now (`module` and digest).
    pub fetched: Vec<(String, ComponentDigest)>,
    /// Components the store already held.
    pub present: Vec<(String, ComponentDigest)>,
    /// Damaged entries that were fetched again.
    pub repaired: Vec<(String, ComponentDigest)>,
}

/// Makes sure the component of every `[[modules]]` entry with a `source` is in the content
/// store, fetching what is missing or damaged; each fetched component is checked against
/// its pin before it is stored.
pub async fn fetch_sources(config: &EngineConfig) -> Result<FetchReport, FetchError> {
    let mut report = FetchReport::default();
    for (index, entry) in config.modules.iter().enumerate() {
        let (Some(source), Some(pin)) = (&entry.source, entry.sha256) else {
            continue;
        };
        let module = entry
            .manifest
            .as_deref()
            .and_then(|m| ModuleManifest::load(m).ok())
            .map_or_else(|| format!("modules[{index}]"), |m| m.name.to_string());
        let failed = |reason: String| FetchError {
            module: module.clone(),
            origin: source.to_string(),
            reason,
        };
        let path = entry.path.clone();
        let stored = tokio::task::spawn_blocking(move || stored_digest(&path))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        let damaged = match stored {
            Ok(Some(digest)) if digest == pin => {
                report.present.push((module, pin));
                continue;
            }
            Ok(Some(other)) => {
                tracing::warn!(module, %source, expected = %pin, found = %other,
                    "content store: a damaged entry; fetching it again");
                true
            }
            Ok(None) => false,
            Err(e) => return Err(failed(format!("content store: {e}"))),
        };
        let fetch = async {
            match source {
                ModuleSource::Oci(reference) => oci::pull(reference, &pin).await,
                ModuleSource::Http(url) => http::get(url).await,
            }
        };
        let bytes = tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", FETCH_TIMEOUT.as_secs())))
            .map_err(|reason| {
                failed(format!(
                    "cannot fetch {pin}: {}; the content store has no copy of it",
                    one_line(&reason)
                ))
            })?;
        let digest = ComponentDigest::of(&bytes);
        if digest != pin {
            return Err(failed(format!(
                "it serves {digest}, not the pinned {pin}; refusing it (nothing stored or compiled)"
            )));
        }
        let (path, size) = (entry.path.clone(), bytes.len());
        tokio::task::spawn_blocking(move || store(&path, &bytes))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
            .map_err(|e| failed(format!("content store: {e}")))?;
        tracing::info!(module, %source, digest = %pin, bytes = size, "component fetched into the content store");
        if damaged {
            report.repaired.push((module, pin));
        } else {
            report.fetched.push((module, pin));
        }
    }
    Ok(report)
}

/// Removes every component of the content store that no `[[modules]]` entry of `config`
/// names, and temporary files a crash left (older than an hour); returns what it removed.
/// Anything else in the folder is left alone. Prune with the engine.toml the engine runs,
/// after a reload succeeded: a component only a still-running module uses is otherwise
/// fetched again at its next start.
pub fn prune(config: &EngineConfig) -> std::io::Result<Vec<PathBuf>> {
    let dir = config
        .state_dir
        .join(nexum_core::source::CONTENT_DIR)
        .join("sha256");
    let wanted: Vec<&Path> = config
        .modules
        .iter()
        .filter(|m| m.source.is_some())
        .map(|m| m.path.as_path())
        .collect();
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Only plain files the store itself names: a component, or a fetch's temporary file.
        if !entry.file_type()?.is_file() || wanted.contains(&path.as_path()) {
            continue;
        }
        let component = name
            .strip_suffix(".wasm")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        let stale_partial = name.contains(".partial-")
            && entry
                .metadata()?
                .modified()?
                .elapsed()
                .is_ok_and(|age| age > PARTIAL_MAX_AGE);
        if component || stale_partial {
            std::fs::remove_file(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// `text` as one line of at most 300 characters, control characters escaped: what a
/// registry or server says goes into one-line errors.
fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let mut line = String::new();
    for c in text.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    if line.chars().count() > MAX {
        line = line.chars().take(MAX).collect::<String>() + "…";
    }
    line
}

/// The digest of the stored file at `path`, or `None` when there is none.
fn stored_digest(path: &Path) -> std::io::Result<Option<ComponentDigest>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(ComponentDigest::of(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it, synced, then
/// renamed over it, and the folder synced.
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("content files live in a folder");
    std::fs::create_dir_all(dir)?;
    // A name of its own per write: two fetches of one component (a reload beside
    // `nexum fetch`) never write the same temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = path.with_extension(format!("wasm.partial-{}-{n}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_file_is_whole_and_found_by_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let digest = ComponentDigest::of(b"bytes");
        let path = nexum_core::source::content_file(dir.path(), &digest);
        assert_eq!(stored_digest(&path).unwrap(), None);
        store(&path, b"bytes").unwrap();
        assert_eq!(stored_digest(&path).unwrap(), Some(digest));
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn what_a_server_says_becomes_one_short_line() {
        let said = one_line(&format!("line one\nline two\x1b[31m{}", "x".repeat(1000)));
        assert!(!said.contains('\n') && !said.contains('\x1b'), "{said}");
        assert!(said.chars().count() <= 301, "{}", said.len());
    }
}

//! When a module's sources change. Polled rather than watched with inotify: a module's
//! folder is small, polling works on every file system (network mounts, containers), and it
//! needs no per-user watch limits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the sources are looked at.
const POLL: Duration = Duration::from_millis(300);
/// A change is acted on once the files stop changing for this long (an editor's save, a
/// `git checkout`, are several writes).
const SETTLE: Duration = Duration::from_millis(200);
/// Folders of the module's root that hold what builds and runs write.
const NOT_SOURCES: &[&str] = &["target", "dist", "data"];
/// Folders, at any depth, that hold what package managers install and interpreters cache.
const NEVER_SOURCES: &[&str] = &["node_modules", "__pycache__"];
/// Files a build writes beside the sources.
const BUILD_WRITES: &[&str] = &["Cargo.lock"];
/// Files looked at, at most: a folder bigger than this is not a module's sources.
const MAX_FILES: usize = 20_000;

/// Each source file's modification time and size, at one moment.
#[derive(PartialEq, Eq)]
pub struct Sources {
    root: PathBuf,
    /// Folders under the root that are not sources (the state directory).
    skipped: Vec<PathBuf>,
    files: BTreeMap<PathBuf, (SystemTime, u64)>,
}

/// Hidden files, editors' swap, backup and autosave files (which change as one types), and
/// compiled Python.
fn is_scratch(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('#') || name.ends_with('~') || name.ends_with(".pyc")
}

impl Sources {
    /// Looks at every source file under `root`: hidden and scratch files, build output at
    /// the root, and the folders in `skipped` are left out.
    pub async fn scan(root: &Path, skipped: &[PathBuf]) -> anyhow::Result<Self> {
        let (root, skipped) = (root.to_path_buf(), skipped.to_vec());
        Ok(tokio::task::spawn_blocking(move || Self::scan_now(root, skipped)).await?)
    }

    fn scan_now(root: PathBuf, skipped: Vec<PathBuf>) -> Self {
        let mut files = BTreeMap::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            let at_root = folder == root;
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                // Symbolic links are not followed (`file_type` does not follow them).
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if is_scratch(&name) {
                    continue;
                }
                if kind.is_dir() {
                    let path = entry.path();
                    let output = (at_root && NOT_SOURCES.contains(&name.as_ref()))
                        || NEVER_SOURCES.contains(&name.as_ref())
                        // A cache directory by the common convention (cargo's target
                        // directories, wherever CARGO_TARGET_DIR puts them).
                        || path.join("CACHEDIR.TAG").is_file();
                    if !output && !skipped.iter().any(|s| path.starts_with(s)) {
                        folders.push(path);
                    }
                } else if kind.is_file() && !(at_root && BUILD_WRITES.contains(&name.as_ref())) {
                    if files.len() == MAX_FILES {
                        tracing::warn!(
                            "dev: more than {MAX_FILES} files under {}; changes to the others are not seen",
                            root.display()
                        );
                        return Self {
                            root,
                            skipped,
                            files,
                        };
                    }
                    if let Ok(meta) = entry.metadata() {
                        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        files.insert(entry.path(), (modified, meta.len()));
                    }
                }
            }
        }
        Self {
            root,
            skipped,
            files,
        }
    }

    /// Waits until a source file is added, removed or changed, and the sources settle;
    /// returns one of the changed files.
    pub async fn next_change(&self) -> anyhow::Result<PathBuf> {
        let mut first = true;
        loop {
            // The first look is at once: the sources may have changed during the build.
            if !std::mem::take(&mut first) {
                tokio::time::sleep(POLL).await;
            }
            let mut now = Self::scan(&self.root, &self.skipped).await?;
            if now == *self {
                continue;
            }
            loop {
                tokio::time::sleep(SETTLE).await;
                let again = Self::scan(&self.root, &self.skipped).await?;
                if again == now {
                    break;
                }
                now = again;
            }
            if let Some(changed) = self.first_difference(&now) {
                return Ok(changed);
            }
        }
    }

    /// A file that differs between the two looks, relative to the root.
    fn first_difference(&self, other: &Sources) -> Option<PathBuf> {
        let changed = self
            .files
            .iter()
            .find(|(path, seen)| other.files.get(*path) != Some(seen))
            .map(|(path, _)| path)
            .or_else(|| {
                other
                    .files
                    .keys()
                    .find(|path| !self.files.contains_key(*path))
            })?;
        Some(
            changed
                .strip_prefix(&self.root)
                .unwrap_or(changed)
                .to_path_buf(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_edit_is_seen_and_build_output_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("dist")).unwrap();
        std::fs::write(dir.path().join("src/module.js"), "one").unwrap();
        let state = dir.path().join("state");
        let skipped = [state.clone()];
        let before = Sources::scan(dir.path(), &skipped).await.unwrap();

        std::fs::write(dir.path().join("dist/module.wasm"), "built").unwrap();
        std::fs::create_dir_all(dir.path().join(".venv")).unwrap();
        std::fs::write(dir.path().join(".venv/x"), "installed").unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "resolved").unwrap();
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("0.jnl"), "journal").unwrap();
        std::fs::write(dir.path().join("src/.module.js.swp"), "typing").unwrap();
        std::fs::write(dir.path().join("src/module.js~"), "backup").unwrap();
        std::fs::create_dir_all(dir.path().join("nexum/__pycache__")).unwrap();
        std::fs::write(dir.path().join("nexum/__pycache__/abi.cpython-311.pyc"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("build")).unwrap();
        std::fs::write(dir.path().join("build/CACHEDIR.TAG"), "Signature").unwrap();
        std::fs::write(dir.path().join("build/libx.rlib"), "compiled").unwrap();
        assert!(Sources::scan(dir.path(), &skipped).await.unwrap() == before);

        std::fs::write(dir.path().join("src/module.js"), "two, longer").unwrap();
        let changed = tokio::time::timeout(Duration::from_secs(10), before.next_change())
            .await
            .expect("the edit is seen")
            .unwrap();
        assert_eq!(changed, Path::new("src/module.js"));

        // Below the root, a folder named like build output is a source folder.
        let before = Sources::scan(dir.path(), &skipped).await.unwrap();
        std::fs::create_dir_all(dir.path().join("src/data")).unwrap();
        std::fs::write(dir.path().join("src/data/table.json"), "[]").unwrap();
        let changed = tokio::time::timeout(Duration::from_secs(10), before.next_change())
            .await
            .expect("the new file is seen")
            .unwrap();
        assert_eq!(changed, Path::new("src/data/table.json"));
    }
}

//! A module's folder as `nexum dev` sees it: which language, how to build it, where the
//! component lands.

use super::child::{Build, die_with_parent};
use anyhow::{Context, bail};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Where the JavaScript and Python templates' builds write the component.
const SCRIPTED_OUTPUT: &str = "dist/module.wasm";

/// The target Rust modules are built for.
const RUST_TARGET: &str = "wasm32-wasip2";

/// The language a module is written in, known by its build file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Cargo.toml`: `cargo build --target wasm32-wasip2 --release`.
    Rust,
    /// `package.json`: `npm run build` writes `dist/module.wasm`.
    JavaScript,
    /// `build.py`: `python3 build.py` writes `dist/module.wasm`.
    Python,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Rust => "Rust",
            Kind::JavaScript => "JavaScript",
            Kind::Python => "Python",
        })
    }
}

/// A module's folder.
pub struct Project {
    pub root: PathBuf,
    pub kind: Kind,
    /// Its `module.toml`.
    pub manifest: PathBuf,
    /// [`RUST_TARGET`] was looked for (and added if need be) this session.
    rust_target_checked: AtomicBool,
}

impl Project {
    /// The module in `dir`: it must hold a `module.toml` and one of the build files.
    pub fn detect(dir: &Path) -> anyhow::Result<Self> {
        let root = dir
            .canonicalize()
            .with_context(|| format!("{}: no such folder", dir.display()))?;
        let manifest = root.join("module.toml");
        if !manifest.is_file() {
            bail!(
                "{}: no module.toml; run `nexum dev` in a module's folder (`nexum new NAME` makes one)",
                root.display()
            );
        }
        let kind = [
            ("Cargo.toml", Kind::Rust),
            ("package.json", Kind::JavaScript),
            ("build.py", Kind::Python),
        ]
        .into_iter()
        .find(|(file, _)| root.join(file).is_file())
        .map(|(_, kind)| kind)
        .with_context(|| {
            format!(
                "{}: no Cargo.toml, package.json or build.py to build the module with",
                root.display()
            )
        })?;
        Ok(Self {
            root,
            kind,
            manifest,
            rust_target_checked: AtomicBool::new(false),
        })
    }

    /// Builds the component and returns its path. The build's own output goes to the
    /// terminal.
    pub async fn build(&self) -> anyhow::Result<PathBuf> {
        tracing::info!("dev: building the {} module", self.kind);
        match self.kind {
            Kind::Rust => self.cargo_build().await,
            // Not --silent: it would hide npm's own errors (a missing script, a failed
            // install inside the build).
            Kind::JavaScript => self.scripted_build("npm", &["run", "build"]).await,
            Kind::Python => self.scripted_build("python3", &["build.py"]).await,
        }
    }

    /// `cargo build`, reading the component's path from cargo's own report (it honours
    /// `CARGO_TARGET_DIR` and the crate's name).
    async fn cargo_build(&self) -> anyhow::Result<PathBuf> {
        if !self.rust_target_checked.load(Ordering::Relaxed) {
            ensure_rust_target(&["rustup"], &self.root).await?;
            self.rust_target_checked.store(true, Ordering::Relaxed);
        }
        let mut command = Command::new("cargo");
        command
            .current_dir(&self.root)
            .args([
                "build",
                "--target",
                RUST_TARGET,
                "--release",
                "--message-format",
                "json-render-diagnostics",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut cargo =
            Build::spawn(&mut command).context("starting cargo (is Rust installed?)")?;
        let stdout = cargo.child.stdout.take().context("cargo's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut component = None;
        while let Some(line) = lines.next_line().await? {
            if let Some(wasm) = component_artifact(&line) {
                component = Some(wasm);
            }
        }
        if !cargo.wait().await?.success() {
            bail!("cargo build failed (its errors are above)");
        }
        component
            .context("cargo built no .wasm: is the crate a cdylib (`crate-type = [\"cdylib\"]`)?")
    }

    /// A template's own build script, which writes `dist/module.wasm`.
    async fn scripted_build(&self, program: &str, args: &[&str]) -> anyhow::Result<PathBuf> {
        let started = SystemTime::now();
        let mut command = Command::new(program);
        command
            .current_dir(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        let status = Build::spawn(&mut command)
            .with_context(|| format!("starting {program} (is it installed?)"))?
            .wait()
            .await?;
        let shown = format!("{program} {}", args.join(" "));
        if !status.success() {
            bail!("`{shown}` failed (its errors are above)");
        }
        let output = self.root.join(SCRIPTED_OUTPUT);
        // A component left by an earlier build must not pass for this one.
        let fresh = std::fs::metadata(&output)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified >= started);
        if !fresh {
            bail!("`{shown}` succeeded but did not write {SCRIPTED_OUTPUT}");
        }
        Ok(output)
    }
}

/// Adds [`RUST_TARGET`] to the toolchain that builds in `root` when rustup manages it and
/// lacks the target, so that a first `nexum dev` works on a fresh machine (wasm-pack does
/// the same). Without rustup (a distribution's own Rust), or where rustup cannot list the
/// toolchain's targets, nothing is added, and cargo's error says what is missing (as it
/// does when the `cargo` on PATH is not rustup's). `rustup` is the command that runs it (a
/// program and its first arguments). What rustup says goes to the terminal: it may be
/// installing the toolchain a `rust-toolchain.toml` names.
async fn ensure_rust_target(rustup: &[&str], root: &Path) -> anyhow::Result<()> {
    let Some((program, first)) = rustup.split_first() else {
        return Ok(());
    };
    let mut list = Command::new(program);
    list.args(first)
        .current_dir(root)
        .args(["target", "list", "--installed"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let listed = match die_with_parent(&mut list).spawn() {
        Ok(child) => child.wait_with_output().await,
        Err(error) => Err(error),
    };
    let Ok(listed) = listed.map_err(|e| tracing::debug!(error = %e, "no rustup")) else {
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|line| line.trim() == RUST_TARGET);
    if !listed.status.success() || installed {
        return Ok(());
    }
    tracing::info!(
        "dev: adding the {RUST_TARGET} target to the Rust toolchain (rustup target add {RUST_TARGET})"
    );
    // Not killed with `nexum dev` (an exception to `child.rs`): a stop or a newer build
    // must not cut an install short, which can leave the toolchain half installed. It runs
    // in nexum's process group, so a terminal's ctrl-c still reaches it.
    let status = Command::new(program)
        .args(first)
        .current_dir(root)
        .args(["target", "add", RUST_TARGET])
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .await
        .context("starting rustup")?;
    if !status.success() {
        bail!(
            "`rustup target add {RUST_TARGET}` failed (its errors are above): Rust modules are built for {RUST_TARGET}"
        );
    }
    Ok(())
}

/// The `.wasm` of a cdylib in one line of cargo's JSON messages.
fn component_artifact(line: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let is_cdylib = message["target"]["kind"]
        .as_array()?
        .iter()
        .any(|kind| kind == "cdylib");
    if !is_cdylib {
        return None;
    }
    message["filenames"]
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for rustup that records its arguments in `calls`, lists `installed` as
    /// the installed targets (exiting with `list_status`) and exits with `add_status` from
    /// `target add`. It runs as `sh SCRIPT`: a file just written cannot be run while another
    /// test's child, forked meanwhile, may still hold it open.
    fn fake_rustup(dir: &Path, installed: &str, list_status: u8, add_status: u8) -> PathBuf {
        let script = dir.join("rustup");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" >> '{calls}'\n\
                 if [ \"$2\" = list ]; then printf '{installed}'; exit {list_status}; fi\n\
                 exit {add_status}\n",
                calls = dir.join("calls").display(),
            ),
        )
        .unwrap();
        script
    }

    fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    #[tokio::test]
    async fn the_wasm_target_is_added_only_when_rustup_lacks_it() {
        let dir = tempfile::tempdir().unwrap();
        let has = fake_rustup(
            dir.path(),
            "x86_64-unknown-linux-gnu\\nwasm32-wasip2\\n",
            0,
            0,
        );
        ensure_rust_target(&["sh", has.to_str().unwrap()], dir.path())
            .await
            .unwrap();
        assert_eq!(calls(dir.path()), ["target list --installed"]);

        let dir = tempfile::tempdir().unwrap();
        let lacks = fake_rustup(dir.path(), "x86_64-unknown-linux-gnu\\n", 0, 0);
        ensure_rust_target(&["sh", lacks.to_str().unwrap()], dir.path())
            .await
            .unwrap();
        assert_eq!(
            calls(dir.path()),
            ["target list --installed", "target add wasm32-wasip2"]
        );

        let dir = tempfile::tempdir().unwrap();
        let fails = fake_rustup(dir.path(), "", 0, 1);
        let error = ensure_rust_target(&["sh", fails.to_str().unwrap()], dir.path())
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("rustup target add wasm32-wasip2"),
            "{error}"
        );

        // rustup that cannot list the toolchain's targets is left alone.
        let dir = tempfile::tempdir().unwrap();
        let unlisted = fake_rustup(dir.path(), "", 1, 0);
        ensure_rust_target(&["sh", unlisted.to_str().unwrap()], dir.path())
            .await
            .unwrap();
        assert_eq!(calls(dir.path()), ["target list --installed"]);

        // Without rustup the build goes ahead, and cargo says what is missing.
        let nowhere = dir.path().join("no-such-rustup");
        ensure_rust_target(&[nowhere.to_str().unwrap()], dir.path())
            .await
            .unwrap();
    }

    #[test]
    fn the_component_is_read_from_cargos_report() {
        let line = r#"{"reason":"compiler-artifact","target":{"kind":["cdylib","rlib"]},"filenames":["/t/x.rlib","/t/wasm32-wasip2/release/my_keeper.wasm"]}"#;
        assert_eq!(
            component_artifact(line),
            Some(PathBuf::from("/t/wasm32-wasip2/release/my_keeper.wasm"))
        );
        let dependency = r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"filenames":["/t/libserde.rlib"]}"#;
        assert_eq!(component_artifact(dependency), None);
        assert_eq!(component_artifact("not json"), None);
    }

    #[test]
    fn a_folder_without_a_manifest_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = Project::detect(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("no module.toml") && err.contains("nexum new"),
            "{err}"
        );
        std::fs::write(dir.path().join("module.toml"), "").unwrap();
        let err = Project::detect(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("no Cargo.toml, package.json or build.py"),
            "{err}"
        );
        std::fs::write(dir.path().join("build.py"), "").unwrap();
        assert_eq!(Project::detect(dir.path()).unwrap().kind, Kind::Python);
    }
}

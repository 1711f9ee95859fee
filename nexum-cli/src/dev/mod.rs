//! `nexum dev`: a module author's inner loop. Build the module in a folder, run it against a
//! chain, and rebuild and restart it whenever its sources change.
//!
//! The engine runs in this process — the runtime `nexum run` uses, with its default compiler
//! (Winch on x86-64), so a 12–18 MB JavaScript or Python component starts in a second or two
//! instead of six or seven. Builds and the local chain are child processes that die with
//! this one.

mod child;
mod local_chain;
mod project;
mod sources;

use crate::cli::DevArgs;
use crate::signals::{Asked, Signals};
use anyhow::{Context, bail};
use local_chain::LocalChain;
use nexum_host::core::{EngineConfig, ModuleStatus};
use nexum_host::{BootError, Ledger, Runtime, RuntimeBuilder, RuntimeError, StoreError};
use project::Project;
use sources::Sources;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The chain a local Anvil runs.
const LOCAL_CHAIN_ID: u64 = 31337;

pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let project = Project::detect(args.dir.as_deref().unwrap_or(Path::new(".")))?;
    let mut config = EngineConfig::default();
    crate::logging::init(&config.log_level, config.log_format)?;
    let mut signals = Signals::install()?;

    // Held to the end: the local chain stops when it is dropped.
    let mut _local_chain = None;
    if args.chains.is_empty() {
        let chain = tokio::select! {
            chain = LocalChain::start() => chain?,
            signal = stop_asked(&mut signals) => {
                tracing::info!(signal, "dev: stopped while starting the local chain");
                return Ok(());
            }
        };
        tracing::info!(
            "dev: local chain {LOCAL_CHAIN_ID} at {} (anvil: a block a second; its dev accounts hold test ether)",
            chain.url
        );
        config.chains.insert(
            LOCAL_CHAIN_ID,
            nexum_host::core::ChainConfig::new(&chain.url).map_err(anyhow::Error::msg)?,
        );
        config.state_dir = fresh_state_dir(&project, args.state_dir)?;
        _local_chain = Some(chain);
    } else {
        config.chains = crate::run::chain_flags(&args.chains)?;
        config.state_dir = args.state_dir.unwrap_or_else(|| project.root.join("data"));
    }
    tracing::info!(
        "dev: {} module in {}, state in {}; press ctrl-c to stop",
        project.kind,
        project.root.display(),
        config.state_dir.display()
    );

    // The store is not a source: compared as the scan sees paths (fully resolved).
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating {}", config.state_dir.display()))?;
    let not_sources = vec![config.state_dir.canonicalize()?];
    let mut running: Option<Runtime> = None;
    // What runs (or last ran) well: put back when a newer build does not start.
    let mut last_good: Option<Version> = None;
    loop {
        // Taken before the build, so an edit saved while it runs is not missed (what the
        // build writes itself is build output or `Cargo.lock`, neither a source).
        let seen = Sources::scan(&project.root, &not_sources).await?;
        let built = tokio::select! {
            built = project.build() => built,
            signal = stop_asked(&mut signals) => return stop(running, signal).await,
        };
        // A manifest that does not parse is refused while the old version still runs.
        let built = built
            .and_then(|wasm| Version::read(&wasm, &project.manifest))
            .and_then(|version| version.builder(&config).map(|_| version));
        match built {
            Ok(version) => {
                // The store is one process's at a time: the old version goes first.
                if let Some(old) = running.take() {
                    tracing::info!("dev: stopping the running version");
                    old.shutdown().await;
                }
                let started = tokio::select! {
                    started = start(&config, &version) => started,
                    signal = stop_asked(&mut signals) => return stop(None, signal).await,
                };
                match started {
                    Ok(runtime) => {
                        crate::summary::print(&runtime.modules());
                        tracing::info!(
                            "dev: running {}; edit a source to rebuild",
                            version.wasm.display()
                        );
                        running = Some(runtime);
                        last_good = Some(version);
                    }
                    Err(e) => {
                        tracing::error!("dev: the new build did not start: {e:#}");
                        if let Some(good) = &last_good {
                            tracing::info!("dev: starting the last good build again");
                            let again = tokio::select! {
                                again = start(&config, good) => again,
                                signal = stop_asked(&mut signals) => return stop(None, signal).await,
                            };
                            running = match again {
                                Ok(runtime) => Some(runtime),
                                Err(e) => {
                                    tracing::error!(
                                        "dev: the last good build did not start either: {e:#}"
                                    );
                                    None
                                }
                            };
                        }
                        tracing::info!("dev: waiting for a change");
                    }
                }
            }
            Err(e) if running.is_some() => tracing::error!(
                "dev: {e:#}; the last good build keeps running; waiting for a change"
            ),
            Err(e) => tracing::error!("dev: {e:#}; waiting for a change"),
        }
        tokio::select! {
            changed = seen.next_change() => {
                tracing::info!("dev: {} changed; rebuilding", changed?.display());
            }
            signal = stop_asked(&mut signals) => return stop(running, signal).await,
        }
    }
}

/// One build of the module: its component and the manifest it was built with, kept so the
/// last good one can be started again after a newer one fails to.
struct Version {
    wasm: PathBuf,
    bytes: Vec<u8>,
    manifest_path: PathBuf,
    manifest: String,
}

impl Version {
    /// An engine of this version alone (parses its manifest).
    fn builder(&self, config: &EngineConfig) -> anyhow::Result<RuntimeBuilder> {
        Ok(RuntimeBuilder::new(config.clone()).module_bytes(
            self.bytes.clone(),
            &self.manifest,
            &self.manifest_path.display().to_string(),
        )?)
    }

    fn read(wasm: &Path, manifest: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            wasm: wasm.to_path_buf(),
            bytes: std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?,
            manifest_path: manifest.to_path_buf(),
            manifest: std::fs::read_to_string(manifest)
                .with_context(|| format!("reading {}", manifest.display()))?,
        })
    }
}

/// Any of SIGINT, SIGTERM and SIGHUP: a closed terminal must not leave `nexum dev`
/// rebuilding on its own.
async fn stop_asked(signals: &mut Signals) -> &'static str {
    match signals.next().await {
        Asked::Stop(name) => name,
        Asked::Reload => "SIGHUP",
    }
}

/// State for a session on a new local chain: positions on an earlier chain mean nothing on
/// this one, so the default folder starts empty. One the author names is left as it is.
fn fresh_state_dir(project: &Project, asked: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = asked {
        return Ok(dir);
    }
    let dir = project.root.join("data").join("anvil");
    if dir.join("version").exists() {
        // Another `nexum dev` on this folder holds it: clearing it would pull its store
        // out from under it.
        match Ledger::open(&dir) {
            Err(StoreError::Locked) => bail!(
                "{} is in use: another `nexum dev` runs this module; stop it first, or give this one its own --state-dir",
                dir.display()
            ),
            opened => drop(opened),
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("clearing {} for the new local chain", dir.display()))?;
    }
    Ok(dir)
}

/// How long a new version waits for the old one's store lock (fjall lets go of it as its
/// last handle drops, just after `shutdown` returns).
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Starts `version`; a module whose `init` failed (the engine quarantines it and runs on)
/// counts as not started, so the last good build takes its place.
async fn start(config: &EngineConfig, version: &Version) -> anyhow::Result<Runtime> {
    let deadline = Instant::now() + LOCK_WAIT;
    let runtime = loop {
        match version.builder(config)?.start().await {
            Err(RuntimeError::Boot(BootError::Store {
                error: StoreError::Locked,
                ..
            })) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            started => break started?,
        }
    };
    if runtime
        .modules()
        .iter()
        .all(|m| m.status == ModuleStatus::Quarantined)
    {
        runtime.shutdown().await;
        bail!("its init failed (the reason is above)");
    }
    Ok(runtime)
}

async fn stop(running: Option<Runtime>, signal: &str) -> anyhow::Result<()> {
    tracing::info!(signal, "dev: stopping");
    if let Some(runtime) = running {
        runtime.shutdown().await;
    }
    tracing::info!("dev: state flushed; bye");
    Ok(())
}

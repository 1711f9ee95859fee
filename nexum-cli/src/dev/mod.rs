//! `nexum dev`: a module author's inner loop. Build the module in a folder, run it against a
//! chain, and rebuild and restart it whenever its sources change.
//!
//! The engine runs in this process — the runtime `nexum run` uses, compiling with Winch so a
//! 12–18 MB JavaScript or Python component starts in a second or two instead of ten. Builds
//! and the local chain are child processes that die with this one.

mod child;
mod local_chain;
mod project;
mod sources;

use crate::cli::DevArgs;
use crate::signals::Signals;
use anyhow::Context;
use local_chain::LocalChain;
use nexum_host::core::{Compiler, EngineConfig};
use nexum_host::{Runtime, RuntimeBuilder};
use project::Project;
use sources::Sources;
use std::path::{Path, PathBuf};

/// The chain a local Anvil runs.
const LOCAL_CHAIN_ID: u64 = 31337;

pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let project = Project::detect(args.dir.as_deref().unwrap_or(Path::new(".")))?;
    let mut config = EngineConfig {
        compiler: Compiler::Winch,
        ..EngineConfig::default()
    };
    crate::logging::init(&config.log_level, config.log_format)?;
    let mut signals = Signals::install()?;

    // Held to the end: the local chain stops when it is dropped.
    let mut _local_chain = None;
    if args.chains.is_empty() {
        let chain = tokio::select! {
            chain = LocalChain::start() => chain?,
            signal = signals.next_stop() => {
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

    let mut running: Option<Runtime> = None;
    loop {
        let built = tokio::select! {
            built = project.build() => built,
            signal = signals.next_stop() => return stop(running, signal).await,
        };
        match built {
            Ok(wasm) => {
                // The store is one process's at a time: the old version goes first.
                if let Some(old) = running.take() {
                    tracing::info!("dev: stopping the running version");
                    old.shutdown().await;
                }
                let started = tokio::select! {
                    started = start(&config, &wasm, &project.manifest) => started,
                    signal = signals.next_stop() => return stop(None, signal).await,
                };
                match started {
                    Ok(runtime) => {
                        crate::summary::print(&runtime.modules());
                        tracing::info!("dev: running {}; edit a source to rebuild", wasm.display());
                        running = Some(runtime);
                    }
                    Err(e) => {
                        tracing::error!(
                            "dev: the module did not start: {e:#}; waiting for a change"
                        )
                    }
                }
            }
            Err(e) if running.is_some() => tracing::error!(
                "dev: {e:#}; the last good build keeps running; waiting for a change"
            ),
            Err(e) => tracing::error!("dev: {e:#}; waiting for a change"),
        }
        // Taken after the build, so what the build itself writes is not a change.
        let seen = Sources::scan(&project.root).await?;
        tokio::select! {
            changed = seen.next_change() => {
                tracing::info!("dev: {} changed; rebuilding", changed?.display());
            }
            signal = signals.next_stop() => return stop(running, signal).await,
        }
    }
}

/// State for a session on a new local chain: positions on an earlier chain mean nothing on
/// this one, so the default folder starts empty. One the author names is left as it is.
fn fresh_state_dir(project: &Project, asked: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = asked {
        return Ok(dir);
    }
    let dir = project.root.join("data").join("anvil");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("clearing {} for the new local chain", dir.display()))?;
    }
    Ok(dir)
}

async fn start(config: &EngineConfig, wasm: &Path, manifest: &Path) -> anyhow::Result<Runtime> {
    let builder = RuntimeBuilder::new(config.clone()).module_file(wasm.to_path_buf(), manifest)?;
    Ok(builder.start().await?)
}

async fn stop(running: Option<Runtime>, signal: &str) -> anyhow::Result<()> {
    tracing::info!(signal, "dev: stopping");
    if let Some(runtime) = running {
        runtime.shutdown().await;
    }
    tracing::info!("dev: state flushed; bye");
    Ok(())
}

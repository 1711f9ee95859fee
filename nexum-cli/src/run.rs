//! `nexum run`: boot, run until SIGINT/SIGTERM, shut down cleanly — a thin layer over
//! `nexum_host::RuntimeBuilder`.

use crate::cli::RunArgs;
use crate::signals::{Asked, Signals};
use anyhow::{Context, bail};
use nexum_host::RuntimeBuilder;
use nexum_host::core::{ChainConfig, ChainId, EngineConfig, ManifestLocation, ModuleStatus};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let builder = builder_for(&args)?;
    let mut signals = Signals::install()?;
    // A boot waits on the network (fetching components, connecting chains): a stop
    // signal meanwhile ends it.
    let runtime = tokio::select! {
        started = builder.start() => started?,
        signal = signals.next_stop() => bail!("{signal} while starting; stopped before anything ran"),
    };
    let modules = runtime.modules();
    crate::summary::print(&modules);
    // On a shared store a node starts with no module: they come with their leases.
    if !modules.is_empty()
        && modules
            .iter()
            .all(|m| m.status == ModuleStatus::Quarantined)
    {
        runtime.shutdown().await;
        bail!(
            "no module could start: the init of every module failed (reasons above); nothing to run"
        );
    }
    tracing::info!(
        "a stop waits up to {} s for calls in flight; give service managers a longer stop timeout",
        runtime.shutdown_drain().as_secs()
    );
    tracing::info!("running; press ctrl-c to stop, send SIGHUP to reload");
    let released = crate::resident::release_startup_code();
    tracing::debug!(
        mapped_mib = released >> 20,
        "let go of the resident code pages start-up used"
    );

    let signal = loop {
        match signals.next().await {
            Asked::Stop(name) => break name,
            // A stop during a reload is heard at once; the reload runs on to its end
            // (half-replaced modules would lose their sources) and the shutdown waits
            // for it.
            Asked::Reload => tokio::select! {
                reloaded = runtime.reload_config_file() => match reloaded {
                    Ok(report) => {
                        tracing::info!("SIGHUP: reloaded ({report})");
                        // A reload may have compiled: that code is start-up's too.
                        crate::resident::release_startup_code();
                    }
                    Err(e) => tracing::error!("SIGHUP: {e}"),
                },
                signal = signals.next_stop() => break signal,
            },
        }
    };
    tracing::info!(
        signal,
        "stopping: no new events; letting in-flight calls finish (a second signal exits at once)"
    );
    let summary = tokio::select! {
        summary = runtime.shutdown() => summary,
        again = signals.next_stop() => {
            // Committed state is safe (each call commits atomically); what is in flight is
            // redone after the restart.
            tracing::warn!(signal = again, "second signal: exiting now, without waiting for calls in flight");
            std::process::exit(1);
        }
    };
    for m in summary.modules {
        tracing::info!(
            module = m.name,
            handled = m.handled,
            failed = m.failed,
            trapped = m.trapped,
            "module stopped"
        );
    }
    tracing::info!("state flushed; bye");
    Ok(())
}

/// An engine.toml without modules has nothing to run; `nexum check` refuses it too.
pub fn require_modules(config: &EngineConfig, path: &std::path::Path) -> anyhow::Result<()> {
    if config.modules.is_empty() {
        bail!("{}: no [[modules]] to run", path.display());
    }
    Ok(())
}

/// What to run: an engine.toml, or one module with a synthesised engine config. Logging is
/// set up from the config before anything else is loaded.
fn builder_for(args: &RunArgs) -> anyhow::Result<RuntimeBuilder> {
    if !args.is_wasm() {
        if args.manifest.is_some() || args.state_dir.is_some() || !args.chains.is_empty() {
            bail!(
                "a manifest, --state-dir and --chain apply only when running a .wasm module; set them in {}",
                args.target.display()
            );
        }
        let config = EngineConfig::load(&args.target)?;
        crate::logging::init(&config.log_level, config.log_format)?;
        require_modules(&config, &args.target)?;
        return Ok(RuntimeBuilder::from_engine_config(config)?);
    }

    let mut config = EngineConfig {
        state_dir: args
            .state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data")),
        ..EngineConfig::default()
    };
    config.chains = chain_flags(&args.chains)?;
    crate::logging::init(&config.log_level, config.log_format)?;
    let manifest = match &args.manifest {
        Some(path) => path.clone(),
        None => {
            let found = ManifestLocation::beside(&args.target)?;
            if found.legacy {
                tracing::warn!(
                    "{}: the manifest name `nexum.toml` is deprecated; rename it to `module.toml`",
                    found.path.display()
                );
            }
            found.path
        }
    };
    Ok(RuntimeBuilder::new(config).module_file(args.target.clone(), &manifest)?)
}

/// The chains of `--chain ID=URL` flags.
pub fn chain_flags(flags: &[String]) -> anyhow::Result<BTreeMap<ChainId, ChainConfig>> {
    let mut chains = BTreeMap::new();
    for chain in flags {
        let (id, url) = chain.split_once('=').with_context(|| {
            format!("--chain {chain:?}: expected ID=URL, such as 1=wss://node.example")
        })?;
        let id: ChainId = id
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .with_context(|| format!("--chain {chain:?}: {id:?} is not a chain id"))?;
        let chain_config = ChainConfig::new(url)
            .map_err(|reason| anyhow::anyhow!("--chain {chain:?}: {reason}"))?;
        chains.insert(id, chain_config);
    }
    Ok(chains)
}

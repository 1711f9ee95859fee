//! `nexum run`: boot, run until SIGINT/SIGTERM, shut down cleanly.

use crate::cli::RunArgs;
use anyhow::{Context, bail};
use nexum_host::Runtime;
use nexum_host::core::{
    BootPlan, ChainConfig, EngineConfig, ManifestLocation, ModuleManifest, ModuleSpec, WasmSource,
};
use std::path::Path;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let (plan, warnings) = plan_for(&args)?;
    crate::logging::init(&plan.config.log_level, plan.config.log_format)?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    if plan.modules.is_empty() {
        bail!(
            "{}: no [[modules]] to run",
            plan.config.source_name().display()
        );
    }

    let runtime = Runtime::start(plan).await?;
    crate::summary::print(&runtime.modules());
    tracing::info!("running; press ctrl-c to stop");

    let signal = shutdown_signal().await?;
    tracing::info!(
        signal,
        "stopping: no new events; letting in-flight calls finish"
    );
    let summary = runtime.shutdown().await;
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

/// Reads what to run: an engine.toml, or one module with a synthesised engine config.
fn plan_for(args: &RunArgs) -> anyhow::Result<(BootPlan, Vec<String>)> {
    let is_wasm = args.target.extension().is_some_and(|e| e == "wasm");
    if !is_wasm {
        if args.manifest.is_some() || args.state_dir.is_some() || !args.chains.is_empty() {
            bail!(
                "a manifest, --state-dir and --chain apply only when running a .wasm module; set them in {}",
                args.target.display()
            );
        }
        let config = EngineConfig::load(&args.target)?;
        return Ok(config.boot_plan()?);
    }
    single_module_plan(args)
}

fn single_module_plan(args: &RunArgs) -> anyhow::Result<(BootPlan, Vec<String>)> {
    let mut warnings = Vec::new();
    let manifest_path = match &args.manifest {
        Some(path) => path.clone(),
        None => {
            let found = ManifestLocation::beside(&args.target)?;
            if found.legacy {
                warnings.push(format!(
                    "{}: the manifest name `nexum.toml` is deprecated; rename it to `module.toml`",
                    found.path.display()
                ));
            }
            found.path
        }
    };
    let manifest = ModuleManifest::load(&manifest_path)?;
    let mut config = EngineConfig {
        state_dir: args
            .state_dir
            .clone()
            .unwrap_or_else(|| Path::new("data").to_path_buf()),
        ..EngineConfig::default()
    };
    for chain in &args.chains {
        let (id, url) = chain.split_once('=').with_context(|| {
            format!("--chain {chain:?}: expected ID=URL, such as 1=wss://node.example")
        })?;
        let id: u64 = id
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .with_context(|| format!("--chain {chain:?}: {id:?} is not a chain id"))?;
        let chain_config = ChainConfig::new(url)
            .map_err(|reason| anyhow::anyhow!("--chain {chain:?}: {reason}"))?;
        config.chains.insert(id, chain_config);
    }
    config.modules.clear();
    let plan = BootPlan {
        config,
        modules: vec![ModuleSpec {
            wasm: WasmSource::File(args.target.clone()),
            manifest,
        }],
    };
    Ok((plan, warnings))
}

/// Waits for ctrl-c (SIGINT) or SIGTERM and names the one that came.
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => { result.context("waiting for ctrl-c")?; Ok("SIGINT") }
            _ = terminate.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("waiting for ctrl-c")?;
        Ok("ctrl-c")
    }
}

//! `nexum check`: everything `nexum run` would load, validated offline.

use anyhow::bail;
use nexum_host::core::{EngineConfig, ModuleManifest};
use std::path::Path;

/// Checks an engine.toml and everything it names, or a single module's manifest.
pub fn check(path: &Path) -> anyhow::Result<()> {
    if ModuleManifest::is_manifest_file(path) {
        return check_manifest(path);
    }
    let config = EngineConfig::load(path)?;
    // What `nexum run` refuses before loading anything, refused here the same way.
    crate::logging::level_filter(&config.log_level)?;
    crate::run::require_modules(&config, path)?;
    let report = nexum_host::check(&config);
    let mut failures = 0;
    for module in &report.modules {
        match &module.result {
            Ok(summary) => println!("ok     {summary}"),
            Err(problem) => {
                failures += 1;
                println!("error  {}: {problem}", module.module);
            }
        }
        for warning in &module.warnings {
            println!("warn   {}: {warning}", module.module);
        }
    }
    for problem in &report.problems {
        println!("error  {problem}");
    }
    let problems = failures + report.problems.len();
    println!(
        "{} module(s) checked, {problems} problem(s)",
        report.modules.len()
    );
    if problems > 0 {
        bail!("{}: {problems} problem(s) found", path.display());
    }
    Ok(())
}

/// A module author's check of their manifest alone: everything the manifest itself can get
/// wrong. Its component, its limits against an engine's and its chains' RPCs are checked
/// where an engine names it (`nexum check engine.toml`, `nexum run module.wasm`).
fn check_manifest(path: &Path) -> anyhow::Result<()> {
    let manifest = ModuleManifest::load(path)?;
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    let capabilities = list(
        manifest
            .capabilities
            .iter()
            .map(ToString::to_string)
            .collect(),
    );
    let chains = manifest.chains();
    let needs = if chains.is_empty() {
        String::new()
    } else {
        let chains = list(chains.iter().map(ToString::to_string).collect());
        format!(
            "; needs an RPC for chain(s) {chains} (engine.toml [chains.<id>], or --chain ID=URL)"
        )
    };
    println!(
        "ok     {} {}: capabilities {capabilities}; {} subscription(s){needs}",
        manifest.name,
        manifest.version,
        manifest.subscriptions.len(),
    );
    Ok(())
}

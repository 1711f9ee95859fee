//! `nexum fetch` and `nexum push`: components shipped by digest, through the content store
//! of `nexum_host::content`.

use anyhow::Context;
use nexum_host::core::EngineConfig;
use std::path::Path;

pub async fn fetch(engine: &Path, prune: bool) -> anyhow::Result<()> {
    let config = EngineConfig::load(engine)?;
    let report = nexum_host::content::fetch_sources(&config).await?;
    for (module, digest) in &report.fetched {
        println!("fetched   {module} {digest}");
    }
    for (module, digest) in &report.repaired {
        println!("repaired  {module} {digest} (the stored copy was damaged)");
    }
    for (module, digest) in &report.present {
        println!("present   {module} {digest}");
    }
    if prune {
        let removed = nexum_host::content::prune(&config).with_context(|| {
            format!(
                "pruning the content store in {}",
                config.state_dir.display()
            )
        })?;
        for path in &removed {
            println!("removed   {}", path.display());
        }
    }
    println!(
        "{} fetched, {} repaired, {} already present",
        report.fetched.len(),
        report.repaired.len(),
        report.present.len()
    );
    Ok(())
}

pub async fn push(wasm: &Path, reference: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    // Only a component runs in nexum: refuse anything else before it leaves the machine.
    nexum_host::inspect(&bytes)
        .with_context(|| format!("{} is not a component nexum runs", wasm.display()))?;
    let digest = nexum_host::content::push(bytes, reference)
        .await
        .map_err(|e| anyhow::anyhow!("pushing to {reference}: {e}"))?;
    println!("pushed {} to {reference}", wasm.display());
    println!("pin it in engine.toml:\n  source = \"{reference}\"\n  sha256 = \"{digest}\"");
    Ok(())
}

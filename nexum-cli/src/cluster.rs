//! `nexum cluster status`: the nodes sharing an engine's store, and who runs which module.

use anyhow::{Context, bail};
use nexum_host::core::EngineConfig;
use std::path::Path;

pub async fn status(engine: &Path) -> anyhow::Result<()> {
    let config = EngineConfig::load(engine)?;
    let Some(store) = config.store.clone() else {
        bail!(
            "{}: no [engine] store: this engine runs on one node, with its state in {}",
            engine.display(),
            config.state_dir.display()
        );
    };
    let shown = store.to_string();
    let status = tokio::task::spawn_blocking(move || nexum_host::cluster::status(&store))
        .await
        .context("reading the cluster")?
        .with_context(|| format!("shared store {shown}"))?;
    println!("nodes:");
    for (node, since_ms, left) in &status.nodes {
        let state = if *left {
            "left".to_string()
        } else {
            format!("seen {since_ms} ms ago")
        };
        println!("  {node}  {state}");
    }
    println!("leases:");
    for lease in &status.leases {
        let expiry = if lease.expires_in_ms >= 0 {
            format!("expires in {} ms", lease.expires_in_ms)
        } else {
            "expired".to_string()
        };
        println!(
            "  {}  owner {}  epoch {}  {expiry}",
            lease.module, lease.owner, lease.epoch
        );
    }
    Ok(())
}

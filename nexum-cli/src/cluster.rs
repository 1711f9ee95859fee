//! `nexum cluster status`: the nodes sharing an engine's store, who runs which module, and
//! how far behind each chain's head every module is.

use anyhow::{Context, bail};
use nexum_host::core::{BootPlan, EngineConfig, ModuleName};
use nexum_host::{Ledger, Position};
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
    let (plan, _) = BootPlan::from_config(&config)?;
    let shown = store.to_string();
    let (status, progress) = tokio::task::spawn_blocking(move || {
        let status = nexum_host::cluster::status(&store)?;
        let ledger = Ledger::open_shared(&store)?;
        let progress = plan
            .modules
            .iter()
            .map(|spec| {
                let name: ModuleName = spec.manifest.name.clone();
                let positions = ledger.positions(&name, &spec.manifest.subscriptions)?;
                Ok((name, positions))
            })
            .collect::<Result<Vec<(ModuleName, Vec<Position>)>, nexum_host::StoreError>>()?;
        Ok::<_, nexum_host::StoreError>((status, progress))
    })
    .await
    .context("reading the cluster")?
    .with_context(|| format!("shared store {shown}"))?;
    let heads = nexum_host::chain_heads(&config.chains).await;

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
    println!("chains:");
    for (chain, head) in &heads {
        match head {
            Ok(number) => println!("  {chain}  head {number}"),
            Err(why) => println!("  {chain}  head unknown: {why}"),
        }
    }
    println!("progress:");
    for (module, positions) in &progress {
        for position in positions {
            let head = heads.get(&position.chain_id).and_then(|h| h.as_ref().ok());
            let said = match (position.handled_through, head) {
                (Some(handled), Some(head)) => format!(
                    "handled through {handled}, lag {}",
                    head.saturating_sub(handled)
                ),
                (Some(handled), None) => format!("handled through {handled}"),
                (None, _) => "nothing handled yet".to_string(),
            };
            println!(
                "  {module} [{}] chain {}  {said}",
                position.subscription, position.chain_id
            );
        }
    }
    Ok(())
}

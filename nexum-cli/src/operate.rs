//! `nexum status`, `nexum reload`, `nexum replay` and `nexum restart`: an operator's view of
//! and hand on a running engine, through its admin API. `status` also reads a stopped
//! engine's state files.

use crate::admin_client::Reach;
use crate::store::open;
use nexum_host::admin::StatusReport;
use nexum_host::core::{BootPlan, EngineConfig, ModuleName};
use nexum_host::{ReloadReport, ReplayReport};
use std::path::Path;

pub async fn status(engine: &Path) -> anyhow::Result<()> {
    let config = EngineConfig::load(engine)?;
    match Reach::of(&config).await? {
        Reach::Running(admin) => {
            let report: StatusReport = admin.get("/v1/status", &[]).await?;
            print_live(&report);
            Ok(())
        }
        reach => {
            let why = match reach {
                Reach::NotRunning(addr) => format!("nothing answers at {addr}"),
                _ => "no [admin] configured".to_string(),
            };
            let state = open(engine, &config).await?;
            println!(
                "engine not running ({why}); from the state in {}:",
                config.state_dir.display()
            );
            let (plan, _) = BootPlan::from_config(&config)?;
            for spec in plan.modules {
                let name: ModuleName = spec.manifest.name.clone();
                let letters = state.dead_letter_count(name.as_str())?;
                println!("{name}  dead letters: {letters}");
                for position in state.positions(&name, &spec.manifest.subscriptions)? {
                    let subscription = &spec.manifest.subscriptions[position.subscription];
                    let handled = position
                        .handled_through
                        .map_or("nothing yet".to_string(), |b| format!("block {b}"));
                    println!(
                        "  [{}] {subscription}: handled through {handled}",
                        position.subscription
                    );
                }
            }
            Ok(())
        }
    }
}

fn print_live(report: &StatusReport) {
    println!(
        "engine running: {}",
        if report.healthy {
            "healthy".to_string()
        } else {
            format!("unhealthy: {}", report.problems.join("; "))
        }
    );
    for m in &report.modules {
        println!(
            "{}  {}  {}  handled {} failed {} trapped {}  store {} bytes  dead letters {}",
            m.name,
            m.version,
            m.status,
            m.handled,
            m.failed,
            m.trapped,
            m.store_bytes,
            m.dead_letters
        );
        for s in &m.subscriptions {
            let position = match (s.handled_through, s.head, s.lag) {
                (Some(handled), Some(head), Some(lag)) => {
                    format!("handled through {handled}, head {head}, lag {lag}")
                }
                (Some(handled), _, _) => format!("handled through {handled}"),
                (None, Some(head), _) => format!("nothing handled yet, head {head}"),
                (None, None, _) => String::new(),
            };
            println!("  [{}] {}  {position}", s.index, s.subscription);
        }
    }
}

pub async fn reload(engine: &Path) -> anyhow::Result<()> {
    let config = EngineConfig::load(engine)?;
    let admin = Reach::of(&config).await?.require(engine, "reload")?;
    let report: ReloadReport = admin.post("/v1/reload").await?;
    println!("reloaded: {report}");
    Ok(())
}

pub async fn replay(engine: &Path, module: &str) -> anyhow::Result<()> {
    ModuleName::new(module).map_err(anyhow::Error::msg)?;
    let config = EngineConfig::load(engine)?;
    let admin = Reach::of(&config).await?.require(engine, "replay")?;
    let report: ReplayReport = admin.post(&format!("/v1/modules/{module}/replay")).await?;
    println!(
        "{module}: {} handled, {} failed again (dead-lettered anew), {} kept",
        report.handled, report.failed_again, report.kept
    );
    Ok(())
}

pub async fn restart(engine: &Path, module: &str) -> anyhow::Result<()> {
    ModuleName::new(module).map_err(anyhow::Error::msg)?;
    let config = EngineConfig::load(engine)?;
    let admin = Reach::of(&config).await?.require(engine, "restart")?;
    let _: serde_json::Value = admin.post(&format!("/v1/modules/{module}/restart")).await?;
    println!("{module}: restarted");
    Ok(())
}

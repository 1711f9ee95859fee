//! `nexum store` and `nexum dead-letters`: read-only views of an engine's state.

use anyhow::bail;
use nexum_host::core::{EngineConfig, Event, ModuleName};
use nexum_host::{Ledger, StoreError};
use std::path::Path;

use crate::cli::StoreAction;

fn open(engine: &Path) -> anyhow::Result<Ledger> {
    let config = EngineConfig::load(engine)?;
    if !config.state_dir.is_dir() {
        bail!(
            "{}: no state yet (engine.state_dir is {})",
            engine.display(),
            config.state_dir.display()
        );
    }
    let dir = config.state_dir.display();
    Ledger::open(&config.state_dir).map_err(|e| match e {
        StoreError::Locked => {
            anyhow::anyhow!("the state in {dir} is in use: is this engine running? stop it first")
        }
        other => anyhow::anyhow!("cannot open the state in {dir}: {other}"),
    })
}

pub fn store(engine: &Path, module: &str, action: Option<StoreAction>) -> anyhow::Result<()> {
    let name = ModuleName::new(module).map_err(anyhow::Error::msg)?;
    let state = open(engine)?;
    match action.unwrap_or(StoreAction::List { prefix: None }) {
        StoreAction::List { prefix } => {
            let entries = state.list(&name, prefix.as_deref().unwrap_or(""))?;
            for (key, value) in &entries {
                println!("{key}  ({} bytes)", value.len());
            }
            println!("{} key(s)", entries.len());
        }
        StoreAction::Get { key } => match state.read(&name, &key)? {
            Some(value) => match String::from_utf8(value) {
                Ok(text) => println!("{text}"),
                Err(e) => println!("0x{}", hex_of(e.as_bytes())),
            },
            None => bail!("module `{module}` has no key {key:?}"),
        },
    }
    Ok(())
}

pub fn dead_letters(engine: &Path, module: Option<&str>) -> anyhow::Result<()> {
    let state = open(engine)?;
    let letters = state.dead_letters(module)?;
    for letter in &letters {
        let at = chrono::DateTime::from_timestamp_millis(letter.at_ms as i64)
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| letter.at_ms.to_string());
        println!(
            "{at}  {}  subscription {}  {}  after {} attempt(s): {}",
            letter.module,
            letter
                .subscription
                .map_or("-".to_string(), |s| s.to_string()),
            describe(&letter.event),
            letter.attempts,
            letter.reason
        );
    }
    println!("{} dead letter(s)", letters.len());
    Ok(())
}

fn describe(event: &Event) -> String {
    match event {
        Event::Block(b) => format!("block {} on chain {}", b.number, b.chain_id),
        Event::ChainLogs(l) => {
            let block = l
                .logs
                .first()
                .and_then(|log| log.block_number)
                .unwrap_or_default();
            format!(
                "{} log(s) of block {block} on chain {}",
                l.logs.len(),
                l.chain_id
            )
        }
        Event::Tick(t) => format!("tick {:?} at {}", t.schedule, t.fired_at),
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

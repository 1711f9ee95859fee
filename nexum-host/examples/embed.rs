//! A Rust service embedding nexum: it boots a module from bytes, feeds it blocks from a
//! source of its own, prints what the module logs, and reads what it stored.
//!
//! ```text
//! cargo run -p nexum-host --example embed                      # the block-logger example
//! cargo run -p nexum-host --example embed -- path/to/block_logger.wasm
//! ```
//!
//! Without a path it builds the example modules first (needs the `wasm32-wasip2` target,
//! which `scripts/test.sh` and `scripts/demo.sh` install).

use nexum_host::Runtime;
use nexum_host::core::{B256, Block, EngineConfig, Event};
use std::error::Error;

/// The module's manifest, kept in code. No `[[subscription]]`: every event comes from the
/// service through `Runtime::dispatch`, so nexum opens no chain connection of its own.
const MANIFEST: &str = r#"
[module]
name = "block-logger"
version = "0.1.0"

[capabilities]
required = ["local-store", "logging"]
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let wasm = match std::env::args_os().nth(1) {
        Some(path) => std::fs::read(path)?,
        None => nexum_tests::guests::wasm_bytes("block-logger"),
    };
    let state = tempfile::tempdir()?;
    let config = EngineConfig {
        state_dir: state.path().join("state"),
        ..EngineConfig::default()
    };

    let builder =
        Runtime::builder(config).module_bytes(wasm, MANIFEST, "block-logger (in code)")?;
    let mut log_lines = builder.log_lines();
    let runtime = builder.start().await?;

    for block in own_block_source() {
        let number = block.number;
        let outcome = runtime
            .dispatch("block-logger", Event::Block(block))
            .await?;
        println!("block {number} -> {outcome:?}");
        // A module's log lines are published before its call returns.
        while let Ok(line) = log_lines.try_recv() {
            println!(
                "  {} logged ({:?}): {}",
                line.module, line.level, line.message
            );
        }
    }

    let stored = runtime
        .read("block-logger", "last-block")?
        .unwrap_or_default();
    println!(
        "stored under `last-block`: {}",
        String::from_utf8_lossy(&stored)
    );

    let summary = runtime.shutdown().await;
    for totals in summary.modules {
        println!(
            "{}: {} handled, {} failed, {} trapped",
            totals.name, totals.handled, totals.failed, totals.trapped
        );
    }
    Ok(())
}

/// Stands in for the service's own feed: blocks 1 to 4, then a competing block 4 (a fork
/// the module notices because its parent is not the block 3 it saw).
fn own_block_source() -> Vec<Block> {
    let block = |number: u64, hash: u8, parent: u8| Block {
        chain_id: 31337,
        number,
        hash: B256::repeat_byte(hash),
        parent_hash: B256::repeat_byte(parent),
        timestamp: 1_700_000_000_000 + number * 12_000,
    };
    vec![
        block(1, 0x01, 0x00),
        block(2, 0x02, 0x01),
        block(3, 0x03, 0x02),
        block(4, 0x04, 0x03),
        block(4, 0x14, 0x13),
    ]
}

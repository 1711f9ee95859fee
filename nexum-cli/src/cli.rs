//! Command-line arguments.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Runs event-driven automation modules (WebAssembly components) on EVM chains.
#[derive(Debug, Parser)]
#[command(name = "nexum", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the modules of an engine.toml, or one module.
    #[command(after_help = "\
Examples:
  nexum run engine.toml
  nexum run modules/heartbeat.wasm                  # uses modules/module.toml
  nexum run twap.wasm twap.toml --chain 1=wss://node.example/ws --state-dir ./data")]
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// An engine.toml, or a module's .wasm component.
    pub target: PathBuf,
    /// The module's manifest when TARGET is a .wasm (default: module.toml beside it).
    pub manifest: Option<PathBuf>,
    /// Where state lives when running a single module (default: ./data).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A chain RPC for a single module, as ID=URL (repeatable).
    #[arg(long = "chain", value_name = "ID=URL")]
    pub chains: Vec<String>,
}

//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Runs event-driven automation modules (WebAssembly components) on EVM chains.
#[derive(Debug, Parser)]
#[command(
    name = "nexum",
    version,
    about,
    propagate_version = true,
    args_conflicts_with_subcommands = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Run this engine.toml: the seed system's spelling of `nexum run PATH`.
    #[arg(long, value_name = "PATH")]
    pub engine_config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The command to run; `--engine-config PATH` is `run PATH`.
    pub fn into_command(self) -> Command {
        match (self.command, self.engine_config) {
            (Some(command), _) => command,
            (None, Some(target)) => Command::Run(RunArgs {
                target,
                manifest: None,
                state_dir: None,
                chains: Vec::new(),
            }),
            // `arg_required_else_help` prints the help before this is reached.
            (None, None) => unreachable!("clap requires a command or --engine-config"),
        }
    }
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

    /// Validate an engine.toml and everything it names, or one module's manifest, offline,
    /// without running anything.
    #[command(after_help = "\
Checks every manifest, sha256 pin, component (its world and imports against the declared
capabilities), limit and chain reference. Prints one line per module; exits 1 listing every
problem. Given a module's manifest (a file with a [module] table), checks that manifest.

Examples:
  nexum check engine.toml
  nexum check module.toml")]
    Check {
        /// The engine.toml (or module manifest) to check.
        engine: PathBuf,
    },

    /// Describe a component: world, imports, exports, size and sha256.
    #[command(after_help = "\
Examples:
  nexum inspect build/modules/twap-keeper.wasm")]
    Inspect {
        /// The component.
        wasm: PathBuf,
    },

    /// Print a component's sha256 as engine.toml (`sha256 = \"sha256:…\"`) and module.toml
    /// (`component = \"sha256:…\"`) pin it.
    #[command(after_help = "\
Examples:
  nexum hash build/modules/heartbeat.wasm")]
    Hash {
        /// The component.
        wasm: PathBuf,
    },

    /// Create a module crate that builds for wasm32-wasip2 and runs under `nexum run`.
    #[command(after_help = "\
Templates in Rust: cron (a heartbeat), block (follows blocks), logs (counts a contract's
events), twap (a CoW Protocol conditional-order keeper). In JavaScript and Python: js and py
(count a contract's events, follow blocks, read chain state), each with a small helper
library and tests against a fake host. Each comes with its module.toml and unit tests that
run natively; `nexum dev` in the new folder builds and runs any of them.

Examples:
  nexum new my-keeper
  nexum new watcher --template logs --dir ~/modules
  nexum new counter --template js && cd counter && nexum dev
  cd my-keeper && cargo build --target wasm32-wasip2 --release
  nexum run target/wasm32-wasip2/release/my_keeper.wasm module.toml")]
    New(NewArgs),

    /// Build the module in this folder, run it against a chain, and rebuild and restart it
    /// whenever its sources change.
    #[command(after_help = "\
Works in a folder made by `nexum new` (any template): Rust (Cargo.toml), JavaScript
(package.json: `npm run build`) or Python (build.py). Without --chain it starts a local
Anvil chain (31337, a block a second; `anvil` must be on PATH) whose state is new each
session, so the module's state (data/anvil) starts afresh with it; with --chain the state
(data/) is kept across sessions. A failed build leaves the running version up. Modules
are compiled with nexum's default compiler (Winch, the fast baseline one, on x86-64).

Examples:
  nexum dev
  nexum dev my-keeper --chain 31337=ws://127.0.0.1:8545")]
    Dev(DevArgs),

    /// Show what a module keeps in its store (read-only): through the admin API while the
    /// engine runs, from the state files when it is stopped.
    #[command(after_help = "\
Examples:
  nexum store engine.toml twap-keeper            # list keys with their sizes
  nexum store engine.toml twap-keeper list watch/
  nexum store engine.toml twap-keeper get last-block
  nexum store --state-dir data/anvil my-keeper   # a single module's state (nexum run/dev)")]
    Store {
        /// The engine.toml whose state to read (not with --state-dir).
        #[arg(value_name = "ENGINE")]
        engine: Option<PathBuf>,
        /// The module.
        #[arg(value_name = "MODULE")]
        module: Option<String>,
        /// Read the state files in this folder instead of an engine.toml's (a module run
        /// with `nexum run module.wasm` or `nexum dev`; it must be stopped).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<StoreAction>,
    },

    /// List the events modules failed to handle and skipped (read-only; live through the
    /// admin API, or from the state files).
    #[command(after_help = "\
Examples:
  nexum dead-letters engine.toml
  nexum dead-letters engine.toml --module twap-keeper
  nexum dead-letters --state-dir data")]
    DeadLetters {
        /// The engine.toml whose state to read.
        #[arg(required_unless_present = "state_dir", conflicts_with = "state_dir")]
        engine: Option<PathBuf>,
        /// Read the state files in this folder instead of an engine.toml's (a module run
        /// with `nexum run module.wasm` or `nexum dev`; it must be stopped).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Only this module's.
        #[arg(long)]
        module: Option<String>,
    },

    /// Show each module's state and each subscription's position and lag.
    #[command(after_help = "\
Through the admin API ([admin] in engine.toml) while the engine runs; from the state files
(positions and dead letters) when it is stopped.

Examples:
  nexum status engine.toml")]
    Status {
        /// The engine.toml of the engine.
        engine: PathBuf,
    },

    /// Make a running engine re-read engine.toml and its manifests (like SIGHUP).
    #[command(after_help = "\
Adds, removes and upgrades modules in place; the others keep running. A config that does
not validate, or that changes settings outside [[modules]], is refused whole and the
running engine is left as it was. Needs the admin API ([admin] in engine.toml).

Examples:
  nexum reload engine.toml
  kill -HUP $(pidof nexum)      # the same, by signal")]
    Reload {
        /// The engine.toml of the running engine.
        engine: PathBuf,
    },

    /// Hand a module its dead letters again, once it is fixed.
    #[command(after_help = "\
Each letter the module now handles is removed in the same commit as its writes; one it
fails again is dead-lettered anew with the new reason. Needs the admin API.

Examples:
  nexum replay engine.toml twap-keeper")]
    Replay {
        /// The engine.toml of the running engine.
        engine: PathBuf,
        /// The module.
        module: String,
    },

    /// Nodes sharing one PostgreSQL store: who runs which module.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },

    /// Fetch every module's component named by a `source` into the content store.
    #[command(after_help = "\
Each component is checked against its sha256 pin before it is stored; what the store
already holds (and still matches) is not fetched again. Run it before a deploy so the
engine boots without the network.

Examples:
  nexum fetch engine.toml
  nexum fetch engine.toml --prune      # also remove components no module names")]
    Fetch {
        /// The engine.toml whose sources to fetch.
        engine: PathBuf,
        /// Remove stored components that no `[[modules]]` entry names any more.
        #[arg(long)]
        prune: bool,
    },

    /// Push a component to an OCI registry, and print the pin to put in engine.toml.
    #[command(after_help = "\
Credentials: NEXUM_REGISTRY_USERNAME and NEXUM_REGISTRY_PASSWORD (or NEXUM_REGISTRY_TOKEN),
else the docker config (~/.docker/config.json). Registries on loopback are spoken to over
HTTP, every other over HTTPS.

Examples:
  nexum push target/wasm32-wasip2/release/my_keeper.wasm oci://ghcr.io/acme/my-keeper:1.0.0")]
    Push {
        /// The component.
        wasm: PathBuf,
        /// Where to: oci://REGISTRY/REPOSITORY:TAG.
        reference: String,
    },

    /// Write a backup of the whole state (modules' stores, cursors, dead letters) to a file.
    #[command(after_help = "\
While the engine runs, through its admin API: the backup is read at one instant and the
engine keeps going. When it is stopped, from the state files. The file is checked before
this command says it is done. Nodes sharing a PostgreSQL store back it up with
PostgreSQL's tools instead.

Examples:
  nexum backup engine.toml /backups/nexum-2026-12-05.nxb")]
    Backup {
        /// The engine.toml whose state to back up.
        engine: PathBuf,
        /// The file to write (must not exist yet).
        dest: PathBuf,
    },

    /// Put a backup back into the engine's empty state directory.
    #[command(after_help = "\
The state_dir of the engine.toml must be empty or absent; the whole backup is checked
before anything is written. Then `nexum run` resumes every module from the backup's
cursors: events after it are delivered again from the chain.

Examples:
  nexum restore engine.toml /backups/nexum-2026-12-05.nxb")]
    Restore {
        /// The engine.toml whose state_dir to fill.
        engine: PathBuf,
        /// The backup file.
        backup: PathBuf,
    },

    /// Start a module again with a fresh instance (takes it out of quarantine).
    #[command(after_help = "\
The module resumes from its committed cursors. Needs the admin API.

Examples:
  nexum restart engine.toml twap-keeper")]
    Restart {
        /// The engine.toml of the running engine.
        engine: PathBuf,
        /// The module.
        module: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterAction {
    /// The nodes sharing the store, and each module's lease: owner, epoch, expiry.
    #[command(after_help = "\
Examples:
  nexum cluster status engine.toml")]
    Status {
        /// The engine.toml all the nodes run.
        engine: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Keys starting with a prefix (all when omitted), with their sizes.
    List {
        /// The prefix.
        prefix: Option<String>,
    },
    /// One value (UTF-8 text as is, anything else as hex).
    Get {
        /// The key.
        key: String,
    },
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

impl RunArgs {
    /// Whether TARGET is one module's component rather than an engine.toml.
    pub fn is_wasm(&self) -> bool {
        self.target.extension().is_some_and(|e| e == "wasm")
    }
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// The module's folder (default: the current one).
    pub dir: Option<PathBuf>,
    /// A chain RPC, as ID=URL (repeatable); without one, a local Anvil is started.
    #[arg(long = "chain", value_name = "ID=URL")]
    pub chains: Vec<String>,
    /// Where state lives (default: data/ in the module's folder, data/anvil with a local
    /// Anvil).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// What a new module starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// A cron heartbeat.
    Cron,
    /// Follows new blocks.
    Block,
    /// Counts a contract's events.
    Logs,
    /// Keeps CoW Protocol conditional orders alive.
    Twap,
    /// JavaScript (componentize-js): counts a contract's events and follows blocks.
    Js,
    /// Python (componentize-py): counts a contract's events and follows blocks.
    Py,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The module's name (1-64 of a-z, 0-9, `_`, `-`); also its directory.
    pub name: String,
    /// What to start from.
    #[arg(long, value_enum, default_value_t = Template::Cron)]
    pub template: Template,
    /// Where to create it (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The nexum-guest SDK to depend on (default: the one this nexum was built with).
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

//! The nexum runtime as a library: runs keeper modules — WebAssembly components — on
//! events from EVM chains, cron schedules and the embedding service itself.
//!
//! The `nexum` command is one user of this crate; a Rust service embeds the same runtime:
//! [`RuntimeBuilder`] takes an engine config and modules and starts a [`Runtime`], inside
//! which the chain sources, delivery cursors and cron run exactly as under `nexum run`.
//! Event and configuration types come from `nexum-core`, re-exported as [`core`].
//!
//! # Start a runtime, hand it events, read what modules stored
//!
//! Modules come from files ([`RuntimeBuilder::module_file`]) or from bytes plus a
//! manifest ([`RuntimeBuilder::module_bytes`]). [`Runtime::dispatch`] hands an event the
//! service produced itself (from a queue, a webhook…) to one module and returns its
//! outcome; the module's writes are committed only when it returns `ok`.
//!
//! ```
//! use nexum_host::Runtime;
//! use nexum_host::core::{EngineConfig, Event, ModuleStatus, Outcome, Tick};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let wasm = nexum_tests::guests::wasm_bytes("heartbeat");
//! # let dir = tempfile::tempdir()?;
//! let mut config = EngineConfig::default();
//! config.state_dir = dir.path().join("state");
//! let manifest = r#"
//!     [module]
//!     name = "heartbeat"
//!     version = "0.1.0"
//!     [capabilities]
//!     required = ["local-store", "logging"]
//! "#;
//! let runtime = Runtime::builder(config)
//!     .module_bytes(wasm, manifest, "heartbeat.toml")?
//!     .start()
//!     .await?;
//!
//! let modules = runtime.modules();
//! assert_eq!((modules[0].name.as_str(), modules[0].status), ("heartbeat", ModuleStatus::Running));
//!
//! let tick = Event::Tick(Tick { fired_at: 1_000, schedule: "from my queue".into() });
//! assert_eq!(runtime.dispatch("heartbeat", tick).await?, Outcome::Handled);
//! assert_eq!(runtime.read("heartbeat", "beats")?, Some(b"1".to_vec()));
//!
//! let summary = runtime.shutdown().await; // stops intake, finishes calls, flushes the store
//! assert_eq!(summary.modules[0].handled, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Configure from TOML, and broadcast to subscribers
//!
//! [`RuntimeBuilder::from_engine_toml`] reads an `engine.toml` with its `[[modules]]`; an
//! [`EngineConfig`](core::EngineConfig) parsed from text works the same way.
//! [`Runtime::broadcast`] routes an event like nexum's own sources do: to every module with
//! a matching subscription (for logs, only the matching logs).
//!
//! ```
//! use nexum_host::Runtime;
//! use nexum_host::core::{EngineConfig, Event, Outcome, Tick};
//! use std::path::Path;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let wasm = nexum_tests::guests::wasm_bytes("heartbeat");
//! # let dir = tempfile::tempdir()?;
//! # let state_dir = dir.path().join("state");
//! let text = format!("[engine]\nstate_dir = {state_dir:?}\nlog_level = \"warn\"\n");
//! let config = EngineConfig::parse(Path::new("engine.toml"), &text, &|var| std::env::var(var).ok())?;
//! let manifest = r#"
//!     [module]
//!     name = "new-year"
//!     version = "0.1.0"
//!     [capabilities]
//!     required = ["local-store", "logging"]
//!     [[subscription]]
//!     kind = "cron"
//!     schedule = "0 0 1 1 *"
//! "#;
//! let runtime = Runtime::builder(config)
//!     .module_bytes(wasm, manifest, "new-year.toml")?
//!     .start()
//!     .await?;
//!
//! let tick = Event::Tick(Tick { fired_at: 0, schedule: "0 0 1 1 *".into() });
//! let outcomes = runtime.broadcast(tick).await;
//! assert_eq!(outcomes, [("new-year".to_string(), Ok(Outcome::Handled))]);
//! runtime.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Watch modules: lifecycle changes and log lines
//!
//! Take the receivers from the builder to see boot itself, or later from the runtime.
//!
//! ```
//! use nexum_host::RuntimeBuilder;
//! use nexum_host::core::{EngineConfig, Event, Lifecycle, Tick};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let wasm = nexum_tests::guests::wasm_bytes("heartbeat");
//! # let dir = tempfile::tempdir()?;
//! # let mut config = EngineConfig::default();
//! # config.state_dir = dir.path().join("state");
//! # let manifest = "[module]\nname = \"heartbeat\"\nversion = \"0.1.0\"\n\
//! #     [capabilities]\nrequired = [\"local-store\", \"logging\"]\n";
//! let builder = RuntimeBuilder::new(config).module_bytes(wasm, manifest, "heartbeat.toml")?;
//! let mut lifecycle = builder.lifecycle();
//! let mut log_lines = builder.log_lines();
//! let runtime = builder.start().await?;
//!
//! let started = lifecycle.recv().await?;
//! assert_eq!((started.module.as_str(), started.change), ("heartbeat", Lifecycle::Started));
//!
//! let tick = Event::Tick(Tick { fired_at: 1_000, schedule: "manual".into() });
//! runtime.dispatch("heartbeat", tick).await?;
//! let line = log_lines.recv().await?;
//! assert_eq!(line.message, "heartbeat beat #1 (tick at 1000 ms)");
//! runtime.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Give modules a host interface of your own
//!
//! A [`HostExtension`] links an interface from the service's own WIT package into every
//! module's linker. Generate its bindings with the [`wasmtime`] re-exported here, so the
//! versions always match; a module importing an interface no one provides is refused at load.
//!
//! ```
//! use nexum_host::wasmtime::component::{HasSelf, Linker};
//! use nexum_host::{HostExtension, ModuleState, Runtime};
//! # use nexum_host::core::{EngineConfig, Event, Tick};
//!
//! mod bindings {
//!     nexum_host::wasmtime::component::bindgen!({
//!         inline: "
//!             package acme:greeter@0.1.0;
//!             interface greet { hello: func(name: string) -> string; }
//!             world greeter-user { import greet; }
//!         ",
//!         wasmtime_crate: nexum_host::wasmtime,
//!     });
//! }
//! use bindings::acme::greeter::greet;
//!
//! /// How many greetings one module instance was given (its state for this extension).
//! struct Greeted(u32);
//!
//! impl greet::Host for ModuleState {
//!     fn hello(&mut self, name: String) -> String {
//!         let greeted = self.extension_state::<Greeted>().expect("made by module_state");
//!         greeted.0 += 1;
//!         let count = greeted.0;
//!         format!("hello {name} (#{count}), from the host of {}", self.module_name())
//!     }
//! }
//!
//! struct Greeter;
//!
//! impl HostExtension for Greeter {
//!     fn interfaces(&self) -> Vec<String> {
//!         vec!["acme:greeter/greet".into()]
//!     }
//!     fn link(&self, linker: &mut Linker<ModuleState>) -> nexum_host::wasmtime::Result<()> {
//!         greet::add_to_linker::<ModuleState, HasSelf<ModuleState>>(linker, |state| state)
//!     }
//!     fn module_state(&self, _module: &str) -> Option<Box<dyn std::any::Any + Send>> {
//!         Some(Box::new(Greeted(0)))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let wasm = nexum_tests::guests::wasm_bytes("ext-user"); // stores hello(tick.schedule)
//! # let dir = tempfile::tempdir()?;
//! # let mut config = EngineConfig::default();
//! # config.state_dir = dir.path().join("state");
//! # let manifest = "[module]\nname = \"greeter\"\nversion = \"0.1.0\"\n\
//! #     [capabilities]\nrequired = [\"local-store\", \"logging\"]\n";
//! let runtime = Runtime::builder(config)
//!     .module_bytes(wasm, manifest, "greeter.toml")?
//!     .extension(Greeter)
//!     .start()
//!     .await?;
//! # let tick = Event::Tick(Tick { fired_at: 0, schedule: "world".into() });
//! # runtime.dispatch("greeter", tick).await?;
//! let greeting = runtime.read("greeter", "greeting")?;
//! assert_eq!(greeting.as_deref(), Some(&b"hello world (#1), from the host of greeter"[..]));
//! # runtime.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Inside
//!
//! - `builder`: [`RuntimeBuilder`], how embedders start a [`Runtime`];
//! - `boot`: turns the plan into running parts, leaving nothing half-started on failure;
//! - [`content`]: components named by a `source` (OCI registry, HTTP(S)), fetched into a
//!   content store and checked against their pin;
//! - `module/`: loading (digest pin, import check, compile cache) and one call under
//!   fuel, memory and a deadline;
//! - `supervisor/`: nexum's [`core::supervisor::Supervisor`]: a queue and worker task per
//!   module, retries, restarts, quarantine; modules added, replaced and removed while the
//!   others run;
//! - `runtime/`: the [`Runtime`] handle, each module's own sources, reload, and operator
//!   actions (restart a module, replay its dead letters);
//! - `ledger/`: the engine's records (where each subscription stands, dead letters) and
//!   the module stores, over one storage with atomic commits ([`Ledger`]);
//! - `capabilities/`: the host interfaces a module can import (`local-store`, `logging`,
//!   `chain`, `cow-api`), each a backend plus its WIT glue;
//! - `chain/` and `sources/`: node clients, and the chain and cron sources with their
//!   cursors, backfill and reorg handling;
//! - `engine`, [`extension`], `state`: the wasmtime engine and linker, embedders'
//!   interfaces, and the host state of one instance;
//! - `observers`: lifecycle and log-line streams for embedders;
//! - [`telemetry`]: Prometheus metrics and `/healthz`; [`admin`]: the admin API; both
//!   served by `http_endpoint`;
//! - [`check`], [`inspect`]: what `nexum check` and `nexum inspect` report.

// Every dependency earns its place (test targets also see dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]
pub mod admin;
mod bindings;
mod boot;
mod builder;
mod capabilities;
mod chain;
mod check;
pub mod cluster;
pub mod content;
mod convert;
mod engine;
pub mod extension;
mod http_endpoint;
mod inspect;
mod ledger;
mod module;
mod observers;
mod runtime;
mod sources;
mod state;
mod supervisor;
pub mod telemetry;

pub use boot::BootError;
pub use builder::RuntimeBuilder;
pub use chain::{ChainStatus, ConnectError, NodeError, chain_heads};
pub use check::{CheckReport, ModuleCheck, check};
pub use engine::EngineError;
pub use extension::HostExtension;
pub use inspect::{ComponentReport, Import, InspectError, inspect};
pub use ledger::{
    BackupError, BackupSummary, DeadLetter, DeadLetterPage, Ledger, Position, StoreError,
};
pub use module::LoadError;
pub use nexum_core as core;
pub use runtime::{ReloadError, ReloadReport, ReplayReport, Runtime, RuntimeError};
pub use sources::StartError;
pub use state::ModuleState;
/// The wasmtime this runtime is built on, for [`extension`]s to generate bindings with.
pub use wasmtime;

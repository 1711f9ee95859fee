//! The vocabulary of nexum: what a module receives, what it asks for, and how it is configured.
//!
//! This crate holds plain data and parsing only — no wasmtime, no network — so that the
//! runtime (`nexum-host`), the command line (`nexum-cli`) and embedding services agree on
//! one set of types:
//!
//! - [`event`]: the events delivered to modules (blocks, chain logs, cron ticks);
//! - [`subscription`]: what a module subscribes to, and [`LogFilter`] matching;
//! - [`manifest`]: `module.toml` parsing and validation;
//! - [`engine_config`]: `engine.toml` parsing, `${VAR}` substitution and validation;
//! - [`limits`]: resource limits and how a manifest may lower them;
//! - [`redact`]: the one rule for showing URLs that may carry API keys;
//! - [`host_rules`]: what the host accepts from a module (shared with the SDK's test host),
//!   and [`bounded`]: how a module's text is cut and escaped;
//! - [`plan`]: what a runtime boots from (the config and each module's component and
//!   manifest);
//! - [`supervisor`]: the [`Supervisor`] trait that event sources and front-ends drive.
//!
//! Every configuration error is a [`ConfigError`] naming the file, the field and the reason.
//! The runtime that implements [`Supervisor`] lives in `nexum-host`.

// Every dependency earns its place (test targets also see dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod bounded;
pub mod capability;
pub mod config_value;
pub mod cron;
pub mod engine_config;
mod env_subst;
pub mod error;
pub mod event;
pub mod host_rules;
pub mod limits;
pub mod manifest;
pub mod plan;
pub mod redact;
pub mod source;
pub mod subscription;
pub mod supervisor;
mod toml_file;

pub use capability::Capability;
pub use cron::CronSchedule;
pub use engine_config::{
    AdminConfig, ChainConfig, ClusterConfig, Compiler, Durability, EngineConfig, LogFormat,
    ModuleEntry, SharedStore,
};
pub use error::ConfigError;
pub use event::{Block, ChainId, ChainLog, ChainLogs, Event, Tick};
pub use limits::{DeliveryPolicy, LimitOverrides, Limits, Supervision};
pub use manifest::{ComponentDigest, ManifestLocation, ModuleManifest, ModuleName};
pub use plan::{BootPlan, ModuleSpec, Pin, WasmSource};
pub use source::ModuleSource;
pub use subscription::{LogFilter, LogSubscription, Subscription};
pub use supervisor::{
    Delivery, DispatchError, Lifecycle, LogLevel, LogLine, ModuleEvent, ModuleInfo, ModuleStatus,
    ModuleTotals, Outcome, ShutdownSummary, Supervisor,
};

/// Re-exported so users of the event types need not pin `alloy-primitives` themselves.
pub use alloy_primitives::{Address, B256, Bytes};

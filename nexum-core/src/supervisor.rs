//! The [`Supervisor`] trait: the one seam between event sources / front-ends and the runtime.
//!
//! Sources (cron, chain streams, an embedder's own queue) call
//! [`Supervisor::try_dispatch`], [`Supervisor::dispatch`] or [`Supervisor::queue`];
//! front-ends read [`Supervisor::modules`] for the start-up summary and end with
//! [`Supervisor::shutdown`]. How a supervisor is built is its own
//! business (nexum's runtime is built by `nexum_host::RuntimeBuilder`).

use crate::capability::Capability;
use crate::event::Event;
use crate::limits::Limits;
use crate::manifest::ComponentDigest;
use crate::subscription::Subscription;
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;

/// One event on its way to one module, with the supervisor's own bookkeeping for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<B = ()> {
    /// The index of the subscription (in manifest order) that asked for this event;
    /// `None` for events an embedder injects outside any subscription.
    pub subscription: Option<usize>,
    /// The event.
    pub event: Event,
    /// What the supervisor commits with the module's writes (for nexum's runtime: where the
    /// subscription stands and what it was given). Its type is the supervisor's, so only
    /// code that can build one can make the engine record anything.
    pub bookkeeping: B,
}

impl<B: Default> Delivery<B> {
    /// An event with no bookkeeping attached.
    pub fn new(subscription: Option<usize>, event: Event) -> Self {
        Self {
            subscription,
            event,
            bookkeeping: B::default(),
        }
    }
}

/// How one `on-event` call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The module returned `ok`; its writes are committed.
    Handled,
    /// The module returned `err`; its writes were discarded.
    Failed(String),
    /// The call trapped or hit a limit (fuel, memory, deadline); its writes were discarded.
    Trapped(String),
}

/// Why an event could not be handed to a module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// No module of that name is loaded.
    #[error("no module named `{0}`")]
    UnknownModule(String),
    /// The module's queue is full; the source should catch up later instead of waiting.
    #[error("the module's queue is full")]
    QueueFull,
    /// The module no longer takes events (quarantined or shutting down).
    #[error("the module no longer accepts events")]
    Closed,
}

/// Where a module is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleStatus {
    /// Taking events.
    Running,
    /// Waiting to be restarted after a trap.
    Restarting,
    /// Failed too often; takes no events until it is restarted (by an operator, a reload
    /// that changes it, or an engine restart).
    Quarantined,
    /// Shut down.
    Stopped,
}

impl fmt::Display for ModuleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModuleStatus::Running => "running",
            ModuleStatus::Restarting => "restarting",
            ModuleStatus::Quarantined => "quarantined",
            ModuleStatus::Stopped => "stopped",
        })
    }
}

/// A loaded module as the outside world sees it.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    /// Its name (and store namespace).
    pub name: String,
    /// Its version, from the manifest.
    pub version: String,
    /// Declared capabilities.
    pub capabilities: BTreeSet<Capability>,
    /// Subscriptions, in manifest order (the index is [`Delivery::subscription`]).
    pub subscriptions: Vec<Subscription>,
    /// The limits it runs under.
    pub limits: Limits,
    /// The sha256 of its component (shown as `sha256:…`).
    pub component: ComponentDigest,
    /// Current lifecycle state.
    pub status: ModuleStatus,
    /// Bytes of keys and values in its store.
    pub store_bytes: u64,
    /// Log lines dropped by its rate limit.
    pub log_lines_dropped: u64,
    /// Calls that returned `ok`, `err`, or trapped, so far.
    pub totals: ModuleTotals,
}

/// Per-module totals reported at shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleTotals {
    /// The module.
    pub name: String,
    /// Calls that returned `ok`.
    pub handled: u64,
    /// Calls that returned `err`.
    pub failed: u64,
    /// Calls that trapped or hit a limit.
    pub trapped: u64,
}

/// What [`Supervisor::shutdown`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownSummary {
    /// One entry per module, in boot order.
    pub modules: Vec<ModuleTotals>,
}

/// Runs modules: boots them, takes events for them, and shuts them down cleanly.
///
/// Implementations guarantee that each module sees its events one at a time, in the order
/// they were queued for it, that once one of its events ends `Trapped` or `Closed` none
/// queued after it is handled, and that modules run concurrently with one another.
pub trait Supervisor: Send + Sync {
    /// What a delivery carries to be committed with the module's writes.
    type Bookkeeping: Default + Send + 'static;

    /// What [`Supervisor::queue`] hands back: resolves with the delivery's outcome once
    /// the module handled it. Dropping it does not take the delivery back. `Sync` so that
    /// a source can hold several across its own awaits while it is borrowed.
    type Handled: Future<Output = Result<Outcome, DispatchError>> + Send + Sync + 'static;

    /// The loaded modules, in boot order.
    fn modules(&self) -> Vec<ModuleInfo>;

    /// Queues `delivery` for `module` without waiting. Fails with
    /// [`DispatchError::QueueFull`] rather than block a source on one slow module.
    fn try_dispatch(
        &self,
        module: &str,
        delivery: Delivery<Self::Bookkeeping>,
    ) -> Result<(), DispatchError>;

    /// Queues `delivery` for `module` (waiting for room) and returns as soon as it is
    /// queued, with its outcome to come. A source can so queue several events (one block's)
    /// and wait once: the module still takes them one at a time, in order, and a module
    /// that stops taking events fails the ones left with [`DispatchError::Closed`].
    fn queue(
        &self,
        module: &str,
        delivery: Delivery<Self::Bookkeeping>,
    ) -> impl Future<Output = Result<Self::Handled, DispatchError>> + Send;

    /// Queues `delivery` for `module` (waiting for room) and resolves when it was handled.
    fn dispatch(
        &self,
        module: &str,
        delivery: Delivery<Self::Bookkeeping>,
    ) -> impl Future<Output = Result<Outcome, DispatchError>> + Send {
        let queued = self.queue(module, delivery);
        async move { queued.await?.await }
    }

    /// Stops intake, lets queued and in-flight calls finish within their deadline, flushes
    /// the store and reports totals.
    fn shutdown(&self) -> impl Future<Output = ShutdownSummary> + Send;
}

/// A change in a module's life, as reported to whoever watches the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// `init` succeeded; the module takes events.
    Started,
    /// A call returned `err` (it may be retried).
    Failed {
        /// The module's error.
        reason: String,
    },
    /// A call trapped or hit a limit; the instance is discarded.
    Trapped {
        /// What happened.
        reason: String,
    },
    /// A fresh instance will be started after `delay_ms`.
    Restarting {
        /// The backoff before the restart.
        delay_ms: u64,
    },
    /// An event was skipped after its retries (and dead-lettered).
    Skipped {
        /// The module's last error.
        reason: String,
    },
    /// The module failed too often and takes no more events until the engine restarts.
    Quarantined {
        /// The last failure.
        reason: String,
    },
    /// The module stopped with the engine.
    Stopped,
}

/// A [`Lifecycle`] change of one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleEvent {
    /// The module.
    pub module: String,
    /// What happened.
    pub change: Lifecycle,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Severity of a module's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected but handled.
    Warn,
    /// Something failed.
    Error,
}

/// One line a module logged (through `logging`, or on stdout/stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The module.
    pub module: String,
    /// Its level.
    pub level: LogLevel,
    /// The text.
    pub message: String,
}

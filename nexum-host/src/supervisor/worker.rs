//! One module's worker task: takes its events one at a time, in order, and keeps the module
//! alive — retrying `err`s, restarting after traps, quarantining after repeated failure.

use crate::capabilities::ModuleCapabilities;
use crate::engine::WasmEngine;
use crate::ledger::StoreError;
use crate::ledger::{Bookkeeping, DeadLetter, Entry};
use crate::module::{CallError, CallResult, LoadedModule, ModuleInstance, StartFailure};
use crate::telemetry::names;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use metrics::SharedString;
use nexum_core::host_rules::store::WriteSet;
use nexum_core::{Delivery, Event, Lifecycle, ModuleEvent, ModuleStatus, Outcome, Supervision};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::Instrument;

/// An event in a module's queue, with someone optionally waiting for its outcome.
pub(crate) struct Job {
    pub delivery: Delivery<Bookkeeping>,
    pub reply: Option<oneshot::Sender<Outcome>>,
    /// When it was queued (dispatch latency counts from here).
    pub queued_at: std::time::Instant,
}

/// Every [`ModuleStatus`], by the number [`WorkerShared`] keeps it as (the default, 0, is
/// `Running`).
const STATUSES: [ModuleStatus; 4] = [
    ModuleStatus::Running,
    ModuleStatus::Restarting,
    ModuleStatus::Quarantined,
    ModuleStatus::Stopped,
];

/// Counters and state shared between a worker and the supervisor that reports on it.
#[derive(Default)]
pub(crate) struct WorkerShared {
    /// The module's [`ModuleStatus`], as its place in [`STATUSES`]: read at every
    /// dispatch, so an atomic rather than a lock.
    status: AtomicU8,
    pub handled: AtomicU64,
    pub failed: AtomicU64,
    pub trapped: AtomicU64,
    pub restarts: AtomicU64,
}

impl WorkerShared {
    pub fn status(&self) -> ModuleStatus {
        // Only `set_status` stores, so the place is always in the table.
        let place = usize::from(self.status.load(Ordering::Acquire));
        STATUSES
            .get(place)
            .copied()
            .unwrap_or(ModuleStatus::Stopped)
    }

    fn set_status(&self, status: ModuleStatus) {
        let place = STATUSES.iter().position(|s| *s == status).unwrap_or(0);
        self.status.store(place as u8, Ordering::Release);
    }
}

/// The worker of one module.
pub(crate) struct Worker {
    pub engine: Arc<WasmEngine>,
    pub module: Arc<LoadedModule>,
    pub capabilities: ModuleCapabilities,
    pub policy: Supervision,
    pub shared: Arc<WorkerShared>,
    instance: Option<ModuleInstance>,
    lifecycle: broadcast::Sender<ModuleEvent>,
    /// Consecutive traps or failed starts; reset by a successful call.
    failures: u32,
    /// Waits between restarts; `None` while fresh. Backoffs are made when first needed:
    /// making three for every event handled was a visible share of a dispatch.
    restart_backoff: Option<ExponentialBackoff>,
    /// Waits between attempts while the store refuses commits (an outage, not the module);
    /// `None` while fresh.
    store_backoff: Option<ExponentialBackoff>,
    /// The module's name as a metric label, shared: labelling each event's metric with it
    /// clones a reference count instead of copying the name.
    metric_label: SharedString,
    /// The dispatch-latency metric's key, built once: the recorder is still asked for it at
    /// each event (one installed later is not missed), but the key's labels and hash are
    /// not made again.
    dispatch_key: metrics::Key,
}

/// Why a worker stops taking events.
enum Stop {
    /// Shutdown was requested while the event waited for a retry or restart.
    Shutdown,
    /// The module failed too often; the event's last outcome is reported.
    Quarantined(Outcome),
    /// Another node runs this module now (its lease moved): this worker stops.
    Fenced,
}

impl Worker {
    pub fn new(
        engine: Arc<WasmEngine>,
        module: Arc<LoadedModule>,
        capabilities: ModuleCapabilities,
        policy: Supervision,
        shared: Arc<WorkerShared>,
        lifecycle: broadcast::Sender<ModuleEvent>,
    ) -> Self {
        // A worker before this one may have stopped with a commit in doubt.
        capabilities.store.forget_failed_commit();
        let metric_label = SharedString::from(Arc::<str>::from(module.manifest.name.as_str()));
        let dispatch_key = metrics::Key::from_parts(
            names::DISPATCH_SECONDS,
            vec![metrics::Label::new("module", metric_label.clone())],
        );
        Self {
            metric_label,
            dispatch_key,
            engine,
            module,
            capabilities,
            policy,
            shared,
            instance: None,
            lifecycle,
            failures: 0,
            restart_backoff: None,
            store_backoff: None,
        }
    }

    fn name(&self) -> &str {
        self.module.manifest.name.as_str()
    }

    /// Tells lifecycle watchers about `change`.
    fn announce(&self, change: Lifecycle) {
        if self.lifecycle.receiver_count() > 0 {
            let _ = self.lifecycle.send(ModuleEvent {
                module: self.name().to_string(),
                change,
                at_ms: crate::ledger::now_ms(),
            });
        }
    }

    /// Starts the first instance (running `init`). A module whose `init` fails at boot is
    /// quarantined at once: a broken configuration does not heal by retrying.
    pub async fn boot(&mut self) -> Result<(), StartFailure> {
        self.start_instance().await.inspect_err(|failure| {
            let reason = failure.to_string();
            tracing::error!(module = self.name(), reason, "init failed at boot");
            self.quarantine(&reason);
        })
    }

    /// Starts a fresh instance, running `init`; on success the module takes events again.
    async fn start_instance(&mut self) -> Result<(), StartFailure> {
        let instance =
            ModuleInstance::start(&self.engine, &self.module, self.capabilities.clone()).await?;
        self.instance = Some(instance);
        self.shared.set_status(ModuleStatus::Running);
        self.announce(Lifecycle::Started);
        Ok(())
    }

    /// Takes jobs until the queue closes, shutdown is requested or the module is quarantined.
    pub async fn run(
        mut self,
        mut queue: mpsc::Receiver<Job>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        if self.shared.status() != ModuleStatus::Quarantined {
            // One wait for shutdown across all jobs (on a receiver of its own: `handle`
            // takes the other), rather than a new one registered and dropped per job.
            let mut stop_signal = shutdown.clone();
            let stopped = stop_signal.wait_for(|stop| *stop);
            tokio::pin!(stopped);
            loop {
                // The wait for shutdown is polled only while the queue is empty; a job taken
                // after shutdown was asked for (or its sender dropped) is not run.
                let job = tokio::select! {
                    biased;
                    job = queue.recv() => match job {
                        Some(job) => job,
                        None => break,
                    },
                    _ = &mut stopped => break,
                };
                if *shutdown.borrow() || shutdown.has_changed().is_err() {
                    break;
                }
                let span = event_span(self.name(), &job.delivery.event);
                let handled = self
                    .handle(&job.delivery, &mut shutdown)
                    .instrument(span)
                    .await;
                let (outcome, stop) = match handled {
                    Ok(outcome) => (Some(outcome), false),
                    Err(Stop::Shutdown | Stop::Fenced) => (None, true),
                    Err(Stop::Quarantined(outcome)) => (Some(outcome), true),
                };
                metrics::with_recorder(|recorder| {
                    recorder.register_histogram(&self.dispatch_key, &DISPATCH_METADATA)
                })
                .record(job.queued_at.elapsed().as_secs_f64());
                if let (Some(outcome), Some(reply)) = (outcome, job.reply) {
                    let _ = reply.send(outcome);
                }
                if stop {
                    break;
                }
            }
        }
        // Whatever is still queued will not run in this process; senders waiting for an
        // outcome see the channel close.
        queue.close();
        if self.shared.status() != ModuleStatus::Quarantined {
            self.shared.set_status(ModuleStatus::Stopped);
            self.announce(Lifecycle::Stopped);
        }
    }

    /// Delivers one event, retrying per the policy. Returns its final outcome.
    async fn handle(
        &mut self,
        delivery: &Delivery<Bookkeeping>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Outcome, Stop> {
        let mut err_retries = None;
        let mut err_count = 0u32;
        loop {
            let Some(instance) = self.instance.as_mut() else {
                self.restart(shutdown).await?;
                continue;
            };
            match instance
                .on_event(&delivery.event, &delivery.bookkeeping)
                .await
            {
                CallResult::Ok => return Ok(self.done(Outcome::Handled)),
                CallResult::Err(CallError::Commit(error)) => {
                    if self.store_failed(error, shutdown).await? {
                        return Ok(self.done(Outcome::Handled));
                    }
                }
                CallResult::Err(error) => {
                    let reason = error.to_string();
                    self.shared.failed.fetch_add(1, Ordering::Relaxed);
                    self.announce(Lifecycle::Failed {
                        reason: reason.clone(),
                    });
                    err_count += 1;
                    match err_retries
                        .get_or_insert_with(|| error_backoff(&self.policy))
                        .next()
                        .filter(|_| err_count <= self.policy.retry_attempts)
                    {
                        Some(wait) => {
                            tracing::warn!(
                                module = self.name(),
                                event = delivery.event.kind(),
                                reason,
                                attempt = err_count,
                                retry_in_ms = wait.as_millis() as u64,
                                "module returned an error; retrying"
                            );
                            sleep_or_shutdown(wait, shutdown).await?;
                        }
                        None => {
                            tracing::warn!(
                                module = self.name(),
                                event = delivery.event.kind(),
                                reason,
                                attempts = err_count,
                                "module returned an error; event skipped and dead-lettered"
                            );
                            let skipped = Outcome::Failed(reason.clone());
                            if let Err(error) = self.skip(delivery, &reason, err_count)
                                && !self.store_failed(error, shutdown).await?
                            {
                                continue;
                            }
                            return Ok(self.done(skipped));
                        }
                    }
                }
                CallResult::Trap(trap) => {
                    let reason = trap.to_string();
                    self.shared.trapped.fetch_add(1, Ordering::Relaxed);
                    self.instance = None;
                    self.failures += 1;
                    self.announce(Lifecycle::Trapped {
                        reason: reason.clone(),
                    });
                    tracing::error!(
                        module = self.name(),
                        event = delivery.event.kind(),
                        reason,
                        consecutive = self.failures,
                        "module trapped; its writes were discarded"
                    );
                    if self.failures >= self.policy.quarantine_after {
                        self.quarantine(&reason);
                        return Err(Stop::Quarantined(Outcome::Trapped(reason)));
                    }
                }
            }
        }
    }

    /// The event's work is done: its commit landed, now or (its answer lost) earlier.
    /// `Failed` is an event skipped and dead-lettered.
    fn done(&mut self, outcome: Outcome) -> Outcome {
        match &outcome {
            Outcome::Failed(reason) => {
                metrics::counter!(crate::telemetry::names::DEAD_LETTERS, "module" => self.metric_label.clone())
                    .increment(1);
                self.announce(Lifecycle::Skipped {
                    reason: reason.clone(),
                });
            }
            _ => {
                self.shared.handled.fetch_add(1, Ordering::Relaxed);
                self.failures = 0;
                self.restart_backoff = None;
                self.store_backoff = None;
            }
        }
        outcome
    }

    /// The next wait while the store fails: jitter could take a wait past the cap, so it
    /// is capped again.
    fn next_store_wait(&mut self) -> Duration {
        self.store_backoff
            .get_or_insert_with(store_backoff)
            .next()
            .unwrap_or(STORE_RETRY_MAX)
            .min(STORE_RETRY_MAX)
    }

    /// The store failed a call (the module did nothing wrong). The instance is dropped —
    /// its memory ran ahead of what was committed — and the event runs again on a fresh one
    /// after a backoff (250 ms doubling to 30 s): nothing is skipped or dead-lettered for
    /// it, nor counted against the module. When another node runs the module now, this
    /// worker stops instead.
    ///
    /// A commit can fail after it landed (its answer lost on the way back), and run again
    /// the call would land its writes twice: so before it runs again, the worker learns
    /// whether it landed, asking until the store answers. Returns whether it had: then
    /// the event is done.
    async fn store_failed(
        &mut self,
        error: StoreError,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, Stop> {
        self.instance = None;
        if let StoreError::Fenced { .. } = error {
            return Err(self.fenced());
        }
        let wait = self.next_store_wait();
        tracing::error!(
            module = self.name(),
            %error,
            retry_in_ms = wait.as_millis() as u64,
            "the store failed this call; the event runs again on a fresh instance (nothing skipped)"
        );
        sleep_or_shutdown(wait, shutdown).await?;
        let landed = loop {
            match self.capabilities.store.commit_in_doubt() {
                Ok(answer) => break answer == Some(true),
                Err(StoreError::Fenced { .. }) => return Err(self.fenced()),
                Err(error) => {
                    let wait = self.next_store_wait();
                    tracing::warn!(
                        module = self.name(),
                        %error,
                        retry_in_ms = wait.as_millis() as u64,
                        "whether the call's last commit landed is not known yet; asking the store again"
                    );
                    sleep_or_shutdown(wait, shutdown).await?;
                }
            }
        };
        if landed {
            tracing::warn!(
                module = self.name(),
                "the event's last commit had landed though its answer was lost; the event is not run again"
            );
        }
        // Either way the next event (or this one again) runs on a fresh instance, which
        // starts from what the store holds.
        if let Err(failure) = self.start_instance().await {
            tracing::warn!(module = self.name(), reason = %failure, "starting a fresh instance failed; restarting");
        }
        Ok(landed)
    }

    /// This node may no longer commit for the module: the worker stops.
    fn fenced(&self) -> Stop {
        tracing::warn!(
            module = self.name(),
            "commit refused: another node runs this module now; it stops here"
        );
        Stop::Fenced
    }

    /// Records a skipped event as a dead letter, committing its bookkeeping with it so
    /// delivery moves past it; if that commit fails, the event is not skipped.
    fn skip(
        &self,
        delivery: &Delivery<Bookkeeping>,
        reason: &str,
        attempts: u32,
    ) -> Result<(), StoreError> {
        let letter = DeadLetter {
            id: String::new(),
            module: self.name().to_string(),
            subscription: delivery.subscription,
            event: delivery.event.clone(),
            reason: reason.to_string(),
            attempts,
            at_ms: crate::ledger::now_ms(),
        };
        let mut bookkeeping = delivery.bookkeeping.clone();
        bookkeeping.push(Entry::DeadLetter(Box::new(letter)));
        self.capabilities
            .store
            .commit(WriteSet::default(), &bookkeeping)
    }

    /// Waits out the restart backoff, then starts a fresh instance.
    async fn restart(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), Stop> {
        let max = Duration::from_millis(self.policy.restart_backoff_max_ms);
        let wait = self
            .restart_backoff
            .get_or_insert_with(|| restart_backoff(&self.policy))
            .next()
            .unwrap_or(max)
            .min(max);
        self.shared.set_status(ModuleStatus::Restarting);
        let delay_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(module = self.name(), in_ms = delay_ms, "restarting module");
        self.announce(Lifecycle::Restarting { delay_ms });
        self.shared.restarts.fetch_add(1, Ordering::Relaxed);
        sleep_or_shutdown(wait, shutdown).await?;
        let Err(failure) = self.start_instance().await else {
            return Ok(());
        };
        let reason = failure.to_string();
        self.failures += 1;
        tracing::error!(
            module = self.name(),
            reason,
            consecutive = self.failures,
            "restart failed"
        );
        if self.failures >= self.policy.quarantine_after {
            self.quarantine(&reason);
            return Err(Stop::Quarantined(Outcome::Trapped(reason)));
        }
        Ok(())
    }

    fn quarantine(&self, reason: &str) {
        self.shared.set_status(ModuleStatus::Quarantined);
        self.announce(Lifecycle::Quarantined {
            reason: reason.to_string(),
        });
        tracing::error!(
            module = self.name(),
            failures = self.failures,
            last_reason = reason,
            "module quarantined: it receives no more events until it is restarted (admin API, a reload that changes it, or an engine restart)"
        );
    }
}

/// What the dispatch-latency metric is recorded with (as `metrics::histogram!` would).
static DISPATCH_METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The span a call runs in: log lines of the call (the module's own included) carry the
/// module, the event's kind, and its chain and block when it has them.
///
/// No span is made while neither a tracing subscriber nor a `log` logger takes info records
/// (as in a service that embeds nexum without either, or one set to warnings): `info_span!`
/// would still build a disabled span, its field values and, with tracing's `log` bridge
/// compiled in (a dependency turns it on), ask `log` at every event and every enter and
/// exit of the call whether to print it.
fn event_span(module: &str, event: &Event) -> tracing::Span {
    if tracing::level_filters::LevelFilter::current() < tracing::Level::INFO
        && log::max_level() < log::LevelFilter::Info
    {
        return tracing::Span::none();
    }
    let block = match event {
        Event::Block(b) => Some(b.number),
        Event::ChainLogs(l) => l.logs.first().and_then(|log| log.block_number),
        Event::Tick(_) => None,
    };
    tracing::info_span!(
        "event",
        module,
        event = event.kind(),
        chain = event.chain_id(),
        block
    )
}

fn restart_backoff(policy: &Supervision) -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(policy.restart_backoff_ms))
        .with_max_delay(Duration::from_millis(policy.restart_backoff_max_ms))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Longest wait between attempts while the store fails.
const STORE_RETRY_MAX: Duration = Duration::from_secs(30);

fn store_backoff() -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(STORE_RETRY_MAX)
        .with_jitter()
        .without_max_times()
        .build()
}

fn error_backoff(policy: &Supervision) -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(policy.retry_backoff_ms))
        .with_max_delay(Duration::from_millis(policy.restart_backoff_max_ms))
        .without_max_times()
        .build()
}

async fn sleep_or_shutdown(
    wait: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), Stop> {
    tokio::select! {
        _ = tokio::time::sleep(wait) => Ok(()),
        _ = shutdown.wait_for(|stop| *stop) => Err(Stop::Shutdown),
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerShared;
    use nexum_core::ModuleStatus;

    #[test]
    fn every_status_reads_back_as_set() {
        let shared = WorkerShared::default();
        assert_eq!(shared.status(), ModuleStatus::Running);
        // Written out here, not taken from the table: a status missing from it reads back
        // as another.
        let every = [
            ModuleStatus::Restarting,
            ModuleStatus::Quarantined,
            ModuleStatus::Stopped,
            ModuleStatus::Running,
        ];
        for status in every {
            shared.set_status(status);
            assert_eq!(shared.status(), status);
            // A new status stops this match from compiling until it is added above.
            match status {
                ModuleStatus::Running
                | ModuleStatus::Restarting
                | ModuleStatus::Quarantined
                | ModuleStatus::Stopped => {}
            }
        }
    }
}

//! One running instance of a module: a fresh `Store`, and calls into it under the module's
//! limits (fuel, memory, deadline) with its store writes committed only on `ok`.

use super::call_deadline::{PastDeadline, within_deadline};
use super::limiter::OverBudget;
use super::loader::LoadedModule;
use crate::bindings::CowModule;
use crate::bindings::types as wit;
use crate::capabilities::ModuleCapabilities;
use crate::convert::{self, describe_fault};
use crate::engine::{DeadlineWatch, FUEL_PER_SLICE, WasmEngine};
use crate::ledger::{Bookkeeping, StoreError};
use crate::state::ModuleState;
use nexum_core::bounded;
use nexum_core::{Event, Limits};
use std::time::{Duration, Instant};
use wasmtime::{Store, Trap, UpdateDeadline};

/// How one call into a module ended.
#[derive(Debug)]
pub(crate) enum CallResult {
    /// `ok`: the call's writes (and the engine's records for it) are committed.
    Ok,
    /// The call ended without committing, but the instance can take the next call.
    Err(CallError),
    /// A trap or a limit ended the call; nothing was committed and the instance is unusable.
    Trap(TrapReason),
}

/// Why an instance could not start: `init` returned `err` (or its writes did not commit),
/// or instantiation or `init` was cut short.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartFailure {
    /// `init` returned without committing.
    #[error("returned error: {0}")]
    Init(CallError),
    /// A trap or a limit ended instantiation or `init`.
    #[error("{0}")]
    Trap(TrapReason),
}

/// Why a call that returned did not commit.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// The module returned `err`: its own text, escaped and cut to `log_line_bytes`.
    #[error("{0}")]
    Fault(String),
    /// The module returned `ok` but its writes could not be committed.
    #[error("commit failed: {0}")]
    Commit(#[from] StoreError),
}

/// Why a call was cut short; the instance is dropped after any of these.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TrapReason {
    /// `fuel_per_event` ran out.
    #[error("fuel exhausted (limit {limit})")]
    OutOfFuel {
        /// The module's `fuel_per_event`.
        limit: u64,
    },
    /// `event_timeout_ms` passed.
    #[error("deadline of {ms} ms exceeded")]
    Deadline {
        /// The module's `event_timeout_ms`.
        ms: u64,
    },
    /// The wasm stack overflowed.
    #[error("stack overflow")]
    StackOverflow,
    /// A memory or table grow went past the module's budget.
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
    /// Any other wasm trap (`unreachable` after a panic, a bad access, …).
    #[error("trap: {0}")]
    Wasm(Trap),
    /// A failure wasmtime reported that is not a trap (e.g. a host call's error): its text,
    /// escaped and cut, as it may carry what the module handed the host.
    #[error("{0}")]
    Other(String),
}

/// A module instance in its own `Store`.
pub(crate) struct ModuleInstance {
    store: Store<ModuleState>,
    bindings: CowModule,
    limits: Limits,
    /// Where its calls register their deadline.
    deadlines: DeadlineWatch,
}

impl ModuleInstance {
    /// Instantiates `module` in a fresh store and runs its `init` with the manifest's config.
    /// `init`'s writes are committed only if it returns `ok`.
    pub async fn start(
        engine: &WasmEngine,
        module: &LoadedModule,
        capabilities: ModuleCapabilities,
    ) -> Result<Self, StartFailure> {
        let limits = module.limits;
        let mut store = Store::new(
            &engine.engine,
            ModuleState::new(capabilities, &limits, &engine.extensions),
        );
        store.limiter(|state| state.limiter());
        store.set_hostcall_fuel(hostcall_bytes(&limits));
        // Yield to the executor every slice of fuel, so other tasks run beside a busy guest.
        store
            .fuel_async_yield_interval(Some(FUEL_PER_SLICE))
            .expect("fuel is enabled on the engine");
        // The epoch advances when some call's deadline is reached: each running guest then
        // checks its own.
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });

        // Instantiation and `init` share one deadline.
        let budget = Duration::from_millis(limits.event_timeout_ms);
        let deadline = Instant::now() + budget;
        prepare(&mut store, &limits, deadline, budget);
        let deadlines = engine.deadlines();
        let _watched = deadlines.watch(deadline);
        let instantiate = module.pre.instantiate_async(&mut store);
        let bindings = match within_deadline(deadline, instantiate).await {
            Ok(Ok(bindings)) => bindings,
            Ok(Err(e)) => return Err(StartFailure::Trap(trap_reason(&e, &limits))),
            Err(PastDeadline) => return Err(StartFailure::Trap(deadline_reached(&limits))),
        };
        let mut instance = Self {
            store,
            bindings,
            limits,
            deadlines,
        };
        // `init` runs on what is left of the same budget as instantiation.
        let config: Vec<(&str, &str)> = (module.manifest.config.iter())
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        let call = instance.bindings.call_init(&mut instance.store, &config);
        let outcome = within_deadline(deadline, call).await;
        match finish(
            &mut instance.store,
            &limits,
            outcome,
            &Bookkeeping::default(),
        ) {
            CallResult::Ok => Ok(instance),
            CallResult::Err(error) => Err(StartFailure::Init(error)),
            CallResult::Trap(trap) => Err(StartFailure::Trap(trap)),
        }
    }

    /// Delivers `event`. On `ok`, commits the call's writes together with `bookkeeping`.
    pub async fn on_event(&mut self, event: &Event, bookkeeping: &Bookkeeping) -> CallResult {
        let budget = Duration::from_millis(self.limits.event_timeout_ms);
        let deadline = Instant::now() + budget;
        // Armed before it is watched: an advance for this deadline always finds it set.
        prepare(&mut self.store, &self.limits, deadline, budget);
        let _watched = self.deadlines.watch(deadline);
        let topics = convert::topics(event);
        let logs = convert::logs(event, &topics);
        let event = convert::event(event, &logs);
        let call = self.bindings.call_on_event(&mut self.store, event);
        let outcome = within_deadline(deadline, call).await;
        finish(&mut self.store, &self.limits, outcome, bookkeeping)
    }
}

/// How much data one host call may carry out of the module (strings and lists wasmtime
/// copies before nexum's own checks run): no more than the module's own memory could hold,
/// rather than wasmtime's default of 128 MiB. Oversized values and batches still reach
/// nexum's checks, which refuse them with a reason instead of a trap.
fn hostcall_bytes(limits: &Limits) -> usize {
    usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX)
}

type Outcome = Result<wasmtime::Result<Result<(), wit::Fault>>, PastDeadline>;

/// Arms a call: full fuel, its deadline (checked when the epoch advances; a timer around
/// the call, set once the call waits, covers time spent waiting in host calls), an empty
/// write set.
fn prepare(store: &mut Store<ModuleState>, limits: &Limits, deadline: Instant, budget: Duration) {
    store
        .set_fuel(limits.fuel_per_event)
        .expect("fuel is enabled on the engine");
    store.set_epoch_deadline(1);
    store.data_mut().begin_call(deadline, budget);
}

/// Settles a call: commit on `ok`, discard otherwise.
fn finish(
    store: &mut Store<ModuleState>,
    limits: &Limits,
    outcome: Outcome,
    bookkeeping: &Bookkeeping,
) -> CallResult {
    let writes = store.data_mut().take_writes();
    // Both taken, so that neither is left over for the next call.
    let backend_failure = store.data().module_store().take_backend_failure();
    let past_deadline = store.data().module_store().take_past_deadline();
    // A call that ran into a storage failure proves nothing about the module.
    if let Some(reason) = backend_failure {
        return CallResult::Err(CallError::Commit(StoreError::Backend(reason)));
    }
    // A read of it ended past the deadline: the call did not end in time, whatever it
    // returned (it may have returned before the timer around it was looked at).
    if past_deadline {
        return CallResult::Trap(deadline_reached(limits));
    }
    match outcome {
        Ok(Ok(Ok(()))) => match store.data().module_store().commit(writes, bookkeeping) {
            Ok(()) => CallResult::Ok,
            Err(e) => {
                tracing::error!(error = %e, "committing a call's writes failed");
                CallResult::Err(CallError::Commit(e))
            }
        },
        // The module's own text: cut and escaped before it is logged, retried or dead-lettered.
        Ok(Ok(Err(fault))) => CallResult::Err(CallError::Fault(module_text(
            &describe_fault(&fault),
            limits,
        ))),
        Ok(Err(trap)) => CallResult::Trap(trap_reason(&trap, limits)),
        Err(PastDeadline) => CallResult::Trap(deadline_reached(limits)),
    }
}

fn deadline_reached(limits: &Limits) -> TrapReason {
    TrapReason::Deadline {
        ms: limits.event_timeout_ms,
    }
}

/// Text that came from the module, escaped and cut to its `log_line_bytes`.
fn module_text(text: &str, limits: &Limits) -> String {
    bounded::module_text(
        text,
        usize::try_from(limits.log_line_bytes).unwrap_or(usize::MAX),
    )
}

/// What ended a call, from wasmtime's error: by type, never by its message.
fn trap_reason(error: &wasmtime::Error, limits: &Limits) -> TrapReason {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => TrapReason::OutOfFuel {
            limit: limits.fuel_per_event,
        },
        Some(Trap::Interrupt) => deadline_reached(limits),
        Some(Trap::StackOverflow) => TrapReason::StackOverflow,
        Some(trap) => TrapReason::Wasm(*trap),
        None => match error.downcast_ref::<OverBudget>() {
            Some(over) => TrapReason::OverBudget(over.clone()),
            None => TrapReason::Other(module_text(&error.root_cause().to_string(), limits)),
        },
    }
}

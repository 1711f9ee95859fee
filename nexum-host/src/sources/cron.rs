//! The cron source: fires `tick` events on each module's schedules.
//!
//! The runtime runs one source per module (started and stopped with it), with a timer per
//! distinct schedule, fanned out to every subscription of the module on it. A module
//! still busy with earlier events when a tick fires misses that tick (with a warning):
//! ticks are clocks, and a backlog of stale ticks helps nobody.

use chrono::{DateTime, Utc};
use nexum_core::{
    CronSchedule, Delivery, DispatchError, Event, ModuleInfo, Subscription, Supervisor, Tick,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A module subscription to one schedule.
#[derive(Debug, Clone)]
struct Subscriber {
    module: String,
    subscription: usize,
}

/// Cron timers for every module's `cron` subscriptions.
#[derive(Debug, Default)]
pub struct CronSource {
    schedules: BTreeMap<String, (CronSchedule, Vec<Subscriber>)>,
}

impl CronSource {
    /// Collects the `cron` subscriptions of `modules`.
    pub fn new(modules: &[ModuleInfo]) -> Self {
        let mut schedules: BTreeMap<String, (CronSchedule, Vec<Subscriber>)> = BTreeMap::new();
        for module in modules {
            for (index, subscription) in module.subscriptions.iter().enumerate() {
                if let Subscription::Cron(schedule) = subscription {
                    schedules
                        .entry(schedule.as_str().to_string())
                        .or_insert_with(|| (schedule.clone(), Vec::new()))
                        .1
                        .push(Subscriber {
                            module: module.name.clone(),
                            subscription: index,
                        });
                }
            }
        }
        Self { schedules }
    }

    /// Whether any module subscribed to a schedule.
    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }

    /// Fires ticks until `stop` turns true.
    pub async fn run<S: Supervisor + 'static>(
        self,
        supervisor: Arc<S>,
        stop: watch::Receiver<bool>,
    ) {
        let mut timers = JoinSet::new();
        for (schedule, subscribers) in self.schedules.into_values() {
            timers.spawn(run_schedule(
                schedule,
                subscribers,
                supervisor.clone(),
                stop.clone(),
            ));
        }
        while timers.join_next().await.is_some() {}
    }
}

async fn run_schedule<S: Supervisor>(
    schedule: CronSchedule,
    subscribers: Vec<Subscriber>,
    supervisor: Arc<S>,
    mut stop: watch::Receiver<bool>,
) {
    let mut after = Utc::now();
    while let Some(next) = schedule.next_after(after) {
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        fire(&schedule, next, &subscribers, &*supervisor);
        after = next;
    }
    tracing::info!(
        schedule = schedule.as_str(),
        "cron schedule has no further firings"
    );
}

fn fire<S: Supervisor>(
    schedule: &CronSchedule,
    at: DateTime<Utc>,
    subscribers: &[Subscriber],
    supervisor: &S,
) {
    let fired_at = u64::try_from(at.timestamp_millis()).unwrap_or_default();
    for subscriber in subscribers {
        let delivery = Delivery::new(
            Some(subscriber.subscription),
            Event::Tick(Tick {
                fired_at,
                schedule: schedule.as_str().to_string(),
            }),
        );
        match supervisor.try_dispatch(&subscriber.module, delivery) {
            Ok(()) => {}
            Err(DispatchError::QueueFull) => tracing::warn!(
                module = subscriber.module,
                schedule = schedule.as_str(),
                "module is still busy; this tick is skipped"
            ),
            Err(e) => {
                tracing::debug!(module = subscriber.module, reason = %e, "tick not delivered")
            }
        }
    }
}

//! Event sources: where events come from. A source knows nothing about wasm; it reads the
//! subscriptions from [`Supervisor::modules`](nexum_core::Supervisor::modules) and hands
//! events to [`Supervisor::try_dispatch`](nexum_core::Supervisor::try_dispatch).

mod cron;

pub use cron::CronSource;

//! Event sources: where events come from. A source knows nothing about wasm; it reads the
//! subscriptions from [`Supervisor::modules`](nexum_core::Supervisor::modules) and hands
//! events to the supervisor.
//!
//! - [`CronSource`]: cron ticks;
//! - `chain`: blocks and logs (a follower per chain, a feed per distinct log filter, a
//!   driver per module and chain).

mod chain;
mod cron;

pub use chain::StartError;
pub(crate) use chain::{ChainSources, DeliveredHeights, fix_start_positions};
pub use cron::CronSource;

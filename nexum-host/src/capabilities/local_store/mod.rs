//! `local-store`: each module's private, persistent key-value store, on fjall.
//!
//! One fjall database per engine. Each module owns the keyspace `module.<name>`; the engine
//! keeps its own data (cursors, dead letters) in `nexum.engine`, which no module can reach.
//! Writes made during one call are held in a `WriteSet` (`nexum_core::host_rules::store`) and committed in one atomic
//! batch when the call returns `ok` — together with any engine records for that call — or
//! dropped when it fails.

mod backend;
mod host;

pub(crate) use backend::ModuleStore;
pub use backend::{StateStore, StoreError};
pub(crate) use host::{LocalStoreCtx, link};

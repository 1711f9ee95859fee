//! The host capabilities a module can import, one module each.
//!
//! Every capability follows the same steps, so a new one is obvious from the others:
//!
//! 1. **configure**: build its per-engine backend from the engine config
//!    (the fjall [`StateStore`](local_store::StateStore), the provider pool in
//!    [`crate::chain`], the orderbooks of `cow_api`);
//! 2. **per module**: derive what one module may touch (its keyspace, its logger, its chains);
//! 3. **link**: add its WIT interface to the shared linker (`link` in each `host.rs`).
//!
//! Each capability keeps its backend (`backend.rs`) apart from its WIT glue (`host.rs`), and
//! maps backend errors to WIT faults in one place.

pub(crate) mod chain;
pub(crate) mod cow_api;
pub mod local_store;
pub(crate) mod logging;

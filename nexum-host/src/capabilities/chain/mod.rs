//! `chain`: read-only JSON-RPC against the chains a module declared.
//!
//! Until the provider pool lands, every call answers `fault.unsupported` naming the engine
//! configuration that is missing.

mod host;

pub(crate) use host::link;

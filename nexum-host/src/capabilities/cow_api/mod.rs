//! `cow-api`: the CoW Protocol orderbook.
//!
//! Until the orderbook client lands, every call answers `fault.unsupported` naming the engine
//! configuration that is missing.

mod host;

pub(crate) use host::link;

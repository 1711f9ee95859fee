//! Rust bindings for the WIT contract, generated from `wit/`.
//!
//! The host binds the widest world, `nexum:cow/cow-module`; a component built against the
//! narrower `nexum:host/event-module` exports the same `init`/`on-event` and imports a subset,
//! so one set of bindings serves both.

wasmtime::component::bindgen!({
    world: "nexum:cow/cow-module",
    path: ["../wit/host", "../wit/cow"],
    imports: {
        "nexum:host/chain": async,
        "nexum:cow/cow-api": async,
    },
    exports: {
        default: async,
    },
    additional_derives: [PartialEq],
    // Parameters of the module's exports borrow: an event is lowered from nexum's own
    // values (`convert::event`), not from an owned copy of each of its byte fields.
    ownership: Borrowing {
        duplicate_if_necessary: true
    },
});

pub use nexum::cow::cow_api;
pub use nexum::host::{chain, local_store, logging, types};

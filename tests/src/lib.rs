//! The shared harness of nexum's end-to-end tests, so each test reads as its scenario:
//!
//! - [`guests`]: compiles the example and fixture modules for `wasm32-wasip2` (once per
//!   test run) and finds their `.wasm` files;
//! - [`engine`]: starts a real [`Runtime`](nexum_host::Runtime) through its builder with
//!   those modules on a fresh fjall store;
//! - [`anvil`]: a real local chain node on a free port, and the test contract;
//! - [`components`]: hand-written components (an older contract, hostile shapes);
//! - [`proxy`]: a TCP proxy to watch and cut the wire between nexum and the node;
//! - [`ws_proxy`]: a websocket proxy that can send `removed: true` logs as geth does;
//! - [`logs`]: captured `tracing` output;
//! - [`memory`]: peak resident memory, for tests that bound it;
//! - [`process`]: child processes that die with their test, and waiting on their output;
//! - [`postgres`]: a real PostgreSQL server, shared by the run, and a database per test;
//! - [`registry`]: a real OCI registry on loopback;
//! - [`telemetry`]: waiting for a value on a running engine's `/metrics`;
//! - [`twap`]: the TWAP keeper's conditional orders, parts and manifest.

// Every dependency earns its place (test targets also see dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod anvil;
pub mod components;
pub mod engine;
pub mod guests;
pub mod logs;
pub mod memory;
pub mod orderbook;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod telemetry;
pub mod twap;
pub mod ws_proxy;

//! The shared harness of nexum's end-to-end tests, so each test reads as its scenario:
//!
//! - [`guests`]: compiles the example and fixture modules for `wasm32-wasip2` (once per
//!   test run) and finds their `.wasm` files;
//! - [`engine`]: boots a real [`HostSupervisor`](nexum_host::HostSupervisor) with those
//!   modules on a fresh fjall store in a temporary directory.

pub mod engine;
pub mod guests;
pub mod logs;

//! `cow-api`: the CoW Protocol orderbook, through the `cowprotocol` crate.
//!
//! - the methods and paths a module may use are `nexum_core::host_rules::orderbook`;
//! - [`transport`]: cowprotocol's `HttpTransport` over reqwest, keeping `Retry-After`;
//! - [`backend`]: one orderbook per chain (the crate's deployment, or `orderbook_url`),
//!   generic requests, order submission with validation, and dry runs;
//! - [`host`]: the WIT glue and the one mapping of failures to `cow-api-error`.

mod backend;
mod host;
mod transport;

pub(crate) use backend::{CowAccess, Orderbooks};
pub(crate) use host::link;

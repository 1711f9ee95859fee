//! What the host accepts from a module, written once so the runtime (`nexum-host`) and the
//! SDK's test host (`nexum_guest::testing::TestHost`) refuse exactly the same things:
//!
//! - [`chain`]: read-only JSON-RPC methods, params shapes and sizes, batch limits;
//! - [`orderbook`]: the methods and relative paths of `cow-api.request`;
//! - [`store`]: key, value and quota rules, and the write set of one call;
//! - [`log_budget`]: how many log lines and bytes per second a module may write.
//!
//! Each check returns the reason as the module will see it.

pub mod chain;
pub mod log_budget;
pub mod orderbook;
pub mod store;

use crate::event::ChainId;

/// Why a chain the module did not declare is refused (by `chain` and `cow-api`).
pub fn undeclared_chain(chain: ChainId) -> String {
    format!(
        "chain {chain} is not declared by this module: subscribe to it or list it in [capabilities] chains"
    )
}

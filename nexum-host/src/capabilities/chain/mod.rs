//! `chain`: read-only JSON-RPC against the chains a module declared.
//!
//! The backend ([`ChainAccess`]) checks the chain and the method, validates params and
//! forwards raw JSON through the provider pool; the glue maps every failure to the WIT
//! `chain-error` in one place.

mod backend;
mod host;

pub(crate) use backend::ChainAccess;
pub(crate) use host::link;

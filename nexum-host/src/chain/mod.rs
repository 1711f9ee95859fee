//! Reaching chains: one JSON-RPC client per configured chain (the provider pool), shared by
//! the `chain` capability and the chain event sources.
//!
//! - [`pool`]: connecting every chain at boot and checking its `eth_chainId`;
//! - [`client`]: one chain's client: raw requests and batches, typed reads (blocks, logs),
//!   subscriptions, per-request timeouts;
//! - [`error`]: what can go wrong talking to a node, classified once (and scrubbed of the
//!   node's URL, which may carry an API key);
//! - `http`: JSON-RPC over HTTP with a capped answer size and no URLs in errors;
//! - [`wire`]: the JSON shapes nexum reads from nodes, and log-filter JSON and blooms.

pub(crate) mod client;
pub(crate) mod error;
mod http;
pub(crate) mod pool;
pub(crate) mod wire;

pub(crate) use client::ChainClient;
pub use error::NodeError;
pub use pool::{ChainPool, ChainStatus, ConnectError, chain_heads};
pub(crate) use wire::{BlockRecord, BloomProbe, LogRange};

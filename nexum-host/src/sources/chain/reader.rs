//! The narrow view of a chain that delivery needs. The real node client implements it; unit
//! tests implement it with a scripted chain, to produce what a real node rarely does on
//! demand — deep reorgs, gaps, refused ranges, partial answers, failures mid-read.

use crate::chain::client::{HeadSubscription, LogSubscription, Next};
use crate::chain::wire::{LogRange, StreamedLog};
use crate::chain::{BlockRecord, ChainClient, NodeError};
use alloy_primitives::B256;
use nexum_core::{ChainId, ChainLog, LogFilter};
use std::future::Future;
use std::time::Duration;

/// What delivery reads from one chain.
pub(crate) trait ChainReader: Send + Sync + 'static {
    /// New heads as the node announces them.
    type Heads: HeadStream;
    /// Logs of one filter as the node announces them.
    type Logs: LogStream;

    fn chain_id(&self) -> ChainId;

    /// Whether the node pushes heads (a websocket); otherwise it is polled.
    fn pushes(&self) -> bool;

    /// Whether a `logs` subscription cross-checks the logs read for each block (a
    /// [`feed`](super::feed)); otherwise the read alone is believed, as when polling.
    fn streams_logs(&self) -> bool {
        self.pushes()
    }

    /// How often the head is polled (and a quiet push connection checked).
    fn poll_interval(&self) -> Duration;

    fn latest_block(&self) -> impl Future<Output = Result<BlockRecord, NodeError>> + Send;

    /// The canonical block at `number`, if the chain is that long.
    fn block_by_number(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Option<BlockRecord>, NodeError>> + Send;

    /// The block with `hash`, canonical or not, if the node has it.
    fn block_by_hash(
        &self,
        hash: B256,
    ) -> impl Future<Output = Result<Option<BlockRecord>, NodeError>> + Send;

    /// The logs matching `filter` in `range`, in chain order.
    fn logs(
        &self,
        filter: &LogFilter,
        range: LogRange,
    ) -> impl Future<Output = Result<Vec<ChainLog>, NodeError>> + Send;

    fn subscribe_heads(&self) -> impl Future<Output = Result<Self::Heads, NodeError>> + Send;

    fn subscribe_logs(
        &self,
        filter: &LogFilter,
    ) -> impl Future<Output = Result<Self::Logs, NodeError>> + Send;
}

/// A stream of new heads.
pub(crate) trait HeadStream: Send + 'static {
    fn next(&mut self) -> impl Future<Output = Next<BlockRecord>> + Send;
}

/// A stream of logs, each read only as far as its position (see [`StreamedLog`]).
pub(crate) trait LogStream: Send + 'static {
    fn next(&mut self) -> impl Future<Output = Next<StreamedLog>> + Send;
}

impl ChainReader for ChainClient {
    type Heads = HeadSubscription;
    type Logs = LogSubscription;

    fn chain_id(&self) -> ChainId {
        ChainClient::chain_id(self)
    }

    fn pushes(&self) -> bool {
        self.is_websocket()
    }

    fn streams_logs(&self) -> bool {
        self.cross_checks_logs()
    }

    fn poll_interval(&self) -> Duration {
        ChainClient::poll_interval(self)
    }

    fn latest_block(&self) -> impl Future<Output = Result<BlockRecord, NodeError>> + Send {
        ChainClient::latest_block(self)
    }

    fn block_by_number(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Option<BlockRecord>, NodeError>> + Send {
        ChainClient::block_by_number(self, number)
    }

    fn block_by_hash(
        &self,
        hash: B256,
    ) -> impl Future<Output = Result<Option<BlockRecord>, NodeError>> + Send {
        ChainClient::block_by_hash(self, hash)
    }

    fn logs(
        &self,
        filter: &LogFilter,
        range: LogRange,
    ) -> impl Future<Output = Result<Vec<ChainLog>, NodeError>> + Send {
        ChainClient::logs(self, filter, range)
    }

    fn subscribe_heads(&self) -> impl Future<Output = Result<HeadSubscription, NodeError>> + Send {
        ChainClient::subscribe_heads(self)
    }

    fn subscribe_logs(
        &self,
        filter: &LogFilter,
    ) -> impl Future<Output = Result<LogSubscription, NodeError>> + Send {
        ChainClient::subscribe_logs(self, filter)
    }
}

impl HeadStream for HeadSubscription {
    fn next(&mut self) -> impl Future<Output = Next<BlockRecord>> + Send {
        HeadSubscription::next(self)
    }
}

impl LogStream for LogSubscription {
    fn next(&mut self) -> impl Future<Output = Next<StreamedLog>> + Send {
        LogSubscription::next(self)
    }
}

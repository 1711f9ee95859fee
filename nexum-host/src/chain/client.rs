//! One chain's JSON-RPC client: raw requests and batches for modules, typed reads for the
//! event sources, and subscriptions on websockets. Every request has a deadline.

use super::error::NodeError;
use super::http::{CappedHttp, MAX_NODE_ANSWER};
use super::wire::{self, BlockRecord, HeadFields, LogFields, LogRange, StreamedLog};
use alloy_primitives::{B256, U64};
use alloy_provider::{Provider, RootProvider};
use alloy_pubsub::{RawSubscription, Subscription};
use alloy_rpc_client::{ClientBuilder, RpcClient};
use alloy_rpc_types_eth::pubsub::SubscriptionKind;
use alloy_transport_ws::{WebSocketConfig, WsConnect};
use nexum_core::redact::{self, Secrets};
use nexum_core::{ChainConfig, ChainId, ChainLog, LogFilter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::sync::broadcast::error::RecvError;

/// Items buffered per subscription before a slow reader starts missing some (a miss is
/// noticed and filled from the chain; for logs it only weakens the cross-check). alloy keeps
/// a receiver of its own on every subscription that never reads, so the ring holds its last
/// items until they are overwritten: its size is memory held for good on a busy stream. A
/// thousand items are five blocks of 200 logs.
const SUBSCRIPTION_BUFFER: usize = 1024;

/// Bytes read from a websocket at a time. tungstenite zeroes up to this much buffer before
/// each read, including the last one of a burst, which finds nothing: a page is enough for a
/// head or a few log notifications, and a large answer takes more reads. Down from 16 KiB
/// this cut the 3,000-log drive's simulated first-level data-cache misses by a tenth.
const READ_BUFFER: usize = 4 * 1024;

/// Counters kept per chain, for tests, metrics and health.
#[derive(Debug, Default)]
pub(crate) struct ClientCounters {
    pub head_subscriptions: AtomicU64,
    pub log_subscriptions: AtomicU64,
    pub requests: AtomicU64,
    pub failed_requests: AtomicU64,
    /// The outcome of the latest request: `None` when it succeeded.
    pub last_failure: std::sync::Mutex<Option<String>>,
}

/// The client of one configured chain.
pub struct ChainClient {
    chain_id: ChainId,
    /// The URL as it may be shown (see `nexum_core::redact`): full URLs carry API keys.
    endpoint: String,
    /// The secret parts of the URL, scrubbed from every error this client returns.
    secrets: Secrets,
    client: RpcClient,
    /// alloy's typed view of the same client (log reads).
    provider: RootProvider,
    /// On websockets, subscriptions get connections that only listen, opened on first use:
    /// one for `newHeads`, one shared by the `logs` subscriptions. Where nexum also sends
    /// requests, the kernel delays its TCP acknowledgements, and the node's next push waited
    /// for them (Anvil's heads arrived ~22 ms later there than on a connection that only
    /// listens); and a block's many log notifications would queue ahead of its head.
    heads_connection: OnceCell<RootProvider>,
    logs_connection: OnceCell<RootProvider>,
    /// What opens those connections (the websocket URL and frame limits).
    websocket_connect: Option<WsConnect>,
    timeout: Duration,
    poll_interval: Duration,
    /// `[chains.<id>] cross_check_logs` (websockets only).
    cross_check_logs: bool,
    pub(crate) counters: ClientCounters,
}

impl ChainClient {
    /// Connects to `config.rpc_url` (websocket or HTTP, by scheme).
    pub(crate) async fn connect(
        chain_id: ChainId,
        config: &ChainConfig,
    ) -> Result<Self, NodeError> {
        let mut secrets = Secrets::default();
        secrets.add_url(&config.rpc_url);
        Self::open(config)
            .await
            .map_err(|e| e.scrubbed(&secrets))
            .map(|(client, websocket_connect)| Self {
                chain_id,
                endpoint: redact::url(&config.rpc_url),
                secrets,
                provider: RootProvider::new(client.clone()),
                client,
                heads_connection: OnceCell::new(),
                logs_connection: OnceCell::new(),
                websocket_connect,
                timeout: Duration::from_millis(config.request_timeout_ms),
                poll_interval: Duration::from_millis(config.poll_interval_ms),
                cross_check_logs: config.cross_check_logs,
                counters: ClientCounters::default(),
            })
    }

    /// The request client, and on websockets what opens further connections.
    async fn open(config: &ChainConfig) -> Result<(RpcClient, Option<WsConnect>), NodeError> {
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let url: url::Url = config
            .rpc_url
            .parse()
            .map_err(|e| NodeError::InvalidRequest(format!("invalid URL: {e}")))?;
        if !config.is_websocket() {
            let is_local = alloy_transport::utils::guess_local_url(url.as_str());
            return Ok((
                ClientBuilder::default().transport(CappedHttp::new(url), is_local),
                None,
            ));
        }
        // Reconnect for as long as it takes; gaps are filled from the chain afterwards.
        let mut frames = WebSocketConfig::default();
        frames.max_message_size = Some(MAX_NODE_ANSWER);
        // Nodes send an answer as one frame: the frame cap is the answer cap.
        frames.max_frame_size = Some(MAX_NODE_ANSWER);
        // Each read zeroes this much buffer first; the default (128 KiB) made that a visible
        // share of the CPU spent on a stream of small pushes (see `READ_BUFFER`).
        frames.read_buffer_size = READ_BUFFER;
        let connect = WsConnect::new(config.rpc_url.clone())
            .with_config(frames)
            .with_max_retries(u32::MAX)
            .with_retry_interval(Duration::from_millis(500));
        let client = Self::open_websocket(&connect, timeout).await?;
        Ok((client, Some(connect)))
    }

    async fn open_websocket(
        connect: &WsConnect,
        timeout: Duration,
    ) -> Result<RpcClient, NodeError> {
        let client = tokio::time::timeout(timeout, ClientBuilder::default().ws(connect.clone()))
            .await
            .map_err(|_| NodeError::Timeout(timeout))?
            .map_err(NodeError::from_rpc)?;
        client.set_channel_size(SUBSCRIPTION_BUFFER);
        Ok(client)
    }

    /// The listening connection `connection` is, opened the first time it is asked for.
    /// A node that refuses another connection (providers cap them per key) still gets the
    /// subscription, on the request connection, until a later attempt opens its own.
    async fn listening<'a>(
        &'a self,
        connection: &'a OnceCell<RootProvider>,
    ) -> Result<&'a RootProvider, NodeError> {
        let connect = self.websocket_connect.as_ref().ok_or_else(|| {
            NodeError::InvalidRequest("subscriptions need a websocket node".into())
        })?;
        let opened = connection
            .get_or_try_init(|| async {
                let client = Self::open_websocket(connect, self.timeout)
                    .await
                    .map_err(|e| e.scrubbed(&self.secrets))?;
                Ok::<_, NodeError>(RootProvider::new(client))
            })
            .await;
        match opened {
            Ok(provider) => Ok(provider),
            Err(error) => {
                tracing::warn!(
                    chain = self.chain_id,
                    endpoint = self.endpoint,
                    %error,
                    "cannot open a listening connection; subscribing on the request connection for now"
                );
                Ok(&self.provider)
            }
        }
    }

    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Where the node is, without credentials.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn is_websocket(&self) -> bool {
        self.websocket_connect.is_some()
    }

    /// Whether block reads are cross-checked against a `logs` subscription.
    pub fn cross_checks_logs(&self) -> bool {
        self.is_websocket() && self.cross_check_logs
    }

    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// One request with raw JSON params and result (passed through untouched).
    pub async fn request_raw(
        &self,
        method: String,
        params: Box<RawValue>,
    ) -> Result<Box<RawValue>, NodeError> {
        let call = self
            .client
            .request::<Box<RawValue>, Box<RawValue>>(method.clone(), params);
        self.deadline(&method, call).await
    }

    /// One JSON-RPC batch (a single message on the wire); results in request order.
    pub async fn batch_raw(
        &self,
        calls: Vec<(String, Box<RawValue>)>,
    ) -> Result<Vec<Result<Box<RawValue>, NodeError>>, NodeError> {
        let mut batch = self.client.new_batch();
        let mut waiters = Vec::with_capacity(calls.len());
        for (method, params) in calls {
            let waiter = batch
                .add_call::<Box<RawValue>, Box<RawValue>>(method, &params)
                .map_err(|e| self.node_error(e))?;
            waiters.push(waiter);
        }
        self.deadline("batch", batch.send()).await?;
        let mut results = Vec::with_capacity(waiters.len());
        for waiter in waiters {
            results.push(waiter.await.map_err(|e| self.node_error(e)));
        }
        Ok(results)
    }

    /// A typed request.
    pub async fn call<P, R>(&self, method: &'static str, params: P) -> Result<R, NodeError>
    where
        P: Serialize + Clone + std::fmt::Debug + Send + Sync + Unpin + 'static,
        R: DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static,
    {
        let call = self.client.request::<P, R>(method, params);
        self.deadline(method, call).await
    }

    /// `eth_chainId`.
    pub async fn remote_chain_id(&self) -> Result<u64, NodeError> {
        let id: U64 = self.call("eth_chainId", ()).await?;
        Ok(id.to())
    }

    /// The newest block.
    pub async fn latest_block(&self) -> Result<BlockRecord, NodeError> {
        self.block("eth_getBlockByNumber", serde_json::json!(["latest", false]))
            .await?
            .ok_or_else(|| NodeError::Malformed("no latest block".into()))
    }

    /// The canonical block at `number`, if the chain is that long.
    pub async fn block_by_number(&self, number: u64) -> Result<Option<BlockRecord>, NodeError> {
        self.block(
            "eth_getBlockByNumber",
            serde_json::json!([format!("{number:#x}"), false]),
        )
        .await
    }

    /// The block with `hash`, canonical or not, if the node has it.
    pub async fn block_by_hash(&self, hash: B256) -> Result<Option<BlockRecord>, NodeError> {
        self.block("eth_getBlockByHash", serde_json::json!([hash, false]))
            .await
    }

    async fn block(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> Result<Option<BlockRecord>, NodeError> {
        let header: Option<HeadFields> = self.call(method, params).await?;
        Ok(header.map(|h| BlockRecord::from_header(self.chain_id, &h)))
    }

    /// The logs matching `filter` in `range`, in chain order.
    pub async fn logs(
        &self,
        filter: &LogFilter,
        range: LogRange,
    ) -> Result<Vec<ChainLog>, NodeError> {
        let filter = wire::filter(filter, Some(range));
        let logs: Vec<LogFields> = self.call("eth_getLogs", (filter,)).await?;
        Ok(logs.into_iter().map(wire::chain_log).collect())
    }

    /// A `newHeads` subscription (websocket only).
    pub async fn subscribe_heads(&self) -> Result<HeadSubscription, NodeError> {
        let connection = self.listening(&self.heads_connection).await?;
        let heads = self
            .deadline(
                "eth_subscribe",
                connection
                    .subscribe((SubscriptionKind::NewHeads,))
                    .into_future(),
            )
            .await?;
        self.counters
            .head_subscriptions
            .fetch_add(1, Ordering::Relaxed);
        Ok(HeadSubscription {
            heads,
            chain_id: self.chain_id,
        })
    }

    /// A `logs` subscription for `filter` (websocket only).
    pub async fn subscribe_logs(&self, filter: &LogFilter) -> Result<LogSubscription, NodeError> {
        let connection = self.listening(&self.logs_connection).await?;
        let filter = wire::filter(filter, None);
        let logs: Subscription<Box<RawValue>> = self
            .deadline(
                "eth_subscribe",
                connection
                    .subscribe((SubscriptionKind::Logs, filter))
                    .into_future(),
            )
            .await?;
        self.counters
            .log_subscriptions
            .fetch_add(1, Ordering::Relaxed);
        Ok(LogSubscription {
            logs: logs.into_raw(),
            connection: connection.clone(),
        })
    }

    /// A node error as every caller sees it: classified, scrubbed of the URL's secrets and
    /// cut to size.
    fn node_error(
        &self,
        error: alloy_json_rpc::RpcError<alloy_transport::TransportErrorKind>,
    ) -> NodeError {
        NodeError::from_rpc(error).scrubbed(&self.secrets)
    }

    /// Runs `call` within the request timeout, counting it (for metrics and health).
    async fn deadline<T>(
        &self,
        method: &str,
        call: impl Future<Output = alloy_transport::TransportResult<T>>,
    ) -> Result<T, NodeError> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.node_error(e)),
            Err(_) => Err(NodeError::Timeout(self.timeout)),
        };
        // A node's error answer (a revert, bad params) still means the node is reachable.
        let (outcome, unreachable) = match &result {
            Ok(_) => ("ok", None),
            Err(NodeError::Timeout(_)) => (
                "timeout",
                Some("the node does not answer in time".to_string()),
            ),
            Err(e @ (NodeError::Unavailable(_) | NodeError::RateLimited { .. })) => {
                ("error", Some(e.to_string()))
            }
            Err(_) => ("error", None),
        };
        metrics::counter!(
            crate::telemetry::names::RPC_REQUESTS,
            "chain" => self.chain_id.to_string(),
            "method" => method.to_string(),
            "outcome" => outcome,
        )
        .increment(1);
        if outcome != "ok" {
            self.counters
                .failed_requests
                .fetch_add(1, Ordering::Relaxed);
        }
        *self
            .counters
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = unreachable;
        result
    }

    /// Why the node is not usable right now, if it is not.
    pub fn problem(&self) -> Option<String> {
        self.counters
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What a subscription yields next.
pub(crate) enum Next<T> {
    Item(T),
    /// Items were dropped (the reader fell behind, or the socket reconnected): fill the
    /// gap from the chain.
    Missed,
    /// The subscription is gone for good.
    Closed,
}

/// New heads, as the node announces them.
pub struct HeadSubscription {
    heads: Subscription<HeadFields>,
    chain_id: ChainId,
}

impl HeadSubscription {
    pub(crate) async fn next(&mut self) -> Next<BlockRecord> {
        match self.heads.recv().await {
            Ok(header) => Next::Item(BlockRecord::from_header(self.chain_id, &header)),
            Err(RecvError::Lagged(_)) => Next::Missed,
            Err(RecvError::Closed) => Next::Closed,
        }
    }
}

/// Logs matching one filter, as the node announces them, until dropped.
pub struct LogSubscription {
    /// Items as the node sent them: each is read only as far as the feed needs.
    logs: RawSubscription,
    /// To end the subscription on the node when dropped.
    connection: RootProvider,
}

impl Drop for LogSubscription {
    /// alloy keeps a dropped subscription going (the node streams on, and it subscribes
    /// again after each reconnect): end it. The connection shares one subscription among
    /// identical filters, but nexum opens one per filter at a time; should a new one for
    /// the same filter be asked for just before this ends it, the new one sees its stream
    /// close and subscribes again.
    fn drop(&mut self) {
        let _ = self.connection.unsubscribe(*self.logs.local_id());
    }
}

impl LogSubscription {
    /// The next log announced (see [`StreamedLog`]). A notification without a readable
    /// position is passed over, as alloy's typed subscriptions pass over what they cannot
    /// read; one whose other fields do not read is found out, and forgotten, only when
    /// the feed reads it in full (see `sources/chain/feed.rs`).
    pub(crate) async fn next(&mut self) -> Next<StreamedLog> {
        loop {
            match self.logs.recv().await {
                Ok(json) => match StreamedLog::parse(json) {
                    Ok(log) => return Next::Item(log),
                    Err(error) => {
                        tracing::debug!(%error, "passing over a log notification that is not a log")
                    }
                },
                Err(RecvError::Lagged(_)) => return Next::Missed,
                Err(RecvError::Closed) => return Next::Closed,
            }
        }
    }
}

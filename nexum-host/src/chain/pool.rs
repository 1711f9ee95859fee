//! The provider pool: a client per configured chain, connected and checked at boot.

use super::client::ChainClient;
use super::error::NodeError;
use nexum_core::{ChainConfig, ChainId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Why a chain could not be connected at boot.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The node could not be reached or did not answer `eth_chainId`.
    #[error("chain {chain_id}: cannot reach the node at {endpoint}: {error}")]
    Unreachable {
        /// The chain's id (its `[chains.<id>]` key).
        chain_id: ChainId,
        /// Where the node is (without credentials).
        endpoint: String,
        /// What went wrong.
        error: NodeError,
    },
    /// The node serves another chain than its table key says.
    #[error(
        "chain {chain_id}: the node at {endpoint} serves chain {actual}, not {chain_id}; \
         fix the rpc_url of [chains.{chain_id}] in the engine config"
    )]
    WrongChain {
        /// The configured id.
        chain_id: ChainId,
        /// Where the node is.
        endpoint: String,
        /// What the node reported.
        actual: u64,
    },
}

/// Counters of one chain, for tests, metrics and health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainStatus {
    /// `newHeads` subscriptions opened.
    pub head_subscriptions: u64,
    /// `logs` subscriptions opened (one per distinct filter).
    pub log_subscriptions: u64,
    /// JSON-RPC requests (a batch counts once).
    pub requests: u64,
    /// Requests that failed at the transport or timed out.
    pub failed_requests: u64,
}

/// One client per configured chain.
#[derive(Default)]
pub struct ChainPool {
    clients: BTreeMap<ChainId, Arc<ChainClient>>,
}

impl ChainPool {
    /// Connects to every chain and checks that each serves the chain id of its table key.
    pub async fn connect(chains: &BTreeMap<ChainId, ChainConfig>) -> Result<Self, ConnectError> {
        let mut clients = BTreeMap::new();
        for (&chain_id, config) in chains {
            let endpoint = nexum_core::redact::url(&config.rpc_url);
            let client = ChainClient::connect(chain_id, config)
                .await
                .map_err(|error| ConnectError::Unreachable {
                    chain_id,
                    endpoint: endpoint.clone(),
                    error,
                })?;
            let endpoint = client.endpoint().to_string();
            let actual =
                client
                    .remote_chain_id()
                    .await
                    .map_err(|error| ConnectError::Unreachable {
                        chain_id,
                        endpoint: endpoint.clone(),
                        error,
                    })?;
            if actual != chain_id {
                return Err(ConnectError::WrongChain {
                    chain_id,
                    endpoint,
                    actual,
                });
            }
            tracing::info!(
                chain = chain_id,
                endpoint,
                websocket = client.is_websocket(),
                cross_check_logs = client.cross_checks_logs(),
                "chain connected"
            );
            clients.insert(chain_id, Arc::new(client));
        }
        Ok(Self { clients })
    }

    /// Every configured chain's client, by chain id.
    pub(crate) fn clients(&self) -> &BTreeMap<ChainId, Arc<ChainClient>> {
        &self.clients
    }

    /// The client of `chain`, if configured.
    pub(crate) fn get(&self, chain: ChainId) -> Option<&Arc<ChainClient>> {
        self.clients.get(&chain)
    }

    /// The chains whose node is unreachable right now, and why.
    pub fn problems(&self) -> Vec<(ChainId, String)> {
        self.clients
            .iter()
            .filter_map(|(id, client)| client.problem().map(|p| (*id, p)))
            .collect()
    }

    /// The counters of `chain`.
    pub fn status(&self, chain: ChainId) -> Option<ChainStatus> {
        self.clients.get(&chain).map(|c| ChainStatus {
            head_subscriptions: c.counters.head_subscriptions.load(Ordering::Relaxed),
            log_subscriptions: c.counters.log_subscriptions.load(Ordering::Relaxed),
            requests: c.counters.requests.load(Ordering::Relaxed),
            failed_requests: c.counters.failed_requests.load(Ordering::Relaxed),
        })
    }
}

/// Each configured chain's newest block number, or why it could not be read (for
/// operators' tools such as `nexum cluster status`, which run beside the engine and hold no
/// pool of their own). Every chain is asked at once, each within its request timeout.
pub async fn chain_heads(
    chains: &BTreeMap<ChainId, ChainConfig>,
) -> BTreeMap<ChainId, Result<u64, String>> {
    let asks = chains.iter().map(|(&chain_id, config)| async move {
        let head = async {
            let client = ChainClient::connect(chain_id, config).await?;
            Ok::<_, NodeError>(client.latest_block().await?.number())
        };
        let deadline = std::time::Duration::from_millis(config.request_timeout_ms);
        let head = match tokio::time::timeout(deadline, head).await {
            Ok(Ok(number)) => Ok(number),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(NodeError::Timeout(deadline).to_string()),
        };
        (chain_id, head)
    });
    futures::future::join_all(asks).await.into_iter().collect()
}

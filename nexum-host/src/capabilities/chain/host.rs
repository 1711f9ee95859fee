//! WIT glue for `nexum:host/chain`: argument passing and the mapping of failures to
//! `chain-error`, written once here.

use super::backend::{ChainAccess, ChainFailure};
use crate::bindings::chain::{self, ChainError, Host, RpcError, RpcRequest};
use crate::bindings::types::{ChainId, Fault, RateLimit};
use crate::chain::NodeError;
use crate::state::ModuleState;
use wasmtime::component::{HasData, Linker};

/// Marker tying the `chain` bindings to [`ChainAccess`].
pub(crate) struct Chain;

impl HasData for Chain {
    type Data<'a> = &'a ChainAccess;
}

impl From<ChainFailure> for ChainError {
    fn from(failure: ChainFailure) -> Self {
        match failure {
            ChainFailure::Unsupported(m) => ChainError::Fault(Fault::Unsupported(m)),
            ChainFailure::Denied(m) => ChainError::Fault(Fault::Denied(m)),
            ChainFailure::InvalidInput(m) => ChainError::Fault(Fault::InvalidInput(m)),
            ChainFailure::Node(error) => node_error(error),
        }
    }
}

fn node_error(error: NodeError) -> ChainError {
    match error {
        NodeError::Rpc {
            code,
            message,
            data,
        } => ChainError::Rpc(RpcError {
            code: i32::try_from(code).unwrap_or(if code < 0 { i32::MIN } else { i32::MAX }),
            message,
            data: data.and_then(|d| revert_bytes(&d)),
        }),
        NodeError::RateLimited { retry_after } => {
            ChainError::Fault(Fault::RateLimited(RateLimit {
                retry_after_ms: retry_after
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            }))
        }
        NodeError::Timeout(_) => ChainError::Fault(Fault::Timeout),
        NodeError::InvalidRequest(m) => ChainError::Fault(Fault::InvalidInput(m)),
        NodeError::Unavailable(m) => ChainError::Fault(Fault::Unavailable(m)),
        NodeError::Malformed(m) => {
            ChainError::Fault(Fault::Unavailable(format!("malformed answer: {m}")))
        }
    }
}

/// Revert data arrives as a JSON string of hex (`"0x08c379a0…"`); anything else is not bytes.
fn revert_bytes(data_json: &str) -> Option<Vec<u8>> {
    let text: String = serde_json::from_str(data_json).ok()?;
    hex::decode(text.strip_prefix("0x").unwrap_or(&text)).ok()
}

impl Host for &ChainAccess {
    async fn request(
        &mut self,
        chain_id: ChainId,
        method: String,
        params: String,
    ) -> Result<String, ChainError> {
        let raw = ChainAccess::request(self, chain_id, method, params).await?;
        Ok(raw.get().to_string())
    }

    async fn request_batch(
        &mut self,
        chain_id: ChainId,
        requests: Vec<RpcRequest>,
    ) -> Result<Vec<Result<String, ChainError>>, ChainError> {
        let requests = requests.into_iter().map(|r| (r.method, r.params)).collect();
        let answers = ChainAccess::request_batch(self, chain_id, requests).await?;
        Ok(answers
            .into_iter()
            .map(|a| a.map(|raw| raw.get().to_string()).map_err(ChainError::from))
            .collect())
    }
}

/// Adds `nexum:host/chain` to `linker`.
pub(crate) fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    chain::add_to_linker::<ModuleState, Chain>(linker, |state| &state.chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_data_is_decoded_from_hex() {
        assert_eq!(
            revert_bytes("\"0x08c379a0\""),
            Some(vec![0x08, 0xc3, 0x79, 0xa0])
        );
        assert_eq!(revert_bytes("{\"x\":1}"), None);
    }

    #[test]
    fn node_errors_map_to_the_contract() {
        let rpc = node_error(NodeError::Rpc {
            code: 3,
            message: "execution reverted".into(),
            data: Some("\"0x01\"".into()),
        });
        assert_eq!(
            rpc,
            ChainError::Rpc(RpcError {
                code: 3,
                message: "execution reverted".into(),
                data: Some(vec![1])
            })
        );
        assert_eq!(
            node_error(NodeError::RateLimited {
                retry_after: Some(std::time::Duration::from_secs(2))
            }),
            ChainError::Fault(Fault::RateLimited(RateLimit {
                retry_after_ms: Some(2000)
            }))
        );
        assert_eq!(
            node_error(NodeError::Timeout(std::time::Duration::from_secs(1))),
            ChainError::Fault(Fault::Timeout)
        );
        assert!(matches!(
            node_error(NodeError::Unavailable("refused".into())),
            ChainError::Fault(Fault::Unavailable(_))
        ));
    }
}

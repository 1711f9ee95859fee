//! Errors from talking to a node, classified once for every caller.

use alloy_json_rpc::RpcError;
use alloy_transport::TransportErrorKind;
use nexum_core::bounded::cut;
use nexum_core::redact::Secrets;

/// Longest error text from a node that is kept (messages, bodies).
const MAX_NODE_TEXT: usize = 4096;
/// Largest error `data` kept (revert data): a revert carries at most a few kilobytes.
const MAX_NODE_DATA: usize = 64 * 1024;
use serde_json::value::RawValue;
use std::time::Duration;

/// A failed JSON-RPC exchange with a node.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    /// The node answered with a JSON-RPC error object.
    #[error("node error {code}: {message}")]
    Rpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The error message.
        message: String,
        /// The raw `data` member, if any (revert data is a hex string).
        data: Option<String>,
    },
    /// The node (or a proxy) asked us to slow down.
    #[error("rate limited{}", retry_after.map(|d| format!(" (retry after {} ms)", d.as_millis())).unwrap_or_default())]
    RateLimited {
        /// How long to wait, when the server said.
        retry_after: Option<Duration>,
    },
    /// No answer within the request timeout.
    #[error("the node did not answer within {0:?}")]
    Timeout(Duration),
    /// The node could not be reached (connection refused, closed, HTTP failure).
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// The node answered something that is not what the method returns.
    #[error("malformed answer from the node: {0}")]
    Malformed(String),
    /// The request could not be built (bad params).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// Whether a JSON-RPC error object means "too many requests". Code -32005 also means
/// "query returned more than N results" on some providers, so it counts only when its
/// message speaks of a rate.
fn is_rate_limit(code: i64, message: &str) -> bool {
    code == 429 || (code == -32005 && message.to_ascii_lowercase().contains("rate"))
}

impl NodeError {
    /// The same error with every URL and every secret of the node's URL taken out of its
    /// text (node and client errors, and bodies the node sent back, may echo its API key),
    /// and the text cut to [`MAX_NODE_TEXT`] bytes.
    pub(crate) fn scrubbed(self, secrets: &Secrets) -> Self {
        let clean = |text: &str| secrets.scrub(&cut(text, MAX_NODE_TEXT));
        match self {
            NodeError::Rpc {
                code,
                message,
                data,
            } => NodeError::Rpc {
                code,
                message: clean(&message),
                data: data.filter(|d| d.len() <= MAX_NODE_DATA),
            },
            NodeError::Unavailable(m) => NodeError::Unavailable(clean(&m)),
            NodeError::Malformed(m) => NodeError::Malformed(clean(&m)),
            NodeError::InvalidRequest(m) => NodeError::InvalidRequest(clean(&m)),
            other @ (NodeError::RateLimited { .. } | NodeError::Timeout(_)) => other,
        }
    }

    /// Classifies an alloy transport result error.
    pub(crate) fn from_rpc(error: RpcError<TransportErrorKind>) -> Self {
        match error {
            RpcError::ErrorResp(payload) if is_rate_limit(payload.code, &payload.message) => {
                NodeError::RateLimited { retry_after: None }
            }
            RpcError::ErrorResp(payload) => NodeError::Rpc {
                code: payload.code,
                message: payload.message.into_owned(),
                data: payload.data.map(|d: Box<RawValue>| d.get().to_string()),
            },
            RpcError::Transport(TransportErrorKind::HttpErrorWithRetryAfter {
                error,
                retry_after,
            }) => {
                if error.status == 429 {
                    NodeError::RateLimited {
                        retry_after: Some(retry_after),
                    }
                } else {
                    NodeError::Unavailable(format!("HTTP {}: {}", error.status, short(&error.body)))
                }
            }
            RpcError::Transport(TransportErrorKind::HttpError(error)) if error.status == 429 => {
                NodeError::RateLimited { retry_after: None }
            }
            RpcError::Transport(TransportErrorKind::HttpError(error)) => {
                NodeError::Unavailable(format!("HTTP {}: {}", error.status, short(&error.body)))
            }
            RpcError::Transport(kind) => NodeError::Unavailable(kind.to_string()),
            RpcError::NullResp => NodeError::Malformed("null result".into()),
            RpcError::DeserError { err, .. } => NodeError::Malformed(err.to_string()),
            RpcError::SerError(err) => NodeError::InvalidRequest(err.to_string()),
            RpcError::LocalUsageError(err) => NodeError::InvalidRequest(err.to_string()),
            RpcError::UnsupportedFeature(feature) => {
                NodeError::Unavailable(format!("unsupported: {feature}"))
            }
        }
    }

    /// Whether the node refused an `eth_getLogs` because the range (or its result) is too
    /// large — providers word this many ways.
    pub fn is_range_too_large(&self) -> bool {
        let NodeError::Rpc { message, .. } = self else {
            return false;
        };
        let message = message.to_ascii_lowercase();
        [
            "range",
            "more than",
            "too many",
            "too large",
            "exceed",
            "limit",
        ]
        .iter()
        .any(|hint| message.contains(hint))
    }
}

fn short(body: &str) -> &str {
    let end = body.char_indices().nth(200).map_or(body.len(), |(i, _)| i);
    &body[..end]
}

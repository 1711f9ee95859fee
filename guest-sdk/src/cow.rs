//! The CoW Protocol orderbook: typed order submission, typed rejections, and the retry
//! decision a keeper needs after each answer.
//!
//! Order types come from the `cowprotocol` crate where they are safe inside a component
//! (`OrderData` and its enums, UIDs, the orderbook's error types and retry table). The
//! submission body is this SDK's own [`OrderCreation`]: the crate's version checks
//! `valid_to` against a browser clock that does not exist under WASI.

use crate::bindings::nexum::cow::cow_api::{self as wit, CowApiError};
use crate::{Fault, host};
use alloy_primitives::{Address, B256, Bytes, U256};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

pub use cowprotocol::error::{OrderbookApiErrorType as ErrorType, RetryHint};
pub use cowprotocol::order::{BuyTokenDestination, OrderData, OrderKind, SellTokenSource};
pub use cowprotocol::signing_scheme::SigningScheme;

/// The body of `POST /api/v1/orders`, as the orderbook expects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreation {
    /// Token sold.
    pub sell_token: Address,
    /// Token bought.
    pub buy_token: Address,
    /// Who receives the bought tokens (`None`: the owner).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<Address>,
    /// Sell amount, atomic units.
    #[serde(serialize_with = "decimal")]
    pub sell_amount: U256,
    /// Buy amount, atomic units.
    #[serde(serialize_with = "decimal")]
    pub buy_amount: U256,
    /// Expiry, Unix seconds.
    pub valid_to: u32,
    /// The full app-data JSON document.
    pub app_data: String,
    /// `keccak256(app_data)`, as signed.
    pub app_data_hash: B256,
    /// Signed fee (zero for orders placed today).
    #[serde(serialize_with = "decimal")]
    pub fee_amount: U256,
    /// Sell or buy order.
    pub kind: OrderKind,
    /// Whether it may be filled in parts.
    pub partially_fillable: bool,
    /// Where the sold tokens come from.
    pub sell_token_balance: SellTokenSource,
    /// Where the bought tokens go.
    pub buy_token_balance: BuyTokenDestination,
    /// How `signature` is to be checked.
    pub signing_scheme: SigningScheme,
    /// The signature (for EIP-1271: the bytes the owner contract verifies).
    pub signature: Bytes,
    /// The order's owner.
    pub from: Address,
}

fn decimal<S: serde::Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_string())
}

impl OrderCreation {
    /// The twelve signed fields.
    pub fn order_data(&self) -> OrderData {
        OrderData {
            sell_token: self.sell_token,
            buy_token: self.buy_token,
            receiver: self.receiver,
            sell_amount: self.sell_amount,
            buy_amount: self.buy_amount,
            valid_to: self.valid_to,
            app_data: self.app_data_hash,
            fee_amount: self.fee_amount,
            kind: self.kind,
            partially_fillable: self.partially_fillable,
            sell_token_balance: self.sell_token_balance,
            buy_token_balance: self.buy_token_balance,
        }
    }

    /// The 56-byte order UID on `chain_id`, as `0x…` — the same UID the orderbook
    /// returns, known before submitting. Chains `cowprotocol` does not know (local test
    /// chains) use the settlement contract's canonical address.
    pub fn uid(&self, chain_id: u64) -> String {
        let domain = match cowprotocol::chain::Chain::try_from(chain_id) {
            Ok(chain) => chain.settlement_domain(),
            Err(_) => cowprotocol::domain::settlement_domain(
                chain_id,
                cowprotocol::contracts::GPV2_SETTLEMENT,
            ),
        };
        self.order_data().uid(&domain, self.from).to_string()
    }
}

/// The orderbook's own error document.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// HTTP status.
    pub status: u16,
    /// `errorType`, typed; [`ErrorType::Unknown`] carries any other value.
    pub error_type: ErrorType,
    /// `description`.
    pub description: String,
    /// `data`, as JSON text.
    pub data: Option<String>,
}

/// Why an orderbook call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CowError {
    /// The host's fault (unsupported chain, denied path, rate limit, timeout, …).
    Fault(Fault),
    /// A non-2xx answer that is not an orderbook error document.
    Http {
        /// HTTP status.
        status: u16,
        /// The body, if any.
        body: Option<String>,
    },
    /// The orderbook refused, saying why.
    Rejected(Rejection),
}

impl From<CowApiError> for CowError {
    fn from(e: CowApiError) -> Self {
        match e {
            CowApiError::Fault(fault) => CowError::Fault(fault),
            CowApiError::Http(h) => CowError::Http {
                status: h.status,
                body: h.body,
            },
            CowApiError::Rejected(r) => CowError::Rejected(Rejection {
                status: r.status,
                error_type: ErrorType::from(r.error_type.as_str()),
                description: r.description,
                data: r.data,
            }),
        }
    }
}

impl fmt::Display for CowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CowError::Fault(fault) => write!(f, "{fault:?}"),
            CowError::Http { status, body } => {
                write!(f, "HTTP {status}: {}", body.as_deref().unwrap_or(""))
            }
            CowError::Rejected(r) => {
                write!(f, "rejected ({}): {}", r.error_type.as_str(), r.description)
            }
        }
    }
}

impl From<CowError> for Fault {
    fn from(e: CowError) -> Self {
        match e {
            CowError::Fault(fault) => fault,
            other => Fault::Internal(other.to_string()),
        }
    }
}

/// What a keeper should do after a failed submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again on the next block.
    NextBlock,
    /// Wait this long, then try again.
    After(Duration),
    /// The orderbook already has this order: record it as submitted.
    AlreadySubmitted,
    /// Do not send this order again.
    Drop,
}

/// How long to back off from a rate limit that did not say.
const DEFAULT_RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(30);

impl CowError {
    /// The retry decision for this failure, following the orderbook's documented error
    /// types (the watch-tower's table, as `cowprotocol` encodes it).
    pub fn retry(&self) -> Retry {
        match self {
            CowError::Fault(Fault::RateLimited(r)) => Retry::After(
                r.retry_after_ms
                    .map(Duration::from_millis)
                    .unwrap_or(DEFAULT_RATE_LIMIT_BACKOFF),
            ),
            CowError::Fault(Fault::Timeout | Fault::Unavailable(_)) => Retry::NextBlock,
            CowError::Fault(_) => Retry::Drop,
            CowError::Http { status, .. } if *status >= 500 => Retry::NextBlock,
            CowError::Http { .. } => Retry::Drop,
            CowError::Rejected(r) => {
                let api = cowprotocol::error::ApiError {
                    error_type: r.error_type.as_str().to_string(),
                    description: r.description.clone(),
                    data: None,
                };
                match api.retry_hint() {
                    RetryHint::Retry => Retry::NextBlock,
                    RetryHint::Backoff { seconds } => Retry::After(Duration::from_secs(seconds)),
                    RetryHint::AlreadySubmitted => Retry::AlreadySubmitted,
                    // `Drop`, and whatever later versions of the table add.
                    _ => Retry::Drop,
                }
            }
        }
    }
}

/// Posts `order` to `chain_id`'s orderbook; the `0x…` UID on success.
pub fn submit_order(chain_id: u64, order: &OrderCreation) -> Result<String, CowError> {
    let body = serde_json::to_vec(order).map_err(|e| {
        CowError::Fault(Fault::InvalidInput(format!("cannot encode the order: {e}")))
    })?;
    host::cow_submit_order(chain_id, &body).map_err(CowError::from)
}

/// A call to a relative orderbook API path (`api/v1/…`); the body on 2xx.
pub fn request(
    chain_id: u64,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<String, CowError> {
    host::cow_request(chain_id, method, path, body).map_err(CowError::from)
}

/// The full app-data document whose hash is `hash`: `{}` for its well-known hash, else
/// the orderbook's copy.
pub fn app_data(chain_id: u64, hash: B256) -> Result<String, CowError> {
    if hash == alloy_primitives::keccak256("{}") {
        return Ok("{}".to_string());
    }
    let body = request(chain_id, "GET", &format!("api/v1/app_data/{hash}"), None)?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Document {
        full_app_data: String,
    }
    serde_json::from_str::<Document>(&body)
        .map(|d| d.full_app_data)
        .map_err(|e| {
            CowError::Fault(Fault::Unavailable(format!(
                "malformed app-data answer: {e}"
            )))
        })
}

/// The raw WIT types, for what the helpers do not cover.
pub use wit::{HttpFailure, OrderRejection};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RateLimit;

    fn rejected(error_type: &str) -> CowError {
        CowError::Rejected(Rejection {
            status: 400,
            error_type: ErrorType::from(error_type),
            description: String::new(),
            data: None,
        })
    }

    #[test]
    fn retry_follows_the_orderbook_error_types() {
        assert_eq!(rejected("DuplicatedOrder").retry(), Retry::AlreadySubmitted);
        assert_eq!(
            rejected("InsufficientAllowance").retry(),
            Retry::After(Duration::from_secs(600))
        );
        assert_eq!(
            rejected("TooManyLimitOrders").retry(),
            Retry::After(Duration::from_secs(3600))
        );
        assert_eq!(rejected("QuoteNotFound").retry(), Retry::NextBlock);
        assert_eq!(rejected("InvalidSignature").retry(), Retry::Drop);
        assert_eq!(rejected("SomethingNew").retry(), Retry::Drop);
        assert!(
            matches!(rejected("SomethingNew"), CowError::Rejected(Rejection { error_type: ErrorType::Unknown(ref s), .. }) if s == "SomethingNew")
        );
        assert_eq!(
            CowError::Fault(Fault::RateLimited(RateLimit {
                retry_after_ms: Some(1500)
            }))
            .retry(),
            Retry::After(Duration::from_millis(1500))
        );
        assert_eq!(CowError::Fault(Fault::Timeout).retry(), Retry::NextBlock);
        assert_eq!(
            CowError::Http {
                status: 503,
                body: None
            }
            .retry(),
            Retry::NextBlock
        );
        assert_eq!(
            CowError::Http {
                status: 404,
                body: None
            }
            .retry(),
            Retry::Drop
        );
    }

    #[test]
    fn the_body_has_the_orderbook_shape() {
        let order = OrderCreation {
            sell_token: Address::repeat_byte(1),
            buy_token: Address::repeat_byte(2),
            receiver: None,
            sell_amount: U256::from(1000),
            buy_amount: U256::from(900),
            valid_to: 1_700_000_000,
            app_data: "{}".into(),
            app_data_hash: alloy_primitives::keccak256("{}"),
            fee_amount: U256::ZERO,
            kind: OrderKind::Sell,
            partially_fillable: false,
            sell_token_balance: SellTokenSource::Erc20,
            buy_token_balance: BuyTokenDestination::Erc20,
            signing_scheme: SigningScheme::Eip1271,
            signature: Bytes::from(vec![0xab]),
            from: Address::repeat_byte(3),
        };
        let json = serde_json::to_value(&order).unwrap();
        assert_eq!(json["sellAmount"], "1000");
        assert_eq!(json["kind"], "sell");
        assert_eq!(json["signingScheme"], "eip1271");
        assert_eq!(json["sellTokenBalance"], "erc20");
        assert_eq!(json["signature"], "0xab");
        assert!(json.get("receiver").is_none());
        let uid = order.uid(1);
        assert_eq!(uid.len(), 2 + 56 * 2);
        assert!(
            uid.ends_with(&format!("{}{:08x}", hex_of(&order.from), order.valid_to)),
            "{uid}"
        );
    }

    fn hex_of(a: &Address) -> String {
        a.as_slice().iter().map(|b| format!("{b:02x}")).collect()
    }
}

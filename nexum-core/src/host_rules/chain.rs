//! What a module may ask of `chain`: read-only JSON-RPC methods, with params that are a JSON
//! array or object (or none) of bounded size.
//!
//! Anything that signs, sends, mines, administers, debugs or holds node-side state
//! (filters, subscriptions) is refused; the host owns subscriptions itself.

use crate::bounded::cut;

/// Read-only methods modules may call.
const ALLOWED: &[&str] = &[
    "eth_blockNumber",
    "eth_call",
    "eth_chainId",
    "eth_createAccessList",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_blobBaseFee",
    "eth_getBalance",
    "eth_getBlockByHash",
    "eth_getBlockByNumber",
    "eth_getBlockReceipts",
    "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getCode",
    "eth_getLogs",
    "eth_getProof",
    "eth_getStorageAt",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByHash",
    "eth_getTransactionCount",
    "eth_getTransactionReceipt",
    "eth_getUncleCountByBlockHash",
    "eth_getUncleCountByBlockNumber",
    "eth_maxPriorityFeePerGas",
    "eth_syncing",
    "net_version",
    "web3_clientVersion",
];

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The method is not one modules may call.
    Denied(String),
    /// The params are malformed or too big.
    InvalidInput(String),
}

/// `Ok` if modules may call `method`, else why not.
pub fn check_method(method: &str) -> Result<(), String> {
    if ALLOWED.contains(&method) {
        return Ok(());
    }
    let why = if [
        "eth_sendTransaction",
        "eth_sendRawTransaction",
        "eth_sign",
        "eth_signTransaction",
        "eth_signTypedData",
    ]
    .iter()
    .any(|m| method.starts_with(m))
        || method.starts_with("personal_")
    {
        "signing and sending are not available to modules"
    } else if [
        "admin_", "debug_", "miner_", "anvil_", "hardhat_", "evm_", "txpool_",
    ]
    .iter()
    .any(|p| method.starts_with(p))
    {
        "node administration and debugging are not available to modules"
    } else if method.contains("ubscribe") || method.contains("Filter") {
        "subscriptions and node-side filters are managed by the host; use a subscription in module.toml or eth_getLogs"
    } else {
        "it is not one of the read-only methods nexum serves"
    };
    Err(format!(
        "method `{}` is not allowed: {why}",
        cut(method, 64)
    ))
}

/// Checks a call: the method, and `params` — JSON text of at most `max_bytes`, an array or
/// an object; empty text and `null` mean no params. Returns the params to send.
pub fn check_call(method: &str, params: &str, max_bytes: usize) -> Result<String, Refusal> {
    check_method(method).map_err(Refusal::Denied)?;
    let method = cut(method, 64);
    if params.len() > max_bytes {
        return Err(Refusal::InvalidInput(format!(
            "params of `{method}` are {} bytes; the limit is {max_bytes} (limits.request_bytes)",
            params.len()
        )));
    }
    let trimmed = params.trim();
    if trimmed.is_empty() || trimmed == "null" {
        return Ok("[]".to_string());
    }
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(trimmed) {
        return Err(Refusal::InvalidInput(format!(
            "params of `{method}` are not valid JSON: {e}"
        )));
    }
    if !trimmed.starts_with(['[', '{']) {
        return Err(Refusal::InvalidInput(format!(
            "params of `{method}` must be a JSON array or object"
        )));
    }
    Ok(trimmed.to_string())
}

/// Checks a batch's length and total size before its entries are checked one by one.
pub fn check_batch(
    calls: &[(&str, &str)],
    max_entries: usize,
    max_bytes: usize,
) -> Result<(), String> {
    if calls.len() > max_entries {
        return Err(format!(
            "a batch of {} requests; the limit is {max_entries} (limits.rpc_batch_max)",
            calls.len()
        ));
    }
    let total: usize = calls.iter().map(|(m, p)| m.len() + p.len()).sum();
    if total > max_bytes {
        return Err(format!(
            "the batch is {total} bytes; the limit is {max_bytes} (limits.request_bytes)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pass_and_everything_else_is_refused_with_a_reason() {
        let check = check_method;
        assert!(check("eth_call").is_ok());
        assert!(check("eth_getLogs").is_ok());
        for (method, reason) in [
            ("eth_sendTransaction", "signing and sending"),
            ("eth_sendRawTransaction", "signing and sending"),
            ("personal_sign", "signing and sending"),
            ("admin_peers", "administration"),
            ("debug_traceTransaction", "administration"),
            ("miner_start", "administration"),
            ("eth_subscribe", "managed by the host"),
            ("eth_newFilter", "managed by the host"),
            ("eth_madeUp", "not one of the read-only methods"),
        ] {
            let err = check(method).unwrap_err();
            assert!(err.contains(reason), "{method}: {err}");
        }
    }

    #[test]
    fn params_are_an_array_or_an_object_and_none_means_empty() {
        assert_eq!(check_call("eth_blockNumber", "", 100).unwrap(), "[]");
        assert_eq!(check_call("eth_blockNumber", "null", 100).unwrap(), "[]");
        assert_eq!(
            check_call("eth_getBalance", " [\"0x1\"] ", 100).unwrap(),
            "[\"0x1\"]"
        );
        assert!(matches!(
            check_call("eth_getBalance", "\"0x1\"", 100),
            Err(Refusal::InvalidInput(m)) if m.contains("array or object")
        ));
        assert!(matches!(
            check_call("eth_getBalance", "[1,", 100),
            Err(Refusal::InvalidInput(m)) if m.contains("not valid JSON")
        ));
        assert!(matches!(
            check_call("eth_getBalance", "[1]", 2),
            Err(Refusal::InvalidInput(m)) if m.contains("request_bytes")
        ));
        assert!(matches!(
            check_call("eth_sendTransaction", "[]", 100),
            Err(Refusal::Denied(_))
        ));
        assert!(check_batch(&[("eth_chainId", "[]"); 3], 2, 100).is_err());
        assert!(check_batch(&[("eth_chainId", "[]"); 2], 2, 100).is_ok());
    }
}

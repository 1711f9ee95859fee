//! Which JSON-RPC methods modules may call: reads only.
//!
//! Anything that signs, sends, mines, administers, debugs or holds node-side state
//! (filters, subscriptions) is refused; the host owns subscriptions itself.

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

/// `Ok` if modules may call `method`, else why not.
pub(crate) fn check(method: &str) -> Result<(), String> {
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
        crate::bounded::cut(method, 64)
    ))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn reads_pass_and_everything_else_is_refused_with_a_reason() {
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
}

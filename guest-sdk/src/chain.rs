//! Read-only access to the chains the module declared, with `alloy` types.
//!
//! ```ignore
//! use nexum_guest::chain::{self, BlockTag};
//! use nexum_guest::sol_types::{sol, SolCall};
//!
//! sol! {
//!     #![sol(alloy_sol_types = nexum_guest::sol_types)]
//!     function balanceOf(address owner) external view returns (uint256);
//! }
//!
//! let balance = chain::call_sol(1, token, &balanceOfCall { owner }, BlockTag::Latest)?;
//! ```
//!
//! Decoding a delivered log into a `sol!` event takes one line:
//! `let created = log.decode::<ConditionalOrderCreated>()?;` (see [`LogExt`]).

use crate::bindings::nexum::host::chain::{RpcError, RpcRequest};
use crate::{ChainLog, Fault, host};
use alloy_primitives::{Address, B256, Bytes, U64};
use alloy_sol_types::{SolCall, SolEvent, SolEventInterface};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

pub use crate::bindings::nexum::host::chain::ChainError as Error;

/// Which block a read is made against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockTag {
    /// The newest block.
    Latest,
    /// The newest block considered safe by the node.
    Safe,
    /// The newest finalized block.
    Finalized,
    /// A block by number.
    Number(u64),
    /// A block by hash (reads fail if it is no longer available).
    Hash(B256),
}

impl Serialize for BlockTag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BlockTag::Latest => serializer.serialize_str("latest"),
            BlockTag::Safe => serializer.serialize_str("safe"),
            BlockTag::Finalized => serializer.serialize_str("finalized"),
            BlockTag::Number(n) => serializer.serialize_str(&format!("{n:#x}")),
            BlockTag::Hash(h) => {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("blockHash", h)?;
                map.end()
            }
        }
    }
}

/// Why an `eth_call` did not return data.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The call reverted; `data` is the revert payload (decode custom errors from it).
    Reverted {
        /// The raw revert data (may be empty).
        data: Bytes,
        /// `Error(string)` / `Panic(uint256)` decoded, when it is one of those.
        reason: Option<String>,
    },
    /// The call could not be made, or its result could not be decoded.
    Failed(Error),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Reverted {
                reason: Some(r), ..
            } => write!(f, "reverted: {r}"),
            CallError::Reverted { data, .. } => write!(f, "reverted with data {data}"),
            CallError::Failed(e) => write!(f, "{}", describe(e)),
        }
    }
}

impl From<Error> for CallError {
    fn from(e: Error) -> Self {
        CallError::Failed(e)
    }
}

impl From<CallError> for Fault {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Failed(Error::Fault(fault)) => fault,
            other => Fault::Internal(other.to_string()),
        }
    }
}

impl From<Error> for Fault {
    fn from(e: Error) -> Self {
        match e {
            Error::Fault(fault) => fault,
            Error::Rpc(rpc) => Fault::Internal(format!("node error {}: {}", rpc.code, rpc.message)),
        }
    }
}

/// A one-line description of a chain error.
pub fn describe(error: &Error) -> String {
    match error {
        Error::Fault(fault) => format!("{fault:?}"),
        Error::Rpc(RpcError { code, message, .. }) => format!("node error {code}: {message}"),
    }
}

/// One JSON-RPC call with serde params and result.
pub fn request<P: Serialize, R: DeserializeOwned>(
    chain_id: u64,
    method: &str,
    params: &P,
) -> Result<R, Error> {
    let params = serde_json::to_string(params)
        .map_err(|e| Error::Fault(Fault::InvalidInput(format!("cannot encode params: {e}"))))?;
    let answer = host::chain_request(chain_id, method, &params)?;
    decode(method, &answer)
}

/// One JSON-RPC batch (a single message on the wire); per-entry results in order.
/// Each entry is `(method, params as JSON text)`.
pub fn request_batch(
    chain_id: u64,
    calls: &[(&str, String)],
) -> Result<Vec<Result<String, Error>>, Error> {
    let requests: Vec<RpcRequest> = calls
        .iter()
        .map(|(method, params)| RpcRequest {
            method: method.to_string(),
            params: params.clone(),
        })
        .collect();
    host::chain_request_batch(chain_id, &requests)
}

/// The chain's newest block number.
pub fn block_number(chain_id: u64) -> Result<u64, Error> {
    let n: U64 = request(chain_id, "eth_blockNumber", &[(); 0])?;
    Ok(n.to())
}

/// `eth_call`: the raw return data of calling `to` with `data`, or the revert.
pub fn eth_call(
    chain_id: u64,
    to: Address,
    data: &[u8],
    block: BlockTag,
) -> Result<Bytes, CallError> {
    #[derive(Serialize)]
    struct Call<'a> {
        to: Address,
        #[serde(rename = "input")]
        data: &'a Bytes,
    }
    let data = Bytes::copy_from_slice(data);
    let params = (Call { to, data: &data }, block);
    match request::<_, Bytes>(chain_id, "eth_call", &params) {
        Ok(bytes) => Ok(bytes),
        Err(Error::Rpc(rpc)) if is_revert(&rpc) => {
            let data = Bytes::from(rpc.data.clone().unwrap_or_default());
            let reason = alloy_sol_types::decode_revert_reason(&data).or_else(|| {
                rpc.message
                    .strip_prefix("execution reverted: ")
                    .map(str::to_string)
            });
            Err(CallError::Reverted { data, reason })
        }
        Err(e) => Err(CallError::Failed(e)),
    }
}

/// `eth_call` of a `sol!` function call, with its return value decoded.
pub fn call_sol<C: SolCall>(
    chain_id: u64,
    to: Address,
    call: &C,
    block: BlockTag,
) -> Result<C::Return, CallError> {
    let output = eth_call(chain_id, to, &call.abi_encode(), block)?;
    C::abi_decode_returns(&output).map_err(|e| {
        CallError::Failed(Error::Fault(Fault::Internal(format!(
            "cannot decode the return of {}: {e}",
            C::SIGNATURE
        ))))
    })
}

fn is_revert(rpc: &RpcError) -> bool {
    rpc.code == 3 || rpc.message.contains("revert") || rpc.data.is_some()
}

/// Filter of a [`get_logs`] call.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    /// Emitting contracts; empty = any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    /// Alternatives per topic position; an empty position matches anything.
    #[serde(serialize_with = "topics_json", skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<Vec<B256>>,
    /// First block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_block: Option<BlockTag>,
    /// Last block (inclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_block: Option<BlockTag>,
}

fn topics_json<S: serde::Serializer>(
    topics: &[Vec<B256>],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = serializer.serialize_seq(Some(topics.len()))?;
    for alternatives in topics {
        if alternatives.is_empty() {
            seq.serialize_element(&serde_json::Value::Null)?;
        } else {
            seq.serialize_element(alternatives)?;
        }
    }
    seq.end()
}

/// `eth_getLogs`.
pub fn get_logs(chain_id: u64, query: &LogQuery) -> Result<Vec<ChainLog>, Error> {
    let logs: Vec<WireLog> = request(chain_id, "eth_getLogs", &[query])?;
    Ok(logs.into_iter().map(ChainLog::from).collect())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLog {
    address: Address,
    topics: Vec<B256>,
    data: Bytes,
    block_number: Option<U64>,
    block_hash: Option<B256>,
    transaction_hash: Option<B256>,
    transaction_index: Option<U64>,
    log_index: Option<U64>,
    #[serde(default)]
    removed: bool,
}

impl From<WireLog> for ChainLog {
    fn from(l: WireLog) -> Self {
        ChainLog {
            address: l.address.to_vec(),
            topics: l.topics.iter().map(|t| t.to_vec()).collect(),
            data: l.data.to_vec(),
            block_number: l.block_number.map(|n| n.to()),
            block_hash: l.block_hash.map(|h| h.to_vec()),
            transaction_hash: l.transaction_hash.map(|h| h.to_vec()),
            transaction_index: l.transaction_index.map(|n| n.to()),
            log_index: l.log_index.map(|n| n.to()),
            removed: l.removed,
        }
    }
}

fn decode<R: DeserializeOwned>(method: &str, answer: &str) -> Result<R, Error> {
    serde_json::from_str(answer).map_err(|e| {
        Error::Fault(Fault::Internal(format!(
            "cannot decode the result of `{method}`: {e}"
        )))
    })
}

/// Typed views of a delivered [`ChainLog`].
pub trait LogExt {
    /// The emitting contract.
    fn emitter(&self) -> Address;
    /// The topics as 32-byte words.
    fn topic_words(&self) -> Vec<B256>;
    /// Decodes the log as the `sol!` event `E` (checks topic 0 for non-anonymous events).
    fn decode<E: SolEvent>(&self) -> Result<E, Fault>;
    /// Decodes the log as whichever event of a `sol!` interface it is (`Emitter::EmitterEvents`
    /// for `interface Emitter`), to `match` on by type.
    fn decode_any<I: SolEventInterface>(&self) -> Result<I, Fault>;
}

impl LogExt for ChainLog {
    fn emitter(&self) -> Address {
        Address::from_slice(&self.address)
    }

    fn topic_words(&self) -> Vec<B256> {
        self.topics.iter().map(|t| B256::from_slice(t)).collect()
    }

    fn decode<E: SolEvent>(&self) -> Result<E, Fault> {
        E::decode_raw_log(self.topic_words(), &self.data)
            .map_err(|e| Fault::InvalidInput(format!("log is not a {}: {e}", E::SIGNATURE)))
    }

    fn decode_any<I: SolEventInterface>(&self) -> Result<I, Fault> {
        I::decode_raw_log(&self.topic_words(), &self.data).map_err(|e| {
            let topic0 = self.topics.first().map_or_else(
                || "none".to_string(),
                |t| format!("0x{}", alloy_primitives::hex::encode(t)),
            );
            // alloy's own text for an unknown topic 0 is the whole log, data and all.
            let why = match e {
                alloy_sol_types::Error::InvalidLog { .. } => {
                    "no event of theirs has this topic 0".to_string()
                }
                other => other.to_string(),
            };
            Fault::InvalidInput(format!(
                "log with topic 0 {topic0} is none of the {} events of {}: {why}",
                I::COUNT,
                I::NAME
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHost;
    use alloy_primitives::{U256, address};
    use alloy_sol_types::{SolError, sol};

    sol! {
        function balanceOf(address owner) external view returns (uint256);
        event Transfer(address indexed from, address indexed to, uint256 value);
    }

    const TOKEN: Address = address!("0x00000000000000000000000000000000000000aa");

    /// A host whose module declares chain 1, as a module reading it must.
    fn host() -> TestHost {
        TestHost::with_manifest(
            "[module]\nname = \"t\"\nversion = \"0\"\n[capabilities]\nrequired = [\"chain\"]\nchains = [1]\n",
        )
    }

    #[test]
    fn call_sol_encodes_the_call_and_decodes_the_return() {
        let host = host();
        host.on_chain(|chain, method, params| {
            assert_eq!((chain, method), (1, "eth_call"));
            let params: serde_json::Value = serde_json::from_str(params).unwrap();
            assert_eq!(
                params[0]["to"],
                "0x00000000000000000000000000000000000000aa"
            );
            assert_eq!(params[1], "latest");
            let input = params[0]["input"].as_str().unwrap();
            assert!(input.starts_with("0x70a08231"), "{input}");
            Ok(format!("\"0x{}\"", "00".repeat(31) + "2a"))
        });
        let balance = call_sol(
            1,
            TOKEN,
            &balanceOfCall {
                owner: Address::ZERO,
            },
            BlockTag::Latest,
        )
        .unwrap();
        assert_eq!(balance, U256::from(42));
    }

    #[test]
    fn a_revert_comes_back_with_its_data_and_reason() {
        let host = host();
        // Error("too early") as the node reports it.
        let data = alloy_sol_types::Revert::from("too early").abi_encode();
        host.on_chain(move |_, _, _| {
            Err(Error::Rpc(RpcError {
                code: 3,
                message: "execution reverted: too early".into(),
                data: Some(data.clone()),
            }))
        });
        let err = eth_call(1, TOKEN, &[], BlockTag::Number(16)).unwrap_err();
        let CallError::Reverted { data, reason } = err else {
            panic!("{err:?}")
        };
        assert!(!data.is_empty());
        assert_eq!(reason.as_deref(), Some("revert: too early"));
    }

    #[test]
    fn the_test_host_refuses_what_nexum_refuses() {
        let host = host();
        host.on_chain(|_, method, params| {
            assert_eq!((method, params), ("eth_blockNumber", "[]"));
            Ok("\"0x10\"".into())
        });
        assert_eq!(block_number(1).unwrap(), 16);
        let undeclared = block_number(2).unwrap_err();
        assert!(
            matches!(&undeclared, Error::Fault(Fault::Unsupported(m)) if m.contains("not declared")),
            "{undeclared:?}"
        );
        let denied = request::<_, String>(1, "eth_sendRawTransaction", &["0x00"]).unwrap_err();
        assert!(
            matches!(&denied, Error::Fault(Fault::Denied(m)) if m.contains("signing and sending")),
            "{denied:?}"
        );
        let shape = request::<_, String>(1, "eth_getBalance", &"0x1").unwrap_err();
        assert!(
            matches!(&shape, Error::Fault(Fault::InvalidInput(m)) if m.contains("array or object")),
            "{shape:?}"
        );
        let batch: Vec<(&str, String)> = vec![("eth_blockNumber", "[]".to_string()); 101];
        assert!(matches!(
            request_batch(1, &batch),
            Err(Error::Fault(Fault::InvalidInput(m))) if m.contains("rpc_batch_max")
        ));
        // A module without the `chain` capability would not even load.
        let _host = TestHost::with_manifest("[module]\nname = \"t\"\nversion = \"0\"\n");
        assert!(matches!(
            block_number(1),
            Err(Error::Fault(Fault::Denied(m))) if m.contains("nexum would refuse to load")
        ));
    }

    #[test]
    fn logs_decode_into_sol_events_in_one_line() {
        let event = Transfer {
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            value: U256::from(7),
        };
        let encoded = event.encode_log_data();
        let log = ChainLog {
            address: TOKEN.to_vec(),
            topics: encoded.topics().iter().map(|t| t.to_vec()).collect(),
            data: encoded.data.to_vec(),
            block_number: Some(1),
            block_hash: None,
            transaction_hash: None,
            transaction_index: None,
            log_index: Some(0),
            removed: false,
        };
        let decoded = log.decode::<Transfer>().unwrap();
        assert_eq!(decoded.value, U256::from(7));
        assert_eq!(log.emitter(), TOKEN);
    }

    #[test]
    fn block_tags_and_log_queries_serialise_as_json_rpc_expects() {
        assert_eq!(
            serde_json::to_string(&BlockTag::Number(255)).unwrap(),
            "\"0xff\""
        );
        let query = LogQuery {
            address: vec![TOKEN],
            topics: vec![vec![], vec![B256::ZERO]],
            from_block: Some(BlockTag::Number(1)),
            to_block: Some(BlockTag::Latest),
        };
        let json = serde_json::to_value(&query).unwrap();
        assert_eq!(json["topics"][0], serde_json::Value::Null);
        assert_eq!(json["fromBlock"], "0x1");
        assert_eq!(json["toBlock"], "latest");
    }
}

//! What one module may do with `chain`: its declared chains, read-only methods, valid and
//! bounded params, batches of bounded length, answers of bounded size.

use crate::chain::{ChainPool, NodeError};
use nexum_core::host_rules::chain::{self as rules, Refusal};
use nexum_core::{ChainId, Limits};
use serde_json::value::RawValue;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Why a `chain` call did not reach, or did not succeed at, the node.
#[derive(Debug)]
pub(crate) enum ChainFailure {
    /// The chain is not configured in the engine, or not declared by the module.
    Unsupported(String),
    /// The method is not allowed.
    Denied(String),
    /// The params are not valid JSON-RPC params.
    InvalidInput(String),
    /// The node (or the way to it) failed.
    Node(NodeError),
}

/// The sizes one module's requests and answers are held to.
#[derive(Debug, Clone, Copy)]
struct Caps {
    request: usize,
    answer: usize,
    batch: usize,
}

/// One module's access to the chains.
#[derive(Clone)]
pub(crate) struct ChainAccess {
    pool: Arc<ChainPool>,
    declared: Arc<BTreeSet<ChainId>>,
    caps: Caps,
}

impl ChainAccess {
    pub fn new(pool: Arc<ChainPool>, declared: BTreeSet<ChainId>, limits: &Limits) -> Self {
        let size = |limit: u64| usize::try_from(limit).unwrap_or(usize::MAX);
        Self {
            pool,
            declared: Arc::new(declared),
            caps: Caps {
                request: size(limits.request_bytes),
                answer: size(limits.answer_bytes),
                batch: size(limits.rpc_batch_max),
            },
        }
    }

    /// One call; `params` is JSON text (an array or object; empty means no params).
    pub async fn request(
        &self,
        chain: ChainId,
        method: String,
        params: String,
    ) -> Result<Box<RawValue>, ChainFailure> {
        let client = self.client(chain)?;
        let params = check_call(&method, params, self.caps.request)?;
        let answer = client
            .request_raw(method, params)
            .await
            .map_err(ChainFailure::Node)?;
        self.check_answer(answer)
    }

    /// Refuses an answer bigger than the module may receive.
    fn check_answer(&self, answer: Box<RawValue>) -> Result<Box<RawValue>, ChainFailure> {
        let len = answer.get().len();
        if len > self.caps.answer {
            return Err(ChainFailure::Node(NodeError::Unavailable(format!(
                "the node's answer is {len} bytes; this module may receive {} (limits.answer_bytes)",
                self.caps.answer
            ))));
        }
        Ok(answer)
    }

    /// One batch; each entry is checked, and a refused entry fails only itself.
    pub async fn request_batch(
        &self,
        chain: ChainId,
        requests: Vec<(String, String)>,
    ) -> Result<Vec<Result<Box<RawValue>, ChainFailure>>, ChainFailure> {
        let client = self.client(chain)?;
        let shapes: Vec<(&str, &str)> = requests
            .iter()
            .map(|(m, p)| (m.as_str(), p.as_str()))
            .collect();
        rules::check_batch(&shapes, self.caps.batch, self.caps.request)
            .map_err(ChainFailure::InvalidInput)?;
        let mut results: Vec<Option<Result<Box<RawValue>, ChainFailure>>> =
            Vec::with_capacity(requests.len());
        let mut calls = Vec::new();
        let mut slots = Vec::new();
        for (i, (method, params)) in requests.into_iter().enumerate() {
            match check_call(&method, params, self.caps.request) {
                Ok(params) => {
                    calls.push((method, params));
                    slots.push(i);
                    results.push(None);
                }
                Err(refused) => results.push(Some(Err(refused))),
            }
        }
        if !calls.is_empty() {
            let answers = client.batch_raw(calls).await.map_err(ChainFailure::Node)?;
            for (slot, answer) in slots.into_iter().zip(answers) {
                results[slot] = Some(
                    answer
                        .map_err(ChainFailure::Node)
                        .and_then(|a| self.check_answer(a)),
                );
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every slot is filled"))
            .collect())
    }

    fn client(&self, chain: ChainId) -> Result<&Arc<crate::chain::ChainClient>, ChainFailure> {
        if !self.declared.contains(&chain) {
            return Err(ChainFailure::Unsupported(
                nexum_core::host_rules::undeclared_chain(chain),
            ));
        }
        self.pool.get(chain).ok_or_else(|| {
            ChainFailure::Unsupported(format!(
                "chain {chain}: no RPC configured; add [chains.{chain}] with an rpc_url to engine.toml"
            ))
        })
    }
}

/// Checks the call by the shared rules and turns `params` into raw JSON.
fn check_call(
    method: &str,
    params: String,
    max_bytes: usize,
) -> Result<Box<RawValue>, ChainFailure> {
    let params =
        rules::check_call(method, &params, max_bytes).map_err(|refusal| match refusal {
            Refusal::Denied(m) => ChainFailure::Denied(m),
            Refusal::InvalidInput(m) => ChainFailure::InvalidInput(m),
        })?;
    RawValue::from_string(params).map_err(|e| ChainFailure::InvalidInput(e.to_string()))
}

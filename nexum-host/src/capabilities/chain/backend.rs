//! What one module may do with `chain`: its declared chains, read-only methods, valid params.

use super::allowlist;
use crate::chain::{ChainPool, NodeError};
use nexum_core::ChainId;
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

/// One module's access to the chains.
#[derive(Clone)]
pub(crate) struct ChainAccess {
    pool: Arc<ChainPool>,
    declared: Arc<BTreeSet<ChainId>>,
}

impl ChainAccess {
    pub fn new(pool: Arc<ChainPool>, declared: BTreeSet<ChainId>) -> Self {
        Self {
            pool,
            declared: Arc::new(declared),
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
        let params = check_call(&method, params)?;
        client
            .request_raw(method, params)
            .await
            .map_err(ChainFailure::Node)
    }

    /// One batch; each entry is checked, and a refused entry fails only itself.
    pub async fn request_batch(
        &self,
        chain: ChainId,
        requests: Vec<(String, String)>,
    ) -> Result<Vec<Result<Box<RawValue>, ChainFailure>>, ChainFailure> {
        let client = self.client(chain)?;
        let mut results: Vec<Option<Result<Box<RawValue>, ChainFailure>>> =
            Vec::with_capacity(requests.len());
        let mut calls = Vec::new();
        let mut slots = Vec::new();
        for (i, (method, params)) in requests.into_iter().enumerate() {
            match check_call(&method, params) {
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
                results[slot] = Some(answer.map_err(ChainFailure::Node));
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every slot is filled"))
            .collect())
    }

    fn client(&self, chain: ChainId) -> Result<&Arc<crate::chain::ChainClient>, ChainFailure> {
        if !self.declared.contains(&chain) {
            return Err(ChainFailure::Unsupported(format!(
                "chain {chain} is not declared by this module: subscribe to it or list it in [capabilities] chains"
            )));
        }
        self.pool.get(chain).ok_or_else(|| {
            ChainFailure::Unsupported(format!(
                "chain {chain}: no RPC configured; add [chains.{chain}] with an rpc_url to engine.toml"
            ))
        })
    }
}

/// Checks the method and turns `params` into raw JSON.
fn check_call(method: &str, params: String) -> Result<Box<RawValue>, ChainFailure> {
    allowlist::check(method).map_err(ChainFailure::Denied)?;
    let params = if params.trim().is_empty() {
        "[]".to_string()
    } else {
        params
    };
    let raw = RawValue::from_string(params).map_err(|e| {
        ChainFailure::InvalidInput(format!("params of `{method}` are not valid JSON: {e}"))
    })?;
    if !raw.get().trim_start().starts_with(['[', '{']) {
        return Err(ChainFailure::InvalidInput(format!(
            "params of `{method}` must be a JSON array or object"
        )));
    }
    Ok(raw)
}

//! The keeper's two jobs: tracking conditional orders from logs, and polling them each block.

use crate::contract::{
    ConditionalOrderCreated, GPv2OrderData, OrderNotValid, PollNever, PollTryAtBlock,
    PollTryAtEpoch, PollTryNextBlock, getTradeableOrderWithSignatureCall,
};
use crate::state::{WATCH_PREFIX, Watch, app_data_key, dropped_key, submitted_key, watch_key};
use nexum_guest::chain::{self, BlockTag, CallError, LogExt};
use nexum_guest::cow::{
    self, BuyTokenDestination, OrderCreation, OrderKind, Retry, SellTokenSource, SigningScheme,
};
use nexum_guest::primitives::{Address, B256, Bytes, keccak256};
use nexum_guest::sol_types::{SolError, SolValue};
use nexum_guest::{Block, ChainLogs, Config, Fault, info, store, warn};

/// The keeper; `composable_cow` is the contract it asks about each order.
pub struct TwapKeeper {
    composable_cow: Address,
}

/// When to poll a watch again, as one poll decided.
#[derive(Debug, Clone, PartialEq)]
enum PollAgain {
    /// Poll again on the next block.
    NextBlock,
    AtBlock(u64),
    AtEpoch(u64),
    /// The conditional order is finished or invalid: stop watching it.
    Never(String),
}

impl TwapKeeper {
    pub fn from_config(config: &Config) -> Result<Self, Fault> {
        Ok(Self {
            composable_cow: config.get("composable_cow")?,
        })
    }

    /// Stores a watch for each new conditional order; drops it when its log is retracted.
    pub fn track(&mut self, logs: ChainLogs) -> Result<(), Fault> {
        for log in &logs.logs {
            let created = log.decode::<ConditionalOrderCreated>()?;
            let params_hash = keccak256(created.params.abi_encode());
            let key = watch_key(&created.owner, &params_hash);
            if log.removed {
                store::delete(&key)?;
                info!(
                    "conditional order {params_hash} of {} retracted by a reorg",
                    created.owner
                );
            } else if store::get(&key)?.is_none() {
                store::set_json(
                    &key,
                    &Watch {
                        owner: created.owner,
                        params: created.params,
                        next_block: None,
                        next_epoch: None,
                    },
                )?;
                info!(
                    "watching conditional order {params_hash} of {}",
                    created.owner
                );
            }
        }
        Ok(())
    }

    /// Polls every watch that is due at `block`.
    pub fn poll(&mut self, block: &Block) -> Result<(), Fault> {
        let now = block.timestamp / 1000;
        for key in store::list_keys(WATCH_PREFIX)? {
            let Some(mut watch) = store::get_json::<Watch>(&key)? else {
                continue;
            };
            if !watch.is_due(block.number, now) {
                continue;
            }
            match self.poll_one(block, &watch, now)? {
                PollAgain::NextBlock => {
                    watch.next_block = None;
                    watch.next_epoch = None;
                }
                PollAgain::AtBlock(number) => watch.next_block = Some(number),
                PollAgain::AtEpoch(time) => watch.next_epoch = Some(time),
                PollAgain::Never(why) => {
                    info!("no longer watching {key}: {why}");
                    store::delete(&key)?;
                    continue;
                }
            }
            store::set_json(&key, &watch)?;
        }
        Ok(())
    }

    fn poll_one(&self, block: &Block, watch: &Watch, now: u64) -> Result<PollAgain, Fault> {
        let call = getTradeableOrderWithSignatureCall {
            owner: watch.owner,
            params: watch.params.clone(),
            offchainInput: Bytes::new(),
            proof: Vec::new(),
        };
        match chain::call_sol(
            block.chain_id,
            self.composable_cow,
            &call,
            BlockTag::Number(block.number),
        ) {
            Ok(tradeable) => self.post(block, watch, tradeable.order, tradeable.signature, now),
            Err(CallError::Reverted { data, reason }) => {
                Ok(revert_hint(&data).unwrap_or_else(|| {
                    warn!(
                        "poll of {} reverted without a hint ({reason:?}); trying next block",
                        watch.owner
                    );
                    PollAgain::NextBlock
                }))
            }
            Err(CallError::Failed(e)) => {
                warn!(
                    "poll of {} failed: {}; trying next block",
                    watch.owner,
                    chain::describe(&e)
                );
                Ok(PollAgain::NextBlock)
            }
        }
    }

    /// Posts a ready order unless the orderbook already has it (or it was dropped).
    fn post(
        &self,
        block: &Block,
        watch: &Watch,
        order: GPv2OrderData,
        signature: Bytes,
        now: u64,
    ) -> Result<PollAgain, Fault> {
        let chain_id = block.chain_id;
        let Some(creation) = self.order_creation(chain_id, watch, &order, signature)? else {
            return Ok(PollAgain::NextBlock);
        };
        let uid = creation.uid(chain_id);
        if store::get(&submitted_key(&uid))?.is_some() || store::get(&dropped_key(&uid))?.is_some()
        {
            return Ok(PollAgain::NextBlock);
        }
        match cow::submit_order(chain_id, &creation) {
            Ok(posted) => {
                info!(
                    "posted order {posted} for {} (block {})",
                    watch.owner, block.number
                );
                store::set_json(&submitted_key(&uid), &block.number)?;
                Ok(PollAgain::NextBlock)
            }
            Err(e) => match e.retry() {
                Retry::NextBlock => {
                    warn!("posting {uid} failed ({e}); trying next block");
                    Ok(PollAgain::NextBlock)
                }
                Retry::After(wait) => {
                    warn!(
                        "posting {uid} failed ({e}); backing off {} s",
                        wait.as_secs()
                    );
                    Ok(PollAgain::AtEpoch(now + wait.as_secs().max(1)))
                }
                Retry::AlreadySubmitted => {
                    info!("the orderbook already has {uid}");
                    store::set_json(&submitted_key(&uid), &block.number)?;
                    Ok(PollAgain::NextBlock)
                }
                Retry::Drop => {
                    warn!("dropping order {uid}: {e}");
                    store::set_json(&dropped_key(&uid), &e.to_string())?;
                    Ok(PollAgain::NextBlock)
                }
            },
        }
    }

    fn order_creation(
        &self,
        chain_id: u64,
        watch: &Watch,
        order: &GPv2OrderData,
        signature: Bytes,
    ) -> Result<Option<OrderCreation>, Fault> {
        let (Some(kind), Some(sell_token_balance), Some(buy_token_balance)) = (
            OrderKind::from_contract_bytes(order.kind),
            SellTokenSource::from_contract_bytes(order.sellTokenBalance),
            BuyTokenDestination::from_contract_bytes(order.buyTokenBalance),
        ) else {
            warn!(
                "order of {} has unknown kind or balance markers; skipping it",
                watch.owner
            );
            return Ok(None);
        };
        let app_data = match self.app_data(chain_id, order.appData) {
            Ok(document) => document,
            Err(e) => {
                warn!(
                    "cannot resolve app data {}: {e}; trying next block",
                    order.appData
                );
                return Ok(None);
            }
        };
        Ok(Some(OrderCreation {
            sell_token: order.sellToken,
            buy_token: order.buyToken,
            receiver: (order.receiver != Address::ZERO).then_some(order.receiver),
            sell_amount: order.sellAmount,
            buy_amount: order.buyAmount,
            valid_to: order.validTo,
            app_data,
            app_data_hash: order.appData,
            fee_amount: order.feeAmount,
            kind,
            partially_fillable: order.partiallyFillable,
            sell_token_balance,
            buy_token_balance,
            signing_scheme: SigningScheme::Eip1271,
            signature,
            from: watch.owner,
        }))
    }

    /// The app-data document for `hash`, from the store or the orderbook.
    fn app_data(&self, chain_id: u64, hash: B256) -> Result<String, cow::CowError> {
        let key = app_data_key(&hash);
        if let Ok(Some(bytes)) = store::get(&key) {
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        let document = cow::app_data(chain_id, hash)?;
        let _ = store::set(&key, document.as_bytes());
        Ok(document)
    }
}

/// The next step a ComposableCoW revert asks for, if it is one of the standard hints.
fn revert_hint(data: &[u8]) -> Option<PollAgain> {
    if PollTryNextBlock::abi_decode(data).is_ok() {
        Some(PollAgain::NextBlock)
    } else if let Ok(hint) = PollTryAtBlock::abi_decode(data) {
        Some(PollAgain::AtBlock(hint.blockNumber.saturating_to()))
    } else if let Ok(hint) = PollTryAtEpoch::abi_decode(data) {
        Some(PollAgain::AtEpoch(hint.timestamp.saturating_to()))
    } else if let Ok(hint) = PollNever::abi_decode(data) {
        Some(PollAgain::Never(format!("PollNever: {}", hint.reason)))
    } else if let Ok(hint) = OrderNotValid::abi_decode(data) {
        Some(PollAgain::Never(format!("OrderNotValid: {}", hint.reason)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;

//! What the keeper keeps in its store, and under which keys.

use crate::contract::ConditionalOrderParams;
use nexum_guest::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

/// One conditional order being kept alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    pub owner: Address,
    pub params: ConditionalOrderParams,
    /// Do not poll before this block.
    pub next_block: Option<u64>,
    /// Do not poll before this time (Unix seconds).
    pub next_epoch: Option<u64>,
}

impl Watch {
    /// Whether it is time to poll, at block `number` with time `now` (Unix seconds).
    pub fn is_due(&self, number: u64, now: u64) -> bool {
        self.next_block.is_none_or(|b| number >= b) && self.next_epoch.is_none_or(|t| now >= t)
    }
}

/// `watch/<owner>/<params hash>`.
pub fn watch_key(owner: &Address, params_hash: &B256) -> String {
    format!("{WATCH_PREFIX}{owner}/{params_hash}")
}

pub const WATCH_PREFIX: &str = "watch/";

/// `submitted/<uid>`: the orderbook has this order.
pub fn submitted_key(uid: &str) -> String {
    format!("submitted/{uid}")
}

/// `dropped/<uid>`: this order will not be sent again.
pub fn dropped_key(uid: &str) -> String {
    format!("dropped/{uid}")
}

/// `appdata/<hash>`: a resolved app-data document.
pub fn app_data_key(hash: &B256) -> String {
    format!("appdata/{hash}")
}

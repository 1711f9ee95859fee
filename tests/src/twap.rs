//! What the TWAP keeper's tests share: the app-data document the orderbook serves, the
//! conditional orders and parts they script on the ComposableCoW test double, and the
//! keeper's subscriptions.

use crate::anvil::CHAIN_ID;
use crate::anvil::MockComposableCoW::{ConditionalOrderParams, OrderData};
use alloy_primitives::{Address, B256, U256, keccak256};

/// The app-data document every scripted part points at (serve it with
/// `MockOrderbook::add_app_data`).
pub const APP_DATA: &str = r#"{"appCode":"nexum-test","metadata":{},"version":"1.1.0"}"#;

/// A conditional order told apart by `salt`.
pub fn params(salt: u8) -> ConditionalOrderParams {
    ConditionalOrderParams {
        handler: Address::repeat_byte(0x7a),
        salt: B256::repeat_byte(salt),
        staticInput: vec![salt; 3].into(),
    }
}

/// A sell order part valid until `valid_to` (seconds), with [`APP_DATA`].
pub fn part(valid_to: u64) -> OrderData {
    OrderData {
        sellToken: Address::repeat_byte(1),
        buyToken: Address::repeat_byte(2),
        receiver: Address::ZERO,
        sellAmount: U256::from(1_000_000u64),
        buyAmount: U256::from(900_000u64),
        validTo: valid_to as u32,
        appData: keccak256(APP_DATA),
        feeAmount: U256::ZERO,
        kind: keccak256("sell"),
        partiallyFillable: false,
        sellTokenBalance: keccak256("erc20"),
        buyTokenBalance: keccak256("erc20"),
    }
}

/// The keeper's manifest body after `[capabilities]`: its two subscriptions on the test
/// chain and its config.
pub fn keeper_manifest(composable_cow: Address) -> String {
    format!(
        "[[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddress = \"{composable_cow}\"\n\
         event = \"ConditionalOrderCreated(address,(address,bytes32,bytes))\"\n\n\
         [[subscription]]\nkind = \"block\"\nchain_id = {CHAIN_ID}\n\n\
         [config]\ncomposable_cow = \"{composable_cow}\"\n"
    )
}

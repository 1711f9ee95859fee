//! Example nexum module: a keeper for CoW Protocol conditional orders (TWAP and any other
//! ComposableCoW handler).
//!
//! - On a `ConditionalOrderCreated` log it stores a *watch* keyed by owner and params hash
//!   (a replayed log changes nothing; a retracted one, `removed = true`, deletes it).
//! - On every block it asks ComposableCoW's `getTradeableOrderWithSignature` about each
//!   watch that is due. A ready order becomes an `OrderCreation` (EIP-1271 signature, `from`
//!   = owner, app data resolved) and is posted unless its UID was already posted; the
//!   contract's revert hints and the orderbook's answers decide when to look again.
//!
//! Everything lives in the store, so a restart resumes where it stopped.

mod contract;
mod keeper;
mod state;

use nexum_guest::{Block, ChainLogs, Config, Fault, Module, export_module};

pub use keeper::TwapKeeper;

impl Module for TwapKeeper {
    fn init(config: Config) -> Result<Self, Fault> {
        TwapKeeper::from_config(&config)
    }

    fn on_logs(&mut self, logs: ChainLogs) -> Result<(), Fault> {
        self.track(logs)
    }

    fn on_block(&mut self, block: Block) -> Result<(), Fault> {
        self.poll(&block)
    }
}

export_module!(TwapKeeper);

//! Example nexum module: logs each new block and keeps the last one in its store.
//!
//! It also notices forks: a block whose parent is not the block it saw last at the height
//! below is logged as a reorg (nexum re-delivers blocks at replaced heights).

use nexum_guest::primitives::B256;
use nexum_guest::{Block, Config, Fault, Module, export_module, info, store, warn};
use serde::{Deserialize, Serialize};

/// Store key of the last block seen.
const LAST: &str = "last-block";

/// What the module remembers of a block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenBlock {
    pub number: u64,
    pub hash: B256,
    pub timestamp_ms: u64,
}

pub struct BlockLogger;

impl Module for BlockLogger {
    fn init(_config: Config) -> Result<Self, Fault> {
        Ok(BlockLogger)
    }

    fn on_block(&mut self, block: Block) -> Result<(), Fault> {
        let hash = B256::from_slice(&block.hash);
        let parent = B256::from_slice(&block.parent_hash);
        if let Some(last) = store::get_json::<SeenBlock>(LAST)?
            && block.number <= last.number + 1
            && !(block.number == last.number + 1 && parent == last.hash)
        {
            warn!(
                "reorg: block {} replaces what followed block {}",
                block.number,
                block.number - 1
            );
        }
        info!("block {} {hash} on chain {}", block.number, block.chain_id);
        store::set_json(
            LAST,
            &SeenBlock {
                number: block.number,
                hash,
                timestamp_ms: block.timestamp,
            },
        )
    }
}

export_module!(BlockLogger);

#[cfg(test)]
mod tests {
    use super::*;
    use nexum_guest::Event;
    use nexum_guest::testing::TestHost;

    fn block(number: u64, hash: u8, parent: u8) -> Event {
        Event::Block(Block {
            chain_id: 1,
            number,
            hash: vec![hash; 32],
            parent_hash: vec![parent; 32],
            timestamp: number * 12_000,
        })
    }

    #[test]
    fn keeps_the_last_block_and_notices_a_fork() {
        let host = TestHost::new();
        let mut module: BlockLogger = host.init(&[]).unwrap();
        host.deliver(&mut module, block(1, 0xa1, 0xa0)).unwrap();
        host.deliver(&mut module, block(2, 0xa2, 0xa1)).unwrap();
        host.deliver(&mut module, block(2, 0xb2, 0xa1)).unwrap();
        let last: SeenBlock = host.store_json(LAST).unwrap();
        assert_eq!(last.number, 2);
        assert_eq!(last.hash, B256::repeat_byte(0xb2));
        assert!(
            host.logs()
                .iter()
                .any(|(_, line)| line.starts_with("reorg: block 2"))
        );
    }
}

//! Example nexum module: counts the events of the test contract (`tests/contracts/Emitter.sol`)
//! per topic in its store, and shows the `sol!` pattern: decoding a delivered log into a
//! typed event in one line, and reading contract state with a typed `eth_call`.

use nexum_guest::chain::{self, BlockTag, LogExt};
use nexum_guest::primitives::{Address, B256, U256};
use nexum_guest::sol_types::{SolEvent, sol};
use nexum_guest::{ChainLogs, Config, Fault, Module, export_module, info, store, warn};

sol! {
    #![sol(alloy_sol_types = nexum_guest::sol_types)]
    event Ping(address indexed sender, uint256 indexed seq, bytes payload);
    event Pong(uint256 indexed seq, string note);
    function count() external view returns (uint256);
}

/// Store key of the counter of events with topic 0 = `topic`.
fn counter_key(topic: &B256) -> String {
    format!("count/{topic}")
}

pub struct EventCounter {
    /// When set (`[config] read_count = "true"`), each batch also reads the contract's
    /// `count()` with a typed `eth_call`.
    read_count: bool,
}

impl Module for EventCounter {
    fn init(config: Config) -> Result<Self, Fault> {
        Ok(EventCounter {
            read_count: config.get_opt("read_count")?.unwrap_or(false),
        })
    }

    fn on_logs(&mut self, logs: ChainLogs) -> Result<(), Fault> {
        for log in &logs.logs {
            let Some(topic) = log.topic_words().first().copied() else {
                continue;
            };
            // A retracted log (reorg) is taken back out of the count.
            let delta: i64 = if log.removed { -1 } else { 1 };
            let key = counter_key(&topic);
            let count = store::get_json::<i64>(&key)?.unwrap_or(0) + delta;
            store::set_json(&key, &count)?;

            if topic == Ping::SIGNATURE_HASH {
                let ping = log.decode::<Ping>()?;
                info!("Ping #{} from {} ({} so far)", ping.seq, ping.sender, count);
            } else if topic == Pong::SIGNATURE_HASH {
                let pong = log.decode::<Pong>()?;
                info!("Pong #{}: {:?} ({} so far)", pong.seq, pong.note, count);
            } else {
                warn!("unexpected event {topic}");
            }
        }
        if self.read_count
            && let Some(first) = logs.logs.first()
        {
            let contract = Address::from_slice(&first.address);
            let total: U256 =
                chain::call_sol(logs.chain_id, contract, &countCall {}, BlockTag::Latest)?;
            info!("the contract's own count is {total}");
        }
        Ok(())
    }
}

export_module!(EventCounter);

#[cfg(test)]
mod tests {
    use super::*;
    use nexum_guest::primitives::Bytes;
    use nexum_guest::testing::TestHost;
    use nexum_guest::{ChainLog, Event};

    fn log(event: &impl SolEvent, index: u64, removed: bool) -> ChainLog {
        let data = event.encode_log_data();
        ChainLog {
            address: vec![0xee; 20],
            topics: data.topics().iter().map(|t| t.to_vec()).collect(),
            data: data.data.to_vec(),
            block_number: Some(7),
            block_hash: Some(vec![7; 32]),
            transaction_hash: None,
            transaction_index: Some(0),
            log_index: Some(index),
            removed,
        }
    }

    #[test]
    fn counts_per_topic_and_uncounts_retracted_logs() {
        let host = TestHost::new();
        let mut module: EventCounter = host.init(&[]).unwrap();
        let ping = Ping {
            sender: Address::repeat_byte(1),
            seq: U256::from(1),
            payload: Bytes::new(),
        };
        let pong = Pong {
            seq: U256::from(2),
            note: "hi".into(),
        };
        let batch = |logs| Event::ChainLogs(ChainLogs { chain_id: 1, logs });
        host.deliver(
            &mut module,
            batch(vec![
                log(&ping, 0, false),
                log(&pong, 1, false),
                log(&ping, 2, false),
            ]),
        )
        .unwrap();
        host.deliver(&mut module, batch(vec![log(&ping, 2, true)]))
            .unwrap();
        assert_eq!(
            host.store_json::<i64>(&counter_key(&Ping::SIGNATURE_HASH)),
            Some(1)
        );
        assert_eq!(
            host.store_json::<i64>(&counter_key(&Pong::SIGNATURE_HASH)),
            Some(1)
        );
        assert!(
            host.logs()
                .iter()
                .any(|(_, l)| l.contains("Pong #2: \"hi\""))
        );
    }

    #[test]
    fn reads_the_contract_count_with_a_typed_call() {
        let host = TestHost::new();
        host.on_chain(|_, method, _| {
            assert_eq!(method, "eth_call");
            Ok(format!("\"0x{}\"", "00".repeat(31) + "05"))
        });
        let mut module: EventCounter = host.init(&[("read_count", "true")]).unwrap();
        let ping = Ping {
            sender: Address::ZERO,
            seq: U256::ZERO,
            payload: Bytes::new(),
        };
        host.deliver(
            &mut module,
            Event::ChainLogs(ChainLogs {
                chain_id: 31337,
                logs: vec![log(&ping, 0, false)],
            }),
        )
        .unwrap();
        assert!(
            host.logs()
                .iter()
                .any(|(_, l)| l == "the contract's own count is 5")
        );
    }
}

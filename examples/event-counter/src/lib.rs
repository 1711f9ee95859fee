//! Example nexum module: counts the events of the test contract (`tests/contracts/Emitter.sol`)
//! per event in its store, and shows the `sol!` pattern: each delivered log routed to its
//! event's type with one `match`, and contract state read with a typed `eth_call`.

use nexum_guest::chain::{self, BlockTag, LogExt};
use nexum_guest::primitives::{Address, U256};
use nexum_guest::{ChainLogs, Config, Fault, Module, export_module, info, sol, store};

sol! {
    interface Emitter {
        event Ping(address indexed sender, uint256 indexed seq, bytes payload);
        event Pong(uint256 indexed seq, string note);
        function count() external view returns (uint256);
    }
}

use Emitter::EmitterEvents;

/// Store key of the counter of the event named `event`.
fn counter_key(event: &str) -> String {
    format!("count/{event}")
}

/// Adds `delta` to the event's counter and returns the new count.
fn bump(event: &str, delta: i64) -> Result<i64, Fault> {
    let key = counter_key(event);
    let count = store::get_json::<i64>(&key)?.unwrap_or(0) + delta;
    store::set_json(&key, &count)?;
    Ok(count)
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
            // A retracted log (reorg) is taken back out of the count.
            let delta: i64 = if log.removed { -1 } else { 1 };
            match log.decode_any::<EmitterEvents>()? {
                EmitterEvents::Ping(ping) => {
                    let count = bump("Ping", delta)?;
                    info!("Ping #{} from {} ({count} so far)", ping.seq, ping.sender);
                }
                EmitterEvents::Pong(pong) => {
                    let count = bump("Pong", delta)?;
                    info!("Pong #{}: {:?} ({count} so far)", pong.seq, pong.note);
                }
            }
        }
        if self.read_count
            && let Some(first) = logs.logs.first()
        {
            let contract = Address::from_slice(&first.address);
            let total: U256 = chain::call_sol(
                logs.chain_id,
                contract,
                &Emitter::countCall {},
                BlockTag::Latest,
            )?;
            info!("the contract's own count is {total}");
        }
        Ok(())
    }
}

export_module!(EventCounter);

#[cfg(test)]
mod tests {
    use super::*;
    use Emitter::{Ping, Pong};
    use nexum_guest::ChainLog;
    use nexum_guest::primitives::Bytes;
    use nexum_guest::testing::TestHost;

    const CONTRACT: Address = Address::repeat_byte(0xee);

    #[test]
    fn counts_per_event_and_uncounts_retracted_logs() {
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
        let logs = vec![
            TestHost::log(CONTRACT, &ping),
            TestHost::log(CONTRACT, &pong),
            TestHost::log(CONTRACT, &ping),
        ];
        host.deliver(&mut module, TestHost::chain_logs(1, logs))
            .unwrap();
        let retracted = ChainLog {
            removed: true,
            ..TestHost::log(CONTRACT, &ping)
        };
        host.deliver(&mut module, TestHost::chain_logs(1, vec![retracted]))
            .unwrap();
        assert_eq!(host.store_json::<i64>(&counter_key("Ping")), Some(1));
        assert_eq!(host.store_json::<i64>(&counter_key("Pong")), Some(1));
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
        let logs = TestHost::chain_logs(31337, vec![TestHost::log(CONTRACT, &ping)]);
        host.deliver(&mut module, logs).unwrap();
        assert!(
            host.logs()
                .iter()
                .any(|(_, l)| l == "the contract's own count is 5")
        );
    }

    #[test]
    fn a_log_of_another_event_fails_the_call_and_its_writes() {
        let host = TestHost::new();
        let mut module: EventCounter = host.init(&[]).unwrap();
        nexum_guest::sol! { event Other(uint256 x); }
        let ping = Ping {
            sender: Address::ZERO,
            seq: U256::ZERO,
            payload: Bytes::new(),
        };
        let logs = vec![
            TestHost::log(CONTRACT, &ping),
            TestHost::log(CONTRACT, &Other { x: U256::ZERO }),
        ];
        let err = host
            .deliver(&mut module, TestHost::chain_logs(1, logs))
            .unwrap_err();
        let Fault::InvalidInput(why) = &err else {
            panic!("{err:?}")
        };
        assert!(
            why.contains(&format!(
                "topic 0 {}",
                <Other as nexum_guest::sol_types::SolEvent>::SIGNATURE_HASH
            )) && why.ends_with(
                "is none of the 2 events of EmitterEvents: no event of theirs has this topic 0"
            ),
            "{why}"
        );
        assert_eq!(host.store_json::<i64>(&counter_key("Ping")), None);
    }
}

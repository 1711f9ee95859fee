//! Live chain sources against a real Anvil: blocks and logs reach exactly the modules that
//! asked for them, in order, once; identical filters share a node subscription; a dropped
//! websocket is refilled; HTTP nodes are polled.

use alloy_primitives::{Address, B256};
use alloy_sol_types::SolEvent;
use nexum_core::{ChainConfig, EngineConfig};
use nexum_tests::anvil::{Anvil, CHAIN_ID, Emitter, hex_u64};
use nexum_tests::engine::{TestModule, TestRuntime, run, test_config, wait_until};
use nexum_tests::proxy::Proxy;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

fn recorder(name: &str, subscription: &str) -> TestModule {
    TestModule::new("recorder", name, &["local-store", "logging"], subscription)
}

fn blocks() -> String {
    format!("[[subscription]]\nkind = \"block\"\nchain_id = {CHAIN_ID}\n")
}

fn logs(emitter: Address, extra: &str) -> String {
    format!(
        "[[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddress = \"{emitter}\"\n{extra}\n"
    )
}

fn config(url: &str) -> EngineConfig {
    let mut config = test_config();
    let mut chain = ChainConfig::new(url).unwrap();
    chain.poll_interval_ms = 100;
    config.chains.insert(CHAIN_ID, chain);
    config
}

/// `(block, log index)` of every log a recorder received, checking each delivery holds one
/// block's logs in log-index order and deliveries come in chain order.
fn received_logs(runtime: &TestRuntime, module: &str) -> Vec<(u64, u64)> {
    let mut seen = Vec::new();
    let mut last_block = 0;
    for event in runtime.recorded(module) {
        assert_eq!(
            event["kind"], "logs",
            "{module} got a non-log event: {event}"
        );
        let block = event["block"].as_u64().unwrap();
        assert!(
            block >= last_block,
            "{module}: block {block} after {last_block}"
        );
        last_block = block;
        let indices: Vec<u64> = event["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["index"].as_u64().unwrap())
            .collect();
        assert!(
            indices.windows(2).all(|w| w[0] < w[1]),
            "{module}: not in log-index order: {event}"
        );
        for log in event["logs"].as_array().unwrap() {
            assert_eq!(
                log["block"], block,
                "{module}: a delivery mixes blocks: {event}"
            );
            seen.push((block, log["index"].as_u64().unwrap()));
        }
    }
    seen
}

/// `(block, log index)` of the node's logs from `from` on that satisfy `keep`.
async fn node_logs(
    anvil: &Anvil,
    emitter: Address,
    from: u64,
    keep: impl Fn(&Value) -> bool,
) -> Vec<(u64, u64)> {
    let to = anvil.block_number().await;
    anvil
        .logs(emitter, from, to)
        .await
        .iter()
        .filter(|l| keep(l))
        .map(|l| (hex_u64(&l["blockNumber"]), hex_u64(&l["logIndex"])))
        .collect()
}

fn topic(log: &Value, position: usize) -> B256 {
    log["topics"][position].as_str().unwrap().parse().unwrap()
}

/// Waits until `module` has handled the chain through block `through`, then checks it
/// received exactly `expected` (the chain's matching logs up to there): nothing missing,
/// nothing twice, nothing extra.
async fn wait_for_logs(runtime: &TestRuntime, module: &str, through: u64, expected: &[(u64, u64)]) {
    runtime.wait_delivered(module, CHAIN_ID, through).await;
    assert_eq!(received_logs(runtime, module), expected, "{module}");
}

/// Block numbers a recorder received, checking they are contiguous and unique.
fn received_blocks(runtime: &TestRuntime, module: &str) -> Vec<u64> {
    let numbers: Vec<u64> = runtime
        .recorded(module)
        .iter()
        .map(|e| {
            assert_eq!(e["kind"], "block");
            e["number"].as_u64().unwrap()
        })
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "{module}: blocks not contiguous: {numbers:?}"
    );
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_and_logs_reach_exactly_the_modules_that_match() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let seven = format!("{:#066x}", 7);
    let modules = vec![
        recorder("blocks", &blocks()),
        recorder(
            "pings-a",
            &logs(emitter, "event = \"Ping(address,uint256,bytes)\""),
        ),
        recorder(
            "pings-b",
            &logs(emitter, "event = \"Ping(address,uint256,bytes)\""),
        ),
        recorder(
            "both",
            &logs(
                emitter,
                &format!(
                    "topics = [[\"{}\", \"{}\"]]",
                    Emitter::Ping::SIGNATURE_HASH,
                    Emitter::Pong::SIGNATURE_HASH
                ),
            ),
        ),
        recorder(
            "seq-seven",
            &logs(emitter, &format!("topics = [[], [], [\"{seven}\"]]")),
        ),
        recorder("elsewhere", &logs(Address::repeat_byte(0x42), "")),
    ];
    let runtime = run(modules, config(&anvil.ws_url())).await;
    let start = anvil.block_number().await;
    runtime.wait_for_block("blocks", start).await;

    anvil.ping(emitter, 1, b"one").await;
    anvil.pong(emitter, 2, "two").await;
    anvil.burst(emitter, 5).await; // Pings 0..=4 and a Pong in one block
    anvil.ping(emitter, 7, b"seven").await;
    anvil.mine(2).await;
    anvil.ping(emitter, 8, b"").await;
    let end = anvil.block_number().await;
    runtime.wait_for_block("blocks", end).await;

    let blocks = received_blocks(&runtime, "blocks");
    assert_eq!(blocks.first(), Some(&start));
    assert_eq!(blocks.last(), Some(&end));
    for event in runtime.recorded("blocks") {
        let number = event["number"].as_u64().unwrap();
        assert_eq!(
            event["hash"].as_str().unwrap().parse::<B256>().unwrap(),
            anvil.block_hash(number).await
        );
    }

    let pings = node_logs(&anvil, emitter, start, |l| {
        topic(l, 0) == Emitter::Ping::SIGNATURE_HASH
    })
    .await;
    assert_eq!(pings.len(), 8);
    wait_for_logs(&runtime, "pings-a", end, &pings).await;
    wait_for_logs(&runtime, "pings-b", end, &pings).await;
    let all = node_logs(&anvil, emitter, start, |_| true).await;
    assert_eq!(all.len(), 10);
    wait_for_logs(&runtime, "both", end, &all).await;
    let sevens = node_logs(&anvil, emitter, start, |l| {
        l["topics"].as_array().unwrap().len() > 2 && topic(l, 2) == B256::with_last_byte(7)
    })
    .await;
    assert_eq!(sevens.len(), 1);
    wait_for_logs(&runtime, "seq-seven", end, &sevens).await;
    assert!(runtime.recorded("elsewhere").is_empty());

    // The burst's six logs came as deliveries of one block each, Pings and Pong together for `both`.
    let burst_block = all[2].0;
    let both_burst: Vec<Value> = runtime
        .recorded("both")
        .into_iter()
        .filter(|e| e["block"] == burst_block)
        .collect();
    assert_eq!(both_burst.len(), 1);
    assert_eq!(both_burst[0]["logs"].as_array().unwrap().len(), 6);

    // One newHeads subscription; one logs subscription per distinct filter (pings-a and
    // pings-b share theirs).
    let status = runtime.runtime.chain_status(CHAIN_ID).unwrap();
    assert_eq!(status.head_subscriptions, 1);
    assert_eq!(status.log_subscriptions, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_websocket_reconnects_and_fills_the_gap() {
    nexum_tests::logs::print_from_env();
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let proxy = Proxy::start(anvil.port()).await;
    let modules = vec![
        recorder("blocks", &blocks()),
        recorder(
            "pings",
            &logs(emitter, "event = \"Ping(address,uint256,bytes)\""),
        ),
    ];
    let runtime = run(modules, config(&format!("ws://127.0.0.1:{}", proxy.port()))).await;
    let start = anvil.block_number().await;
    runtime.wait_for_block("blocks", start).await;
    anvil.ping(emitter, 1, b"before").await;
    runtime.wait_for_block("blocks", start + 1).await;

    let connected_before_cut = proxy.connections_accepted();
    proxy.cut();
    for seq in 2..5 {
        anvil.ping(emitter, seq, b"while cut").await;
    }
    anvil.mine(2).await;
    // Restore only once nexum noticed the drop and is trying to come back.
    let retrying = wait_until(Duration::from_secs(30), || proxy.connections_refused() > 0).await;
    assert!(retrying, "nexum never tried to reconnect");
    proxy.restore();
    anvil.ping(emitter, 5, b"after").await;
    let end = anvil.block_number().await;
    runtime.wait_for_block("blocks", end).await;

    let blocks = received_blocks(&runtime, "blocks");
    assert_eq!((blocks.first(), blocks.last()), (Some(&start), Some(&end)));
    let pings = node_logs(&anvil, emitter, start, |_| true).await;
    assert_eq!(pings.len(), 5);
    wait_for_logs(&runtime, "pings", end, &pings).await;
    assert!(
        proxy.connections_accepted() > connected_before_cut,
        "the client reconnected"
    );
}

/// Runs a `blocks` and a `pings` recorder under `config`, sends three Pings and then a
/// burst of `burst` more in one block, and waits until both recorders have the chain's
/// head: the runtime, the first and last block, and the node's Pings (which `pings` holds,
/// each once, in order).
async fn blocks_and_pings(
    anvil: &Anvil,
    emitter: Address,
    config: EngineConfig,
    burst: u64,
) -> (TestRuntime, u64, u64, Vec<(u64, u64)>) {
    let modules = vec![
        recorder("blocks", &blocks()),
        recorder(
            "pings",
            &logs(emitter, "event = \"Ping(address,uint256,bytes)\""),
        ),
    ];
    let runtime = run(modules, config).await;
    let start = anvil.block_number().await;
    runtime.wait_for_block("blocks", start).await;
    for seq in 0..3 {
        anvil.ping(emitter, seq, b"").await;
    }
    anvil.burst(emitter, burst).await;
    let end = anvil.block_number().await;
    runtime.wait_for_block("blocks", end).await;
    let pings = node_logs(anvil, emitter, start, |l| {
        topic(l, 0) == Emitter::Ping::SIGNATURE_HASH
    })
    .await;
    wait_for_logs(&runtime, "pings", end, &pings).await;
    (runtime, start, end, pings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_node_is_polled() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let (runtime, start, end, pings) =
        blocks_and_pings(&anvil, emitter, config(&anvil.http_url()), 2).await;
    let blocks = received_blocks(&runtime, "blocks");
    assert_eq!((blocks.first(), blocks.last()), (Some(&start), Some(&end)));
    let status = runtime.runtime.chain_status(CHAIN_ID).unwrap();
    assert_eq!(
        (status.head_subscriptions, status.log_subscriptions),
        (0, 0)
    );
    let unique: BTreeSet<_> = pings.iter().collect();
    assert_eq!(unique.len(), pings.len());
}

/// With `cross_check_logs = false` a websocket chain still pushes heads, but opens no
/// `logs` subscription: each block's logs come from the read alone, all of them, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_chain_without_the_cross_check_reads_logs_without_a_logs_subscription() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let mut config = config(&anvil.ws_url());
    config.chains.get_mut(&CHAIN_ID).unwrap().cross_check_logs = false;
    // Pings 0..=3 and a Pong in the burst's block.
    let (runtime, _, _, pings) = blocks_and_pings(&anvil, emitter, config, 4).await;
    assert_eq!(pings.len(), 7);
    let status = runtime.runtime.chain_status(CHAIN_ID).unwrap();
    assert_eq!(
        (status.head_subscriptions, status.log_subscriptions),
        (1, 0)
    );
}

/// Inside one module with several subscriptions, each block's events come as: the block,
/// then each log subscription's logs, subscriptions ordered by their first log index and
/// logs in log-index order — whatever the order of the subscriptions in the manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_module_gets_the_block_then_each_subscription_s_logs_in_log_index_order() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let subscriptions = [
        logs(emitter, "event = \"Pong(uint256,string)\""),
        logs(emitter, "event = \"Ping(address,uint256,bytes)\""),
        blocks(),
    ]
    .concat();
    let runtime = run(
        vec![recorder("ordered", &subscriptions)],
        config(&anvil.ws_url()),
    )
    .await;
    let start = anvil.block_number().await;
    runtime.wait_for_block("ordered", start).await;

    // Block A: Pings at indices 0 and 1, then a Pong (one transaction).
    anvil.burst(emitter, 2).await;
    let a = anvil.block_number().await;
    // Block B: a Pong at index 0, then a Ping (two transactions in one block).
    anvil
        .send_in_one_block(
            emitter,
            &[Anvil::pong_call(1, "first"), Anvil::ping_call(2, b"second")],
        )
        .await;
    let b = anvil.block_number().await;
    runtime.wait_for_block("ordered", b).await;
    let arrived = wait_until(Duration::from_secs(30), || {
        runtime
            .recorded("ordered")
            .iter()
            .filter(|e| e["kind"] == "logs" && e["block"] == b)
            .count()
            == 2
    })
    .await;
    assert!(arrived, "{:#?}", runtime.recorded("ordered"));

    let ping = Emitter::Ping::SIGNATURE_HASH.to_string();
    let pong = Emitter::Pong::SIGNATURE_HASH.to_string();
    let of_block = |number: u64| -> Vec<(String, Vec<u64>)> {
        runtime
            .recorded("ordered")
            .into_iter()
            .filter(|e| e["number"] == number || e["block"] == number)
            .map(|e| {
                if e["kind"] == "block" {
                    ("block".to_string(), Vec::new())
                } else {
                    let logs = e["logs"].as_array().unwrap();
                    (
                        logs[0]["topic0"].as_str().unwrap().to_string(),
                        logs.iter().map(|l| l["index"].as_u64().unwrap()).collect(),
                    )
                }
            })
            .collect()
    };
    assert_eq!(
        of_block(a),
        [
            ("block".to_string(), vec![]),
            (ping.clone(), vec![0, 1]),
            (pong.clone(), vec![2]),
        ]
    );
    assert_eq!(
        of_block(b),
        [
            ("block".to_string(), vec![]),
            (pong, vec![0]),
            (ping, vec![1]),
        ]
    );
}

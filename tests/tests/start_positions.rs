//! Where a subscription starts is decided once, when it is first seen, and committed before
//! the runtime reports started; restarts resume from what was committed, whatever happened
//! in between. Subscriptions are known by what they read, not by their place in the
//! manifest, so adding, removing or reordering others leaves them where they were.

use alloy_primitives::{Address, B256, keccak256};
use nexum_core::{ChainConfig, EngineConfig};
use nexum_tests::anvil::{Anvil, CHAIN_ID, hex_u64};
use nexum_tests::engine::{TestModule, TestRuntime, run, run_in, test_config, wait_until};
use std::collections::BTreeSet;
use std::time::Duration;

const PING: &str = "Ping(address,uint256,bytes)";
const PONG: &str = "Pong(uint256,string)";

fn config(anvil: &Anvil) -> EngineConfig {
    let mut config = test_config();
    config
        .chains
        .insert(CHAIN_ID, ChainConfig::new(&anvil.ws_url()).unwrap());
    config
}

fn subscription(emitter: Address, event: &str) -> String {
    format!(
        "[[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddress = \"{emitter}\"\nevent = \"{event}\"\n"
    )
}

fn recorder(name: &str, subscriptions: &[String]) -> TestModule {
    recorder_with(name, subscriptions, "")
}

fn recorder_with(name: &str, subscriptions: &[String], config: &str) -> TestModule {
    TestModule::new(
        "recorder",
        name,
        &["local-store", "logging"],
        &format!("{}\n[config]\n{config}\n", subscriptions.concat()),
    )
}

fn blocks() -> String {
    format!("[[subscription]]\nkind = \"block\"\nchain_id = {CHAIN_ID}\n")
}

/// Every block number `module` received, in arrival order.
fn blocks_received(runtime: &TestRuntime, module: &str) -> Vec<u64> {
    runtime
        .recorded(module)
        .iter()
        .filter(|e| e["kind"] == "block")
        .map(|e| e["number"].as_u64().unwrap())
        .collect()
}

/// The chain's `(block, log index)` of `event` logs of `emitter`, from block `from` on.
async fn chain_logs(anvil: &Anvil, emitter: Address, event: &str, from: u64) -> Vec<(u64, u64)> {
    let topic = keccak256(event.as_bytes());
    let to = anvil.block_number().await;
    anvil
        .logs(emitter, from, to)
        .await
        .iter()
        .filter(|l| l["topics"][0].as_str().unwrap().parse::<B256>().unwrap() == topic)
        .map(|l| (hex_u64(&l["blockNumber"]), hex_u64(&l["logIndex"])))
        .collect()
}

/// Every log `module` received, in arrival order, as `(block, log index)`.
fn received(runtime: &TestRuntime, module: &str) -> Vec<(u64, u64)> {
    runtime
        .recorded(module)
        .iter()
        .filter(|e| e["kind"] == "logs")
        .flat_map(|e| e["logs"].as_array().unwrap().clone())
        .map(|l| (l["block"].as_u64().unwrap(), l["index"].as_u64().unwrap()))
        .collect()
}

/// Waits until `module` received exactly `expected` (each once), or fails saying what differs.
async fn expect_exactly(runtime: &TestRuntime, module: &str, expected: &[(u64, u64)]) {
    let want: BTreeSet<(u64, u64)> = expected.iter().copied().collect();
    let arrived = wait_until(Duration::from_secs(30), || {
        received(runtime, module)
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            == want
    })
    .await;
    let got = received(runtime, module);
    assert!(
        arrived,
        "{module} received {got:?}, the chain has {expected:?}"
    );
    assert_eq!(
        got.len(),
        want.len(),
        "{module} received a log twice: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_before_the_first_event_loses_nothing() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let modules = || {
        vec![
            // Two subscriptions: only the first gets an event before the stop.
            recorder(
                "pingpong",
                &[subscription(emitter, PING), subscription(emitter, PONG)],
            ),
            // Nothing at all before the stop.
            recorder("quiet", &[subscription(emitter, PONG)]),
        ]
    };
    // The head when the subscriptions are first seen: everything after it is theirs.
    let first_seen = anvil.block_number().await;
    let first = run(modules(), config(&anvil)).await;
    anvil.ping(emitter, 1, b"while running").await;
    let delivered = chain_logs(&anvil, emitter, PING, first_seen).await;
    expect_exactly(&first, "pingpong", &delivered).await;
    let dir = first.stop().await;

    // While the engine is down: pongs and pings in separate blocks, and a quiet stretch.
    anvil.pong(emitter, 2, "down").await;
    anvil.ping(emitter, 3, b"down").await;
    anvil.mine(20).await;
    anvil.pong(emitter, 4, "down").await;

    let second = run_in(dir, modules(), config(&anvil)).await;
    anvil.ping(emitter, 5, b"after").await;
    let pings = chain_logs(&anvil, emitter, PING, first_seen).await;
    let pongs = chain_logs(&anvil, emitter, PONG, first_seen).await;
    assert_eq!((pings.len(), pongs.len()), (3, 2));
    let mut both = pings.clone();
    both.extend(&pongs);
    expect_exactly(&second, "pingpong", &both).await;
    expect_exactly(&second, "quiet", &pongs).await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_added_removed_reordered_or_changed_between_runs() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let ping = subscription(emitter, PING);
    let pong = subscription(emitter, PONG);

    // Run 1: pings only.
    let start = anvil.block_number().await;
    let run1 = run(
        vec![recorder("m", std::slice::from_ref(&ping))],
        config(&anvil),
    )
    .await;
    anvil.ping(emitter, 1, b"run 1").await;
    let mut expected = chain_logs(&anvil, emitter, PING, start).await;
    expect_exactly(&run1, "m", &expected).await;
    let dir = run1.stop().await;

    // Down: a ping the resumed subscription must get, a pong the new one must not (it
    // starts at the head block when it is first seen, and the head is an empty block).
    anvil.ping(emitter, 2, b"down").await;
    anvil.pong(emitter, 3, "down").await;
    anvil.mine(1).await;

    // Run 2: a new pong subscription, placed before the ping one.
    let run2 = run_in(
        dir,
        vec![recorder("m", &[pong.clone(), ping.clone()])],
        config(&anvil),
    )
    .await;
    let pong_seen = anvil.block_number().await;
    anvil.pong(emitter, 4, "run 2").await;
    anvil.ping(emitter, 5, b"run 2").await;
    expected = chain_logs(&anvil, emitter, PING, start).await;
    expected.extend(chain_logs(&anvil, emitter, PONG, pong_seen).await);
    expect_exactly(&run2, "m", &expected).await;
    let dir = run2.stop().await;

    // Down again; run 3 removes the pong subscription and widens the ping filter (a new
    // subscription: it starts at the head, so the ping sent while down is not its).
    anvil.ping(emitter, 6, b"down").await;
    anvil.mine(1).await;
    let other = Address::repeat_byte(0x42);
    let widened = format!(
        "[[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddresses = [\"{emitter}\", \"{other}\"]\nevent = \"{PING}\"\n"
    );
    let run3 = run_in(dir, vec![recorder("m", &[widened])], config(&anvil)).await;
    let widened_seen = anvil.block_number().await;
    anvil.ping(emitter, 7, b"run 3").await;
    expected.extend(chain_logs(&anvil, emitter, PING, widened_seen).await);
    expect_exactly(&run3, "m", &expected).await;
    let dir = run3.stop().await;

    // Run 4: the original ping subscription is back and resumes where it stood (after
    // ping 5): pings 6 and 7 reach it, ping 7 for the second time in the module's life —
    // it arrived through the widened subscription in run 3.
    let run4 = run_in(dir, vec![recorder("m", &[ping])], config(&anvil)).await;
    let all_pings = chain_logs(&anvil, emitter, PING, start).await;
    let (six, seven) = (all_pings[3], all_pings[4]);
    let arrived = wait_until(Duration::from_secs(30), || {
        received(&run4, "m").iter().filter(|l| **l == seven).count() == 2
    })
    .await;
    let got = received(&run4, "m");
    assert!(arrived, "{got:?}");
    assert_eq!(got.iter().filter(|l| **l == six).count(), 1, "{got:?}");
    run4.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_subscription_stopped_before_its_first_block_resumes_from_its_start() {
    let anvil = Anvil::spawn().await;
    let first_seen = anvil.block_number().await;
    let first = run(vec![recorder("clock", &[blocks()])], config(&anvil)).await;
    let dir = first.stop().await;
    anvil.mine(5).await;
    let head = anvil.block_number().await;
    let second = run_in(dir, vec![recorder("clock", &[blocks()])], config(&anvil)).await;
    second.wait_for_block("clock", head).await;
    let received = blocks_received(&second, "clock");
    assert_eq!(received, (first_seen..=head).collect::<Vec<_>>());
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_start_block_does_not_move_a_subscription_that_already_started() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    anvil.ping(emitter, 1, b"history").await;
    let start = anvil.block_number().await + 1;
    let from = |block: u64| {
        format!(
            "[[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddress = \"{emitter}\"\nevent = \"{PING}\"\nstart_block = {block}\n"
        )
    };
    let first = run(vec![recorder("m", &[from(start)])], config(&anvil)).await;
    anvil.ping(emitter, 2, b"run 1").await;
    let mut expected = chain_logs(&anvil, emitter, PING, start).await;
    expect_exactly(&first, "m", &expected).await;
    let dir = first.stop().await;

    // Restarted asking for block 0: the history before `start` stays unread.
    anvil.ping(emitter, 3, b"down").await;
    let second = run_in(dir, vec![recorder("m", &[from(0)])], config(&anvil)).await;
    expected = chain_logs(&anvil, emitter, PING, start).await;
    expect_exactly(&second, "m", &expected).await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_quarantined_at_boot_keeps_its_start_and_later_gets_everything() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let first_seen = anvil.block_number().await;
    let broken = recorder_with("m", &[subscription(emitter, PING)], "fail_init = true");
    let first = run(vec![broken], config(&anvil)).await;
    assert_eq!(
        first.runtime.modules()[0].status,
        nexum_core::ModuleStatus::Quarantined
    );
    anvil.ping(emitter, 1, b"while quarantined").await;
    let dir = first.stop().await;
    anvil.ping(emitter, 2, b"while down").await;

    let fixed = recorder("m", &[subscription(emitter, PING)]);
    let second = run_in(dir, vec![fixed], config(&anvil)).await;
    let expected = chain_logs(&anvil, emitter, PING, first_seen).await;
    assert_eq!(expected.len(), 2);
    expect_exactly(&second, "m", &expected).await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_may_not_read_the_same_logs_twice() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let ping = subscription(emitter, PING);
    let module = recorder("m", &[ping.clone(), ping]);
    let error = nexum_core::ModuleManifest::parse(std::path::Path::new("m.toml"), &module.manifest)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("subscription[1]") && error.contains("same log as subscription[0]"),
        "{error}"
    );
}

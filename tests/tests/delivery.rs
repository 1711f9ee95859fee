//! Delivery guarantees against a real Anvil: reorgs undone and replayed, backfill after
//! downtime, block catch-up capped, retries and dead letters; and for events an embedder
//! dispatches: dispatch order, and calls that run to their end when nobody waits.

use alloy_primitives::Address;
use nexum_core::Outcome;
use nexum_core::{ChainConfig, EngineConfig};
use nexum_tests::anvil::{Anvil, CHAIN_ID};
use nexum_tests::engine::{
    TestModule, TestRuntime, boot, command, run, run_in, test_config, wait_until,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

fn recorder(name: &str, subscription: &str, config: &str) -> TestModule {
    TestModule::new(
        "recorder",
        name,
        &["local-store", "logging"],
        &format!("{subscription}\n[config]\n{config}\n"),
    )
}

fn blocks() -> String {
    format!("[[subscription]]\nkind = \"block\"\nchain_id = {CHAIN_ID}\n")
}

fn logs_of(emitter: Address, start_block: Option<u64>) -> String {
    let start = start_block
        .map(|b| format!("start_block = {b}\n"))
        .unwrap_or_default();
    format!(
        "[[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddress = \"{emitter}\"\n{start}"
    )
}

fn config(url: &str) -> EngineConfig {
    let mut config = test_config();
    config
        .chains
        .insert(CHAIN_ID, ChainConfig::new(url).unwrap());
    config.supervision.retry_attempts = 2;
    config
}

/// The node's canonical `(block, log index)` for `emitter` from `from` on.
async fn canonical_logs(anvil: &Anvil, emitter: Address, from: u64) -> BTreeSet<(u64, u64)> {
    let to = anvil.block_number().await;
    anvil
        .log_positions(emitter, from, to)
        .await
        .into_iter()
        .collect()
}

/// Every log `module` recorded, it recorded once.
fn assert_no_log_twice(runtime: &TestRuntime, module: &str) {
    let journal = log_journal(runtime, module);
    let unique: BTreeSet<(u64, u64)> = journal.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        unique.len(),
        journal.len(),
        "{module}: no log twice: {journal:?}"
    );
}

async fn wait_for_canonical(
    runtime: &TestRuntime,
    module: &str,
    anvil: &Anvil,
    emitter: Address,
    from: u64,
) {
    let expected = canonical_logs(anvil, emitter, from).await;
    let matched = wait_until(Duration::from_secs(30), || {
        runtime.live_logs(module) == expected
    })
    .await;
    assert!(
        matched,
        "{module} holds {:?}\nthe chain has {expected:?}",
        runtime.live_logs(module)
    );
}

/// Every log event's entries as `(block, index, removed)`, in arrival order.
fn log_journal(runtime: &TestRuntime, module: &str) -> Vec<(u64, u64, bool)> {
    runtime
        .recorded(module)
        .iter()
        .filter(|e| e["kind"] == "logs")
        .flat_map(|e| e["logs"].as_array().unwrap().clone())
        .map(|l: Value| {
            (
                l["block"].as_u64().unwrap(),
                l["index"].as_u64().unwrap(),
                l["removed"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorgs_retract_delivered_logs_then_deliver_the_new_chain() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let start = anvil.block_number().await + 1;
    let modules = vec![
        recorder("logs", &logs_of(emitter, Some(start)), ""),
        recorder("blocks", &blocks(), ""),
    ];
    let runtime = run(modules, config(&anvil.ws_url())).await;
    let mut seq = 0;
    for depth in [1u64, 5, 30] {
        for _ in 0..depth + 2 {
            seq += 1;
            anvil.ping(emitter, seq, b"original").await;
        }
        wait_for_canonical(&runtime, "logs", &anvil, emitter, start).await;
        let tip = anvil.block_number().await;
        let before = log_journal(&runtime, "logs").len();
        let retracted: Vec<(u64, u64)> = canonical_logs(&anvil, emitter, tip + 1 - depth)
            .await
            .into_iter()
            .collect();

        // Replace the last `depth` blocks; the new chain has a ping in every other block.
        let calls: Vec<(Vec<u8>, u64)> = (0..depth)
            .step_by(2)
            .map(|offset| (Anvil::ping_call(10_000 + offset, b"replacement"), offset))
            .collect();
        anvil.reorg(depth, emitter, &calls).await;
        seq += 1;
        anvil.ping(emitter, seq, b"after").await;
        wait_for_canonical(&runtime, "logs", &anvil, emitter, start).await;

        // The retracted logs came back first, removed, newest first; then the new ones.
        let after: Vec<(u64, u64, bool)> = log_journal(&runtime, "logs")[before..].to_vec();
        let removed: Vec<(u64, u64)> = after
            .iter()
            .take_while(|e| e.2)
            .map(|e| (e.0, e.1))
            .collect();
        let mut newest_first = retracted.clone();
        newest_first.reverse();
        assert_eq!(removed, newest_first, "depth {depth}: retractions");
        assert!(
            after[removed.len()..].iter().all(|e| !e.2),
            "depth {depth}: {after:?}"
        );

        // Block subscribers saw the new blocks at the replaced heights.
        let end = anvil.block_number().await;
        runtime.wait_for_block("blocks", end).await;
        for number in tip + 1 - depth..=end {
            let last = runtime
                .recorded("blocks")
                .into_iter()
                .rev()
                .find(|e| e["number"] == number)
                .unwrap_or_else(|| panic!("block {number} never delivered"));
            assert_eq!(
                last["hash"]
                    .as_str()
                    .unwrap()
                    .parse::<alloy_primitives::B256>()
                    .unwrap(),
                anvil.block_hash(number).await,
                "depth {depth}: block {number}"
            );
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_restart_after_downtime_backfills_every_log_and_caps_blocks() {
    let (captured, _guard) = nexum_tests::logs::capture();
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let modules = || {
        vec![
            recorder("logs", &logs_of(emitter, None), ""),
            recorder("blocks", &blocks(), ""),
        ]
    };
    let first = run(modules(), config(&anvil.ws_url())).await;
    let start = anvil.block_number().await;
    first.wait_for_block("blocks", start).await;
    anvil.ping(emitter, 1, b"before").await;
    wait_for_canonical(&first, "logs", &anvil, emitter, start).await;
    let dir = first.stop().await;

    // 1,000 blocks of downtime with 20 pings spread through them.
    for seq in 0..20 {
        anvil.mine(49).await;
        anvil.ping(emitter, 100 + seq, b"while down").await;
    }
    let down_until = anvil.block_number().await;
    assert!(down_until - start >= 1000);

    let second = run_in(dir, modules(), config(&anvil.ws_url())).await;
    wait_for_canonical(&second, "logs", &anvil, emitter, start).await;
    second.wait_for_block("blocks", down_until).await;
    let blocks: Vec<u64> = second
        .recorded("blocks")
        .iter()
        .map(|e| e["number"].as_u64().unwrap())
        .collect();
    let resumed = blocks
        .iter()
        .position(|n| *n > start + 1)
        .expect("blocks after the restart");
    assert_eq!(
        blocks[resumed],
        down_until + 1 - 128,
        "block catch-up is capped at 128"
    );
    let warning = captured
        .lines()
        .into_iter()
        .find(|l| l.message.contains("skipping") && l.module.as_deref() == Some("blocks"))
        .expect("a warning about skipped blocks");
    let skipped = down_until - 128 - (start + 1);
    assert!(
        warning
            .message
            .contains(&format!("skipping {skipped} missed blocks")),
        "{}",
        warning.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_is_retried_and_a_lasting_one_is_dead_lettered() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let start = anvil.block_number().await + 1;
    anvil.ping(emitter, 1, b"").await;
    let poison = anvil.block_number().await + 1;
    anvil.ping(emitter, 2, b"").await;
    anvil.ping(emitter, 3, b"").await;
    let modules = vec![
        recorder("flaky", &logs_of(emitter, Some(start)), "fail_first = 2"),
        recorder(
            "stubborn",
            &logs_of(emitter, Some(start)),
            &format!("fail_at_block = {poison}"),
        ),
    ];
    let runtime = run(modules, config(&anvil.ws_url())).await;
    wait_for_canonical(&runtime, "flaky", &anvil, emitter, start).await;
    let expected: BTreeSet<(u64, u64)> = canonical_logs(&anvil, emitter, start)
        .await
        .into_iter()
        .filter(|(block, _)| *block != poison)
        .collect();
    assert!(
        wait_until(Duration::from_secs(30), || runtime.live_logs("stubborn")
            == expected)
        .await
    );

    // `flaky` saw its first event three times (two errors, then success) and recorded it once.
    let journal: Vec<u64> = log_journal(&runtime, "flaky").iter().map(|e| e.0).collect();
    assert_eq!(journal, vec![start, poison, poison + 1]);

    // `stubborn` skipped the poison block and recorded why.
    let letters = runtime.runtime.dead_letters(Some("stubborn")).unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].attempts, 3);
    assert!(
        letters[0]
            .reason
            .contains(&format!("asked to fail at block {poison}"))
    );
    let nexum_core::Event::ChainLogs(logs) = &letters[0].event else {
        panic!("{letters:?}")
    };
    assert_eq!(logs.logs[0].block_number, Some(poison));

    let summary = runtime.runtime.shutdown().await;
    let flaky = summary.modules.iter().find(|m| m.name == "flaky").unwrap();
    assert_eq!((flaky.handled, flaky.failed), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_slower_than_the_chain_still_gets_every_log() {
    nexum_tests::logs::print_from_env();
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let start = anvil.block_number().await + 1;
    let mut config = config(&anvil.ws_url());
    config.delivery.reorg_depth = 8; // a small window, so the slow module falls out of it
    let modules = vec![
        recorder("slow", &logs_of(emitter, Some(start)), "burn_ms = 15"),
        recorder("fast", &logs_of(emitter, Some(start)), ""),
    ];
    let runtime = run(modules, config).await;
    for round in 0..60 {
        anvil.burst(emitter, 3).await;
        if round % 10 == 0 {
            anvil.mine(5).await;
        }
    }
    wait_for_canonical(&runtime, "fast", &anvil, emitter, start).await;
    wait_for_canonical(&runtime, "slow", &anvil, emitter, start).await;
    assert_no_log_twice(&runtime, "slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_module_keeps_its_cursor_and_a_later_start_resumes_from_it() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let start = anvil.block_number().await + 1;
    anvil.ping(emitter, 1, b"").await;
    let poison = anvil.block_number().await + 1;
    anvil.ping(emitter, 2, b"").await;
    anvil.ping(emitter, 3, b"").await;

    let mut first_config = config(&anvil.ws_url());
    first_config.supervision.quarantine_after = 2;
    first_config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let trapping = recorder(
        "stuck",
        &logs_of(emitter, Some(start)),
        &format!("panic_at_block = {poison}"),
    );
    let first = run(vec![trapping], first_config).await;
    let quarantined = wait_until(Duration::from_secs(30), || {
        first.runtime.modules()[0].status == nexum_core::ModuleStatus::Quarantined
    })
    .await;
    assert!(quarantined, "{:?}", first.runtime.modules());

    // /healthz says so.
    let health = reqwest::get(format!(
        "http://{}/healthz",
        first.runtime.metrics_addr().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(health.status(), 503);
    let body = health.text().await.unwrap();
    assert!(body.contains("module stuck is quarantined"), "{body}");

    // What came before the poison block is handled; the cursor stands just before it.
    let before: BTreeSet<(u64, u64)> = canonical_logs(&anvil, emitter, start)
        .await
        .into_iter()
        .filter(|(block, _)| *block < poison)
        .collect();
    assert_eq!(first.live_logs("stuck"), before);
    let positions = first.runtime.positions("stuck").unwrap();
    assert_eq!(positions[0].handled_through, Some(poison - 1));
    let dir = first.stop().await;

    // Fixed and started again: it resumes at the poison block, nothing lost or doubled.
    anvil.ping(emitter, 4, b"").await;
    let fixed = recorder("stuck", &logs_of(emitter, Some(start)), "");
    let second = run_in(dir, vec![fixed], config(&anvil.ws_url())).await;
    wait_for_canonical(&second, "stuck", &anvil, emitter, start).await;
    assert_no_log_twice(&second, "stuck");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_module_fixed_by_a_reload_resumes_from_its_cursor_without_a_restart() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let start = anvil.block_number().await + 1;
    anvil.ping(emitter, 1, b"").await;
    let poison = anvil.block_number().await + 1;
    anvil.ping(emitter, 2, b"").await;

    let mut quick = config(&anvil.ws_url());
    quick.supervision.quarantine_after = 2;
    let trapping = recorder(
        "stuck",
        &logs_of(emitter, Some(start)),
        &format!("panic_at_block = {poison}"),
    );
    let steady = || recorder("steady", &logs_of(emitter, Some(start)), "");
    let running = run(vec![trapping, steady()], quick.clone()).await;
    let quarantined = wait_until(Duration::from_secs(30), || {
        running.runtime.modules()[0].status == nexum_core::ModuleStatus::Quarantined
    })
    .await;
    assert!(quarantined, "{:?}", running.runtime.modules());

    // The fixed module, by reload: the other one is left alone.
    let fixed = recorder("stuck", &logs_of(emitter, Some(start)), "");
    let report = running.reload(vec![fixed, steady()], quick).await.unwrap();
    assert_eq!(
        (report.upgraded, report.unchanged),
        (vec!["stuck".to_string()], vec!["steady".to_string()])
    );
    anvil.ping(emitter, 3, b"").await;
    for module in ["stuck", "steady"] {
        wait_for_canonical(&running, module, &anvil, emitter, start).await;
        assert_no_log_twice(&running, module);
    }
    running.stop().await;
}

/// The only reader of a filter, upgraded, then removed and added back by reloads while logs
/// come: each time it claims the filter's feed again (a feed unread only briefly keeps
/// running, with what its stream announced), and every log arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_reader_of_a_filter_upgraded_removed_and_added_back_gets_every_log_once() {
    nexum_tests::logs::print_from_env();
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let start = anvil.block_number().await + 1;
    let config = config(&anvil.ws_url());
    let solo = |extra: &str| recorder("solo", &logs_of(emitter, Some(start)), extra);
    let bystander = || TestModule::probe("bystander");
    let running = run(vec![solo(""), bystander()], config.clone()).await;
    anvil.ping(emitter, 1, b"").await;
    wait_for_canonical(&running, "solo", &anvil, emitter, start).await;

    let report = running
        .reload(vec![solo("note = 1"), bystander()], config.clone())
        .await
        .unwrap();
    assert_eq!(report.upgraded, ["solo"]);
    anvil.ping(emitter, 2, b"").await;
    wait_for_canonical(&running, "solo", &anvil, emitter, start).await;

    let report = running
        .reload(vec![bystander()], config.clone())
        .await
        .unwrap();
    assert_eq!(report.removed, ["solo"]);
    anvil.ping(emitter, 3, b"").await;
    let report = running
        .reload(vec![solo("note = 1"), bystander()], config)
        .await
        .unwrap();
    assert_eq!(report.added, ["solo"]);
    anvil.ping(emitter, 4, b"").await;
    wait_for_canonical(&running, "solo", &anvil, emitter, start).await;
    assert_no_log_twice(&running, "solo");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restart_takes_a_module_out_of_quarantine() {
    let mut config = test_config();
    config.supervision.quarantine_after = 1;
    let running = run(vec![TestModule::probe("probe")], config).await;
    let trapped = running
        .runtime
        .dispatch("probe", nexum_tests::engine::command("panic"))
        .await
        .unwrap();
    assert!(
        matches!(trapped, nexum_core::Outcome::Trapped(_)),
        "{trapped:?}"
    );
    assert_eq!(
        running.runtime.modules()[0].status,
        nexum_core::ModuleStatus::Quarantined
    );
    running.runtime.restart_module("probe").await.unwrap();
    assert_eq!(
        running.runtime.modules()[0].status,
        nexum_core::ModuleStatus::Running
    );
    let outcome = running
        .runtime
        .dispatch("probe", nexum_tests::engine::command("set after restart"))
        .await
        .unwrap();
    assert_eq!(outcome, nexum_core::Outcome::Handled);
    assert_eq!(running.read("probe", "after").as_deref(), Some("restart"));
    assert!(matches!(
        running.runtime.restart_module("nobody").await,
        Err(nexum_host::RuntimeError::UnknownModule(_))
    ));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_while_the_engine_is_down_is_undone_on_restart() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let start = anvil.block_number().await + 1;
    let modules = || vec![recorder("logs", &logs_of(emitter, Some(start)), "")];
    let first = run(modules(), config(&anvil.ws_url())).await;
    for seq in 0..6 {
        anvil.ping(emitter, seq, b"original").await;
    }
    wait_for_canonical(&first, "logs", &anvil, emitter, start).await;
    let tip = anvil.block_number().await;
    let dir = first.stop().await;

    // While it is down, the last three blocks are replaced (one new ping in the new chain).
    let retracted: Vec<(u64, u64)> = canonical_logs(&anvil, emitter, tip - 2)
        .await
        .into_iter()
        .collect();
    anvil
        .reorg(3, emitter, &[(Anvil::ping_call(99, b"replacement"), 1)])
        .await;

    let second = run_in(dir, modules(), config(&anvil.ws_url())).await;
    wait_for_canonical(&second, "logs", &anvil, emitter, start).await;
    let journal = log_journal(&second, "logs");
    let removed: Vec<(u64, u64)> = journal.iter().filter(|e| e.2).map(|e| (e.0, e.1)).collect();
    let mut newest_first = retracted;
    newest_first.reverse();
    assert_eq!(removed, newest_first, "retractions after the restart");
    second.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_reorg_deeper_than_the_window_is_reported_and_the_window_is_undone() {
    let (captured, _guard) = nexum_tests::logs::capture();
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let start = anvil.block_number().await + 1;
    let mut config = config(&anvil.ws_url());
    config.delivery.reorg_depth = 4;
    let runtime = run(
        vec![recorder("logs", &logs_of(emitter, Some(start)), "")],
        config,
    )
    .await;
    for seq in 0..10 {
        anvil.ping(emitter, seq, b"original").await;
    }
    wait_for_canonical(&runtime, "logs", &anvil, emitter, start).await;
    let tip = anvil.block_number().await;
    let before = canonical_logs(&anvil, emitter, start).await;

    // Replace six blocks, two more than the engine remembers.
    let calls: Vec<(Vec<u8>, u64)> = (0..6)
        .map(|offset| (Anvil::ping_call(1_000 + offset, b"replacement"), offset))
        .collect();
    anvil.reorg(6, emitter, &calls).await;
    anvil.ping(emitter, 2_000, b"after").await;

    // The window (the last four blocks it handled) is undone and replayed from the chain...
    let window_start = tip + 1 - 4;
    let expected: BTreeSet<(u64, u64)> = before
        .iter()
        .copied()
        .filter(|(block, _)| *block < window_start)
        .chain(
            canonical_logs(&anvil, emitter, window_start)
                .await
                .into_iter(),
        )
        .collect();
    let settled = wait_until(Duration::from_secs(30), || {
        runtime.live_logs("logs") == expected
    })
    .await;
    assert!(
        settled,
        "the module holds {:?}\nexpected {expected:?}",
        runtime.live_logs("logs")
    );
    // ...and the operator is told the reorg went deeper than that.
    let reported = captured
        .lines()
        .iter()
        .any(|l| l.message.contains("reorg deeper than the tracked depth"));
    assert!(reported, "no error about the deep reorg");
    runtime.stop().await;
}

/// Geth sends `removed: true` logs itself on a reorg (Anvil does not); nexum works
/// retractions out from the canonical chain and must not deliver them twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_sends_removed_logs_itself_causes_no_double_retraction() {
    let anvil = Anvil::spawn().await;
    let proxy = nexum_tests::ws_proxy::WsProxy::start(anvil.ws_url()).await;
    let emitter = anvil.deploy_emitter().await;
    let start = anvil.block_number().await + 1;
    let runtime = run(
        vec![recorder("logs", &logs_of(emitter, Some(start)), "")],
        config(&proxy.url()),
    )
    .await;
    for seq in 0..5 {
        anvil.ping(emitter, seq, b"original").await;
    }
    wait_for_canonical(&runtime, "logs", &anvil, emitter, start).await;
    let tip = anvil.block_number().await;
    let mut replaced = Vec::new();
    for number in tip - 1..=tip {
        replaced.push(anvil.block_hash(number).await.to_string());
    }
    let retracted: Vec<(u64, u64)> = canonical_logs(&anvil, emitter, tip - 1)
        .await
        .into_iter()
        .collect();
    let before = log_journal(&runtime, "logs").len();

    anvil
        .reorg(2, emitter, &[(Anvil::ping_call(77, b"replacement"), 0)])
        .await;
    let sent = proxy.retract(&replaced);
    assert_eq!(
        sent,
        retracted.len(),
        "the node's own retractions were sent"
    );
    anvil.ping(emitter, 78, b"after").await;
    wait_for_canonical(&runtime, "logs", &anvil, emitter, start).await;

    let after: Vec<(u64, u64, bool)> = log_journal(&runtime, "logs")[before..].to_vec();
    let removed: Vec<(u64, u64)> = after.iter().filter(|e| e.2).map(|e| (e.0, e.1)).collect();
    let mut newest_first = retracted;
    newest_first.reverse();
    assert_eq!(
        removed, newest_first,
        "each retraction exactly once: {after:?}"
    );
    runtime.stop().await;
}

/// An awaited dispatch comes after the events queued before it, even while the worker has
/// not picked them up.
#[tokio::test]
async fn an_awaited_dispatch_runs_after_the_events_queued_before_it() {
    let engine = boot(vec![TestModule::probe("a")], test_config())
        .await
        .unwrap();
    for round in 0..20 {
        let first = round * 4;
        for i in 1..=3 {
            let slow = if i == 1 { "sleep 5; " } else { "" };
            engine
                .runtime
                .try_dispatch(
                    "a",
                    command(&format!("{slow}count n; copy n at{}", first + i)),
                )
                .unwrap();
        }
        let last = first + 4;
        let outcome = engine.run("a", &format!("count n; copy n at{last}")).await;
        assert_eq!(outcome, Outcome::Handled);
        for i in first + 1..=last {
            assert_eq!(
                engine.read("a", &format!("at{i}")),
                Some(i.to_string()),
                "event {i} ran {i}th"
            );
        }
    }
}

/// Awaited dispatches to a full queue wait for room in the order they came, and one that
/// comes while others wait takes its turn behind them, though the worker has just made
/// room: every event runs in the order it was dispatched.
#[tokio::test]
async fn dispatches_waiting_for_room_keep_their_order() {
    let mut config = test_config();
    config.supervision.queue_capacity = 1;
    let engine = boot(vec![TestModule::probe("a")], config).await.unwrap();
    for round in 0..10u64 {
        let first = round * 6;
        let mut calls = Vec::new();
        for i in 1..=5 {
            let slow = if i == 1 { "sleep 20; " } else { "" };
            let mut call = Box::pin(engine.runtime.dispatch(
                "a",
                command(&format!("{slow}count n; copy n at{}", first + i)),
            ));
            // Queued, or waiting for room, before the next one comes.
            assert!(futures::poll!(call.as_mut()).is_pending());
            calls.push(call);
        }
        // Given a moment, the worker takes the slow event and the room it makes goes to the
        // first waiter, then the next dispatch comes (the order must hold however the
        // timing falls; the pause only makes this case likely).
        tokio::time::sleep(Duration::from_millis(5)).await;
        let last = engine
            .runtime
            .dispatch("a", command(&format!("count n; copy n at{}", first + 6)));
        let (outcomes, last) = tokio::join!(futures::future::join_all(calls), last);
        assert!(
            outcomes
                .into_iter()
                .chain([last])
                .all(|o| o.unwrap() == Outcome::Handled)
        );
        for i in first + 1..=first + 6 {
            assert_eq!(
                engine.read("a", &format!("at{i}")),
                Some(i.to_string()),
                "event {i} ran {i}th"
            );
        }
    }
}

/// A caller that stops waiting for a dispatched event does not cut its call short: it ends
/// and commits, and the next event runs after it.
#[tokio::test]
async fn a_call_nobody_waits_for_still_ends_and_commits() {
    let engine = boot(vec![TestModule::probe("a")], test_config())
        .await
        .unwrap();
    let mut abandoned = Box::pin(
        engine
            .runtime
            .dispatch("a", command("sleep 200; set done yes")),
    );
    // Started (it waits in the host's clock), then given up on.
    assert!(futures::poll!(abandoned.as_mut()).is_pending());
    drop(abandoned);
    assert_eq!(engine.run("a", "copy done after").await, Outcome::Handled);
    assert_eq!(engine.read("a", "done").as_deref(), Some("yes"));
    assert_eq!(engine.read("a", "after").as_deref(), Some("yes"));
}

/// `GET /v1/dead-letters` answers in pages, each with the cursor of the next: every letter
/// once, by module and oldest first, however many there are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_served_page_by_page_each_once_in_order() {
    let mut config = test_config();
    config.admin = Some(nexum_core::AdminConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: None,
    });
    let running = run(vec![TestModule::probe("a"), TestModule::probe("b")], config).await;
    // `b`'s letters are 40 kB each: its pages end at the byte bound (1 MiB), not the count.
    for (module, letters, padding) in [("a", 150, 0), ("b", 60, 40_000)] {
        for n in 0..letters {
            let tick = nexum_core::Event::Tick(nexum_core::Tick {
                fired_at: n,
                schedule: format!("fail; {}", "x".repeat(padding)),
            });
            let outcome = running.runtime.dispatch(module, tick).await.unwrap();
            assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
        }
    }
    let admin = running.runtime.admin_addr().unwrap();
    let client = reqwest::Client::new();
    let pages = |module: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut pages: Vec<Vec<Value>> = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let mut query: Vec<(&str, String)> = Vec::new();
                if let Some(module) = module {
                    query.push(("module", module.to_string()));
                }
                if let Some(after) = &after {
                    query.push(("after", after.clone()));
                }
                let page: Value = client
                    .get(format!("http://{admin}/v1/dead-letters"))
                    .query(&query)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                pages.push(page["letters"].as_array().unwrap().clone());
                match page["next"].as_str() {
                    Some(next) => after = Some(next.to_string()),
                    None => return pages,
                }
                assert!(pages.len() < 100, "the pages never end");
            }
        }
    };
    let fired = |letters: &[Value]| -> Vec<(String, u64)> {
        letters
            .iter()
            .map(|l| {
                (
                    l["module"].as_str().unwrap().to_string(),
                    l["event"]["fired_at"].as_u64().unwrap(),
                )
            })
            .collect()
    };

    let all = pages(None).await;
    let sizes: Vec<usize> = all.iter().map(Vec::len).collect();
    assert_eq!(sizes[0], 100, "{sizes:?}");
    assert!(sizes.iter().all(|n| (1..=100).contains(n)), "{sizes:?}");
    for page in &all {
        let bytes = serde_json::to_vec(page).unwrap().len();
        assert!(bytes < 1024 * 1024 + 50_000, "a page of {bytes} bytes");
    }
    let expected: Vec<(String, u64)> = (0..150)
        .map(|n| ("a".to_string(), n))
        .chain((0..60).map(|n| ("b".to_string(), n)))
        .collect();
    assert_eq!(fired(&all.concat()), expected);

    let of_b = pages(Some("b")).await;
    assert!(
        of_b.len() >= 3,
        "2.4 MB of letters in {} page(s)",
        of_b.len()
    );
    assert_eq!(fired(&of_b.concat()), expected[150..]);

    running.stop().await;
}

//! `nexum run` nodes sharing one PostgreSQL store, as an operator runs them: each module on
//! one node, a stalled node's modules taken over and the node fenced when it wakes, a dead
//! node's modules taken over, nodes added and removed while events flow, state carried
//! across, a clean stop handing everything back — and every log recorded exactly once.

use alloy_primitives::Address;
use nexum_host::cluster::owner;
use nexum_tests::anvil::PollAnswer;
use nexum_tests::anvil::{Anvil, CHAIN_ID, hex_u64};
use nexum_tests::guests;
use nexum_tests::orderbook::MockOrderbook;
use nexum_tests::postgres::{
    fresh_database, furthest_handled, handled_through, module_keys, query_texts, recorded_logs,
};
use nexum_tests::process::Process;
use nexum_tests::twap::{APP_DATA, keeper_manifest, params, part};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NEXUM: &str = env!("CARGO_BIN_EXE_nexum");
const WAIT: Duration = Duration::from_secs(30);

/// What a test module does.
enum Kind {
    /// The heartbeat example on a cron tick every second (it counts its beats).
    Beat,
    /// The recorder guest on every log of `emitter` from block `from` (it journals them).
    Recorder { emitter: Address, from: u64 },
    /// The TWAP keeper on the ComposableCoW test double at `composable_cow`.
    Twap { composable_cow: Address },
}

impl Kind {
    /// The guest it runs, its capabilities and the rest of its manifest.
    fn manifest(&self) -> (&'static str, &'static str, String) {
        match self {
            Kind::Beat => (
                "heartbeat",
                r#""local-store", "logging""#,
                "[[subscription]]\nkind = \"cron\"\nschedule = \"* * * * * *\"\n".to_string(),
            ),
            Kind::Recorder { emitter, from } => (
                "recorder",
                r#""local-store", "logging""#,
                format!(
                    "[[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddress = \"{emitter}\"\nstart_block = {from}\n"
                ),
            ),
            Kind::Twap { composable_cow } => (
                "twap-keeper",
                r#""chain", "cow-api", "local-store", "logging""#,
                keeper_manifest(*composable_cow),
            ),
        }
    }
}

/// Module names (`prefix-0`, `prefix-1`, …) that rendezvous placement over `nodes` gives
/// to each node, `per_node` each: one list per node, in the order of `nodes`.
fn placed(prefix: &str, nodes: &[&str], per_node: usize) -> Vec<Vec<String>> {
    let live: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    nodes
        .iter()
        .map(|node| {
            (0..)
                .map(|i| format!("{prefix}-{i}"))
                .filter(|m| owner(m, &live) == Some(*node))
                .take(per_node)
                .collect()
        })
        .collect()
}

/// Which of `modules` each of `nodes` should run, by rendezvous placement.
fn expected(modules: &[String], nodes: &[&str], node: &str) -> Vec<String> {
    let live: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    modules
        .iter()
        .filter(|m| owner(m, &live) == Some(node))
        .cloned()
        .collect()
}

/// An engine.toml every node runs (its node name and state dir from `$NODE`), on the
/// shared store at `url`, with a 1.5 s lease; `chain` is the body of the test chain's
/// `[chains]` table, when a module reads it.
fn engine(dir: &Path, url: &str, chain: Option<&str>, modules: &[(String, Kind)]) -> PathBuf {
    let mut text = format!(
        "[engine]\nstate_dir = \"state-${{NODE}}\"\nstore = \"{url}\"\n\n\
         [cluster]\nnode = \"${{NODE}}\"\nlease_ms = 1500\nrenew_ms = 300\n\n"
    );
    if let Some(table) = chain {
        text.push_str(&format!("[chains.{CHAIN_ID}]\n{table}\n\n"));
    }
    for (name, kind) in modules {
        let (guest, capabilities, rest) = kind.manifest();
        std::fs::write(
            dir.join(format!("{name}.toml")),
            format!(
                "[module]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n\
                 [capabilities]\nrequired = [{capabilities}]\n\n{rest}"
            ),
        )
        .unwrap();
        text.push_str(&format!(
            "[[modules]]\npath = {:?}\nmanifest = \"{name}.toml\"\n\n",
            guests::wasm(guest)
        ));
    }
    let path = dir.join("engine.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Recorders named `names`, all reading `emitter` from block `from`.
fn recorders(names: &[String], emitter: Address, from: u64) -> Vec<(String, Kind)> {
    names
        .iter()
        .map(|n| (n.clone(), Kind::Recorder { emitter, from }))
        .collect()
}

fn node(engine: &Path, name: &str) -> Process {
    let mut command = Command::new(NEXUM);
    command
        .arg("run")
        .arg(engine)
        .env_remove("RUST_LOG")
        .env("NODE", name);
    Process::spawn(command)
}

/// `nexum cluster status` of `engine`, as printed.
fn cluster_status(engine: &Path) -> String {
    let output = Command::new(NEXUM)
        .args(["cluster", "status", engine.to_str().unwrap()])
        .env("NODE", "status")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// How many times `node` has said `what` about `module`.
fn said(node: &Process, what: &str, module: &str) -> usize {
    let tag = format!("module=\"{module}\"");
    node.output()
        .iter()
        .filter(|l| l.contains(&tag) && l.contains(what))
        .count()
}

/// The modules of `modules` that `node` runs now, by what it said: leases taken minus
/// modules handed over, lost, or stopped while the store did not answer (a busy machine
/// can starve a node that long).
fn held_by(node: &Process, modules: &[String]) -> Vec<String> {
    modules
        .iter()
        .filter(|m| {
            said(node, "lease acquired; module running here", m)
                > said(node, "handed to another node", m) + said(node, "module stopped here", m)
        })
        .cloned()
        .collect()
}

/// Waits until `node` has said `times` times that it took the lease of each of `modules`.
fn wait_acquired(node: &mut Process, modules: &[String], times: usize) {
    wait_said(node, "lease acquired; module running here", modules, times);
}

/// Waits until `node` has said `times` times `what` about each of `modules`.
fn wait_said(node: &mut Process, what: &str, modules: &[String], times: usize) {
    for module in modules {
        let tag = format!("module=\"{module}\"");
        node.wait_for_count(&[what, &tag], times, WAIT);
    }
}

/// Waits until `node` has beaten `module` at least once, and returns its first beat number.
fn first_beat(node: &mut Process, module: &str) -> u64 {
    let tag = format!("module=\"{module}\"");
    let lines = node.wait_for_count(&["beat #", &tag], 1, WAIT);
    let after = lines[0].split("beat #").nth(1).expect("a beat line");
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Waits until every one of `modules` has handled through block `last` (two minutes at most),
/// then checks each recorded every log of `emitter` from `from` exactly once, in order.
async fn assert_each_log_once(
    anvil: &Anvil,
    url: &str,
    modules: &[String],
    emitter: Address,
    from: u64,
    last: u64,
) {
    // Generous: after a scale-down under a loaded machine, the last node catches up alone.
    let deadline = Instant::now() + Duration::from_secs(120);
    for module in modules {
        while handled_through(url, module).is_none_or(|h| h < last) {
            assert!(
                Instant::now() < deadline,
                "{module} stopped at {:?} of {last}",
                handled_through(url, module)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let chain = anvil.log_positions(emitter, from, last).await;
    assert!(!chain.is_empty());
    for module in modules {
        let recorded = recorded_logs(url, module);
        assert_eq!(
            recorded, chain,
            "{module}: not every log exactly once, in order"
        );
    }
}

/// The `[chains]` table of `anvil` for [`engine`].
fn chain_of(anvil: &Anvil) -> String {
    format!("rpc_url = \"{}\"", anvil.ws_url())
}

/// Sends transactions of 10 logs each, at least `min` of them, until `done` holds (30 s
/// at most, else the test fails naming `what`); returns the block of the last.
async fn emit_until(
    anvil: &Anvil,
    emitter: Address,
    min: usize,
    what: &str,
    done: impl Fn() -> bool,
) -> u64 {
    let deadline = Instant::now() + WAIT;
    let mut sent = 0;
    loop {
        let last = hex_u64(&anvil.burst(emitter, 9).await["blockNumber"]);
        sent += 1;
        if sent >= min && done() {
            return last;
        }
        assert!(Instant::now() < deadline, "{what} within {WAIT:?}");
    }
}

/// Waits up to 30 s for `condition`, failing with `what`.
async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const NODES: [&str; 2] = ["node-a", "node-b"];

#[test]
fn cluster_status_before_any_node_started_says_so_and_leaves_the_database_untouched() {
    let url = fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &url, None, &[("beat".to_string(), Kind::Beat)]);
    let output = Command::new(NEXUM)
        .args(["cluster", "status", engine.to_str().unwrap()])
        .env("NODE", "status")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("no nexum node has started on this database yet"),
        "{stderr}"
    );
    let tables = query_texts(
        &url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    );
    assert!(tables.is_empty(), "a status read created {tables:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_modules_take_over_a_stalled_or_dead_node_and_fence_it() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let url = fresh_database();
    let dir = tempfile::tempdir().unwrap();
    // Two heartbeats placed on each node, and two recorders on node a.
    let beats = placed("beat", &NODES, 2);
    let records = placed("rec", &NODES, 2)[0].clone();
    let of_a = [beats[0].clone(), records.clone()].concat();
    let of_b = beats[1].clone();
    let all = [of_a.clone(), of_b.clone()].concat();
    let mut modules: Vec<(String, Kind)> = beats
        .concat()
        .into_iter()
        .map(|m| (m, Kind::Beat))
        .collect();
    modules.extend(recorders(&records, emitter, from));
    let engine = engine(dir.path(), &url, Some(&chain_of(&anvil)), &modules);

    // Alone, node a runs everything.
    let mut a = node(&engine, NODES[0]);
    wait_acquired(&mut a, &all, 1);
    for module in &of_b {
        first_beat(&mut a, module);
    }
    // Node b joins: a hands b its share, and b carries on each module's count.
    let mut b = node(&engine, NODES[1]);
    wait_acquired(&mut b, &of_b, 1);
    wait_said(&mut a, "module handed to another node", &of_b, 1);
    for module in &of_b {
        let beat = first_beat(&mut b, module);
        assert!(beat >= 2, "{module} started over on node b: beat #{beat}");
    }
    emit_until(&anvil, emitter, 10, "", || true).await;

    // Node a stalls past its lease while logs flow: b takes its modules over.
    a.send("-STOP");
    emit_until(&anvil, emitter, 5, "node b taking over", || {
        of_a.iter()
            .all(|m| said(&b, "lease acquired; module running here", m) >= 1)
    })
    .await;
    // Logs b handles while a sleeps (a's node delivers them to it too, once it wakes).
    emit_until(&anvil, emitter, 5, "", || true).await;
    // Woken, a finds its leases gone and stops those modules: whatever it was handling
    // when it stalled, and the logs its node sent meanwhile, fail the epoch check. Then b
    // hands them back, as placement puts them on a.
    a.send("-CONT");
    wait_said(
        &mut a,
        "lease lost to another node; module stopped here",
        &of_a,
        1,
    );
    wait_acquired(&mut a, &of_a, 2);
    let fenced = a
        .output()
        .iter()
        .filter(|l| l.contains("commit refused: another node runs this module now"))
        .count();
    println!("node a's commits refused after it woke: {fenced}");
    emit_until(&anvil, emitter, 5, "", || true).await;
    let said_now = cluster_status(&engine);
    assert!(said_now.contains("  node-a  seen "), "{said_now}");
    for module in &of_a {
        assert!(
            said_now.contains(&format!("  {module}  owner node-a  epoch 3  expires in ")),
            "{said_now}"
        );
    }
    for module in &of_b {
        assert!(
            said_now.contains(&format!("  {module}  owner node-b  epoch 2  expires in ")),
            "{said_now}"
        );
    }

    // Node a dies: b takes over once a's leases expire, counts carried on.
    drop(a);
    wait_acquired(&mut b, &of_a, 2);
    for module in &beats[0] {
        let beats = b.wait_for_count(&["beat #", &format!("module=\"{module}\"")], 1, WAIT);
        assert!(!beats.is_empty());
    }
    // Nothing was recorded twice, neither by a's late commits nor across the takeovers.
    let last = emit_until(&anvil, emitter, 5, "", || true).await;
    assert_each_log_once(&anvil, &url, &records, emitter, from, last).await;

    // A clean stop hands everything back and says the node left.
    assert_eq!(b.signal("-TERM").code(), Some(0));
    let said_now = cluster_status(&engine);
    assert!(said_now.contains("  node-b  left"), "{said_now}");
    assert_eq!(said_now.matches("expired").count(), all.len(), "{said_now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_lose_one_three_times_during_5000_logs_and_every_module_records_each_log_once()
{
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let url = fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let modules: Vec<String> = (0..6).map(|i| format!("rec-{i}")).collect();
    let engine = engine(
        dir.path(),
        &url,
        Some(&chain_of(&anvil)),
        &recorders(&modules, emitter, from),
    );

    let mut names = vec![
        "node-0".to_string(),
        "node-1".to_string(),
        "node-2".to_string(),
    ];
    let mut nodes: Vec<Process> = names.iter().map(|n| node(&engine, n)).collect();
    for module in &modules {
        wait_for(&format!("{module} starting"), || {
            nodes
                .iter()
                .any(|n| said(n, "lease acquired; module running here", module) > 0)
        })
        .await;
    }

    // 250 transactions of 20 logs each; a node dies at each quarter and a new one joins.
    const TXS: u64 = 250;
    let mut failovers = Vec::new();
    let mut last = 0;
    for tx in 0..TXS {
        last = hex_u64(&anvil.burst(emitter, 19).await["blockNumber"]);
        if tx > 0 && tx % (TXS / 4) == 0 && failovers.len() < 3 {
            // The node running the most modules dies.
            let victim = (0..nodes.len())
                .max_by_key(|i| held_by(&nodes[*i], &modules).len())
                .unwrap();
            let held = held_by(&nodes[victim], &modules);
            assert!(!held.is_empty(), "no node runs a module");
            let dead = nodes.remove(victim);
            let dead_name = names.remove(victim);
            let acquired = |nodes: &[Process]| -> usize {
                nodes
                    .iter()
                    .map(|n| {
                        n.output()
                            .iter()
                            .filter(|l| l.contains("lease acquired"))
                            .count()
                    })
                    .sum()
            };
            let before = acquired(&nodes);
            let killed_at = Instant::now();
            drop(dead); // SIGKILL
            // Its modules come back on the survivors.
            wait_for(
                &format!("{dead_name}'s modules {held:?} taken over"),
                || acquired(&nodes) >= before + held.len(),
            )
            .await;
            failovers.push(killed_at.elapsed());
            let fresh = format!("node-{}", 3 + failovers.len());
            nodes.push(node(&engine, &fresh));
            names.push(fresh);
        }
    }
    println!("failover after kill -9 (lease 1500 ms): {failovers:?}");
    assert_eq!(failovers.len(), 3);
    for elapsed in &failovers {
        assert!(
            *elapsed < Duration::from_millis(1500 + 300 * 4 + 2000),
            "failover took {elapsed:?}"
        );
    }

    // Every module gets through the last block and records each log exactly once.
    assert_each_log_once(&anvil, &url, &modules, emitter, from, last).await;
    assert_eq!(anvil.log_positions(emitter, from, last).await.len(), 5000);
    // `nexum cluster status` shows no module behind the chain.
    let status = cluster_status(&engine);
    assert!(
        status.contains(&format!("  {CHAIN_ID}  head {last}")),
        "{status}"
    );
    for module in &modules {
        assert!(
            status.contains(&format!(
                "  {module} [0] chain {CHAIN_ID}  handled through {last}, lag 0"
            )),
            "{status}"
        );
    }
    for mut n in nodes {
        assert_eq!(n.signal("-TERM").code(), Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_and_leave_while_logs_flow_and_every_module_records_each_log_once() {
    const ALL: [&str; 3] = ["node-0", "node-1", "node-2"];
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let url = fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let modules = placed("rec", &ALL, 2).concat();
    let engine = engine(
        dir.path(),
        &url,
        Some(&chain_of(&anvil)),
        &recorders(&modules, emitter, from),
    );
    // Every running node runs exactly the modules placement gives it.
    let settled = |nodes: &[Process]| {
        let live = &ALL[..nodes.len()];
        nodes
            .iter()
            .zip(live)
            .all(|(n, name)| held_by(n, &modules) == expected(&modules, live, name))
    };

    // One node, then two, then three, then two, then one, while logs flow.
    let mut nodes = vec![node(&engine, ALL[0])];
    wait_acquired(&mut nodes[0], &modules, 1);
    emit_until(&anvil, emitter, 10, "", || true).await;
    for joining in &ALL[1..] {
        nodes.push(node(&engine, joining));
        emit_until(
            &anvil,
            emitter,
            10,
            &format!("{joining} taking its share"),
            || settled(&nodes),
        )
        .await;
    }
    for _ in 1..ALL.len() {
        let mut leaving = nodes.pop().unwrap();
        assert_eq!(leaving.signal("-TERM").code(), Some(0));
        emit_until(
            &anvil,
            emitter,
            10,
            "the others taking the leaver's share",
            || settled(&nodes),
        )
        .await;
    }
    let last = emit_until(&anvil, emitter, 10, "", || true).await;
    assert_each_log_once(&anvil, &url, &modules, emitter, from, last).await;
    assert_eq!(nodes[0].signal("-TERM").code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twap_part_is_accepted_once_across_a_takeover_and_the_repeat_counts_as_submitted() {
    let anvil = Anvil::spawn().await;
    let composable_cow = anvil.deploy_composable_cow().await;
    let book = MockOrderbook::start(CHAIN_ID).await;
    book.add_app_data(APP_DATA);
    let url = fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let keeper = placed("twap", &NODES, 1)[0][0].clone();
    let chain = format!("{}\norderbook_url = \"{}\"", chain_of(&anvil), book.url());
    let engine = engine(
        dir.path(),
        &url,
        Some(&chain),
        &[(keeper.clone(), Kind::Twap { composable_cow })],
    );
    let keepers = [keeper.clone()];
    let mut a = node(&engine, NODES[0]);
    wait_acquired(&mut a, &keepers, 1);
    let mut b = node(&engine, NODES[1]);
    b.wait_for_count(&["running; press ctrl-c"], 1, WAIT);

    let order = params(1);
    anvil.create_conditional_order(composable_cow, &order).await;
    wait_for("the keeper watching the order", || {
        !module_keys(&url, &keeper, "watch/").is_empty()
    })
    .await;
    // The orderbook takes the part, but node a dies before it hears back: nothing of that
    // block was committed.
    book.hold_next_answer(Duration::from_secs(120));
    let valid_to = anvil.latest_timestamp().await + 3_600;
    anvil
        .script_poll(composable_cow, &order, PollAnswer::Ready, 0, part(valid_to))
        .await;
    wait_for("node a posting the part", || !book.posts().is_empty()).await;
    drop(a);
    let uid = book.posts()[0].uid.clone().expect("a valid order");
    assert_eq!(book.posts()[0].status, 201);

    // Node b takes over, handles that block again and posts the part again: the orderbook
    // answers DuplicatedOrder, and the keeper records the part as submitted.
    wait_acquired(&mut b, &keepers, 1);
    wait_for("the keeper recording the part", || {
        !module_keys(&url, &keeper, &format!("submitted/{uid}")).is_empty()
    })
    .await;
    anvil.mine(3).await;
    let head = anvil.block_number().await;
    wait_for("node b handling the new blocks", || {
        furthest_handled(&url, &keeper).is_some_and(|h| h >= head)
    })
    .await;
    let posts = book.posts();
    let answers: Vec<(Option<String>, u16)> =
        posts.iter().map(|p| (p.uid.clone(), p.status)).collect();
    assert_eq!(
        answers,
        [(Some(uid.clone()), 201), (Some(uid.clone()), 400)],
        "the part once, then once more across the takeover (answered DuplicatedOrder)"
    );
    assert_eq!(book.accepted(), [uid]);
    assert_eq!(b.signal("-TERM").code(), Some(0));
}

//! Two `nexum run` nodes sharing one PostgreSQL store, as an operator runs them: each
//! module on one node, a stalled node's modules taken over and the node fenced when it
//! wakes, a dead node's modules taken over, state carried across, a clean stop handing
//! everything back.

use nexum_host::cluster::owner;
use nexum_tests::anvil::{Anvil, CHAIN_ID, hex_u64};
use nexum_tests::guests;
use nexum_tests::postgres::{fresh_database, handled_through, recorded_logs};
use nexum_tests::process::Process;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NEXUM: &str = env!("CARGO_BIN_EXE_nexum");
const NODES: [&str; 2] = ["node-a", "node-b"];
const WAIT: Duration = Duration::from_secs(30);

/// Four heartbeat modules, two placed on each node; their names.
fn modules() -> Vec<String> {
    let nodes: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
    let mut picked = Vec::new();
    for node in NODES {
        let mine = (0..)
            .map(|i| format!("beat-{i}"))
            .filter(|m| owner(m, &nodes) == Some(node))
            .take(2);
        picked.extend(mine);
    }
    picked
}

/// An engine.toml every node runs, on the shared store at `url`.
fn engine(dir: &Path, url: &str, modules: &[String]) -> std::path::PathBuf {
    let mut text = format!(
        "[engine]\nstate_dir = \"state-${{NODE}}\"\nstore = \"{url}\"\n\n\
         [cluster]\nnode = \"${{NODE}}\"\nlease_ms = 1500\nrenew_ms = 300\n\n"
    );
    for name in modules {
        std::fs::write(
            dir.join(format!("{name}.toml")),
            format!(
                "[module]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n\n\
                 [[subscription]]\nkind = \"cron\"\nschedule = \"* * * * * *\"\n"
            ),
        )
        .unwrap();
        text.push_str(&format!(
            "[[modules]]\npath = {:?}\nmanifest = \"{name}.toml\"\n\n",
            guests::wasm("heartbeat")
        ));
    }
    let path = dir.join("engine.toml");
    std::fs::write(&path, text).unwrap();
    path
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

/// Waits until `node` has said `times` times that it took the lease of each of `modules`.
fn wait_acquired(node: &mut Process, modules: &[String], times: usize) {
    for module in modules {
        let tag = format!("module=\"{module}\"");
        node.wait_for_count(&["lease acquired; module running here", &tag], times, WAIT);
    }
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

#[test]
fn two_nodes_share_the_modules_take_over_a_stalled_or_dead_node_and_fence_it() {
    let url = fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let all = modules();
    let (of_a, of_b) = all.split_at(2);
    let engine = engine(dir.path(), &url, &all);
    let status = || {
        let output = Command::new(NEXUM)
            .args(["cluster", "status", engine.to_str().unwrap()])
            .env("NODE", "status")
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };

    // Alone, node a runs everything.
    let mut a = node(&engine, NODES[0]);
    wait_acquired(&mut a, &all, 1);
    for module in of_b {
        first_beat(&mut a, module);
    }
    // Node b joins: a hands b its share, and b carries on each module's count.
    let mut b = node(&engine, NODES[1]);
    wait_acquired(&mut b, of_b, 1);
    wait_said(&mut a, "module handed to another node", of_b, 1);
    for module in of_b {
        let beat = first_beat(&mut b, module);
        assert!(beat >= 2, "{module} started over on node b: beat #{beat}");
    }

    // Node a stalls past its lease: b takes its modules over.
    a.send("-STOP");
    wait_acquired(&mut b, of_a, 1);
    // Woken, a finds its leases gone and stops those modules (its commits were refused
    // meanwhile); then b hands them back, as placement puts them on a.
    a.send("-CONT");
    wait_said(
        &mut a,
        "lease lost to another node; module stopped here",
        of_a,
        1,
    );
    wait_acquired(&mut a, of_a, 2);
    let said = status();
    assert!(said.contains("  node-a  seen "), "{said}");
    for module in of_a {
        assert!(
            said.contains(&format!("  {module}  owner node-a  epoch 3  expires in ")),
            "{said}"
        );
    }
    for module in of_b {
        assert!(
            said.contains(&format!("  {module}  owner node-b  epoch 2  expires in ")),
            "{said}"
        );
    }

    // Node a dies: b takes over once a's leases expire, counts carried on.
    drop(a);
    wait_acquired(&mut b, of_a, 2);
    for module in of_a {
        let beats = b.wait_for_count(&["beat #", &format!("module=\"{module}\"")], 1, WAIT);
        assert!(!beats.is_empty());
    }
    // A clean stop hands everything back and says the node left.
    assert_eq!(b.signal("-TERM").code(), Some(0));
    let said = status();
    assert!(said.contains("  node-b  left"), "{said}");
    assert_eq!(said.matches("expired").count(), all.len(), "{said}");
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
    let mut text = format!(
        "[engine]\nstate_dir = \"state-${{NODE}}\"\nstore = \"{url}\"\n\n\
         [cluster]\nnode = \"${{NODE}}\"\nlease_ms = 1500\nrenew_ms = 300\n\n\
         [chains.{CHAIN_ID}]\nrpc_url = \"{}\"\n\n",
        anvil.ws_url()
    );
    for name in &modules {
        std::fs::write(
            dir.path().join(format!("{name}.toml")),
            format!(
                "[module]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n\n\
                 [[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddress = \"{emitter}\"\nstart_block = {from}\n"
            ),
        )
        .unwrap();
        text.push_str(&format!(
            "[[modules]]\npath = {:?}\nmanifest = \"{name}.toml\"\n\n",
            guests::wasm("recorder")
        ));
    }
    let engine = dir.path().join("engine.toml");
    std::fs::write(&engine, text).unwrap();

    let mut names = vec![
        "node-0".to_string(),
        "node-1".to_string(),
        "node-2".to_string(),
    ];
    let mut nodes: Vec<Process> = names.iter().map(|n| node(&engine, n)).collect();
    for module in &modules {
        let tag = format!("module=\"{module}\"");
        let deadline = std::time::Instant::now() + WAIT;
        while !nodes.iter().any(|n| {
            n.find(&format!("lease acquired; module running here {tag}"))
                .is_some()
        }) {
            assert!(
                std::time::Instant::now() < deadline,
                "{module} never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // 250 transactions of 20 logs each; a node dies at each quarter and a new one joins.
    const TXS: u64 = 250;
    let mut failovers = Vec::new();
    let mut last = 0;
    for tx in 0..TXS {
        last = hex_u64(&anvil.burst(emitter, 19).await["blockNumber"]);
        if tx > 0 && tx % (TXS / 4) == 0 && failovers.len() < 3 {
            // The node running the most modules dies.
            let held_by = |n: &Process| -> Vec<String> {
                let lines = n.output();
                modules
                    .iter()
                    .filter(|m| {
                        let tag = format!("module=\"{m}\"");
                        let count = |what: &[&str]| {
                            lines
                                .iter()
                                .filter(|l| l.contains(&tag) && what.iter().any(|w| l.contains(w)))
                                .count()
                        };
                        count(&["lease acquired; module running here"])
                            > count(&["handed to another node", "lease lost"])
                    })
                    .cloned()
                    .collect()
            };
            let victim = (0..nodes.len())
                .max_by_key(|i| held_by(&nodes[*i]).len())
                .unwrap();
            let held = held_by(&nodes[victim]);
            assert!(!held.is_empty(), "no node runs a module");
            let dead = nodes.remove(victim);
            let dead_name = names.remove(victim);
            let before: Vec<usize> = nodes
                .iter()
                .map(|n| {
                    n.output()
                        .iter()
                        .filter(|l| l.contains("lease acquired"))
                        .count()
                })
                .collect();
            let killed_at = std::time::Instant::now();
            drop(dead); // SIGKILL
            // Its modules come back on the survivors.
            let deadline = killed_at + WAIT;
            loop {
                let gained: usize = nodes
                    .iter()
                    .zip(&before)
                    .map(|(n, b)| {
                        n.output()
                            .iter()
                            .filter(|l| l.contains("lease acquired"))
                            .count()
                            - b
                    })
                    .sum();
                if gained >= held.len() {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{dead_name}'s modules {held:?} were not taken over"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
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

    // Every module gets through the last block, then records each log exactly once.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for module in &modules {
        while handled_through(&url, module).is_none_or(|h| h < last) {
            assert!(
                std::time::Instant::now() < deadline,
                "{module} stopped at {:?} of {last}",
                handled_through(&url, module)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for mut n in nodes {
        assert_eq!(n.signal("-TERM").code(), Some(0));
    }
    let chain: Vec<(u64, u64)> = anvil
        .log_positions(emitter, from, last)
        .await
        .into_iter()
        .collect();
    assert_eq!(chain.len(), 5000);
    for module in &modules {
        let recorded = recorded_logs(&url, module);
        assert_eq!(
            recorded, chain,
            "{module}: not every log exactly once, in order"
        );
    }
}

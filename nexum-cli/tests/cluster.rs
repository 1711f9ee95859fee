//! Two `nexum run` nodes sharing one PostgreSQL store, as an operator runs them: each
//! module on one node, a stalled node's modules taken over and the node fenced when it
//! wakes, a dead node's modules taken over, state carried across, a clean stop handing
//! everything back.

use nexum_host::cluster::owner;
use nexum_tests::guests;
use nexum_tests::postgres::fresh_database;
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

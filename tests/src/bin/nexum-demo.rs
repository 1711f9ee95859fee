//! The README's demo: a local chain, the test contract, events on a timer, and `nexum`
//! running the example modules against it.
//!
//! `scripts/demo.sh` builds the modules and nexum, then runs this with the path of the
//! `nexum` binary and an optional duration in seconds (default: until ctrl-c).

use nexum_tests::anvil::Anvil;
use nexum_tests::guests::workspace_root;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nexum as the demo runs it: killed if the demo itself fails (a panic unwinds through
/// this), stopped cleanly with one SIGINT otherwise.
struct Nexum(Child);

impl Drop for Nexum {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Where the example event-counter manifest expects the contract (first deployment on a
/// fresh Anvil).
const EXPECTED_EMITTER: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let nexum = args
        .next()
        .expect("usage: nexum-demo <path to nexum> [seconds]");
    let duration = args
        .next()
        .map(|s| Duration::from_secs(s.parse().expect("seconds")));

    let root = workspace_root();
    let anvil = Anvil::spawn_with(&["--block-time", "2"]).await;
    let emitter = anvil.deploy_emitter().await;
    if emitter.to_string() != EXPECTED_EMITTER {
        eprintln!(
            "note: the contract is at {emitter}, not where examples/event-counter/module.toml expects it"
        );
    }
    println!(
        "demo: anvil on port {}, test contract at {emitter}",
        anvil.port()
    );

    let demo_dir = root.join("build/demo");
    let _ = std::fs::remove_dir_all(demo_dir.join("data")); // a new chain: start fresh
    std::fs::create_dir_all(&demo_dir).expect("creating build/demo");
    let modules = root.join("build/modules");
    let engine = format!(
        "# Written by the demo for this run's Anvil.\n\
         [engine]\nstate_dir = \"data\"\n\n\
         [chains.31337]\nrpc_url = \"{ws}\"\n\n\
         [[modules]]\npath = \"{m}/heartbeat.wasm\"\nmanifest = \"{e}/heartbeat/module.toml\"\n\n\
         [[modules]]\npath = \"{m}/block-logger.wasm\"\nmanifest = \"{e}/block-logger/module.toml\"\n\n\
         [[modules]]\npath = \"{m}/event-counter.wasm\"\nmanifest = \"{e}/event-counter/module.toml\"\n",
        ws = anvil.ws_url(),
        m = modules.display(),
        e = root.join("examples").display(),
    );
    let engine_path = demo_dir.join("engine.toml");
    std::fs::write(&engine_path, engine).expect("writing the demo engine.toml");

    // Its own process group: a ctrl-c in the terminal reaches the demo, which then stops
    // nexum with exactly one SIGINT (a second one would force it).
    let mut command = Command::new(&nexum);
    command
        .arg("run")
        .arg(&engine_path)
        .stdin(Stdio::null())
        .process_group(0);
    nexum_tests::process::die_with_parent(&mut command);
    let mut child = Nexum(
        command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {nexum}: {e}")),
    );

    // Every way a terminal or a supervisor asks the demo to stop, listened for once.
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut hangup = signal(SignalKind::hangup()).expect("SIGHUP handler");

    let started = Instant::now();
    let mut seq = 0u64;
    loop {
        // The next event is due in 3 s (pacing, not waiting for anything).
        let wait = tokio::time::sleep(Duration::from_secs(3));
        tokio::select! {
            _ = wait => {}
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => break,
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if child.0.try_wait().ok().flatten().is_some() {
            eprintln!("demo: nexum stopped");
            break;
        }
        seq += 1;
        match seq % 3 {
            0 => drop(anvil.burst(emitter, 3).await),
            1 => drop(anvil.ping(emitter, seq, b"hello").await),
            _ => drop(anvil.pong(emitter, seq, "hi there").await),
        }
    }

    // Ask nexum to stop the way an operator would, and wait for its clean exit.
    let _ = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status();
    let status = child.0.wait().expect("waiting for nexum");
    println!("demo: nexum exited with {status}");
    // `process::exit` runs no destructors: stop Anvil first.
    drop(anvil);
    drop(child);
    std::process::exit(status.code().unwrap_or(1));
}

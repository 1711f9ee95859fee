//! `nexum run` as an operator uses it: the real binary, the compiled heartbeat example.

use nexum_tests::guests;
use nexum_tests::process::Process;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NEXUM: &str = env!("CARGO_BIN_EXE_nexum");

/// A running `nexum` (killed when dropped, panics included).
struct Running(Process);

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut command = Command::new(NEXUM);
        command.args(args).env_remove("RUST_LOG");
        Self(Process::spawn(command))
    }

    /// Waits for the next line containing `needle`, returning it.
    fn wait_for(&mut self, needle: &str) -> String {
        self.0.wait_for_blocking(needle, Duration::from_secs(20))
    }

    /// Sends `signal` and returns the exit code.
    fn stop(mut self, signal: &str) -> i32 {
        let status = self.0.signal(signal);
        status.code().expect("nexum exited by itself, not killed")
    }
}

/// An engine.toml running the heartbeat example every second, state in `dir`.
fn heartbeat_engine(dir: &Path) -> std::path::PathBuf {
    one_module_engine(
        dir,
        "heartbeat",
        "[module]\nname = \"heartbeat\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n\n[[subscription]]\nkind = \"cron\"\nschedule = \"* * * * * *\"\n",
    )
}

/// An engine.toml in `dir` running guest `guest` under `manifest` (written as module.toml
/// beside it), state in `dir/state`.
fn one_module_engine(dir: &Path, guest: &str, manifest: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("module.toml"), manifest).unwrap();
    let engine = dir.join("engine.toml");
    std::fs::write(
        &engine,
        format!(
            "[engine]\nstate_dir = \"state\"\n\n[[modules]]\npath = {:?}\nmanifest = \"module.toml\"\n",
            guests::wasm(guest)
        ),
    )
    .unwrap();
    engine
}

/// An engine.toml in `dir` whose module, every second, logs `slow call #N starting`, waits
/// `ms` in a host call, then stores `count` = N.
fn slow_engine(dir: &Path, ms: u64) -> std::path::PathBuf {
    one_module_engine(
        dir,
        "attacker",
        &format!(
            "[module]\nname = \"slow\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n\n\
             [[subscription]]\nkind = \"cron\"\nschedule = \"* * * * * *\"\n\n[config]\nattack = \"slow-count {ms}\"\n"
        ),
    )
}

/// An engine.toml in `dir` running the block-logger example against the node at `rpc_url`;
/// `engine` and `chain` are extra lines for those two tables.
fn block_logger_engine(dir: &Path, engine: &str, rpc_url: &str, chain: &str) -> std::path::PathBuf {
    let path = dir.join("engine.toml");
    let manifest = guests::workspace_root().join("examples/block-logger/module.toml");
    std::fs::write(
        &path,
        format!(
            "[engine]\nstate_dir = \"state\"\n{engine}\n[chains.31337]\nrpc_url = \"{rpc_url}\"\n{chain}\n[[modules]]\npath = {:?}\nmanifest = {manifest:?}\n",
            guests::wasm("block-logger"),
        ),
    )
    .unwrap();
    path
}

fn beat_number(line: &str) -> u64 {
    let after = line.split("beat #").nth(1).expect("a beat line");
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn heartbeat_ticks_are_logged_and_the_counter_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let engine = heartbeat_engine(dir.path());
    let engine = engine.to_str().unwrap();

    let mut first = Running::start(&["run", engine]);
    first.wait_for("module loaded");
    // The longest a stop can take: the default 30 s call deadline and 10 s to flush.
    first.wait_for("a stop waits up to 40 s for calls in flight");
    let line = first.wait_for("beat #2");
    assert!(line.contains("module=\"heartbeat\""), "{line}");
    assert_eq!(first.stop("-INT"), 0, "SIGINT must exit 0");

    let mut second = Running::start(&["run", engine]);
    let line = second.wait_for("beat #");
    assert!(beat_number(&line) >= 3, "the counter restarted: {line}");
    assert_eq!(second.stop("-TERM"), 0, "SIGTERM must exit 0");
}

#[test]
fn sigterm_lets_the_call_in_flight_finish_and_commit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = slow_engine(dir.path(), 2000);
    let engine = engine.to_str().unwrap();

    let mut running = Running::start(&["run", engine]);
    running.wait_for("slow call #1 starting");
    let status = running.0.signal("-TERM");
    assert_eq!(status.code(), Some(0), "{}", running.0.output().join("\n"));
    assert!(
        running.0.find("slow call #1 done").is_some(),
        "the call in flight was cut:\n{}",
        running.0.output().join("\n")
    );
    let stored = Command::new(NEXUM)
        .args(["store", engine, "slow", "get", "count"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&stored.stdout).trim(), "1");
}

#[test]
fn a_single_module_runs_from_its_wasm_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    heartbeat_engine(dir.path());
    let wasm = guests::wasm("heartbeat");
    let manifest = dir.path().join("module.toml");
    let state = dir.path().join("single-state");
    let mut running = Running::start(&[
        "run",
        wasm.to_str().unwrap(),
        manifest.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    running.wait_for("beat #1");
    assert_eq!(running.stop("-TERM"), 0);
    assert!(state.is_dir());
}

/// A first boot compiles on a pool of threads of its own, which leave once boot is done:
/// rayon's global pool, which wasmtime would use otherwise, keeps its threads (named like
/// the process) for the rest of the process's life.
#[test]
fn the_compiler_threads_leave_once_boot_has_compiled() {
    let dir = tempfile::tempdir().unwrap();
    let engine = heartbeat_engine(dir.path());
    let mut running = Running::start(&["run", engine.to_str().unwrap()]);
    running.wait_for("compiling the component");
    running.wait_for("running; press ctrl-c");
    let threads = || -> Vec<String> {
        let tasks = format!("/proc/{}/task", running.0.id());
        std::fs::read_dir(tasks)
            .map(|entries| {
                entries
                    .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                    .map(|name| name.trim().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let names = threads();
        let compilers = names
            .iter()
            .filter(|n| n.starts_with("nexum-compile"))
            .count();
        // The main thread is the only one named like the binary.
        let unnamed = names.iter().filter(|n| *n == "nexum").count();
        if compilers == 0 && unnamed == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "compiler threads still there after boot: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(running.stop("-TERM"), 0);
}

#[test]
fn a_bad_config_is_one_clear_message_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let engine = dir.path().join("engine.toml");
    std::fs::write(&engine, "[engine]\nlog_format = \"xml\"\n").unwrap();
    let output = Command::new(NEXUM)
        .args(["run", engine.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim(),
        format!(
            "error: {}: `engine.log_format`: unknown variant `xml`, expected `pretty` or `json`",
            engine.display()
        )
    );
}

#[test]
fn a_missing_module_file_is_one_clear_message_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("module.toml"),
        "[module]\nname = \"gone\"\nversion = \"1\"\n",
    )
    .unwrap();
    let engine = dir.path().join("engine.toml");
    std::fs::write(
        &engine,
        "[[modules]]\npath = \"gone.wasm\"\nmanifest = \"module.toml\"\n",
    )
    .unwrap();
    let output = Command::new(NEXUM)
        .args(["run", engine.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let last = stderr.trim().lines().last().unwrap();
    assert!(
        last.starts_with("error: ") && last.contains("gone.wasm: cannot read component"),
        "{stderr}"
    );
}

#[tokio::test]
async fn runs_against_an_http_node_by_polling() {
    let anvil = nexum_tests::anvil::Anvil::spawn_with(&["--block-time", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = block_logger_engine(dir.path(), "", &anvil.http_url(), "poll_interval_ms = 200");
    let mut running = Running::start(&["run", engine.to_str().unwrap()]);
    let first = running.wait_for("on chain 31337");
    let second = running.wait_for("on chain 31337");
    assert!(first.contains("module=\"block-logger\""), "{first}");
    assert_ne!(first, second);
    assert_eq!(running.stop("-TERM"), 0);
}

#[tokio::test]
async fn json_logs_carry_module_chain_block_and_event() {
    let anvil = nexum_tests::anvil::Anvil::spawn_with(&["--block-time", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = block_logger_engine(dir.path(), "log_format = \"json\"", &anvil.ws_url(), "");
    let mut running = Running::start(&["run", engine.to_str().unwrap()]);
    // A line the module itself logged while handling a block.
    let line = running.wait_for(r#""target":"nexum::module""#);
    assert_eq!(running.stop("-TERM"), 0);
    let json: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(json["module"], "block-logger", "{json}");
    assert_eq!(json["level"], "INFO");
    assert_eq!(json["span"]["event"], "block", "{json}");
    assert_eq!(json["span"]["chain"], 31337, "{json}");
    let block = json["span"]["block"].as_u64().expect("the block number");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("block {block} ")),
        "{json}"
    );
}

#[test]
fn a_second_signal_during_a_slow_shutdown_exits_at_once_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let engine = slow_engine(dir.path(), 20_000);
    let mut running = Running::start(&["run", engine.to_str().unwrap()]);
    running.wait_for("slow call #1 starting");
    running.0.send("-TERM");
    running.wait_for("a second signal exits at once");
    let status = running.0.signal("-INT");
    let output = running.0.output().join("\n");
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        running
            .0
            .find("second signal: exiting now, without waiting for calls in flight")
            .is_some(),
        "{output}"
    );
    assert!(
        running.0.find("slow call #1 done").is_none(),
        "it waited for the call:\n{output}"
    );
}

#[test]
fn an_engine_whose_every_module_fails_init_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let engine = one_module_engine(
        dir.path(),
        "probe",
        "[module]\nname = \"broken\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n\n\
         [config]\ninit = \"fail\"\n",
    );
    let output = Command::new(NEXUM)
        .args(["run", engine.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim().lines().last(),
        Some(
            "error: no module could start: the init of every module failed (reasons above); nothing to run"
        ),
        "{stderr}"
    );
}

#[test]
fn reading_the_store_of_a_running_engine_says_it_is_in_use_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = heartbeat_engine(dir.path());
    let engine = engine.to_str().unwrap();
    let mut running = Running::start(&["run", engine]);
    running.wait_for("beat #1");
    let output = Command::new(NEXUM)
        .args(["store", engine, "heartbeat"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        format!(
            "error: the state in {} is in use: is this engine running? stop it, or set [admin] in {engine} to read it while it runs\n",
            dir.path().join("state").display()
        )
    );
    assert_eq!(running.stop("-TERM"), 0);
}

#[test]
fn an_unreachable_node_is_one_line_that_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = nexum_tests::anvil::free_port();
    let engine = block_logger_engine(dir.path(), "", &format!("http://127.0.0.1:{port}"), "");
    let output = Command::new(NEXUM)
        .args(["run", engine.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let last = stderr.trim().lines().last().unwrap();
    let prefix = format!("error: chain 31337: cannot reach the node at http://127.0.0.1:{port}: ");
    let cause = last
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{last}"));
    assert!(!cause.is_empty(), "{last}");
    let parts: Vec<&str> = cause.split(": ").collect();
    let distinct: std::collections::BTreeSet<&str> = parts.iter().copied().collect();
    assert_eq!(distinct.len(), parts.len(), "a cause repeats: {last}");
}

#[test]
fn engine_config_is_the_seed_systems_spelling_of_run() {
    let dir = tempfile::tempdir().unwrap();
    let engine = heartbeat_engine(dir.path());
    let mut running = Running::start(&["--engine-config", engine.to_str().unwrap()]);
    running.wait_for("beat #1");
    assert_eq!(running.stop("-TERM"), 0);
    let both = Command::new(NEXUM)
        .args(["--engine-config", engine.to_str().unwrap(), "check", "x"])
        .output()
        .unwrap();
    assert_eq!(
        both.status.code(),
        Some(2),
        "a flag and a command together are refused"
    );
}
